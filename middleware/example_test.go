package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// createSession is an ordinary handler; the key that called it is in the
// request context, with the account it belongs to.
func createSession(w http.ResponseWriter, r *http.Request) {
	key, _ := middleware.KeyFrom(r.Context()) // always present behind Authenticate
	// Scope everything to the key's owner: this merchant's data only.
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "session created for %s in %s mode by %q\n", key.Owner, key.Mode, key.Name)
}

func listSessions(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "[]")
}

// send makes a request to url with key (none if empty) and prints the
// status, the challenge if any, and the body.
func send(method, url, key string) {
	req, _ := http.NewRequest(method, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(method, strings.TrimPrefix(url, "http://"+resp.Request.URL.Host), resp.StatusCode)
	if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
		fmt.Println("  WWW-Authenticate:", ch)
	}
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		fmt.Print("  ", string(body))
	}
}

// Wrapping an existing server: create the lifecycle once, guard each route
// with its scope, and wrap the whole handler with Authenticate.
func Example() {
	// At start-up: the key lifecycle over a store (memory here).
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close() // after the server has stopped: writes last-used times

	// Your routes, each guarded by the scope it needs.
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/sessions", middleware.RequireScopes(scope.SessionsWrite)(http.HandlerFunc(createSession)))
	mux.Handle("GET /api/v1/sessions", middleware.RequireScopes(scope.SessionsRead)(http.HandlerFunc(listSessions)))

	// The one new line: no valid key, no access.
	handler := middleware.Authenticate(keys)(mux)

	// A key of the account "acct_123" (your own account ID).
	sec, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{
		Name:   "Backend server",
		Mode:   apikey.Test,
		Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Show sec.Reveal() to the account now: it is never stored and cannot
	// be retrieved again.

	srv := httptest.NewServer(handler) // http.ListenAndServe(addr, handler) in a real server
	defer srv.Close()
	send("POST", srv.URL+"/api/v1/sessions", sec.Reveal())
	send("GET", srv.URL+"/api/v1/sessions", sec.Reveal())
	send("POST", srv.URL+"/api/v1/sessions", "")
	// Output:
	// POST /api/v1/sessions 201
	//   session created for acct_123 in test mode by "Backend server"
	// GET /api/v1/sessions 403
	//   WWW-Authenticate: Bearer realm="api", error="insufficient_scope", scope="sessions:read"
	// POST /api/v1/sessions 401
	//   WWW-Authenticate: Bearer realm="api"
}

// Route groups with the standard mux, as chi's Route and Use make them: a
// public group, an API group where every route needs a key, and a group
// that accepts only live keys.
func Example_routeGroups() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })

	api := group(root, "/api/v1/", middleware.Authenticate(keys))
	api.Handle("GET /api/v1/sessions", middleware.RequireScopes(scope.SessionsRead)(http.HandlerFunc(listSessions)))
	api.Handle("POST /api/v1/sessions", middleware.RequireScopes(scope.SessionsWrite)(http.HandlerFunc(createSession)))

	payouts := group(root, "/api/v1/payouts/", middleware.Authenticate(keys, middleware.WithMode(apikey.Live)))
	payouts.Handle("POST /api/v1/payouts/", middleware.RequireScopes(scope.SessionsWrite)(http.HandlerFunc(createSession)))

	srv := httptest.NewServer(root)
	defer srv.Close()
	test := issue(keys, apikey.Test, scope.SessionsWrite)
	live := issue(keys, apikey.Live, scope.SessionsWrite)
	send("GET", srv.URL+"/healthz", "")
	send("POST", srv.URL+"/api/v1/sessions", test)
	send("POST", srv.URL+"/api/v1/payouts/", test)
	send("POST", srv.URL+"/api/v1/payouts/", live)
	// Output:
	// GET /healthz 200
	//   ok
	// POST /api/v1/sessions 201
	//   session created for acct_123 in test mode by "example"
	// POST /api/v1/payouts/ 401
	//   WWW-Authenticate: Bearer realm="api", error="invalid_token"
	// POST /api/v1/payouts/ 201
	//   session created for acct_123 in live mode by "example"
}

