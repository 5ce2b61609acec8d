package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
)

func TestNewRefusesMissingPieces(t *testing.T) {
	keys := newKeys(t)
	allow := func(*http.Request) (string, error) { return "op", nil }
	tests := []struct {
		name      string
		keys      *keyward.Keys
		authorize dashboard.AuthorizeFunc
		opts      []dashboard.Option
	}{
		{"no keys", nil, allow, nil},
		{"no authorization check", keys, nil, nil},
		{"nil logger", keys, allow, []dashboard.Option{dashboard.WithLogger(nil)}},
		{"nil audit hook", keys, allow, []dashboard.Option{dashboard.WithAudit(nil)}},
		{"nil unauthorized handler", keys, allow, []dashboard.Option{dashboard.WithUnauthorized(nil)}},
		{"nil cross-origin protection", keys, allow, []dashboard.Option{dashboard.WithCrossOriginProtection(nil)}},
		{"blank title", keys, allow, []dashboard.Option{dashboard.WithTitle("  ")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := dashboard.New(tt.keys, tt.authorize, tt.opts...)
			if err == nil || h != nil {
				t.Fatalf("New = %v, %v; want an error and no handler", h, err)
			}
		})
	}
}

func TestUnauthorizedRequestsAreRefused(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Existing", apikey.Live)
	id := rec.ID.String()
	tests := []struct {
		name   string
		call   call
		accept string
	}{
		{"list", call{method: "GET", path: "/dashboard/keys"}, ""},
		{"get", call{method: "GET", path: "/dashboard/keys/" + id}, ""},
		{"create", call{method: "POST", path: "/dashboard/keys", contentType: "application/json",
			body: `{"name":"x","mode":"live","scopes":["links:read"]}`}, ""},
		{"revoke", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke"}, ""},
		{"rotate", call{method: "POST", path: "/dashboard/keys/" + id + "/rotate", contentType: "application/json", body: `{"overlap":"1h"}`}, ""},
		{"asset", call{method: "GET", path: "/dashboard/assets/dashboard.css"}, ""},
		{"unknown path", call{method: "GET", path: "/dashboard/nothing"}, ""},
		{"page", call{method: "GET", path: "/dashboard/keys"}, "text/html"},
		{"form post", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke", contentType: "application/x-www-form-urlencoded"}, "text/html"},
	}
	for _, who := range []struct{ name, operator string }{
		{"no operator", ""},
		{"check returned no name", "nobody"},
	} {
		for _, tt := range tests {
			t.Run(who.name+"/"+tt.name, func(t *testing.T) {
				tt.call.header = http.Header{"X-Operator": {who.operator}}
				if tt.accept != "" {
					tt.call.header.Set("Accept", tt.accept)
				}
				w := f.do(tt.call)
				if tt.accept == "" {
					problemOf(t, w, http.StatusUnauthorized)
				} else {
					if w.Code != http.StatusUnauthorized {
						t.Fatalf("status = %d, want 401", w.Code)
					}
					if body := w.Body.String(); !strings.Contains(body, "Operator sign-in required") || strings.Contains(body, "X-Operator") {
						t.Errorf("the page should say sign-in is required and not show the check's error:\n%s", body)
					}
				}
			})
		}
	}
	if got := f.count(); got != 1 {
		t.Errorf("%d keys in the store after refused requests, want 1", got)
	}
	if r, err := f.keys.Get(context.Background(), rec.ID); err != nil || r.Revoked() || !r.ExpiresAt.IsZero() {
		t.Errorf("the key was changed by refused requests: %+v, %v", r, err)
	}
	if n := len(f.audited()); n != 0 {
		t.Errorf("%d audit events for refused requests, want 0", n)
	}
}

func TestWithUnauthorized(t *testing.T) {
	var gotErr error
	f := newFixture(t, dashboard.WithUnauthorized(func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.Header().Set("WWW-Authenticate", `Basic realm="dashboard"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	tests := []struct {
		name     string
		operator string
		want     func(error) bool
	}{
		{"check failed", "", func(err error) bool { return err != nil && err.Error() == "no X-Operator header" }},
		{"no operator named", "nobody", func(err error) bool { return errors.Is(err, dashboard.ErrNoOperator) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotErr = nil
			w := f.do(call{method: "GET", path: "/dashboard/keys", header: http.Header{"X-Operator": {tt.operator}}})
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("got %d with WWW-Authenticate %q; want the custom handler's answer", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if !tt.want(gotErr) {
				t.Errorf("the handler got error %v", gotErr)
			}
		})
	}
}

func TestCrossOriginRequestsCannotChangeKeys(t *testing.T) {
	trusted := http.NewCrossOriginProtection()
	if err := trusted.AddTrustedOrigin("https://admin.example"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, dashboard.WithCrossOriginProtection(trusted))
	body := `{"name":"x","mode":"test","scopes":["links:read"]}`
	tests := []struct {
		name   string
		method string
		header http.Header
		want   int
	}{
		{"cross-site post", "POST", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"same-site post from another origin", "POST", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"old browser, foreign Origin", "POST", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"same-origin post", "POST", http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusCreated},
		{"old browser, own Origin", "POST", http.Header{"Origin": {"http://keys.example"}}, http.StatusCreated},
		{"non-browser client", "POST", nil, http.StatusCreated},
		{"trusted origin", "POST", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://admin.example"}}, http.StatusCreated},
		{"cross-site read", "GET", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.count()
			c := call{method: tt.method, path: "/dashboard/keys", header: tt.header}
			if tt.method == "POST" {
				c.body, c.contentType = body, "application/json"
			}
			w := f.do(c)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			created := f.count() - before
			if wantCreated := tt.want == http.StatusCreated; (created == 1) != wantCreated {
				t.Errorf("%d keys created, want created=%v", created, wantCreated)
			}
			if tt.want == http.StatusForbidden {
				problemOf(t, w, http.StatusForbidden)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	w := f.api("POST", "/dashboard/keys", fmt.Sprintf(
		`{"name":"  Production server ","mode":"live","scopes":["sessions:write","links:read","sessions:write"],"expires_at":%q}`,
		expires.Format(time.RFC3339)))
	if w.Code != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", w.Code, w.Body)
	}
	for header, want := range map[string]string{
		"Content-Type":  "application/json",
		"Cache-Control": "no-store",
	} {
		if got := w.Header().Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
	out := decodeJSON[issuedOut](t, w)
	if got, want := w.Header().Get("Location"), "./keys/"+out.Key.ID.String(); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if m, err := apikey.Parse(out.RawKey); err != nil || m != apikey.Live {
		t.Fatalf("raw_key is not a live key: mode %v, %v", m, err)
	}
	if !strings.HasPrefix(out.RawKey, out.Key.Prefix) || len(out.Key.Prefix) != len("ck_live_")+apikey.DisplayLen {
		t.Errorf("prefix %q does not start the raw key", out.Key.Prefix)
	}
	got := out.Key
	if got.Name != "Production server" || got.Mode != "live" || got.Status != "active" ||
		!slices.Equal(got.Scopes, []string{"links:read", "sessions:write"}) ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.RevokedAt != nil || got.LastUsedAt != nil {
		t.Errorf("key = %+v", got)
	}
	if strings.Contains(w.Body.String(), `"hash"`) {
		t.Error("the response carries the hash")
	}
	rec, err := f.keys.Verify(context.Background(), out.RawKey)
	if err != nil || rec.ID != got.ID {
		t.Errorf("the raw key does not verify as the created key: %v", err)
	}
}

func TestCreateRefusesInvalidInput(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("n", apikey.MaxNameLen+1)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name        string
		body        string
		contentType string
		status      int
		field       string // "" for a problem without a field
	}{
		{"missing name", `{"mode":"live","scopes":["links:read"]}`, "", 400, "name"},
		{"blank name", `{"name":"   ","mode":"live","scopes":["links:read"]}`, "", 400, "name"},
		{"long name", `{"name":"` + long + `","mode":"live","scopes":["links:read"]}`, "", 400, "name"},
		{"control character in name", `{"name":"a\u0007b","mode":"live","scopes":["links:read"]}`, "", 400, "name"},
		{"missing mode", `{"name":"n","scopes":["links:read"]}`, "", 400, "mode"},
		{"unknown mode", `{"name":"n","mode":"prod","scopes":["links:read"]}`, "", 400, "mode"},
		{"missing scopes", `{"name":"n","mode":"live"}`, "", 400, "scopes"},
		{"empty scopes", `{"name":"n","mode":"live","scopes":[]}`, "", 400, "scopes"},
		{"unknown scope", `{"name":"n","mode":"live","scopes":["links:read","links:delete"]}`, "", 400, "scopes"},
		{"malformed scope", `{"name":"n","mode":"live","scopes":["LINKS"]}`, "", 400, "scopes"},
		{"expiry not a time", `{"name":"n","mode":"live","scopes":["links:read"],"expires_at":"tomorrow"}`, "", 400, "expires_at"},
		{"expiry in the past", `{"name":"n","mode":"live","scopes":["links:read"],"expires_at":"` + past + `"}`, "", 400, "expires_at"},
		{"name not a string", `{"name":5,"mode":"live","scopes":["links:read"]}`, "", 400, "name"},
		{"scopes not an array", `{"name":"n","mode":"live","scopes":"links:read"}`, "", 400, "scopes"},
		{"unknown field", `{"name":"n","mode":"live","scopes":["links:read"],"owner":"bob"}`, "", 400, "owner"},
		{"not JSON", `name=n`, "", 400, ""},
		{"truncated JSON", `{"name":"n"`, "", 400, ""},
		{"empty body", ``, "application/json", 400, ""},
		{"array body", `[1]`, "", 400, ""},
		{"trailing data", `{"name":"n","mode":"live","scopes":["links:read"]} {}`, "", 400, ""},
		{"wrong media type", `{"name":"n","mode":"live","scopes":["links:read"]}`, "text/plain", 415, ""},
		{"no media type", `{"name":"n","mode":"live","scopes":["links:read"]}`, "-", 415, ""},
		{"body too large", `{"name":"` + strings.Repeat("n", 70<<10) + `"}`, "", 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := call{method: "POST", path: "/dashboard/keys", body: tt.body, contentType: "application/json"}
			switch tt.contentType {
			case "-":
				c.contentType = ""
			case "":
			default:
				c.contentType = tt.contentType
			}
			w := f.do(c)
			p := problemOf(t, w, tt.status)
			if p.Field != tt.field {
				t.Errorf("field = %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
			if tt.field != "" && !strings.HasPrefix(p.Detail, tt.field+": ") {
				t.Errorf("detail %q does not name the field", p.Detail)
			}
			if w.Header().Get("Location") != "" {
				t.Error("a refused create has a Location")
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d keys created by invalid requests", n)
	}
	if n := len(f.audited()); n != 0 {
		t.Errorf("%d audit events for invalid requests", n)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var made []apikey.Record // oldest first
	for i := range 7 {
		m := apikey.Live
		if i%2 == 1 {
			m = apikey.Test
		}
		_, rec := f.create(fmt.Sprintf("key %d", i), m)
		made = append(made, rec)
	}
	if _, err := f.keys.Revoke(ctx, made[1].ID); err != nil { // test
		t.Fatal(err)
	}
	if _, err := f.keys.Revoke(ctx, made[4].ID); err != nil { // live
		t.Fatal(err)
	}
	// Rotation with no overlap: made[2] expires at once, and a new key
	// (the newest) replaces it.
	if _, _, err := f.keys.Rotate(ctx, made[2].ID, 0); err != nil {
		t.Fatal(err)
	}
	all := f.listAll(t, "")
	if len(all) != 8 {
		t.Fatalf("listed %d keys, want 8", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Errorf("not newest first at %d: %v after %v", i, all[i].CreatedAt, all[i-1].CreatedAt)
		}
	}
	for i, rec := range made {
		if got := all[len(all)-1-i].ID; got != rec.ID {
			t.Errorf("position %d: got %v, want %v", len(all)-1-i, got, rec.ID)
		}
	}
	byID := map[uuid.UUID]keyOut{}
	for _, k := range all {
		byID[k.ID] = k
	}
	if k := byID[made[1].ID]; k.Status != "revoked" || k.RevokedAt == nil {
		t.Errorf("revoked key listed as %+v", k)
	}
	if k := byID[made[2].ID]; k.Status != "expired" || k.ExpiresAt == nil {
		t.Errorf("expired key listed as %+v", k)
	}

	filters := []struct {
		query string
		want  func(keyOut) bool
		n     int
	}{
		{"mode=test", func(k keyOut) bool { return k.Mode == "test" }, 3},
		{"mode=live", func(k keyOut) bool { return k.Mode == "live" }, 5},
		{"status=revoked", func(k keyOut) bool { return k.Status == "revoked" }, 2},
		{"status=expired", func(k keyOut) bool { return k.Status == "expired" }, 1},
		{"status=active", func(k keyOut) bool { return k.Status == "active" }, 5},
		{"mode=live&status=active", func(k keyOut) bool { return k.Mode == "live" && k.Status == "active" }, 3},
	}
	for _, tt := range filters {
		t.Run(tt.query, func(t *testing.T) {
			got := f.listAll(t, tt.query)
			if len(got) != tt.n {
				t.Errorf("listed %d keys, want %d", len(got), tt.n)
			}
			for _, k := range got {
				if !tt.want(k) {
					t.Errorf("listed %+v", k)
				}
			}
		})
	}
}

// listAll walks the list two keys at a time and checks that the pages fit
// together: no key twice, a cursor on every page but the last.
func (f *fixture) listAll(t *testing.T, query string) []keyOut {
	t.Helper()
	var all []keyOut
	seen := map[uuid.UUID]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the list does not end")
		}
		q := "limit=2"
		if query != "" {
			q += "&" + query
		}
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		w := f.api("GET", "/dashboard/keys?"+q, "")
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET ?%s: %d %s", q, w.Code, w.Body)
		}
		page := decodeJSON[listOut](t, w)
		if len(page.Keys) > 2 {
			t.Fatalf("page of %d keys with limit=2", len(page.Keys))
		}
		for _, k := range page.Keys {
			if seen[k.ID] {
				t.Fatalf("key %v listed twice", k.ID)
			}
			seen[k.ID] = true
		}
		all = append(all, page.Keys...)
		if page.NextCursor == nil {
			return all
		}
		if *page.NextCursor == "" || len(page.Keys) == 0 {
			t.Fatalf("page with %d keys and cursor %q", len(page.Keys), *page.NextCursor)
		}
		cursor = *page.NextCursor
	}
}

func TestListRefusesInvalidQueries(t *testing.T) {
	f := newFixture(t)
	f.create("k", apikey.Live)
	tests := []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"mode=prod", "mode"},
		{"status=gone", "status"},
		{"cursor=not-a-cursor", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			p := problemOf(t, f.api("GET", "/dashboard/keys?"+tt.query, ""), http.StatusBadRequest)
			if p.Field != tt.field {
				t.Errorf("field = %q, want %q", p.Field, tt.field)
			}
		})
	}
	t.Run("limit above the maximum is lowered", func(t *testing.T) {
		w := f.api("GET", "/dashboard/keys?limit=5000", "")
		if w.Code != http.StatusOK || len(decodeJSON[listOut](t, w).Keys) != 1 {
			t.Errorf("got %d %s", w.Code, w.Body)
		}
	})
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	raw, rec := f.create("Production server", apikey.Live, scope.SessionsWrite, scope.LinksRead)
	if _, err := f.keys.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := f.api("GET", "/dashboard/keys/"+rec.ID.String(), "")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	got := decodeJSON[keyOut](t, w)
	if got.ID != rec.ID || got.Name != rec.Name || got.Prefix != rec.Prefix || got.Mode != "live" ||
		got.Status != "active" || got.LastUsedAt == nil || !got.CreatedAt.Equal(rec.CreatedAt) {
		t.Errorf("got %+v, want %+v", got, rec)
	}
	if strings.Contains(w.Body.String(), "hash") || strings.Contains(w.Body.String(), raw) {
		t.Error("the key's JSON carries its hash or raw key")
	}
	for _, id := range []string{uuid.NewString(), "not-an-id", uuid.Nil.String()} {
		t.Run(id, func(t *testing.T) {
			problemOf(t, f.api("GET", "/dashboard/keys/"+id, ""), http.StatusNotFound)
		})
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	raw, rec := f.create("Old laptop", apikey.Test)
	path := "/dashboard/keys/" + rec.ID.String() + "/revoke"

	w := f.api("POST", path, "")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	got := decodeJSON[keyOut](t, w)
	if got.ID != rec.ID || got.Status != "revoked" || got.RevokedAt == nil || time.Since(*got.RevokedAt) > time.Minute {
		t.Errorf("revoked key = %+v", got)
	}
	if _, err := f.keys.Verify(context.Background(), raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify after revocation = %v, want ErrRevoked", err)
	}

	t.Run("again", func(t *testing.T) {
		problemOf(t, f.api("POST", path, ""), http.StatusConflict)
		after, _ := f.keys.Get(context.Background(), rec.ID)
		if !after.RevokedAt.Equal(*got.RevokedAt) {
			t.Errorf("revocation time moved from %v to %v", got.RevokedAt, after.RevokedAt)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		problemOf(t, f.api("POST", "/dashboard/keys/"+uuid.NewString()+"/revoke", ""), http.StatusNotFound)
	})
	t.Run("a JSON body is ignored", func(t *testing.T) {
		_, other := f.create("Other", apikey.Test)
		w := f.api("POST", "/dashboard/keys/"+other.ID.String()+"/revoke", `{"reason":"leaked"}`)
		if w.Code != http.StatusOK {
			t.Errorf("status = %d; body %s", w.Code, w.Body)
		}
	})

	events := f.audited()
	if len(events) != 2 || events[0].Action != dashboard.KeyRevoked || events[0].Key.ID != rec.ID || events[0].Operator != "alice" {
		t.Errorf("audit events = %+v, want one revocation of %v by alice per revoked key", events, rec.ID)
	}
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	t.Run("with overlap", func(t *testing.T) {
		oldRaw, old := f.create("WooCommerce plugin", apikey.Live, scope.SessionsWrite, scope.CustomersWrite)
		before := time.Now()
		w := f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate", `{"overlap":"1h"}`)
		if w.Code != http.StatusCreated || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status = %d, Cache-Control %q; body %s", w.Code, w.Header().Get("Cache-Control"), w.Body)
		}
		out := decodeJSON[issuedOut](t, w)
		if out.Key.ID == old.ID || out.Key.Name != old.Name || out.Key.Mode != "live" ||
			!slices.Equal(out.Key.Scopes, old.Scopes.Strings()) || out.Key.Status != "active" {
			t.Errorf("new key = %+v", out.Key)
		}
		if got, want := w.Header().Get("Location"), "../../keys/"+out.Key.ID.String(); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if out.Replaced == nil || out.Replaced.ID != old.ID || out.Replaced.Status != "active" || out.Replaced.ExpiresAt == nil {
			t.Fatalf("replaced = %+v", out.Replaced)
		}
		if exp := *out.Replaced.ExpiresAt; exp.Before(before.Add(time.Hour).Add(-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
			t.Errorf("the old key expires at %v, want an hour from now", exp)
		}
		for name, raw := range map[string]string{"old": oldRaw, "new": out.RawKey} {
			if _, err := f.keys.Verify(ctx, raw); err != nil {
				t.Errorf("the %s key does not verify during the overlap: %v", name, err)
			}
		}
		events := f.audited()
		e := events[len(events)-1]
		if e.Action != dashboard.KeyRotated || e.Key.ID != out.Key.ID || e.Replaced.ID != old.ID ||
			e.Replaced.ExpiresAt.IsZero() || e.Operator != "alice" {
			t.Errorf("audit event = %+v", e)
		}
	})

	t.Run("without overlap", func(t *testing.T) {
		oldRaw, old := f.create("Backend", apikey.Test)
		w := f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate", `{"overlap":"0s"}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("status = %d; body %s", w.Code, w.Body)
		}
		out := decodeJSON[issuedOut](t, w)
		if out.Replaced == nil || out.Replaced.Status != "expired" {
			t.Errorf("replaced = %+v, want expired", out.Replaced)
		}
		if _, err := f.keys.Verify(ctx, oldRaw); !errors.Is(err, keyward.ErrExpired) {
			t.Errorf("Verify of the old key = %v, want ErrExpired", err)
		}
	})

	_, rec := f.create("Target", apikey.Live)
	path := "/dashboard/keys/" + rec.ID.String() + "/rotate"
	invalid := []struct{ name, body string }{
		{"missing overlap", `{}`},
		{"not a duration", `{"overlap":"soon"}`},
		{"negative", `{"overlap":"-1h"}`},
		{"a number", `{"overlap":3600}`},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			p := problemOf(t, f.api("POST", path, tt.body), http.StatusBadRequest)
			if p.Field != "overlap" {
				t.Errorf("field = %q, want overlap", p.Field)
			}
		})
	}
	t.Run("no body", func(t *testing.T) {
		problemOf(t, f.api("POST", path, ""), http.StatusUnsupportedMediaType)
	})
	if after, _ := f.keys.Get(ctx, rec.ID); !after.ExpiresAt.IsZero() {
		t.Errorf("refused rotations changed the key's expiry to %v", after.ExpiresAt)
	}

	t.Run("revoked key", func(t *testing.T) {
		_, r := f.create("Revoked", apikey.Live)
		if _, err := f.keys.Revoke(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		problemOf(t, f.api("POST", "/dashboard/keys/"+r.ID.String()+"/rotate", `{"overlap":"1h"}`), http.StatusConflict)
	})
	t.Run("unknown key", func(t *testing.T) {
		problemOf(t, f.api("POST", "/dashboard/keys/"+uuid.NewString()+"/rotate", `{"overlap":"1h"}`), http.StatusNotFound)
	})
}

func TestStoreOutageIs503AndNeverLeaks(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("k", apikey.Live)
	id := rec.ID.String()
	f.store.down.Store(true)
	tests := []struct {
		name string
		call call
	}{
		{"list", call{method: "GET", path: "/dashboard/keys"}},
		{"get", call{method: "GET", path: "/dashboard/keys/" + id}},
		{"create", call{method: "POST", path: "/dashboard/keys", contentType: "application/json", body: `{"name":"n","mode":"live","scopes":["links:read"]}`}},
		{"revoke", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke"}},
		{"rotate", call{method: "POST", path: "/dashboard/keys/" + id + "/rotate", contentType: "application/json", body: `{"overlap":"1h"}`}},
		{"page", call{method: "GET", path: "/dashboard/keys", header: http.Header{"Accept": {"text/html"}}}},
		{"form", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke", contentType: "application/x-www-form-urlencoded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(tt.call)
			if w.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503; body %s", w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), "10.9.8.7") || strings.Contains(w.Body.String(), "refused") {
				t.Errorf("the response shows the store's error: %s", w.Body)
			}
		})
	}
	if !strings.Contains(f.logs.String(), "10.9.8.7") {
		t.Error("the store's error was not logged")
	}
	if n := len(f.audited()); n != 0 {
		t.Errorf("%d audit events while the store is down", n)
	}
}

func TestRoutingErrors(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("k", apikey.Live)
	id := rec.ID.String()
	tests := []struct {
		name   string
		call   call
		status int
		allow  string
	}{
		{"unknown path", call{method: "GET", path: "/dashboard/nothing"}, 404, ""},
		{"unknown asset", call{method: "GET", path: "/dashboard/assets/none.js"}, 404, ""},
		{"delete a key", call{method: "DELETE", path: "/dashboard/keys/" + id}, 405, "GET, HEAD"},
		{"put the list", call{method: "PUT", path: "/dashboard/keys"}, 405, "GET, HEAD, POST"},
		{"patch revoke", call{method: "PATCH", path: "/dashboard/keys/" + id + "/revoke"}, 405, "GET, HEAD, POST"},
		{"post the new-key form", call{method: "POST", path: "/dashboard/keys/new"}, 405, "GET, HEAD"},
		{"dot segments", call{method: "GET", path: "/dashboard/keys/../keys", unmuxed: true}, 404, ""},
		{"double slash", call{method: "GET", path: "/dashboard//keys", unmuxed: true}, 404, ""},
		{"trailing slash", call{method: "GET", path: "/dashboard/keys/", unmuxed: true}, 404, ""},
		{"JSON client asks for a form", call{method: "GET", path: "/dashboard/keys/new"}, 406, ""},
		{"JSON client asks for a confirmation", call{method: "GET", path: "/dashboard/keys/" + id + "/revoke"}, 406, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(tt.call)
			problemOf(t, w, tt.status)
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("k", apikey.Live)
	for _, c := range []call{
		{method: "GET", path: "/dashboard/keys", header: http.Header{"Accept": {"text/html"}}},
		{method: "GET", path: "/dashboard/keys/" + rec.ID.String()},
		{method: "GET", path: "/dashboard/keys", header: http.Header{"X-Operator": {""}}},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			w := f.do(c)
			for header, want := range map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := w.Header().Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
			csp := w.Header().Get("Content-Security-Policy")
			for _, directive := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, directive) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, directive)
				}
			}
		})
	}
}

