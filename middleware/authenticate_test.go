package middleware_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

// The public texts of each refusal: the contract of the responses.
const (
	typeNoCredentials     = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrNoCredentials"
	typeInvalidRequest    = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrInvalidRequest"
	typeInvalidKey        = "https://pkg.go.dev/github.com/keyward/keyward#ErrInvalidKey"
	typeWrongMode         = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrWrongMode"
	typeInsufficientScope = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrInsufficientScope"
	typeStoreUnavailable  = "https://pkg.go.dev/github.com/keyward/keyward#ErrStoreUnavailable"

	detailNoCredentials = "Send an API key in the Authorization header: Authorization: Bearer <key>."
	detailInvalidKey    = "The API key is not valid. Check that it was copied in full and that it is still active."
)

// want is the expected response to a request.
type want struct {
	status     int
	challenge  string // exact WWW-Authenticate; "" means absent
	typ        string
	title      string
	detail     string
	scopes     []string // required_scopes
	retryAfter string
	err        error // what the error handler receives, by errors.Is
}

var (
	okResponse    = want{status: http.StatusOK}
	noCredentials = want{
		status:    http.StatusUnauthorized,
		challenge: `Bearer realm="api"`,
		typ:       typeNoCredentials,
		title:     "Missing API key",
		detail:    detailNoCredentials,
		err:       middleware.ErrNoCredentials,
	}
	invalidKey = want{
		status:    http.StatusUnauthorized,
		challenge: `Bearer realm="api", error="invalid_token"`,
		typ:       typeInvalidKey,
		title:     "Invalid API key",
		detail:    detailInvalidKey,
		err:       keyward.ErrInvalidKey,
	}
	storeDown = want{
		status:     http.StatusServiceUnavailable,
		typ:        typeStoreUnavailable,
		title:      "Service unavailable",
		detail:     "API keys cannot be checked right now. Retry later.",
		retryAfter: "5",
		err:        keyward.ErrStoreUnavailable,
	}
)

func invalidRequest(detail string) want {
	return want{
		status:    http.StatusBadRequest,
		challenge: `Bearer realm="api", error="invalid_request"`,
		typ:       typeInvalidRequest,
		title:     "Malformed Authorization header",
		detail:    detail,
		err:       middleware.ErrInvalidRequest,
	}
}

func insufficientScope(challengeScope, detail string, scopes ...string) want {
	return want{
		status:    http.StatusForbidden,
		challenge: `Bearer realm="api", error="insufficient_scope", scope="` + challengeScope + `"`,
		typ:       typeInsufficientScope,
		title:     "Insufficient scope",
		detail:    detail,
		scopes:    scopes,
		err:       middleware.ErrInsufficientScope,
	}
}

func with(w want, f func(*want)) want { f(&w); return w }

// responseCase is one request to the middleware and the response it must
// get.
type responseCase struct {
	name      string
	opts      []middleware.Option
	guard     func(http.Handler) http.Handler // RequireScopes and the like, behind Authenticate
	auth      func(e *env) []string           // Authorization values; nil for none
	keyHeader func(e *env) []string           // X-API-Key values; nil for none
	storeDown bool
	want      want
	wantKey   func(e *env) string // for 200: the raw key whose record reaches the handler
}

func values(vs ...string) func(*env) []string { return func(*env) []string { return vs } }

func bearer(key func(*env) string) func(*env) []string {
	return func(e *env) []string { return []string{"Bearer " + key(e)} }
}

func allKey(e *env) string      { return e.all.Raw }
func liveKey(e *env) string     { return e.live.Raw }
func sessionsKey(e *env) string { return e.sessions.Raw }

var apiKeyHeader = middleware.WithKeyHeader("X-API-Key")

