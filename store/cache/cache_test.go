package cache_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
	"github.com/keyward/keyward/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c, err := cache.New(memory.New(), cache.WithBound(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}

// spy wraps a memory store: it counts lookups and feed polls, can hold a
// lookup after it has read, and can fail the feed.
type spy struct {
	*memory.Store
	lookups atomic.Int64
	polls   atomic.Int64

	mu       sync.Mutex
	hold     chan struct{} // if set, the next lookup waits on it after reading
	held     chan struct{} // closed when that lookup has read
	feedErr  error
	lookupFn func() error // if set, a lookup fails with its result
}

func newSpy() *spy { return &spy{Store: memory.New()} }

func (s *spy) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	hold, held, fail := s.hold, s.held, s.lookupFn
	s.hold, s.held = nil, nil
	s.mu.Unlock()
	if fail != nil {
		if err := fail(); err != nil {
			return apikey.Record{}, err
		}
	}
	rec, err := s.Store.GetByHash(ctx, h)
	if hold != nil {
		close(held)
		select {
		case <-hold:
		case <-ctx.Done():
			return apikey.Record{}, ctx.Err()
		}
	}
	return rec, err
}

func (s *spy) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	s.polls.Add(1)
	s.mu.Lock()
	err := s.feedErr
	s.mu.Unlock()
	if err != nil {
		return nil, "", err
	}
	return s.Store.Changes(ctx, since)
}