func TestAuditNeverHoldsSecrets(t *testing.T) {
	f := newFixture(t)
	w := f.api("POST", "/dashboard/keys", `{"name":"Audited","mode":"live","scopes":["events:read"]}`)
	created := decodeJSON[issuedOut](t, w)
	w = f.api("POST", "/dashboard/keys/"+created.Key.ID.String()+"/rotate", `{"overlap":"1h"}`)
	rotated := decodeJSON[issuedOut](t, w)
	f.api("POST", "/dashboard/keys/"+rotated.Key.ID.String()+"/revoke", "")

	events := f.audited()
	want := []struct {
		action dashboard.Action
		key    uuid.UUID
	}{
		{dashboard.KeyCreated, created.Key.ID},
		{dashboard.KeyRotated, rotated.Key.ID},
		{dashboard.KeyRevoked, rotated.Key.ID},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(events), len(want), events)
	}
	for i, e := range events {
		if e.Action != want[i].action || e.Key.ID != want[i].key || e.Operator != "alice" || e.Key.Prefix == "" {
			t.Errorf("event %d = %+v, want %s of %v by alice with a prefix", i, e, want[i].action, want[i].key)
		}
		if !e.Key.Hash.IsZero() || !e.Replaced.Hash.IsZero() {
			t.Errorf("event %d carries a hash", i)
		}
	}

	logs := f.logs.String()
	for _, raw := range []string{created.RawKey, rotated.RawKey} {
		if strings.Contains(logs, raw) {
			t.Error("a raw key was logged")
		}
		if strings.Contains(logs, apikey.HashOf(raw).String()) {
			t.Error("a key hash was logged")
		}
	}
	for _, line := range []string{
		"API key created", "API key rotated", "API key revoked",
		"audit.operator=alice", "audit.key.id=" + created.Key.ID.String(), "audit.key.prefix=" + created.Key.Prefix,
		"audit.replaced.id=" + created.Key.ID.String(),
	} {
		if !strings.Contains(logs, line) {
			t.Errorf("the log lacks %q:\n%s", line, logs)
		}
	}
}
