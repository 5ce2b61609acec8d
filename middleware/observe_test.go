package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// observer records what the lifecycle tells its observer.
type observer struct {
	mu       sync.Mutex
	verifies []keyward.Outcome
	refusals []keyward.Outcome
}

func (o *observer) ObserveVerify(_ context.Context, out keyward.Outcome, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.verifies = append(o.verifies, out)
}

func (o *observer) ObserveRefusal(_ context.Context, out keyward.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refusals = append(o.refusals, out)
}

// take returns what was observed since the last call, and forgets it.
func (o *observer) take() (verifies, refusals []keyward.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	verifies, refusals = o.verifies, o.refusals
	o.verifies, o.refusals = nil, nil
	return verifies, refusals
}

// observedEnv is a lifecycle over a flaky memory store with an observer,
// and keys of both modes, with and without policies.
type observedEnv struct {
	keys     *keyward.Keys
	store    *flakyStore
	obs      *observer
	acct     keyward.Owner
	now      time.Time
	read     keywardtest.Key // test, sessions:read
	live     keywardtest.Key // live, sessions:read
	office   keywardtest.Key // test, sessions:read, from 203.0.113.0/24 only
	slow     keywardtest.Key // test, sessions:read, 1 request a minute
	revoked  keywardtest.Key // test, revoked
	unknown  string          // test, never issued
	unknownL string          // live, never issued
}

func newObservedEnv(t *testing.T) *observedEnv {
	t.Helper()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	e := &observedEnv{store: &flakyStore{Store: memory.New()}, obs: new(observer), now: now}
	keys, err := keyward.New(e.store, keyward.WithObserver(e.obs), keyward.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	e.keys = keys
	e.acct = keys.Owner("acct_obs")
	read := scope.NewSet(scope.SessionsRead)
	e.read = keywardtest.Issue(t, e.acct, keyward.CreateParams{Scopes: read})
	e.live = keywardtest.Issue(t, e.acct, keyward.CreateParams{Mode: apikey.Live, Scopes: read})
	e.office = keywardtest.Issue(t, e.acct, keyward.CreateParams{Scopes: read,
		Policy: &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}})
	e.slow = keywardtest.Issue(t, e.acct, keyward.CreateParams{Scopes: read,
		Policy: &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Minute}}})
	e.revoked = keywardtest.Issue(t, e.acct, keyward.CreateParams{Scopes: read})
	if _, err := e.acct.Revoke(t.Context(), e.revoked.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []apikey.Mode{apikey.Test, apikey.Live} {
		sec, err := apikey.Generate(m)
		if err != nil {
			t.Fatal(err)
		}
		if m == apikey.Test {
			e.unknown = sec.Reveal()
		} else {
			e.unknownL = sec.Reveal()
		}
	}
	return e
}