func responseCases() []responseCase {
	return []responseCase{
		// Success.
		{name: "valid key", auth: bearer(allKey), want: okResponse, wantKey: allKey},
		{name: "scheme in lowercase", auth: func(e *env) []string { return []string{"bearer " + e.all.Raw} }, want: okResponse, wantKey: allKey},
		{name: "scheme in uppercase, two spaces", auth: func(e *env) []string { return []string{"BEARER  " + e.all.Raw} }, want: okResponse, wantKey: allKey},
		{name: "surrounding whitespace", auth: func(e *env) []string { return []string{" \tBearer " + e.all.Raw + " \t"} }, want: okResponse, wantKey: allKey},
		{name: "live key", auth: bearer(liveKey), want: okResponse, wantKey: liveKey},

		// No credentials: a plain challenge.
		{name: "no header", want: noCredentials},
		{name: "empty header", auth: values(""), want: noCredentials},
		{name: "blank header", auth: values("   "), want: noCredentials},
		{name: "basic scheme", auth: values("Basic dXNlcjpwYXNz"), want: noCredentials},
		{name: "key without scheme", auth: func(e *env) []string { return []string{e.all.Raw} }, want: noCredentials},
		{name: "scheme prefix only", auth: func(e *env) []string { return []string{"Bearerx " + e.all.Raw} }, want: noCredentials},
		{name: "key header off by default", keyHeader: func(e *env) []string { return []string{e.all.Raw} }, want: noCredentials},

		// Malformed header: 400 invalid_request.
		{name: "scheme without key", auth: values("Bearer"), want: invalidRequest("The Authorization header names the Bearer scheme but holds no key: Authorization: Bearer <key>.")},
		{name: "scheme and spaces only", auth: values("Bearer   "), want: invalidRequest("The Authorization header names the Bearer scheme but holds no key: Authorization: Bearer <key>.")},
		{name: "two credentials", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw + " " + e.live.Raw} }, want: invalidRequest("The Authorization header must hold exactly one credential: Authorization: Bearer <key>.")},
		{name: "two bearer credentials, comma-joined", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw + ", Bearer " + e.live.Raw} }, want: invalidRequest("The Authorization header must hold exactly one credential: Authorization: Bearer <key>.")},
		{name: "two headers", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw, "Bearer " + e.all.Raw} }, want: invalidRequest("Send exactly one Authorization header.")},
		{name: "control character", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw[:10] + "\x00" + e.all.Raw[10:]} }, want: invalidRequest("The Authorization header contains control or non-ASCII characters.")},
		{name: "tab inside", auth: func(e *env) []string { return []string{"Bearer\t" + e.all.Raw} }, want: invalidRequest("The Authorization header contains control or non-ASCII characters.")},
		{name: "non-ASCII", auth: values("Bearer ck_test_é"), want: invalidRequest("The Authorization header contains control or non-ASCII characters.")},
		{name: "auth parameters", auth: values(`Bearer realm="x"`), want: invalidRequest("The credential in the Authorization header is not a valid Bearer token.")},
		{name: "only padding", auth: values("Bearer ==="), want: invalidRequest("The credential in the Authorization header is not a valid Bearer token.")},
		{name: "absurd length", auth: values("Bearer " + strings.Repeat("a", middleware.MaxHeaderLen)), want: invalidRequest("The Authorization header is longer than 1024 bytes.")},
		{name: "absurd length, other scheme", auth: values("Basic " + strings.Repeat("a", middleware.MaxHeaderLen)), want: invalidRequest("The Authorization header is longer than 1024 bytes.")},

		// Invalid keys: one response for all.
		{name: "malformed key", auth: values("Bearer not-a-key"), want: invalidKey},
		{name: "malformed key, right prefix", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw[:20]} }, want: invalidKey},
		{name: "malformed key, base64 padding", auth: func(e *env) []string { return []string{"Bearer " + e.all.Raw + "=="} }, want: invalidKey},
		{name: "unknown key", auth: bearer(func(e *env) string { return e.unknown }), want: invalidKey},
		{name: "revoked key", auth: bearer(func(e *env) string { return e.revoked.Raw }), want: invalidKey},
		{name: "expired key", auth: bearer(func(e *env) string { return e.expired.Raw }), want: invalidKey},
		{name: "key of another product", auth: values("Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc4eC39HqL"), want: invalidKey},

		// Store unavailable: 503, never 401.
		{name: "store down", auth: bearer(allKey), storeDown: true, want: storeDown},
		{name: "store down, malformed key", auth: values("Bearer not-a-key"), storeDown: true, want: invalidKey},

		// Modes.
		{name: "live only, live key", opts: []middleware.Option{middleware.WithMode(apikey.Live)}, auth: bearer(liveKey), want: okResponse, wantKey: liveKey},
		{name: "live only, test key", opts: []middleware.Option{middleware.WithMode(apikey.Live)}, auth: bearer(allKey), want: want{
			status:    http.StatusUnauthorized,
			challenge: `Bearer realm="api", error="invalid_token"`,
			typ:       typeWrongMode,
			title:     "Wrong key mode",
			detail:    "This endpoint accepts only live keys.",
			err:       middleware.ErrWrongMode,
		}},
		{name: "test only, live key", opts: []middleware.Option{middleware.WithMode(apikey.Test)}, auth: bearer(liveKey), want: want{
			status:    http.StatusUnauthorized,
			challenge: `Bearer realm="api", error="invalid_token"`,
			typ:       typeWrongMode,
			title:     "Wrong key mode",
			detail:    "This endpoint accepts only test keys.",
			err:       middleware.ErrWrongMode,
		}},
		{name: "live only, revoked test key", opts: []middleware.Option{middleware.WithMode(apikey.Live)}, auth: bearer(func(e *env) string { return e.revoked.Raw }), want: with(invalidKey, func(w *want) {
			// The mode is written in the key, so this reveals nothing.
			w.typ, w.title, w.detail, w.err = typeWrongMode, "Wrong key mode", "This endpoint accepts only live keys.", middleware.ErrWrongMode
		})},
		{name: "live only, malformed key", opts: []middleware.Option{middleware.WithMode(apikey.Live)}, auth: values("Bearer nope"), want: invalidKey},

		// Realm.
		{name: "custom realm", opts: []middleware.Option{middleware.WithRealm("checkout")}, want: with(noCredentials, func(w *want) { w.challenge = `Bearer realm="checkout"` })},
		{name: "custom realm, invalid key", opts: []middleware.Option{middleware.WithRealm("checkout")}, auth: values("Bearer x"), want: with(invalidKey, func(w *want) { w.challenge = `Bearer realm="checkout", error="invalid_token"` })},

		// The key header.
		{name: "key header", opts: []middleware.Option{apiKeyHeader}, keyHeader: func(e *env) []string { return []string{e.all.Raw} }, want: okResponse, wantKey: allKey},
		{name: "key header, other scheme in Authorization", opts: []middleware.Option{apiKeyHeader}, auth: values("Basic dXNlcjpwYXNz"), keyHeader: func(e *env) []string { return []string{e.all.Raw} }, want: okResponse, wantKey: allKey},
		{name: "key header, empty", opts: []middleware.Option{apiKeyHeader}, keyHeader: values(""), want: noCredentials},
		{name: "key header, revoked", opts: []middleware.Option{apiKeyHeader}, keyHeader: func(e *env) []string { return []string{e.revoked.Raw} }, want: invalidKey},
		{name: "key header and Authorization", opts: []middleware.Option{apiKeyHeader}, auth: bearer(allKey), keyHeader: func(e *env) []string { return []string{e.all.Raw} }, want: invalidRequest("Send the API key in one header only.")},
		{name: "key header twice", opts: []middleware.Option{apiKeyHeader}, keyHeader: func(e *env) []string { return []string{e.all.Raw, e.all.Raw} }, want: invalidRequest("Send exactly one X-API-Key header.")},
		{name: "key header with scheme", opts: []middleware.Option{apiKeyHeader}, keyHeader: func(e *env) []string { return []string{"Bearer " + e.all.Raw} }, want: invalidRequest("The X-API-Key header must hold the API key alone, without a scheme.")},
		{name: "key header, control character", opts: []middleware.Option{apiKeyHeader}, keyHeader: values("ck_test_\x7f"), want: invalidRequest("The X-API-Key header contains control or non-ASCII characters.")},
		{name: "key header, absurd length", opts: []middleware.Option{apiKeyHeader}, keyHeader: values(strings.Repeat("k", 2000)), want: invalidRequest("The X-API-Key header is longer than 1024 bytes.")},
		{name: "key header, not a key", opts: []middleware.Option{apiKeyHeader}, keyHeader: values("ck_test_!!"), want: invalidKey},
		{name: "key header, surrounding spaces", opts: []middleware.Option{apiKeyHeader}, keyHeader: func(e *env) []string { return []string{"  " + e.all.Raw + " "} }, want: okResponse, wantKey: allKey},

		// Scopes.
		{name: "scope held", guard: middleware.RequireScopes(scope.SessionsWrite), auth: bearer(sessionsKey), want: okResponse, wantKey: sessionsKey},
		{name: "scope missing", guard: middleware.RequireScopes(scope.SessionsRead), auth: bearer(sessionsKey),
			want: insufficientScope("sessions:read", "This API key lacks the scope sessions:read.", "sessions:read")},
		{name: "write does not imply read", guard: middleware.RequireScopes(scope.LinksRead), auth: bearer(func(e *env) string { return e.sessions.Raw }),
			want: insufficientScope("links:read", "This API key lacks the scope links:read.", "links:read")},
		{name: "all scopes, one missing", guard: middleware.RequireScopes(scope.SessionsWrite, scope.CustomersWrite), auth: bearer(sessionsKey),
			want: insufficientScope("sessions:write customers:write", "This API key lacks some of the scopes this endpoint requires: sessions:write, customers:write.", "sessions:write", "customers:write")},
		{name: "all scopes, all held", guard: middleware.RequireScopes(scope.SessionsWrite, scope.CustomersWrite), auth: bearer(allKey), want: okResponse, wantKey: allKey},
		{name: "any scope, one held", guard: middleware.RequireAnyScope(scope.LinksWrite, scope.SessionsWrite), auth: bearer(sessionsKey), want: okResponse, wantKey: sessionsKey},
		{name: "any scope, none held", guard: middleware.RequireAnyScope(scope.LinksWrite, scope.WebhooksWrite), auth: bearer(sessionsKey),
			want: insufficientScope("links:write webhooks:write", "This API key holds none of the scopes this endpoint accepts: links:write, webhooks:write.", "links:write", "webhooks:write")},
		{name: "scope missing, custom realm", opts: []middleware.Option{middleware.WithRealm("checkout")}, guard: middleware.RequireScopes(scope.EventsRead), auth: bearer(sessionsKey),
			want: with(insufficientScope("events:read", "This API key lacks the scope events:read.", "events:read"), func(w *want) {
				w.challenge = `Bearer realm="checkout", error="insufficient_scope", scope="events:read"`
			})},
		{name: "scope guard, no key", guard: middleware.RequireScopes(scope.SessionsWrite), want: noCredentials},
	}
}

