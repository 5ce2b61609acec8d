package dashboard_test

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/store/memory"
)

// The dashboard mounted at /dashboard/ behind HTTP Basic authentication with
// one operator password: the browser asks for a user name and the password,
// and the user name is what the audit log records. A real deployment would
// use its own sign-in instead.
func Example() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	password := "correct horse battery staple" // from a flag or a secret store
	want := sha256.Sum256([]byte(password))
	dash, err := dashboard.New(keys,
		func(r *http.Request) (string, error) {
			user, pass, ok := r.BasicAuth()
			// Compare digests in constant time: comparing the passwords
			// themselves would reveal the password's length.
			got := sha256.Sum256([]byte(pass))
			if !ok || user == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				return "", errors.New("no valid operator credentials")
			}
			return user, nil
		},
		dashboard.WithUnauthorized(func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("WWW-Authenticate", `Basic realm="dashboard", charset="UTF-8"`)
			http.Error(w, "operator sign-in required", http.StatusUnauthorized)
		}),
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))

	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Create a key through the JSON API, first without credentials.
	create := func(user, pass string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/dashboard/keys",
			strings.NewReader(`{"name": "Production server", "mode": "live", "scopes": ["sessions:write"]}`))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		return resp
	}
	resp := create("", "")
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("WWW-Authenticate"))

	resp = create("ada", password)
	defer resp.Body.Close()
	var out struct {
		RawKey string `json:"raw_key"`
		Key    struct {
			Name   string `json:"name"`
			Status string `json:"status"`
		} `json:"key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, out.Key.Name, out.Key.Status, strings.HasPrefix(out.RawKey, "ck_live_"))
	// Output:
	// 401 Unauthorized Basic realm="dashboard", charset="UTF-8"
	// 201 Created Production server active true
}

// An audit hook that keeps a trail of who changed which key. The events
// carry key IDs, names and display prefixes, never a raw key.
func ExampleWithAudit() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	dash, err := dashboard.New(keys,
		func(r *http.Request) (string, error) { return "ada@example.com", nil }, // your operator check
		dashboard.WithAudit(func(ctx context.Context, e dashboard.Event) {
			fmt.Println(e.Action, "by", e.Operator+":", e.Key.Name, e.Key.Mode)
		}),
		dashboard.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest("POST", "/keys",
		strings.NewReader(`{"name": "Staging", "mode": "test", "scopes": ["events:read"]}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	dash.ServeHTTP(w, req)
	fmt.Println(w.Code)
	// Output:
	// key.created by ada@example.com: Staging test
	// 201
}
