package dashboard_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// A route is one way to call the dashboard, HTML or JSON, for the tables
// of the role and IDOR tests. Its path holds {id} where a key ID goes.
type route struct {
	name   string
	method string
	path   string
	html   bool   // a browser's request; otherwise the JSON API's
	body   string // a JSON body, or a form (url-encoded) for html posts
	// mode is the mode of the key the route creates, for creates.
	mode apikey.Mode
	// kind says what the route needs of the operator's role.
	kind routeKind
	// ok is the status of a success.
	ok int
}

type routeKind int

const (
	read      routeKind = iota // every role
	createKey                  // Role.CanChange(mode)
	changeKey                  // Role.CanChange(the key's mode)
	newForm                    // a role that may create keys of some mode
	revokeAll                  // Role.CanRevokeAll
)

// routes are every route of the dashboard but the assets.
var routes = []route{
	{name: "JSON list", method: "GET", path: "/keys", kind: read, ok: 200},
	{name: "JSON get", method: "GET", path: "/keys/{id}", kind: read, ok: 200},
	{name: "JSON create test", method: "POST", path: "/keys", body: `{"name":"n","mode":"test","scopes":["links:read"]}`, mode: apikey.Test, kind: createKey, ok: 201},
	{name: "JSON create live", method: "POST", path: "/keys", body: `{"name":"n","mode":"live","scopes":["links:read"]}`, mode: apikey.Live, kind: createKey, ok: 201},
	{name: "JSON patch", method: "PATCH", path: "/keys/{id}", body: `{"name":"Renamed","scopes":["sessions:write"]}`, kind: changeKey, ok: 200},
	{name: "JSON edit", method: "POST", path: "/keys/{id}/edit", body: `{"metadata":{"a":"b"}}`, kind: changeKey, ok: 200},
	{name: "JSON rotate", method: "POST", path: "/keys/{id}/rotate", body: `{"overlap":"1h"}`, kind: changeKey, ok: 201},
	{name: "JSON revoke", method: "POST", path: "/keys/{id}/revoke", kind: changeKey, ok: 200},
	{name: "JSON revoke all", method: "POST", path: "/keys/revoke-all", kind: revokeAll, ok: 200},
	{name: "JSON revoke with a reason", method: "POST", path: "/keys/{id}/revoke", body: `{"reason":"Laptop stolen"}`, kind: changeKey, ok: 200},
	{name: "JSON revoke all with a reason", method: "POST", path: "/keys/revoke-all", body: `{"reason":"Breach"}`, kind: revokeAll, ok: 200},
	{name: "JSON create test canary", method: "POST", path: "/keys", body: `{"name":"n","mode":"test","scopes":["links:read"],"canary":true}`, mode: apikey.Test, kind: createKey, ok: 201},
	{name: "JSON create live canary", method: "POST", path: "/keys", body: `{"name":"n","mode":"live","scopes":["links:read"],"canary":true}`, mode: apikey.Live, kind: createKey, ok: 201},
	{name: "JSON trips", method: "GET", path: "/keys/{id}/trips", kind: read, ok: 200},
	{name: "page index", method: "GET", path: "/", html: true, kind: read, ok: 303},
	{name: "page list", method: "GET", path: "/keys", html: true, kind: read, ok: 200},
	{name: "page key", method: "GET", path: "/keys/{id}", html: true, kind: read, ok: 200},
	// The key's page with an older page of its history, and with a cursor
	// that is none: an ID the account does not have is a 404 whatever
	// the cursor, before the cursor is read.
	{name: "page key, older history", method: "GET", path: "/keys/{id}?history=" + store.AuditCursor(1<<20), html: true, kind: read, ok: 200},
	{name: "page key, invalid history cursor", method: "GET", path: "/keys/{id}?history=not-a-cursor", html: true, kind: read, ok: 400},
	{name: "page new-key form", method: "GET", path: "/keys/new", html: true, kind: newForm, ok: 200},
	{name: "page edit form", method: "GET", path: "/keys/{id}/edit", html: true, kind: changeKey, ok: 200},
	{name: "page rotate form", method: "GET", path: "/keys/{id}/rotate", html: true, kind: changeKey, ok: 200},
	{name: "page revoke confirmation", method: "GET", path: "/keys/{id}/revoke", html: true, kind: changeKey, ok: 200},
	{name: "page revoke-all confirmation", method: "GET", path: "/keys/revoke-all", html: true, kind: revokeAll, ok: 200},
	{name: "page trips", method: "GET", path: "/keys/{id}/trips", html: true, kind: read, ok: 200},
	{name: "form create test", method: "POST", path: "/keys", html: true, body: "name=n&mode=test&scopes=links:read&idempotency_key=form_t", mode: apikey.Test, kind: createKey, ok: 201},
	{name: "form create live", method: "POST", path: "/keys", html: true, body: "name=n&mode=live&scopes=links:read&idempotency_key=form_l", mode: apikey.Live, kind: createKey, ok: 201},
	{name: "form edit", method: "POST", path: "/keys/{id}/edit", html: true, body: "name=Renamed&scopes=sessions:write&metadata_key=a&metadata_value=b", kind: changeKey, ok: 303},
	{name: "form rotate", method: "POST", path: "/keys/{id}/rotate", html: true, body: "overlap=1h", kind: changeKey, ok: 201},
	{name: "form revoke", method: "POST", path: "/keys/{id}/revoke", html: true, kind: changeKey, ok: 303},
	{name: "form revoke with a reason", method: "POST", path: "/keys/{id}/revoke", html: true, body: "reason=Laptop+stolen", kind: changeKey, ok: 303},
	{name: "form revoke all", method: "POST", path: "/keys/revoke-all", html: true, kind: revokeAll, ok: 303},
	{name: "form revoke all with a reason", method: "POST", path: "/keys/revoke-all", html: true, body: "reason=Breach", kind: revokeAll, ok: 303},
	{name: "form create test canary", method: "POST", path: "/keys", html: true, body: "name=n&mode=test&scopes=links:read&canary=true&idempotency_key=form_tc", mode: apikey.Test, kind: createKey, ok: 201},
	{name: "form create live canary", method: "POST", path: "/keys", html: true, body: "name=n&mode=live&scopes=links:read&canary=true&idempotency_key=form_lc", mode: apikey.Live, kind: createKey, ok: 201},
	{name: "JSON create test with a policy", method: "POST", path: "/keys", body: `{"name":"n","mode":"test","scopes":["links:read"],"policy":{"rate":{"requests":10,"period":"1s"}}}`, mode: apikey.Test, kind: createKey, ok: 201},
	{name: "JSON create live with a policy", method: "POST", path: "/keys", body: `{"name":"n","mode":"live","scopes":["links:read"],"policy":{"networks":["203.0.113.0/24"]}}`, mode: apikey.Live, kind: createKey, ok: 201},
	{name: "JSON patch the policy", method: "PATCH", path: "/keys/{id}", body: `{"policy":{"quota":{"requests":100,"per":"day"}}}`, kind: changeKey, ok: 200},
	{name: "JSON edit the policy", method: "POST", path: "/keys/{id}/edit", body: `{"policy":{"networks":["10.0.0.0/8"]}}`, kind: changeKey, ok: 200},
	{name: "form create test with limits", method: "POST", path: "/keys", html: true, body: "name=n&mode=test&scopes=links:read&rate_requests=10&rate_period=1s&networks=203.0.113.0%2F24&idempotency_key=form_tp", mode: apikey.Test, kind: createKey, ok: 201},
	{name: "form create live with limits", method: "POST", path: "/keys", html: true, body: "name=n&mode=live&scopes=links:read&quota_requests=100&quota_per=month&idempotency_key=form_lp", mode: apikey.Live, kind: createKey, ok: 201},
	{name: "form edit limits", method: "POST", path: "/keys/{id}/edit", html: true, body: "name=Target&scopes=sessions:write&scopes=links:read&rate_requests=10&rate_period=1s&rate_burst=&quota_requests=&quota_per=day&networks=", kind: changeKey, ok: 303},
}

