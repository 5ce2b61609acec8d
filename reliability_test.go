package keyward_test

import (
	"context"
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
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// stallStore is a store whose chosen calls block until their context ends
// or the test releases them, as a locked table or a blackholed link does.
type stallStore struct {
	store.Store
	stallLookups atomic.Bool // GetByHash blocks
	stallGets    atomic.Bool // Get blocks
	release      chan struct{}
	inLookup     atomic.Int64 // GetByHash calls in progress
	deadlines    chan time.Duration
}

func newStallStore() *stallStore {
	return &stallStore{Store: memory.New(), release: make(chan struct{}), deadlines: make(chan time.Duration, 100)}
}

// stall waits for ctx or the release, and reports the time ctx had left.
func (s *stallStore) stall(ctx context.Context) error {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	select {
	case s.deadlines <- time.Until(d):
	default:
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("stalled: %w", ctx.Err())
	case <-s.release:
		return nil
	}
}

func (s *stallStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.stallLookups.Load() {
		s.inLookup.Add(1)
		defer s.inLookup.Add(-1)
		if err := s.stall(ctx); err != nil {
			return apikey.Record{}, err
		}
	}
	return s.Store.GetByHash(ctx, h)
}

func (s *stallStore) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	if s.stallGets.Load() {
		if err := s.stall(ctx); err != nil {
			return apikey.Record{}, err
		}
	}
	return s.Store.Get(ctx, owner, id)
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// keysWithKey returns a lifecycle over st, closed when the test ends, and
// the raw key of one live key it created.
func keysWithKey(t *testing.T, st store.Store, opts ...keyward.Option) (*keyward.Keys, string) {
	t.Helper()
	keys, err := keyward.New(st, append([]keyward.Option{keyward.WithFlushInterval(time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	sec, _, err := keys.Owner("acme").Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	return keys, sec.Reveal()
}

func TestVerifyHasADeadline(t *testing.T) {
	st := newStallStore()
	keys, raw := keysWithKey(t, st, keyward.WithLookupTimeout(50*time.Millisecond))
	st.stallLookups.Store(true)
	// A request without a deadline of its own still gets one.
	_, err := keys.Verify(context.Background(), raw)
	if !errors.Is(err, keyward.ErrStoreUnavailable) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, keyward.ErrInvalidKey) {
		t.Fatalf("Verify against a stalled store = %v, want ErrStoreUnavailable from the deadline, never an invalid key", err)
	}
	if left := <-st.deadlines; left <= 0 || left > 50*time.Millisecond {
		t.Errorf("the store's context had %v left, want at most the 50ms lookup timeout", left)
	}
	// A caller's earlier deadline wins.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Fatalf("Verify = %v", err)
	}
	if left := <-st.deadlines; left > 10*time.Millisecond {
		t.Errorf("the store's context had %v left, want the caller's 10ms deadline", left)
	}
}

func TestManagementCallsHaveADeadline(t *testing.T) {
	st := newStallStore()
	keys, err := keyward.New(st, keyward.WithStoreTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	st.stallGets.Store(true)
	_, err = keys.Owner("acme").Get(context.Background(), uuid.New())
	if !errors.Is(err, keyward.ErrStoreUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get against a stalled store = %v, want ErrStoreUnavailable from the deadline", err)
	}
	if left := <-st.deadlines; left <= 0 || left > 50*time.Millisecond {
		t.Errorf("the store's context had %v left, want at most the 50ms store timeout", left)
	}
	// Rotate reads the key first: it too gives up at the deadline.
	if _, _, err := keys.Owner("acme").Rotate(context.Background(), uuid.New(), keyward.RotateParams{}); !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Errorf("Rotate against a stalled store = %v", err)
	}
}

// TestLookupsInFlightAreBounded: a flood of keys the store must look up
// takes at most WithMaxLookups places; the rest wait briefly, then fail as
// an unavailable store (503), while keys answered from memory are never
// held up.
func TestLookupsInFlightAreBounded(t *testing.T) {
	st := newStallStore()
	keys, raw := keysWithKey(t, st, keyward.WithMaxLookups(2), keyward.WithLookupTimeout(time.Hour))
	ctx := context.Background()
	st.stallLookups.Store(true)
	var wg sync.WaitGroup
	held := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := keys.Verify(ctx, raw)
			held <- err
		})
	}
	waitFor(t, "two lookups in the store", func() bool { return st.inLookup.Load() == 2 })

	// The third waits a tenth of the lookup timeout (here, 6 minutes): give
	// it a deadline of its own, and check it never reached the store.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := keys.Verify(short, raw)
	if !errors.Is(err, keyward.ErrStoreUnavailable) || errors.Is(err, keyward.ErrInvalidKey) {
		t.Fatalf("a third lookup = %v, want ErrStoreUnavailable", err)
	}
	if n := st.inLookup.Load(); n != 2 {
		t.Errorf("%d lookups in the store, want at most 2", n)
	}
	close(st.release)
	wg.Wait()
	close(held)
	for err := range held {
		if err != nil {
			t.Errorf("a held lookup, released = %v", err)
		}
	}
	// Places are given back.
	for range 5 {
		if _, err := keys.Verify(ctx, raw); err != nil {
			t.Fatalf("after the flood: %v", err)
		}
	}
}

func TestLookupWaitIsBrief(t *testing.T) {
	st := newStallStore()
	keys, raw := keysWithKey(t, st, keyward.WithMaxLookups(1), keyward.WithLookupTimeout(200*time.Millisecond))
	ctx := context.Background()
	st.stallLookups.Store(true)
	defer close(st.release)
	go keys.Verify(ctx, raw)
	waitFor(t, "a lookup in the store", func() bool { return st.inLookup.Load() == 1 })
	_, err := keys.Verify(ctx, raw)
	if !errors.Is(err, keyward.ErrOverloaded) || !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Fatalf("a lookup beyond the bound = %v, want ErrOverloaded within ErrStoreUnavailable", err)
	}
}