func (s *spy) set(f func(*spy)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// holdNext makes the next lookup stop after reading the store, until
// release is called; read is closed once it has read.
func (s *spy) holdNext() (read <-chan struct{}, release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	s.set(func(s *spy) { s.hold, s.held = hold, held })
	return held, func() { close(hold) }
}

func newCache(t *testing.T, next store.Store, opts ...cache.Option) *cache.Store {
	t.Helper()
	c, err := cache.New(next, append([]cache.Option{cache.WithLogger(slog.New(slog.NewTextHandler(new(bytes.Buffer), nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFresh waits until the cache has polled the feed once, so that it
// serves cached records.
func waitFresh(t *testing.T, s *spy, c *cache.Store, h apikey.Hash) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := s.lookups.Load()
		if _, err := c.GetByHash(context.Background(), h); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := c.GetByHash(context.Background(), h); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if s.lookups.Load()-before <= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never started serving")
		}
		time.Sleep(time.Millisecond)
	}
}

func addKey(t *testing.T, st store.Store) apikey.Record {
	t.Helper()
	sec, err := apikey.Generate(apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	rec := apikey.Record{
		ID: uuid.New(), Owner: owner, Name: "cached", Prefix: sec.DisplayPrefix(), Mode: apikey.Live,
		Scopes: scope.NewSet(scope.SessionsWrite, scope.SessionsRead), Hash: sec.Hash(), CreatedAt: time.Now(),
	}
	if _, err := st.Create(context.Background(), rec, store.Idempotency{}); err != nil {
		t.Fatal(err)
	}
	return rec
}

// owner owns the keys of these tests.
const owner = "acct_cache"

func TestHitsDoNotReachTheStore(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, rec.Hash)
	before := s.lookups.Load()
	for range 1000 {
		got, err := c.GetByHash(context.Background(), rec.Hash)
		if err != nil || got.ID != rec.ID {
			t.Fatalf("GetByHash = %v, %v", got.ID, err)
		}
	}
	if n := s.lookups.Load() - before; n != 0 {
		t.Errorf("1000 hits made %d store lookups, want 0", n)
	}
	if st := c.Stats(); st.Hits < 1000 || st.Known != 1 {
		t.Errorf("Stats = %+v", st)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.GetByHash(context.Background(), rec.Hash) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}

func TestUnknownKeysAreCachedAndBounded(t *testing.T) {
	s := newSpy()
	const max = 64 * 32 // 32 per shard: 100 keys never overflow one
	c := newCache(t, s, cache.WithMaxUnknown(max))
	waitFresh(t, s, c, apikey.Hash{1})
	ctx := context.Background()

	// A client replaying the same bogus keys reaches the store once per key.
	bogus := make([]apikey.Hash, 100)
	for i := range bogus {
		sec, _ := apikey.Generate(apikey.Live)
		bogus[i] = sec.Hash()
	}
	before := s.lookups.Load()
	for range 10 {
		for _, h := range bogus {
			if _, err := c.GetByHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetByHash of a bogus key = %v, want ErrNotFound", err)
			}
		}
	}
	if n := s.lookups.Load() - before; n != int64(len(bogus)) {
		t.Errorf("1000 lookups of 100 bogus keys reached the store %d times, want 100", n)
	}
	// A flood of distinct keys never grows the set past its bound.
	for range 20 * max {
		sec, _ := apikey.Generate(apikey.Test)
		_, _ = c.GetByHash(ctx, sec.Hash())
	}
	if st := c.Stats(); st.Unknown > max || st.Unknown < max/2 {
		t.Errorf("after a flood, %d unknown hashes cached, want at most %d (and the set in use)", st.Unknown, max)
	}
}

func TestKnownKeysAreBounded(t *testing.T) {
	s := newSpy()
	const max = 128
	c := newCache(t, s, cache.WithMaxEntries(max))
	ctx := context.Background()
	for range 10 * max {
		rec := addKey(t, s)
		if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Known > max {
		t.Errorf("%d records cached, want at most %d", st.Known, max)
	}
}

func TestConcurrentMissesShareOneQuery(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, apikey.Hash{3})
	before := s.lookups.Load()
	read, release := s.holdNext()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Go(func() {
		got, err := c.GetByHash(context.Background(), rec.Hash)
		if err == nil && got.ID != rec.ID {
			err = errors.New("wrong record")
		}
		errs <- err
	})
	<-read // the first miss is querying; the others join it
	for range n - 1 {
		wg.Go(func() {
			got, err := c.GetByHash(context.Background(), rec.Hash)
			if err == nil && got.ID != rec.ID {
				err = errors.New("wrong record")
			}
			errs <- err
		})
	}
	for c.Stats().Misses < n {
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := s.lookups.Load() - before; got != 1 {
		t.Errorf("%d concurrent misses made %d store queries, want 1", n, got)
	}
}

func TestWaiterGivesUpAlone(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	read, release := s.holdNext()
	done := make(chan error)
	go func() {
		_, err := c.GetByHash(context.Background(), rec.Hash)
		done <- err
	}()
	<-read
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetByHash(ctx, rec.Hash); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled waiter got %v, want context.Canceled", err)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("the first client failed because another gave up: %v", err)
	}
}

// TestLeaderGivesUpAlone: the request leading a shared query gives up;
// the requests waiting on it look the key up again with their own
// contexts and succeed.
func TestLeaderGivesUpAlone(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, apikey.Hash{4})
	read, release := s.holdNext()
	defer release()
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error)
	go func() {
		_, err := c.GetByHash(leaderCtx, rec.Hash)
		leader <- err
	}()
	<-read
	waiter := make(chan error)
	misses := c.Stats().Misses
	go func() {
		got, err := c.GetByHash(context.Background(), rec.Hash)
		if err == nil && got.ID != rec.ID {
			err = errors.New("wrong record")
		}
		waiter <- err
	}()
	for c.Stats().Misses == misses {
		time.Sleep(time.Millisecond) // until the waiter has joined
	}
	cancelLeader()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("the leader got %v, want context.Canceled", err)
	}
	if err := <-waiter; err != nil {
		t.Errorf("a waiter failed because the leader gave up: %v", err)
	}
}

func TestRevokeThroughTheCacheIsImmediate(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, rec.Hash)
	ctx := context.Background()
	if _, err := c.Revoke(ctx, owner, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetByHash(ctx, rec.Hash)
	if err != nil || !got.Revoked() {
		t.Errorf("the lookup right after Revoke = revoked %v, %v; want the revoked record", got.Revoked(), err)
	}
}

// TestChangesThroughTheCacheAreImmediate: every change made through the
// cache is seen by the very next lookup, with no wait for the feed.
func TestChangesThroughTheCacheAreImmediate(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour)) // the feed would take an hour
	waitFresh(t, s, c, addKey(t, s).Hash)
	ctx := context.Background()
	cached := func(rec apikey.Record) {
		t.Helper()
		if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
			t.Fatal(err)
		}
	}

	narrowed := addKey(t, s)
	cached(narrowed)
	if _, err := c.Update(ctx, owner, narrowed.ID, store.Update{Scopes: scope.NewSet(scope.SessionsRead)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetByHash(ctx, narrowed.Hash); got.Scopes.Has(scope.SessionsWrite) {
		t.Errorf("after Update, the cache serves the old scopes %v", got.Scopes)
	}

	expiring := addKey(t, s)
	cached(expiring)
	at := time.Now().Add(time.Minute)
	if _, err := c.Update(ctx, owner, expiring.ID, store.Update{ExpiresAt: at}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetByHash(ctx, expiring.Hash); got.ExpiresAt != store.Time(at) {
		t.Errorf("ExpiresAt after Update = %v, want %v", got.ExpiresAt, store.Time(at))
	}

	rotated := addKey(t, s)
	cached(rotated)
	next := addKey(t, memory.New()) // a record only: stored by Rotate
	next.Replaces = rotated.ID
	next.Scopes = rotated.Scopes
	if _, err := c.GetByHash(ctx, next.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err) // now cached as unknown
	}
	end := time.Now().Add(time.Hour)
	if _, _, err := c.Rotate(ctx, owner, rotated.ID, next, end); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetByHash(ctx, rotated.Hash); got.ReplacedBy != next.ID || got.ExpiresAt != store.Time(end) {
		t.Errorf("after Rotate, the old key is served as replaced by %s until %v", got.ReplacedBy, got.ExpiresAt)
	}
	if got, err := c.GetByHash(ctx, next.Hash); err != nil || got.ID != next.ID {
		t.Errorf("after Rotate, the replacement = %v, %v (its hash stayed cached as unknown)", got.ID, err)
	}

	var all []apikey.Record
	for range 3 {
		rec := addKey(t, s)
		cached(rec)
		all = append(all, rec)
	}
	if _, err := c.RevokeAll(ctx, owner, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, rec := range all {
		if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
			t.Errorf("after RevokeAll, key %s is served active", rec.ID)
		}
	}
}

// TestFailedChangeEmptiesTheCache: when a change fails, it may or may not
// have happened; the cache forgets everything rather than serve what may
// be stale.
func TestFailedChangeEmptiesTheCache(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	rec := addKey(t, s)
	waitFresh(t, s, c, rec.Hash)
	ctx := context.Background()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if c.Stats().Known == 0 {
		t.Fatal("nothing cached")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Update(cancelled, owner, rec.ID, store.Update{Name: "x"}); err == nil {
		t.Fatal("Update with a cancelled context succeeded")
	}
	if n := c.Stats().Known; n != 0 {
		t.Errorf("%d records still cached after a change of unknown outcome", n)
	}
	// A refusal by the contract changed nothing, and forgets nothing.
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctx, owner, rec.ID, store.Update{Scopes: scope.NewSet(scope.CustomersWrite)}); !errors.Is(err, store.ErrWidening) {
		t.Fatalf("widening Update = %v", err)
	}
	if n := c.Stats().Known; n == 0 {
		t.Error("a refused change emptied the cache")
	}
}

// TestRevokeDuringALookup: a lookup that read the key before a revocation
// and returns after it must not put the stale record in the cache, and a
// lookup begun after the revocation must not join it.
func TestRevokeDuringALookup(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, addKey(t, s).Hash)
	ctx := context.Background()

	read, release := s.holdNext()
	staleDone := make(chan apikey.Record)
	go func() {
		got, _ := c.GetByHash(ctx, rec.Hash)
		staleDone <- got
	}()
	<-read // the lookup has read the active record and is held
	if _, err := c.Revoke(ctx, owner, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetByHash(ctx, rec.Hash) // must not wait on the held lookup
	if err != nil || !got.Revoked() {
		t.Fatalf("a lookup after Revoke = revoked %v, %v", got.Revoked(), err)
	}
	release()
	if stale := <-staleDone; stale.Revoked() {
		t.Log("the held lookup read after the revocation") // allowed, not expected
	}
	for range 3 {
		if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
			t.Fatal("the stale record of the held lookup was cached")
		}
	}
}