// usage returns the counts of key id, written by a flush.
func (e *observedEnv) usage(t *testing.T, id uuid.UUID) store.Counts {
	t.Helper()
	if err := e.keys.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	u, err := e.acct.Usage(t.Context(), keyward.UsageQuery{Keys: []uuid.UUID{id}, From: e.now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return u[0].Total
}

func serveKey(h http.Handler, raw, remote string) int {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	r.Header.Set("Authorization", "Bearer "+raw)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr.Code
}

// TestRefusalsAreCounted checks that every refusal of a verified key is
// counted against it, in its usage and by the observer, with its outcome;
// and that refusals of keys that did not verify are observed as
// verifications only.
func TestRefusalsAreCounted(t *testing.T) {
	e := newObservedEnv(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	lim := middleware.WithLimiter(limit.NewMemory())
	plain := middleware.Authenticate(e.keys, lim)(ok)
	scoped := middleware.Authenticate(e.keys, lim)(middleware.RequireScopes(scope.SessionsWrite)(ok))
	anyScope := middleware.Authenticate(e.keys)(middleware.RequireAnyScope(scope.LinksRead, scope.SessionsWrite)(ok))
	liveOnly := middleware.Authenticate(e.keys, middleware.WithMode(apikey.Live))(ok)

	for _, tc := range []struct {
		name         string
		h            http.Handler
		raw          string
		remote       string
		status       int
		verify       []keyward.Outcome
		refuse       []keyward.Outcome
		refusalCount store.Counts // what the key's usage adds
		key          *keywardtest.Key
	}{
		{name: "ok", h: plain, raw: e.read.Raw, status: 200, verify: []keyward.Outcome{keyward.OutcomeOK},
			key: &e.read, refusalCount: store.Counts{Verified: 1}},
		{name: "unknown", h: plain, raw: e.unknown, status: 401, verify: []keyward.Outcome{keyward.OutcomeUnknown}},
		{name: "revoked", h: plain, raw: e.revoked.Raw, status: 401, verify: []keyward.Outcome{keyward.OutcomeRevoked}},
		{name: "malformed", h: plain, raw: "ck_test_short", status: 401, verify: []keyward.Outcome{keyward.OutcomeMalformed}},
		{name: "insufficient scope", h: scoped, raw: e.read.Raw, status: 403,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeInsufficientScope},
			key: &e.read, refusalCount: store.Counts{Verified: 1, Scope: 1}},
		{name: "no scope of several", h: anyScope, raw: e.read.Raw, status: 403,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeInsufficientScope},
			key: &e.read, refusalCount: store.Counts{Verified: 1, Scope: 1}},
		{name: "wrong mode", h: liveOnly, raw: e.read.Raw, status: 401,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeWrongMode},
			key: &e.read, refusalCount: store.Counts{Verified: 1, Mode: 1}},
		{name: "wrong mode, unknown key", h: liveOnly, raw: e.unknown, status: 401, verify: []keyward.Outcome{keyward.OutcomeUnknown}},
		{name: "wrong mode, revoked key", h: liveOnly, raw: e.revoked.Raw, status: 401, verify: []keyward.Outcome{keyward.OutcomeRevoked}},
		{name: "right mode", h: liveOnly, raw: e.live.Raw, status: 200, verify: []keyward.Outcome{keyward.OutcomeOK},
			key: &e.live, refusalCount: store.Counts{Verified: 1}},
		{name: "right mode, unknown key", h: liveOnly, raw: e.unknownL, status: 401, verify: []keyward.Outcome{keyward.OutcomeUnknown}},
		{name: "network", h: plain, raw: e.office.Raw, remote: "198.51.100.7:1", status: 403,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeNetworkRefused},
			key: &e.office, refusalCount: store.Counts{Verified: 1, Network: 1}},
		{name: "network, address unknown", h: plain, raw: e.office.Raw, remote: "pipe", status: 403,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeNetworkRefused},
			key: &e.office, refusalCount: store.Counts{Verified: 1, Network: 1}},
		{name: "network, allowed", h: plain, raw: e.office.Raw, remote: "203.0.113.9:1", status: 200,
			verify: []keyward.Outcome{keyward.OutcomeOK}, key: &e.office, refusalCount: store.Counts{Verified: 1}},
		{name: "first of the rate", h: plain, raw: e.slow.Raw, status: 200,
			verify: []keyward.Outcome{keyward.OutcomeOK}, key: &e.slow, refusalCount: store.Counts{Verified: 1}},
		{name: "over the rate", h: plain, raw: e.slow.Raw, status: 429,
			verify: []keyward.Outcome{keyward.OutcomeOK}, refuse: []keyward.Outcome{keyward.OutcomeLimited},
			key: &e.slow, refusalCount: store.Counts{Verified: 1, Limited: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before store.Counts
			if tc.key != nil {
				before = e.usage(t, tc.key.Record.ID)
			}
			if got := serveKey(tc.h, tc.raw, tc.remote); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			verifies, refusals := e.obs.take()
			if !slices.Equal(verifies, tc.verify) {
				t.Errorf("observed verifications %v, want %v", verifies, tc.verify)
			}
			if !slices.Equal(refusals, tc.refuse) {
				t.Errorf("observed refusals %v, want %v", refusals, tc.refuse)
			}
			if tc.key != nil {
				after := e.usage(t, tc.key.Record.ID)
				added := store.Counts{Verified: after.Verified - before.Verified, Scope: after.Scope - before.Scope,
					Mode: after.Mode - before.Mode, Limited: after.Limited - before.Limited, Network: after.Network - before.Network}
				if added != tc.refusalCount {
					t.Errorf("the key's usage added %+v, want %+v", added, tc.refusalCount)
				}
			}
		})
	}
}

// TestWrongModeIsCounted checks WithMode's refusals: a valid key of the
// other mode is verified, its use recorded and its refusal counted; an
// invalid one, or any key of the other mode while the store is down, gets
// the same response, and nothing is counted.
func TestWrongModeIsCounted(t *testing.T) {
	e := newEnv(t)
	h := middleware.Authenticate(e.keys, middleware.WithMode(apikey.Live))(new(reached))
	for _, raw := range []string{e.all.Raw, e.unknown, e.revoked.Raw} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		if p := decodeProblem(t, rr); rr.Code != http.StatusUnauthorized || p.Type != typeWrongMode {
			t.Errorf("status %d, type %q; want 401 %s", rr.Code, p.Type, typeWrongMode)
		}
	}
	e.store.down.Store(true)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	e.all.Authorize(r)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	if p := decodeProblem(t, rr); rr.Code != http.StatusUnauthorized || p.Type != typeWrongMode {
		t.Errorf("store down: status %d, type %q; want 401 %s, as before the store was asked", rr.Code, p.Type, typeWrongMode)
	}
	e.store.down.Store(false)

	r = httptest.NewRequest(http.MethodGet, "/", nil)
	e.live.Authorize(r)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if err := e.keys.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec := recordOf(t, e, e.all.Raw); !rec.LastUsedAt.Equal(e.clock.Now()) {
		t.Errorf("the refused test key has LastUsedAt %v, want %v: it was verified", rec.LastUsedAt, e.clock.Now())
	}
	if rec := recordOf(t, e, e.live.Raw); !rec.LastUsedAt.Equal(e.clock.Now()) {
		t.Errorf("the live key has LastUsedAt %v, want %v", rec.LastUsedAt, e.clock.Now())
	}
	acct := e.keys.Owner("acct_mw")
	u, err := acct.Usage(t.Context(), keyward.UsageQuery{Keys: []uuid.UUID{e.all.Record.ID, e.live.Record.ID}, From: e.clock.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Counts{Verified: 1, Mode: 1}); u[0].Total != want {
		t.Errorf("the test key's usage %+v, want %+v", u[0].Total, want)
	}
	if want := (store.Counts{Verified: 1}); u[1].Total != want {
		t.Errorf("the live key's usage %+v, want %+v", u[1].Total, want)
	}
}

