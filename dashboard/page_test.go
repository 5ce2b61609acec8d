package dashboard_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// browserAccept is the Accept header of a browser's navigation.
const browserAccept = "text/html,application/xhtml+xml,*/*;q=0.8"

// page sends a browser's request as alice, an admin: Accept text/html,
// and forms encoded as browsers encode them.
func (f *fixture) page(method, path string, form url.Values) (int, http.Header, string) {
	f.t.Helper()
	return f.pageAs(nil, method, path, form)
}

// pageAs is page with more headers, such as the operator's role.
func (f *fixture) pageAs(header http.Header, method, path string, form url.Values) (int, http.Header, string) {
	f.t.Helper()
	c := call{method: method, path: path, header: http.Header{"Accept": {browserAccept}}}
	if method == "POST" {
		c.body, c.contentType = form.Encode(), "application/x-www-form-urlencoded"
		c.header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range header {
		c.header[k] = v
	}
	w := f.do(c)
	return w.Code, w.Header(), w.Body.String()
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, s := range unwanted {
		if strings.Contains(body, s) {
			t.Errorf("the page has %q", s)
		}
	}
}

var (
	rawKeyField = regexp.MustCompile(`id="raw-key" type="text" value="([^"]+)"`)
	tokenField  = regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`)
)

// rawKeyOf returns the raw key a page reveals, or "".
func rawKeyOf(body string) string {
	if m := rawKeyField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// tokenOf returns the one-time token of a create form.
func tokenOf(t *testing.T, body string) string {
	t.Helper()
	m := tokenField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the form has no one-time token:\n%s", body)
	}
	return m[1]
}

// fieldError returns the error shown next to a form field, or "".
func fieldError(body, id string) string {
	m := regexp.MustCompile(`<p class="error" id="` + id + `-error">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestIndexRedirectsToTheList(t *testing.T) {
	f := newFixture(t)
	for _, accept := range []string{"text/html", "application/json"} {
		w := f.do(call{method: "GET", path: "/dashboard/", header: http.Header{"Accept": {accept}}})
		// Relative, so that it stays under whatever prefix the dashboard
		// is mounted at.
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "./keys" {
			t.Errorf("Accept %s: %d to %q, want 303 to ./keys", accept, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestListPage(t *testing.T) {
	f := newFixture(t, dashboard.WithTitle("Acme Checkout"))
	ctx := context.Background()
	raw, used := f.create("Production server", apikey.Live, scope.SessionsWrite, scope.LinksRead)
	if _, err := f.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	used = f.get(used.ID)
	if used.LastUsedAt.IsZero() {
		t.Fatal("the use was not recorded")
	}
	_, revoked := f.create("Old <script>alert(1)</script>", apikey.Test)
	if _, err := f.owner.Revoke(ctx, revoked.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	revoked = f.get(revoked.ID)
	_, foreign := f.createFor(f.other, keyward.CreateParams{Name: "Mallory's server", Mode: apikey.Live})

	status, header, body := f.page("GET", "/dashboard/keys", nil)
	if status != http.StatusOK || header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s", status, header.Get("Content-Type"))
	}
	headings := regexp.MustCompile(`<th scope="col">([^<]+)</th>`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, h := range headings {
		got = append(got, h[1])
	}
	if want := "Name Prefix Mode Scopes Last used Created Status"; strings.Join(got, " ") != want {
		t.Errorf("columns = %q, want %q", got, want)
	}
	mustContain(t, body,
		`<base href="./">`,
		`<title>API keys · Acme Checkout</title>`,
		`Signed in as <strong>alice</strong>`,
		`<span class="account" title="Account">`+account+`</span>`,
		`<span class="badge role role-admin" title="Role">admin</span>`,
		`href="keys/new"`,
		`href="keys/revoke-all"`,
		`data-key-id="`+used.ID.String()+`" data-status="active"`,
		used.Prefix, "links:read", "sessions:write",
		`datetime="`+used.LastUsedAt.Format("2006-01-02T15:04:05Z07:00")+`"`,
		`data-key-id="`+revoked.ID.String()+`" data-status="revoked"`,
		`<span class="badge status-revoked">Revoked</span> <span class="when"><time datetime="`+revoked.RevokedAt.Format("2006-01-02T15:04:05Z07:00")+`"`,
		"Old &lt;script&gt;alert(1)&lt;/script&gt;",
		`href="keys/`+used.ID.String()+`/edit"`,
		`href="keys/`+used.ID.String()+`/revoke"`,
		`href="keys/`+used.ID.String()+`/rotate"`,
	)
	mustNotContain(t, body, "<script>alert(1)", raw,
		`href="keys/`+revoked.ID.String()+`/revoke"`, `href="keys/`+revoked.ID.String()+`/edit"`,
		foreign.ID.String(), foreign.Prefix, "Mallory")
}

func TestListPagePagesAndFilters(t *testing.T) {
	f := newFixture(t)
	for i := range 53 {
		f.create(fmt.Sprintf("key-%02d", i), apikey.Test)
	}
	f.create("live-key", apikey.Live)

	_, _, body := f.page("GET", "/dashboard/keys", nil)
	if n := strings.Count(body, "<tr data-key-id="); n != 50 {
		t.Errorf("first page has %d rows, want 50", n)
	}
	older := regexp.MustCompile(`id="older" href="([^"]+)"`).FindStringSubmatch(body)
	if older == nil {
		t.Fatal("no link to older keys")
	}
	next := strings.ReplaceAll(older[1], "&amp;", "&")
	_, _, body = f.page("GET", "/dashboard/"+next, nil)
	if n := strings.Count(body, "<tr data-key-id="); n != 4 {
		t.Errorf("second page has %d rows, want 4", n)
	}
	mustContain(t, body, "key-00", `href="keys">← Newest</a>`)
	if strings.Contains(body, `id="older"`) {
		t.Error("the last page links to older keys")
	}

	_, _, body = f.page("GET", "/dashboard/keys?mode=live", nil)
	if n := strings.Count(body, "<tr data-key-id="); n != 1 || !strings.Contains(body, "live-key") {
		t.Errorf("mode=live shows %d rows", n)
	}
	mustContain(t, body, `<option value="live" selected>Live</option>`)

	_, _, body = f.page("GET", "/dashboard/keys?status=revoked", nil)
	mustContain(t, body, "No keys match these filters.")

	status, _, body := f.page("GET", "/dashboard/keys?mode=prod", nil)
	if status != http.StatusBadRequest || !strings.Contains(body, "mode:") {
		t.Errorf("an invalid filter: %d", status)
	}
}

func TestCreateFromTheForm(t *testing.T) {
	f := newFixture(t)
	status, _, body := f.page("GET", "/dashboard/keys/new", nil)
	if status != http.StatusOK {
		t.Fatalf("form: %d", status)
	}
	tomorrow := f.keys.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	mustContain(t, body, `<base href="../">`, `action="keys"`, `name="name"`,
		`name="mode" value="live"`, `name="mode" value="test" checked`,
		`type="date" value="" min="`+tomorrow+`"`, "00:00 UTC on this date",
		`name="metadata_key"`, `name="metadata_value"`)
	if n := strings.Count(body, `name="metadata_key"`); n != 3 {
		t.Errorf("the form offers %d metadata rows, want 3", n)
	}
	for _, s := range scope.Default.Scopes() {
		mustContain(t, body, `name="scopes" value="`+string(s)+`"`)
	}
	mustContain(t, body, "Create checkout sessions") // the documentation's words
	token := tokenOf(t, body)
	if _, _, again := f.page("GET", "/dashboard/keys/new", nil); tokenOf(t, again) == token {
		t.Error("two forms have the same one-time token")
	}

	form := url.Values{"name": {"WooCommerce plugin"}, "mode": {"live"}, "scopes": {"sessions:write", "customers:write"},
		"expires_at": {"2031-06-01"}, "idempotency_key": {token},
		"metadata_key": {"integration", "", "order_source"}, "metadata_value": {"woocommerce", "", "web"}}
	status, header, body := f.page("POST", "/dashboard/keys", form)
	if status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", status, body)
	}
	if header.Get("Cache-Control") != "no-store" || header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("reveal headers: %v", header)
	}
	raw := rawKeyOf(body)
	if raw == "" {
		t.Fatalf("no raw key on the page:\n%s", body)
	}
	rec, err := f.keys.Verify(context.Background(), raw)
	if err != nil || rec.Name != "WooCommerce plugin" || rec.Mode != apikey.Live || rec.Owner != account ||
		!rec.Scopes.Equal(scope.NewSet(scope.SessionsWrite, scope.CustomersWrite)) ||
		!rec.ExpiresAt.Equal(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)) ||
		!rec.Metadata.Equal(apikey.MustMetadata(map[string]string{"integration": "woocommerce", "order_source": "web"})) {
		t.Fatalf("the revealed key verifies as %+v, %v", rec, err)
	}
	if n := strings.Count(body, raw); n != 1 {
		t.Errorf("the raw key is on the page %d times, want once", n)
	}
	for _, link := range regexp.MustCompile(`(?:href|action|src)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if strings.Contains(link[1], raw[len(rec.Prefix):]) {
			t.Errorf("the raw key is in a URL: %s", link[1])
		}
	}
	mustContain(t, body, "You will not see it again", `id="copy"`, `href="keys"`)
	if e := f.audited(); len(e) != 1 || e[0].Kind != audit.Created || e[0].KeyID != rec.ID || e[0].Actor != byAlice {
		t.Errorf("audit = %+v", e)
	}
}

func TestCreateFormPostedTwiceCreatesOneKey(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.page("GET", "/dashboard/keys/new", nil)
	form := url.Values{"name": {"Nightly job"}, "mode": {"test"}, "scopes": {"events:read"},
		"metadata_key": {"owner", ""}, "metadata_value": {"ops", ""}, "idempotency_key": {tokenOf(t, body)}}
	status, header, body := f.page("POST", "/dashboard/keys", form)
	raw := rawKeyOf(body)
	if status != http.StatusCreated || raw == "" {
		t.Fatalf("create: %d", status)
	}
	id := uuidOf(t, strings.TrimPrefix(header.Get("Location"), "./keys/"))

	// The reload of the page that showed the key posts the same form.
	f.clock.Advance(time.Minute)
	status, header, body = f.page("POST", "/dashboard/keys", form)
	if status != http.StatusOK {
		t.Fatalf("the repeat: %d, want 200\n%s", status, body)
	}
	if rawKeyOf(body) != "" || strings.Contains(body, raw) || strings.Contains(body, raw[len(apikey.Default.ModePrefix(apikey.Test)):]) {
		t.Error("the repeat shows a raw key")
	}
	if header.Get("Idempotent-Replayed") != "true" || header.Get("Cache-Control") != "no-store" {
		t.Errorf("the repeat's headers: %v", header)
	}
	mustContain(t, body, "API key already created", "Nothing new was created", "shown once and cannot be shown again",
		"Nightly job", `href="keys/`+id.String()+`"`)
	if n := len(f.all(f.owner)); n != 1 {
		t.Errorf("%d keys after posting the form twice, want 1", n)
	}
	if n := len(f.audited()); n != 1 {
		t.Errorf("%d audit events, want 1", n)
	}

	// The same form, changed: its token is spent, so the form comes back
	// with a new one; submitting that creates a second key.
	form.Set("name", "Nightly job (EU)")
	status, _, body = f.page("POST", "/dashboard/keys", form)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("the changed form: %d, want 422\n%s", status, body)
	}
	mustContain(t, body, "This form was already used to create a key with other values", `value="Nightly job (EU)"`)
	fresh := tokenOf(t, body)
	if fresh == form.Get("idempotency_key") {
		t.Fatal("the form came back with its spent token")
	}
	form.Set("idempotency_key", fresh)
	if status, _, _ = f.page("POST", "/dashboard/keys", form); status != http.StatusCreated {
		t.Errorf("the form with its new token: %d, want 201", status)
	}
	if n := len(f.all(f.owner)); n != 2 {
		t.Errorf("%d keys, want 2", n)
	}
}

func TestCreateFormKeepsInputOnError(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		form  url.Values
		field string // the field whose error is shown next to it
		error string
		keeps []string
	}{
		{"no scopes", url.Values{"name": {"Nightly <job>"}, "mode": {"live"}},
			"scopes", "At least one scope is required.", []string{`value="Nightly &lt;job&gt;"`, `value="live" checked`}},
		{"no name", url.Values{"mode": {"test"}, "scopes": {"events:read"}},
			"name", "Name is required.", []string{`value="test" checked`, `value="events:read" checked`, `aria-invalid="true"`}},
		{"no mode", url.Values{"name": {"n"}, "scopes": {"events:read", "links:read"}},
			"mode", "Choose Live or Test.", []string{`value="events:read" checked`, `value="links:read" checked`}},
		{"unknown scope", url.Values{"name": {"n"}, "mode": {"live"}, "scopes": {"links:delete"}},
			"scopes", `Scope "links:delete": unknown scope.`, []string{`value="n"`}},
		{"expiry in the past", url.Values{"name": {"n"}, "mode": {"test"}, "scopes": {"links:read"}, "expires_at": {"2001-02-03"}},
			"expires", "Must be in the future.", []string{`value="2001-02-03"`}},
		{"expiry not a date", url.Values{"name": {"n"}, "mode": {"test"}, "scopes": {"links:read"}, "expires_at": {"next week"}},
			"expires", "Must be a date such as 2030-01-31.", []string{`value="next week"`}},
		{"metadata key twice", url.Values{"name": {"n"}, "mode": {"test"}, "scopes": {"links:read"},
			"metadata_key": {"team", "team"}, "metadata_value": {"a", "b"}},
			"metadata", `The key "team" is given twice.`, []string{`name="metadata_key" value="team"`, `name="metadata_value" value="b"`}},
		{"metadata value without a key", url.Values{"name": {"n"}, "mode": {"test"}, "scopes": {"links:read"},
			"metadata_key": {""}, "metadata_value": {"orphan"}},
			"metadata", "Invalid metadata: a key is empty.", []string{`name="metadata_value" value="orphan"`}},
		{"metadata key with brackets", url.Values{"name": {"n"}, "mode": {"test"}, "scopes": {"links:read"},
			"metadata_key": {"a[b]"}, "metadata_value": {"c"}},
			"metadata", `Invalid metadata: key "a[b]" holds '[' or ']'.`, []string{`name="metadata_key" value="a[b]"`}},
	}
	for _, s := range spoofedNames {
		tests = append(tests, struct {
			name  string
			form  url.Values
			field string
			error string
			keeps []string
		}{"name with " + s.name, url.Values{"name": {s.value}, "mode": {"test"}, "scopes": {"links:read"}},
			"name", "Name contains invisible or bidirectional formatting characters.", []string{`value="test" checked`}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("idempotency_key", "form_"+strings.ReplaceAll(tt.name, " ", "-"))
			status, _, body := f.page("POST", "/dashboard/keys", tt.form)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", status)
			}
			if got := fieldError(body, tt.field); got != tt.error {
				t.Errorf("the error next to %s = %q, want %q", tt.field, got, tt.error)
			}
			mustContain(t, body, append([]string{"The key was not created"}, tt.keeps...)...)
			if got := tokenOf(t, body); got != tt.form.Get("idempotency_key") {
				t.Errorf("the form came back with token %q, want its own, %q", got, tt.form.Get("idempotency_key"))
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d keys created by refused forms", n)
	}
}

func TestRevokeFromThePage(t *testing.T) {
	f := newFixture(t)
	raw, rec := f.create("Checkout server", apikey.Live)
	id := rec.ID.String()

	status, _, body := f.page("GET", "/dashboard/keys/"+id+"/revoke", nil)
	if status != http.StatusOK {
		t.Fatalf("confirmation: %d", status)
	}
	mustContain(t, body, `<base href="../../">`, "Revoke “<bdi>Checkout server</bdi>”?", "401 Unauthorized",
		`action="keys/`+id+`/revoke"`, `id="confirm-revoke"`)

	status, header, _ := f.page("POST", "/dashboard/keys/"+id+"/revoke", url.Values{})
	if status != http.StatusSeeOther || header.Get("Location") != "../../keys?revoked="+id {
		t.Fatalf("revoke: %d to %q", status, header.Get("Location"))
	}
	if _, err := f.keys.Verify(context.Background(), raw); err == nil {
		t.Fatal("the key still verifies")
	}
	_, _, body = f.page("GET", "/dashboard/keys?revoked="+id, nil)
	mustContain(t, body, `class="notice success"`, "Revoked “Checkout server” ("+rec.Prefix+")")

	// A second click lands on the same list and changes nothing.
	status, header, _ = f.page("POST", "/dashboard/keys/"+id+"/revoke", url.Values{})
	if status != http.StatusSeeOther || header.Get("Location") != "../../keys?revoked="+id {
		t.Errorf("second revoke: %d to %q", status, header.Get("Location"))
	}
	if n := len(f.audited()); n != 1 {
		t.Errorf("%d audit events, want 1", n)
	}
	_, _, body = f.page("GET", "/dashboard/keys/"+id+"/revoke", nil)
	if strings.Contains(body, `id="confirm-revoke"`) || !strings.Contains(body, "already revoked") {
		t.Error("the confirmation of a revoked key still offers to revoke it")
	}

	status, _, _ = f.page("POST", "/dashboard/keys/"+uuid.NewString()+"/revoke", url.Values{})
	if status != http.StatusNotFound {
		t.Errorf("revoking an unknown key: %d", status)
	}
}

func TestRevokedNoticeComesFromTheStore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, active := f.create("Still active", apikey.Live)
	_, foreign := f.createFor(f.other, keyward.CreateParams{Name: "Mallory's key", Mode: apikey.Live})
	if _, err := f.other.Revoke(ctx, foreign.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"revoked=" + active.ID.String(),
		"revoked=" + uuid.NewString(),
		"revoked=" + url.QueryEscape("<b>forged</b>"),
		"revoked=" + foreign.ID.String(), // revoked, but another account's
		"revoked_all=" + strconv.FormatInt(f.keys.Now().UnixMicro(), 10),
		"revoked_all=" + strconv.FormatInt(f.get(active.ID).CreatedAt.UnixMicro(), 10),
		"revoked_all=" + strconv.FormatInt(f.keys.Now().UnixMicro(), 10) + "0",
		"revoked_all=" + strconv.FormatInt(f.must(f.other.Get(ctx, foreign.ID)).RevokedAt.UnixMicro(), 10),
		"revoked_all=lots",
		"revoked_all=none", // there is an active key
	} {
		_, _, body := f.page("GET", "/dashboard/keys?"+q, nil)
		if strings.Contains(body, `class="notice`) || strings.Contains(body, "forged") || strings.Contains(body, "Mallory") {
			t.Errorf("?%s shows a notice", q)
		}
	}
}

// must returns rec, or ends the test on err.
func (f *fixture) must(rec apikey.Record, err error) apikey.Record {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

func TestRotateFromThePage(t *testing.T) {
	f := newFixture(t)
	oldRaw, old := f.create("WooCommerce plugin", apikey.Live)
	id := old.ID.String()

	status, _, body := f.page("GET", "/dashboard/keys/"+id+"/rotate", nil)
	if status != http.StatusOK {
		t.Fatalf("rotate form: %d", status)
	}
	mustContain(t, body, `action="keys/`+id+`/rotate"`, `value="0s"`, `value="1h"`, `value="24h" checked`, `value="168h"`,
		`name="expires_at" type="date"`)

	status, _, body = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{})
	if status != http.StatusBadRequest || fieldError(body, "overlap") != "Choose when the current key stops working." {
		t.Errorf("no overlap: %d, error %q", status, fieldError(body, "overlap"))
	}
	status, _, body = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"1h"}, "expires_at": {"2001-01-01"}})
	if status != http.StatusBadRequest || fieldError(body, "expires") != "Must be in the future." {
		t.Errorf("an expiry in the past: %d, error %q", status, fieldError(body, "expires"))
	}
	mustContain(t, body, `value="1h" checked`, `value="2001-01-01"`)

	status, header, body := f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"1h"}, "expires_at": {"2031-12-31"}})
	if status != http.StatusCreated || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d, Cache-Control %q", status, header.Get("Cache-Control"))
	}
	raw := rawKeyOf(body)
	if raw == "" {
		t.Fatal("no raw key on the page")
	}
	for _, raw := range []string{oldRaw, raw} {
		if _, err := f.keys.Verify(context.Background(), raw); err != nil {
			t.Errorf("a key does not verify during the overlap: %v", err)
		}
	}
	newID := strings.TrimPrefix(header.Get("Location"), "../../keys/")
	if got := f.get(uuidOf(t, newID)).ExpiresAt; !got.Equal(time.Date(2031, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the new key expires at %v", got)
	}
	mustContain(t, body, "Key rolled", `The previous key <a href="keys/`+id+`"><code>`+old.Prefix+`</code></a> keeps working until`)

	// The two keys' pages link to each other.
	_, _, body = f.page("GET", "/dashboard/keys/"+newID, nil)
	mustContain(t, body, `<dt>Replaces</dt><dd><a class="keylink" href="keys/`+id+`"><bdi>WooCommerce plugin</bdi> <code>`+old.Prefix+`</code></a>`)
	_, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	mustContain(t, body, `<dt>Replaced by</dt><dd><a class="keylink" href="keys/`+newID+`">`)

	// The replaced key cannot be rolled again while its replacement lives.
	_, _, body = f.page("GET", "/dashboard/keys/"+id+"/rotate", nil)
	mustContain(t, body, `This key was rolled before: <a href="keys/`+newID+`">its replacement</a>`)
	status, _, body = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"0s"}})
	if status != http.StatusConflict || !strings.Contains(body, "already being replaced") {
		t.Errorf("rolling the replaced key again: %d", status)
	}

	_, other := f.create("Backend", apikey.Test)
	_, _, body = f.page("POST", "/dashboard/keys/"+other.ID.String()+"/rotate", url.Values{"overlap": {"0s"}})
	mustContain(t, body, `The previous key <a href="keys/`+other.ID.String()+`"><code>`+other.Prefix+`</code></a> has stopped working.`)
}

