package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
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
	feedHang bool         // if set, polls wait until their context ends
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
	err, hang := s.feedErr, s.feedHang
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, "", ctx.Err()
	}
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
// release is called (once or more: defer it, so that a failing test
// releases the lookup); read is closed once it has read.
func (s *spy) holdNext() (read <-chan struct{}, release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	s.set(func(s *spy) { s.hold, s.held = hold, held })
	return held, sync.OnceFunc(func() { close(hold) })
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

// waitLimit bounds every wait of these tests: long enough for a loaded
// machine, short enough that a regression fails instead of hanging.
const waitLimit = 30 * time.Second

// waitFor waits until cond holds, polling it; the test fails if it does
// not within waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFresh waits until the cache has polled its feed once, so that it
// serves cached records. Only tests with a long bound rely on it staying
// fresh: a short bound lapses whenever the poll is late.
func waitFresh(t *testing.T, c *cache.Store) {
	t.Helper()
	waitFor(t, "the first poll of the change feed", func() bool { return c.Stats().Polls >= 1 })
}

// waitPollsAfter waits until two polls that began after the call have
// completed: the first to complete may have begun before the call, the
// second began after the first completed. Both succeeded.
func waitPollsAfter(t *testing.T, c *cache.Store) {
	t.Helper()
	p := c.Stats().Polls
	waitFor(t, "two polls of the change feed", func() bool { return c.Stats().Polls >= p+2 })
}

// timeout returns a context that ends after waitLimit, for a call that a
// regression could make wait forever.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
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
	c := newCache(t, s, cache.WithBound(time.Hour)) // fresh from the first poll on
	rec := addKey(t, s)
	waitFresh(t, c)
	if _, err := c.GetByHash(context.Background(), rec.Hash); err != nil {
		t.Fatal(err)
	}
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
	const max = 64 * 32 // 32 per shard: 100 keys never fill a group of 8
	c := newCache(t, s, cache.WithMaxUnknown(max))
	waitFresh(t, c) // its first poll invalidates: no fill may be lost to it
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
	// A flood of distinct keys never grows the set past its bound, and
	// fills it.
	for range 20 * max {
		sec, _ := apikey.Generate(apikey.Test)
		_, _ = c.GetByHash(ctx, sec.Hash())
	}
	if st := c.Stats(); st.Unknown > max || st.Unknown < max*9/10 {
		t.Errorf("after a flood, %d unknown hashes cached, want at most %d (and the set in use)", st.Unknown, max)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.GetByHash(ctx, bogus[0]) }); n != 0 {
		t.Errorf("an unknown hit allocates %v times", n)
	}
}

// TestUnknownKeysWhileTheFeedIsLate: whether the feed fails or hangs, and
// long after known records have stopped being served, a replayed flood of
// bogus keys reaches the store once per key, never again.
func TestUnknownKeysWhileTheFeedIsLate(t *testing.T) {
	for name, late := range map[string]func(*spy){
		"failing": func(s *spy) { s.feedErr = errors.New("connection refused") },
		"hanging": func(s *spy) { s.feedHang = true },
	} {
		t.Run(name, func(t *testing.T) {
			s := newSpy()
			c := newCache(t, s, cache.WithBound(20*time.Millisecond))
			rec := addKey(t, s)
			waitFresh(t, c)
			ctx := context.Background()
			s.set(late)
			// Wait for the event: known records no longer served.
			waitFor(t, "the cache to stop serving its records", func() bool {
				before := s.lookups.Load()
				_, _ = c.GetByHash(ctx, rec.Hash)
				_, _ = c.GetByHash(ctx, rec.Hash)
				return s.lookups.Load()-before == 2
			})

			bogus := make([]apikey.Hash, 500)
			for i := range bogus {
				sec, _ := apikey.Generate(apikey.Live)
				bogus[i] = sec.Hash()
			}
			flood := func() {
				t.Helper()
				for _, h := range bogus {
					if _, err := c.GetByHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("a bogus key: %v, want ErrNotFound", err)
					}
				}
			}
			before := s.lookups.Load()
			flood()
			if n := s.lookups.Load() - before; n != int64(len(bogus)) {
				t.Errorf("the first pass of %d bogus keys made %d lookups", len(bogus), n)
			}
			before = s.lookups.Load()
			for range 5 {
				flood()
			}
			if n := s.lookups.Load() - before; n != 0 {
				t.Errorf("replaying the flood 5 times with the feed %s made %d lookups, want 0", name, n)
			}
			// And known records are still not served from memory.
			if _, err := c.GetByHashLocal(rec.Hash); err != store.ErrWouldBlock {
				t.Errorf("GetByHashLocal of a known key with the feed %s = %v, want ErrWouldBlock", name, err)
			}
		})
	}
}