// call returns the request of rt for the key id, by alice with role in
// account (or header's account).
func (rt route) call(id string, header http.Header) call {
	c := call{method: rt.method, path: "/dashboard" + strings.ReplaceAll(rt.path, "{id}", id), body: rt.body, header: http.Header{}}
	switch {
	case rt.html:
		c.header.Set("Accept", browserAccept)
		if rt.method == "POST" {
			c.contentType = "application/x-www-form-urlencoded"
			c.header.Set("Sec-Fetch-Site", "same-origin")
		}
	case rt.body != "":
		c.contentType = "application/json"
	}
	for k, v := range header {
		c.header[k] = v
	}
	return c
}

// allowed reports whether role may use rt on a key of mode m.
func (rt route) allowed(role dashboard.Role, m apikey.Mode) bool {
	switch rt.kind {
	case createKey:
		return role.CanChange(rt.mode)
	case changeKey:
		return role.CanChange(m)
	case newForm:
		return role.CanChange(apikey.Test) || role.CanChange(apikey.Live)
	case revokeAll:
		return role.CanRevokeAll()
	}
	return true
}

var roles = []dashboard.Role{dashboard.Viewer, dashboard.Developer, dashboard.Admin}

func TestRoleMethods(t *testing.T) {
	tests := []struct {
		role              dashboard.Role
		valid, test, live bool
		revokeAll         bool
	}{
		{dashboard.Viewer, true, false, false, false},
		{dashboard.Developer, true, true, false, false},
		{dashboard.Admin, true, true, true, true},
		{"", false, false, false, false},
		{"Admin", false, false, false, false},
	}
	for _, tt := range tests {
		if got := tt.role.Valid(); got != tt.valid {
			t.Errorf("%q.Valid() = %v", tt.role, got)
		}
		if got := tt.role.CanChange(apikey.Test); got != tt.test {
			t.Errorf("%q.CanChange(Test) = %v", tt.role, got)
		}
		if got := tt.role.CanChange(apikey.Live); got != tt.live {
			t.Errorf("%q.CanChange(Live) = %v", tt.role, got)
		}
		if got := tt.role.CanChange(apikey.Mode(0)); got {
			t.Errorf("%q.CanChange(0) = true", tt.role)
		}
		if got := tt.role.CanRevokeAll(); got != tt.revokeAll {
			t.Errorf("%q.CanRevokeAll() = %v", tt.role, got)
		}
	}
}