func TestRotateFormRespectsMaxOverlap(t *testing.T) {
	tests := []struct {
		max     time.Duration
		offered []string // the values, the checked one marked with *
		label   string
	}{
		{7 * 24 * time.Hour, []string{"0s", "1h", "24h*", "168h"}, ""},
		{2 * time.Hour, []string{"0s", "1h", "2h*"}, "In 2 hours, the longest allowed"},
		{24 * time.Hour, []string{"0s", "1h", "24h*"}, ""},
		{30 * time.Minute, []string{"0s", "30m*"}, "In 30 minutes, the longest allowed"},
		{72 * time.Hour, []string{"0s", "1h", "24h*", "72h"}, "In 3 days, the longest allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.max.String(), func(t *testing.T) {
			f := newFixtureWith(t, []keyward.Option{keyward.WithMaxOverlap(tt.max)})
			_, rec := f.create("k", apikey.Test)
			_, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String()+"/rotate", nil)
			var got []string
			for _, m := range regexp.MustCompile(`name="overlap" value="([^"]+)"( checked)?`).FindAllStringSubmatch(body, -1) {
				v := m[1]
				if m[2] != "" {
					v += "*"
				}
				got = append(got, v)
			}
			if strings.Join(got, " ") != strings.Join(tt.offered, " ") {
				t.Errorf("offered %v, want %v", got, tt.offered)
			}
			if tt.label != "" {
				mustContain(t, body, tt.label)
			}
			// Every offered choice is accepted.
			for _, v := range got {
				_, r := f.create("k", apikey.Test)
				if status, _, _ := f.page("POST", "/dashboard/keys/"+r.ID.String()+"/rotate",
					url.Values{"overlap": {strings.TrimSuffix(v, "*")}}); status != http.StatusCreated {
					t.Errorf("rolling with the offered overlap %s: %d", v, status)
				}
			}
			// A longer one, posted by hand, is refused next to the field.
			status, _, body := f.page("POST", "/dashboard/keys/"+rec.ID.String()+"/rotate",
				url.Values{"overlap": {(tt.max + time.Second).String()}})
			if status != http.StatusBadRequest || fieldError(body, "overlap") == "" {
				t.Errorf("an overlap above the maximum: %d", status)
			}
		})
	}
}