// group mounts a new mux at pattern behind the given middleware, like
// chi's r.Route(pattern, func(r chi.Router) { r.Use(mws...) }). Routes
// registered on it use full paths.
func group(parent *http.ServeMux, pattern string, mws ...func(http.Handler) http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	var h http.Handler = mux
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	parent.Handle(pattern, h)
	return mux
}

func issue(keys *keyward.Keys, mode apikey.Mode, scopes ...scope.Scope) string {
	sec, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{Name: "example", Mode: mode, Scopes: scope.NewSet(scopes...)})
	if err != nil {
		log.Fatal(err)
	}
	return sec.Reveal()
}

// An error handler that logs why a key was refused, which clients are not
// told, then writes the standard response.
func ExampleWithErrorHandler() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	logger := log.New(os.Stdout, "", 0)

	onError := middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		switch {
		case errors.Is(err, keyward.ErrStoreUnavailable):
			logger.Printf("key store down: %v", err) // 503 for the client
		case errors.Is(err, keyward.ErrRevoked):
			logger.Printf("revoked key used from %s", r.RemoteAddr)
		case errors.Is(err, middleware.ErrInsufficientScope):
			logger.Printf("key lacks a scope on %s", r.URL.Path)
		}
		middleware.WriteError(w, r, err) // the standard response
	})
	handler := middleware.Authenticate(keys, onError)(http.HandlerFunc(listSessions))

	acct := keys.Owner("acct_123")
	sec, rec, _ := acct.Create(context.Background(), keyward.CreateParams{Name: "old", Mode: apikey.Test, Scopes: scope.NewSet(scope.SessionsRead)})
	acct.Revoke(context.Background(), rec.ID, keyward.RevokeParams{})
	req := httptest.NewRequest("GET", "/api/v1/sessions", nil)
	req.RemoteAddr = "203.0.113.9:4711"
	req.Header.Set("Authorization", "Bearer "+sec.Reveal())
	rr := httptest.NewRecorder()
	handler.ServeHTTP(rr, req)
	fmt.Println(rr.Code, rr.Header().Get("WWW-Authenticate"))
	// Output:
	// revoked key used from 203.0.113.9:4711
	// 401 Bearer realm="api", error="invalid_token"
}

// Unit-testing a handler without any key: put a record in the request's
// context.
func ExampleNewContext() {
	req := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	rec := keywardtest.Record(scope.SessionsWrite)
	rec.Name = "unit test"
	req = req.WithContext(middleware.NewContext(req.Context(), rec))

	rr := httptest.NewRecorder()
	createSession(rr, req)
	fmt.Print(rr.Code, " ", rr.Body)
	// Output:
	// 201 session created for default in test mode by "unit test"
}

// Handlers can branch on the key's scopes.
func ExampleHasScope() {
	ctx := middleware.NewContext(context.Background(), keywardtest.Record(scope.CustomersRead))
	fmt.Println(middleware.HasScope(ctx, scope.CustomersRead), middleware.HasScope(ctx, scope.CustomersWrite))
	// Output: true false
}

// RequireAnyScope lets either of two integrations call a route.
func ExampleRequireAnyScope() {
	h := middleware.RequireAnyScope(scope.SessionsRead, scope.EventsRead)(http.HandlerFunc(listSessions))
	for _, s := range []scope.Scope{scope.EventsRead, scope.LinksRead} {
		req := httptest.NewRequest("GET", "/api/v1/sessions", nil)
		req = req.WithContext(middleware.NewContext(req.Context(), keywardtest.Record(s)))
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(s, " ", rr.Code, " ", rr.Header().Get("WWW-Authenticate"))))
	}
	// Output:
	// events:read 200
	// links:read 403 Bearer realm="api", error="insufficient_scope", scope="sessions:read events:read"
}
