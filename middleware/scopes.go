package middleware

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/scope"
)

// RequireScopes returns middleware that lets a request through only if its
// key holds every one of scopes. It goes behind [Authenticate], on a route
// or a group of routes:
//
//	mux.Handle("POST /api/v1/sessions", middleware.RequireScopes(scope.SessionsWrite)(createSession))
//
// A key that lacks one is refused with 403 and
// WWW-Authenticate: Bearer realm="api", error="insufficient_scope",
// scope="sessions:write" (all the required scopes, space-separated), through
// the error handler of the Authenticate that verified the key. Scopes are
// exact: sessions:write does not imply sessions:read. The refusal is
// counted against the key, in its usage and by the lifecycle's observer
// ([keyward.Keys.CountRefusal], [keyward.OutcomeInsufficientScope]),
// unless the key came from [NewContext].
//
// Without a key in the context (Authenticate is missing) it fails closed
// with 500 and [ErrNotAuthenticated]. It panics if scopes is empty or holds
// a malformed scope.
func RequireScopes(scopes ...scope.Scope) func(http.Handler) http.Handler {
	return require("RequireScopes", scopes, true)
}

// RequireAnyScope is like [RequireScopes] but lets a request through if its
// key holds at least one of scopes, as for a route that either of two
// integrations may call.
func RequireAnyScope(scopes ...scope.Scope) func(http.Handler) http.Handler {
	return require("RequireAnyScope", scopes, false)
}

func require(name string, scopes []scope.Scope, all bool) func(http.Handler) http.Handler {
	if len(scopes) == 0 {
		panic("middleware: " + name + " needs at least one scope")
	}
	for _, s := range scopes {
		if !s.Valid() {
			panic(fmt.Sprintf("middleware: %s: malformed scope %q", name, s))
		}
	}
	scopes = slices.Clone(scopes)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("middleware: " + name + " needs a next handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			kc, ok := fromContext(r.Context())
			if !ok {
				defaultConfig.onError(w, r, notAuthenticatedError())
				return
			}
			granted := kc.scopes()
			if all && !granted.HasAll(scopes...) || !all && !granted.HasAny(scopes...) {
				cfg := kc.cfg
				if cfg == nil {
					cfg = defaultConfig // NewContext: no lifecycle to count the refusal
				} else {
					cfg.keys.CountRefusal(r.Context(), kc.key.ID(), keyward.OutcomeInsufficientScope)
				}
				cfg.onError(w, r, scopeError(cfg.realm, slices.Clone(scopes), all))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
