// Package cache puts a verification cache in front of any [store.Store].
//
// Without a cache, every request costs one store lookup: a round trip to
// PostgreSQL, hundreds of times the cost of an in-memory verification (see
// BENCHMARKS.md). With it, a key seen recently is verified from memory, at
// close to the cost of the memory store, without allocating:
//
//	pg := postgres.New(db)
//	cached, err := cache.New(pg)
//	if err != nil { ... }
//	defer cached.Close()
//	keys, err := keyward.New(cached)
//
// Only [store.Store.GetByHash], the verification lookup, is cached. Every
// other method goes to the wrapped store, and each that changes a key
// removes it from the cache before returning.
//
// # What is cached
//
// Known keys: a bounded number of records (see [WithMaxEntries]), evicted at
// random when full, and refreshed from the store after [WithMaxAge].
//
// Unknown keys: a bounded set of hashes that no key had when they were
// looked up ([WithMaxUnknown]), so that a client replaying bogus keys does
// not reach the store again. A hash needs no expiry there: keys carry 190
// random bits, so no key created later has the hash of one presented
// before, unless it was guessed. A flood of never-repeating random keys
// still costs one indexed lookup each (the negative set only stops
// repeats); limit that upstream, per client, like any other flood.
//
// Concurrent misses for one key share one store query.
//
// # Revocation stays immediate
//
// A change made through this Store (a revocation, a revocation of all an
// owner's keys, an update of a key's scopes, name, metadata or expiry, a
// rotation) removes the keys it changed from the cache before the call
// returns: the very next verification goes to the store and sees it.
//
// Changes made through other processes sharing the database are learnt by
// polling the wrapped store's [store.ChangeFeed] every half [WithBound]
// (default bound one second, so one small indexed query every 500 ms per
// process, whatever the traffic). Polling was chosen over LISTEN/NOTIFY: it
// needs nothing from the store but one query, so it works for any store that
// implements the feed and through connection poolers that break LISTEN, it
// cannot lose a notification while a connection is down (the next poll
// reads from where the last one stopped), and its cost does not depend on
// the request rate.
//
// The bound is enforced, not hoped for: cached records are served only
// while the last successful poll began less than one bound ago. If the
// database cannot be reached, polls fail, the cache stops answering within
// one bound, and lookups go to the store, which fails: requests get 503,
// never a key revoked elsewhere. When the database comes back, the next
// poll catches up from its last position and the cache heals by itself.
//
// Feeds may report a change more than once: the PostgreSQL store reports
// every change of the last minute at each poll, so that a transaction
// committing late is not missed. A key changed in the last minute is
// therefore read from the store again after each poll, about twice a
// second per instance: a cost that ends a minute after the change.
//
// A wrapped store that does not implement [store.ChangeFeed] cannot report
// changes: records are then kept for at most one bound.
//
// Expiry needs nothing from the cache: the lifecycle checks a record's
// ExpiresAt against its clock on every verification, cached or not.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/store"
)

// Defaults.
const (
	DefaultBound      = time.Second
	DefaultMaxAge     = 5 * time.Minute
	DefaultMaxEntries = 100_000
	DefaultMaxUnknown = 100_000
)

const shards = 64 // a power of two

