package dashboard_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

// TestRowActionsNameTheirKey: each action of the list's rows says, to
// assistive technology, which key it acts on, in text hidden from sight.
func TestRowActionsNameTheirKey(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Production <EU>", apikey.Live, scope.SessionsWrite)
	_, canary := f.createFor(f.owner, keyward.CreateParams{Name: "CI secret", Mode: apikey.Test, Canary: true})
	_, _, body := f.page("GET", "/dashboard/keys", nil)
	id := rec.ID.String()
	const name = `<span class="visually-hidden"> “<bdi>Production &lt;EU&gt;</bdi>”</span></a>`
	mustContain(t, body,
		`<a class="edit" href="keys/`+id+`/edit">Edit`+name,
		`<a class="rotate" href="keys/`+id+`/rotate">Roll key`+name,
		`<a class="revoke danger" href="keys/`+id+`/revoke">Revoke`+name,
		`<a class="trips" href="keys/`+canary.ID.String()+`/trips">Trips<span class="visually-hidden"> of <bdi>CI secret</bdi></span></a>`,
	)
	// Every link of every row's actions names the row's key.
	rows := regexp.MustCompile(`(?s)<tr data-key-id="[^"]+"[^>]*>.*?</tr>`).FindAllString(body, -1)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for _, row := range rows {
		keyName := regexp.MustCompile(`<td class="name"[^>]*><a [^>]*><bdi>([^<]*)</bdi>`).FindStringSubmatch(row)
		actions := regexp.MustCompile(`(?s)<td class="actions"[^>]*>(.*?)</td>`).FindStringSubmatch(row)
		if keyName == nil || actions == nil {
			t.Fatalf("a row without a name or actions:\n%s", row)
		}
		links := regexp.MustCompile(`(?s)<a [^>]*>(.*?)</a>`).FindAllStringSubmatch(actions[1], -1)
		if len(links) == 0 {
			t.Errorf("the row of %s has no actions", keyName[1])
		}
		for _, l := range links {
			if !strings.Contains(l[1], `<span class="visually-hidden">`) || !strings.Contains(l[1], "<bdi>"+keyName[1]+"</bdi>") {
				t.Errorf("the action %q does not name its key %q", l[1], keyName[1])
			}
		}
	}
	// Each cell is labelled for the stacked layout of phones.
	for _, label := range []string{"Name", "Prefix", "Mode", "Scopes", "Requests, last 24 h", "Last used", "Created", "Status", "Actions"} {
		mustContain(t, body, `data-label="`+label+`"`)
	}
}

// describedBy checks that every aria-describedby of body names elements of
// the page, and that every error shown is named by one.
func describedBy(t *testing.T, body string) map[string][]string {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(` id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids[m[1]] = true
	}
	described := map[string][]string{} // by error id, the tags that it describes
	for _, m := range regexp.MustCompile(`<([a-z]+)[^>]*? aria-describedby="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		for _, id := range strings.Fields(m[2]) {
			if !ids[id] {
				t.Errorf("aria-describedby names %q, which the page lacks", id)
			}
			described[id] = append(described[id], m[1])
		}
	}
	for _, m := range regexp.MustCompile(`<p class="error" id="([^"]+)">`).FindAllStringSubmatch(body, -1) {
		if len(described[m[1]]) == 0 {
			t.Errorf("the error %s describes no field or group", m[1])
		}
	}
	return described
}

