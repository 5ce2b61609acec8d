package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
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

// limited is the policy of the tests' limited keys: 100 requests a
// minute in bursts of 20, 10,000 a day, from two networks.
func limited() *apikey.Policy {
	return &apikey.Policy{
		Rate:     apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Quota:    apikey.Quota{Requests: 10_000, Per: apikey.Day},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")},
	}
}

// limitedJSON is limited() in the library's JSON form.
const limitedJSON = `{"rate":{"requests":100,"period":"1m0s","burst":20},"quota":{"requests":10000,"per":"day"},` +
	`"networks":["203.0.113.0/24","2001:db8::/32"]}`

// limitedForm is limited() as the form's fields say it.
func limitedForm() url.Values {
	return url.Values{"rate_requests": {"100"}, "rate_period": {"1m"}, "rate_burst": {"20"},
		"quota_requests": {"10000"}, "quota_per": {"day"}, "networks": {"203.0.113.0/24\r\n2001:db8::/32\r\n"}}
}

// withForm returns the fields of a and b in one form.
func withForm(a, b url.Values) url.Values {
	out := url.Values{}
	for _, v := range []url.Values{a, b} {
		for k, vs := range v {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

// samePolicy reports whether two policies set the same limits.
func samePolicy(a, b *apikey.Policy) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Rate == b.Rate && a.Quota == b.Quota && slices.Equal(a.Networks, b.Networks)
}

// changeOf returns the change of field in e, or the zero Change.
func changeOf(e audit.Event, field string) audit.Change {
	for _, c := range e.Changes {
		if c.Field == field {
			return c
		}
	}
	return audit.Change{}
}

// policyOf reads a policy as a change of the audit trail writes it: its
// JSON, or "" for none.
func policyOf(t *testing.T, s string) *apikey.Policy {
	t.Helper()
	if s == "" {
		return nil
	}
	p := new(apikey.Policy)
	if err := json.Unmarshal([]byte(s), p); err != nil {
		t.Fatalf("the policy %q of a change: %v", s, err)
	}
	return p
}

// rowOf returns the list's row of the key id.
func rowOf(body, id string) string {
	return regexp.MustCompile(`(?s)<tr data-key-id="` + id + `".*?</tr>`).FindString(body)
}

// selected returns the value of the option selected in the select named
// name, or "".
func selected(body, name string) string {
	sel := regexp.MustCompile(`(?s)<select id="` + name + `" name="` + name + `".*?</select>`).FindString(body)
	m := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(sel)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// textarea returns the text of the textarea named name.
func textarea(body, name string) string {
	m := regexp.MustCompile(`(?s)<textarea id="` + name + `" name="` + name + `"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	if m == nil {
		return "(none)"
	}
	return html.UnescapeString(m[1])
}

func TestCreateWithLimitsFromTheForm(t *testing.T) {
	f := newFixture(t)
	_, _, body := f.page("GET", "/dashboard/keys/new", nil)
	mustContain(t, body, `<legend>Limits <span class="optional">(optional)</span></legend>`, "Leave a limit empty for none.",
		`<legend>Rate limit</legend>`, `<label for="rate_requests">Requests</label>`,
		`<input id="rate_requests" name="rate_requests" type="number" min="1" step="1" inputmode="numeric" value="" aria-describedby="rate-hint">`,
		`<option value="1s">second</option><option value="1m" selected>minute</option><option value="1h">hour</option><option value="24h">day</option>`,
		`<input id="rate_burst" name="rate_burst"`, `<legend>Quota</legend>`, `<input id="quota_requests" name="quota_requests"`,
		`<option value="day" selected>day</option><option value="month">month</option>`,
		`<label for="networks">Allowed networks</label>`, `aria-describedby="networks-hint"></textarea>`)
	mustNotContain(t, body, "Clear every field to remove the key's limits.")

	form := withForm(url.Values{"name": {"Rate-limited partner"}, "mode": {"live"}, "scopes": {"links:read"},
		"idempotency_key": {tokenOf(t, body)}}, limitedForm())
	status, header, body := f.page("POST", "/dashboard/keys", form)
	if status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", status, body)
	}
	id := strings.TrimPrefix(header.Get("Location"), "./keys/")
	rec := f.get(uuidOf(t, id))
	if !samePolicy(rec.Policy, limited()) {
		t.Fatalf("the key's policy = %+v, want %+v", rec.Policy, limited())
	}
	raw := rawKeyOf(body)
	if got, err := f.keys.Verify(context.Background(), raw); err != nil || !samePolicy(got.Policy, limited()) {
		t.Errorf("the revealed key verifies with the policy %+v (%v)", got.Policy, err)
	}
	if e := f.audited(); len(e) != 1 || e[0].Kind != audit.Created || e[0].Actor != byAlice ||
		!samePolicy(policyOf(t, changeOf(e[0], audit.FieldPolicy).To), limited()) {
		t.Errorf("audit = %+v", e)
	}
	if logs := f.lifecycleLogs.String(); !strings.Contains(logs, `policy="{\"rate\":{\"requests\":100,\"period\":\"1m0s\",\"burst\":20}`) {
		t.Errorf("the log lacks the new key's limits:\n%s", logs)
	}

	// The key's page shows them in full, the list in short.
	_, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	mustContain(t, body, "<h2>Limits</h2>",
		`<dt>Rate limit</dt><dd id="limit-rate">100 requests per minute, bursts of up to 20</dd>`,
		`<dt>Quota</dt><dd id="limit-quota">10,000 requests per day (UTC)</dd>`,
		`<dt>Networks</dt><dd id="limit-networks"><ul class="networks"><li><code>203.0.113.0/24</code></li><li><code>2001:db8::/32</code></li></ul></dd>`)
	mustNotContain(t, body, `id="usage"`) // no limiter
	_, _, body = f.page("GET", "/dashboard/keys", nil)
	mustContain(t, rowOf(body, id), `</ul><small class="limits">Limits: 100/min · 10k/day · 2 networks</small></td>`)

	// Fields left empty make a key without limits.
	_, _, body = f.page("GET", "/dashboard/keys/new", nil)
	form = url.Values{"name": {"Unlimited"}, "mode": {"test"}, "scopes": {"links:read"}, "idempotency_key": {tokenOf(t, body)},
		"rate_requests": {""}, "rate_period": {"1h"}, "rate_burst": {""}, "quota_requests": {""}, "quota_per": {"month"}, "networks": {" \r\n"}}
	status, header, _ = f.page("POST", "/dashboard/keys", form)
	if status != http.StatusCreated {
		t.Fatalf("create: %d", status)
	}
	plain := strings.TrimPrefix(header.Get("Location"), "./keys/")
	if p := f.get(uuidOf(t, plain)).Policy; p != nil {
		t.Errorf("a form with empty limits made the policy %+v", p)
	}
	_, _, body = f.page("GET", "/dashboard/keys/"+plain, nil)
	mustContain(t, body, `<p class="muted" id="no-limits">None: no rate limit, no quota, any network.</p>`)
	_, _, body = f.page("GET", "/dashboard/keys", nil)
	mustNotContain(t, rowOf(body, plain), `class="limits"`)
}

// TestLimitsSummaries checks the words and the short form of limits, on
// the key's page and in the list.
func TestLimitsSummaries(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name          string
		policy        apikey.Policy
		rate, quota   string // the key's page; "" for none
		summary       string // the list's
		networks, any bool
	}{
		{"a rate per second", apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second}},
			"1 request per second", "", "1/s", false, true},
		{"a rate per hour", apikey.Policy{Rate: apikey.RateLimit{Requests: 1500, Period: time.Hour}},
			"1,500 requests per hour", "", "1.5k/h", false, true},
		{"a rate per day", apikey.Policy{Rate: apikey.RateLimit{Requests: 999_999, Period: 24 * time.Hour, Burst: 1000}},
			"999,999 requests per day, bursts of up to 1,000", "", "1M/day", false, true},
		{"a rate per 90 seconds", apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: 90 * time.Second}},
			"10 requests per 1m30s", "", "10/1m30s", false, true},
		{"a monthly quota", apikey.Policy{Quota: apikey.Quota{Requests: 2_500_000, Per: apikey.Month}},
			"", "2,500,000 requests per month (UTC)", "2.5M/month", false, true},
		{"the largest quota", apikey.Policy{Quota: apikey.Quota{Requests: apikey.MaxQuotaRequests, Per: apikey.Day}},
			"", "1,000,000,000,000 requests per day (UTC)", "1T/day", false, true},
		{"one network", apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
			"", "", "1 network", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec := f.createFor(f.owner, keyward.CreateParams{Name: tt.name, Mode: apikey.Test, Policy: &tt.policy})
			id := rec.ID.String()
			_, _, body := f.page("GET", "/dashboard/keys/"+id, nil)
			for field, want := range map[string]string{"rate": tt.rate, "quota": tt.quota} {
				if want == "" {
					want = `<span class="muted">None</span>`
				}
				mustContain(t, body, `<dd id="limit-`+field+`">`+want+`</dd>`)
			}
			if tt.networks {
				mustContain(t, body, `<li><code>198.51.100.0/24</code></li>`)
			}
			if tt.any {
				mustContain(t, body, `<dd id="limit-networks"><span class="muted">Any</span></dd>`)
			}
			_, _, body = f.page("GET", "/dashboard/keys", nil)
			mustContain(t, rowOf(body, id), `<small class="limits">Limits: `+tt.summary+`</small>`)
		})
	}
}