// TestRoles walks every route with every role, on a live and a test key
// of the operator's account, and checks that the role is enforced: a
// refused request gets 403 with a message saying what the role may do,
// and changes nothing.
func TestRoles(t *testing.T) {
	for _, rt := range routes {
		for _, role := range roles {
			for _, m := range []apikey.Mode{apikey.Live, apikey.Test} {
				if m == apikey.Live && !strings.Contains(rt.path, "{id}") {
					continue // the route takes no key: one run is enough
				}
				t.Run(rt.name+"/"+string(role)+"/"+m.String(), func(t *testing.T) {
					f := newFixture(t)
					_, rec := f.create("Target", m, scope.SessionsWrite, scope.LinksRead)
					f.create("Bystander", apikey.Live)
					f.create("Bystander", apikey.Test)
					before := f.all(f.owner)

					w := f.do(rt.call(rec.ID.String(), as(role)))
					allowed := rt.allowed(role, m)
					if !allowed {
						if w.Code != http.StatusForbidden {
							t.Fatalf("status = %d, want 403; body %s", w.Code, w.Body)
						}
						body := w.Body.String()
						if !rt.html {
							problemOf(t, w, http.StatusForbidden)
						}
						if !strings.Contains(body, "Your role, "+string(role)) {
							t.Errorf("the refusal does not name the role: %s", body)
						}
						if after := f.all(f.owner); !reflect.DeepEqual(after, before) {
							t.Errorf("a refused request changed the keys:\nbefore %+v\nafter  %+v", before, after)
						}
						if e := f.audited(); len(e) != 0 {
							t.Errorf("a refused request was audited: %+v", e)
						}
						if !strings.Contains(f.logs.String(), "operator.role="+string(role)) {
							t.Error("the refusal was not logged with the operator's role")
						}
						return
					}
					if w.Code != rt.ok {
						t.Fatalf("status = %d, want %d; body %s", w.Code, rt.ok, w.Body)
					}
					if rt.kind == read || rt.kind == newForm || (rt.method == "GET") {
						if after := f.all(f.owner); !reflect.DeepEqual(after, before) {
							t.Error("a read changed the keys")
						}
					} else if e := f.audited(); len(e) == 0 {
						t.Error("a change made no audit event")
					} else {
						for _, e := range e {
							if e.Actor != (audit.Actor{Type: audit.TypeOperator, ID: "alice"}) || e.Owner != account {
								t.Errorf("audit event %+v, want one by alice in %s", e, account)
							}
						}
					}
				})
			}
		}
	}
}