// TestChangesThroughAnotherInstance: two caches over one store, as two app
// instances over one database. A revocation through B is seen by A within
// the bound, without a store query per request.
func TestChangesThroughAnotherInstance(t *testing.T) {
	s := newSpy()
	const bound = 100 * time.Millisecond
	a := newCache(t, s, cache.WithBound(bound))
	b := newCache(t, s, cache.WithBound(bound))
	rec := addKey(t, s)
	waitFresh(t, s, a, rec.Hash)
	ctx := context.Background()

	before := s.lookups.Load()
	for range 100 {
		if _, err := a.GetByHash(ctx, rec.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.lookups.Load() - before; n != 0 {
		t.Fatalf("A made %d store queries for 100 requests before the revocation", n)
	}
	if _, err := b.Revoke(ctx, owner, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// The bound is a guarantee: from revocation + bound on, A never
	// answers with the active record.
	time.Sleep(time.Until(revoked.Add(bound)))
	got, err := a.GetByHash(ctx, rec.Hash)
	if err != nil || !got.Revoked() {
		t.Errorf("one bound after a revocation through B, A answers revoked=%v, %v", got.Revoked(), err)
	}
}

// TestFeedOutageFailsClosedAndHeals: while the feed cannot be read, cached
// records stop being served within the bound (lookups go to the store);
// when it can again, the cache serves again.
func TestFeedOutageFailsClosedAndHeals(t *testing.T) {
	s := newSpy()
	const bound = 60 * time.Millisecond
	var logs lockedBuffer
	c, err := cache.New(s, cache.WithBound(bound), cache.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := addKey(t, s)
	waitFresh(t, s, c, rec.Hash)
	ctx := context.Background()

	s.set(func(s *spy) { s.feedErr = errors.New("connection refused") })
	failedAt := time.Now()
	time.Sleep(time.Until(failedAt.Add(bound)))
	before := s.lookups.Load()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if s.lookups.Load() == before {
		t.Fatal("a cached record was served one bound after the feed stopped answering")
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the failed poll was not logged: %q", logs.String())
	}

	// A revocation made while the feed was down is caught up on.
	if _, err := s.Revoke(ctx, owner, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.set(func(s *spy) { s.feedErr = nil })
	waitFresh(t, s, c, rec.Hash)
	if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
		t.Error("after healing, the cache serves a key revoked during the outage")
	}
}

func TestStoreFailureIsNotCached(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	rec := addKey(t, s)
	waitFresh(t, s, c, apikey.Hash{2})
	down := errors.New("connection reset by peer")
	s.set(func(s *spy) { s.lookupFn = func() error { return down } })
	if _, err := c.GetByHash(context.Background(), rec.Hash); !errors.Is(err, down) {
		t.Fatalf("GetByHash with the store down = %v, want its error", err)
	}
	s.set(func(s *spy) { s.lookupFn = nil })
	if got, err := c.GetByHash(context.Background(), rec.Hash); err != nil || got.ID != rec.ID {
		t.Errorf("after the store came back: %v, %v (a failure was cached)", got.ID, err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger's goroutine and a test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// noFeed hides the memory store's change feed.
type noFeed struct{ store.Store }

func TestStoreWithoutFeedKeepsRecordsOneBound(t *testing.T) {
	s := newSpy()
	const bound = 30 * time.Millisecond
	c := newCache(t, noFeed{s}, cache.WithBound(bound))
	rec := addKey(t, s)
	ctx := context.Background()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, owner, rec.ID, time.Now()); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	revoked := time.Now()
	time.Sleep(time.Until(revoked.Add(bound)))
	if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
		t.Error("without a change feed, a record outlived the bound")
	}
}

func TestCreateForgetsUnknownHash(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	sec, _ := apikey.Generate(apikey.Live)
	waitFresh(t, s, c, sec.Hash())
	ctx := context.Background()
	if _, err := c.GetByHash(ctx, sec.Hash()); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	rec := apikey.Record{
		ID: uuid.New(), Owner: owner, Name: "late", Prefix: sec.DisplayPrefix(), Mode: apikey.Live,
		Scopes: scope.NewSet(scope.LinksRead), Hash: sec.Hash(), CreatedAt: time.Now(),
	}
	if _, err := c.Create(ctx, rec, store.Idempotency{}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetByHash(ctx, sec.Hash()); err != nil || got.ID != rec.ID {
		t.Errorf("after Create, GetByHash = %v, %v", got.ID, err)
	}
}

func TestOptions(t *testing.T) {
	for name, opt := range map[string]cache.Option{
		"tiny bound":        cache.WithBound(time.Millisecond),
		"zero max age":      cache.WithMaxAge(0),
		"too few entries":   cache.WithMaxEntries(1),
		"too few unknown":   cache.WithMaxUnknown(1),
		"nil logger":        cache.WithLogger(nil),
		"a nil store below": nil,
	} {
		var err error
		if opt == nil {
			_, err = cache.New(nil)
		} else {
			_, err = cache.New(memory.New(), opt)
		}
		if err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestLifecycleOverCache: the whole lifecycle works over the cache, and
// revocation through it is 401-immediate.
func TestLifecycleOverCache(t *testing.T) {
	s := newSpy()
	c := newCache(t, s)
	keys, err := keyward.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner(owner)
	sec, rec, err := acct.Create(ctx, keyward.CreateParams{Name: "x", Mode: apikey.Live, Scopes: []scope.Scope{scope.LinksRead}})
	if err != nil {
		t.Fatal(err)
	}
	waitFresh(t, s, c, rec.Hash)
	for range 10 {
		if _, err := keys.Verify(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := acct.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, sec.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify right after Revoke = %v, want ErrRevoked", err)
	}
}
