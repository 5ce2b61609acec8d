//go:build keyward_loadceiling

// This file exists for scripts/load only: built with the tag
// keyward_loadceiling, the example serves its API WITHOUT authentication,
// the ceiling that the load script compares the real server with. Every
// request to /api/v1 is served as acme's test key with every scope, whatever
// it carries. No flag or setting turns this on: only a build with the tag,
// which nothing but scripts/load makes. Its tests are not meant to pass
// under the tag.

package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

func init() {
	fmt.Fprintln(os.Stderr, "checkout: built with the tag keyward_loadceiling: the API is served WITHOUT authentication, as scripts/load's ceiling; never run this build anywhere else")
	apiAuth = func(keys *keyward.Keys, _ limit.Limiter) func(http.Handler) http.Handler {
		// The fixed record a verification would have put in the context:
		// what the handlers read (owner, mode, scopes), and the rest of a
		// real key's fields.
		rec := apikey.Record{
			ID:        uuid.Must(uuid.NewV7()),
			Owner:     "acme",
			Name:      "load ceiling: no authentication",
			Prefix:    "ck_test_ceil",
			Mode:      apikey.Test,
			Scopes:    scope.NewSet(keys.Catalog().Scopes()...),
			CreatedAt: time.Now().UTC(),
		}
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), rec)))
			})
		}
	}
}