func TestKeyPage(t *testing.T) {
	f := newFixture(t)
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Production server", Mode: apikey.Live,
		Metadata:  map[string]string{"integration": "woocommerce", "note": "<b>bold</b>"},
		ExpiresAt: time.Date(2031, 9, 1, 0, 0, 0, 0, time.UTC)})
	status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	id := rec.ID.String()
	mustContain(t, body, `<base href="../">`, "<h1><bdi>Production server</bdi></h1>", rec.Prefix,
		`<dt>Expires</dt><dd><time datetime="2031-09-01T00:00:00Z"`,
		`<dt><code>integration</code></dt><dd>woocommerce</dd>`, `<dd>&lt;b&gt;bold&lt;/b&gt;</dd>`,
		`<dt>Replaces</dt><dd><span class="muted">None</span>`,
		`href="keys/`+id+`/edit"`, `href="keys/`+id+`/rotate"`, `href="keys/`+id+`/revoke"`)
	mustNotContain(t, body, "<b>bold</b>")

	status, _, _ = f.page("GET", "/dashboard/keys/"+uuid.NewString(), nil)
	if status != http.StatusNotFound {
		t.Errorf("unknown key page: %d", status)
	}
}

func TestEditFromThePage(t *testing.T) {
	f := newFixture(t)
	raw, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Warehouse sync", Mode: apikey.Test,
		Scopes:   scope.NewSet(scope.LinksRead, scope.LinksWrite, scope.EventsRead),
		Metadata: map[string]string{"team": "logistics", "ticket": "OPS-1"}})
	id := rec.ID.String()
	path := "/dashboard/keys/" + id + "/edit"

	status, _, body := f.page("GET", path, nil)
	if status != http.StatusOK {
		t.Fatalf("edit form: %d", status)
	}
	mustContain(t, body, `<base href="../../">`, `action="keys/`+id+`/edit"`, `name="name" type="text" value="Warehouse sync"`,
		`name="metadata_key" value="team"`, `name="metadata_value" value="logistics"`,
		`name="metadata_key" value="ticket"`, `name="metadata_value" value="OPS-1"`,
		"Scopes can only be narrowed: to grant more, create a new key.")
	var offered []string
	for _, m := range regexp.MustCompile(`name="scopes" value="([^"]+)" checked`).FindAllStringSubmatch(body, -1) {
		offered = append(offered, m[1])
	}
	if strings.Join(offered, " ") != "events:read links:read links:write" || strings.Count(body, `name="scopes"`) != 3 {
		t.Errorf("the form offers the scopes %v (%d boxes), want the key's three, checked", offered, strings.Count(body, `name="scopes"`))
	}
	if n := strings.Count(body, `name="metadata_key"`); n != 2+3 {
		t.Errorf("%d metadata rows, want the 2 pairs and 3 empty rows", n)
	}

	t.Run("errors are shown next to their fields", func(t *testing.T) {
		tests := []struct {
			name  string
			form  url.Values
			field string
			error string
			keeps []string
		}{
			{"spoofed name", url.Values{"name": {"Warehouse\u202esync"}, "scopes": {"links:read"}},
				"name", "Name contains invisible or bidirectional formatting characters.", []string{`value="links:read" checked`}},
			{"empty name", url.Values{"name": {" "}, "scopes": {"links:read"}}, "name", "Name is required.", nil},
			{"no scopes", url.Values{"name": {"Renamed"}}, "scopes", "At least one scope is required.", []string{`value="Renamed"`}},
			{"widening", url.Values{"name": {"Renamed"}, "scopes": {"links:read", "customers:write"}},
				"scopes", "The key does not hold customers:write, and scopes can only be narrowed; create a new key to grant more.", nil},
			{"metadata key twice", url.Values{"name": {"Renamed"}, "scopes": {"links:read"},
				"metadata_key": {"a", "a"}, "metadata_value": {"1", "2"}},
				"metadata", `The key "a" is given twice.`, []string{`name="metadata_value" value="2"`}},
			{"later expiry", url.Values{"name": {"Renamed"}, "scopes": {"links:read"}, "expires_at": {"2001-01-01"}},
				"expires", "Must be in the future.", []string{`value="2001-01-01"`}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, _, body := f.page("POST", path, tt.form)
				if status != http.StatusBadRequest {
					t.Fatalf("status = %d, want 400", status)
				}
				if got := fieldError(body, tt.field); got != tt.error {
					t.Errorf("the error next to %s = %q, want %q", tt.field, got, tt.error)
				}
				mustContain(t, body, append([]string{"The key was not changed"}, tt.keeps...)...)
			})
		}
		if after := f.get(rec.ID); after.Name != rec.Name || !after.Scopes.Equal(rec.Scopes) || !after.Metadata.Equal(rec.Metadata) {
			t.Errorf("refused edits changed the key: %+v", after)
		}
	})

	// Narrow a scope, rename, change the metadata.
	form := url.Values{"name": {"Warehouse sync (EU)"}, "scopes": {"links:read", "events:read"},
		"metadata_key": {"team", "ticket", "region", ""}, "metadata_value": {"logistics", "", "eu", ""}}
	status, header, _ := f.page("POST", path, form)
	if status != http.StatusSeeOther || header.Get("Location") != "../../keys/"+id {
		t.Fatalf("edit: %d to %q", status, header.Get("Location"))
	}
	after := f.get(rec.ID)
	if after.Name != "Warehouse sync (EU)" || !after.Scopes.Equal(scope.NewSet(scope.LinksRead, scope.EventsRead)) ||
		!after.Metadata.Equal(apikey.MustMetadata(map[string]string{"team": "logistics", "ticket": "", "region": "eu"})) {
		t.Errorf("edited key = %+v, metadata %v", after, after.Metadata)
	}
	if got, err := f.keys.Verify(context.Background(), raw); err != nil || got.Scopes.Has(scope.LinksWrite) {
		t.Errorf("the key verifies with scopes %v (error %v), want links:write gone", got.Scopes, err)
	}
	_, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	mustContain(t, body, "<h1><bdi>Warehouse sync (EU)</bdi></h1>", `<dt><code>region</code></dt><dd>eu</dd>`)

	// Clearing every row clears the metadata.
	form = url.Values{"name": {"Warehouse sync (EU)"}, "scopes": {"links:read"}, "metadata_key": {"", ""}, "metadata_value": {"", ""}}
	if status, _, _ := f.page("POST", path, form); status != http.StatusSeeOther {
		t.Fatalf("clearing the metadata: %d", status)
	}
	if md := f.get(rec.ID).Metadata; !md.IsEmpty() {
		t.Errorf("metadata after clearing every row = %v", md)
	}
	events := f.audited()
	if len(events) != 2 || events[0].Kind != audit.Updated || events[1].Kind != audit.Updated ||
		strings.Join(changedFields(events[0]), " ") != "name scopes metadata" || events[0].Actor != byAlice || events[1].Actor != byAlice {
		t.Errorf("audit events = %+v", events)
	}

	t.Run("a revoked key", func(t *testing.T) {
		if _, err := f.owner.Revoke(context.Background(), rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		status, _, body := f.page("GET", path, nil)
		if status != http.StatusOK || strings.Contains(body, `id="save"`) || !strings.Contains(body, "revoked and cannot be changed") {
			t.Errorf("the edit form of a revoked key: %d, offers to save: %v", status, strings.Contains(body, `id="save"`))
		}
		status, _, _ = f.page("POST", path, url.Values{"name": {"x"}, "scopes": {"links:read"}})
		if status != http.StatusConflict {
			t.Errorf("editing a revoked key: %d, want 409", status)
		}
	})
}

