package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// basicChallenge is the challenge of a refused dashboard request.
const basicChallenge = `Basic realm="checkout dashboard", charset="UTF-8"`

// dashCall makes a request to the dashboard, with Basic credentials unless
// user and pass are both empty; a body is sent as JSON. header adds
// headers, as name, value pairs.
func dashCall(t *testing.T, method, url, user, pass, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return send(t, req)
}

// keyCount returns the number of keys the dashboard's JSON API lists.
func keyCount(t *testing.T, in *instance, password string) int {
	t.Helper()
	r := dashCall(t, "GET", in.dash.url+"keys", "ops", password, "")
	keys, ok := r.body["keys"].([]any)
	if r.status != http.StatusOK || !ok {
		t.Fatalf("listing keys: %d %s", r.status, r.raw)
	}
	return len(keys)
}

// TestDashboard signs in to the dashboard that the example mounts, manages
// a key through it, and checks that the API sees each change at once.
func TestDashboard(t *testing.T) {
	const password = "operators' password, for the test"
	in := startInstance(t, config{addr: "127.0.0.1:0", dashboardPassword: password})
	if !in.dash.given || strings.Contains(in.banner, password) {
		t.Fatalf("the banner shows the password given, or does not say it was given:\n%s", in.banner)
	}
	keys := in.dash.url + "keys"

	t.Run("sign-in refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, pass string
		}{
			{"no credentials", "", ""},
			{"wrong password", "ada", "not the password"},
			{"password with a suffix", "ada", password + "!"},
			{"no user name", "", password},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, accept := range []string{"application/json", "text/html"} {
					r := dashCall(t, "GET", keys, tc.user, tc.pass, "", "Accept", accept)
					if r.status != http.StatusUnauthorized || r.challenge != basicChallenge {
						t.Errorf("Accept %s: %d %q, want 401 %q", accept, r.status, r.challenge, basicChallenge)
					}
					if strings.Contains(r.raw, password) || r.header.Get("Cache-Control") != "no-store" {
						t.Errorf("Accept %s: the response shows the password or may be cached: %v %s", accept, r.header, r.raw)
					}
				}
			})
		}
		// The assets need the sign-in too.
		if r := dashCall(t, "GET", in.dash.url+"assets/dashboard.css", "", "", ""); r.status != http.StatusUnauthorized {
			t.Errorf("the stylesheet without credentials: %d", r.status)
		}
		if got := strings.Count(in.log.String(), "wrong password"); got != 4 {
			t.Errorf("%d wrong passwords logged, want 4 (two requests of two cases):\n%s", got, in.log)
		}
	})

	t.Run("page", func(t *testing.T) {
		r := dashCall(t, "GET", in.dash.url, "ada", password, "", "Accept", "text/html")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /dashboard/ as a browser: %d %s", r.status, r.header.Get("Content-Type"))
		}
		for _, k := range in.keys {
			if p := apikey.Default.DisplayPrefix(k.raw); !strings.Contains(r.raw, p) {
				t.Errorf("the page does not list the demo key %s", p)
			}
		}
		if strings.Contains(r.raw, in.keys[0].raw) {
			t.Error("the page shows a raw key")
		}
	})

	var raw, id string
	t.Run("create, use and revoke a key", func(t *testing.T) {
		r := dashCall(t, "POST", keys, "ada", password, `{"name": "WooCommerce plugin", "mode": "test", "scopes": ["links:read"]}`)
		raw, _ = r.body["raw_key"].(string)
		key, _ := r.body["key"].(map[string]any)
		id, _ = key["id"].(string)
		if r.status != http.StatusCreated || !keyLine.MatchString(raw) || id == "" {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		if r := call(t, "GET", in.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
			t.Fatalf("the new key on the API: %d %v", r.status, r.body)
		}
		if r := call(t, "GET", in.url+"/api/v1/events", raw, ""); r.status != http.StatusForbidden {
			t.Errorf("the new key, links:read only, on events: %d", r.status)
		}

		r = dashCall(t, "POST", keys+"/"+id+"/revoke", "ada", password, "")
		if r.status != http.StatusOK || r.body["status"] != "revoked" {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		r = call(t, "GET", in.url+"/api/v1/links", raw, "")
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the request right after revocation: %d %q", r.status, r.challenge)
		}
	})

	t.Run("cross-origin", func(t *testing.T) {
		before := keyCount(t, in, password)
		r := dashCall(t, "POST", keys, "ada", password, `{"name": "Forged", "mode": "live", "scopes": ["links:write"]}`,
			"Sec-Fetch-Site", "cross-site")
		if r.status != http.StatusForbidden {
			t.Fatalf("cross-site create: %d %s", r.status, r.raw)
		}
		if after := keyCount(t, in, password); after != before {
			t.Errorf("%d keys after a refused cross-site create, %d before", after, before)
		}
		r = dashCall(t, "POST", keys+"/"+in.keyID(t, 0)+"/revoke", "ada", password, "", "Sec-Fetch-Site", "cross-site")
		if r.status != http.StatusForbidden {
			t.Fatalf("cross-site revoke: %d %s", r.status, r.raw)
		}
		if r := call(t, "GET", in.url+"/api/v1/links", in.keys[0].raw, ""); r.status != http.StatusOK {
			t.Errorf("the demo key after a refused cross-site revocation: %d", r.status)
		}
	})

	t.Run("the log", func(t *testing.T) {
		if raw == "" {
			t.Skip("no key was created")
		}
		log := in.log.String()
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`msg="dashboard: API key created" .*operator=ada .*` + regexp.QuoteMeta(id)),
			regexp.MustCompile(`msg="dashboard: API key revoked" .*operator=ada .*` + regexp.QuoteMeta(id)),
			regexp.MustCompile(`msg="dashboard: cross-origin request refused"`),
		} {
			if !want.MatchString(log) {
				t.Errorf("no log line matches %s:\n%s", want, log)
			}
		}
		for name, secret := range map[string]string{"the raw key": raw, "the password": password, "a demo key": in.keys[0].raw} {
			if strings.Contains(log, secret) {
				t.Errorf("the log holds %s:\n%s", name, log)
			}
		}
	})
}