func (tc responseCase) request(e *env) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	if tc.auth != nil {
		r.Header["Authorization"] = tc.auth(e)
	}
	if tc.keyHeader != nil {
		r.Header["X-Api-Key"] = tc.keyHeader(e)
	}
	return r
}

func (tc responseCase) handler(e *env, next http.Handler, opts ...middleware.Option) http.Handler {
	if tc.guard != nil {
		next = tc.guard(next)
	}
	return middleware.Authenticate(e.keys, append(slices.Clone(tc.opts), opts...)...)(next)
}

func TestAuthenticateResponses(t *testing.T) {
	for _, tc := range responseCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.store.down.Store(tc.storeDown)
			next := new(reached)
			rr := httptest.NewRecorder()
			tc.handler(e, next).ServeHTTP(rr, tc.request(e))

			if got, want := rr.Code, tc.want.status; got != want {
				t.Fatalf("status = %d, want %d; body %s", got, want, rr.Body)
			}
			if got, want := rr.Header().Get("WWW-Authenticate"), tc.want.challenge; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			if got := len(rr.Header().Values("WWW-Authenticate")); got > 1 {
				t.Errorf("%d WWW-Authenticate headers, want at most 1", got)
			}
			if got, want := rr.Header().Get("Retry-After"), tc.want.retryAfter; got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
			for _, raw := range e.raws() {
				if strings.Contains(rr.Body.String(), raw) || strings.Contains(rr.Body.String(), raw[8:]) {
					t.Fatalf("the response contains a raw key: %s", rr.Body)
				}
			}
			if strings.Contains(rr.Body.String(), internalText) {
				t.Fatalf("the response contains an internal error: %s", rr.Body)
			}

			if tc.want.status == http.StatusOK {
				if got := next.calls.Load(); got != 1 {
					t.Fatalf("next handler called %d times, want 1", got)
				}
				wantRec := recordOf(t, e, tc.wantKey(e))
				var body reachedBody
				if err := jsonDecode(rr.Body.String(), &body); err != nil {
					t.Fatal(err)
				}
				if got, want := body.ID, wantRec.ID.String(); got != want {
					t.Errorf("key in context = %s, want %s", got, want)
				}
				if got, want := body.Scopes, wantRec.Scopes.Strings(); !slices.Equal(got, want) {
					t.Errorf("scopes in context = %v, want %v", got, want)
				}
				return
			}

			if got := next.calls.Load(); got != 0 {
				t.Fatalf("next handler called %d times for a refused request", got)
			}
			if got, want := rr.Header().Get("Cache-Control"), "no-store"; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			p := decodeProblem(t, rr)
			if got, want := p.Type, tc.want.typ; got != want {
				t.Errorf("type = %q, want %q", got, want)
			}
			if got, want := p.Title, tc.want.title; got != want {
				t.Errorf("title = %q, want %q", got, want)
			}
			if got, want := p.Status, tc.want.status; got != want {
				t.Errorf("status member = %d, want %d", got, want)
			}
			if got, want := p.Detail, tc.want.detail; got != want {
				t.Errorf("detail = %q, want %q", got, want)
			}
			if got, want := p.RequiredScopes, tc.want.scopes; !slices.Equal(got, want) {
				t.Errorf("required_scopes = %q, want %q", got, want)
			}
		})
	}
}