func TestRevokeAllFromThePage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i, m := range []apikey.Mode{apikey.Live, apikey.Test, apikey.Test} {
		f.create(fmt.Sprintf("key %d", i), m)
	}
	_, gone := f.create("Gone", apikey.Live)
	if _, err := f.owner.Revoke(ctx, gone.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	_, foreign := f.createFor(f.other, keyward.CreateParams{Name: "Mallory's key", Mode: apikey.Live})

	status, _, body := f.page("GET", "/dashboard/keys/revoke-all", nil)
	if status != http.StatusOK {
		t.Fatalf("confirmation: %d", status)
	}
	mustContain(t, body, `<base href="../">`, "Revoke all keys of "+account+"?", "This revokes <strong>3 active keys</strong>",
		`action="keys/revoke-all"`, `id="confirm-revoke-all"`)

	f.clock.Advance(time.Second)
	status, header, _ := f.page("POST", "/dashboard/keys/revoke-all", url.Values{})
	want := "../keys?revoked_all=" + strconv.FormatInt(f.keys.Now().UnixMicro(), 10)
	if status != http.StatusSeeOther || header.Get("Location") != want {
		t.Fatalf("revoke all: %d to %q, want 303 to %q", status, header.Get("Location"), want)
	}
	_, _, body = f.page("GET", "/dashboard/"+strings.TrimPrefix(want, "../"), nil)
	mustContain(t, body, `class="notice success"`, "Revoked all active keys: 3 keys.")
	if n := strings.Count(body, `data-status="revoked"`); n != 4 {
		t.Errorf("%d keys listed revoked, want 4", n)
	}
	if rec := f.must(f.other.Get(ctx, foreign.ID)); rec.Revoked() {
		t.Error("revoke-all revoked another account's key")
	}

	// Once more: nothing is left to revoke.
	status, _, body = f.page("GET", "/dashboard/keys/revoke-all", nil)
	if status != http.StatusOK || strings.Contains(body, `id="confirm-revoke-all"`) {
		t.Errorf("the confirmation offers to revoke nothing: %d", status)
	}
	mustContain(t, body, "nothing to revoke")
	status, header, _ = f.page("POST", "/dashboard/keys/revoke-all", url.Values{})
	if status != http.StatusSeeOther {
		t.Fatalf("revoke all again: %d", status)
	}
	_, _, body = f.page("GET", "/dashboard/"+strings.TrimPrefix(header.Get("Location"), "../"), nil)
	mustContain(t, body, `class="notice info"`, "No key is active: there was nothing to revoke.")
}