// keyID returns the ID of the i-th demo key.
func (in *instance) keyID(t *testing.T, i int) string {
	t.Helper()
	return findKey(t, in.srv.keys, in.keys[i].raw).ID.String()
}

// TestDashboardGeneratedPassword checks the password generated when none
// is given: printed once, on its own line, and the only one that works.
func TestDashboardGeneratedPassword(t *testing.T) {
	in := startInstance(t, config{addr: "127.0.0.1:0"})
	if in.dash.given || !regexp.MustCompile(`^[A-Z2-7]{26}$`).MatchString(in.dash.password) {
		t.Fatalf("generated password %q, want 26 base32 characters (crypto/rand.Text):\n%s", in.dash.password, in.banner)
	}
	if n := strings.Count(in.banner, in.dash.password); n != 1 {
		t.Errorf("the password is printed %d times", n)
	}
	if r := dashCall(t, "GET", in.dash.url+"keys", "grace", in.dash.password, ""); r.status != http.StatusOK {
		t.Errorf("with the generated password: %d", r.status)
	}
	if r := dashCall(t, "GET", in.dash.url+"keys", "grace", strings.ToLower(in.dash.password), ""); r.status != http.StatusUnauthorized {
		t.Errorf("with another password: %d", r.status)
	}
	if other := startInstance(t, config{addr: "127.0.0.1:0"}); other.dash.password == in.dash.password {
		t.Error("two runs generated the same password")
	}
	if strings.Contains(in.log.String(), in.dash.password) {
		t.Errorf("the log holds the password:\n%s", in.log)
	}
}