// TestGetByHashLocal: GetByHashLocal answers exactly when GetByHash would
// answer from memory, with the same answer, without allocating; otherwise
// it returns ErrWouldBlock, and GetByHash then goes to the store.
func TestGetByHashLocal(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	waitFresh(t, c)
	ctx := context.Background()

	// same checks one hash of c over s: if GetByHashLocal answers,
	// GetByHash answers the same without the store; if not, GetByHash asks
	// the store. It returns what GetByHashLocal returned.
	same := func(t *testing.T, s *spy, c *cache.Store, h apikey.Hash) (apikey.Record, error) {
		t.Helper()
		ref, err := c.GetByHashLocal(h)
		var rec apikey.Record
		if ref != nil {
			rec = *ref
		}
		before := s.lookups.Load()
		got, gotErr := c.GetByHash(ctx, h)
		n := s.lookups.Load() - before
		if err == store.ErrWouldBlock {
			if n == 0 {
				t.Errorf("GetByHashLocal = ErrWouldBlock, but GetByHash answered from memory (%v, %v)", got.ID, gotErr)
			}
			if ref != nil {
				t.Errorf("GetByHashLocal = ErrWouldBlock came with a record")
			}
			return rec, err
		}
		if n != 0 {
			t.Errorf("GetByHashLocal answered (%v, %v), but GetByHash asked the store", rec.ID, err)
		}
		if gotErr != err || !reflect.DeepEqual(got, rec) {
			t.Errorf("GetByHashLocal = %v, %v; GetByHash = %v, %v", rec.ID, err, got.ID, gotErr)
		}
		return rec, err
	}
	want := func(t *testing.T, what string, got, want error) {
		t.Helper()
		if got != want {
			t.Errorf("%s: GetByHashLocal = %v, want %v", what, got, want)
		}
	}

	rec := addKey(t, s)
	_, err := same(t, s, c, rec.Hash)
	want(t, "a key not yet looked up", err, store.ErrWouldBlock)
	got, err := same(t, s, c, rec.Hash)
	want(t, "a cached key", err, nil)
	if got.ID != rec.ID {
		t.Errorf("GetByHashLocal of a cached key = %v, want %v", got.ID, rec.ID)
	}

	sec, _ := apikey.Generate(apikey.Live)
	bogus := sec.Hash()
	_, err = same(t, s, c, bogus)
	want(t, "a hash never looked up", err, store.ErrWouldBlock)
	_, err = same(t, s, c, bogus)
	want(t, "a hash cached as unknown", err, store.ErrNotFound)

	if n := testing.AllocsPerRun(100, func() { _, _ = c.GetByHashLocal(rec.Hash) }); n != 0 {
		t.Errorf("GetByHashLocal of a cached key allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.GetByHashLocal(bogus) }); n != 0 {
		t.Errorf("GetByHashLocal of an unknown hash allocates %v times", n)
	}

	if _, err := c.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err = same(t, s, c, rec.Hash)
	want(t, "a key just revoked", err, store.ErrWouldBlock)
	if got, err := same(t, s, c, rec.Hash); err != nil || !got.Revoked() {
		t.Errorf("GetByHashLocal of the revoked key, cached again = revoked %v, %v", got.Revoked(), err)
	}

	created := apikey.Record{
		ID: uuid.New(), Owner: owner, Name: "late", Prefix: sec.DisplayPrefix(), Mode: apikey.Live,
		Scopes: scope.NewSet(scope.LinksRead), Hash: bogus, CreatedAt: time.Now(),
	}
	if _, err := c.Create(ctx, created, store.Idempotency{}); err != nil {
		t.Fatal(err)
	}
	_, err = same(t, s, c, bogus)
	want(t, "a hash cached as unknown, then created", err, store.ErrWouldBlock)

	t.Run("expired entries", func(t *testing.T) {
		c := newCache(t, s, cache.WithBound(time.Hour), cache.WithMaxAge(time.Nanosecond))
		waitFresh(t, c)
		rec := addKey(t, s)
		for range 3 {
			_, err := same(t, s, c, rec.Hash)
			want(t, "a record past its max age", err, store.ErrWouldBlock)
		}
	})
	t.Run("stale", func(t *testing.T) {
		s := newSpy()
		c := newCache(t, s, cache.WithBound(20*time.Millisecond))
		rec := addKey(t, s)
		waitFresh(t, c)
		sec, _ := apikey.Generate(apikey.Live)
		if _, err := c.GetByHash(ctx, sec.Hash()); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		s.set(func(s *spy) { s.feedErr = errors.New("connection refused") })
		waitFor(t, "the cache to stop serving its records", func() bool {
			_, _ = c.GetByHash(ctx, rec.Hash)
			_, err := c.GetByHashLocal(rec.Hash)
			return err == store.ErrWouldBlock
		})
		_, err := same(t, s, c, rec.Hash)
		want(t, "a record after the feed failed for a bound", err, store.ErrWouldBlock)
		_, err = same(t, s, c, sec.Hash())
		want(t, "an unknown hash after the feed failed for a bound", err, store.ErrNotFound)
	})
	t.Run("closed", func(t *testing.T) {
		c := newCache(t, s, cache.WithBound(time.Hour))
		waitFresh(t, c)
		rec := addKey(t, s)
		sec, _ := apikey.Generate(apikey.Live)
		_, _ = c.GetByHash(ctx, rec.Hash)
		_, _ = c.GetByHash(ctx, sec.Hash())
		c.Close()
		_, err := same(t, s, c, rec.Hash)
		want(t, "a cached key after Close", err, store.ErrWouldBlock)
		_, err = same(t, s, c, sec.Hash())
		want(t, "an unknown hash after Close", err, store.ErrWouldBlock)
	})
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
	c := newCache(t, s, cache.WithBound(time.Hour)) // no poll may invalidate meanwhile
	rec := addKey(t, s)
	waitFresh(t, c)
	before := s.lookups.Load()
	ctx := timeout(t) // a regression fails the waiters instead of hanging
	read, release := s.holdNext()
	defer release()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Go(func() {
		got, err := c.GetByHash(ctx, rec.Hash)
		if err == nil && got.ID != rec.ID {
			err = errors.New("wrong record")
		}
		errs <- err
	})
	<-read // the first miss is querying; the others join it
	for range n - 1 {
		wg.Go(func() {
			got, err := c.GetByHash(ctx, rec.Hash)
			if err == nil && got.ID != rec.ID {
				err = errors.New("wrong record")
			}
			errs <- err
		})
	}
	waitFor(t, "every request to miss", func() bool { return c.Stats().Misses >= n })
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

// TestWaiterGivesUpAlone: a request waiting on another's query gives up
// when its context ends; the query and its leader go on.
func TestWaiterGivesUpAlone(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	rec := addKey(t, s)
	waitFresh(t, c)
	read, release := s.holdNext()
	defer release()
	done := make(chan error)
	go func() {
		_, err := c.GetByHash(context.Background(), rec.Hash)
		done <- err
	}()
	<-read
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error)
	misses := c.Stats().Misses
	go func() {
		_, err := c.GetByHash(ctx, rec.Hash)
		waiter <- err
	}()
	waitFor(t, "the waiter to miss", func() bool { return c.Stats().Misses > misses })
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled waiter got %v, want context.Canceled", err)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("the first client failed because another gave up: %v", err)
	}
	if got, err := c.GetByHash(timeout(t), rec.Hash); err != nil || got.ID != rec.ID {
		t.Errorf("a lookup after the shared one: %v, %v", got.ID, err)
	}
}

