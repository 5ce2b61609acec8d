package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// The accounts of the fixture: the operators act for account; otherAccount
// is another customer of the same application, whose keys they must never
// see or touch.
const (
	account      = "acct_alice"
	otherAccount = "acct_mallory"
)

// start is the fixture clock's first reading.
var start = time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)

// A fixture is the dashboard mounted at /dashboard/, as an application
// mounts it, on a memory store that can be made to fail, with a clock the
// test sets. The operator is named by the request's headers (see
// operatorHeader): by default alice, an admin of account.
type fixture struct {
	t     *testing.T
	keys  *keyward.Keys
	clock *testClock
	store *flakyStore
	owner keyward.Owner   // account's keys
	other keyward.Owner   // otherAccount's keys
	mux   *http.ServeMux  // the application's mux, with the dashboard at /dashboard/
	dash  http.Handler    // the dashboard behind http.StripPrefix, without the mux
	logs  *syncbuf.Buffer // the dashboard's
	// lifecycleLogs are the lifecycle's, which logs every change.
	lifecycleLogs *syncbuf.Buffer
	// tripped receives each trip of a canary key once the lifecycle has
	// stored it, from the lifecycle's canary hook.
	tripped chan apikey.Trip

	mu     sync.Mutex
	events []audit.Event // every event of the lifecycle, in order
}

// fixtureActor is the actor of the changes the fixture makes through the
// lifecycle, not through the dashboard (see createFor).
var fixtureActor = audit.Actor{Type: audit.TypeService, ID: "fixture"}

func newFixture(t *testing.T, opts ...dashboard.Option) *fixture {
	return newFixtureWith(t, nil, opts...)
}

// newFixtureWith is newFixture with options for the lifecycle too.
func newFixtureWith(t *testing.T, keyOpts []keyward.Option, opts ...dashboard.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, store: &flakyStore{Store: memory.New()}, logs: &syncbuf.Buffer{}, clock: newTestClock(start),
		tripped: make(chan apikey.Trip, 64)}
	// The dashboard logs to f.logs, the lifecycle to f.lifecycleLogs: the
	// lifecycle logs the changes, with their actor.
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(f.logs, testWriter{t}), nil))
	f.lifecycleLogs = &syncbuf.Buffer{}
	keyLogger := slog.New(slog.NewTextHandler(io.MultiWriter(f.lifecycleLogs, testWriter{t}), nil))
	keyOpts = append([]keyward.Option{keyward.WithFlushInterval(time.Hour), keyward.WithLogger(keyLogger),
		keyward.WithClock(f.clock.Now), keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) {
			select {
			case f.tripped <- tr:
			default: // no test makes more trips than the buffer holds
			}
		}),
		keyward.WithSubscriber(keyward.SubscriberFunc(func(_ context.Context, e audit.Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		}))}, keyOpts...)
	keys, err := keyward.New(f.store, keyOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	f.keys = keys
	f.owner, f.other = keys.Owner(account), keys.Owner(otherAccount)
	opts = append([]dashboard.Option{dashboard.WithLogger(logger)}, opts...)
	dash, err := dashboard.New(keys, operatorHeader, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.dash = http.StripPrefix("/dashboard", dash)
	f.mux = http.NewServeMux()
	f.mux.Handle("/dashboard/", f.dash)
	return f
}

// operatorHeader is the fixture's AuthorizeFunc. X-Operator names the
// operator ("nobody" plays a broken check that returns no operator and no
// error); X-Account sets the account (default account; "-" for none) and
// X-Role the role (default admin; an empty X-Role is no role).
func operatorHeader(r *http.Request) (dashboard.Operator, error) {
	name := r.Header.Get("X-Operator")
	if name == "" {
		return dashboard.Operator{}, errors.New("no X-Operator header")
	}
	if name == "nobody" {
		return dashboard.Operator{}, nil // a broken check: no operator, no error
	}
	op := dashboard.Operator{Name: name, Owner: account, Role: dashboard.Admin}
	if a := r.Header.Get("X-Account"); a == "-" {
		op.Owner = ""
	} else if a != "" {
		op.Owner = a
	}
	if role := r.Header.Values("X-Role"); len(role) > 0 {
		op.Role = dashboard.Role(role[0])
	}
	return op, nil
}

// as returns the headers of a request by alice with role.
func as(role dashboard.Role) http.Header {
	return http.Header{"X-Role": {string(role)}}
}

// A call is a request to the dashboard.
type call struct {
	method, path string
	body         string
	contentType  string
	header       http.Header
	// unmuxed sends the request to the dashboard without the application's
	// mux, which would clean its path first.
	unmuxed bool
}

// do sends c as operator alice, an admin of account, unless c's header
// says otherwise.
func (f *fixture) do(c call) *httptest.ResponseRecorder {
	f.t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, "http://keys.example"+c.path, body)
	if c.contentType != "" {
		r.Header.Set("Content-Type", c.contentType)
	}
	r.Header.Set("X-Operator", "alice")
	for k, v := range c.header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	if c.unmuxed {
		f.dash.ServeHTTP(w, r)
	} else {
		f.mux.ServeHTTP(w, r)
	}
	return w
}

