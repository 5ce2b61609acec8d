package keyward_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// spyStore wraps a store, counts calls and injects failures.
type spyStore struct {
	store.Store
	getByHash  atomic.Int64
	recordUses atomic.Int64
	usesSeen   atomic.Int64

	mu          sync.Mutex
	lastUses    []store.Use
	failHash    error                // returned by GetByHash when set
	failUses    error                // returned by RecordUses when set
	failExpiry  error                // returned by SetExpiry when set
	failCreates int                  // number of Create calls still to fail
	tamper      func(*apikey.Record) // changes what GetByHash returns
}

func (s *spyStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.getByHash.Add(1)
	s.mu.Lock()
	fail, tamper := s.failHash, s.tamper
	s.mu.Unlock()
	if fail != nil {
		return apikey.Record{}, fail
	}
	rec, err := s.Store.GetByHash(ctx, h)
	if err == nil && tamper != nil {
		tamper(&rec)
	}
	return rec, err
}

func (s *spyStore) RecordUses(ctx context.Context, uses []store.Use) error {
	s.recordUses.Add(1)
	s.usesSeen.Add(int64(len(uses)))
	s.mu.Lock()
	fail := s.failUses
	s.lastUses = append([]store.Use(nil), uses...)
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.Store.RecordUses(ctx, uses)
}

func (s *spyStore) SetExpiry(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	s.mu.Lock()
	fail := s.failExpiry
	s.mu.Unlock()
	if fail != nil {
		return apikey.Record{}, fail
	}
	return s.Store.SetExpiry(ctx, id, at)
}

func (s *spyStore) Create(ctx context.Context, rec apikey.Record) error {
	s.mu.Lock()
	fail := s.failCreates > 0
	if fail {
		s.failCreates--
	}
	s.mu.Unlock()
	if fail {
		return errors.New("connection refused")
	}
	return s.Store.Create(ctx, rec)
}