// TestFormErrorsDescribeTheirFields: a refused form's errors describe
// their fields and groups (aria-describedby), and the title starts with
// "Error: ".
func TestFormErrorsDescribeTheirFields(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Checkout server", apikey.Live, scope.SessionsWrite, scope.LinksRead)
	id := rec.ID.String()
	tests := []struct {
		name, path string
		form       url.Values
		title      string
		error      string // the error's id
		tag        string // the element that it describes
	}{
		{"new without scopes", "keys", url.Values{"idempotency_key": {"form_a11y_1"}, "name": {"n"}, "mode": {"live"}},
			"Error: New API key · Dashboard", "scopes-error", "fieldset"},
		{"new without mode", "keys", url.Values{"idempotency_key": {"form_a11y_2"}, "name": {"n"}, "scopes": {"links:read"}},
			"Error: New API key · Dashboard", "mode-error", "fieldset"},
		{"new with a bad rate", "keys", url.Values{"idempotency_key": {"form_a11y_3"}, "name": {"n"}, "mode": {"test"}, "scopes": {"links:read"},
			"rate_requests": {"-3"}, "rate_period": {"1m"}}, "Error: New API key · Dashboard", "rate_requests-error", "fieldset"},
		{"new with bad metadata", "keys", url.Values{"idempotency_key": {"form_a11y_4"}, "name": {"n"}, "mode": {"test"}, "scopes": {"links:read"},
			"metadata_key": {"team", "team"}, "metadata_value": {"a", "b"}}, "Error: New API key · Dashboard", "metadata-error", "fieldset"},
		{"new without name", "keys", url.Values{"idempotency_key": {"form_a11y_5"}, "mode": {"test"}, "scopes": {"links:read"}},
			"Error: New API key · Dashboard", "name-error", "input"},
		{"edit without scopes", "keys/" + id + "/edit", url.Values{"name": {"Checkout server"}},
			"Error: Edit key · Dashboard", "scopes-error", "fieldset"},
		{"roll with a bad overlap", "keys/" + id + "/rotate", url.Values{"overlap": {"soon"}},
			"Error: Roll key · Dashboard", "overlap-error", "fieldset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := f.page("POST", "/dashboard/"+tt.path, tt.form)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", status)
			}
			if got := titleOf(body); got != tt.title {
				t.Errorf("title = %q, want %q", got, tt.title)
			}
			described := describedBy(t, body)
			if !slices.Contains(described[tt.error], tt.tag) {
				t.Errorf("%s describes %q, want a %s", tt.error, described[tt.error], tt.tag)
			}
		})
	}
	// Without errors: no prefix, and no error described.
	for path, title := range map[string]string{"keys/new": "New API key · Dashboard", "keys/" + id + "/edit": "Edit key · Dashboard",
		"keys/" + id + "/rotate": "Roll key · Dashboard"} {
		_, _, body := f.page("GET", "/dashboard/"+path, nil)
		if got := titleOf(body); got != title {
			t.Errorf("%s: title = %q, want %q", path, got, title)
		}
		for id := range describedBy(t, body) {
			if strings.HasSuffix(id, "-error") {
				t.Errorf("%s: a form without errors is described by %s", path, id)
			}
		}
	}
}

// TestFavicon: the layout links an embedded icon, which is served, so that
// browsers do not ask for a missing /favicon.ico.
func TestFavicon(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.page("GET", "/dashboard/keys", nil)
	mustContain(t, body, `<link rel="icon" href="assets/favicon.svg" type="image/svg+xml">`)
	w := f.do(call{method: "GET", path: "/dashboard/assets/favicon.svg"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(w.Body.String(), "<svg ") {
		t.Fatalf("favicon: %d %q %.40q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
}

// TestFiltersWaitForSubmit: the list's filters apply only when the
// operator submits them (WCAG 3.2.2): the Filter button is always shown,
// and neither the page nor the script submits the form on a change.
func TestFiltersWaitForSubmit(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.page("GET", "/dashboard/keys", nil)
	form := regexp.MustCompile(`(?s)<form class="filters"[^>]*>.*?</form>`).FindString(body)
	if form == "" {
		t.Fatal("the list has no filters")
	}
	mustContain(t, form, `<button class="button" id="apply-filters" type="submit">Filter</button>`, `method="get"`)
	mustNotContain(t, form, "onchange", "onclick", "hidden")
	css := f.do(call{method: "GET", path: "/dashboard/assets/dashboard.css"}).Body.String()
	for _, rule := range regexp.MustCompile(`([^{}]*)\{([^}]*)\}`).FindAllStringSubmatch(css, -1) {
		if strings.Contains(rule[1], "filters") && regexp.MustCompile(`display:\s*none|visibility:\s*hidden`).MatchString(rule[2]) {
			t.Errorf("the stylesheet hides part of the filters: %s{%s}", strings.TrimSpace(rule[1]), rule[2])
		}
	}
	js := f.do(call{method: "GET", path: "/dashboard/assets/dashboard.js"}).Body.String()
	mustNotContain(t, js, "requestSubmit", ".submit()", `"change"`, "form.filters")
}