func TestAssets(t *testing.T) {
	f := newFixture(t, dashboard.WithLimiter(limit.NewMemory()))
	for name, ctype := range map[string]string{"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"} {
		t.Run(name, func(t *testing.T) {
			w := f.do(call{method: "GET", path: "/dashboard/assets/" + name})
			etag := w.Header().Get("ETag")
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || etag == "" || w.Body.Len() == 0 {
				t.Fatalf("%d %q etag %q", w.Code, w.Header().Get("Content-Type"), etag)
			}
			w = f.do(call{method: "GET", path: "/dashboard/assets/" + name, header: http.Header{"If-None-Match": {etag}}})
			if w.Code != http.StatusNotModified {
				t.Errorf("revalidation: %d, want 304", w.Code)
			}
		})
	}
	// The pages load nothing from elsewhere, and have no inline script or
	// style, which the Content-Security-Policy would block.
	_, rec := f.create("k", apikey.Live)
	raw, canary := f.createFor(f.owner, keyward.CreateParams{Name: "c", Mode: apikey.Test, Canary: true})
	f.trip(raw, keyward.Caller{Addr: "192.0.2.1:1", UserAgent: "ua", Method: "GET", Path: "/"})
	_, lim := f.createFor(f.owner, keyward.CreateParams{Name: "l", Mode: apikey.Test, Policy: limited()})
	for _, path := range []string{"keys", "keys/new", "keys/" + rec.ID.String(), "keys/" + rec.ID.String() + "/edit",
		"keys/" + lim.ID.String(), "keys/" + lim.ID.String() + "/edit",
		"keys/" + rec.ID.String() + "/rotate", "keys/" + rec.ID.String() + "/revoke", "keys/revoke-all",
		"keys/" + canary.ID.String(), "keys/" + canary.ID.String() + "/trips", "keys/" + canary.ID.String() + "/rotate"} {
		_, _, body := f.page("GET", "/dashboard/"+path, nil)
		for _, link := range regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
			if strings.Contains(link[1], "//") {
				t.Errorf("%s refers to another host: %s", path, link[1])
			}
		}
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="| on[a-z]+="`).MatchString(body) {
			t.Errorf("%s has an inline script or style", path)
		}
	}
}

// TestNamesAreIsolated: a name stored before names refused bidirectional
// formatting characters (say, in PostgreSQL, or by another application)
// cannot reorder the text around it: every place a page shows a key's name
// isolates it in a <bdi> element.
func TestNamesAreIsolated(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Spoofable", apikey.Test, scope.LinksRead)
	id := rec.ID.String()
	_, canary := f.createFor(f.owner, keyward.CreateParams{Name: "Spoofable", Mode: apikey.Test, Canary: true})
	cid := canary.ID.String()
	for _, path := range []string{"/dashboard/keys", "/dashboard/keys/" + id, "/dashboard/keys/" + id + "/edit",
		"/dashboard/keys/" + id + "/revoke", "/dashboard/keys/" + id + "/rotate", "/dashboard/keys/" + id + "/trips",
		"/dashboard/keys/" + cid, "/dashboard/keys/" + cid + "/trips", "/dashboard/keys/" + cid + "/rotate"} {
		_, _, body := f.page("GET", path, nil)
		// The <title> and form values cannot hold elements; the body's text
		// can, and must.
		body = regexp.MustCompile(`(?s)<title>.*?</title>|value="[^"]*"`).ReplaceAllString(body, "")
		if strings.Count(body, "Spoofable") == 0 || strings.Count(body, "Spoofable") != strings.Count(body, "<bdi>Spoofable</bdi>") {
			t.Errorf("%s shows the name outside a <bdi> element", path)
		}
	}
}