func TestCreateFormRefusesInvalidLimits(t *testing.T) {
	f := newFixture(t)
	many := make([]string, apikey.MaxNetworks+1)
	for i := range many {
		many[i] = fmt.Sprintf("10.%d.0.0/16", i)
	}
	tests := []struct {
		name   string
		limits url.Values
		errors map[string]string // by field
		keeps  []string
	}{
		{"a network with bits past its length", url.Values{"networks": {"10.1.2.3/8"}},
			map[string]string{"networks": "Network 10.1.2.3/8 has bits set past its length; did you mean 10.0.0.0/8?"}, nil},
		{"an address", url.Values{"networks": {"203.0.113.0/24\n10.1.2.3"}},
			map[string]string{"networks": "10.1.2.3 is an address, not a network: write 10.1.2.3/32 for it alone."}, nil},
		{"an IPv6 address", url.Values{"networks": {"2001:db8::1"}},
			map[string]string{"networks": "2001:db8::1 is an address, not a network: write 2001:db8::1/128 for it alone."}, nil},
		{"not a network", url.Values{"networks": {"the office"}},
			map[string]string{"networks": `"the" is not a network such as 203.0.113.0/24 or 2001:db8::/32.`}, nil},
		{"markup", url.Values{"networks": {"<script>alert(1)</script>"}},
			map[string]string{"networks": `"<script>alert(1)</script>" is not a network such as 203.0.113.0/24 or 2001:db8::/32.`},
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;</textarea>"}},
		{"a network twice", url.Values{"networks": {"203.0.113.0/24, 203.0.113.0/24"}},
			map[string]string{"networks": "Network 203.0.113.0/24 is listed twice."}, nil},
		{"an IPv4-mapped network", url.Values{"networks": {"::ffff:10.0.0.0/104"}},
			map[string]string{"networks": "Network ::ffff:10.0.0.0/104: write IPv4 networks as IPv4, such as 10.0.0.0/8."}, nil},
		{"too many networks", url.Values{"networks": {strings.Join(many, "\n")}},
			map[string]string{"networks": "At most 64 networks."}, nil},
		{"no requests per period", url.Values{"rate_requests": {"0"}, "rate_period": {"1m"}},
			map[string]string{"rate_requests": "Rate limit requests must be 1 to 1000000."}, []string{`name="rate_requests" type="number" min="1" step="1" inputmode="numeric" value="0"`}},
		{"too many requests per period", url.Values{"rate_requests": {"2000000"}, "rate_period": {"1s"}},
			map[string]string{"rate_requests": "Rate limit requests must be 1 to 1000000."}, []string{`<option value="1s" selected>second</option>`}},
		{"requests not a number", url.Values{"rate_requests": {"ten"}, "rate_period": {"1m"}},
			map[string]string{"rate_requests": "Requests must be a whole number, such as 100."}, []string{`value="ten"`}},
		{"a burst without requests", url.Values{"rate_burst": {"5"}, "rate_period": {"1h"}},
			map[string]string{"rate_requests": "Rate limit requests must be 1 to 1000000."}, []string{`<option value="1h" selected>hour</option>`}},
		{"too large a burst", url.Values{"rate_requests": {"10"}, "rate_period": {"1m"}, "rate_burst": {"1000001"}},
			map[string]string{"rate_burst": "Rate limit burst must be 0 (the requests per period) to 1000000."}, []string{`value="1000001"`}},
		{"a burst not a number", url.Values{"rate_requests": {"10"}, "rate_period": {"1m"}, "rate_burst": {"1.5"}},
			map[string]string{"rate_burst": "Burst must be a whole number, such as 100."}, nil},
		{"a period posted by hand", url.Values{"rate_requests": {"10"}, "rate_period": {"fortnight"}},
			map[string]string{"rate_period": "Choose a period."}, nil},
		{"too short a period", url.Values{"rate_requests": {"10"}, "rate_period": {"500ms"}},
			map[string]string{"rate_period": "Rate limit period must be 1s to 24h, in whole milliseconds."}, []string{`<option value="500ms" selected>500ms</option>`}},
		{"no quota", url.Values{"quota_requests": {"0"}, "quota_per": {"month"}},
			map[string]string{"quota_requests": "Quota requests must be 1 to 1000000000000."}, []string{`<option value="month" selected>month</option>`}},
		{"too large a quota", url.Values{"quota_requests": {"99999999999999999999"}, "quota_per": {"day"}},
			map[string]string{"quota_requests": "Requests must be a whole number, such as 100."}, nil},
		{"a quota per week", url.Values{"quota_requests": {"100"}, "quota_per": {"week"}},
			map[string]string{"quota_per": "Choose day or month."}, nil},
		{"every limit wrong at once", url.Values{"rate_requests": {"0"}, "rate_period": {"1m"}, "quota_per": {"day"}, "quota_requests": {"-1"},
			"networks": {"10.1.2.3/8"}, "metadata_key": {"a", "a"}, "metadata_value": {"b", "c"}},
			map[string]string{"rate_requests": "Rate limit requests must be 1 to 1000000.", "quota_requests": "Quota requests must be 1 to 1000000000000.",
				"networks": "Network 10.1.2.3/8 has bits set past its length; did you mean 10.0.0.0/8?",
				"metadata": `The key "a" is given twice.`}, []string{`name="metadata_value" value="c"`}},
	}
	limitFields := []string{"rate_requests", "rate_period", "rate_burst", "quota_requests", "quota_per", "networks"}
	hints := map[string]string{"rate_requests": "rate-hint", "rate_period": "rate-hint", "rate_burst": "rate-hint",
		"quota_requests": "quota-hint", "quota_per": "quota-hint", "networks": "networks-hint"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := withForm(url.Values{"name": {"Partner"}, "mode": {"test"}, "scopes": {"links:read"},
				"idempotency_key": {"form_" + strings.ReplaceAll(tt.name, " ", "-")}}, tt.limits)
			status, _, body := f.page("POST", "/dashboard/keys", form)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", status)
			}
			if got := titleOf(body); got != "Error: New API key · Dashboard" {
				t.Errorf("title = %q", got)
			}
			mustContain(t, body, "The key was not created", `value="Partner"`, `value="links:read" checked`)
			mustContain(t, body, tt.keeps...)
			for _, field := range append(limitFields, "metadata") {
				got, want := fieldError(body, field), tt.errors[field]
				if got != want {
					t.Errorf("the error next to %s = %q, want %q", field, got, want)
				}
				if want == "" || field == "metadata" {
					continue
				}
				// The field is described by its error, and marked invalid.
				tag := regexp.MustCompile(`<(?:input|select|textarea) id="` + field + `"[^>]*>`).FindString(body)
				if !strings.Contains(tag, `aria-describedby="`+hints[field]+` `+field+`-error" aria-invalid="true"`) {
					t.Errorf("the field %s is not tied to its error: %s", field, tag)
				}
			}
			if got, want := textarea(body, "networks"), strings.Join(tt.limits["networks"], ""); got != want {
				t.Errorf("the networks shown again = %q, want %q as entered", got, want)
			}
			if got := tokenOf(t, body); got != form.Get("idempotency_key") {
				t.Errorf("the form came back with the token %q, want its own", got)
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d keys created by refused forms", n)
	}
}

func TestCreateWithPolicyJSON(t *testing.T) {
	f := newFixture(t)
	w := f.api("POST", "/dashboard/keys", `{"name":"Partner","mode":"live","scopes":["links:read"],"policy":`+limitedJSON+`}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	out := decodeJSON[struct {
		Key struct {
			ID     uuid.UUID       `json:"id"`
			Policy json.RawMessage `json:"policy"`
		} `json:"key"`
	}](t, w)
	if got := string(out.Key.Policy); got != limitedJSON {
		t.Errorf("the key's policy = %s, want %s", got, limitedJSON)
	}
	if got := f.get(out.Key.ID).Policy; !samePolicy(got, limited()) {
		t.Errorf("the stored policy = %+v", got)
	}
	w = f.api("GET", "/dashboard/keys/"+out.Key.ID.String(), "")
	if !strings.Contains(w.Body.String(), `"policy":`+limitedJSON) {
		t.Errorf("GET shows %s", w.Body)
	}

	t.Run("no policy", func(t *testing.T) {
		for _, policy := range []string{``, `,"policy":null`, `,"policy":{}`, `,"policy":{"networks":[]}`} {
			w := f.api("POST", "/dashboard/keys", `{"name":"Plain","mode":"test","scopes":["links:read"]`+policy+`}`)
			if w.Code != http.StatusCreated || strings.Contains(w.Body.String(), `"policy"`) {
				t.Errorf("%q: %d %s", policy, w.Code, w.Body)
			}
		}
	})
	t.Run("a period in any form Go reads", func(t *testing.T) {
		w := f.api("POST", "/dashboard/keys", `{"name":"n","mode":"test","scopes":["links:read"],"policy":{"rate":{"requests":5,"period":"90s"}}}`)
		out := decodeJSON[issuedOut](t, w)
		if got := f.get(out.Key.ID).Policy; w.Code != http.StatusCreated || got == nil || got.Rate.Period != 90*time.Second {
			t.Errorf("%d: %+v", w.Code, got)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		body := `{"name":"Partner","mode":"test","scopes":["links:read"],"policy":` + limitedJSON + `}`
		h := http.Header{"Idempotency-Key": {"partner-1"}}
		post := func(body string) *httptestResponse {
			return record(f.do(call{method: "POST", path: "/dashboard/keys", contentType: "application/json", body: body, header: h}))
		}
		if r := post(body); r.code != http.StatusCreated {
			t.Fatalf("first: %d", r.code)
		}
		if r := post(body); r.code != http.StatusOK || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("repeat: %d", r.code)
		}
		other := strings.Replace(body, `"requests":100`, `"requests":99`, 1)
		if r := post(other); r.code != http.StatusUnprocessableEntity {
			t.Errorf("repeat with another policy: %d, want 422", r.code)
		}
	})

	before := f.count()
	tests := []struct{ name, policy, detail string }{
		{"a network with bits past its length", `{"networks":["10.1.2.3/8"]}`,
			"policy: network 10.1.2.3/8 has bits set past its length; did you mean 10.0.0.0/8?"},
		{"an address", `{"networks":["10.1.2.3"]}`, "policy: 10.1.2.3 is an address, not a network: write 10.1.2.3/32 for it alone"},
		{"not a network", `{"networks":["office"]}`, `policy: "office" is not a network such as 203.0.113.0/24 or 2001:db8::/32`},
		{"a network twice", `{"networks":["10.0.0.0/8","10.0.0.0/8"]}`, "policy: network 10.0.0.0/8 is listed twice"},
		{"no requests", `{"rate":{"requests":0,"period":"1m"}}`, "policy: rate limit requests must be 1 to 1000000"},
		{"a period too short", `{"rate":{"requests":1,"period":"10ms"}}`, "policy: rate limit period must be 1s to 24h, in whole milliseconds"},
		{"a period Go cannot read", `{"rate":{"requests":1,"period":"fortnight"}}`, `policy: rate limit period: time: invalid duration "fortnight"`},
		{"no period", `{"rate":{"requests":1}}`, `policy: rate limit period is required, such as "1m"`},
		{"a quota per week", `{"quota":{"requests":1,"per":"week"}}`, `policy: a quota period is "day" or "month"`},
		{"a quota without a period", `{"quota":{"requests":1}}`, `policy: quota period must be "day" or "month"`},
		{"no quota", `{"quota":{"requests":0,"per":"day"}}`, "policy: quota requests must be 1 to 1000000000000"},
		{"not an object", `"fast"`, `policy: must be an object such as {"rate": {"requests": 100, "period": "1m"}}`},
		{"networks not a list", `{"networks":"10.0.0.0/8"}`, "policy: networks must be an array of strings"},
		{"quota requests not a number", `{"quota":{"requests":"many","per":"day"}}`, "policy: quota.requests must be a number"},
		{"an unknown limit", `{"rates":{"requests":1,"period":"1s"}}`, `policy: has no field "rates"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problemOf(t, f.api("POST", "/dashboard/keys", `{"name":"n","mode":"test","scopes":["links:read"],"policy":`+tt.policy+`}`),
				http.StatusBadRequest)
			if p.Field != "policy" || !strings.HasPrefix(p.Detail, tt.detail) {
				t.Errorf("problem = %+v, want the field policy and a detail starting %q", p, tt.detail)
			}
		})
	}
	if n := f.count() - before; n != 0 {
		t.Errorf("%d keys created by refused requests", n)
	}
}

