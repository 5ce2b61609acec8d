package keyward_test

// Examples that the README quotes and that have no better home: each is
// run by go test, and readme_test.go checks that the README's copies match.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/store/memory"
)

// The API Keys dashboard, mounted behind the application's own operator
// sign-in: here, a middleware that puts the signed-in user in the request
// context, as session and single sign-on middlewares do.
func Example_dashboard() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	mux := http.NewServeMux()

	// The dashboard asks your sign-in who the operator is, which account
	// they act for, and what they may do, on every request.
	dash, err := dashboard.New(keys, func(r *http.Request) (dashboard.Operator, error) {
		user, ok := userFrom(r.Context()) // set by your sign-in middleware
		if !ok || user.Role == "" {
			return dashboard.Operator{}, errors.New("not an operator")
		}
		return dashboard.Operator{
			Name:  user.Email,    // named in the audit log
			Owner: user.Merchant, // sees and manages this account's keys only
			Role:  user.Role,     // dashboard.Viewer, Developer or Admin
		}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))

	srv := httptest.NewServer(signIn(mux))
	defer srv.Close()
	for _, session := range []string{"", "session-of-eve", "session-of-bob", "session-of-ada"} {
		req, _ := http.NewRequest("POST", srv.URL+"/dashboard/keys",
			strings.NewReader(`{"name": "Production", "mode": "live", "scopes": ["events:read"]}`))
		req.Header.Set("Content-Type", "application/json")
		if session != "" {
			req.AddCookie(&http.Cookie{Name: "session", Value: session})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%q: %s\n", session, resp.Status)
	}
	// Output:
	// "": 401 Unauthorized
	// "session-of-eve": 401 Unauthorized
	// "session-of-bob": 403 Forbidden
	// "session-of-ada": 201 Created
}

// user is a signed-in user of the example's stand-in sign-in.
type user struct {
	Email    string
	Merchant string         // the account the user belongs to
	Role     dashboard.Role // what they may do with its API keys; "" for nothing
}

type userKey struct{}

// userFrom returns the user signIn put in ctx.
func userFrom(ctx context.Context) (user, bool) {
	u, ok := ctx.Value(userKey{}).(user)
	return u, ok
}

// signIn stands in for an application's sign-in middleware: it finds the
// user of the request's session cookie, and puts it in the context.
func signIn(next http.Handler) http.Handler {
	sessions := map[string]user{
		"session-of-ada": {Email: "ada@acme.example", Merchant: "acct_acme", Role: dashboard.Admin},
		"session-of-bob": {Email: "bob@acme.example", Merchant: "acct_acme", Role: dashboard.Developer}, // test keys only
		"session-of-eve": {Email: "eve@acme.example", Merchant: "acct_acme"},                            // no access
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err == nil {
			if u, ok := sessions[c.Value]; ok {
				r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
			}
		}
		next.ServeHTTP(w, r)
	})
}
