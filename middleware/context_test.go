package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

type otherKey struct{}

func TestContextAccessors(t *testing.T) {
	rec := keywardtest.Record(scope.SessionsWrite, scope.LinksRead)
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "kept"))
	ctx := middleware.NewContext(parent, rec)

	got, ok := middleware.KeyFrom(ctx)
	if !ok || got.ID != rec.ID {
		t.Fatalf("KeyFrom = %v, %v; want the record", got.ID, ok)
	}
	if got, want := middleware.ScopesFrom(ctx).Strings(), []string{"links:read", "sessions:write"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ScopesFrom = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		s    scope.Scope
		want bool
	}{{scope.SessionsWrite, true}, {scope.LinksRead, true}, {scope.SessionsRead, false}, {scope.LinksWrite, false}} {
		if got := middleware.HasScope(ctx, tc.s); got != tc.want {
			t.Errorf("HasScope(%s) = %v, want %v", tc.s, got, tc.want)
		}
	}
	if got := ctx.Value(otherKey{}); got != "kept" {
		t.Errorf("a parent value = %v, want kept", got)
	}

	// Cancellation flows through, and contexts derived from it still work
	// without a goroutine of their own.
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the parent did not reach a derived context")
	}
	if ctx.Err() != context.Canceled {
		t.Errorf("Err = %v, want Canceled", ctx.Err())
	}
	if _, ok := middleware.KeyFrom(child); !ok {
		t.Error("a derived context lost the key")
	}
}

func TestContextWithoutKey(t *testing.T) {
	ctx := context.Background()
	if _, ok := middleware.KeyFrom(ctx); ok {
		t.Error("KeyFrom found a key in an empty context")
	}
	if !middleware.ScopesFrom(ctx).IsEmpty() {
		t.Error("ScopesFrom is not empty")
	}
	if middleware.HasScope(ctx, scope.SessionsRead) {
		t.Error("HasScope is true without a key")
	}
}

func TestContextDoesNotPrintRecord(t *testing.T) {
	rec := keywardtest.Record(scope.SessionsWrite)
	ctx := middleware.NewContext(context.Background(), rec)
	s := ctx.(interface{ String() string }).String()
	if s == "" || containsAny(s, rec.Prefix, rec.Hash.String(), rec.ID.String()) {
		t.Errorf("String() = %q", s)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestRequireScopesWithNewContext checks that handlers guarded by
// RequireScopes can be tested with a record put in the context by hand.
func TestRequireScopesWithNewContext(t *testing.T) {
	h := middleware.RequireScopes(scope.SessionsRead)(new(reached))
	tests := []struct {
		name   string
		scopes []scope.Scope
		want   int
	}{
		{"held", []scope.Scope{scope.SessionsRead}, http.StatusOK},
		{"missing", []scope.Scope{scope.SessionsWrite}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r = r.WithContext(middleware.NewContext(r.Context(), keywardtest.Record(tc.scopes...)))
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if rr.Code != tc.want {
				t.Fatalf("status = %d, want %d", rr.Code, tc.want)
			}
			if tc.want == http.StatusForbidden {
				if got, want := rr.Header().Get("WWW-Authenticate"), `Bearer realm="api", error="insufficient_scope", scope="sessions:read"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
		})
	}
}

// TestRequireScopesWithoutAuthenticate checks that a guard without
// Authenticate in front fails closed.
func TestRequireScopesWithoutAuthenticate(t *testing.T) {
	for _, guard := range []func(http.Handler) http.Handler{
		middleware.RequireScopes(scope.SessionsRead),
		middleware.RequireAnyScope(scope.SessionsRead, scope.LinksRead),
	} {
		next := new(reached)
		rr := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer ck_test_4eC39HqLyjWDarjtT1zdp7dc4eC39HqL")
		guard(next).ServeHTTP(rr, r)
		if rr.Code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", rr.Code)
		}
		if next.calls.Load() != 0 {
			t.Error("the next handler was called without authentication")
		}
		if p := decodeProblem(t, rr); p.Status != 500 {
			t.Errorf("body status = %d", p.Status)
		}
	}
}

// TestKeyFromCarriesOwnerAndMetadata: behind Authenticate, a handler finds
// whose key called it and the key's metadata, with no lookup of its own.
func TestKeyFromCarriesOwnerAndMetadata(t *testing.T) {
	e := newEnv(t)
	var got apikey.Record
	h := middleware.Authenticate(e.keys)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = middleware.KeyFrom(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	e.all.Authorize(req)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.Owner != "acct_mw" {
		t.Errorf("KeyFrom(ctx).Owner = %q, want acct_mw", got.Owner)
	}
	if plan, ok := got.Metadata.Get("plan"); !ok || plan != "gold" {
		t.Errorf("KeyFrom(ctx).Metadata = %v, want plan=gold", got.Metadata)
	}
}