func TestUpdatePolicyJSON(t *testing.T) {
	f := newFixture(t)
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Partner", Mode: apikey.Live, Policy: limited()})
	path := "/dashboard/keys/" + rec.ID.String()

	// A field left out, or null, leaves the policy as it is.
	for _, body := range []string{`{"name":"Partner (EU)"}`, `{"policy":null}`, `{}`} {
		if w := f.api("PATCH", path, body); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"policy":`+limitedJSON) {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	if e := f.audited(); len(e) != 1 || !slices.Equal(changedFields(e[0]), []string{"name"}) {
		t.Errorf("audit events = %+v, want the rename only", e)
	}

	// A policy replaces the key's, whole.
	w := f.api("PATCH", path, `{"policy":{"quota":{"requests":500,"per":"month"}}}`)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"policy":{"quota":{"requests":500,"per":"month"}}`) {
		t.Fatalf("replace: %d %s", w.Code, w.Body)
	}
	want := &apikey.Policy{Quota: apikey.Quota{Requests: 500, Per: apikey.Month}}
	if got := f.get(rec.ID).Policy; !samePolicy(got, want) {
		t.Errorf("the stored policy = %+v", got)
	}
	e := f.audited()
	if last := e[len(e)-1]; last.Kind != audit.Updated || !slices.Equal(changedFields(last), []string{"policy"}) ||
		!samePolicy(policyOf(t, last.Changes[0].From), limited()) || !samePolicy(policyOf(t, last.Changes[0].To), want) {
		t.Errorf("audit event = %+v", last)
	}
	if logs := f.lifecycleLogs.String(); !strings.Contains(logs, `policy="{\"rate\":{\"requests\":100`) ||
		!strings.Contains(logs, ` -> {\"quota\":{\"requests\":500,\"per\":\"month\"}}"`) {
		t.Errorf("the log lacks the policies:\n%s", logs)
	}

	// Invalid: refused, and nothing changes.
	for _, body := range []string{`{"policy":{"networks":["10.1.2.3/8"]}}`, `{"name":"Renamed","policy":{"rate":{"requests":-1,"period":"1s"}}}`,
		`{"policy":[]}`} {
		p := problemOf(t, f.api("PATCH", path, body), http.StatusBadRequest)
		if p.Field != "policy" {
			t.Errorf("%s: problem = %+v", body, p)
		}
	}
	if got := f.get(rec.ID); !samePolicy(got.Policy, want) || got.Name != "Partner (EU)" {
		t.Errorf("refused updates changed the key: %+v", got)
	}

	// {} removes it.
	w = f.api("POST", path+"/edit", `{"policy":{}}`)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"policy"`) {
		t.Errorf("remove: %d %s", w.Code, w.Body)
	}
	if got := f.get(rec.ID).Policy; got != nil {
		t.Errorf("the policy after removing it = %+v", got)
	}
	e = f.audited()
	if last := e[len(e)-1]; !slices.Equal(changedFields(last), []string{"policy"}) || last.Changes[0].To != "" ||
		!samePolicy(policyOf(t, last.Changes[0].From), want) || last.Actor != byAlice {
		t.Errorf("audit event = %+v, want the limits removed by alice", last)
	}
	if logs := f.lifecycleLogs.String(); !strings.Contains(logs, `policy="{\"quota\":{\"requests\":500,\"per\":\"month\"}} -> "`) {
		t.Error("the log does not say the limits were removed")
	}
}

func TestEditLimitsFromThePage(t *testing.T) {
	f := newFixture(t)
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Partner", Mode: apikey.Test, Policy: limited(),
		Scopes: scope.NewSet(scope.LinksRead, scope.EventsRead)})
	id := rec.ID.String()
	path := "/dashboard/keys/" + id + "/edit"

	_, _, body := f.page("GET", path, nil)
	mustContain(t, body, "Change the key's name, metadata, scopes and limits.", "Clear every field to remove the key's limits.",
		`name="rate_requests" type="number" min="1" step="1" inputmode="numeric" value="100"`,
		`name="rate_burst" type="number" min="1" step="1" inputmode="numeric" value="20"`,
		`name="quota_requests" type="number" min="1" step="1" inputmode="numeric" value="10000"`)
	if got := selected(body, "rate_period"); got != "1m" {
		t.Errorf("the period selected = %q, want 1m", got)
	}
	if got := selected(body, "quota_per"); got != "day" {
		t.Errorf("the quota period selected = %q, want day", got)
	}
	if got := textarea(body, "networks"); got != "203.0.113.0/24\n2001:db8::/32" {
		t.Errorf("the networks = %q", got)
	}

	// Saving the form as it is changes nothing of the limits.
	base := url.Values{"name": {"Partner"}, "scopes": {"links:read", "events:read"}}
	form := withForm(url.Values{"name": {"Partner (renamed)"}, "scopes": {"links:read", "events:read"}}, limitedForm())
	if status, _, _ := f.page("POST", path, form); status != http.StatusSeeOther {
		t.Fatalf("save: %d", status)
	}
	if got := f.get(rec.ID); !samePolicy(got.Policy, limited()) || got.Name != "Partner (renamed)" {
		t.Errorf("after saving the form as it is: %+v", got)
	}
	if e := f.audited(); len(e) != 1 || !slices.Equal(changedFields(e[0]), []string{"name"}) {
		t.Errorf("audit = %+v, want the rename only", e)
	}

	// Errors: shown next to their fields, as entered; nothing changes.
	bad := withForm(base, url.Values{"rate_requests": {"50"}, "rate_period": {"1h"}, "rate_burst": {""},
		"quota_requests": {""}, "quota_per": {"day"}, "networks": {"203.0.113.0/24\n10.1.2.3/8"}})
	status, _, body := f.page("POST", path, bad)
	if status != http.StatusBadRequest {
		t.Fatalf("invalid networks: %d", status)
	}
	if got := fieldError(body, "networks"); got != "Network 10.1.2.3/8 has bits set past its length; did you mean 10.0.0.0/8?" {
		t.Errorf("the error next to the networks = %q", got)
	}
	if got := titleOf(body); got != "Error: Edit key · Dashboard" {
		t.Errorf("title = %q", got)
	}
	mustContain(t, body, "The key was not changed", `name="rate_requests" type="number" min="1" step="1" inputmode="numeric" value="50"`)
	if got := selected(body, "rate_period"); got != "1h" {
		t.Errorf("the period shown again = %q, want 1h as chosen", got)
	}
	if got := textarea(body, "networks"); got != "203.0.113.0/24\n10.1.2.3/8" {
		t.Errorf("the networks shown again = %q", got)
	}
	// A name error and a limits error, both at once.
	status, _, body = f.page("POST", path, withForm(url.Values{"name": {" "}, "scopes": {"links:read"}}, url.Values{"quota_requests": {"x"}, "quota_per": {"day"}}))
	if status != http.StatusBadRequest || fieldError(body, "name") != "Name is required." ||
		fieldError(body, "quota_requests") != "Requests must be a whole number, such as 100." {
		t.Errorf("%d: name %q, quota %q", status, fieldError(body, "name"), fieldError(body, "quota_requests"))
	}
	if got := f.get(rec.ID).Policy; !samePolicy(got, limited()) {
		t.Errorf("refused edits changed the policy to %+v", got)
	}

	// Change them.
	changed := withForm(base, url.Values{"rate_requests": {"50"}, "rate_period": {"1h"}, "rate_burst": {""},
		"quota_requests": {""}, "quota_per": {"day"}, "networks": {"10.0.0.0/8"}})
	if status, header, _ := f.page("POST", path, changed); status != http.StatusSeeOther || header.Get("Location") != "../../keys/"+id {
		t.Fatalf("change: %d to %q", status, header.Get("Location"))
	}
	want := &apikey.Policy{Rate: apikey.RateLimit{Requests: 50, Period: time.Hour}, Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if got := f.get(rec.ID).Policy; !samePolicy(got, want) {
		t.Errorf("the policy = %+v, want %+v", got, want)
	}
	_, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	mustContain(t, body, `<dd id="limit-rate">50 requests per hour</dd>`, `<dd id="limit-quota"><span class="muted">None</span></dd>`,
		`<li><code>10.0.0.0/8</code></li>`)

	// A form without limit fields, as one from before they existed, leaves
	// them as they are.
	if status, _, _ := f.page("POST", path, url.Values{"name": {"Partner"}, "scopes": {"links:read"}}); status != http.StatusSeeOther {
		t.Fatalf("a form without limits: %d", status)
	}
	if got := f.get(rec.ID).Policy; !samePolicy(got, want) {
		t.Errorf("a form without limit fields changed the policy to %+v", got)
	}

	// Clearing every field removes them.
	cleared := withForm(url.Values{"name": {"Partner"}, "scopes": {"links:read"}}, url.Values{"rate_requests": {""}, "rate_period": {"1h"},
		"rate_burst": {""}, "quota_requests": {""}, "quota_per": {"day"}, "networks": {""}})
	if status, _, _ := f.page("POST", path, cleared); status != http.StatusSeeOther {
		t.Fatalf("clear: %d", status)
	}
	if got := f.get(rec.ID).Policy; got != nil {
		t.Errorf("the policy after clearing every field = %+v", got)
	}
	e := f.audited()
	if last := e[len(e)-1]; !slices.Equal(changedFields(last), []string{"policy"}) {
		t.Errorf("audit event = %+v", last)
	}
	_, _, body = f.page("GET", path, nil)
	mustContain(t, body, `name="rate_requests" type="number" min="1" step="1" inputmode="numeric" value=""`)
	if got := textarea(body, "networks"); got != "" {
		t.Errorf("the networks of a key without limits = %q", got)
	}

	t.Run("a period the form does not offer", func(t *testing.T) {
		odd := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: 90 * time.Second}}
		_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Odd", Mode: apikey.Test, Policy: odd})
		path := "/dashboard/keys/" + rec.ID.String() + "/edit"
		_, _, body := f.page("GET", path, nil)
		if got := selected(body, "rate_period"); got != "1m30s" {
			t.Errorf("the period selected = %q, want 1m30s", got)
		}
		mustContain(t, body, `<option value="1m30s" selected>1m30s</option>`)
		form := withForm(url.Values{"name": {"Odd"}, "scopes": {"sessions:write"}}, url.Values{"rate_requests": {"10"}, "rate_period": {"1m30s"},
			"rate_burst": {""}, "quota_requests": {""}, "quota_per": {"day"}, "networks": {""}})
		if status, _, _ := f.page("POST", path, form); status != http.StatusSeeOther {
			t.Fatalf("save: %d", status)
		}
		if got := f.get(rec.ID).Policy; !samePolicy(got, odd) {
			t.Errorf("saving changed the policy to %+v", got)
		}
	})
}

// TestKeyPageShowsUsage counts requests with a real limiter, the one the
// dashboard reads, and checks the numbers the key's page shows, at the
// lifecycle's time.
func TestKeyPageShowsUsage(t *testing.T) {
	limiter := limit.NewMemory()
	f := newFixture(t, dashboard.WithLimiter(limiter))
	ctx := context.Background()
	use := func(rec apikey.Record, n int) {
		t.Helper()
		for range n {
			if d, err := limiter.Allow(ctx, rec.ID, rec.Policy, f.keys.Now()); err != nil || !d.Allowed {
				t.Fatalf("Allow = %+v, %v", d, err)
			}
		}
	}
	usage := func(rec apikey.Record) (rate, quota string) {
		t.Helper()
		status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
		if status != http.StatusOK {
			t.Fatalf("the key's page: %d", status)
		}
		find := func(id string) string {
			m := regexp.MustCompile(`<p id="usage-` + id + `"><strong>[A-Za-z]+:</strong> ([^<]*)</p>`).FindStringSubmatch(body)
			if m == nil {
				return ""
			}
			return html.UnescapeString(m[1])
		}
		return find("rate"), find("quota")
	}

	both := &apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute}, Quota: apikey.Quota{Requests: 10_000, Per: apikey.Day}}
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Partner", Mode: apikey.Live, Policy: both})
	if rate, quota := usage(rec); rate != "100 of 100 left" || quota != "0 of 10,000 used today, resets at 00:00 UTC" {
		t.Errorf("unused: rate %q, quota %q", rate, quota)
	}
	use(rec, 63)
	// 63 requests at once: 37 left, and one comes back every 600 ms.
	for range 3 { // the page only looks: it counts nothing
		if rate, quota := usage(rec); rate != "37 of 100 left, full in 38 s" || quota != "63 of 10,000 used today, resets at 00:00 UTC" {
			t.Errorf("after 63 requests: rate %q, quota %q", rate, quota)
		}
	}
	f.clock.Advance(10 * time.Second)
	if rate, quota := usage(rec); rate != "53 of 100 left, full in 28 s" || quota != "63 of 10,000 used today, resets at 00:00 UTC" {
		t.Errorf("10 s later: rate %q, quota %q", rate, quota)
	}
	// The next day, by the lifecycle's clock: a new quota.
	f.clock.Advance(24 * time.Hour)
	if rate, quota := usage(rec); rate != "100 of 100 left" || quota != "0 of 10,000 used today, resets at 00:00 UTC" {
		t.Errorf("a day later: rate %q, quota %q", rate, quota)
	}

	t.Run("a quota per month", func(t *testing.T) {
		p := &apikey.Policy{Quota: apikey.Quota{Requests: 10_000, Per: apikey.Month}}
		_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Monthly", Mode: apikey.Test, Policy: p})
		use(rec, 4210)
		rate, quota := usage(rec)
		_, end := apikey.Month.Bounds(f.keys.Now())
		if want := "4,210 of 10,000 used this month, resets on " + end.Format(time.DateOnly) + " at 00:00 UTC"; rate != "" || quota != want {
			t.Errorf("rate %q, quota %q; want no rate and %q", rate, quota, want)
		}
	})
	t.Run("a rate limit with a burst", func(t *testing.T) {
		p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Hour, Burst: 5}}
		_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Bursty", Mode: apikey.Test, Policy: p})
		use(rec, 5)
		if rate, quota := usage(rec); rate != "0 of 5 left, full in 5 h" || quota != "" {
			t.Errorf("rate %q, quota %q", rate, quota)
		}
	})
	t.Run("no usage to show", func(t *testing.T) {
		nets := &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
		_, onlyNets := f.createFor(f.owner, keyward.CreateParams{Name: "Networks only", Mode: apikey.Test, Policy: nets})
		_, none := f.create("No limits", apikey.Test)
		for _, rec := range []apikey.Record{onlyNets, none} {
			_, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
			mustNotContain(t, body, `id="usage"`)
		}
	})
	t.Run("without a limiter", func(t *testing.T) {
		g := newFixture(t)
		_, rec := g.createFor(g.owner, keyward.CreateParams{Name: "Partner", Mode: apikey.Live, Policy: both})
		_, _, body := g.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
		mustContain(t, body, `<dd id="limit-rate">100 requests per minute</dd>`)
		mustNotContain(t, body, `id="usage"`)
	})
	t.Run("every role", func(t *testing.T) {
		for _, role := range roles {
			_, _, body := f.pageAs(as(role), "GET", "/dashboard/keys/"+rec.ID.String(), nil)
			mustContain(t, body, `<p id="usage-rate">`)
		}
	})
}

// A brokenLimiter fails every call, as a limiter whose backend is down
// does; if slow, it fails only when its context ends.
type brokenLimiter struct{ slow bool }

var errLimiterDown = errors.New("redis: dial tcp 10.9.8.7:6379: connection refused")

func (l brokenLimiter) Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (limit.Decision, error) {
	return l.Peek(ctx, id, p, now)
}

func (l brokenLimiter) Peek(ctx context.Context, _ uuid.UUID, _ *apikey.Policy, _ time.Time) (limit.Decision, error) {
	if l.slow {
		select {
		case <-ctx.Done():
			return limit.Decision{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return limit.Decision{}, errors.New("the page waited 10 s for the limiter")
		}
	}
	return limit.Decision{}, errLimiterDown
}

func TestUsageUnavailable(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) {
			f := newFixture(t, dashboard.WithLimiter(brokenLimiter{slow: slow}))
			_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Partner", Mode: apikey.Live, Policy: limited()})
			began := time.Now()
			status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200", status)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("the page took %v", took)
			}
			mustContain(t, body, `<p class="muted" id="usage-unavailable">Usage unavailable: the rate limiter did not answer.</p>`,
				`<dd id="limit-rate">100 requests per minute, bursts of up to 20</dd>`)
			mustNotContain(t, body, "10.9.8.7", "connection refused", `id="usage-rate"`)
			if logs := f.logs.String(); !strings.Contains(logs, "limiter unavailable") {
				t.Errorf("the failure was not logged:\n%s", logs)
			}
			// The list asks no limiter.
			if status, _, _ := f.page("GET", "/dashboard/keys", nil); status != http.StatusOK {
				t.Errorf("the list: %d", status)
			}
		})
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	// What the API writes, the API reads back: a client can copy a key's
	// policy to another.
	f := newFixture(t)
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Source", Mode: apikey.Test, Policy: limited()})
	var got struct {
		Policy json.RawMessage `json:"policy"`
	}
	if err := json.Unmarshal(f.api("GET", "/dashboard/keys/"+rec.ID.String(), "").Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	w := f.api("POST", "/dashboard/keys", `{"name":"Copy","mode":"test","scopes":["links:read"],"policy":`+string(got.Policy)+`}`)
	out := decodeJSON[issuedOut](t, w)
	if copied := f.get(out.Key.ID).Policy; w.Code != http.StatusCreated || !reflect.DeepEqual(copied, f.get(rec.ID).Policy) {
		t.Errorf("%d: copied %+v", w.Code, copied)
	}
}
