package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/internal/syncbuf"
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

// listedIDs returns the IDs of the keys the dashboard's JSON API lists to
// user, all pages.
func listedIDs(t *testing.T, in *instance, user, password string) []string {
	t.Helper()
	var ids []string
	for cursor := ""; ; {
		u := in.dash.url + "keys?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		r := dashCall(t, "GET", u, user, password, "")
		keys, ok := r.body["keys"].([]any)
		if r.status != http.StatusOK || !ok {
			t.Fatalf("listing keys as %s: %d %s", user, r.status, r.raw)
		}
		for _, k := range keys {
			m, _ := k.(map[string]any)
			id, _ := m["id"].(string)
			ids = append(ids, id)
		}
		if cursor, _ = r.body["next_cursor"].(string); cursor == "" {
			return ids
		}
	}
}

// keyCount returns the number of keys the dashboard's JSON API lists to
// user.
func keyCount(t *testing.T, in *instance, user, password string) int {
	t.Helper()
	return len(listedIDs(t, in, user, password))
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
			{"unknown user name", "mallory", password},
			{"user name of another case", "Ada", password},
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
		log := in.log.String()
		if got := strings.Count(log, "sign-in refused: wrong password"); got != 4 {
			t.Errorf("%d wrong passwords logged, want 4 (two requests of two cases):\n%s", got, log)
		}
		if got := strings.Count(log, "sign-in refused: unknown user name"); got != 6 {
			t.Errorf("%d unknown user names logged, want 6 (two requests of three cases):\n%s", got, log)
		}
		if strings.Contains(log, "mallory") || strings.Contains(log, "Ada") {
			t.Errorf("the log holds the user name of a refused sign-in:\n%s", log)
		}
	})

	t.Run("page", func(t *testing.T) {
		r := dashCall(t, "GET", in.dash.url, "ada", password, "", "Accept", "text/html")
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /dashboard/ as a browser: %d %s", r.status, r.header.Get("Content-Type"))
		}
		for _, k := range in.keys {
			p := apikey.Default.DisplayPrefix(k.raw)
			if listed := strings.Contains(r.raw, p); listed != (k.merchant == "acme") {
				t.Errorf("acme's admin sees %s's demo key %s: %v", k.merchant, p, listed)
			}
			if strings.Contains(r.raw, k.raw) {
				t.Error("the page shows a raw key")
			}
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
		if rec, err := in.srv.keys.Verify(t.Context(), raw); err != nil || rec.Owner != "acme" {
			t.Errorf("ada's new key: owner %q, %v; want acme's", rec.Owner, err)
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
		before := keyCount(t, in, "ada", password)
		r := dashCall(t, "POST", keys, "ada", password, `{"name": "Forged", "mode": "live", "scopes": ["links:write"]}`,
			"Sec-Fetch-Site", "cross-site")
		if r.status != http.StatusForbidden {
			t.Fatalf("cross-site create: %d %s", r.status, r.raw)
		}
		if after := keyCount(t, in, "ada", password); after != before {
			t.Errorf("%d keys after a refused cross-site create, %d before", after, before)
		}
		r = dashCall(t, "POST", keys+"/"+in.keyID(t, "acme", "all scopes")+"/revoke", "ada", password, "", "Sec-Fetch-Site", "cross-site")
		if r.status != http.StatusForbidden {
			t.Fatalf("cross-site revoke: %d %s", r.status, r.raw)
		}
		if r := call(t, "GET", in.url+"/api/v1/links", key(t, in.keys, "acme", "all scopes").raw, ""); r.status != http.StatusOK {
			t.Errorf("the demo key after a refused cross-site revocation: %d", r.status)
		}
	})

	t.Run("the log", func(t *testing.T) {
		if raw == "" {
			t.Skip("no key was created")
		}
		log := in.log.String()
		for _, want := range []*regexp.Regexp{
			// The lifecycle logs the changes, with the operator as their actor.
			regexp.MustCompile(`msg="keyward: key.created" actor=operator:ada owner=acme key_id=` + regexp.QuoteMeta(id)),
			regexp.MustCompile(`msg="keyward: key.revoked" actor=operator:ada owner=acme key_id=` + regexp.QuoteMeta(id)),
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

// keyID returns the ID of a merchant's printed demo key, such as acme's
// "all scopes" key.
func (in *instance) keyID(t *testing.T, merchant, label string) string {
	t.Helper()
	return findKey(t, in.srv.keys, merchant, key(t, in.keys, merchant, label).raw).ID.String()
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

// TestOperatorLogin checks the demo sign-in alone: each user name signs in
// as its merchant's operator with its role, with the shared password only;
// any other user name is refused.
func TestOperatorLogin(t *testing.T) {
	const password = "the shared password"
	logs := new(syncbuf.Buffer)
	login := newOperatorLogin(password, demoUsers, slog.New(slog.NewTextHandler(logs, nil)))
	request := func(user, pass string) *http.Request {
		r := httptest.NewRequest("GET", "/keys", nil)
		r.SetBasicAuth(user, pass)
		return r
	}
	// The table the READMEs and the banner show, written out: a swap in
	// demoUsers fails here.
	for _, want := range []dashboard.Operator{
		{Name: "ada", Owner: "acme", Role: dashboard.Admin},
		{Name: "bob", Owner: "acme", Role: dashboard.Developer},
		{Name: "carol", Owner: "acme", Role: dashboard.Viewer},
		{Name: "grace", Owner: "globex", Role: dashboard.Admin},
		{Name: "dan", Owner: "globex", Role: dashboard.Viewer},
	} {
		op, err := login.authorize(request(want.Name, password))
		if err != nil || op != want {
			t.Errorf("%s signs in as %+v, %v; want %+v", want.Name, op, err, want)
		}
	}
	if len(demoUsers) != 5 {
		t.Errorf("%d demo users, want the 5 above", len(demoUsers))
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want error
	}{
		{"no credentials", httptest.NewRequest("GET", "/keys", nil), errNoCredentials},
		{"wrong password", request("ada", "not it"), errWrongPassword},
		{"wrong password, unknown user", request("eve", "not it"), errWrongPassword},
		{"unknown user", request("eve", password), errUnknownUser},
		{"no user name", request("", password), errUnknownUser},
		{"another case", request("ADA", password), errUnknownUser},
		{"a space around", request(" ada", password), errUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := login.authorize(tc.r)
			if !errors.Is(err, tc.want) || op != (dashboard.Operator{}) {
				t.Errorf("got %+v, %v; want no operator and %v", op, err, tc.want)
			}
		})
	}
}

// TestDemoUserRoles signs in to the running example as each kind of demo
// user and checks that the dashboard acts for that user's merchant, with
// that user's role.
func TestDemoUserRoles(t *testing.T) {
	const password = "operators' password, for the test"
	in := startInstance(t, config{addr: "127.0.0.1:0", dashboardPassword: password})
	keys := in.dash.url + "keys"
	testKey := `{"name": "Plugin", "mode": "test", "scopes": ["links:read"]}`
	liveKey := `{"name": "Server", "mode": "live", "scopes": ["sessions:write"]}`

	// ownerIDs returns the IDs of every key of owner, from the lifecycle.
	ownerIDs := func(t *testing.T, owner string) []string {
		t.Helper()
		page, err := in.srv.keys.Owner(owner).List(t.Context(), keyward.ListOptions{Limit: 1000})
		if err != nil || page.Next != "" {
			t.Fatalf("listing %s's keys: %v, next %q", owner, err, page.Next)
		}
		var ids []string
		for _, rec := range page.Keys {
			ids = append(ids, rec.ID.String())
		}
		slices.Sort(ids)
		return ids
	}
	// create creates a key through the dashboard as user and returns the
	// status, and the new key's owner if it was created.
	create := func(t *testing.T, user, body string) (int, string) {
		t.Helper()
		r := dashCall(t, "POST", keys, user, password, body)
		raw, _ := r.body["raw_key"].(string)
		if r.status != http.StatusCreated {
			if raw != "" {
				t.Errorf("a refused create answers a raw key")
			}
			return r.status, ""
		}
		rec, err := in.srv.keys.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("the key %s created: %v", user, err)
		}
		return r.status, rec.Owner
	}

	t.Run("viewer", func(t *testing.T) {
		before := ownerIDs(t, "acme")
		for _, body := range []string{testKey, liveKey} {
			if status, _ := create(t, "carol", body); status != http.StatusForbidden {
				t.Errorf("carol, acme's viewer, creates a key: %d, want 403", status)
			}
		}
		r := dashCall(t, "POST", keys+"/"+in.keyID(t, "acme", "all scopes")+"/revoke", "carol", password, "")
		if r.status != http.StatusForbidden {
			t.Errorf("carol revokes a key: %d, want 403", r.status)
		}
		if after := ownerIDs(t, "acme"); !slices.Equal(after, before) {
			t.Errorf("acme's keys changed under its viewer: %d, then %d", len(before), len(after))
		}
		if got := listedIDs(t, in, "carol", password); len(got) != len(before) {
			t.Errorf("carol sees %d keys, want acme's %d", len(got), len(before))
		}
		if status, _ := create(t, "dan", testKey); status != http.StatusForbidden {
			t.Errorf("dan, globex's viewer, creates a key: %d, want 403", status)
		}
	})
	t.Run("developer", func(t *testing.T) {
		if status, owner := create(t, "bob", testKey); status != http.StatusCreated || owner != "acme" {
			t.Errorf("bob creates a test key: %d, owner %q; want 201, acme", status, owner)
		}
		if status, _ := create(t, "bob", liveKey); status != http.StatusForbidden {
			t.Errorf("bob creates a live key: %d, want 403", status)
		}
	})
	t.Run("admin", func(t *testing.T) {
		for user, merchant := range map[string]string{"ada": "acme", "grace": "globex"} {
			if status, owner := create(t, user, liveKey); status != http.StatusCreated || owner != merchant {
				t.Errorf("%s creates a live key: %d, owner %q; want 201, %s", user, status, owner, merchant)
			}
		}
	})
	t.Run("each admin sees its merchant's keys only", func(t *testing.T) {
		for user, merchant := range map[string]string{"ada": "acme", "grace": "globex"} {
			got := listedIDs(t, in, user, password)
			slices.Sort(got)
			if want := ownerIDs(t, merchant); len(want) < 3 || !slices.Equal(got, want) {
				t.Errorf("%s lists %d keys, want %s's %d:\n%q\n%q", user, len(got), merchant, len(want), got, want)
			}
		}
	})
	t.Run("another merchant's key is not found", func(t *testing.T) {
		acme := key(t, in.keys, "acme", "all scopes")
		id := in.keyID(t, "acme", "all scopes")
		unknown := uuid.Must(uuid.NewV7()).String()
		for _, tc := range []struct{ method, path string }{
			{"GET", "keys/%s"},
			{"POST", "keys/%s/revoke"},
			{"POST", "keys/%s/rotate"},
		} {
			body := ""
			if strings.HasSuffix(tc.path, "rotate") {
				body = `{"overlap": "0s"}`
			}
			got := dashCall(t, tc.method, in.dash.url+fmt.Sprintf(tc.path, id), "grace", password, body)
			want := dashCall(t, tc.method, in.dash.url+fmt.Sprintf(tc.path, unknown), "grace", password, body)
			if got.status != http.StatusNotFound || got.status != want.status ||
				strings.ReplaceAll(got.raw, id, "ID") != strings.ReplaceAll(want.raw, unknown, "ID") {
				t.Errorf("%s %s as globex's admin: %d %s; want what an unknown ID gets: %d %s",
					tc.method, tc.path, got.status, got.raw, want.status, want.raw)
			}
		}
		if r := call(t, "GET", in.url+"/api/v1/links", acme.raw, ""); r.status != http.StatusOK {
			t.Errorf("acme's key after globex's admin tried to revoke and roll it: %d", r.status)
		}
	})
}
