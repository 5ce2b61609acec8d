package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// An access log of both outcomes: the success hook logs each request let
// through with its key's owner and ID (never the key itself), and the
// error handler each refusal with its cause, before writing the usual
// response.
func ExampleWithSuccessHook() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{
		Name:   "Reporting",
		Mode:   apikey.Test,
		Scopes: scope.NewSet(scope.SessionsRead),
	})
	if err != nil {
		log.Fatal(err)
	}

	handler := middleware.Authenticate(keys,
		middleware.WithSuccessHook(func(r *http.Request, key keyward.Verified) {
			fmt.Printf("%s %s: let through, owner %s\n", r.Method, r.URL.Path, key.Owner())
		}),
		middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			fmt.Printf("%s %s: refused, insufficient scope: %t\n", r.Method, r.URL.Path, errors.Is(err, middleware.ErrInsufficientScope))
			middleware.WriteError(w, r, err)
		}),
	)(middleware.RequireScopes(scope.SessionsWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))

	for _, auth := range []string{"Bearer " + sec.Reveal(), "Bearer ck_test_invalid"} {
		r := httptest.NewRequest("POST", "/api/v1/sessions", nil)
		r.Header.Set("Authorization", auth)
		rr := httptest.NewRecorder()
		handler.ServeHTTP(rr, r)
		fmt.Println(rr.Code)
	}
	// Output:
	// POST /api/v1/sessions: let through, owner acct_123
	// POST /api/v1/sessions: refused, insufficient scope: true
	// 403
	// POST /api/v1/sessions: refused, insufficient scope: false
	// 401
}