func (s *spyStore) set(f func(*spyStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a lifecycle over a spied memory store with a test clock and a
// flush interval long enough that only explicit flushes write.
type env struct {
	keys  *keyward.Keys
	spy   *spyStore
	clock *clock
	logs  *bytes.Buffer
}

func newEnv(t *testing.T, opts ...keyward.Option) *env {
	t.Helper()
	e := &env{spy: &spyStore{Store: memory.New()}, clock: newClock(), logs: new(bytes.Buffer)}
	opts = append([]keyward.Option{
		keyward.WithClock(e.clock.Now),
		keyward.WithFlushInterval(time.Hour),
		keyward.WithLogger(slog.New(slog.NewTextHandler(e.logs, nil))),
	}, opts...)
	k, err := keyward.New(e.spy, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	e.keys = k
	return e
}

func (e *env) create(t *testing.T, mode apikey.Mode, scopes ...scope.Scope) (string, apikey.Record) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []scope.Scope{scope.SessionsWrite}
	}
	sec, rec, err := e.keys.Create(context.Background(), keyward.CreateParams{Name: "test key", Mode: mode, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal(), rec
}

func TestNewRefusesBadOptions(t *testing.T) {
	if _, err := keyward.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for name, opt := range map[string]keyward.Option{
		"zero flush interval":     keyward.WithFlushInterval(0),
		"negative flush interval": keyward.WithFlushInterval(-time.Second),
		"nil clock":               keyward.WithClock(nil),
		"nil catalog":             keyward.WithCatalog(nil),
		"nil logger":              keyward.WithLogger(nil),
		"zero format":             keyward.WithFormat(apikey.Format{}),
	} {
		if k, err := keyward.New(memory.New(), opt); err == nil {
			k.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	expires := e.clock.Now().Add(90 * 24 * time.Hour)
	sec, rec, err := e.keys.Create(ctx, keyward.CreateParams{
		Name:      "  Production server \t",
		Mode:      apikey.Live,
		Scopes:    []scope.Scope{scope.SessionsWrite, scope.LinksRead, scope.SessionsWrite},
		ExpiresAt: expires,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	if m, err := apikey.Parse(raw); err != nil || m != apikey.Live {
		t.Fatalf("created key %v does not parse as live: %v", sec, err)
	}
	want := apikey.Record{
		ID:        rec.ID,
		Name:      "Production server",
		Prefix:    raw[:14],
		Mode:      apikey.Live,
		Scopes:    scope.NewSet(scope.LinksRead, scope.SessionsWrite),
		Hash:      apikey.HashOf(raw),
		CreatedAt: e.clock.Now(),
		ExpiresAt: expires,
	}
	for _, got := range []apikey.Record{rec, mustGet(t, e.keys, rec.ID)} {
		if got.Name != want.Name || got.Prefix != want.Prefix || got.Mode != want.Mode ||
			!got.Scopes.Equal(want.Scopes) || got.Hash != want.Hash || got.CreatedAt != want.CreatedAt ||
			got.ExpiresAt != want.ExpiresAt || !got.LastUsedAt.IsZero() || got.Revoked() {
			t.Errorf("record = %+v\nwant %+v", got, want)
		}
	}
	if rec.ID.Version() != 7 {
		t.Errorf("ID version %d, want 7 (time-ordered)", rec.ID.Version())
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	valid := keyward.CreateParams{Name: "ok", Mode: apikey.Test, Scopes: []scope.Scope{scope.EventsRead}}
	tests := []struct {
		name      string
		mutate    func(*keyward.CreateParams)
		wantField string
		wantIs    error
	}{
		{"empty name", func(p *keyward.CreateParams) { p.Name = "" }, "name", nil},
		{"blank name", func(p *keyward.CreateParams) { p.Name = " \t\n" }, "name", nil},
		{"name with a control character", func(p *keyward.CreateParams) { p.Name = "a\x1bb" }, "name", nil},
		{"name too long", func(p *keyward.CreateParams) { p.Name = strings.Repeat("n", apikey.MaxNameLen+1) }, "name", nil},
		{"invalid UTF-8", func(p *keyward.CreateParams) { p.Name = "a\xffb" }, "name", nil},
		{"no mode", func(p *keyward.CreateParams) { p.Mode = 0 }, "mode", apikey.ErrInvalidMode},
		{"no scopes", func(p *keyward.CreateParams) { p.Scopes = nil }, "scopes", nil},
		{"unknown scope", func(p *keyward.CreateParams) { p.Scopes = []scope.Scope{"events:read", "events:write"} }, "scopes", scope.ErrUnknown},
		{"malformed scope", func(p *keyward.CreateParams) { p.Scopes = []scope.Scope{"EVENTS"} }, "scopes", scope.ErrMalformed},
		{"expiry now", func(p *keyward.CreateParams) { p.ExpiresAt = e.clock.Now() }, "expires_at", nil},
		{"expiry in the past", func(p *keyward.CreateParams) { p.ExpiresAt = e.clock.Now().Add(-time.Hour) }, "expires_at", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.mutate(&p)
			sec, _, err := e.keys.Create(context.Background(), p)
			var ie *keyward.InputError
			if !errors.As(err, &ie) || !errors.Is(err, keyward.ErrInvalidInput) {
				t.Fatalf("Create = %v, want an InputError", err)
			}
			if ie.Field != tc.wantField {
				t.Errorf("Field = %q, want %q", ie.Field, tc.wantField)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not match %v", err, tc.wantIs)
			}
			if !sec.IsZero() {
				t.Error("a refused Create returned a key")
			}
		})
	}
	page, err := e.keys.List(context.Background(), store.ListOptions{})
	if err != nil || len(page.Records) != 0 {
		t.Errorf("refused creates stored %d records (%v)", len(page.Records), err)
	}
}

func TestCreateWithCustomCatalogAndFormat(t *testing.T) {
	cat := scope.MustCatalog("orders:read", "orders:write")
	f, err := apikey.NewFormat("acme")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, keyward.WithCatalog(cat), keyward.WithFormat(f))
	ctx := context.Background()
	sec, _, err := e.keys.Create(ctx, keyward.CreateParams{Name: "orders", Mode: apikey.Test, Scopes: []scope.Scope{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sec.Reveal(), "acme_test_") {
		t.Errorf("key %v does not use the custom format", sec)
	}
	if _, err := e.keys.Verify(ctx, sec.Reveal()); err != nil {
		t.Errorf("Verify of a custom-format key: %v", err)
	}
	_, _, err = e.keys.Create(ctx, keyward.CreateParams{Name: "x", Mode: apikey.Test, Scopes: []scope.Scope{scope.LinksRead}})
	if !errors.Is(err, scope.ErrUnknown) {
		t.Errorf("a scope outside the custom catalog: %v, want ErrUnknown", err)
	}
	// A well-formed ck key is malformed under the acme format.
	other, _ := apikey.Generate(apikey.Test)
	if _, err := e.keys.Verify(ctx, other.Reveal()); !errors.Is(err, apikey.ErrPrefix) {
		t.Errorf("Verify of a ck key under acme: %v, want ErrPrefix", err)
	}
}

func TestCreateStoreFailure(t *testing.T) {
	e := newEnv(t)
	e.spy.set(func(s *spyStore) { s.failCreates = 1 })
	sec, _, err := e.keys.Create(context.Background(), keyward.CreateParams{Name: "x", Mode: apikey.Live, Scopes: []scope.Scope{scope.LinksRead}})
	if !errors.Is(err, keyward.ErrStoreUnavailable) || errors.Is(err, keyward.ErrInvalidInput) {
		t.Fatalf("Create with a failing store = %v, want ErrStoreUnavailable", err)
	}
	if !sec.IsZero() {
		t.Error("a failed Create returned a key that was never stored")
	}
}

func mustGet(t *testing.T, k *keyward.Keys, id uuid.UUID) apikey.Record {
	t.Helper()
	rec, err := k.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good, goodRec := e.create(t, apikey.Live, scope.SessionsWrite, scope.LinksRead)
	revoked, revokedRec := e.create(t, apikey.Live)
	if _, err := e.keys.Revoke(ctx, revokedRec.ID); err != nil {
		t.Fatal(err)
	}
	expiring, expiringRec := e.create(t, apikey.Test)
	if _, err := e.keys.Store().SetExpiry(ctx, expiringRec.ID, e.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute) // expiry is inclusive: expired at exactly ExpiresAt
	unknown, _ := apikey.Generate(apikey.Live)
	// The right hash under the wrong mode: a record whose mode disagrees
	// with the key is not this key.
	wrongMode := "ck_test_" + good[len("ck_live_"):]

	tests := []struct {
		name       string
		raw        string
		wantErr    error
		storeCalls int64
	}{
		{"valid", good, nil, 1},
		{"unknown", unknown.Reveal(), keyward.ErrUnknownKey, 1},
		{"revoked", revoked, keyward.ErrRevoked, 1},
		{"expired", expiring, keyward.ErrExpired, 1},
		{"other mode", wrongMode, keyward.ErrUnknownKey, 1},
		{"empty", "", apikey.ErrPrefix, 0},
		{"wrong prefix", "sk_live_" + good[8:], apikey.ErrPrefix, 0},
		{"wrong mode", "ck_prod_" + good[8:], apikey.ErrMode, 0},
		{"too short", good[:len(good)-1], apikey.ErrLength, 0},
		{"bad character", good[:len(good)-1] + "!", apikey.ErrAlphabet, 0},
		{"huge", good + strings.Repeat("A", 1<<20), apikey.ErrLength, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.spy.getByHash.Load()
			rec, err := e.keys.Verify(ctx, tc.raw)
			if calls := e.spy.getByHash.Load() - before; calls != tc.storeCalls {
				t.Errorf("%d store lookups, want %d", calls, tc.storeCalls)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				if rec.ID != goodRec.ID || !rec.Scopes.Equal(goodRec.Scopes) || rec.LastUsedAt != e.clock.Now() {
					t.Errorf("Verify returned %+v", rec)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, keyward.ErrInvalidKey) {
				t.Fatalf("Verify = %v, want %v and ErrInvalidKey", err, tc.wantErr)
			}
			if errors.Is(err, keyward.ErrStoreUnavailable) {
				t.Errorf("an invalid key matched ErrStoreUnavailable")
			}
			if tc.storeCalls == 0 && !errors.Is(err, keyward.ErrMalformedKey) {
				t.Errorf("a malformed key error does not match ErrMalformedKey: %v", err)
			}
			if rec.ID != uuid.Nil || !rec.Scopes.IsEmpty() {
				t.Errorf("a refused key returned a record: %+v", rec)
			}
			if len(tc.raw) > 20 && strings.Contains(err.Error(), tc.raw[10:]) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

// TestVerifyChecksTheStoresAnswer: a store that answers with a record that
// is not this key's (another hash, or a mode the key does not carry) is not
// trusted.
func TestVerifyChecksTheStoresAnswer(t *testing.T) {
	e := newEnv(t)
	raw, _ := e.create(t, apikey.Live)
	for name, tamper := range map[string]func(*apikey.Record){
		"other hash": func(r *apikey.Record) { r.Hash[31] ^= 1 },
		"other mode": func(r *apikey.Record) { r.Mode = apikey.Test },
	} {
		t.Run(name, func(t *testing.T) {
			e.spy.set(func(s *spyStore) { s.tamper = tamper })
			defer e.spy.set(func(s *spyStore) { s.tamper = nil })
			if _, err := e.keys.Verify(context.Background(), raw); !errors.Is(err, keyward.ErrUnknownKey) {
				t.Errorf("Verify = %v, want ErrUnknownKey", err)
			}
		})
	}
}

func TestInvalidKeyErrorsAreDistinct(t *testing.T) {
	errs := []error{keyward.ErrMalformedKey, keyward.ErrUnknownKey, keyward.ErrRevoked, keyward.ErrExpired}
	for i, a := range errs {
		if !errors.Is(a, keyward.ErrInvalidKey) {
			t.Errorf("%v does not match ErrInvalidKey", a)
		}
		if errors.Is(a, keyward.ErrStoreUnavailable) {
			t.Errorf("%v matches ErrStoreUnavailable", a)
		}
		for j, b := range errs {
			if got := errors.Is(a, b); got != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, got)
			}
		}
	}
}

func TestVerifyStoreFailureIsNotInvalidKey(t *testing.T) {
	e := newEnv(t)
	good, _ := e.create(t, apikey.Live)
	for name, fail := range map[string]error{
		"connection refused": errors.New("dial tcp 10.0.0.5:5432: connect: connection refused"),
		"deadline":           fmt.Errorf("query: %w", context.DeadlineExceeded),
		"canceled":           context.Canceled,
	} {
		t.Run(name, func(t *testing.T) {
			e.spy.set(func(s *spyStore) { s.failHash = fail })
			defer e.spy.set(func(s *spyStore) { s.failHash = nil })
			_, err := e.keys.Verify(context.Background(), good)
			if !errors.Is(err, keyward.ErrStoreUnavailable) {
				t.Fatalf("Verify = %v, want ErrStoreUnavailable", err)
			}
			if errors.Is(err, keyward.ErrInvalidKey) {
				t.Fatalf("a store failure matched ErrInvalidKey: %v", err)
			}
			if !errors.Is(err, fail) {
				t.Errorf("the store's error is not wrapped: %v", err)
			}
			var se *keyward.StoreError
			if !errors.As(err, &se) || se.Op != "verify" {
				t.Errorf("error %v is not a StoreError for verify", err)
			}
			if strings.Contains(err.Error(), good[10:]) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

func TestVerifyDoesNotWrite(t *testing.T) {
	e := newEnv(t)
	raw, rec := e.create(t, apikey.Live)
	ctx := context.Background()
	first := e.clock.Now()
	for range 10_000 {
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Second)
	last := e.clock.Now()
	if _, err := e.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if n := e.spy.recordUses.Load(); n != 0 {
		t.Fatalf("Verify wrote %d times before any flush", n)
	}
	if got := mustGet(t, e.keys, rec.ID).LastUsedAt; !got.IsZero() {
		t.Fatalf("LastUsedAt = %v before the flush", got)
	}
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, uses := e.spy.recordUses.Load(), e.spy.usesSeen.Load(); n != 1 || uses != 1 {
		t.Errorf("10,001 verifications cost %d writes of %d uses, want 1 of 1", n, uses)
	}
	if got := mustGet(t, e.keys, rec.ID).LastUsedAt; got != last {
		t.Errorf("LastUsedAt = %v, want the latest use %v (first was %v)", got, last, first)
	}
	// Nothing pending: flushing again writes nothing.
	if err := e.keys.Flush(ctx); err != nil || e.spy.recordUses.Load() != 1 {
		t.Errorf("an empty flush wrote (%d writes, %v)", e.spy.recordUses.Load(), err)
	}
}

func TestFlushBatchesManyKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 50
	var raws []string
	for range n {
		raw, _ := e.create(t, apikey.Test)
		raws = append(raws, raw)
	}
	for _, raw := range raws {
		for range 3 {
			if _, err := e.keys.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if calls, uses := e.spy.recordUses.Load(), e.spy.usesSeen.Load(); calls != 1 || uses != n {
		t.Errorf("%d writes of %d uses, want 1 write of %d", calls, uses, n)
	}
}

func TestFlushFailureKeepsUses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	if _, err := e.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	used := e.clock.Now()
	e.spy.set(func(s *spyStore) { s.failUses = errors.New("connection reset by peer") })
	err := e.keys.Flush(ctx)
	if !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Fatalf("Flush with a failing store = %v, want ErrStoreUnavailable", err)
	}
	e.spy.set(func(s *spyStore) { s.failUses = nil })
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e.keys, rec.ID).LastUsedAt; got != used {
		t.Errorf("after a failed then a good flush, LastUsedAt = %v, want %v", got, used)
	}
}

func TestBackgroundFlush(t *testing.T) {
	st := memory.New()
	k, err := keyward.New(st, keyward.WithFlushInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx := context.Background()
	sec, rec, err := k.Create(ctx, keyward.CreateParams{Name: "bg", Mode: apikey.Live, Scopes: []scope.Scope{scope.LinksRead}})
	if err != nil {
		t.Fatal(err)
	}
	verified, err := k.Verify(ctx, sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the background writer (no timing assertion: a deadline only
	// stops a broken writer from hanging the test).
	deadline := time.After(10 * time.Second)
	for {
		got, err := st.Get(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt.Equal(verified.LastUsedAt) {
			return
		}
		select {
		case <-deadline:
			t.Fatal("the background writer never wrote the last-used time")
		case <-time.After(time.Millisecond):
		}
	}
}

func TestBackgroundFlushFailureIsLogged(t *testing.T) {
	e := newEnv(t, keyward.WithFlushInterval(time.Millisecond))
	raw, _ := e.create(t, apikey.Live)
	e.spy.set(func(s *spyStore) { s.failUses = errors.New("db down") })
	if _, err := e.keys.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	for e.spy.recordUses.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := e.keys.Close(); err == nil {
		t.Fatal("Close flushed into a failing store without error")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "db down") || !strings.Contains(logs, "pending_keys=1") {
		t.Errorf("failed background flush not logged usefully: %q", logs)
	}
	if strings.Contains(logs, raw[10:]) {
		t.Errorf("log line carries the key: %q", logs)
	}
}

func TestCloseFlushes(t *testing.T) {
	e := newEnv(t)
	raw, rec := e.create(t, apikey.Live)
	if _, err := e.keys.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e.keys, rec.ID).LastUsedAt; got != e.clock.Now() {
		t.Errorf("after Close, LastUsedAt = %v, want %v", got, e.clock.Now())
	}
	if err := e.keys.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	// Verify keeps working after Close; Flush writes its uses.
	e.clock.Advance(time.Minute)
	if _, err := e.keys.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e.keys, rec.ID).LastUsedAt; got != e.clock.Now() {
		t.Errorf("Flush after Close: LastUsedAt = %v, want %v", got, e.clock.Now())
	}
}

func TestVerifyConcurrent(t *testing.T) {
	e := newEnv(t)
	raws := make([]string, 4)
	recs := make([]apikey.Record, 4)
	for i := range raws {
		raws[i], recs[i] = e.create(t, apikey.Live)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				if _, err := e.keys.Verify(context.Background(), raws[(w+i)%len(raws)]); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					if err := e.keys.Flush(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := e.keys.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if got := mustGet(t, e.keys, rec.ID).LastUsedAt; got != e.clock.Now() {
			t.Errorf("LastUsedAt = %v, want %v", got, e.clock.Now())
		}
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	if _, err := e.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	revokedAt := e.clock.Now()
	got, err := e.keys.Revoke(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt != revokedAt || got.Status(e.clock.Now()) != apikey.Revoked {
		t.Errorf("Revoke returned %+v", got)
	}
	// Immediate: the very next verification fails.
	if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify after Revoke = %v, want ErrRevoked", err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.keys.Revoke(ctx, rec.ID); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := e.keys.Revoke(ctx, uuid.New()); !errors.Is(err, keyward.ErrNotFound) {
		t.Errorf("Revoke of an unknown ID = %v, want ErrNotFound", err)
	}
	// Still listed, for audit, with the first revocation time.
	page, err := e.keys.List(ctx, store.ListOptions{Status: apikey.Revoked})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].RevokedAt != revokedAt {
		t.Errorf("revoked listing = %+v", page.Records)
	}
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	oldRaw, old := e.create(t, apikey.Live, scope.WebhooksRead, scope.EventsRead)
	e.clock.Advance(time.Hour)
	newSec, rec, err := e.keys.Rotate(ctx, old.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID == old.ID || rec.Name != old.Name || rec.Mode != old.Mode || !rec.Scopes.Equal(old.Scopes) ||
		!rec.ExpiresAt.IsZero() || rec.CreatedAt != e.clock.Now() {
		t.Errorf("rotated record %+v does not replace %+v", rec, old)
	}
	if newSec.Reveal() == oldRaw {
		t.Fatal("rotation returned the old key")
	}
	if got := mustGet(t, e.keys, old.ID).ExpiresAt; got != e.clock.Now().Add(10*time.Minute) {
		t.Errorf("old key expires at %v, want now + overlap", got)
	}
	// Both work during the overlap.
	e.clock.Advance(10*time.Minute - time.Microsecond)
	for _, raw := range []string{oldRaw, newSec.Reveal()} {
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Errorf("during the overlap, Verify = %v", err)
		}
	}
	// Then only the new one.
	e.clock.Advance(time.Microsecond)
	if _, err := e.keys.Verify(ctx, oldRaw); !errors.Is(err, keyward.ErrExpired) {
		t.Errorf("after the overlap, the old key: %v, want ErrExpired", err)
	}
	if _, err := e.keys.Verify(ctx, newSec.Reveal()); err != nil {
		t.Errorf("after the overlap, the new key: %v", err)
	}
}

func TestRotateEdgeCases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t.Run("zero overlap ends the old key at once", func(t *testing.T) {
		raw, rec := e.create(t, apikey.Test)
		if _, _, err := e.keys.Rotate(ctx, rec.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrExpired) {
			t.Errorf("Verify = %v, want ErrExpired", err)
		}
	})
	t.Run("an earlier expiry is kept", func(t *testing.T) {
		sec, rec, err := e.keys.Create(ctx, keyward.CreateParams{
			Name: "short", Mode: apikey.Test, Scopes: []scope.Scope{scope.LinksRead},
			ExpiresAt: e.clock.Now().Add(time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.keys.Rotate(ctx, rec.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, e.keys, rec.ID).ExpiresAt; got != rec.ExpiresAt {
			t.Errorf("rotation extended the expiry to %v (was %v)", got, rec.ExpiresAt)
		}
		_ = sec
	})
	t.Run("negative overlap", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		_, _, err := e.keys.Rotate(ctx, rec.ID, -time.Second)
		var ie *keyward.InputError
		if !errors.As(err, &ie) || ie.Field != "overlap" {
			t.Errorf("Rotate = %v, want an InputError on overlap", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		if _, err := e.keys.Revoke(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.keys.Rotate(ctx, rec.ID, time.Hour); !errors.Is(err, keyward.ErrAlreadyRevoked) {
			t.Errorf("Rotate of a revoked key = %v, want ErrAlreadyRevoked", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, _, err := e.keys.Rotate(ctx, uuid.New(), time.Hour); !errors.Is(err, keyward.ErrNotFound) {
			t.Errorf("Rotate of an unknown key = %v, want ErrNotFound", err)
		}
	})
	t.Run("failure leaves things as they were", func(t *testing.T) {
		raw, rec := e.create(t, apikey.Test)
		before, _ := e.keys.List(ctx, store.ListOptions{Status: apikey.Active, Limit: store.MaxLimit})
		e.spy.set(func(s *spyStore) { s.failExpiry = errors.New("connection reset") })
		sec, _, err := e.keys.Rotate(ctx, rec.ID, time.Hour)
		e.spy.set(func(s *spyStore) { s.failExpiry = nil })
		if !errors.Is(err, keyward.ErrStoreUnavailable) {
			t.Fatalf("Rotate = %v, want ErrStoreUnavailable", err)
		}
		if !sec.IsZero() {
			t.Error("a failed rotation returned a key")
		}
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Errorf("the old key stopped working: %v", err)
		}
		after, _ := e.keys.List(ctx, store.ListOptions{Status: apikey.Active, Limit: store.MaxLimit})
		if len(after.Records) != len(before.Records) {
			t.Errorf("a failed rotation left %d active keys, want %d", len(after.Records), len(before.Records))
		}
	})
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var created []apikey.Record
	for i := range 5 {
		mode := apikey.Live
		if i%2 == 1 {
			mode = apikey.Test
		}
		_, rec := e.create(t, mode)
		created = append(created, rec)
		e.clock.Advance(time.Second)
	}
	page, err := e.keys.List(ctx, store.ListOptions{Limit: 2, Mode: apikey.Live})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].ID != created[4].ID || page.Records[1].ID != created[2].ID || page.Next == "" {
		t.Fatalf("first page of live keys = %v", page)
	}
	page, err = e.keys.List(ctx, store.ListOptions{Limit: 2, Mode: apikey.Live, Cursor: page.Next})
	if err != nil || len(page.Records) != 1 || page.Records[0].ID != created[0].ID || page.Next != "" {
		t.Fatalf("second page = %v, %v", page, err)
	}
	for name, opts := range map[string]store.ListOptions{
		"negative limit": {Limit: -1},
		"bad mode":       {Mode: 9},
		"bad status":     {Status: 9},
	} {
		_, err := e.keys.List(ctx, opts)
		if !errors.Is(err, keyward.ErrInvalidInput) || errors.Is(err, keyward.ErrStoreUnavailable) {
			t.Errorf("%s: List = %v, want ErrInvalidInput", name, err)
		}
	}
	if _, err := e.keys.List(ctx, store.ListOptions{Cursor: "garbage"}); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
	}
}

func TestRawKeyNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, keyward.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	ctx := context.Background()
	sec, rec, err := e.keys.Create(ctx, keyward.CreateParams{Name: "leak check", Mode: apikey.Live, Scopes: []scope.Scope{scope.LinksRead}})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	secretPart := raw[len("ck_live_"):]
	var outputs []string
	recJSON, _ := json.Marshal(rec)
	outputs = append(outputs, string(recJSON), fmt.Sprintf("%v %+v %#v", rec, rec, rec), fmt.Sprint(sec))
	stored := mustGet(t, e.keys, rec.ID)
	outputs = append(outputs, fmt.Sprintf("%#v", stored))
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("created", "key", sec, "record", rec)
	// Errors of every kind that sees the key.
	e.spy.set(func(s *spyStore) { s.failHash = errors.New("down") })
	_, err = e.keys.Verify(ctx, raw)
	outputs = append(outputs, err.Error())
	e.spy.set(func(s *spyStore) { s.failHash = nil })
	if _, err := e.keys.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.keys.Verify(ctx, raw)
	outputs = append(outputs, err.Error())
	_, err = e.keys.Verify(ctx, raw+"x")
	outputs = append(outputs, err.Error(), logs.String())
	for _, out := range outputs {
		if strings.Contains(out, secretPart) {
			t.Errorf("raw key found in %q", out)
		}
	}
	if logs.Len() == 0 || !strings.Contains(logs.String(), rec.Prefix) {
		t.Errorf("the log check logged nothing useful: %q", logs.String())
	}
}

func TestLastUsedPrecision(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	verifyAndFlush := func() time.Time {
		t.Helper()
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if err := e.keys.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return mustGet(t, e.keys, rec.ID).LastUsedAt
	}
	first := e.clock.Now()
	if got := verifyAndFlush(); got != first {
		t.Fatalf("LastUsedAt = %v, want %v", got, first)
	}
	e.clock.Advance(999 * time.Microsecond)
	if got := verifyAndFlush(); got != first {
		t.Errorf("a use 999µs later moved LastUsedAt to %v; uses under 1ms apart are coalesced", got)
	}
	e.clock.Advance(time.Microsecond)
	if got := verifyAndFlush(); got != e.clock.Now() {
		t.Errorf("a use 1ms later left LastUsedAt at %v, want %v", got, e.clock.Now())
	}
}
