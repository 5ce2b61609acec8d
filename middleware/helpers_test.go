package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// internalText is the text of the store's failure; it must never reach a
// client.
const internalText = "dial tcp 10.0.0.7:5432: connection refused"

// flakyStore is a memory store whose verification lookup can be made to
// fail, as a database does when it is down.
type flakyStore struct {
	*memory.Store
	down atomic.Bool
}

func (s *flakyStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errors.New(internalText)
	}
	return s.Store.GetByHash(ctx, h)
}

// GetByHashLocal hides the memory store's answers from memory while the
// store is down, so that lookups reach GetByHash and fail.
func (s *flakyStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	if s.down.Load() {
		return nil, store.ErrWouldBlock
	}
	return s.Store.GetByHashLocal(h)
}

// clock is a settable clock for keyward.WithClock.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock() *clock {
	c := new(clock)
	c.set(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	return c
}

func (c *clock) Now() time.Time          { return *c.now.Load() }
func (c *clock) set(t time.Time)         { c.now.Store(&t) }
func (c *clock) advance(d time.Duration) { c.set(c.Now().Add(d)) }

// env is a lifecycle over a flaky store, with one key of each kind.
type env struct {
	keys  *keyward.Keys
	store *flakyStore
	clock *clock

	all      keywardtest.Key // test mode, every scope
	live     keywardtest.Key // live mode, every scope
	sessions keywardtest.Key // test mode, sessions:write only
	revoked  keywardtest.Key
	expired  keywardtest.Key
	unknown  string // well formed, never issued
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{store: &flakyStore{Store: memory.New()}, clock: newClock()}
	keys, err := keyward.New(e.store, keyward.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	e.keys = keys
	every := scope.NewSet(scope.Default.Scopes()...)
	acct := keys.Owner("acct_mw")
	e.all = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Metadata: map[string]string{"plan": "gold"}})
	e.live = keywardtest.Issue(t, acct, keyward.CreateParams{Mode: apikey.Live, Scopes: every})
	e.sessions = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsWrite)})
	e.revoked = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every})
	if _, err := acct.Revoke(context.Background(), e.revoked.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	e.expired = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, ExpiresAt: e.clock.Now().Add(time.Hour)})
	e.clock.advance(2 * time.Hour)
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.unknown = sec.Reveal()
	return e
}

// raws returns every raw key of e, none of which may appear in a response.
func (e *env) raws() []string {
	return []string{e.all.Raw, e.live.Raw, e.sessions.Raw, e.revoked.Raw, e.expired.Raw, e.unknown}
}

// reached is the next handler of the tests: it answers 200 with the
// authenticated key's ID and scopes, and counts its calls.
type reached struct{ calls atomic.Int64 }

type reachedBody struct {
	ID     string   `json:"id"`
	Scopes []string `json:"scopes"`
}

func (h *reached) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	rec, ok := middleware.KeyFrom(r.Context())
	if !ok {
		http.Error(w, "no key in context", http.StatusTeapot)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(reachedBody{ID: rec.ID.String(), Scopes: middleware.ScopesFrom(r.Context()).Strings()})
}

// problemBody is an RFC 9457 body as a client decodes it.
type problemBody struct {
	Type             string   `json:"type"`
	Title            string   `json:"title"`
	Status           int      `json:"status"`
	Detail           string   `json:"detail"`
	RequiredScopes   []string `json:"required_scopes"`
	ViolatedPolicies []string `json:"violated-policies"`
}

// decodeProblem checks the content type of rr and decodes its body,
// refusing unknown members.
func decodeProblem(t testing.TB, rr *httptest.ResponseRecorder) problemBody {
	t.Helper()
	if got, want := rr.Header().Get("Content-Type"), "application/problem+json"; got != want {
		t.Fatalf("Content-Type = %q, want %q", got, want)
	}
	dec := json.NewDecoder(strings.NewReader(rr.Body.String()))
	dec.DisallowUnknownFields()
	var p problemBody
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decoding the problem body %q: %v", rr.Body.String(), err)
	}
	return p
}

// recordOf returns the stored record of a raw key.
func recordOf(t testing.TB, e *env, raw string) apikey.Record {
	t.Helper()
	rec, err := e.store.Store.GetByHash(context.Background(), apikey.HashOf(raw))
	if err != nil {
		t.Fatalf("looking up a key: %v", err)
	}
	return rec
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }
