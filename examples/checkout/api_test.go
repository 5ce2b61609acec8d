package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/secretscanning"
)

// api is the example's handler with its own keys, and its data seeded with
// the demo merchants'.
type api struct {
	keys   *keyward.Keys
	h      http.Handler
	github *ecdsa.PrivateKey // signs secret-scanning alerts, standing in for GitHub's key
}

func newAPI(t *testing.T) *api {
	keys := keywardtest.NewKeys(t)
	lim := limit.NewMemory()
	dash, err := newDashboard(keys, "not used here", demoUsers, slog.New(slog.DiscardHandler), lim)
	if err != nil {
		t.Fatal(err)
	}
	github, scanning := newScanning(t, keys)
	return &api{keys: keys, h: newHandler(keys, newData(keys.Now, merchants), dash, scanning, lim), github: github}
}

// newScanning returns the secret-scanning endpoint with a signing key
// made for the test in place of GitHub's, which it cannot fetch.
func newScanning(t *testing.T, keys *keyward.Keys) (*ecdsa.PrivateKey, http.Handler) {
	t.Helper()
	github, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := secretscanning.NewHandler(keys,
		secretscanning.WithKeySource(secretscanning.StaticKeys(secretscanning.PublicKey{ID: "test-key", Key: &github.PublicKey, Current: true})),
		secretscanning.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return github, h
}

// key issues a key of owner and returns it raw.
func (a *api) key(t *testing.T, owner string, mode apikey.Mode, scopes ...scope.Scope) string {
	return keywardtest.Issue(t, a.keys.Owner(owner), keyward.CreateParams{Mode: mode, Scopes: scope.NewSet(scopes...)}).Raw
}

func (a *api) do(method, path, key, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rr := httptest.NewRecorder()
	a.h.ServeHTTP(rr, r)
	return rr
}

// ids returns the IDs of the objects a list route answers with key.
func (a *api) ids(t *testing.T, path, key string) []string {
	t.Helper()
	rr := a.do("GET", path, key, "")
	var l struct {
		Object string
		Data   []struct{ ID string }
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &l); err != nil || rr.Code != http.StatusOK || l.Object != "list" {
		t.Fatalf("GET %s: %d %s", path, rr.Code, rr.Body)
	}
	ids := []string{}
	for _, o := range l.Data {
		ids = append(ids, o.ID)
	}
	return ids
}

// TestRouteScopes checks every route against its scope: a key holding only
// that scope gets through, a key holding every other scope gets 403.
func TestRouteScopes(t *testing.T) {
	a := newAPI(t)
	routes := []struct {
		method, path, body string
		scope              scope.Scope
	}{
		{"GET", "/api/v1/links", "", scope.LinksRead},
		{"GET", "/api/v1/links/plink_test_X", "", scope.LinksRead},
		{"POST", "/api/v1/links", `{"name":"Mug","amount":{"value":"12","currency":"EUR"}}`, scope.LinksWrite},
		{"DELETE", "/api/v1/links/plink_test_X", "", scope.LinksWrite},
		{"GET", "/api/v1/sessions", "", scope.SessionsRead},
		{"GET", "/api/v1/sessions/cs_test_X", "", scope.SessionsRead},
		{"POST", "/api/v1/sessions", sessionBody, scope.SessionsWrite},
		{"GET", "/api/v1/webhooks", "", scope.WebhooksRead},
		{"GET", "/api/v1/webhooks/we_test_X", "", scope.WebhooksRead},
		{"POST", "/api/v1/webhooks", `{"url":"https://example.com/hook","events":["*"]}`, scope.WebhooksWrite},
		{"DELETE", "/api/v1/webhooks/we_test_X", "", scope.WebhooksWrite},
		{"GET", "/api/v1/events", "", scope.EventsRead},
		{"GET", "/api/v1/events/evt_test_X", "", scope.EventsRead},
		{"GET", "/api/v1/customers", "", scope.CustomersRead},
		{"GET", "/api/v1/customers/cus_test_X", "", scope.CustomersRead},
		{"POST", "/api/v1/customers", `{"email":"alan@example.com"}`, scope.CustomersWrite},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			only := a.key(t, "acme", apikey.Test, rt.scope)
			rr := a.do(rt.method, rt.path, only, rt.body)
			if rr.Code == http.StatusForbidden || rr.Code == http.StatusUnauthorized || rr.Code >= 500 {
				t.Errorf("with %s only: %d %s", rt.scope, rr.Code, rr.Body)
			}
			others := slices.DeleteFunc(scope.Default.Scopes(), func(s scope.Scope) bool { return s == rt.scope })
			rr = a.do(rt.method, rt.path, a.key(t, "acme", apikey.Test, others...), rt.body)
			if got, want := rr.Header().Get("WWW-Authenticate"), `Bearer realm="checkout", error="insufficient_scope", scope="`+string(rt.scope)+`"`; rr.Code != http.StatusForbidden || got != want {
				t.Errorf("without %s: %d %q, want 403 %q", rt.scope, rr.Code, got, want)
			}
			if rr := a.do(rt.method, rt.path, "", rt.body); rr.Code != http.StatusUnauthorized {
				t.Errorf("without a key: %d", rr.Code)
			}
		})
	}
}

type fieldErr struct{ Pointer, Detail string }

type problemOut struct {
	Type, Title, Detail string
	Status              int
	Errors              []fieldErr
}

func TestCreateSessionValidation(t *testing.T) {
	a := newAPI(t)
	key := a.key(t, "acme", apikey.Test, scope.SessionsWrite)
	tests := []struct {
		name         string
		contentType  string
		body         string
		status       int
		detail       string
		wantPointers []string
	}{
		{name: "empty body", body: "", status: 400, detail: "The body is empty; send a JSON object."},
		{name: "bad JSON", body: `{"amount":`, status: 400, detail: "The body is not valid JSON: it ends too early."},
		{name: "syntax error", body: `{"amount" 1}`, status: 400, detail: "The body is not valid JSON (at byte 11)."},
		{name: "not an object", body: `[1]`, status: 400, detail: "The body must be a JSON object."},
		{name: "two objects", body: sessionBody + sessionBody, status: 400, detail: "The body must be a single JSON object."},
		{name: "unknown field", body: `{"success_url":"https://a.example"}`, status: 400, detail: "The body has an unknown field.", wantPointers: []string{"/success_url"}},
		{name: "amount as number", body: `{"amount":{"value":49.99,"currency":"USD"},"successUrl":"https://a.example"}`, status: 400, detail: "A field has the wrong JSON type.", wantPointers: []string{"/amount/value"}},
		{name: "missing amount", body: `{"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount"}},
		{name: "missing URL", body: `{"amount":{"value":"49.99","currency":"USD"}}`, status: 400, wantPointers: []string{"/successUrl"}},
		{name: "relative URL", body: `{"amount":{"value":"49.99","currency":"USD"},"successUrl":"/thanks"}`, status: 400, wantPointers: []string{"/successUrl"}},
		{name: "ftp URL", body: `{"amount":{"value":"49.99","currency":"USD"},"successUrl":"ftp://a.example/"}`, status: 400, wantPointers: []string{"/successUrl"}},
		{name: "lowercase currency", body: `{"amount":{"value":"49.99","currency":"usd"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/currency"}},
		{name: "unknown currency", body: `{"amount":{"value":"49.99","currency":"XXX"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/currency"}},
		{name: "three decimals", body: `{"amount":{"value":"49.999","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "decimals in yen", body: `{"amount":{"value":"4999.5","currency":"JPY"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "zero", body: `{"amount":{"value":"0.00","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "negative", body: `{"amount":{"value":"-5","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "exponent", body: `{"amount":{"value":"1e3","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "leading zero", body: `{"amount":{"value":"049.99","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "too large", body: `{"amount":{"value":"123456789","currency":"USD"},"successUrl":"https://a.example"}`, status: 400, wantPointers: []string{"/amount/value"}},
		{name: "every field wrong", body: `{"amount":{"value":"x","currency":"USD"},"successUrl":"nope","metadata":{"":"v"}}`, status: 400, detail: "3 fields are invalid. See errors.", wantPointers: []string{"/amount/value", "/successUrl", "/metadata"}},
		{name: "long metadata value", body: `{"amount":{"value":"1","currency":"USD"},"successUrl":"https://a.example","metadata":{"k":"` + strings.Repeat("v", 501) + `"}}`, status: 400, wantPointers: []string{"/metadata/k"}},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: sessionBody, status: 415, detail: "Send the body as application/json."},
		{name: "huge body", body: `{"successUrl":"` + strings.Repeat("a", maxBody) + `"}`, status: 413},
		{name: "valid", body: sessionBody, status: 201},
		{name: "valid, JSON with charset", contentType: "application/json; charset=utf-8", body: sessionBody, status: 201},
		{name: "valid, no decimals", body: `{"amount":{"value":"50","currency":"EUR"},"successUrl":"http://localhost:3000/ok"}`, status: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/sessions", strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+key)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			rr := httptest.NewRecorder()
			a.h.ServeHTTP(rr, r)
			if rr.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rr.Code, tc.status, rr.Body)
			}
			if tc.status == 201 {
				return
			}
			if got := rr.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Fatalf("Content-Type %q", got)
			}
			var p problemOut
			if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status != tc.status || p.Title == "" || p.Type == "" {
				t.Errorf("problem %+v", p)
			}
			if tc.detail != "" && p.Detail != tc.detail {
				t.Errorf("detail %q, want %q", p.Detail, tc.detail)
			}
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Pointer)
				if e.Detail == "" {
					t.Errorf("no detail for %s", e.Pointer)
				}
			}
			if !slices.Equal(got, tc.wantPointers) {
				t.Errorf("pointers %q, want %q", got, tc.wantPointers)
			}
		})
	}
}

func TestCreateSessionCanonicalAmount(t *testing.T) {
	a := newAPI(t)
	key := a.key(t, "acme", apikey.Test, scope.SessionsWrite, scope.SessionsRead)
	for _, tc := range []struct{ in, currency, want string }{
		{"49.9", "USD", "49.90"}, {"5", "EUR", "5.00"}, {"4999", "JPY", "4999"}, {"0.01", "GBP", "0.01"},
	} {
		rr := a.do("POST", "/api/v1/sessions", key, `{"amount":{"value":"`+tc.in+`","currency":"`+tc.currency+`"},"successUrl":"https://a.example"}`)
		var s Session
		if err := json.Unmarshal(rr.Body.Bytes(), &s); err != nil || rr.Code != 201 {
			t.Fatalf("%s %s: %d %s", tc.in, tc.currency, rr.Code, rr.Body)
		}
		if s.Amount.Value != tc.want {
			t.Errorf("%s %s: value %q, want %q", tc.in, tc.currency, s.Amount.Value, tc.want)
		}
		// The session can be read back.
		if rr := a.do("GET", "/api/v1/sessions/"+s.ID, key, ""); rr.Code != 200 {
			t.Errorf("GET the created session: %d", rr.Code)
		}
	}
}

// TestModesAreSeparate checks that live keys never see test data, and the
// other way round.
func TestModesAreSeparate(t *testing.T) {
	a := newAPI(t)
	test := a.key(t, "acme", apikey.Test, scope.Default.Scopes()...)
	live := a.key(t, "acme", apikey.Live, scope.Default.Scopes()...)

	count := func(key, path string) int {
		rr := a.do("GET", path, key, "")
		var l struct{ Data []json.RawMessage }
		if err := json.Unmarshal(rr.Body.Bytes(), &l); err != nil || rr.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rr.Code, rr.Body)
		}
		return len(l.Data)
	}
	if got := count(test, "/api/v1/customers"); got != 2 {
		t.Errorf("acme's test customers: %d, want the 2 seeded", got)
	}
	if got := count(live, "/api/v1/customers"); got != 0 {
		t.Errorf("live customers: %d, want 0", got)
	}
	rr := a.do("POST", "/api/v1/customers", live, `{"email":"alan@example.com","name":"Alan Turing"}`)
	var c Customer
	if err := json.Unmarshal(rr.Body.Bytes(), &c); err != nil || rr.Code != 201 || c.Mode != apikey.Live || !strings.HasPrefix(c.ID, "cus_live_") {
		t.Fatalf("POST customer: %d %s", rr.Code, rr.Body)
	}
	if got := count(live, "/api/v1/customers"); got != 1 {
		t.Errorf("live customers after create: %d, want 1", got)
	}
	if rr := a.do("GET", "/api/v1/customers/"+c.ID, test, ""); rr.Code != 404 {
		t.Errorf("a test key read a live customer: %d", rr.Code)
	}
	if got := count(live, "/api/v1/events"); got != 1 {
		t.Errorf("live events: %d, want customer.created", got)
	}
}