// Store is a [store.Store] that caches verification lookups. Create it with
// [New] and stop it with [Store.Close].
type Store struct {
	next   store.Store
	feed   store.ChangeFeed // nil if next does not implement it
	bound  time.Duration
	maxAge time.Duration
	logger *slog.Logger

	shards     [shards]shard
	perShard   int // positive entries per shard
	perShardNo int // negative entries per shard

	// freshUntil is the time (see clock.Mono) until which cached records
	// may be served: one bound after the start of the last successful poll.
	freshUntil atomic.Int64

	misses, unknownHits, lookups atomic.Int64

	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

type shard struct {
	mu      sync.RWMutex
	known   map[apikey.Hash]*entry
	unknown map[apikey.Hash]struct{}
	flights map[apikey.Hash]*flight
	// epoch counts invalidations: a lookup that began before one must not
	// fill the cache with what it read.
	epoch uint64
	// hits is kept per shard, on the cache line the lock already touches,
	// so that counting costs no extra contention.
	hits atomic.Int64
}

type entry struct {
	rec     apikey.Record
	expires int64 // the time (see clock.Mono) after which the entry is refreshed
}

// A flight is one store lookup that concurrent misses for a hash share.
type flight struct {
	done  chan struct{}
	epoch uint64
	rec   apikey.Record
	err   error
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.ChangeFeed = (*Store)(nil)
)

// An Option configures [New].
type Option func(*Store) error

// WithBound sets the longest time a change made through another process
// (a revocation, an expiry) can go unseen by this cache. The default is
// [DefaultBound], one second; the change feed is polled twice per bound.
func WithBound(d time.Duration) Option {
	return func(s *Store) error {
		if d < 10*time.Millisecond {
			return errors.New("cache: the bound must be at least 10ms")
		}
		s.bound = d
		return nil
	}
}

// WithMaxAge sets how long a cached record is served before it is read
// again from the store, as a safety net behind the change feed. The default
// is [DefaultMaxAge].
func WithMaxAge(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return errors.New("cache: the max age must be positive")
		}
		s.maxAge = d
		return nil
	}
}

// WithMaxEntries bounds the number of cached records. The default is
// [DefaultMaxEntries]; a record takes about 400 bytes.
func WithMaxEntries(n int) Option {
	return func(s *Store) error {
		if n < shards {
			return errors.New("cache: at least 64 entries")
		}
		s.perShard = n / shards
		return nil
	}
}

// WithMaxUnknown bounds the number of cached unknown hashes. The default
// is [DefaultMaxUnknown]; a hash takes about 50 bytes.
func WithMaxUnknown(n int) Option {
	return func(s *Store) error {
		if n < shards {
			return errors.New("cache: at least 64 unknown hashes")
		}
		s.perShardNo = n / shards
		return nil
	}
}

// WithLogger sets where failed polls of the change feed are reported. The
// default is [slog.Default].
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) error {
		if l == nil {
			return errors.New("cache: WithLogger needs a logger")
		}
		s.logger = l
		return nil
	}
}

// New returns a cache in front of next and, if next implements
// [store.ChangeFeed], starts polling it. Call [Store.Close] to stop.
func New(next store.Store, opts ...Option) (*Store, error) {
	if next == nil {
		return nil, errors.New("cache: New needs a store")
	}
	s := &Store{
		next:       next,
		bound:      DefaultBound,
		maxAge:     DefaultMaxAge,
		logger:     slog.Default(),
		perShard:   DefaultMaxEntries / shards,
		perShardNo: DefaultMaxUnknown / shards,
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	for i := range s.shards {
		s.shards[i].known = make(map[apikey.Hash]*entry)
		s.shards[i].unknown = make(map[apikey.Hash]struct{})
		s.shards[i].flights = make(map[apikey.Hash]*flight)
	}
	feed, ok := next.(store.ChangeFeed)
	if !ok {
		// Nothing reports changes: records live at most one bound.
		s.maxAge = min(s.maxAge, s.bound)
		s.freshUntil.Store(1<<63 - 1)
		close(s.stopped)
		return s, nil
	}
	s.feed = feed
	go s.poll()
	return s, nil
}

// Close stops polling the change feed. It does not close the wrapped store.
// After Close, lookups go to the wrapped store.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.stopped
		s.freshUntil.Store(0)
	})
	return nil
}

// Stats counts verification lookups since New, and the cache's size.
type Stats struct {
	Hits        int64 // answered from a cached record
	UnknownHits int64 // answered from the set of unknown hashes
	Misses      int64 // not answered from the cache
	Lookups     int64 // store queries made for misses (shared by concurrent misses)
	Known       int   // records cached now
	Unknown     int   // unknown hashes cached now
}

// Stats returns the lookup counters.
func (s *Store) Stats() Stats {
	st := Stats{
		UnknownHits: s.unknownHits.Load(),
		Misses:      s.misses.Load(),
		Lookups:     s.lookups.Load(),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		st.Hits += sh.hits.Load()
		sh.mu.RLock()
		st.Known += len(sh.known)
		st.Unknown += len(sh.unknown)
		sh.mu.RUnlock()
	}
	return st
}