// api sends a JSON request (or none, for an empty body) as alice, an
// admin.
func (f *fixture) api(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	c := call{method: method, path: path, body: body}
	if body != "" {
		c.contentType = "application/json"
	}
	return f.do(c)
}

// create makes a key of account through the lifecycle, not the dashboard.
func (f *fixture) create(name string, m apikey.Mode, scopes ...scope.Scope) (string, apikey.Record) {
	f.t.Helper()
	return f.createFor(f.owner, keyward.CreateParams{Name: name, Mode: m, Scopes: scope.NewSet(scopes...)})
}

// createFor makes a key of owner through the lifecycle, as fixtureActor;
// it has the scope sessions:write unless p says otherwise. The clock
// moves on a millisecond, so that keys are listed in the order they were
// made.
func (f *fixture) createFor(owner keyward.Owner, p keyward.CreateParams) (string, apikey.Record) {
	f.t.Helper()
	if p.Scopes.IsEmpty() {
		p.Scopes = scope.NewSet(scope.SessionsWrite)
	}
	sec, rec, err := owner.Create(audit.WithActor(context.Background(), fixtureActor), p)
	if err != nil {
		f.t.Fatal(err)
	}
	f.clock.Advance(time.Millisecond)
	return sec.Reveal(), rec
}

// trip presents the raw key of a canary as a client described by c would,
// checks that it is refused as an unknown key, and waits until the trip
// is stored: the lifecycle writes it in the background. It fails the test
// rather than wait more than ten seconds.
func (f *fixture) trip(raw string, c keyward.Caller) apikey.Trip {
	f.t.Helper()
	if _, err := f.keys.VerifyFrom(context.Background(), raw, c); !errors.Is(err, keyward.ErrUnknownKey) {
		f.t.Fatalf("presenting a canary: %v, want ErrUnknownKey", err)
	}
	select {
	case tr := <-f.tripped:
		return tr
	case <-time.After(10 * time.Second):
		f.t.Fatal("the trip was not stored within 10s")
		return apikey.Trip{}
	}
}

// get reads a key of account.
func (f *fixture) get(id uuid.UUID) apikey.Record {
	f.t.Helper()
	rec, err := f.owner.Get(context.Background(), id)
	if err != nil {
		f.t.Fatalf("reading key %v: %v", id, err)
	}
	return rec
}

// audited returns the lifecycle's events of the changes made through the
// dashboard, in order: those whose actor is an operator. The dashboard
// names the operator as the actor of every change it makes.
func (f *fixture) audited() []audit.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []audit.Event
	for _, e := range f.events {
		if e.Actor.Type == audit.TypeOperator {
			out = append(out, e)
		}
	}
	return out
}

// byAlice is the actor of the changes alice makes in the dashboard.
var byAlice = audit.Actor{Type: audit.TypeOperator, ID: "alice"}

