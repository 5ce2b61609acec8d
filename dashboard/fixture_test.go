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
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// A fixture is the dashboard mounted at /dashboard/, as an application
// mounts it, on a memory store that can be made to fail. The operator is
// named by the X-Operator header.
type fixture struct {
	t     *testing.T
	keys  *keyward.Keys
	store *flakyStore
	mux   *http.ServeMux // the application's mux, with the dashboard at /dashboard/
	dash  http.Handler   // the dashboard behind http.StripPrefix, without the mux
	logs  *logBuffer

	mu     sync.Mutex
	events []dashboard.Event
}

func newFixture(t *testing.T, opts ...dashboard.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, store: &flakyStore{Store: memory.New()}, logs: &logBuffer{}}
	keys, err := keyward.New(f.store, keyward.WithFlushInterval(time.Hour), keyward.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	f.keys = keys
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(f.logs, testWriter{t}), nil))
	opts = append([]dashboard.Option{
		dashboard.WithLogger(logger),
		dashboard.WithAudit(func(_ context.Context, e dashboard.Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		}),
	}, opts...)
	dash, err := dashboard.New(keys, operatorHeader, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.dash = http.StripPrefix("/dashboard", dash)
	f.mux = http.NewServeMux()
	f.mux.Handle("/dashboard/", f.dash)
	return f
}

// operatorHeader is the fixture's AuthorizeFunc.
func operatorHeader(r *http.Request) (string, error) {
	op := r.Header.Get("X-Operator")
	if op == "" {
		return "", errors.New("no X-Operator header")
	}
	if op == "nobody" {
		return "", nil // a broken check: no operator, no error
	}
	return op, nil
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

// do sends c as operator alice, unless c's header says otherwise.
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

// api sends a JSON request (or none, for an empty body).
func (f *fixture) api(method, path, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	c := call{method: method, path: path, body: body}
	if body != "" {
		c.contentType = "application/json"
	}
	return f.do(c)
}

// create makes a key through the lifecycle, not the dashboard.
func (f *fixture) create(name string, m apikey.Mode, scopes ...scope.Scope) (string, apikey.Record) {
	f.t.Helper()
	if len(scopes) == 0 {
		scopes = []scope.Scope{scope.SessionsWrite}
	}
	sec, rec, err := f.keys.Create(context.Background(), keyward.CreateParams{Name: name, Mode: m, Scopes: scopes})
	if err != nil {
		f.t.Fatal(err)
	}
	return sec.Reveal(), rec
}

func (f *fixture) audited() []dashboard.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dashboard.Event(nil), f.events...)
}

// count returns the number of keys in the store.
func (f *fixture) count() int {
	f.t.Helper()
	return f.store.Len()
}

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
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Mode       string     `json:"mode"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Status     string     `json:"status"`
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

// flakyStore is a memory store whose every method fails while it is down,
// with an error whose text must never reach a client.
type flakyStore struct {
	*memory.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp 10.9.8.7:5432: connection refused")

func (s *flakyStore) Create(ctx context.Context, rec apikey.Record) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Create(ctx, rec)
}

func (s *flakyStore) Get(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *flakyStore) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	if s.down.Load() {
		return store.Page{}, errDown
	}
	return s.Store.List(ctx, opts)
}

func (s *flakyStore) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.Revoke(ctx, id, at)
}

func (s *flakyStore) SetExpiry(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.SetExpiry(ctx, id, at)
}
