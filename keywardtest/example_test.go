package keywardtest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

// createSession is the handler under test.
func createSession(w http.ResponseWriter, r *http.Request) {
	key, _ := middleware.KeyFrom(r.Context())
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "session created by %s\n", key.Prefix)
}

// A test through the middleware, with a real key.
func TestCreateSession(t *testing.T) {
	key := keywardtest.NewKey(t, scope.SessionsWrite) // memory store, closed after the test
	handler := middleware.Authenticate(key.Keys)(
		middleware.RequireScopes(scope.SessionsWrite)(http.HandlerFunc(createSession)))

	req := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	key.Authorize(req) // Authorization: Bearer ck_test_...
	rr := httptest.NewRecorder()
	handler.ServeHTTP(rr, req)
	if rr.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201", rr.Code)
	}
}

// A unit test of the handler alone: no key, no store.
func TestCreateSessionUnit(t *testing.T) {
	req := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	rec := keywardtest.Record(scope.SessionsWrite)
	req = req.WithContext(middleware.NewContext(req.Context(), rec))
	rr := httptest.NewRecorder()
	createSession(rr, req)
	if got, want := rr.Body.String(), "session created by "+rec.Prefix+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

// NewKey in a test: t is the test's *testing.T, and the key and its store
// are closed when the test ends.
func ExampleNewKey() {
	t := &testing.T{} // in a real test, the test's t

	key := keywardtest.NewKey(t, scope.SessionsWrite)
	handler := middleware.Authenticate(key.Keys)(http.HandlerFunc(createSession))
	req := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	key.Authorize(req)
	handler.ServeHTTP(httptest.NewRecorder(), req)
}

// Record makes a key record for handler tests that need no key; put it in
// a request's context with middleware.NewContext.
func ExampleRecord() {
	rec := keywardtest.Record(scope.SessionsWrite, scope.SessionsRead)
	req := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	req = req.WithContext(middleware.NewContext(req.Context(), rec))

	fmt.Println(rec.Mode, rec.Scopes, strings.HasPrefix(rec.Prefix, "ck_test_"))
	fmt.Println(middleware.HasScope(req.Context(), scope.SessionsRead))
	// Output:
	// test sessions:read sessions:write true
	// true
}