// trail returns the audit trail of account's key id, newest first, as
// the lifecycle keeps it.
func (f *fixture) trail(id uuid.UUID) []audit.Entry {
	f.t.Helper()
	page, err := f.owner.Audit(context.Background(), keyward.AuditOptions{KeyID: id, Limit: store.MaxLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	return page.Entries
}

// count returns the number of keys in the store, of every account.
func (f *fixture) count() int {
	f.t.Helper()
	return f.store.Len()
}

// all returns every key of owner, newest first.
func (f *fixture) all(owner keyward.Owner) []apikey.Record {
	f.t.Helper()
	var out []apikey.Record
	opts := keyward.ListOptions{Limit: store.MaxLimit}
	for range 100 {
		pg, err := owner.List(context.Background(), opts)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, pg.Keys...)
		if pg.Next == "" {
			return out
		}
		opts.Cursor = pg.Next
	}
	f.t.Fatal("the list does not end")
	return nil
}

// A testClock is a clock that moves only when the test says.
type testClock struct{ micros atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := new(testClock)
	c.micros.Store(t.UnixMicro())
	return c
}

// Now returns the clock's time.
func (c *testClock) Now() time.Time { return time.UnixMicro(c.micros.Load()).UTC() }

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) { c.micros.Add(d.Microseconds()) }

// decodeJSON decodes a response body into a value of type T.
func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}

// keyOut is a key as the JSON API returns it.
type keyOut struct {
	ID         uuid.UUID         `json:"id"`
	Owner      string            `json:"owner"`
	Name       string            `json:"name"`
	Prefix     string            `json:"prefix"`
	Mode       string            `json:"mode"`
	Scopes     []string          `json:"scopes"`
	Metadata   map[string]string `json:"metadata"`
	CreatedAt  time.Time         `json:"created_at"`
	LastUsedAt *time.Time        `json:"last_used_at"`
	RevokedAt  *time.Time        `json:"revoked_at"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	Replaces   *uuid.UUID        `json:"replaces"`
	ReplacedBy *uuid.UUID        `json:"replaced_by"`
	Status     string            `json:"status"`
	// RevokedReason, Exposure and Canary are absent unless set.
	RevokedReason *string `json:"revoked_reason"`
	Exposure      *struct {
		At     time.Time `json:"at"`
		Source string    `json:"source"`
		URL    string    `json:"url"`
	} `json:"exposure"`
	Canary *bool `json:"canary"`
}

type issuedOut struct {
	RawKey   string  `json:"raw_key"`
	Key      keyOut  `json:"key"`
	Replaced *keyOut `json:"replaced"`
}

type listOut struct {
	Keys       []keyOut `json:"keys"`
	NextCursor *string  `json:"next_cursor"`
}

type problemOut struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// problemOf checks that w is a problem+json response with the given status
// and returns it.
func problemOf(t *testing.T, w *httptest.ResponseRecorder, status int) problemOut {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if got := w.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", got)
	}
	p := decodeJSON[problemOut](t, w)
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if p.Type == "" || p.Title == "" {
		t.Errorf("problem without type or title: %+v", p)
	}
	return p
}

// flakyStore is a memory store whose every method the dashboard uses fails
// while it is down, with an error whose text must never reach a client.
// While historyDown, only the reads of the audit trail and of usage fail.
type flakyStore struct {
	*memory.Store
	down        atomic.Bool
	historyDown atomic.Bool
}

func (s *flakyStore) Audit(ctx context.Context, owner string, opts store.AuditOptions) (store.AuditPage, error) {
	if s.down.Load() || s.historyDown.Load() {
		return store.AuditPage{}, errDown
	}
	return s.Store.Audit(ctx, owner, opts)
}

func (s *flakyStore) Usage(ctx context.Context, owner string, q store.UsageQuery) ([]store.HourUsage, error) {
	if s.down.Load() || s.historyDown.Load() {
		return nil, errDown
	}
	return s.Store.Usage(ctx, owner, q)
}

var errDown = errors.New("dial tcp 10.9.8.7:5432: connection refused")

func (s *flakyStore) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Create(ctx, rec, idem)
}

func (s *flakyStore) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Get(ctx, owner, id)
}

func (s *flakyStore) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	if s.down.Load() {
		return store.Page{}, errDown
	}
	return s.Store.List(ctx, owner, opts)
}

func (s *flakyStore) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Update(ctx, owner, id, u)
}

func (s *flakyStore) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, apikey.Record{}, errDown
	}
	return s.Store.Rotate(ctx, owner, id, next, overlapEnd)
}

func (s *flakyStore) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Revoke(ctx, owner, id, r)
}

func (s *flakyStore) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Store.RevokeAll(ctx, owner, r)
}