// TestLeaderGivesUpAlone: the request leading a shared query gives up;
// the requests waiting on it look the key up again with their own
// contexts and succeed.
func TestLeaderGivesUpAlone(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	rec := addKey(t, s)
	waitFresh(t, c)
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
		got, err := c.GetByHash(timeout(t), rec.Hash)
		if err == nil && got.ID != rec.ID {
			err = errors.New("wrong record")
		}
		waiter <- err
	}()
	waitFor(t, "the waiter to join", func() bool { return c.Stats().Misses > misses })
	cancelLeader()
	if err := <-leader; !errors.Is(err, context.Canceled) {
		t.Errorf("the leader got %v, want context.Canceled", err)
	}
	if err := <-waiter; err != nil {
		t.Errorf("a waiter failed because the leader gave up: %v", err)
	}
}

// TestSharedQueriesUnderChurn: many requests over a few keys, with slow
// queries and requests giving up, each get the answer for their own key.
// Finished queries are reused; under -race this also checks that one is
// never reused while a waiter still reads it.
func TestSharedQueriesUnderChurn(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	waitFresh(t, c)
	var recs []apikey.Record
	for range 4 {
		recs = append(recs, addKey(t, s))
	}
	var bogus []apikey.Hash
	for range 4 {
		sec, _ := apikey.Generate(apikey.Live)
		bogus = append(bogus, sec.Hash())
	}
	s.set(func(s *spy) {
		s.lookupFn = func() error { time.Sleep(50 * time.Microsecond); return nil }
	})
	base := timeout(t) // a lost wake-up fails instead of hanging
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				ctx, cancel := context.WithCancel(base)
				if (g+i)%5 == 0 {
					cancel() // some give up at once; others later, while waiting
				} else if (g+i)%7 == 0 {
					go cancel()
				}
				rec := recs[(g+i)%len(recs)]
				got, err := c.GetByHash(ctx, rec.Hash)
				switch {
				case errors.Is(err, context.Canceled):
				case err != nil:
					report(err)
				case got.ID != rec.ID:
					report(fmt.Errorf("the lookup of key %s returned key %s", rec.ID, got.ID))
				}
				h := bogus[(g+i)%len(bogus)]
				if _, err := c.GetByHash(ctx, h); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, context.Canceled) {
					report(err)
				}
				cancel()
				if i%50 == 0 { // a change of unknown outcome: the cache forgets its records
					gone, cancel := context.WithCancel(context.Background())
					cancel()
					_, _ = c.Update(gone, owner, recs[0].ID, store.Update{Name: "x"})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRevokeThroughTheCacheIsImmediate(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	rec := addKey(t, s)
	waitFresh(t, c)
	ctx := context.Background()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
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
	waitFresh(t, c)
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
	if _, err := c.RevokeAll(ctx, owner, store.Revocation{At: time.Now()}); err != nil {
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
	waitFresh(t, c)
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
	c := newCache(t, s, cache.WithBound(time.Hour)) // fresh: a stale fill would be served
	rec := addKey(t, s)
	waitFresh(t, c)
	ctx := context.Background()

	read, release := s.holdNext()
	defer release()
	staleDone := make(chan apikey.Record)
	go func() {
		got, _ := c.GetByHash(ctx, rec.Hash)
		staleDone <- got
	}()
	<-read // the lookup has read the active record and is held
	if _, err := c.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetByHash(timeout(t), rec.Hash) // must not wait on the held lookup
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
// instances over one database. A revocation through B is seen by A once A
// has polled the feed, without a store query per request before that.
func TestChangesThroughAnotherInstance(t *testing.T) {
	s := newSpy()
	const bound = 100 * time.Millisecond
	a := newCache(t, s, cache.WithBound(bound))
	b := newCache(t, s, cache.WithBound(bound))
	rec := addKey(t, s)
	waitFresh(t, a)
	ctx := context.Background()

	// A serves the key from memory: 100 requests in a row without a
	// query. The bound is short, so a late poll may interrupt a run; wait
	// for a clean one.
	waitFor(t, "A to serve 100 requests from its cache", func() bool {
		before := s.lookups.Load()
		for range 100 {
			if _, err := a.GetByHash(ctx, rec.Hash); err != nil {
				t.Fatal(err)
			}
		}
		return s.lookups.Load() == before
	})
	if _, err := b.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// Two polls of A that began after the revocation have read it.
	waitPollsAfter(t, a)
	got, err := a.GetByHash(ctx, rec.Hash)
	if err != nil || !got.Revoked() {
		t.Errorf("after polling the feed, A answers revoked=%v, %v", got.Revoked(), err)
	}
}

// TestFeedOutageFailsClosedAndHeals: while the feed cannot be read, cached
// records stop being served within the bound (lookups go to the store);
// when it can again, the cache serves again.
func TestFeedOutageFailsClosedAndHeals(t *testing.T) {
	s := newSpy()
	const bound = 60 * time.Millisecond
	var logs syncbuf.Buffer
	c, err := cache.New(s, cache.WithBound(bound), cache.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := addKey(t, s)
	waitFresh(t, c)
	ctx := context.Background()

	s.set(func(s *spy) { s.feedErr = errors.New("connection refused") })
	failedAt := time.Now()
	// A deadline, not a guess at when something happens: every poll that
	// succeeds from now on began before failedAt, so from failedAt + bound
	// on the cache must not serve its records, however late this wakes.
	time.Sleep(time.Until(failedAt.Add(bound)))
	before := s.lookups.Load()
	if _, err := c.GetByHash(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if s.lookups.Load() == before {
		t.Fatal("a cached record was served one bound after the feed stopped answering")
	}
	waitFor(t, "the failed poll to be logged", func() bool { return strings.Contains(logs.String(), "connection refused") })

	// A revocation made while the feed was down is caught up on.
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.set(func(s *spy) { s.feedErr = nil })
	waitPollsAfter(t, c)
	if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
		t.Error("after healing, the cache serves a key revoked during the outage")
	}
}

func TestStoreFailureIsNotCached(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	rec := addKey(t, s)
	waitFresh(t, c)
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
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Now()}); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	revoked := time.Now()
	// A deadline, not a guess at when something happens: the record was
	// cached before revoked, so from revoked + bound on it must not be
	// served, however late this wakes. There is no feed to wait on.
	time.Sleep(time.Until(revoked.Add(bound)))
	if got, _ := c.GetByHash(ctx, rec.Hash); !got.Revoked() {
		t.Error("without a change feed, a record outlived the bound")
	}
}

func TestCreateForgetsUnknownHash(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	sec, _ := apikey.Generate(apikey.Live)
	waitFresh(t, c)
	ctx := context.Background()
	for range 2 {
		if _, err := c.GetByHash(ctx, sec.Hash()); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.UnknownHits != 1 || st.Unknown != 1 {
		t.Fatalf("the hash was not cached as unknown: %+v", st)
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
	if n := c.Stats().Unknown; n != 0 {
		t.Errorf("after Create, %d unknown hashes cached, want 0", n)
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

// TestMaxUnknownIsABound: the set holds at most WithMaxUnknown hashes,
// whatever n, including sizes that do not fill whole groups.
func TestMaxUnknownIsABound(t *testing.T) {
	for _, max := range []int{64, 64 * 3, 1000, 64 * 8, 5000} {
		c := newCache(t, noFeed{memory.New()}, cache.WithMaxUnknown(max))
		for range 10 * max {
			sec, _ := apikey.Generate(apikey.Test)
			_, _ = c.GetByHash(context.Background(), sec.Hash())
		}
		if n := c.Stats().Unknown; n > max || n < max*8/10 {
			t.Errorf("WithMaxUnknown(%d): %d hashes held after a flood", max, n)
		}
	}
}

// TestLifecycleOverCache: the whole lifecycle works over the cache, and
// revocation through it is 401-immediate.
func TestLifecycleOverCache(t *testing.T) {
	s := newSpy()
	c := newCache(t, s, cache.WithBound(time.Hour))
	keys, err := keyward.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner(owner)
	sec, _, err := acct.Create(ctx, keyward.CreateParams{Name: "x", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	waitFresh(t, c)
	before := s.lookups.Load()
	for range 10 {
		if _, err := keys.Verify(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.lookups.Load() - before; n != 1 {
		t.Errorf("10 verifications made %d store lookups, want 1", n)
	}
	bogus, _ := apikey.Generate(apikey.Live)
	for range 10 {
		if _, err := keys.Verify(ctx, bogus.Reveal()); !errors.Is(err, keyward.ErrUnknownKey) {
			t.Fatalf("Verify of a bogus key = %v, want ErrUnknownKey", err)
		}
	}
	if n := s.lookups.Load() - before; n != 2 {
		t.Errorf("10 verifications of a bogus key made %d store lookups, want 1", n-1)
	}
	rec, err := keys.Verify(ctx, sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, sec.Reveal()); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify right after Revoke = %v, want ErrRevoked", err)
	}
}
