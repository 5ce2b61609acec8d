package middleware_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/store/memory"
)

func TestWithPublic(t *testing.T) {
	e := newEnv(t)
	var sawKey, reached bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		_, sawKey = middleware.KeyFrom(r.Context())
	})
	h := middleware.Authenticate(e.keys, middleware.WithPublic("GET /healthz", "/status/"))(next)
	tests := []struct {
		method, target string
		key            string
		wantPublic     bool
	}{
		{"GET", "/healthz", "", true},
		{"HEAD", "/healthz", "", true}, // GET patterns match HEAD, as in a ServeMux
		{"GET", "/healthz", e.all.Raw, true},
		{"POST", "/healthz", "", false},
		{"GET", "/healthz/x", "", false},
		{"GET", "/status/", "", true},
		{"GET", "/status/db", "", true},
		{"GET", "/status", "", false},                  // ServeMux would redirect to /status/
		{"GET", "/api/../healthz", "", false},          // not canonical: a router may not clean it
		{"GET", "/healthz/../api/v1/links", "", false}, // nor this
		{"GET", "/status/%2E%2E/api", "", false},
		{"GET", "/status//x", "", false},
		{"GET", "/api/v1/links", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			reached, sawKey = false, false
			r := httptest.NewRequest(tc.method, "http://api.test"+tc.target, nil)
			if tc.key != "" {
				r.Header.Set("Authorization", "Bearer "+tc.key)
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if tc.wantPublic {
				if !reached || rr.Code != http.StatusOK || sawKey {
					t.Errorf("public request: reached %v, status %d, key in context %v", reached, rr.Code, sawKey)
				}
				return
			}
			if reached || rr.Code != http.StatusUnauthorized {
				t.Errorf("request without a key: reached %v, status %d; want 401", reached, rr.Code)
			}
		})
	}
}

func TestWithPublicRefusesBadPatterns(t *testing.T) {
	e := newEnv(t)
	for name, opt := range map[string]middleware.Option{
		"none":      middleware.WithPublic(),
		"invalid":   middleware.WithPublic("GET /a/{"),
		"repeated":  middleware.WithPublic("GET /healthz", "GET /healthz"),
		"no method": middleware.WithPublic("FETCH"),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil || !strings.Contains(v.(error).Error(), "WithPublic") {
					t.Errorf("Authenticate did not panic naming WithPublic: %v", v)
				}
			}()
			middleware.Authenticate(e.keys, opt)
		})
	}
}

// A health check behind Authenticate with the rest of the API, reachable
// without a key.
func ExampleWithPublic() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	api := http.NewServeMux()
	api.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	api.HandleFunc("GET /v1/links", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "links") })
	handler := middleware.Authenticate(keys, middleware.WithPublic("GET /healthz"))(api)

	for _, path := range []string{"/healthz", "/v1/links"} {
		rr := httptest.NewRecorder()
		handler.ServeHTTP(rr, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rr.Code)
	}
	// Output:
	// /healthz 200
	// /v1/links 401
}