// TestErrorHandler checks that the error handler receives, for every
// refusal, an *Error matching the documented sentinel, that it replaces the
// response, and that the next handler is still never called.
func TestErrorHandler(t *testing.T) {
	for _, tc := range responseCases() {
		if tc.want.status == http.StatusOK {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.store.down.Store(tc.storeDown)
			var got error
			calls := 0
			hook := middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				calls++
				got = err
				w.WriteHeader(http.StatusTeapot) // even a "success" must not let the request through
			})
			next := new(reached)
			rr := httptest.NewRecorder()
			tc.handler(e, next, hook).ServeHTTP(rr, tc.request(e))

			if calls != 1 {
				t.Fatalf("error handler called %d times, want 1", calls)
			}
			if rr.Code != http.StatusTeapot {
				t.Errorf("status = %d, want the handler's %d", rr.Code, http.StatusTeapot)
			}
			if n := next.calls.Load(); n != 0 {
				t.Fatalf("next handler called %d times", n)
			}
			if !errors.Is(got, tc.want.err) {
				t.Errorf("error %v does not match %v", got, tc.want.err)
			}
			var mwErr *middleware.Error
			if !errors.As(got, &mwErr) {
				t.Fatalf("error %T is not a *middleware.Error", got)
			}
			if mwErr.Status != tc.want.status || mwErr.Detail != tc.want.detail {
				t.Errorf("Error{Status: %d, Detail: %q}, want %d, %q", mwErr.Status, mwErr.Detail, tc.want.status, tc.want.detail)
			}
			for _, raw := range e.raws() {
				if strings.Contains(got.Error(), raw) {
					t.Fatalf("the error text contains a raw key: %v", got)
				}
			}
		})
	}
}

