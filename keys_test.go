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
	"github.com/keyward/keyward/internal/syncbuf"
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
	failRotate  error                // returned by Rotate when set
	failCreates int                  // number of Create calls still to fail
	tamper      func(*apikey.Record) // changes what GetByHash returns
	calls       atomic.Int64         // calls of any method
}

func (s *spyStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.calls.Add(1)
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
	s.calls.Add(1)
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

func (s *spyStore) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	s.calls.Add(1)
	s.mu.Lock()
	fail := s.failRotate
	s.mu.Unlock()
	if fail != nil {
		return apikey.Record{}, apikey.Record{}, fail
	}
	return s.Store.Rotate(ctx, owner, id, next, overlapEnd)
}

func (s *spyStore) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	s.calls.Add(1)
	s.mu.Lock()
	fail := s.failCreates > 0
	if fail {
		s.failCreates--
	}
	s.mu.Unlock()
	if fail {
		return apikey.Record{}, errors.New("connection refused")
	}
	return s.Store.Create(ctx, rec, idem)
}

func (s *spyStore) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	s.calls.Add(1)
	return s.Store.Get(ctx, owner, id)
}

func (s *spyStore) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	s.calls.Add(1)
	return s.Store.List(ctx, owner, opts)
}

func (s *spyStore) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	s.calls.Add(1)
	return s.Store.Update(ctx, owner, id, u)
}

func (s *spyStore) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	s.calls.Add(1)
	return s.Store.Revoke(ctx, owner, id, r)
}

func (s *spyStore) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	s.calls.Add(1)
	return s.Store.RevokeAll(ctx, owner, r)
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
// flush interval long enough that only explicit flushes write, and one
// owner's keys in it.
type env struct {
	keys  *keyward.Keys
	acct  keyward.Owner // the owner "acct_test"
	spy   *spyStore
	clock *clock
	logs  *syncbuf.Buffer
}

func newEnv(t *testing.T, opts ...keyward.Option) *env {
	t.Helper()
	e := &env{spy: &spyStore{Store: memory.New()}, clock: newClock(), logs: new(syncbuf.Buffer)}
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
	e.acct = k.Owner("acct_test")
	return e
}

