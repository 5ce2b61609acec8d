package middleware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// TestKeyContextIsSmall: the context Authenticate allocates for every
// request holds a view of the stored record, not a copy of it. Every
// byte allocated per request makes the garbage collector mark a store's
// million records again sooner: a copy made the context 352 bytes.
func TestKeyContextIsSmall(t *testing.T) {
	if n := unsafe.Sizeof(keyContext{}); n > 80 {
		t.Errorf("keyContext is %d bytes, want at most 80 (a size class of 80): does it copy the record?", n)
	}
}

// TestAuthenticateAllocatesTwice: a request let through costs the
// request's copy (Request.WithContext) and the context, nothing more.
func TestAuthenticateAllocatesTwice(t *testing.T) {
	keys, err := keyward.New(memory.New(), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_1").Create(context.Background(), keyward.CreateParams{
		Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead),
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	h := Authenticate(keys)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if HasScope(r.Context(), scope.LinksRead) {
			seen++
		}
	}))
	r := httptest.NewRequest(http.MethodGet, "/v1/links", nil)
	r.Header.Set("Authorization", "Bearer "+sec.Reveal())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r) // the key's first use makes its cell
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 2 {
		t.Errorf("a request let through allocates %v times, want 2", n)
	}
	if seen != 102 {
		t.Errorf("the handler saw the key in %d of 102 requests", seen)
	}
}