func TestLinksAndWebhooksLifecycle(t *testing.T) {
	a := newAPI(t)
	key := a.key(t, "acme", apikey.Test, scope.Default.Scopes()...)
	for _, tc := range []struct{ path, body, bad string }{
		{"/api/v1/links", `{"name":"Mug","amount":{"value":"12.50","currency":"EUR"}}`, `{"name":"","amount":{"value":"12.50","currency":"EUR"}}`},
		{"/api/v1/webhooks", `{"url":"https://example.com/hook","events":["checkout.session.created"]}`, `{"url":"https://example.com/hook","events":["nope"]}`},
	} {
		if rr := a.do("POST", tc.path, key, tc.bad); rr.Code != 400 {
			t.Errorf("POST %s %s: %d, want 400", tc.path, tc.bad, rr.Code)
		}
		rr := a.do("POST", tc.path, key, tc.body)
		var obj struct{ ID string }
		if err := json.Unmarshal(rr.Body.Bytes(), &obj); err != nil || rr.Code != 201 {
			t.Fatalf("POST %s: %d %s", tc.path, rr.Code, rr.Body)
		}
		if rr := a.do("GET", tc.path+"/"+obj.ID, key, ""); rr.Code != 200 {
			t.Errorf("GET the new object: %d", rr.Code)
		}
		if rr := a.do("DELETE", tc.path+"/"+obj.ID, key, ""); rr.Code != 204 {
			t.Errorf("DELETE: %d", rr.Code)
		}
		if rr := a.do("GET", tc.path+"/"+obj.ID, key, ""); rr.Code != 404 {
			t.Errorf("GET after DELETE: %d", rr.Code)
		}
		if rr := a.do("DELETE", tc.path+"/"+obj.ID, key, ""); rr.Code != 404 {
			t.Errorf("DELETE twice: %d", rr.Code)
		}
	}
	rr := a.do("GET", "/api/v1/events", key, "")
	var events struct{ Data []Event }
	json.Unmarshal(rr.Body.Bytes(), &events)
	var types []string
	for _, e := range events.Data {
		types = append(types, e.Type)
	}
	want := []string{"webhook_endpoint.deleted", "webhook_endpoint.created", "payment_link.deleted", "payment_link.created"}
	if len(types) < len(want) || !slices.Equal(types[:len(want)], want) {
		t.Errorf("latest events %q, want %q first", types, want)
	}
}

func TestNotFoundDoesNotEchoOddIDs(t *testing.T) {
	a := newAPI(t)
	key := a.key(t, "acme", apikey.Test, scope.LinksRead)
	rr := a.do("GET", "/api/v1/links/%3Cscript%3E", key, "")
	if rr.Code != 404 || strings.Contains(rr.Body.String(), "script") {
		t.Errorf("%d %s", rr.Code, rr.Body)
	}
}