func TestPagesShowWhatTheRoleMayDo(t *testing.T) {
	f := newFixture(t)
	_, live := f.create("Live key", apikey.Live)
	_, test := f.create("Test key", apikey.Test)
	links := func(rec apikey.Record) []string {
		id := rec.ID.String()
		return []string{`href="keys/` + id + `/edit"`, `href="keys/` + id + `/rotate"`, `href="keys/` + id + `/revoke"`}
	}
	t.Run("viewer", func(t *testing.T) {
		h := as(dashboard.Viewer)
		_, _, body := f.pageAs(h, "GET", "/dashboard/keys", nil)
		mustContain(t, body, `role-viewer`, "Live key", "Test key")
		mustNotContain(t, body, append(append([]string{`href="keys/new"`, `href="keys/revoke-all"`}, links(live)...), links(test)...)...)
		for _, rec := range []apikey.Record{live, test} {
			_, _, body := f.pageAs(h, "GET", "/dashboard/keys/"+rec.ID.String(), nil)
			mustNotContain(t, body, `id="edit"`, `id="roll"`, `id="revoke"`)
		}
		status, _, body := f.pageAs(h, "GET", "/dashboard/keys/new", nil)
		if status != http.StatusForbidden || !strings.Contains(body, "Your role, viewer, is read-only") {
			t.Errorf("the new-key form for a viewer: %d", status)
		}
	})
	t.Run("developer", func(t *testing.T) {
		h := as(dashboard.Developer)
		_, _, body := f.pageAs(h, "GET", "/dashboard/keys", nil)
		mustContain(t, body, append([]string{`role-developer`, `href="keys/new"`}, links(test)...)...)
		mustNotContain(t, body, append([]string{`href="keys/revoke-all"`}, links(live)...)...)
		_, _, body = f.pageAs(h, "GET", "/dashboard/keys/"+live.ID.String(), nil)
		mustNotContain(t, body, `id="edit"`, `id="roll"`, `id="revoke"`)
		_, _, body = f.pageAs(h, "GET", "/dashboard/keys/"+test.ID.String(), nil)
		mustContain(t, body, `id="edit"`, `id="roll"`, `id="revoke"`)

		_, _, body = f.pageAs(h, "GET", "/dashboard/keys/new", nil)
		mustContain(t, body, `name="mode" value="test" checked`, "Live keys need the admin role.")
		mustNotContain(t, body, `value="live"`)

		// A live key posted by hand is refused next to the mode.
		status, _, body := f.pageAs(h, "POST", "/dashboard/keys",
			url.Values{"name": {"Sneaky"}, "mode": {"live"}, "scopes": {"links:read"}, "idempotency_key": {"form_x"}})
		if status != http.StatusForbidden {
			t.Errorf("a developer's live key: %d, want 403", status)
		}
		if got := fieldError(body, "mode"); got != "Your role, developer, manages test keys only; live keys need the admin role." {
			t.Errorf("the error next to the mode = %q", got)
		}
		mustContain(t, body, `value="Sneaky"`, `value="form_x"`)
	})
	t.Run("admin", func(t *testing.T) {
		_, _, body := f.page("GET", "/dashboard/keys", nil)
		mustContain(t, body, append(append([]string{`role-admin`, `href="keys/new"`, `href="keys/revoke-all"`}, links(live)...), links(test)...)...)
		_, _, body = f.page("GET", "/dashboard/keys/new", nil)
		mustContain(t, body, `name="mode" value="live"`, `name="mode" value="test" checked`)
		mustNotContain(t, body, "Live keys need the admin role.")
	})
	if n := f.count(); n != 2 {
		t.Errorf("%d keys, want 2", n)
	}
}