// titleOf returns a page's <title>.
func titleOf(body string) string {
	m := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestRevokeWithAReasonFromThePage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw, rec := f.create("Ops laptop", apikey.Live)
	id := rec.ID.String()
	path := "/dashboard/keys/" + id + "/revoke"

	_, _, body := f.page("GET", path, nil)
	mustContain(t, body, `<label for="reason">Reason <span class="optional">(optional)</span></label>`,
		`<p class="hint" id="reason-hint">Kept with the key for audit`,
		`<input id="reason" name="reason" type="text" value="" maxlength="200" autocomplete="off" aria-describedby="reason-hint">`)
	if got := titleOf(body); got != "Revoke key · Dashboard" {
		t.Errorf("title = %q", got)
	}

	t.Run("an invalid reason is shown next to its field", func(t *testing.T) {
		tests := []struct {
			name, reason, error string
		}{
			{"formatting characters", "Laptop\u202estolen", "Reason contains invisible or bidirectional formatting characters."},
			{"control characters", "Laptop\x07stolen", "Reason contains control characters."},
			{"too long", strings.Repeat("é", 101), "Reason is longer than 200 bytes."},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, _, body := f.page("POST", path, url.Values{"reason": {tt.reason}})
				if status != http.StatusBadRequest {
					t.Fatalf("status = %d, want 400", status)
				}
				if got := fieldError(body, "reason"); got != tt.error {
					t.Errorf("the error next to the reason = %q, want %q", got, tt.error)
				}
				if got := titleOf(body); got != "Error: Revoke key · Dashboard" {
					t.Errorf("title = %q, want it to start with Error:", got)
				}
				mustContain(t, body, "The key was not revoked", `id="confirm-revoke"`,
					`value="`+html.EscapeString(tt.reason)+`"`,
					`aria-describedby="reason-hint reason-error" aria-invalid="true"`)
			})
		}
		if got := f.get(rec.ID); got.Revoked() {
			t.Fatal("a refused reason revoked the key")
		}
		if _, err := f.keys.Verify(ctx, raw); err != nil {
			t.Errorf("the key no longer verifies after refused revocations: %v", err)
		}
	})

	status, header, _ := f.page("POST", path, url.Values{"reason": {"  Laptop stolen <at the airport> "}})
	if status != http.StatusSeeOther || header.Get("Location") != "../../keys?revoked="+id {
		t.Fatalf("revoke: %d to %q", status, header.Get("Location"))
	}
	if got := f.get(rec.ID).RevokedReason; got != "Laptop stolen <at the airport>" {
		t.Errorf("the stored reason = %q", got)
	}
	shown := `<span class="badge status-revoked">Revoked</span> <span class="when">`
	reason := `<span class="reason">Reason: <bdi>Laptop stolen &lt;at the airport&gt;</bdi></span>`
	for _, p := range []string{"/dashboard/keys", "/dashboard/keys/" + id, path} {
		_, _, body := f.page("GET", p, nil)
		mustContain(t, body, shown, reason)
	}
	events := f.audited()
	if len(events) != 1 || events[0].Kind != audit.Revoked || events[0].Reason != "Laptop stolen <at the airport>" ||
		events[0].KeyID != rec.ID || events[0].Actor != byAlice {
		t.Errorf("audit events = %+v", events)
	}
	if logs := f.lifecycleLogs.String(); !strings.Contains(logs, `actor=operator:alice`) || !strings.Contains(logs, `reason="Laptop stolen <at the airport>"`) {
		t.Errorf("the log lacks the actor or the reason:\n%s", logs)
	}

	// A second click, whatever its reason, lands on the list and keeps
	// the first reason.
	status, header, _ = f.page("POST", path, url.Values{"reason": {"Another\u202ereason"}})
	if status != http.StatusSeeOther || header.Get("Location") != "../../keys?revoked="+id {
		t.Errorf("second revoke: %d to %q", status, header.Get("Location"))
	}
	if got := f.get(rec.ID).RevokedReason; got != "Laptop stolen <at the airport>" {
		t.Errorf("the second click changed the reason to %q", got)
	}

	// Without a reason, none is shown.
	_, plain := f.create("No reason given", apikey.Test)
	if status, _, _ := f.page("POST", "/dashboard/keys/"+plain.ID.String()+"/revoke", url.Values{}); status != http.StatusSeeOther {
		t.Fatalf("revoking without a reason: %d", status)
	}
	_, _, body = f.page("GET", "/dashboard/keys/"+plain.ID.String(), nil)
	mustContain(t, body, shown)
	mustNotContain(t, body, `class="reason"`)
}

func TestRevokeAllWithAReasonFromThePage(t *testing.T) {
	f := newFixture(t)
	for i, m := range []apikey.Mode{apikey.Live, apikey.Test} {
		f.create(fmt.Sprintf("key %d", i), m)
	}
	_, _, body := f.page("GET", "/dashboard/keys/revoke-all", nil)
	mustContain(t, body, `<input id="reason" name="reason" type="text" value="" maxlength="200"`, "Kept with the key for audit")

	status, _, body := f.page("POST", "/dashboard/keys/revoke-all", url.Values{"reason": {"Breach\u2066"}})
	if status != http.StatusBadRequest {
		t.Fatalf("an invalid reason: %d, want 400", status)
	}
	if got := fieldError(body, "reason"); got != "Reason contains invisible or bidirectional formatting characters." {
		t.Errorf("the error next to the reason = %q", got)
	}
	if got := titleOf(body); got != "Error: Revoke all keys · Dashboard" {
		t.Errorf("title = %q", got)
	}
	mustContain(t, body, "No key was revoked", "This revokes <strong>2 active keys</strong>", `value="Breach`+"\u2066"+`"`,
		`aria-describedby="reason-hint reason-error" aria-invalid="true"`, `id="confirm-revoke-all"`)
	for _, rec := range f.all(f.owner) {
		if rec.Revoked() {
			t.Fatalf("a refused reason revoked %q", rec.Name)
		}
	}

	if status, _, _ := f.page("POST", "/dashboard/keys/revoke-all", url.Values{"reason": {"Account closed"}}); status != http.StatusSeeOther {
		t.Fatalf("revoke all: %d", status)
	}
	for _, rec := range f.all(f.owner) {
		if !rec.Revoked() || rec.RevokedReason != "Account closed" {
			t.Errorf("%q: revoked %v with reason %q", rec.Name, rec.Revoked(), rec.RevokedReason)
		}
	}
	_, _, body = f.page("GET", "/dashboard/keys", nil)
	if n := strings.Count(body, `<span class="reason">Reason: <bdi>Account closed</bdi></span>`); n != 2 {
		t.Errorf("the list shows the reason %d times, want 2", n)
	}
	e := f.audited()
	if len(e) != 2 {
		t.Errorf("audit events = %+v, want one per key revoked", e)
	}
	for _, e := range e {
		if e.Kind != audit.RevokedAll || e.Reason != "Account closed" || e.Actor != byAlice {
			t.Errorf("audit event = %+v", e)
		}
	}
}