// TestWrongModeTripsCanary checks that a canary key of the other mode
// trips, now that the key is verified before its mode refuses it.
func TestWrongModeTripsCanary(t *testing.T) {
	tripped := make(chan apikey.Trip, 1)
	keys := keywardtest.NewKeys(t, keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { tripped <- tr }))
	canary := keywardtest.Issue(t, keys.Owner("acct_mw"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead), Canary: true})
	h := middleware.Authenticate(keys, middleware.WithMode(apikey.Live))(new(reached))
	r := httptest.NewRequest(http.MethodGet, "/payouts", nil)
	canary.Authorize(r)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	if rr.Code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", rr.Code)
	}
	select {
	case tr := <-tripped:
		if tr.KeyID != canary.Record.ID || tr.Route != "GET /payouts" {
			t.Errorf("trip %+v, want the canary's on GET /payouts", tr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the canary of the other mode did not trip")
	}
}

// TestSuccessHook checks that the success hook sees each request let
// through, with the key in its context and its record, before the next
// handler, and no refused request.
func TestSuccessHook(t *testing.T) {
	e := newObservedEnv(t)
	var (
		calls   []string
		hookRec apikey.Record
	)
	hook := func(r *http.Request, v keyward.Verified) {
		rec := v.Record()
		key, ok := middleware.KeyFrom(r.Context())
		if !ok || key.ID != rec.ID || key.Owner != v.Owner() || !key.LastUsedAt.Equal(rec.LastUsedAt) {
			t.Errorf("the hook's request carries key %v (%v), want %v", key.ID, ok, rec.ID)
		}
		if _, ok := middleware.ClientAddrFrom(r.Context()); !ok {
			t.Error("the hook's request has no client address")
		}
		hookRec = rec
		calls = append(calls, "hook")
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, "next")
	})
	h := middleware.Authenticate(e.keys, middleware.WithSuccessHook(hook), middleware.WithLimiter(limit.NewMemory()))(
		middleware.RequireScopes(scope.SessionsRead)(next))
	for _, tc := range []struct {
		name, raw, remote string
		want              []string
	}{
		{"ok", e.read.Raw, "", []string{"hook", "next"}},
		{"unknown", e.unknown, "", nil},
		{"network", e.office.Raw, "198.51.100.7:1", nil},
		{"rate, first", e.slow.Raw, "", []string{"hook", "next"}},
		{"rate, over", e.slow.Raw, "", nil},
	} {
		calls, hookRec = nil, apikey.Record{}
		serveKey(h, tc.raw, tc.remote)
		if !slices.Equal(calls, tc.want) {
			t.Errorf("%s: calls %v, want %v", tc.name, calls, tc.want)
		}
		if tc.want != nil && hookRec.Hash != apikey.HashOf(tc.raw) {
			t.Errorf("%s: the hook saw another key's record", tc.name)
		}
	}
	// A scope refusal comes after the hook, behind it.
	calls = nil
	h = middleware.Authenticate(e.keys, middleware.WithSuccessHook(hook))(middleware.RequireScopes(scope.SessionsWrite)(next))
	if code := serveKey(h, e.read.Raw, ""); code != http.StatusForbidden {
		t.Errorf("status %d, want 403", code)
	}
	if !slices.Equal(calls, []string{"hook"}) {
		t.Errorf("scope refused: calls %v, want [hook]", calls)
	}
}

// TestSuccessHookNil checks that a nil hook is a wiring mistake, found at
// start-up.
func TestSuccessHookNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Authenticate with WithSuccessHook(nil) did not panic")
		}
	}()
	middleware.Authenticate(keywardtest.NewKeys(t), middleware.WithSuccessHook(nil))
}

// TestNewContextRefusalIsNotCounted checks that RequireScopes refuses a
// record put in a context by NewContext without anything to count it.
func TestNewContextRefusalIsNotCounted(t *testing.T) {
	e := newObservedEnv(t)
	h := middleware.RequireScopes(scope.SessionsWrite)(new(reached))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(middleware.NewContext(r.Context(), e.read.Record))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	if rr.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403", rr.Code)
	}
	if v, rf := e.obs.take(); v != nil || rf != nil {
		t.Errorf("observed %v and %v, want nothing", v, rf)
	}
}