// TestSeededData checks that each merchant's keys see that merchant's demo
// data, and only it, stamped by the lifecycle's clock.
func TestSeededData(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	keys := keywardtest.NewKeys(t, keyward.WithClock(func() time.Time { return at.Add(123 * time.Millisecond) }))
	lim := limit.NewMemory()
	dash, err := newDashboard(keys, "not used here", demoUsers, slog.New(slog.DiscardHandler), lim)
	if err != nil {
		t.Fatal(err)
	}
	github, scanning := newScanning(t, keys)
	a := &api{keys: keys, h: newHandler(keys, newData(keys.Now, merchants), dash, scanning, lim), github: github}

	seen := map[string]string{} // customer email -> merchant
	for _, m := range merchants {
		t.Run(m.id, func(t *testing.T) {
			key := a.key(t, m.id, apikey.Test, scope.CustomersRead, scope.LinksRead, scope.EventsRead)
			var customers struct{ Data []Customer }
			json.Unmarshal(a.do("GET", "/api/v1/customers", key, "").Body.Bytes(), &customers)
			var links struct{ Data []Link }
			json.Unmarshal(a.do("GET", "/api/v1/links", key, "").Body.Bytes(), &links)
			var events struct{ Data []Event }
			json.Unmarshal(a.do("GET", "/api/v1/events", key, "").Body.Bytes(), &events)

			var gotEmails, wantEmails, gotLinks, wantLinks []string
			for _, c := range customers.Data {
				gotEmails = append(gotEmails, c.Email)
				if !c.CreatedAt.Equal(at) {
					t.Errorf("customer %s created at %v, want the lifecycle's clock, %v", c.Email, c.CreatedAt, at)
				}
				if other, ok := seen[c.Email]; ok {
					t.Errorf("customer %s is both %s's and %s's", c.Email, other, m.id)
				}
				seen[c.Email] = m.id
			}
			for _, c := range m.customers {
				wantEmails = append(wantEmails, c.Email)
			}
			for _, l := range links.Data {
				gotLinks = append(gotLinks, l.Name+" "+l.Amount.Value+" "+l.Amount.Currency)
			}
			for _, l := range m.links {
				wantLinks = append(wantLinks, l.Name+" "+l.Amount.Value+" "+l.Amount.Currency)
			}
			slices.Sort(gotEmails)
			slices.Sort(wantEmails)
			slices.Sort(gotLinks)
			slices.Sort(wantLinks)
			if len(wantEmails) == 0 || !slices.Equal(gotEmails, wantEmails) {
				t.Errorf("customers %q, want %q", gotEmails, wantEmails)
			}
			if len(wantLinks) == 0 || !slices.Equal(gotLinks, wantLinks) {
				t.Errorf("links %q, want %q", gotLinks, wantLinks)
			}
			if got, want := len(events.Data), len(m.customers)+len(m.links); got != want {
				t.Errorf("%d events, want %d, one per seeded object", got, want)
			}
		})
	}
}