func (s *Store) shard(h apikey.Hash) *shard { return &s.shards[h[1]&(shards-1)] }

// GetByHash answers from the cache when it can, and otherwise from the
// wrapped store, sharing one query among concurrent misses for a hash. A
// hit does not allocate. See [store.Store.GetByHash].
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	sh := s.shard(h)
	now := clock.Mono()
	fresh := now < s.freshUntil.Load()

	sh.mu.RLock()
	if fresh {
		if e := sh.known[h]; e != nil && now < e.expires {
			rec := e.rec
			sh.mu.RUnlock()
			sh.hits.Add(1)
			return rec, nil
		}
		if _, ok := sh.unknown[h]; ok {
			sh.mu.RUnlock()
			s.unknownHits.Add(1)
			return apikey.Record{}, store.ErrNotFound
		}
	}
	sh.mu.RUnlock()
	s.misses.Add(1)
	return s.lookup(ctx, sh, h)
}

// lookup queries the store for h, or joins a query already under way that
// began after the last invalidation of h's shard.
//
// The first request to miss leads: it runs the query itself, with its own
// context, so a miss costs no goroutine and no hand-off. Requests that join
// wait for it, or for their own context to end. If the leader's context
// ends first, its query fails with a context error that is not theirs:
// they then look the key up again, with their own.
func (s *Store) lookup(ctx context.Context, sh *shard, h apikey.Hash) (apikey.Record, error) {
	for {
		sh.mu.Lock()
		f := sh.flights[h]
		if f == nil || f.epoch != sh.epoch {
			f = &flight{done: make(chan struct{}), epoch: sh.epoch}
			sh.flights[h] = f
			sh.mu.Unlock()
			s.fly(ctx, sh, h, f)
			return f.rec, f.err
		}
		sh.mu.Unlock()
		select {
		case <-f.done:
			if ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue // the leader gave up, not us
			}
			return f.rec, f.err
		case <-ctx.Done():
			return apikey.Record{}, ctx.Err()
		}
	}
}

// fly runs the query of flight f, fills the cache with its answer and
// releases its waiters.
func (s *Store) fly(ctx context.Context, sh *shard, h apikey.Hash, f *flight) {
	s.lookups.Add(1)
	rec, err := s.next.GetByHash(ctx, h)

	// Fill and forget the flight before releasing its waiters: a lookup
	// that begins after they return must not join a finished query, which
	// would serve its answer without the freshness check.
	sh.mu.Lock()
	if sh.flights[h] == f {
		delete(sh.flights, h)
	}
	if f.epoch == sh.epoch { // else invalidated meanwhile: rec may be stale
		switch {
		case err == nil:
			if len(sh.known) >= s.perShard {
				evictOne(sh.known)
			}
			sh.known[h] = &entry{rec: rec, expires: clock.Mono() + int64(s.maxAge)}
		case errors.Is(err, store.ErrNotFound):
			if len(sh.unknown) >= s.perShardNo {
				evictOne(sh.unknown)
			}
			sh.unknown[h] = struct{}{}
		}
	}
	sh.mu.Unlock()
	f.rec, f.err = rec, err
	close(f.done)
}

// evictOne deletes an arbitrary entry: Go starts each map iteration at a
// random place, so this is random eviction, which needs no bookkeeping on
// the hit path.
func evictOne[V any](m map[apikey.Hash]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// invalidate removes h from the cache and makes lookups under way for it
// unable to fill the cache; later lookups start a new query.
func (s *Store) invalidate(h apikey.Hash) {
	sh := s.shard(h)
	sh.mu.Lock()
	sh.epoch++
	delete(sh.known, h)
	delete(sh.unknown, h)
	delete(sh.flights, h)
	sh.mu.Unlock()
}

// invalidateAll empties the cache of records, when it cannot tell which
// key changed.
func (s *Store) invalidateAll() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.epoch++
		clear(sh.known)
		clear(sh.flights)
		sh.mu.Unlock()
	}
}

// Create passes through, then forgets the key's hash if it was cached as
// unknown. See [store.Store.Create].
func (s *Store) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	got, err := s.next.Create(ctx, rec, idem)
	if err == nil {
		s.invalidate(rec.Hash)
	}
	return got, err
}