// TestMemoryAnswersAreNeitherBoundedNorTimed: the memory store answers
// from memory, so a saturated lookup bound does not hold its keys up, and
// its verifications allocate nothing (no timer, no context).
func TestMemoryAnswersAreNeitherBoundedNorTimed(t *testing.T) {
	keys, raw := keysWithKey(t, memory.New(), keyward.WithMaxLookups(1))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if _, err := keys.Verify(ctx, raw); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := testing.AllocsPerRun(100, func() { keys.Verify(ctx, raw) }); n != 0 {
		t.Errorf("Verify on the memory store allocates %v times", n)
	}
}

// TestCachedHitsAreNotBounded: a cache's hits are answered from memory,
// outside the lookup bound, without allocating.
func TestCachedHitsAreNotBounded(t *testing.T) {
	st := newStallStore()
	c, err := cache.New(st, cache.WithBound(time.Hour)) // no poll needed while the test runs
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, raw := keysWithKey(t, c, keyward.WithMaxLookups(1))
	ctx := context.Background()
	waitFor(t, "the cache to answer from memory", func() bool {
		keys.Verify(ctx, raw)
		return c.Stats().Hits > 0
	})
	// Saturate the bound with a lookup the store holds.
	other, _ := apikey.Generate(apikey.Live)
	st.stallLookups.Store(true)
	defer close(st.release)
	go keys.Verify(ctx, other.Reveal())
	waitFor(t, "a lookup in the store", func() bool { return st.inLookup.Load() == 1 })
	if _, err := keys.Verify(ctx, raw); err != nil {
		t.Fatalf("a cached key while the bound is full: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { keys.Verify(ctx, raw) }); n != 0 {
		t.Errorf("a cached verification allocates %v times", n)
	}
}

func TestOutagesAreLogged(t *testing.T) {
	logs := new(syncbuf.Buffer)
	e := newEnv(t, keyward.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	raw, _ := e.create(t, apikey.Live)
	logs.Reset() // the creation's event
	ctx := context.Background()
	e.spy.set(func(s *spyStore) { s.failHash = errors.New("dial tcp: connection refused") })
	for range 100 {
		if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrStoreUnavailable) {
			t.Fatalf("Verify = %v", err)
		}
	}
	lines := strings.Count(logs.String(), "\n")
	if lines != 1 || !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("100 failures logged as %d lines, want the first one only:\n%s", lines, logs)
	}
	e.clock.Advance(10 * time.Second)
	for range 100 {
		e.keys.Verify(ctx, raw)
	}
	if got := logs.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, "still unavailable") || !strings.Contains(got, "failures=101") {
		t.Fatalf("10s into the outage, the log is:\n%s\nwant one reminder with the count of failures", got)
	}
	e.clock.Advance(time.Second)
	e.spy.set(func(s *spyStore) { s.failHash = nil })
	for range 10 {
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	got := logs.String()
	if strings.Count(got, "\n") != 3 || !strings.Contains(got, "answers again") || !strings.Contains(got, "failures=200") || !strings.Contains(got, "after=11s") {
		t.Fatalf("after recovery, the log is:\n%s\nwant one recovery line with the count and the duration", got)
	}
	if strings.Contains(got, raw[10:]) {
		t.Error("a log line carries the key")
	}
}

func TestShutdownRetriesAndSaysWhatItLost(t *testing.T) {
	logs := new(syncbuf.Buffer)
	e := newEnv(t, keyward.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	raw, rec := e.create(t, apikey.Live)
	ctx := context.Background()
	if _, err := e.keys.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	e.spy.set(func(s *spyStore) { s.failUses = errors.New("connection reset by peer") })
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := e.keys.Shutdown(short)
	if err == nil || !strings.Contains(err.Error(), "of 1 keys") || !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Fatalf("Shutdown against a failing store = %v, want an error counting the keys it could not write", err)
	}
	if n := e.spy.recordUses.Load(); n < 2 {
		t.Errorf("Shutdown tried to write %d times, want retries", n)
	}
	if !strings.Contains(logs.String(), "keys=1") || !strings.Contains(logs.String(), "lost") {
		t.Errorf("the loss is not logged: %q", logs)
	}
	// A second Close tries again, and writes once the store is back.
	e.spy.set(func(s *spyStore) { s.failUses = nil })
	if err := e.keys.Close(); err != nil {
		t.Fatalf("Close after the store came back = %v", err)
	}
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != e.clock.Now() {
		t.Errorf("LastUsedAt = %v, want %v", got, e.clock.Now())
	}
}

func TestShutdownWaitsOutATransientFailure(t *testing.T) {
	e := newEnv(t)
	raw, rec := e.create(t, apikey.Live)
	if _, err := e.keys.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	e.spy.set(func(s *spyStore) { s.failUses = errors.New("connection reset by peer") })
	done := make(chan error)
	go func() { done <- e.keys.Shutdown(context.Background()) }()
	waitFor(t, "a failed write", func() bool { return e.spy.recordUses.Load() >= 2 })
	e.spy.set(func(s *spyStore) { s.failUses = nil })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown never finished once the store came back")
	}
	if got := mustGet(t, e.acct, rec.ID).LastUsedAt; got != e.clock.Now() {
		t.Errorf("LastUsedAt = %v, want %v", got, e.clock.Now())
	}
}