// TestMerchantIsolation checks every resource route with both merchants'
// keys: a merchant's key never lists, reads or deletes another merchant's
// objects, which answer exactly as unknown IDs do, and what it creates is
// its own.
func TestMerchantIsolation(t *testing.T) {
	a := newAPI(t)
	all := scope.Default.Scopes()
	keys := map[string]string{"acme": a.key(t, "acme", apikey.Test, all...), "globex": a.key(t, "globex", apikey.Test, all...)}
	resources := []struct {
		path, body string
		deletable  bool
	}{
		{"/api/v1/links", `{"name":"Mug","amount":{"value":"12.50","currency":"EUR"}}`, true},
		{"/api/v1/sessions", sessionBody, false},
		{"/api/v1/webhooks", `{"url":"https://example.com/hook","events":["*"]}`, true},
		{"/api/v1/customers", `{"email":"alan@example.com","name":"Alan Turing"}`, false},
		{"/api/v1/events", "", false}, // made by the creates of the others
	}
	// create makes an object as owner and returns its ID; for events, the
	// ID of the owner's newest event.
	create := func(t *testing.T, path, body, owner string) string {
		t.Helper()
		if body == "" {
			return a.ids(t, path, keys[owner])[0]
		}
		rr := a.do("POST", path, keys[owner], body)
		var obj struct{ ID string }
		if err := json.Unmarshal(rr.Body.Bytes(), &obj); err != nil || rr.Code != http.StatusCreated || obj.ID == "" {
			t.Fatalf("POST %s as %s: %d %s", path, owner, rr.Code, rr.Body)
		}
		return obj.ID
	}
	// unknownID returns an ID of the same form as id that no object has.
	unknownID := func(id string) string {
		prefix, _, _ := strings.Cut(id, "_test_")
		return newID(prefix, apikey.Test)
	}
	// same checks that two responses are the same but for the ID they name.
	same := func(t *testing.T, what string, got *httptest.ResponseRecorder, gotID string, want *httptest.ResponseRecorder, wantID string) {
		t.Helper()
		g, w := strings.ReplaceAll(got.Body.String(), gotID, "ID"), strings.ReplaceAll(want.Body.String(), wantID, "ID")
		if got.Code != http.StatusNotFound || got.Code != want.Code || g != w ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("%s: %d %s, want what an unknown ID gets: %d %s", what, got.Code, got.Body, want.Code, want.Body)
		}
	}

	for _, pair := range [][2]string{{"acme", "globex"}, {"globex", "acme"}} {
		owner, other := pair[0], pair[1]
		for _, res := range resources {
			t.Run(owner+"'s "+strings.TrimPrefix(res.path, "/api/v1/")+", "+other+"'s key", func(t *testing.T) {
				id := create(t, res.path, res.body, owner)
				if !slices.Contains(a.ids(t, res.path, keys[owner]), id) {
					t.Fatalf("%s does not list its own object", owner)
				}

				// list
				otherIDs := a.ids(t, res.path, keys[other])
				for _, oid := range otherIDs {
					if slices.Contains(a.ids(t, res.path, keys[owner]), oid) {
						t.Errorf("%s and %s both list %s", owner, other, oid)
					}
				}
				if slices.Contains(otherIDs, id) {
					t.Errorf("%s lists %s's object %s", other, owner, id)
				}

				// get
				unknown := unknownID(id)
				same(t, "GET "+other+" -> "+owner,
					a.do("GET", res.path+"/"+id, keys[other], ""), id,
					a.do("GET", res.path+"/"+unknown, keys[other], ""), unknown)

				// delete
				if res.deletable {
					same(t, "DELETE "+other+" -> "+owner,
						a.do("DELETE", res.path+"/"+id, keys[other], ""), id,
						a.do("DELETE", res.path+"/"+unknown, keys[other], ""), unknown)
				}
				if rr := a.do("GET", res.path+"/"+id, keys[owner], ""); rr.Code != http.StatusOK {
					t.Errorf("%s's object after %s's requests: %d %s", owner, other, rr.Code, rr.Body)
				}
				if got := a.ids(t, res.path, keys[other]); !slices.Equal(got, otherIDs) {
					t.Errorf("%s's list changed under %s's requests: %q, then %q", other, other, otherIDs, got)
				}

				// create: the other's object is its own
				if res.body != "" {
					mine := create(t, res.path, res.body, other)
					if !slices.Contains(a.ids(t, res.path, keys[other]), mine) || slices.Contains(a.ids(t, res.path, keys[owner]), mine) {
						t.Errorf("%s's new object %s is not listed for %s only", other, mine, other)
					}
					if rr := a.do("GET", res.path+"/"+mine, keys[owner], ""); rr.Code != http.StatusNotFound {
						t.Errorf("%s read %s's new object: %d", owner, other, rr.Code)
					}
				}
			})
		}
	}
}

