package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// TestCanaryAnswersAsUnknown checks that a canary key gets exactly the
// response of a key that does not exist, and that its trip records the
// request.
func TestCanaryAnswersAsUnknown(t *testing.T) {
	trips := make(chan apikey.Trip, 1)
	keys, err := keyward.New(memory.New(), keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { trips <- tr }))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	canary := keywardtest.Issue(t, keys.Owner("acct_mw"), keyward.CreateParams{Scopes: scope.NewSet(scope.LinksRead), Canary: true})
	unknown, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	h := middleware.Authenticate(keys)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	serve := func(raw string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/links?limit=3", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		r.Header.Set("User-Agent", "curl/8.5.0")
		r.RemoteAddr = "198.51.100.23:40112"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	gotCanary, gotUnknown := serve(canary.Raw), serve(unknown.Reveal())
	if reached {
		t.Fatal("a canary key reached the handler")
	}
	if gotCanary.Code != http.StatusUnauthorized || gotCanary.Code != gotUnknown.Code ||
		gotCanary.Body.String() != gotUnknown.Body.String() {
		t.Errorf("canary: %d %s\nunknown: %d %s\nwant the same 401", gotCanary.Code, gotCanary.Body, gotUnknown.Code, gotUnknown.Body)
	}
	for name := range gotUnknown.Header() {
		if gotCanary.Header().Get(name) != gotUnknown.Header().Get(name) {
			t.Errorf("header %s: canary %q, unknown %q", name, gotCanary.Header().Get(name), gotUnknown.Header().Get(name))
		}
	}
	select {
	case tr := <-trips:
		want := apikey.Trip{KeyID: canary.Record.ID, Owner: "acct_mw", At: tr.At, Addr: "198.51.100.23:40112", UserAgent: "curl/8.5.0", Route: "GET /v1/links"}
		if tr != want || tr.At.IsZero() {
			t.Errorf("trip = %+v, want %+v", tr, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no trip recorded")
	}
}
