package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
)

// page sends a browser's request: Accept text/html, and forms encoded as
// browsers encode them.
func (f *fixture) page(method, path string, form url.Values) (int, http.Header, string) {
	f.t.Helper()
	c := call{method: method, path: path, header: http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}}
	if method == "POST" {
		c.body, c.contentType = form.Encode(), "application/x-www-form-urlencoded"
		c.header.Set("Sec-Fetch-Site", "same-origin")
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
	used, _ = f.keys.Get(ctx, used.ID)
	if used.LastUsedAt.IsZero() {
		t.Fatal("the use was not recorded")
	}
	_, revoked := f.create("Old <script>alert(1)</script>", apikey.Test)
	if _, err := f.keys.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	revoked, _ = f.keys.Get(ctx, revoked.ID)

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
		`href="keys/new"`,
		`data-key-id="`+used.ID.String()+`" data-status="active"`,
		used.Prefix, "links:read", "sessions:write",
		`datetime="`+used.LastUsedAt.Format("2006-01-02T15:04:05Z07:00")+`"`,
		`data-key-id="`+revoked.ID.String()+`" data-status="revoked"`,
		`<span class="badge status-revoked">Revoked</span> <span class="when"><time datetime="`+revoked.RevokedAt.Format("2006-01-02T15:04:05Z07:00")+`"`,
		"Old &lt;script&gt;alert(1)&lt;/script&gt;",
		`href="keys/`+used.ID.String()+`/revoke"`,
		`href="keys/`+used.ID.String()+`/rotate"`,
	)
	if strings.Contains(body, "<script>alert(1)") {
		t.Error("a key name is not escaped")
	}
	if strings.Contains(body, `href="keys/`+revoked.ID.String()+`/revoke"`) {
		t.Error("a revoked key offers Revoke")
	}
	if strings.Contains(body, raw) {
		t.Error("the list shows a raw key")
	}
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
	mustContain(t, body, `<base href="../">`, `action="keys"`, `name="name"`,
		`name="mode" value="live"`, `name="mode" value="test" checked`)
	for _, s := range scope.Default.Scopes() {
		mustContain(t, body, `name="scopes" value="`+string(s)+`"`)
	}
	mustContain(t, body, "Create checkout sessions") // the documentation's words

	form := url.Values{"name": {"WooCommerce plugin"}, "mode": {"live"}, "scopes": {"sessions:write", "customers:write"}}
	status, header, body := f.page("POST", "/dashboard/keys", form)
	if status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", status, body)
	}
	if header.Get("Cache-Control") != "no-store" || header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("reveal headers: %v", header)
	}
	m := regexp.MustCompile(`id="raw-key" type="text" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no raw key on the page:\n%s", body)
	}
	raw := m[1]
	rec, err := f.keys.Verify(context.Background(), raw)
	if err != nil || rec.Name != "WooCommerce plugin" || rec.Mode != apikey.Live ||
		!rec.Scopes.Equal(scope.NewSet(scope.SessionsWrite, scope.CustomersWrite)) {
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
	if e := f.audited(); len(e) != 1 || e[0].Action != dashboard.KeyCreated || e[0].Key.ID != rec.ID {
		t.Errorf("audit = %+v", e)
	}
}

func TestCreateFormKeepsInputOnError(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		form  url.Values
		error string
		keeps []string
	}{
		{"no scopes", url.Values{"name": {"Nightly <job>"}, "mode": {"live"}},
			"At least one scope is required.", []string{`value="Nightly &lt;job&gt;"`, `value="live" checked`}},
		{"no name", url.Values{"mode": {"test"}, "scopes": {"events:read"}},
			"Name is required.", []string{`value="test" checked`, `value="events:read" checked`, `aria-invalid="true"`}},
		{"no mode", url.Values{"name": {"n"}, "scopes": {"events:read", "links:read"}},
			"Choose Live or Test.", []string{`value="events:read" checked`, `value="links:read" checked`}},
		{"unknown scope", url.Values{"name": {"n"}, "mode": {"live"}, "scopes": {"links:delete"}},
			"unknown scope", []string{`value="n"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := f.page("POST", "/dashboard/keys", tt.form)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", status)
			}
			mustContain(t, body, append([]string{tt.error, "The key was not created"}, tt.keeps...)...)
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
	mustContain(t, body, `<base href="../../">`, "Revoke “Checkout server”?", "401 Unauthorized",
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
	_, active := f.create("Still active", apikey.Live)
	for _, q := range []string{active.ID.String(), uuid.NewString(), "<b>forged</b>"} {
		_, _, body := f.page("GET", "/dashboard/keys?revoked="+url.QueryEscape(q), nil)
		if strings.Contains(body, "notice success") || strings.Contains(body, "forged") {
			t.Errorf("?revoked=%s shows a notice", q)
		}
	}
}

func TestRotateFromThePage(t *testing.T) {
	f := newFixture(t)
	oldRaw, old := f.create("WooCommerce plugin", apikey.Live)
	id := old.ID.String()

	status, _, body := f.page("GET", "/dashboard/keys/"+id+"/rotate", nil)
	if status != http.StatusOK {
		t.Fatalf("rotate form: %d", status)
	}
	mustContain(t, body, `action="keys/`+id+`/rotate"`, `value="0s"`, `value="1h"`, `value="24h" checked`, `value="168h"`)

	status, _, body = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{})
	if status != http.StatusBadRequest || !strings.Contains(body, "Choose when the current key stops working.") {
		t.Errorf("no overlap: %d", status)
	}

	status, header, body := f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"1h"}})
	if status != http.StatusCreated || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d, Cache-Control %q", status, header.Get("Cache-Control"))
	}
	m := regexp.MustCompile(`id="raw-key" type="text" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no raw key on the page")
	}
	for _, raw := range []string{oldRaw, m[1]} {
		if _, err := f.keys.Verify(context.Background(), raw); err != nil {
			t.Errorf("a key does not verify during the overlap: %v", err)
		}
	}
	mustContain(t, body, "Key rolled", "The previous key <code>"+old.Prefix+"</code> keeps working until")

	_, other := f.create("Backend", apikey.Test)
	_, _, body = f.page("POST", "/dashboard/keys/"+other.ID.String()+"/rotate", url.Values{"overlap": {"0s"}})
	mustContain(t, body, "The previous key <code>"+other.Prefix+"</code> has stopped working.")
}

func TestKeyPage(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Production server", apikey.Live)
	status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	mustContain(t, body, `<base href="../">`, "<h1>Production server</h1>", rec.Prefix, "Roll key", "Revoke")
	status, _, _ = f.page("GET", "/dashboard/keys/"+uuid.NewString(), nil)
	if status != http.StatusNotFound {
		t.Errorf("unknown key page: %d", status)
	}
}

func TestAssets(t *testing.T) {
	f := newFixture(t)
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
	// The page loads nothing from elsewhere.
	_, _, body := f.page("GET", "/dashboard/keys/new", nil)
	for _, link := range regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if strings.Contains(link[1], "//") {
			t.Errorf("the page refers to another host: %s", link[1])
		}
	}
}