// TestErrorHandlerTellsInvalidKeysApart checks that the four invalid keys,
// one to clients, are distinct for the error handler.
func TestErrorHandlerTellsInvalidKeysApart(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"malformed", "not-a-key", keyward.ErrMalformedKey},
		{"unknown", e.unknown, keyward.ErrUnknownKey},
		{"revoked", e.revoked.Raw, keyward.ErrRevoked},
		{"expired", e.expired.Raw, keyward.ErrExpired},
	}
	var bodies []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			h := middleware.Authenticate(e.keys, middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				got = err
				middleware.WriteError(w, r, err)
			}))(new(reached))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tc.raw)
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, r)
			if !errors.Is(got, tc.want) {
				t.Errorf("error %v does not match %v", got, tc.want)
			}
			bodies = append(bodies, rr.Header().Get("WWW-Authenticate")+"\n"+rr.Body.String())
		})
	}
	for i := 1; i < len(bodies); i++ {
		if bodies[i] != bodies[0] {
			t.Errorf("responses differ:\n%s\n%s", bodies[0], bodies[i])
		}
	}
}

func TestStoreDownIsNeverInvalidKey(t *testing.T) {
	e := newEnv(t)
	e.store.down.Store(true)
	for _, raw := range []string{e.all.Raw, e.unknown, e.revoked.Raw, e.expired.Raw} {
		var got error
		h := middleware.Authenticate(e.keys, middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) { got = err }))(new(reached))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !errors.Is(got, keyward.ErrStoreUnavailable) || errors.Is(got, keyward.ErrInvalidKey) {
			t.Errorf("store down: error %v, want only ErrStoreUnavailable", got)
		}
		if !strings.Contains(got.Error(), internalText) {
			t.Errorf("the error for logs %q lost the store's error", got)
		}
	}
}

func TestRevocationIsImmediate(t *testing.T) {
	e := newEnv(t)
	h := middleware.Authenticate(e.keys)(new(reached))
	do := func() int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		e.all.Authorize(r)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		return rr.Code
	}
	if got := do(); got != http.StatusOK {
		t.Fatalf("before revocation: %d", got)
	}
	if _, err := e.keys.Owner(e.all.Record.Owner).Revoke(t.Context(), e.all.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	if got := do(); got != http.StatusUnauthorized {
		t.Fatalf("the request after revocation got %d, want 401", got)
	}
}

func TestAuthenticatePanicsOnMisuse(t *testing.T) {
	keys := newEnv(t).keys
	tests := []struct {
		name string
		call func()
	}{
		{"nil keys", func() { middleware.Authenticate(nil) }},
		{"nil next", func() { middleware.Authenticate(keys)(nil) }},
		{"empty realm", func() { middleware.Authenticate(keys, middleware.WithRealm("")) }},
		{"quote in realm", func() { middleware.Authenticate(keys, middleware.WithRealm(`a"b`)) }},
		{"control character in realm", func() { middleware.Authenticate(keys, middleware.WithRealm("a\nb")) }},
		{"nil error handler", func() { middleware.Authenticate(keys, middleware.WithErrorHandler(nil)) }},
		{"zero mode", func() { middleware.Authenticate(keys, middleware.WithMode(0)) }},
		{"key header Authorization", func() { middleware.Authenticate(keys, middleware.WithKeyHeader("authorization")) }},
		{"key header with a space", func() { middleware.Authenticate(keys, middleware.WithKeyHeader("X API Key")) }},
		{"key header empty", func() { middleware.Authenticate(keys, middleware.WithKeyHeader("")) }},
		{"no scopes", func() { middleware.RequireScopes() }},
		{"no any scopes", func() { middleware.RequireAnyScope() }},
		{"malformed scope", func() { middleware.RequireScopes("Sessions Write") }},
		{"scopes, nil next", func() { middleware.RequireScopes(scope.SessionsRead)(nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.call()
		})
	}
}

func TestWriteErrorNonMiddlewareError(t *testing.T) {
	rr := httptest.NewRecorder()
	middleware.WriteError(rr, httptest.NewRequest(http.MethodGet, "/", nil), errors.New("secret internal state"))
	if rr.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rr.Code)
	}
	if strings.Contains(rr.Body.String(), "secret") {
		t.Errorf("the body leaks the error: %s", rr.Body)
	}
	p := decodeProblem(t, rr)
	if p.Status != 500 || p.Type != "about:blank" {
		t.Errorf("body = %+v", p)
	}
	if got := rr.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate = %q, want none", got)
	}
}