// TestExposedKeysAreShown reports keys exposed, with the sources and URLs
// a hostile reporter could send, and checks that the pages show each
// exposure as text, linking only to http(s) URLs.
func TestExposedKeysAreShown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		exposure keyward.Exposure
		link     string // the link's href as the page writes it; "" for none
		shown    []string
		absent   []string
	}{
		{"a repository", keyward.Exposure{Source: "github", URL: "https://github.com/acme/shop/blob/main/.env#L3"},
			"https://github.com/acme/shop/blob/main/.env#L3",
			[]string{`reported by <bdi>github</bdi>`, `>https://github.com/acme/shop/blob/main/.env#L3</a>`}, nil},
		{"a javascript: URL", keyward.Exposure{Source: "scanner", URL: "javascript:alert(1)"}, "",
			[]string{`<code class="exposure-url">javascript:alert(1)</code>`}, []string{`href="javascript:`, `>javascript:alert(1)</a>`}},
		{"a JAVASCRIPT: URL", keyward.Exposure{Source: "scanner", URL: "JavaScript://github.com/%0Aalert(1)"}, "",
			[]string{`<code class="exposure-url">JavaScript://github.com/%0Aalert(1)</code>`}, []string{`href="JavaScript:`, `href="javascript:`}},
		{"a data: URL", keyward.Exposure{Source: "scanner", URL: "data:text/html,<script>alert(1)</script>"}, "",
			[]string{`<code class="exposure-url">data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;</code>`}, []string{`href="data:`, "<script>alert"}},
		{"a scheme-relative URL", keyward.Exposure{Source: "scanner", URL: "//evil.example/x"}, "",
			[]string{`<code class="exposure-url">//evil.example/x</code>`}, []string{`href="//evil.example`}},
		{"an attribute injection", keyward.Exposure{Source: "scanner", URL: `https://evil.example/"onmouseover="alert(1)`},
			"https://evil.example/%22onmouseover=%22alert%281%29",
			[]string{`>https://evil.example/&#34;onmouseover=&#34;alert(1)</a>`}, []string{`"onmouseover="`}},
		{"markup in the source", keyward.Exposure{Source: `<img src=x onerror="alert(1)">`}, "",
			[]string{`reported by <bdi>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;</bdi>`}, []string{"<img", `class="exposure-url"`}},
		{"a long URL", keyward.Exposure{Source: "paste", URL: "https://paste.example/" + strings.Repeat("a", 100)},
			"https://paste.example/" + strings.Repeat("a", 100),
			[]string{">https://paste.example/" + strings.Repeat("a", 80-len("https://paste.example/")) + "…</a>"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, rec := f.create("Exposed "+tt.name, apikey.Live)
			f.clock.Advance(time.Minute)
			report, err := f.keys.ReportExposure(ctx, raw, tt.exposure)
			if err != nil || !report.First {
				t.Fatalf("ReportExposure = %+v, %v", report, err)
			}
			rec = f.get(rec.ID)
			if !rec.Revoked() || rec.RevokedReason != apikey.ReasonExposed || rec.Exposure == nil {
				t.Fatalf("the reported key = %+v", rec)
			}
			at := rec.Exposure.At.Format(time.RFC3339)
			for _, path := range []string{"/dashboard/keys", "/dashboard/keys/" + rec.ID.String()} {
				_, _, body := f.page("GET", path, nil)
				// The row, or the page, of this key only.
				if path == "/dashboard/keys" {
					m := regexp.MustCompile(`(?s)<tr data-key-id="` + rec.ID.String() + `".*?</tr>`).FindString(body)
					if m == "" {
						t.Fatal("the list has no row for the key")
					}
					body = m
				}
				mustContain(t, body, append([]string{
					`<span class="badge status-revoked">Revoked</span>`,
					`<span class="reason">Reason: <bdi>exposed</bdi></span>`,
					`<span class="exposure"><span class="badge exposed">Exposed</span> <span class="when">reported by`,
					`<time datetime="` + at + `"`,
				}, tt.shown...)...)
				mustNotContain(t, body, tt.absent...)
				links := regexp.MustCompile(`<a class="exposure-url" href="([^"]*)" rel="([^"]*)">`).FindAllStringSubmatch(body, -1)
				switch {
				case tt.link == "" && len(links) > 0:
					t.Errorf("%s: the URL is a link: %q", path, links[0][1])
				case tt.link != "" && len(links) != 1:
					t.Errorf("%s: %d links to the URL, want 1", path, len(links))
				case tt.link != "":
					if got := html.UnescapeString(links[0][1]); got != tt.link {
						t.Errorf("%s: href = %q, want %q", path, got, tt.link)
					}
					if links[0][2] != "noopener noreferrer nofollow" {
						t.Errorf("%s: rel = %q", path, links[0][2])
					}
				}
				// The untrusted text is in no attribute but the checked href.
				for _, attr := range regexp.MustCompile(`\s([a-z-]+)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
					if attr[1] != "href" && tt.exposure.URL != "" && strings.Contains(html.UnescapeString(attr[2]), tt.exposure.URL) {
						t.Errorf("%s: the URL is in the attribute %s", path, attr[1])
					}
				}
			}
		})
	}

	t.Run("an exposed key that stays active", func(t *testing.T) {
		// A canary found in the open stays armed: exposed, not revoked.
		raw, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Armed canary", Mode: apikey.Test, Canary: true})
		if _, err := f.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "support"}); err != nil {
			t.Fatal(err)
		}
		_, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
		mustContain(t, body, `<span class="badge status-active">Active</span> <span class="exposure"><span class="badge exposed">Exposed</span>`,
			`reported by <bdi>support</bdi>`)
		mustNotContain(t, body, `class="reason"`, `class="exposure-url"`)
	})
}

func TestCreateCanaryFromTheForm(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.page("GET", "/dashboard/keys/new", nil)
	mustContain(t, body,
		`<label class="check" for="canary"><input id="canary" name="canary" type="checkbox" value="true" aria-describedby="canary-hint"> Canary (tripwire)</label>`,
		`<p class="hint" id="canary-hint">Never authorizes; every use is recorded.`)

	// A refused form keeps the box checked.
	status, _, body := f.page("POST", "/dashboard/keys", url.Values{"name": {"CI secret"}, "mode": {"test"}, "canary": {"true"},
		"idempotency_key": {tokenOf(t, body)}})
	if status != http.StatusBadRequest || fieldError(body, "scopes") == "" {
		t.Fatalf("a canary without scopes: %d", status)
	}
	if got := titleOf(body); got != "Error: New API key · Dashboard" {
		t.Errorf("title = %q", got)
	}
	mustContain(t, body, `name="canary" type="checkbox" value="true" checked`)

	form := url.Values{"name": {"CI secret"}, "mode": {"test"}, "scopes": {"links:read"}, "canary": {"true"},
		"idempotency_key": {tokenOf(t, body)}}
	status, header, body := f.page("POST", "/dashboard/keys", form)
	if status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", status, body)
	}
	raw := rawKeyOf(body)
	id := strings.TrimPrefix(header.Get("Location"), "./keys/")
	rec := f.get(uuidOf(t, id))
	if !rec.Canary || rec.Name != "CI secret" || rec.Mode != apikey.Test || !strings.HasPrefix(raw, rec.Prefix) {
		t.Fatalf("created %+v from the form with the canary box checked", rec)
	}
	mustContain(t, body, "is ready to plant", `<div class="notice info" id="canary-note">`,
		"This is a canary key: it never authorizes a request.", "Plant it where a thief would look",
		`<a href="keys/`+id+`/trips">its trips page</a>`, `<span class="badge canary">Canary</span>`)
	if e := f.audited(); len(e) != 1 || e[0].Kind != audit.Created || e[0].Actor != byAlice ||
		!slices.Contains(e[0].Changes, audit.Change{Field: audit.FieldCanary, To: "true"}) {
		t.Errorf("audit = %+v", e)
	}
	if logs := f.lifecycleLogs.String(); !strings.Contains(logs, "canary=true") {
		t.Error("the log does not say the created key is a canary")
	}

	// A plain key from the same form, unchecked, is no canary.
	_, _, body = f.page("GET", "/dashboard/keys/new", nil)
	status, header, _ = f.page("POST", "/dashboard/keys", url.Values{"name": {"Plain"}, "mode": {"test"}, "scopes": {"links:read"},
		"idempotency_key": {tokenOf(t, body)}})
	plain := f.get(uuidOf(t, strings.TrimPrefix(header.Get("Location"), "./keys/")))
	if status != http.StatusCreated || plain.Canary {
		t.Errorf("the unchecked form made %+v (%d)", plain, status)
	}

	// The list: a badge, a link to the trips named for the key, no roll.
	_, _, body = f.page("GET", "/dashboard/keys", nil)
	row := regexp.MustCompile(`(?s)<tr data-key-id="` + id + `".*?</tr>`).FindString(body)
	mustContain(t, row, `<span class="badge canary">Canary</span>`,
		`<a class="trips" href="keys/`+id+`/trips">Trips<span class="visually-hidden"> of <bdi>CI secret</bdi></span></a>`,
		`href="keys/`+id+`/edit"`, `href="keys/`+id+`/revoke"`)
	mustNotContain(t, row, `href="keys/`+id+`/rotate"`, "Roll key")
	plainRow := regexp.MustCompile(`(?s)<tr data-key-id="` + plain.ID.String() + `".*?</tr>`).FindString(body)
	mustContain(t, plainRow, "Roll key")
	mustNotContain(t, plainRow, "badge canary", `class="trips"`)

	// The key's page, and the roll form, offer no roll.
	_, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	mustContain(t, body, `id="trips" href="keys/`+id+`/trips"`, `id="edit"`, `id="revoke"`, "This key is a canary")
	mustNotContain(t, body, `id="roll"`)
	_, _, body = f.page("GET", "/dashboard/keys/"+id+"/rotate", nil)
	mustContain(t, body, "This key is a canary, a tripwire, and cannot be rolled.")
	mustNotContain(t, body, `id="confirm-rotate"`)

	// Revoking it says what becomes of its trips.
	_, _, body = f.page("GET", "/dashboard/keys/"+id+"/revoke", nil)
	mustContain(t, body, `id="canary-revoke"`, "revoking it disarms the tripwire")
	_, _, body = f.page("GET", "/dashboard/keys/"+plain.ID.String()+"/revoke", nil)
	mustNotContain(t, body, `id="canary-revoke"`)

	// A roll posted by hand is refused with a clear answer.
	status, _, body = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"0s"}})
	if status != http.StatusConflict || !strings.Contains(body, "The key is a canary, a tripwire, so it cannot be rolled") {
		t.Errorf("rolling a canary: %d\n%s", status, body)
	}
	if got := f.get(rec.ID); got.ReplacedBy != uuid.Nil || !got.ExpiresAt.IsZero() {
		t.Errorf("a refused roll changed the canary: %+v", got)
	}
}

func TestTripsPage(t *testing.T) {
	f := newFixture(t)
	raw, canary := f.createFor(f.owner, keyward.CreateParams{Name: "Dormant repo", Mode: apikey.Live, Canary: true})
	_, quiet := f.createFor(f.owner, keyward.CreateParams{Name: "Quiet canary", Mode: apikey.Test, Canary: true})
	_, plain := f.create("Plain key", apikey.Live)
	path := "/dashboard/keys/" + canary.ID.String() + "/trips"

	_, _, body := f.page("GET", path, nil)
	mustContain(t, body, "<h1>Trips of “<bdi>Dormant repo</bdi>”</h1>", `<div class="card table-card" role="region" aria-labelledby="trips-caption" tabindex="0">`,
		`<caption id="trips-caption">Uses of the canary key <code>`+canary.Prefix+`</code>, newest first`,
		`<th scope="col">Time</th>`, `<th scope="col">Client address</th>`, `<th scope="col">User agent</th>`, `<th scope="col">Route</th>`,
		"No trips yet: nobody has used this canary.")

	first := f.trip(raw, keyward.Caller{Addr: "203.0.113.7:51234", UserAgent: "curl/8.5.0", Method: "GET", Path: "/v1/links"})
	f.clock.Advance(time.Hour)
	second := f.trip(raw, keyward.Caller{Addr: "198.51.100.9:40000", UserAgent: "<script>alert(1)</script>", Method: "POST", Path: "/v1/sessions"})
	if first.KeyID != canary.ID || first.Route != "GET /v1/links" || !second.At.After(first.At) {
		t.Fatalf("trips = %+v, %+v", first, second)
	}

	status, _, body := f.page("GET", path, nil)
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	rows := regexp.MustCompile(`(?s)<tr class="trip">.*?</tr>`).FindAllString(body, -1)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2:\n%s", len(rows), body)
	}
	mustContain(t, rows[0], `<time datetime="`+second.At.Format(time.RFC3339)+`"`, "<code>198.51.100.9:40000</code>",
		"<bdi>&lt;script&gt;alert(1)&lt;/script&gt;</bdi>", "<code>POST /v1/sessions</code>")
	mustContain(t, rows[1], `<time datetime="`+first.At.Format(time.RFC3339)+`"`, "<code>203.0.113.7:51234</code>",
		"<bdi>curl/8.5.0</bdi>", "<code>GET /v1/links</code>")
	mustNotContain(t, body, "<script>alert", "No trips yet")

	// Another canary's trips are its own.
	_, _, body = f.page("GET", "/dashboard/keys/"+quiet.ID.String()+"/trips", nil)
	mustContain(t, body, "No trips yet: nobody has used this canary.")
	mustNotContain(t, body, "198.51.100.9")

	// A key that is no canary has no trips to show.
	_, _, body = f.page("GET", "/dashboard/keys/"+plain.ID.String()+"/trips", nil)
	mustContain(t, body, "This key is not a canary")
	mustNotContain(t, body, "<table")

	// Every role reads them, and the JSON API too.
	for _, role := range roles {
		if status, _, body := f.pageAs(as(role), "GET", path, nil); status != http.StatusOK || !strings.Contains(body, "198.51.100.9") {
			t.Errorf("%s: %d", role, status)
		}
	}
	w := f.api("GET", path, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("JSON: %d %s", w.Code, w.Body)
	}
	out := decodeJSON[struct {
		Trips []struct {
			KeyID     uuid.UUID `json:"key_id"`
			Owner     string    `json:"owner"`
			At        time.Time `json:"at"`
			Addr      string    `json:"addr"`
			UserAgent string    `json:"user_agent"`
			Route     string    `json:"route"`
		} `json:"trips"`
	}](t, w)
	if len(out.Trips) != 2 || out.Trips[0].Route != "POST /v1/sessions" || out.Trips[1].Addr != "203.0.113.7:51234" ||
		out.Trips[0].KeyID != canary.ID || out.Trips[0].Owner != account || !out.Trips[0].At.Equal(second.At) {
		t.Errorf("JSON trips = %+v", out.Trips)
	}
	if w := f.api("GET", "/dashboard/keys/"+plain.ID.String()+"/trips", ""); w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"trips":[]}` {
		t.Errorf("the trips of a key that is no canary: %d %s", w.Code, w.Body)
	}
	for _, id := range []string{uuid.NewString(), "not-an-id"} {
		if status, _, _ := f.page("GET", "/dashboard/keys/"+id+"/trips", nil); status != http.StatusNotFound {
			t.Errorf("the trips of %s: %d, want 404", id, status)
		}
		problemOf(t, f.api("GET", "/dashboard/keys/"+id+"/trips", ""), http.StatusNotFound)
	}

	// A revoked canary keeps its trips.
	if _, err := f.owner.Revoke(context.Background(), canary.ID, keyward.RevokeParams{Reason: "Repository archived"}); err != nil {
		t.Fatal(err)
	}
	_, _, body = f.page("GET", path, nil)
	if n := strings.Count(body, `<tr class="trip">`); n != 2 {
		t.Errorf("a revoked canary shows %d trips, want 2", n)
	}
}
