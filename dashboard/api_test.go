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
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
)

func TestNewRefusesMissingPieces(t *testing.T) {
	keys := newKeys(t)
	allow := func(*http.Request) (dashboard.Operator, error) {
		return dashboard.Operator{Name: "op", Owner: account, Role: dashboard.Admin}, nil
	}
	tests := []struct {
		name      string
		keys      *keyward.Keys
		authorize dashboard.AuthorizeFunc
		opts      []dashboard.Option
	}{
		{"no keys", nil, allow, nil},
		{"no authorization check", keys, nil, nil},
		{"nil logger", keys, allow, []dashboard.Option{dashboard.WithLogger(nil)}},
		{"nil unauthorized handler", keys, allow, []dashboard.Option{dashboard.WithUnauthorized(nil)}},
		{"nil cross-origin protection", keys, allow, []dashboard.Option{dashboard.WithCrossOriginProtection(nil)}},
		{"blank title", keys, allow, []dashboard.Option{dashboard.WithTitle("  ")}},
		{"nil limiter", keys, allow, []dashboard.Option{dashboard.WithLimiter(nil)}},
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

// invalidOperators are the headers of requests whose authorization fails
// or names an operator the dashboard cannot act for.
var invalidOperators = []struct {
	name   string
	header http.Header
	noOp   bool // the check returned an operator, an invalid one: ErrNoOperator
}{
	{"no operator", http.Header{"X-Operator": {""}}, false},
	{"check returned nothing", http.Header{"X-Operator": {"nobody"}}, true},
	{"no account", http.Header{"X-Account": {"-"}}, true},
	{"invalid account", http.Header{"X-Account": {"acct alice"}}, true},
	{"unknown role", http.Header{"X-Role": {"owner"}}, true},
	{"no role", http.Header{"X-Role": {""}}, true},
	// The name is the actor of the operator's changes in the audit trail.
	{"name with control characters", http.Header{"X-Operator": {"ali\x1bce"}}, true},
	{"name too long for an actor", http.Header{"X-Operator": {strings.Repeat("a", audit.MaxActorIDLen+1)}}, true},
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
		{"update", call{method: "PATCH", path: "/dashboard/keys/" + id, contentType: "application/json", body: `{"name":"x"}`}, ""},
		{"revoke", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke"}, ""},
		{"revoke all", call{method: "POST", path: "/dashboard/keys/revoke-all"}, ""},
		{"rotate", call{method: "POST", path: "/dashboard/keys/" + id + "/rotate", contentType: "application/json", body: `{"overlap":"1h"}`}, ""},
		{"asset", call{method: "GET", path: "/dashboard/assets/dashboard.css"}, ""},
		{"unknown path", call{method: "GET", path: "/dashboard/nothing"}, ""},
		{"page", call{method: "GET", path: "/dashboard/keys"}, "text/html"},
		{"form post", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke", contentType: "application/x-www-form-urlencoded"}, "text/html"},
	}
	for _, who := range invalidOperators {
		for _, tt := range tests {
			t.Run(who.name+"/"+tt.name, func(t *testing.T) {
				tt.call.header = who.header.Clone()
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
	if r := f.get(rec.ID); r.Revoked() || !r.ExpiresAt.IsZero() || r.Name != "Existing" {
		t.Errorf("the key was changed by refused requests: %+v", r)
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
	for _, who := range invalidOperators {
		t.Run(who.name, func(t *testing.T) {
			gotErr = nil
			w := f.do(call{method: "GET", path: "/dashboard/keys", header: who.header})
			if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("got %d with WWW-Authenticate %q; want the custom handler's answer", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			switch {
			case gotErr == nil:
				t.Error("the handler got no error")
			case who.noOp && !errors.Is(gotErr, dashboard.ErrNoOperator):
				t.Errorf("the handler got %v, want ErrNoOperator", gotErr)
			case !who.noOp && gotErr.Error() != "no X-Operator header":
				t.Errorf("the handler got %v, want the check's error", gotErr)
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
	expires := f.keys.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	w := f.api("POST", "/dashboard/keys", fmt.Sprintf(
		`{"name":"  Production server ","mode":"live","scopes":["sessions:write","links:read","sessions:write"],`+
			`"metadata":{"integration":"woocommerce","order_source":"web"},"expires_at":%q}`,
		expires.Format(time.RFC3339)))
	if w.Code != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", w.Code, w.Body)
	}
	for header, want := range map[string]string{
		"Content-Type":        "application/json",
		"Cache-Control":       "no-store",
		"Idempotent-Replayed": "",
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
	if got.Name != "Production server" || got.Mode != "live" || got.Status != "active" || got.Owner != account ||
		!slices.Equal(got.Scopes, []string{"links:read", "sessions:write"}) ||
		got.Metadata["integration"] != "woocommerce" || got.Metadata["order_source"] != "web" || len(got.Metadata) != 2 ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.RevokedAt != nil || got.LastUsedAt != nil ||
		got.Replaces != nil || got.ReplacedBy != nil {
		t.Errorf("key = %+v", got)
	}
	if strings.Contains(w.Body.String(), `"hash"`) {
		t.Error("the response carries the hash")
	}
	rec, err := f.keys.Verify(context.Background(), out.RawKey)
	if err != nil || rec.ID != got.ID || rec.Owner != account {
		t.Errorf("the raw key does not verify as the created key of the operator's account: %+v, %v", rec, err)
	}
	if v, _ := rec.Metadata.Get("integration"); v != "woocommerce" {
		t.Errorf("the stored metadata = %v", rec.Metadata)
	}
	if n := len(f.all(f.other)); n != 0 {
		t.Errorf("the other account has %d keys", n)
	}
}

// spoofedNames are names that display as something else: bidirectional
// overrides and isolates, and invisible characters.
var spoofedNames = []struct{ name, value string }{
	{"right-to-left override", "Production\u202egnp.exe"},
	{"zero-width space", "Prod\u200buction"},
	{"left-to-right isolate", "Prod\u2066uction\u2069"},
	{"byte order mark", "\ufeffProduction"},
	{"line separator", "Prod\u2028uction"},
}

func TestCreateRefusesInvalidInput(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("n", apikey.MaxNameLen+1)
	past := f.keys.Now().Add(-time.Hour).Format(time.RFC3339)
	tests := []struct {
		name        string
		body        string
		contentType string
		header      http.Header
		status      int
		field       string // "" for a problem without a field
	}{
		{"missing name", `{"mode":"live","scopes":["links:read"]}`, "", nil, 400, "name"},
		{"blank name", `{"name":"   ","mode":"live","scopes":["links:read"]}`, "", nil, 400, "name"},
		{"long name", `{"name":"` + long + `","mode":"live","scopes":["links:read"]}`, "", nil, 400, "name"},
		{"control character in name", `{"name":"a\u0007b","mode":"live","scopes":["links:read"]}`, "", nil, 400, "name"},
		{"missing mode", `{"name":"n","scopes":["links:read"]}`, "", nil, 400, "mode"},
		{"unknown mode", `{"name":"n","mode":"prod","scopes":["links:read"]}`, "", nil, 400, "mode"},
		{"missing scopes", `{"name":"n","mode":"live"}`, "", nil, 400, "scopes"},
		{"empty scopes", `{"name":"n","mode":"live","scopes":[]}`, "", nil, 400, "scopes"},
		{"unknown scope", `{"name":"n","mode":"live","scopes":["links:read","links:delete"]}`, "", nil, 400, "scopes"},
		{"malformed scope", `{"name":"n","mode":"live","scopes":["LINKS"]}`, "", nil, 400, "scopes"},
		{"expiry not a time", `{"name":"n","mode":"live","scopes":["links:read"],"expires_at":"tomorrow"}`, "", nil, 400, "expires_at"},
		{"expiry in the past", `{"name":"n","mode":"live","scopes":["links:read"],"expires_at":"` + past + `"}`, "", nil, 400, "expires_at"},
		{"metadata not an object", `{"name":"n","mode":"live","scopes":["links:read"],"metadata":["a"]}`, "", nil, 400, "metadata"},
		{"metadata value not a string", `{"name":"n","mode":"live","scopes":["links:read"],"metadata":{"a":1}}`, "", nil, 400, "metadata"},
		{"metadata key with brackets", `{"name":"n","mode":"live","scopes":["links:read"],"metadata":{"a[b]":"c"}}`, "", nil, 400, "metadata"},
		{"metadata key too long", `{"name":"n","mode":"live","scopes":["links:read"],"metadata":{"` + strings.Repeat("k", 41) + `":"c"}}`, "", nil, 400, "metadata"},
		{"idempotency key too long", `{"name":"n","mode":"live","scopes":["links:read"]}`, "",
			http.Header{"Idempotency-Key": {strings.Repeat("k", keyward.MaxIdempotencyKeyLen+1)}}, 400, "idempotency_key"},
		{"idempotency key with a space", `{"name":"n","mode":"live","scopes":["links:read"]}`, "",
			http.Header{"Idempotency-Key": {"two words"}}, 400, "idempotency_key"},
		{"name not a string", `{"name":5,"mode":"live","scopes":["links:read"]}`, "", nil, 400, "name"},
		{"scopes not an array", `{"name":"n","mode":"live","scopes":"links:read"}`, "", nil, 400, "scopes"},
		{"unknown field", `{"name":"n","mode":"live","scopes":["links:read"],"owner":"acct_mallory"}`, "", nil, 400, "owner"},
		{"not JSON", `name=n`, "", nil, 400, ""},
		{"truncated JSON", `{"name":"n"`, "", nil, 400, ""},
		{"empty body", ``, "application/json", nil, 400, ""},
		{"array body", `[1]`, "", nil, 400, ""},
		{"trailing data", `{"name":"n","mode":"live","scopes":["links:read"]} {}`, "", nil, 400, ""},
		{"wrong media type", `{"name":"n","mode":"live","scopes":["links:read"]}`, "text/plain", nil, 415, ""},
		{"no media type", `{"name":"n","mode":"live","scopes":["links:read"]}`, "-", nil, 415, ""},
		{"body too large", `{"name":"` + strings.Repeat("n", 70<<10) + `"}`, "", nil, 413, ""},
	}
	for _, s := range spoofedNames {
		tests = append(tests, struct {
			name        string
			body        string
			contentType string
			header      http.Header
			status      int
			field       string
		}{"name with " + s.name, fmt.Sprintf(`{"name":%q,"mode":"test","scopes":["links:read"]}`, s.value), "", nil, 400, "name"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := call{method: "POST", path: "/dashboard/keys", body: tt.body, contentType: "application/json", header: tt.header}
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
			if strings.HasPrefix(tt.name, "name with ") && !strings.Contains(p.Detail, "invisible or bidirectional formatting characters") {
				t.Errorf("detail %q does not say why the name is refused", p.Detail)
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

func TestCreateIsIdempotent(t *testing.T) {
	f := newFixture(t)
	body := `{"name":"Order sync","mode":"test","scopes":["events:read"],"metadata":{"team":"ops"}}`
	post := func(key, body string, header http.Header) *httptestResponse {
		t.Helper()
		h := http.Header{}
		if key != "" {
			h.Set("Idempotency-Key", key)
		}
		for k, v := range header {
			h[k] = v
		}
		return record(f.do(call{method: "POST", path: "/dashboard/keys", contentType: "application/json", body: body, header: h}))
	}

	first := post("order-sync-1", body, nil)
	if first.code != http.StatusCreated {
		t.Fatalf("first create: %d %s", first.code, first.body)
	}
	created := decodeBody[issuedOut](t, first)
	if created.RawKey == "" {
		t.Fatal("the first create shows no raw key")
	}

	t.Run("repeat", func(t *testing.T) {
		f.clock.Advance(time.Hour) // a retry, an hour later
		again := post("order-sync-1", body, nil)
		if again.code != http.StatusOK {
			t.Fatalf("repeat: %d %s, want 200", again.code, again.body)
		}
		if got := again.header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("Idempotent-Replayed = %q, want true", got)
		}
		if got, want := again.header.Get("Location"), "./keys/"+created.Key.ID.String(); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if strings.Contains(again.body, "raw_key") || strings.Contains(again.body, created.RawKey) ||
			strings.Contains(again.body, created.RawKey[len(created.Key.Prefix):]) {
			t.Errorf("the repeat shows a raw key: %s", again.body)
		}
		out := decodeBody[struct {
			Key     keyOut `json:"key"`
			Message string `json:"message"`
		}](t, again)
		if out.Key.ID != created.Key.ID || out.Key.Name != "Order sync" || out.Key.Status != "active" {
			t.Errorf("the repeat answers key %+v, want the first one", out.Key)
		}
		if !strings.Contains(out.Message, "shown once") {
			t.Errorf("message = %q, want it to say the raw key was shown once", out.Message)
		}
	})
	t.Run("same key, other parameters", func(t *testing.T) {
		w := f.do(call{method: "POST", path: "/dashboard/keys", contentType: "application/json",
			body:   `{"name":"Order sync","mode":"test","scopes":["events:read","links:read"]}`,
			header: http.Header{"Idempotency-Key": {"order-sync-1"}}})
		p := problemOf(t, w, http.StatusUnprocessableEntity)
		if p.Field != "idempotency_key" || !strings.HasPrefix(p.Detail, "idempotency_key: ") || !strings.Contains(p.Detail, "other parameters") {
			t.Errorf("problem = %+v", p)
		}
	})
	t.Run("same key, other account", func(t *testing.T) {
		w := post("order-sync-1", body, http.Header{"X-Account": {otherAccount}})
		if w.code != http.StatusCreated {
			t.Fatalf("the other account's create: %d %s, want 201: idempotency keys of accounts never meet", w.code, w.body)
		}
		if out := decodeBody[issuedOut](t, w); out.Key.ID == created.Key.ID || out.Key.Owner != otherAccount {
			t.Errorf("the other account got %+v", out.Key)
		}
	})
	t.Run("no idempotency key", func(t *testing.T) {
		for range 2 {
			if w := post("", body, nil); w.code != http.StatusCreated {
				t.Fatalf("create without an idempotency key: %d", w.code)
			}
		}
	})
	if got := len(f.all(f.owner)); got != 3 {
		t.Errorf("account has %d keys, want 3: one per idempotency key, and two without", got)
	}
	var creates int
	for _, e := range f.audited() {
		if e.Kind == audit.Created && e.Owner == account && e.Actor == byAlice {
			creates++
		}
	}
	if creates != 3 {
		t.Errorf("%d creations by alice audited for the account, want 3", creates)
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
		// Another account's keys, interleaved: never listed.
		f.createFor(f.other, keyward.CreateParams{Name: fmt.Sprintf("other %d", i), Mode: m})
	}
	if _, err := f.owner.Revoke(ctx, made[1].ID, keyward.RevokeParams{}); err != nil { // test
		t.Fatal(err)
	}
	if _, err := f.owner.Revoke(ctx, made[4].ID, keyward.RevokeParams{}); err != nil { // live
		t.Fatal(err)
	}
	// Rotation with no overlap: made[2] expires at once, and a new key
	// (the newest) replaces it.
	if _, _, err := f.owner.Rotate(ctx, made[2].ID, keyward.RotateParams{}); err != nil {
		t.Fatal(err)
	}
	all := f.listAll(t, "")
	if len(all) != 8 {
		t.Fatalf("listed %d keys, want 8", len(all))
	}
	for _, k := range all {
		if k.Owner != account || strings.HasPrefix(k.Name, "other") {
			t.Errorf("listed another account's key: %+v", k)
		}
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
	if k := byID[made[2].ID]; k.Status != "expired" || k.ExpiresAt == nil || k.ReplacedBy == nil || *k.ReplacedBy != all[0].ID {
		t.Errorf("rotated key listed as %+v", k)
	}
	if k := all[0]; k.Replaces == nil || *k.Replaces != made[2].ID {
		t.Errorf("the replacement is listed as %+v, want it to replace %v", k, made[2].ID)
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
	t.Run("as the other account", func(t *testing.T) {
		w := f.do(call{method: "GET", path: "/dashboard/keys", header: http.Header{"X-Account": {otherAccount}}})
		out := decodeJSON[listOut](t, w)
		if len(out.Keys) != 7 {
			t.Errorf("the other account lists %d keys, want its 7", len(out.Keys))
		}
		for _, k := range out.Keys {
			if k.Owner != otherAccount {
				t.Errorf("the other account lists %+v", k)
			}
		}
	})
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
	ctx := context.Background()
	raw, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Production server", Mode: apikey.Live,
		Scopes: scope.NewSet(scope.SessionsWrite, scope.LinksRead), Metadata: map[string]string{"region": "eu"}})
	if _, err := f.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w := f.api("GET", "/dashboard/keys/"+rec.ID.String(), "")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	got := decodeJSON[keyOut](t, w)
	if got.ID != rec.ID || got.Name != rec.Name || got.Prefix != rec.Prefix || got.Mode != "live" ||
		got.Status != "active" || got.LastUsedAt == nil || !got.CreatedAt.Equal(rec.CreatedAt) || got.Metadata["region"] != "eu" {
		t.Errorf("got %+v, want %+v", got, rec)
	}
	if strings.Contains(w.Body.String(), "hash") || strings.Contains(w.Body.String(), raw) {
		t.Error("the key's JSON carries its hash or raw key")
	}
	if w := f.api("HEAD", "/dashboard/keys/"+rec.ID.String(), ""); w.Code != http.StatusOK {
		t.Errorf("HEAD: %d", w.Code)
	}
	for _, id := range []string{uuid.NewString(), "not-an-id", uuid.Nil.String()} {
		t.Run(id, func(t *testing.T) {
			p := problemOf(t, f.api("GET", "/dashboard/keys/"+id, ""), http.StatusNotFound)
			if p.Detail != "No key has this ID." {
				t.Errorf("detail = %q", p.Detail)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Short-lived", Mode: apikey.Test,
			ExpiresAt: f.keys.Now().Add(time.Hour)})
		if got := decodeJSON[keyOut](t, f.api("GET", "/dashboard/keys/"+rec.ID.String(), "")); got.Status != "active" {
			t.Errorf("status before the expiry = %q", got.Status)
		}
		f.clock.Advance(time.Hour)
		if got := decodeJSON[keyOut](t, f.api("GET", "/dashboard/keys/"+rec.ID.String(), "")); got.Status != "expired" {
			t.Errorf("status at the expiry = %q, want expired", got.Status)
		}
	})
}

func TestUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	newKey := func() apikey.Record {
		_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Warehouse sync", Mode: apikey.Live,
			Scopes:    scope.NewSet(scope.LinksRead, scope.LinksWrite, scope.EventsRead),
			Metadata:  map[string]string{"team": "logistics", "ticket": "OPS-1"},
			ExpiresAt: f.keys.Now().Add(90 * 24 * time.Hour)})
		return rec
	}
	earlier := f.keys.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)

	for _, route := range []struct{ method, suffix string }{{"PATCH", ""}, {"POST", "/edit"}} {
		t.Run(route.method+" "+route.suffix, func(t *testing.T) {
			rec := newKey()
			path := "/dashboard/keys/" + rec.ID.String() + route.suffix
			w := f.api(route.method, path, fmt.Sprintf(
				`{"name":" Warehouse sync (EU) ","scopes":["links:read","events:read"],"metadata":{"team":"platform"},"expires_at":%q}`,
				earlier.Format(time.RFC3339)))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d; body %s", w.Code, w.Body)
			}
			got := decodeJSON[keyOut](t, w)
			if got.ID != rec.ID || got.Name != "Warehouse sync (EU)" || !slices.Equal(got.Scopes, []string{"events:read", "links:read"}) ||
				len(got.Metadata) != 1 || got.Metadata["team"] != "platform" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(earlier) ||
				got.Prefix != rec.Prefix || got.Mode != "live" || got.Status != "active" {
				t.Errorf("updated key = %+v", got)
			}
			stored := f.get(rec.ID)
			if stored.Name != got.Name || !stored.Scopes.Equal(scope.NewSet(scope.LinksRead, scope.EventsRead)) {
				t.Errorf("stored key = %+v", stored)
			}
			events := f.audited()
			e := events[len(events)-1]
			if e.Kind != audit.Updated || e.KeyID != rec.ID || e.Owner != account || e.Actor != byAlice ||
				!slices.Equal(changedFields(e), []string{"name", "scopes", "metadata", "expires_at"}) ||
				e.Changes[0] != (audit.Change{Field: "name", From: "Warehouse sync", To: "Warehouse sync (EU)"}) {
				t.Errorf("audit event = %+v", e)
			}
			if trail := f.trail(rec.ID); len(trail) == 0 || trail[0].Kind != audit.Updated || trail[0].Actor != byAlice {
				t.Errorf("the key's trail starts with %+v, want alice's update", trail)
			}
		})
	}

	t.Run("absent fields are unchanged", func(t *testing.T) {
		rec := newKey()
		before := len(f.audited())
		w := f.api("PATCH", "/dashboard/keys/"+rec.ID.String(), `{"metadata":{"team":"logistics","ticket":"OPS-2"}}`)
		got := decodeJSON[keyOut](t, w)
		if w.Code != http.StatusOK || got.Name != rec.Name || !slices.Equal(got.Scopes, rec.Scopes.Strings()) ||
			got.Metadata["ticket"] != "OPS-2" || !got.ExpiresAt.Equal(rec.ExpiresAt) {
			t.Errorf("%d %+v", w.Code, got)
		}
		if e := f.audited(); len(e) != before+1 || !slices.Equal(changedFields(e[len(e)-1]), []string{"metadata"}) {
			t.Errorf("audit events = %+v", e[before:])
		}
		w = f.api("PATCH", "/dashboard/keys/"+rec.ID.String(), `{"metadata":null}`)
		if got := decodeJSON[keyOut](t, w); len(got.Metadata) != 2 {
			t.Errorf("null metadata changed the metadata to %v", got.Metadata)
		}
		w = f.api("PATCH", "/dashboard/keys/"+rec.ID.String(), `{}`)
		if w.Code != http.StatusOK {
			t.Errorf("an empty update: %d", w.Code)
		}
		if e := f.audited(); len(e) != before+1 {
			t.Errorf("updates that changed nothing were audited: %+v", e[before+1:])
		}
	})
	t.Run("empty metadata clears it", func(t *testing.T) {
		rec := newKey()
		w := f.api("PATCH", "/dashboard/keys/"+rec.ID.String(), `{"metadata":{}}`)
		if got := decodeJSON[keyOut](t, w); w.Code != http.StatusOK || len(got.Metadata) != 0 {
			t.Errorf("%d %+v", w.Code, got)
		}
		if md := f.get(rec.ID).Metadata; !md.IsEmpty() {
			t.Errorf("stored metadata = %v", md)
		}
	})

	rec := newKey()
	path := "/dashboard/keys/" + rec.ID.String()
	invalid := []struct {
		name, body, field, detail string
	}{
		{"widening", `{"scopes":["links:read","customers:write"]}`, "scopes", "does not hold customers:write"},
		{"no scopes", `{"scopes":[]}`, "scopes", "at least one scope is required"},
		{"unknown scope", `{"scopes":["links:delete"]}`, "scopes", "links:delete"},
		{"empty name", `{"name":" "}`, "name", "name is required"},
		{"spoofed name", `{"name":"Warehouse\u202esync"}`, "name", "invisible or bidirectional formatting characters"},
		{"later expiry", `{"expires_at":"2099-01-01T00:00:00Z"}`, "expires_at", "can only move earlier"},
		{"past expiry", `{"expires_at":"2001-01-01T00:00:00Z"}`, "expires_at", "must be in the future"},
		{"invalid metadata", `{"metadata":{"":"x"}}`, "metadata", "a key is empty"},
		{"unknown field", `{"mode":"test"}`, "mode", "is not a field of this request"},
		{"owner is not a field", `{"owner":"acct_mallory"}`, "owner", "is not a field of this request"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			p := problemOf(t, f.api("PATCH", path, tt.body), http.StatusBadRequest)
			if p.Field != tt.field || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("problem = %+v, want field %s and a detail with %q", p, tt.field, tt.detail)
			}
		})
	}
	t.Run("a form body on PATCH", func(t *testing.T) {
		w := f.do(call{method: "PATCH", path: path, body: "name=x", contentType: "application/x-www-form-urlencoded"})
		problemOf(t, w, http.StatusUnsupportedMediaType)
	})
	if after := f.get(rec.ID); after.Name != rec.Name || !after.Scopes.Equal(rec.Scopes) ||
		!after.Metadata.Equal(rec.Metadata) || !after.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Errorf("refused updates changed the key: %+v", after)
	}

	t.Run("revoked key", func(t *testing.T) {
		rec := newKey()
		if _, err := f.owner.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		problemOf(t, f.api("PATCH", "/dashboard/keys/"+rec.ID.String(), `{"name":"Renamed"}`), http.StatusConflict)
		if got := f.get(rec.ID).Name; got != rec.Name {
			t.Errorf("a revoked key was renamed to %q", got)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		problemOf(t, f.api("PATCH", "/dashboard/keys/"+uuid.NewString(), `{"name":"x"}`), http.StatusNotFound)
	})
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
	if got.ID != rec.ID || got.Status != "revoked" || got.RevokedAt == nil || !got.RevokedAt.Equal(f.keys.Now()) {
		t.Errorf("revoked key = %+v, want revoked now, at %v", got, f.keys.Now())
	}
	if _, err := f.keys.Verify(context.Background(), raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify after revocation = %v, want ErrRevoked", err)
	}

	t.Run("again", func(t *testing.T) {
		f.clock.Advance(time.Minute)
		problemOf(t, f.api("POST", path, ""), http.StatusConflict)
		if after := f.get(rec.ID); !after.RevokedAt.Equal(*got.RevokedAt) {
			t.Errorf("revocation time moved from %v to %v", got.RevokedAt, after.RevokedAt)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		problemOf(t, f.api("POST", "/dashboard/keys/"+uuid.NewString()+"/revoke", ""), http.StatusNotFound)
	})
	t.Run("with a reason", func(t *testing.T) {
		_, other := f.create("Other", apikey.Test)
		w := f.api("POST", "/dashboard/keys/"+other.ID.String()+"/revoke", `{"reason":" Leaked in a support ticket "}`)
		if w.Code != http.StatusOK {
			t.Fatalf("status = %d; body %s", w.Code, w.Body)
		}
		got := decodeJSON[keyOut](t, w)
		if got.Status != "revoked" || got.RevokedReason == nil || *got.RevokedReason != "Leaked in a support ticket" {
			t.Errorf("revoked key = %+v", got)
		}
		if stored := f.get(other.ID).RevokedReason; stored != "Leaked in a support ticket" {
			t.Errorf("the stored reason = %q", stored)
		}
		if e := f.audited(); e[len(e)-1].Reason != "Leaked in a support ticket" {
			t.Errorf("the audit event's reason = %q", e[len(e)-1].Reason)
		}
		// The reason is kept: a second revocation changes nothing.
		problemOf(t, f.api("POST", "/dashboard/keys/"+other.ID.String()+"/revoke", `{"reason":"Another"}`), http.StatusConflict)
		if stored := f.get(other.ID).RevokedReason; stored != "Leaked in a support ticket" {
			t.Errorf("the reason after a second revocation = %q", stored)
		}
	})
	t.Run("without a reason", func(t *testing.T) {
		for _, body := range []string{"", "{}", `{"reason":""}`} {
			_, other := f.create("Other", apikey.Test)
			w := f.api("POST", "/dashboard/keys/"+other.ID.String()+"/revoke", body)
			if got := decodeJSON[keyOut](t, w); w.Code != http.StatusOK || got.Status != "revoked" || got.RevokedReason != nil {
				t.Errorf("body %q: %d %s", body, w.Code, w.Body)
			}
		}
		// A client that labels an empty body JSON, as some libraries do.
		_, other := f.create("Other", apikey.Test)
		w := f.do(call{method: "POST", path: "/dashboard/keys/" + other.ID.String() + "/revoke", contentType: "application/json"})
		if w.Code != http.StatusOK {
			t.Errorf("an empty JSON body: %d %s", w.Code, w.Body)
		}
	})
	t.Run("invalid body", func(t *testing.T) {
		_, other := f.create("Other", apikey.Test)
		path := "/dashboard/keys/" + other.ID.String() + "/revoke"
		tests := []struct {
			name, body, contentType string
			status                  int
			field, detail           string
		}{
			{"formatting characters", `{"reason":"Leaked\u202e"}`, "application/json", 400, "reason", "reason contains invisible or bidirectional formatting characters"},
			{"control characters", `{"reason":"a\u0000b"}`, "application/json", 400, "reason", "reason contains control characters"},
			{"too long", `{"reason":"` + strings.Repeat("r", apikey.MaxReasonLen+1) + `"}`, "application/json", 400, "reason", "reason is longer than 200 bytes"},
			{"not a string", `{"reason":7}`, "application/json", 400, "reason", "must be a string"},
			{"unknown field", `{"why":"x"}`, "application/json", 400, "why", "is not a field of this request"},
			{"not JSON", `reason`, "application/json", 400, "", ""},
			{"not a JSON body", `{"reason":"x"}`, "text/plain", 415, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := problemOf(t, f.do(call{method: "POST", path: path, body: tt.body, contentType: tt.contentType}), tt.status)
				if p.Field != tt.field || !strings.Contains(p.Detail, tt.detail) {
					t.Errorf("problem = %+v, want field %q and a detail with %q", p, tt.field, tt.detail)
				}
			})
		}
		if got := f.get(other.ID); got.Revoked() {
			t.Error("a refused request revoked the key")
		}
	})

	events := f.audited()
	if len(events) != 6 || events[0].Kind != audit.Revoked || events[0].KeyID != rec.ID || events[0].Reason != "" ||
		events[0].Actor != byAlice || events[0].Owner != account {
		t.Errorf("audit events = %+v, want one revocation of %v by alice per revoked key", events, rec.ID)
	}
	for _, e := range events {
		if e.Kind != audit.Revoked || e.Actor != byAlice || e.Reason != f.get(e.KeyID).RevokedReason {
			t.Errorf("audit event = %+v, want a revocation by alice with the key's reason", e)
		}
	}
}

func TestRotate(t *testing.T) {
	f := newFixtureWith(t, []keyward.Option{keyward.WithMaxOverlap(48 * time.Hour)})
	ctx := context.Background()

	t.Run("with overlap", func(t *testing.T) {
		oldRaw, old := f.createFor(f.owner, keyward.CreateParams{Name: "WooCommerce plugin", Mode: apikey.Live,
			Scopes: scope.NewSet(scope.SessionsWrite, scope.CustomersWrite), Metadata: map[string]string{"shop": "main"}})
		w := f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate", `{"overlap":"1h"}`)
		if w.Code != http.StatusCreated || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status = %d, Cache-Control %q; body %s", w.Code, w.Header().Get("Cache-Control"), w.Body)
		}
		out := decodeJSON[issuedOut](t, w)
		if out.Key.ID == old.ID || out.Key.Name != old.Name || out.Key.Mode != "live" || out.Key.Metadata["shop"] != "main" ||
			!slices.Equal(out.Key.Scopes, old.Scopes.Strings()) || out.Key.Status != "active" ||
			out.Key.Replaces == nil || *out.Key.Replaces != old.ID {
			t.Errorf("new key = %+v", out.Key)
		}
		if got, want := w.Header().Get("Location"), "../../keys/"+out.Key.ID.String(); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if out.Replaced == nil || out.Replaced.ID != old.ID || out.Replaced.Status != "active" || out.Replaced.ExpiresAt == nil ||
			out.Replaced.ReplacedBy == nil || *out.Replaced.ReplacedBy != out.Key.ID {
			t.Fatalf("replaced = %+v", out.Replaced)
		}
		if got, want := *out.Replaced.ExpiresAt, f.keys.Now().Add(time.Hour); !got.Equal(want) {
			t.Errorf("the old key expires at %v, want %v", got, want)
		}
		for name, raw := range map[string]string{"old": oldRaw, "new": out.RawKey} {
			if _, err := f.keys.Verify(ctx, raw); err != nil {
				t.Errorf("the %s key does not verify during the overlap: %v", name, err)
			}
		}
		// The lifecycle's events: the new key created, the old one rolled,
		// both by alice.
		events := f.audited()
		if len(events) < 2 {
			t.Fatalf("audit events = %+v, want the creation and the rotation", events)
		}
		created, rolled := events[len(events)-2], events[len(events)-1]
		if created.Kind != audit.Created || created.KeyID != out.Key.ID || created.Actor != byAlice ||
			!slices.Contains(created.Changes, audit.Change{Field: audit.FieldReplaces, To: old.ID.String()}) {
			t.Errorf("the creation's event = %+v", created)
		}
		if rolled.Kind != audit.Rotated || rolled.KeyID != old.ID || rolled.Actor != byAlice ||
			!slices.Contains(changedFields(rolled), audit.FieldExpiresAt) ||
			!slices.Contains(rolled.Changes, audit.Change{Field: audit.FieldReplacedBy, To: out.Key.ID.String()}) {
			t.Errorf("the rotation's event = %+v", rolled)
		}

		t.Run("again", func(t *testing.T) {
			p := problemOf(t, f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate", `{"overlap":"1h"}`), http.StatusConflict)
			if !strings.Contains(p.Detail, "already being replaced") {
				t.Errorf("detail = %q", p.Detail)
			}
		})
	})

	t.Run("without overlap, with an expiry", func(t *testing.T) {
		oldRaw, old := f.create("Backend", apikey.Test)
		expires := f.keys.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
		w := f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate",
			fmt.Sprintf(`{"overlap":"0s","expires_at":%q}`, expires.Format(time.RFC3339)))
		if w.Code != http.StatusCreated {
			t.Fatalf("status = %d; body %s", w.Code, w.Body)
		}
		out := decodeJSON[issuedOut](t, w)
		if out.Replaced == nil || out.Replaced.Status != "expired" {
			t.Errorf("replaced = %+v, want expired", out.Replaced)
		}
		if out.Key.ExpiresAt == nil || !out.Key.ExpiresAt.Equal(expires) {
			t.Errorf("the new key expires at %v, want %v", out.Key.ExpiresAt, expires)
		}
		if _, err := f.keys.Verify(ctx, oldRaw); !errors.Is(err, keyward.ErrExpired) {
			t.Errorf("Verify of the old key = %v, want ErrExpired", err)
		}
		t.Run("the expired key", func(t *testing.T) {
			problemOf(t, f.api("POST", "/dashboard/keys/"+old.ID.String()+"/rotate", `{"overlap":"1h"}`), http.StatusConflict)
		})
	})

	_, rec := f.create("Target", apikey.Live)
	path := "/dashboard/keys/" + rec.ID.String() + "/rotate"
	invalid := []struct{ name, body, field string }{
		{"missing overlap", `{}`, "overlap"},
		{"not a duration", `{"overlap":"soon"}`, "overlap"},
		{"negative", `{"overlap":"-1h"}`, "overlap"},
		{"above the maximum", `{"overlap":"49h"}`, "overlap"},
		{"a number", `{"overlap":3600}`, "overlap"},
		{"expiry in the past", `{"overlap":"1h","expires_at":"2001-01-01T00:00:00Z"}`, "expires_at"},
		{"expiry not a time", `{"overlap":"1h","expires_at":"soon"}`, "expires_at"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			p := problemOf(t, f.api("POST", path, tt.body), http.StatusBadRequest)
			if p.Field != tt.field {
				t.Errorf("field = %q, want %s", p.Field, tt.field)
			}
			if tt.name == "above the maximum" && !strings.Contains(p.Detail, "at most 48h") {
				t.Errorf("detail %q does not give the maximum", p.Detail)
			}
		})
	}
	t.Run("no body", func(t *testing.T) {
		problemOf(t, f.api("POST", path, ""), http.StatusUnsupportedMediaType)
	})
	if after := f.get(rec.ID); !after.ExpiresAt.IsZero() || after.ReplacedBy != uuid.Nil {
		t.Errorf("refused rotations changed the key: %+v", after)
	}

	t.Run("revoked key", func(t *testing.T) {
		_, r := f.create("Revoked", apikey.Live)
		if _, err := f.owner.Revoke(ctx, r.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		problemOf(t, f.api("POST", "/dashboard/keys/"+r.ID.String()+"/rotate", `{"overlap":"1h"}`), http.StatusConflict)
	})
	t.Run("unknown key", func(t *testing.T) {
		problemOf(t, f.api("POST", "/dashboard/keys/"+uuid.NewString()+"/rotate", `{"overlap":"1h"}`), http.StatusNotFound)
	})
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var raws []string
	for i, m := range []apikey.Mode{apikey.Live, apikey.Test, apikey.Live} {
		raw, _ := f.create(fmt.Sprintf("key %d", i), m)
		raws = append(raws, raw)
	}
	_, revoked := f.create("Revoked before", apikey.Test)
	if _, err := f.owner.Revoke(ctx, revoked.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	revokedAt := f.get(revoked.ID).RevokedAt
	otherRaw, _ := f.createFor(f.other, keyward.CreateParams{Name: "Other account", Mode: apikey.Live})

	w := f.api("POST", "/dashboard/keys/revoke-all", "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status = %d; body %s", w.Code, w.Body)
	}
	out := decodeJSON[listOut](t, w)
	if len(out.Keys) != 3 || out.NextCursor != nil {
		t.Fatalf("revoked %d keys, want 3: %s", len(out.Keys), w.Body)
	}
	for _, k := range out.Keys {
		if k.Status != "revoked" || k.RevokedAt == nil || !k.RevokedAt.Equal(f.keys.Now()) || k.Owner != account {
			t.Errorf("revoked key = %+v", k)
		}
	}
	for _, raw := range raws {
		if _, err := f.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("Verify of a key after revoke-all = %v, want ErrRevoked", err)
		}
	}
	if _, err := f.keys.Verify(ctx, otherRaw); err != nil {
		t.Errorf("the other account's key no longer verifies: %v", err)
	}
	if got := f.get(revoked.ID).RevokedAt; !got.Equal(revokedAt) {
		t.Errorf("the key revoked before was revoked again: %v, was %v", got, revokedAt)
	}
	// One event per key revoked, each by alice.
	events := f.audited()
	if len(events) != 3 {
		t.Errorf("audit events = %+v, want 3 revocations", events)
	}
	for _, e := range events {
		if e.Kind != audit.RevokedAll || e.Owner != account || e.Actor != byAlice || e.At != f.get(e.KeyID).RevokedAt {
			t.Errorf("audit event = %+v", e)
		}
	}
	if n := strings.Count(f.lifecycleLogs.String(), `msg="keyward: key.revoked_all" actor=operator:alice owner=`+account); n != 3 {
		t.Errorf("the lifecycle logged %d revocations by alice, want 3:\n%s", n, f.lifecycleLogs)
	}

	t.Run("again", func(t *testing.T) {
		w := f.api("POST", "/dashboard/keys/revoke-all", "")
		if out := decodeJSON[listOut](t, w); w.Code != http.StatusOK || len(out.Keys) != 0 || out.Keys == nil {
			t.Errorf("%d %s, want 200 and no keys", w.Code, w.Body)
		}
	})
	t.Run("a JSON client asks for the confirmation", func(t *testing.T) {
		problemOf(t, f.api("GET", "/dashboard/keys/revoke-all", ""), http.StatusNotAcceptable)
	})
	t.Run("with a reason", func(t *testing.T) {
		f.create("New key", apikey.Live)
		p := problemOf(t, f.api("POST", "/dashboard/keys/revoke-all", `{"reason":"\u2067Compromised"}`), http.StatusBadRequest)
		if p.Field != "reason" {
			t.Errorf("problem = %+v, want the field reason", p)
		}
		if out := decodeJSON[listOut](t, f.api("GET", "/dashboard/keys?status=active", "")); len(out.Keys) != 1 {
			t.Fatalf("a refused reason revoked keys: %d active, want 1", len(out.Keys))
		}
		w := f.api("POST", "/dashboard/keys/revoke-all", `{"reason":"Account compromised"}`)
		out := decodeJSON[listOut](t, w)
		if w.Code != http.StatusOK || len(out.Keys) != 1 || out.Keys[0].RevokedReason == nil || *out.Keys[0].RevokedReason != "Account compromised" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		e := f.audited()
		if last := e[len(e)-1]; last.Kind != audit.RevokedAll || last.Reason != "Account compromised" || last.Actor != byAlice {
			t.Errorf("audit event = %+v", last)
		}
		if logs := f.lifecycleLogs.String(); !strings.Contains(logs, `reason="Account compromised"`) {
			t.Error("the log lacks the reason")
		}
	})
}

func TestCanaries(t *testing.T) {
	f := newFixture(t)
	w := f.api("POST", "/dashboard/keys", `{"name":"Tripwire","mode":"live","scopes":["links:read"],"canary":true}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	out := decodeJSON[issuedOut](t, w)
	if out.Key.Canary == nil || !*out.Key.Canary || !f.get(out.Key.ID).Canary {
		t.Fatalf("created %+v, want a canary", out.Key)
	}
	if got := decodeJSON[keyOut](t, f.api("GET", "/dashboard/keys/"+out.Key.ID.String(), "")); got.Canary == nil || !*got.Canary {
		t.Errorf("GET shows %+v, want a canary", got)
	}
	for _, body := range []string{`{"name":"Plain","mode":"live","scopes":["links:read"]}`, `{"name":"Plain","mode":"live","scopes":["links:read"],"canary":false}`} {
		if got := decodeJSON[issuedOut](t, f.api("POST", "/dashboard/keys", body)); got.Key.Canary != nil {
			t.Errorf("%s made a canary", body)
		}
	}
	p := problemOf(t, f.api("POST", "/dashboard/keys", `{"name":"n","mode":"live","scopes":["links:read"],"canary":"yes"}`), http.StatusBadRequest)
	if p.Field != "canary" {
		t.Errorf("problem = %+v", p)
	}

	t.Run("a canary never authorizes, and its use is a trip", func(t *testing.T) {
		tr := f.trip(out.RawKey, keyward.Caller{Addr: "192.0.2.1:1234", UserAgent: "python-requests/2.32", Method: "GET", Path: "/v1/customers"})
		w := f.api("GET", "/dashboard/keys/"+out.Key.ID.String()+"/trips", "")
		got := decodeJSON[struct {
			Trips []struct {
				At    time.Time `json:"at"`
				Route string    `json:"route"`
			} `json:"trips"`
		}](t, w)
		if w.Code != http.StatusOK || len(got.Trips) != 1 || got.Trips[0].Route != "GET /v1/customers" || !got.Trips[0].At.Equal(tr.At) {
			t.Errorf("trips: %d %s", w.Code, w.Body)
		}
	})
	t.Run("a canary cannot be rolled", func(t *testing.T) {
		p := problemOf(t, f.api("POST", "/dashboard/keys/"+out.Key.ID.String()+"/rotate", `{"overlap":"1h"}`), http.StatusConflict)
		if !strings.Contains(p.Detail, "canary") || !strings.Contains(p.Detail, "create a new canary and revoke this one") {
			t.Errorf("detail = %q", p.Detail)
		}
		if got := f.get(out.Key.ID); got.ReplacedBy != uuid.Nil || !got.ExpiresAt.IsZero() {
			t.Errorf("a refused roll changed the canary: %+v", got)
		}
	})
	t.Run("an exposed key's JSON", func(t *testing.T) {
		raw, rec := f.create("Leaked", apikey.Live)
		if _, err := f.keys.ReportExposure(context.Background(), raw, keyward.Exposure{Source: "github", URL: "https://github.com/a/b"}); err != nil {
			t.Fatal(err)
		}
		got := decodeJSON[keyOut](t, f.api("GET", "/dashboard/keys/"+rec.ID.String(), ""))
		if got.Status != "revoked" || got.RevokedReason == nil || *got.RevokedReason != apikey.ReasonExposed ||
			got.Exposure == nil || got.Exposure.Source != "github" || got.Exposure.URL != "https://github.com/a/b" || got.Exposure.At.IsZero() {
			t.Errorf("the exposed key = %+v", got)
		}
	})
}

func TestStoreOutageIs503AndNeverLeaks(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("k", apikey.Live)
	id := rec.ID.String()
	f.store.down.Store(true)
	html := http.Header{"Accept": {"text/html"}}
	tests := []struct {
		name string
		call call
	}{
		{"list", call{method: "GET", path: "/dashboard/keys"}},
		{"get", call{method: "GET", path: "/dashboard/keys/" + id}},
		{"create", call{method: "POST", path: "/dashboard/keys", contentType: "application/json", body: `{"name":"n","mode":"live","scopes":["links:read"]}`}},
		{"update", call{method: "PATCH", path: "/dashboard/keys/" + id, contentType: "application/json", body: `{"name":"n"}`}},
		{"revoke", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke"}},
		{"revoke all", call{method: "POST", path: "/dashboard/keys/revoke-all"}},
		{"rotate", call{method: "POST", path: "/dashboard/keys/" + id + "/rotate", contentType: "application/json", body: `{"overlap":"1h"}`}},
		{"page", call{method: "GET", path: "/dashboard/keys", header: html}},
		{"edit page", call{method: "GET", path: "/dashboard/keys/" + id + "/edit", header: html}},
		{"revoke-all page", call{method: "GET", path: "/dashboard/keys/revoke-all", header: html}},
		{"trips", call{method: "GET", path: "/dashboard/keys/" + id + "/trips"}},
		{"trips page", call{method: "GET", path: "/dashboard/keys/" + id + "/trips", header: html}},
		{"revoke with a reason", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke", contentType: "application/json", body: `{"reason":"r"}`}},
		{"form", call{method: "POST", path: "/dashboard/keys/" + id + "/revoke", contentType: "application/x-www-form-urlencoded"}},
		{"create form", call{method: "POST", path: "/dashboard/keys", contentType: "application/x-www-form-urlencoded",
			body: "name=n&mode=test&scopes=links:read&idempotency_key=form_1"}},
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
		{"delete a key", call{method: "DELETE", path: "/dashboard/keys/" + id}, 405, "GET, HEAD, PATCH"},
		{"put a key", call{method: "PUT", path: "/dashboard/keys/" + id}, 405, "GET, HEAD, PATCH"},
		{"put the list", call{method: "PUT", path: "/dashboard/keys"}, 405, "GET, HEAD, POST"},
		{"patch revoke", call{method: "PATCH", path: "/dashboard/keys/" + id + "/revoke"}, 405, "GET, HEAD, POST"},
		{"patch edit", call{method: "PATCH", path: "/dashboard/keys/" + id + "/edit"}, 405, "GET, HEAD, POST"},
		{"post the new-key form", call{method: "POST", path: "/dashboard/keys/new"}, 405, "GET, HEAD"},
		{"patch the new-key form", call{method: "PATCH", path: "/dashboard/keys/new"}, 405, "GET, HEAD"},
		{"delete revoke-all", call{method: "DELETE", path: "/dashboard/keys/revoke-all"}, 405, "GET, HEAD, POST"},
		{"dot segments", call{method: "GET", path: "/dashboard/keys/../keys", unmuxed: true}, 404, ""},
		{"double slash", call{method: "GET", path: "/dashboard//keys", unmuxed: true}, 404, ""},
		{"trailing slash", call{method: "GET", path: "/dashboard/keys/", unmuxed: true}, 404, ""},
		{"JSON client asks for a form", call{method: "GET", path: "/dashboard/keys/new"}, 406, ""},
		{"JSON client asks for a confirmation", call{method: "GET", path: "/dashboard/keys/" + id + "/revoke"}, 406, ""},
		{"JSON client asks for the edit form", call{method: "GET", path: "/dashboard/keys/" + id + "/edit"}, 406, ""},
		{"post trips", call{method: "POST", path: "/dashboard/keys/" + id + "/trips"}, 405, "GET, HEAD"},
		{"delete trips", call{method: "DELETE", path: "/dashboard/keys/" + id + "/trips"}, 405, "GET, HEAD"},
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
		{method: "POST", path: "/dashboard/keys/" + rec.ID.String() + "/revoke", header: as(dashboard.Viewer)},
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
			for _, directive := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, directive) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, directive)
				}
			}
		})
	}
}

func TestAuditNeverHoldsSecrets(t *testing.T) {
	f := newFixture(t)
	w := f.api("POST", "/dashboard/keys", `{"name":"Audited","mode":"live","scopes":["events:read","links:read"],"metadata":{"customer_email":"pat@example.com"}}`)
	created := decodeJSON[issuedOut](t, w)
	f.api("PATCH", "/dashboard/keys/"+created.Key.ID.String(), `{"name":"Audited (renamed)","scopes":["events:read"],"metadata":{"customer_email":"kim@example.com"}}`)
	w = f.api("POST", "/dashboard/keys/"+created.Key.ID.String()+"/rotate", `{"overlap":"1h"}`)
	rotated := decodeJSON[issuedOut](t, w)
	f.api("POST", "/dashboard/keys/"+rotated.Key.ID.String()+"/revoke", "")
	f.api("POST", "/dashboard/keys/revoke-all", "")

	// The lifecycle's events, each by alice: the dashboard passes the
	// operator as the actor of every change.
	events := f.audited()
	want := []struct {
		kind audit.Kind
		key  uuid.UUID
	}{
		{audit.Created, created.Key.ID},
		{audit.Updated, created.Key.ID},
		{audit.Created, rotated.Key.ID},
		{audit.Rotated, created.Key.ID},
		{audit.Revoked, rotated.Key.ID},
		{audit.RevokedAll, created.Key.ID}, // in its overlap
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(events), len(want), events)
	}
	for i, e := range events {
		if e.Kind != want[i].kind || e.KeyID != want[i].key || e.Actor != byAlice || e.Owner != account || e.Prefix == "" {
			t.Errorf("event %d = %+v, want %s of %v by alice with a prefix", i, e, want[i].kind, want[i].key)
		}
		for _, c := range e.Changes {
			if c.Field == audit.FieldMetadata && (c.From != "" || c.To != "") {
				t.Errorf("event %d holds metadata values: %+v", i, c)
			}
		}
	}
	// The trail keeps the same, newest first.
	if trail := f.trail(created.Key.ID); len(trail) != 4 || trail[0].Kind != audit.RevokedAll || trail[3].Kind != audit.Created {
		t.Errorf("the first key's trail = %+v", trail)
	} else {
		for _, e := range trail {
			if e.Actor != byAlice {
				t.Errorf("the trail's %s entry names the actor %v, want alice", e.Kind, e.Actor)
			}
		}
	}

	logs := f.logs.String() + f.lifecycleLogs.String()
	for _, raw := range []string{created.RawKey, rotated.RawKey} {
		if strings.Contains(logs, raw) || strings.Contains(logs, raw[len(created.Key.Prefix):]) {
			t.Error("a raw key was logged")
		}
		if strings.Contains(logs, apikey.HashOf(raw).String()) {
			t.Error("a key hash was logged")
		}
	}
	if strings.Contains(logs, "pat@example.com") || strings.Contains(logs, "kim@example.com") {
		t.Error("metadata was logged")
	}
	// The changes are the lifecycle's to log, with alice as their actor;
	// the dashboard logs none of them itself.
	for _, line := range []string{
		`msg="keyward: key.created" actor=operator:alice owner=` + account + ` key_id=` + created.Key.ID.String() + ` prefix=` + created.Key.Prefix,
		`msg="keyward: key.updated" actor=operator:alice owner=` + account + ` key_id=` + created.Key.ID.String(),
		`name="Audited -> Audited (renamed)"`,
		`msg="keyward: key.rotated" actor=operator:alice`,
		`msg="keyward: key.revoked" actor=operator:alice owner=` + account + ` key_id=` + rotated.Key.ID.String(),
		`msg="keyward: key.revoked_all" actor=operator:alice`,
	} {
		if !strings.Contains(f.lifecycleLogs.String(), line) {
			t.Errorf("the lifecycle's log lacks %q:\n%s", line, f.lifecycleLogs)
		}
	}
	if strings.Contains(f.logs.String(), "API key") {
		t.Errorf("the dashboard logs changes itself:\n%s", f.logs)
	}
}

// changedFields returns the fields an event changed, in order.
func changedFields(e audit.Event) []string {
	var out []string
	for _, c := range e.Changes {
		out = append(out, c.Field)
	}
	return out
}