func (e *env) create(t *testing.T, mode apikey.Mode, scopes ...scope.Scope) (string, apikey.Record) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []scope.Scope{scope.SessionsWrite}
	}
	sec, rec, err := e.acct.Create(context.Background(), keyward.CreateParams{Name: "test key", Mode: mode, Scopes: scope.NewSet(scopes...)})
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
		"zero max overlap":        keyward.WithMaxOverlap(0),
		"negative max overlap":    keyward.WithMaxOverlap(-time.Hour),
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
	sec, rec, err := e.acct.Create(ctx, keyward.CreateParams{
		Name:      "  Production server \t",
		Mode:      apikey.Live,
		Scopes:    scope.NewSet(scope.SessionsWrite, scope.LinksRead, scope.SessionsWrite),
		Metadata:  map[string]string{"integration": "erp", "region": "eu"},
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
		Owner:     "acct_test",
		Name:      "Production server",
		Prefix:    raw[:14],
		Mode:      apikey.Live,
		Scopes:    scope.NewSet(scope.LinksRead, scope.SessionsWrite),
		Hash:      apikey.HashOf(raw),
		CreatedAt: e.clock.Now(),
		ExpiresAt: expires,
		Metadata:  apikey.MustMetadata(map[string]string{"integration": "erp", "region": "eu"}),
	}
	for _, got := range []apikey.Record{rec, mustGet(t, e.acct, rec.ID)} {
		if got.Owner != want.Owner || !got.Metadata.Equal(want.Metadata) || got.Replaces != uuid.Nil || got.ReplacedBy != uuid.Nil {
			t.Errorf("record owner %q, metadata %v, links %s %s; want %q, %v, none", got.Owner, got.Metadata, got.Replaces, got.ReplacedBy, want.Owner, want.Metadata)
		}
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
	valid := keyward.CreateParams{Name: "ok", Mode: apikey.Test, Scopes: scope.NewSet(scope.EventsRead)}
	tests := []struct {
		name      string
		mutate    func(*keyward.CreateParams)
		wantField string
		wantIs    error
	}{
		{"empty name", func(p *keyward.CreateParams) { p.Name = "" }, "name", nil},
		{"blank name", func(p *keyward.CreateParams) { p.Name = " \t\n" }, "name", nil},
		{"name with a control character", func(p *keyward.CreateParams) { p.Name = "a\x1bb" }, "name", nil},
		{"name with a bidirectional override", func(p *keyward.CreateParams) { p.Name = "Prod\u202Enoitcud" }, "name", nil},
		{"name with a zero-width space", func(p *keyward.CreateParams) { p.Name = "Prod\u200Bserver" }, "name", nil},
		{"name too long", func(p *keyward.CreateParams) { p.Name = strings.Repeat("n", apikey.MaxNameLen+1) }, "name", nil},
		{"invalid UTF-8", func(p *keyward.CreateParams) { p.Name = "a\xffb" }, "name", nil},
		{"no mode", func(p *keyward.CreateParams) { p.Mode = 0 }, "mode", apikey.ErrInvalidMode},
		{"no scopes", func(p *keyward.CreateParams) { p.Scopes = scope.Set{} }, "scopes", nil},
		{"unknown scope", func(p *keyward.CreateParams) { p.Scopes = scope.NewSet("events:read", "events:write") }, "scopes", scope.ErrUnknown},
		{"malformed scope", func(p *keyward.CreateParams) { p.Scopes = scope.NewSet("EVENTS") }, "scopes", scope.ErrMalformed},
		{"expiry now", func(p *keyward.CreateParams) { p.ExpiresAt = e.clock.Now() }, "expires_at", nil},
		{"expiry in the past", func(p *keyward.CreateParams) { p.ExpiresAt = e.clock.Now().Add(-time.Hour) }, "expires_at", nil},
		{"too much metadata", func(p *keyward.CreateParams) { p.Metadata = manyPairs(apikey.MaxMetadataPairs + 1) }, "metadata", apikey.ErrInvalidMetadata},
		{"metadata value too long", func(p *keyward.CreateParams) {
			p.Metadata = map[string]string{"note": strings.Repeat("x", apikey.MaxMetadataValueLen+1)}
		}, "metadata", apikey.ErrInvalidMetadata},
		{"idempotency key with a space", func(p *keyward.CreateParams) { p.IdempotencyKey = "order 1" }, "idempotency_key", nil},
		{"idempotency key too long", func(p *keyward.CreateParams) {
			p.IdempotencyKey = strings.Repeat("k", keyward.MaxIdempotencyKeyLen+1)
		}, "idempotency_key", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.mutate(&p)
			sec, _, err := e.acct.Create(context.Background(), p)
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
	page, err := e.acct.List(context.Background(), keyward.ListOptions{})
	if err != nil || len(page.Keys) != 0 {
		t.Errorf("refused creates stored %d records (%v)", len(page.Keys), err)
	}
}

// manyPairs returns n metadata pairs.
func manyPairs(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("key%02d", i)] = "value"
	}
	return m
}

func TestCreateWithCustomCatalogAndFormat(t *testing.T) {
	cat := scope.MustCatalog("orders:read", "orders:write")
	f, err := apikey.NewFormat("acme")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, keyward.WithCatalog(cat), keyward.WithFormat(f))
	ctx := context.Background()
	sec, _, err := e.acct.Create(ctx, keyward.CreateParams{Name: "orders", Mode: apikey.Test, Scopes: scope.NewSet("orders:read")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sec.Reveal(), "acme_test_") {
		t.Errorf("key %v does not use the custom format", sec)
	}
	if _, err := e.keys.Verify(ctx, sec.Reveal()); err != nil {
		t.Errorf("Verify of a custom-format key: %v", err)
	}
	_, _, err = e.acct.Create(ctx, keyward.CreateParams{Name: "x", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
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
	sec, _, err := e.acct.Create(context.Background(), keyward.CreateParams{Name: "x", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if !errors.Is(err, keyward.ErrStoreUnavailable) || errors.Is(err, keyward.ErrInvalidInput) {
		t.Fatalf("Create with a failing store = %v, want ErrStoreUnavailable", err)
	}
	if !sec.IsZero() {
		t.Error("a failed Create returned a key that was never stored")
	}
}

func mustGet(t *testing.T, o keyward.Owner, id uuid.UUID) apikey.Record {
	t.Helper()
	rec, err := o.Get(context.Background(), id)
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
	if _, err := e.acct.Revoke(ctx, revokedRec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	expiring, expiringRec := e.create(t, apikey.Test)
	if _, err := e.acct.Update(ctx, expiringRec.ID, keyward.UpdateParams{ExpiresAt: e.clock.Now().Add(time.Minute)}); err != nil {
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
				if rec.ID != goodRec.ID || rec.Owner != "acct_test" || !rec.Scopes.Equal(goodRec.Scopes) || rec.LastUsedAt != e.clock.Now() {
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
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; !got.IsZero() {
		t.Fatalf("LastUsedAt = %v before the flush", got)
	}
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, uses := e.spy.recordUses.Load(), e.spy.usesSeen.Load(); n != 1 || uses != 1 {
		t.Errorf("10,001 verifications cost %d writes of %d uses, want 1 of 1", n, uses)
	}
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != last {
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
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != used {
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
	sec, rec, err := k.Owner("acct_bg").Create(ctx, keyward.CreateParams{Name: "bg", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
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
		got, err := st.Get(ctx, "acct_bg", rec.ID)
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
	deadline := time.Now().Add(10 * time.Second)
	for e.spy.recordUses.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background writer never tried to write")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.keys.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown flushed into a failing store without error")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "db down") || !strings.Contains(logs, "pending_keys=1") || !strings.Contains(logs, `while="writing last-used times"`) {
		t.Errorf("failed background flush not logged usefully: %q", logs)
	}
	if strings.Contains(logs, raw[10:]) {
		t.Errorf("log line carries the key: %q", logs)
	}
	e.spy.set(func(s *spyStore) { s.failUses = nil }) // let the cleanup's Close write
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
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != e.clock.Now() {
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
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != e.clock.Now() {
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
		if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != e.clock.Now() {
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
	got, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{})
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
	if _, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := e.acct.Revoke(ctx, uuid.New(), keyward.RevokeParams{}); !errors.Is(err, keyward.ErrNotFound) {
		t.Errorf("Revoke of an unknown ID = %v, want ErrNotFound", err)
	}
	// Still listed, for audit, with the first revocation time.
	page, err := e.acct.List(ctx, keyward.ListOptions{Status: apikey.Revoked})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 1 || page.Keys[0].RevokedAt != revokedAt {
		t.Errorf("revoked listing = %+v", page.Keys)
	}
}

func TestRawKeyNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, keyward.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	ctx := context.Background()
	sec, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "leak check", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	secretPart := raw[len("ck_live_"):]
	var outputs []string
	recJSON, _ := json.Marshal(rec)
	outputs = append(outputs, string(recJSON), fmt.Sprintf("%v %+v %#v", rec, rec, rec), fmt.Sprint(sec))
	stored := mustGet(t, e.acct, rec.ID)
	outputs = append(outputs, fmt.Sprintf("%#v", stored))
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("created", "key", sec, "record", rec)
	// Errors of every kind that sees the key.
	e.spy.set(func(s *spyStore) { s.failHash = errors.New("down") })
	_, err = e.keys.Verify(ctx, raw)
	outputs = append(outputs, err.Error())
	e.spy.set(func(s *spyStore) { s.failHash = nil })
	if _, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
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
		return mustGet(t, e.acct, rec.ID).LastUsedAt
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