// TestScopedFailsClosed checks that a handler given no key, or a key
// without a valid owner, answers 500 and touches no data; Authenticate
// never lets such a request through, so this guards a mistake in wiring.
func TestScopedFailsClosed(t *testing.T) {
	d := newData(time.Now, merchants)
	h := d.routes()
	before := len(d.customers.rows)
	for _, owner := range []string{"", "has space"} {
		rec := keywardtest.Record(scope.CustomersWrite, scope.CustomersRead)
		rec.Owner = owner
		for _, tc := range []struct{ method, body string }{
			{"GET", ""},
			{"POST", `{"email":"alan@example.com"}`},
		} {
			r := httptest.NewRequest(tc.method, "/api/v1/customers", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/json")
			r = r.WithContext(middleware.NewContext(r.Context(), rec))
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if rr.Code != http.StatusInternalServerError || strings.Contains(rr.Body.String(), "@") {
				t.Errorf("%s with owner %q: %d %s, want 500 and no data", tc.method, owner, rr.Code, rr.Body)
			}
		}
	}
	if after := len(d.customers.rows); after != before {
		t.Errorf("%d customers after refused requests, %d before", after, before)
	}
}

// TestSecretScanningAlert posts an alert as GitHub would, signed, for a
// demo merchant's key pushed to a public repository: the key is revoked
// as exposed, GitHub is told it was ours, and an unsigned alert changes
// nothing.
func TestSecretScanningAlert(t *testing.T) {
	a := newAPI(t)
	leaked := keywardtest.Issue(t, a.keys.Owner("acme"), keyward.CreateParams{Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	body := []byte(`[{"token":"` + leaked.Raw + `","type":"keyward_checkout_live_key","url":"https://github.com/acme/shop/blob/0f3a/.env","source":"content"}]`)
	post := func(sign bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/github/secret-scanning", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if sign {
			digest := sha256.Sum256(body)
			sig, err := ecdsa.SignASN1(rand.Reader, a.github, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Github-Public-Key-Identifier", "test-key")
			r.Header.Set("Github-Public-Key-Signature", base64.StdEncoding.EncodeToString(sig))
		}
		w := httptest.NewRecorder()
		a.h.ServeHTTP(w, r)
		return w
	}
	if w := post(false); w.Code != http.StatusUnauthorized {
		t.Fatalf("unsigned alert: %d, want 401", w.Code)
	}
	if rec, err := a.keys.Owner("acme").Get(t.Context(), leaked.Record.ID); err != nil || rec.Revoked() {
		t.Fatalf("an unsigned alert revoked the key (%v)", err)
	}
	w := post(true)
	if w.Code != http.StatusOK {
		t.Fatalf("signed alert: %d %s", w.Code, w.Body)
	}
	var feedback []secretscanning.Feedback
	if err := json.Unmarshal(w.Body.Bytes(), &feedback); err != nil {
		t.Fatal(err)
	}
	want := []secretscanning.Feedback{{TokenHash: apikey.HashOf(leaked.Raw).String(), TokenType: "keyward_checkout_live_key", Label: secretscanning.LabelTruePositive}}
	if !slices.Equal(feedback, want) {
		t.Errorf("feedback = %+v, want %+v", feedback, want)
	}
	rec, err := a.keys.Owner("acme").Get(t.Context(), leaked.Record.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Revoked() || rec.RevokedReason != apikey.ReasonExposed || rec.Exposure == nil || rec.Exposure.URL != "https://github.com/acme/shop/blob/0f3a/.env" {
		t.Errorf("after the alert: revoked=%v reason %q exposure %+v", rec.Revoked(), rec.RevokedReason, rec.Exposure)
	}
	if _, err := a.keys.Verify(t.Context(), leaked.Raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify after the alert = %v, want ErrRevoked", err)
	}
}