// Get passes through. See [store.Store.Get].
func (s *Store) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	return s.next.Get(ctx, owner, id)
}

// List passes through. See [store.Store.List].
func (s *Store) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	return s.next.List(ctx, owner, opts)
}

// RecordUses passes through. Cached records keep the last-used time they
// were read with; the lifecycle sets it on what Verify returns. See
// [store.Store.RecordUses].
func (s *Store) RecordUses(ctx context.Context, uses []store.Use) error {
	return s.next.RecordUses(ctx, uses)
}

// Update updates through the wrapped store and removes the key from the
// cache before returning, so the next verification sees the change. See
// [store.Store.Update].
func (s *Store) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	rec, err := s.next.Update(ctx, owner, id, u)
	s.afterChange(err, rec.Hash)
	return rec, err
}

// Rotate rotates through the wrapped store and removes both keys from the
// cache before returning (the replacement's hash may have been cached as
// unknown). See [store.Store.Rotate].
func (s *Store) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	old, created, err := s.next.Rotate(ctx, owner, id, next, overlapEnd)
	s.afterChange(err, old.Hash, next.Hash)
	return old, created, err
}

// Revoke revokes through the wrapped store and removes the key from the
// cache before returning, so the next verification sees the revocation.
// See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, owner string, id uuid.UUID, at time.Time) (apikey.Record, error) {
	rec, err := s.next.Revoke(ctx, owner, id, at)
	s.afterChange(err, rec.Hash)
	return rec, err
}

// RevokeAll revokes through the wrapped store and removes every revoked
// key from the cache before returning. See [store.Store.RevokeAll].
func (s *Store) RevokeAll(ctx context.Context, owner string, at time.Time) ([]apikey.Record, error) {
	recs, err := s.next.RevokeAll(ctx, owner, at)
	hashes := make([]apikey.Hash, len(recs))
	for i, rec := range recs {
		hashes[i] = rec.Hash
	}
	s.afterChange(err, hashes...)
	return recs, err
}

// afterChange forgets the keys a change made through this Store changed.
// If the outcome is unknown (the store failed, or the context ended), the
// whole cache is emptied: the change may have happened. A refusal by the
// store's contract changed nothing.
func (s *Store) afterChange(err error, changed ...apikey.Hash) {
	switch {
	case err == nil:
		for _, h := range changed {
			s.invalidate(h)
		}
	case store.IsAnswer(err):
		// Nothing changed.
	default:
		s.invalidateAll()
	}
}

// Changes passes through to the wrapped store's change feed, so caches can
// be stacked. See [store.ChangeFeed.Changes].
func (s *Store) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	if s.feed == nil {
		return nil, "", errors.New("cache: the wrapped store has no change feed")
	}
	return s.feed.Changes(ctx, since)
}

// poll reads the change feed every half bound until Close.
func (s *Store) poll() {
	defer close(s.stopped)
	every := s.bound / 2
	t := time.NewTicker(every)
	defer t.Stop()
	pos := ""
	for {
		pos = s.pollOnce(pos, every)
		select {
		case <-t.C:
		case <-s.stop:
			return
		}
	}
}

// pollOnce reads the changes since pos, invalidates them, and on success
// extends the time cached records may be served. It returns the position
// for the next poll.
func (s *Store) pollOnce(pos string, timeout time.Duration) string {
	start := clock.Mono()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	changed, next, err := s.feed.Changes(ctx, pos)
	switch {
	case errors.Is(err, store.ErrInvalidCursor):
		// The position is lost: start again, forgetting everything cached.
		s.logger.Warn("keyward cache: change feed position lost; emptying the cache")
		s.invalidateAll()
		return ""
	case err != nil:
		s.logger.Warn("keyward cache: polling the change feed failed; cached keys stop being served within the bound",
			"bound", s.bound, "err", err)
		return pos
	}
	for _, h := range changed {
		s.invalidate(h)
	}
	if pos == "" {
		// First contact, or after a lost position: nothing read before
		// now can be trusted; begin with an empty cache.
		s.invalidateAll()
	}
	s.freshUntil.Store(start + int64(s.bound))
	return next
}
