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
// [Store.GetByHashLocal] answers from memory alone, exactly when GetByHash
// would, and otherwise returns [store.ErrWouldBlock] at once (see
// [store.LocalLookup]). The lifecycle asks it first, so an answer the cache
// holds costs neither a deadline's timer nor a place among the lookups in
// flight.
//
// # What is cached
//
// Known keys: a bounded number of records (see [WithMaxEntries]), evicted at
// random when full, and refreshed from the store after [WithMaxAge].
//
// Unknown keys: a set of hashes that no key had when they were looked up, so
// that a client replaying bogus keys does not reach the store again. The
// set has a fixed size, allocated by [New] and never grown: 32 bytes a hash
// ([WithMaxUnknown]). A new hash takes a free slot in the small group of
// slots its hash selects, or replaces one of the group at random. It keeps
// whole hashes, so it never takes a key for another. A hash needs no expiry
// there: keys carry 190 random bits, so no key created later has the hash
// of one presented before, unless it was guessed (see below). A flood of
// never-repeating random keys still costs one indexed lookup each (the set
// only stops repeats), though neither a heap that grows nor an allocation;
// limit it upstream, per client, like any other flood.
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
// Feeds may report a change more than once, and each report costs the
// changed key one read from the store at its next verification. The
// PostgreSQL store reports each change once, by the first poll that begins
// after the change commits, however long its transaction stayed open (see
// its package documentation).
//
// A wrapped store that does not implement [store.ChangeFeed] cannot report
// changes: records are then kept for at most one bound.
//
// Expiry needs nothing from the cache: the lifecycle checks a record's
// ExpiresAt against its clock on every verification, cached or not.
//
// # Unknown keys while the feed is late
//
// Unknown hashes are answered whatever the state of the feed: before the
// first poll, while polls are late, and while they fail. The feed has
// nothing to say about them. A hash is cached as unknown only when the
// store had no key with it, and stores never delete keys, so that answer
// changes only if a key with exactly that hash is created afterwards.
// Through this Store, Create and Rotate remove the new key's hash before
// they return, even when they fail without knowing whether the key was
// stored. Through another process, the key's raw form was drawn from
// crypto/rand while it was created, so for its hash to be cached here first
// someone must have presented the key before it existed: guessed 190 bits.
// (An application that stores keys whose raw form existed before, imported
// from another system, should import them before clients present them, or
// through this Store.) Serving unknown hashes while the feed is late thus
// gives nothing away, and it keeps a replayed flood of bogus keys off the
// database when it matters most: polls are late when the database is slow
// or down. Records of known keys are another matter: they change, and
// stop being served one bound after the last successful poll began.
//
// After [Store.Close], nothing is served from memory.
package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
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

const (
	shards = 64 // a power of two
	// ways is the most slots in a group of the unknown set: a hash can
	// live in any slot of the group its bytes select.
	ways = 8
	// maxFree bounds the finished flights a shard keeps for reuse.
	maxFree = 16
	// closed is freshUntil after Close: below any time, and distinct from
	// the zero of a cache that has not polled yet.
	closed = math.MinInt64
)

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
	perShardNo int // negative entries per shard, as asked

	// freshUntil is the time (see clock.Mono) until which cached records
	// may be served: one bound after the start of the last successful poll;
	// [closed] after Close.
	freshUntil atomic.Int64

	misses, unknownHits, lookups, polls atomic.Int64

	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// A shard holds the cache of the hashes whose second byte selects it.
//
// Two locks, so that a miss takes the write lock once. mu guards what
// lookups read (the records and the unknown set), and the writes to epoch;
// it is never held across I/O. flightMu guards the lookups under way
// (flights, free); a miss takes it to join or start a flight, and again to
// finish one (once more, for the last to let go of a flight that had
// waiters), but takes mu for writing only to fill the cache.
type shard struct {
	mu      sync.RWMutex
	known   map[apikey.Hash]*entry
	unknown unknownSet
	// epoch counts invalidations: a lookup that began before one must not
	// fill the cache with what it read, and a lookup that begins after one
	// must not join a flight that began before. It changes under mu (so a
	// fill, under mu, sees every invalidation before it), and is read
	// without mu when a flight starts or is joined.
	epoch atomic.Uint64
	// writeLocks counts the times mu was taken for writing, under mu: tests
	// check that a lookup takes it at most once.
	writeLocks int64
	// hits is kept per shard, on the cache line the lock already touches,
	// so that counting costs no extra contention.
	hits atomic.Int64

	flightMu sync.Mutex
	flights  map[apikey.Hash]*flight
	free     *flight // finished flights, for reuse: a list through next
	nfree    int
}

// An entry is a cached record. It never changes once in the cache: a
// refresh stores a new entry, since GetByHashLocal shares its record.
type entry struct {
	rec     apikey.Record
	expires int64 // the time (see clock.Mono) after which the entry is refreshed
}

// A flight is one store lookup that concurrent misses for a hash share.
//
// Flights are reused, so that a miss does not allocate; a flight goes back
// to its shard's free list only when no one can reach it. refs counts the
// leader and the waiters that hold it. Waiters join only while it is in
// the table (under flightMu, which the leader takes to remove it), so once
// removed, refs only falls; the leader holds its reference until it has
// signalled, and a waiter holds its own until it has read rec and err. The
// one that drops refs to zero recycles it.
//
// done carries a single signal, never closed, so that it can be reused: the
// leader sends it once rec and err are set, and each waiter that receives it
// sends it on before reading them, for the next waiter. Whoever recycles
// the flight takes it back out: it is there, since every waiter that took
// it put it back before letting go.
type flight struct {
	done  chan struct{} // capacity 1
	refs  atomic.Int32
	epoch uint64
	rec   apikey.Record
	err   error
	next  *flight // in the free list
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.ChangeFeed  = (*Store)(nil)
	_ store.LocalLookup = (*Store)(nil)
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

// WithMaxUnknown sets the number of unknown hashes the cache can hold, at
// least 64. The set is allocated by [New] and never grows: 32 bytes a hash,
// and a byte for each group of four to eight, about 3.2 MB for the
// default, [DefaultMaxUnknown]. It holds at most n hashes and at least
// n - 255, since each of the cache's 64 shards holds whole groups (99,904
// for the default).
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
	w, groups := shape(s.perShardNo)
	slots := make([]apikey.Hash, shards*groups*w)
	used := make([]uint8, shards*groups)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.known = make(map[apikey.Hash]*entry)
		sh.unknown = unknownSet{
			slots: slots[i*groups*w : (i+1)*groups*w : (i+1)*groups*w],
			used:  used[i*groups : (i+1)*groups : (i+1)*groups],
			ways:  w,
		}
		sh.flights = make(map[apikey.Hash]*flight, 8) // its first group, now
	}
	feed, ok := next.(store.ChangeFeed)
	if !ok {
		// Nothing reports changes: records live at most one bound.
		s.maxAge = min(s.maxAge, s.bound)
		s.freshUntil.Store(math.MaxInt64)
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
		s.freshUntil.Store(closed)
	})
	return nil
}

// Stats counts verification lookups since New, and the cache's size.
type Stats struct {
	Hits        int64 // answered from a cached record
	UnknownHits int64 // answered from the set of unknown hashes
	Misses      int64 // not answered from the cache by GetByHash
	Lookups     int64 // store queries made for misses (shared by concurrent misses)
	Polls       int64 // successful polls of the change feed: tests wait on it
	Known       int   // records cached now
	Unknown     int   // unknown hashes cached now
}

// Stats returns the lookup counters. Hits and UnknownHits count the
// answers of [Store.GetByHash] and [Store.GetByHashLocal]; Misses counts
// only those of GetByHash, since a lookup that GetByHashLocal cannot answer
// is followed by one through GetByHash.
func (s *Store) Stats() Stats {
	st := Stats{
		UnknownHits: s.unknownHits.Load(),
		Misses:      s.misses.Load(),
		Lookups:     s.lookups.Load(),
		Polls:       s.polls.Load(),
	}
	for i := range s.shards {
		sh := &s.shards[i]
		st.Hits += sh.hits.Load()
		sh.mu.RLock()
		st.Known += len(sh.known)
		st.Unknown += sh.unknown.n
		sh.mu.RUnlock()
	}
	return st
}

func (s *Store) shard(h apikey.Hash) *shard { return &s.shards[h[1]&(shards-1)] }

// GetByHashLocal answers from the cache alone: the record of a key cached
// and fresh, [store.ErrNotFound] for a hash cached as unknown, and
// otherwise [store.ErrWouldBlock], when [Store.GetByHash] would ask the
// wrapped store. It takes only a shard's read lock, which is never held
// across I/O, and does not allocate. The record is the cache's own, and
// read-only: a refresh replaces it rather than change it. See
// [store.LocalLookup].
func (s *Store) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	return s.local(s.shard(h), h)
}

// GetByHash answers from the cache when it can, and otherwise from the
// wrapped store, sharing one query among concurrent misses for a hash. A
// hit does not allocate, and neither does a miss for an unknown hash once
// the cache has warmed up. See [store.Store.GetByHash].
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	sh := s.shard(h)
	rec, err := s.local(sh, h)
	if err == nil {
		return *rec, nil
	}
	if err != store.ErrWouldBlock {
		return apikey.Record{}, err
	}
	s.misses.Add(1)
	return s.lookup(ctx, sh, h)
}

// local is the answer from memory of GetByHash and GetByHashLocal: the
// cached record (read-only), store.ErrNotFound, or store.ErrWouldBlock.
func (s *Store) local(sh *shard, h apikey.Hash) (*apikey.Record, error) {
	now := clock.Mono()
	until := s.freshUntil.Load()
	if until == closed {
		return nil, store.ErrWouldBlock
	}
	sh.mu.RLock()
	if e := sh.known[h]; e != nil {
		if now < until && now < e.expires {
			sh.mu.RUnlock()
			sh.hits.Add(1)
			return &e.rec, nil
		}
		// A hash is never both known and unknown (fill keeps it so).
		sh.mu.RUnlock()
		return nil, store.ErrWouldBlock
	}
	// Whatever the feed's state: see "Unknown keys while the feed is late"
	// in the package doc.
	if sh.unknown.has(h) {
		sh.mu.RUnlock()
		s.unknownHits.Add(1)
		return nil, store.ErrNotFound
	}
	sh.mu.RUnlock()
	return nil, store.ErrWouldBlock
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
		f, lead := sh.join(h)
		if lead {
			return s.fly(ctx, sh, h, f)
		}
		select {
		case <-f.done:
			f.done <- struct{}{} // for the next waiter; never blocks: we took it
			rec, err := f.rec, f.err
			sh.release(f)
			if ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				continue // the leader gave up, not us
			}
			return rec, err
		case <-ctx.Done():
			sh.release(f)
			return apikey.Record{}, ctx.Err()
		}
	}
}

// join returns the flight for h of the current epoch, holding a reference
// to it, and whether the caller leads it: whether it started it.
func (sh *shard) join(h apikey.Hash) (*flight, bool) {
	sh.flightMu.Lock()
	epoch := sh.epoch.Load()
	if f := sh.flights[h]; f != nil && f.epoch == epoch {
		f.refs.Add(1)
		sh.flightMu.Unlock()
		return f, false
	}
	// Any flight for h here began before an invalidation: it may fill
	// nothing, and later lookups must not join it. Its leader removes it
	// only if it is still the one in the table.
	f := sh.free
	if f != nil {
		sh.free, f.next = f.next, nil
		sh.nfree--
	} else {
		f = &flight{done: make(chan struct{}, 1)}
	}
	f.epoch = epoch
	f.refs.Store(1)
	sh.flights[h] = f
	sh.flightMu.Unlock()
	return f, true
}

// fly runs the query of flight f, which the caller leads, fills the cache
// with its answer and releases its waiters.
//
// It takes the shard's write lock once, to fill; it then removes the
// flight under flightMu before signalling, so that a lookup that begins
// after the waiters return cannot join a finished query, which would serve
// its answer without the freshness check.
func (s *Store) fly(ctx context.Context, sh *shard, h apikey.Hash, f *flight) (apikey.Record, error) {
	s.lookups.Add(1)
	rec, err := s.next.GetByHash(ctx, h)

	sh.lock()
	if f.epoch == sh.epoch.Load() { // else invalidated meanwhile: rec may be stale
		switch {
		case err == nil:
			sh.unknown.remove(h)
			// A new entry even for a hash cached before: an entry's record
			// is shared by GetByHashLocal's callers, so it never changes.
			if sh.known[h] == nil && len(sh.known) >= s.perShard {
				evictOne(sh.known)
			}
			sh.known[h] = &entry{rec: rec, expires: clock.Mono() + int64(s.maxAge)}
		case errors.Is(err, store.ErrNotFound):
			delete(sh.known, h)
			sh.unknown.add(h)
		}
	}
	sh.mu.Unlock()

	sh.flightMu.Lock()
	if sh.flights[h] == f {
		delete(sh.flights, h)
	}
	if f.refs.Load() == 1 {
		// No waiter, and none can join now: reuse it at once, unsignalled.
		sh.recycle(f)
		sh.flightMu.Unlock()
		return rec, err
	}
	sh.flightMu.Unlock()
	f.rec, f.err = rec, err
	f.done <- struct{}{}
	sh.release(f)
	return rec, err
}

// release drops a reference to f, which is out of the table or still
// has its leader's reference; the last one recycles it.
func (sh *shard) release(f *flight) {
	if f.refs.Add(-1) != 0 {
		return
	}
	select {
	case <-f.done: // the signal, put back by every waiter that took it
		sh.flightMu.Lock()
		sh.recycle(f)
		sh.flightMu.Unlock()
	default:
		// Cannot happen; were it to, a flight whose signal is astray is
		// left to the garbage collector rather than reused.
	}
}

// recycle puts f, which no one holds, on the free list. The caller holds
// flightMu.
func (sh *shard) recycle(f *flight) {
	f.rec, f.err = apikey.Record{}, nil // hold no record for the GC
	if sh.nfree >= maxFree {
		return
	}
	f.next = sh.free
	sh.free = f
	sh.nfree++
}

// shape returns the number of slots of a group and of groups of a shard
// that holds at most n unknown hashes: as many as can be, in groups of
// four to eight (n if n < 4), preferring larger groups. It loses at most 3
// of n.
func shape(n int) (w, groups int) {
	if n < 4 {
		return n, 1
	}
	for try := ways; try >= 4; try-- {
		if g := n / try; g*try > groups*w {
			w, groups = try, g
		}
	}
	return w, groups
}

// lock takes the shard's write lock.
func (sh *shard) lock() {
	sh.mu.Lock()
	sh.writeLocks++
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

// An unknownSet is a set of hashes in fixed memory: groups of ways slots
// each (at most 8), a hash living in any slot of the group its bytes 8 to
// 15 select (the shard uses byte 1). used has a bit per slot in use. When
// its group is full, a new hash replaces one at random. The shard's lock
// guards it.
//
// The group is chosen from the hash itself, without a secret: a client who
// makes many keys to crowd one group gains nothing, since only unknown
// hashes live there. Its keys cost one store lookup each, as random keys
// would, and evict others' bogus hashes one for one, as random keys would.
type unknownSet struct {
	slots []apikey.Hash // len(used)*ways
	used  []uint8
	ways  int
	n     int // hashes held
}

// group returns the index of h's group: bytes 8 to 15, reduced to the
// number of groups by a multiply (Lemire's reduction, unbiased enough and
// cheaper than a division).
func (u *unknownSet) group(h apikey.Hash) int {
	hi, _ := bits.Mul64(binary.LittleEndian.Uint64(h[8:16]), uint64(len(u.used)))
	return int(hi)
}

// find returns the group of h and the slot holding it, or -1.
func (u *unknownSet) find(h apikey.Hash) (g, slot int) {
	g = u.group(h)
	used := u.used[g]
	base := g * u.ways
	for i := range u.ways {
		if used&(1<<i) != 0 && u.slots[base+i] == h {
			return g, i
		}
	}
	return g, -1
}

func (u *unknownSet) has(h apikey.Hash) bool {
	_, i := u.find(h)
	return i >= 0
}

func (u *unknownSet) add(h apikey.Hash) {
	g, i := u.find(h)
	if i >= 0 {
		return
	}
	free := ^u.used[g] & uint8(int(1)<<u.ways-1) // the free slots
	if free != 0 {
		i = bits.TrailingZeros8(free)
		u.n++
	} else {
		i = rand.IntN(u.ways)
	}
	u.slots[g*u.ways+i] = h
	u.used[g] |= 1 << i
}

func (u *unknownSet) remove(h apikey.Hash) {
	g, i := u.find(h)
	if i < 0 {
		return
	}
	u.used[g] &^= 1 << i
	u.n--
}

// invalidate removes h from the cache and makes lookups under way for it
// unable to fill the cache; later lookups start a new query.
func (s *Store) invalidate(h apikey.Hash) {
	sh := s.shard(h)
	sh.lock()
	sh.epoch.Add(1)
	delete(sh.known, h)
	sh.unknown.remove(h)
	sh.mu.Unlock()
}

// invalidateAll empties the cache of records, when it cannot tell which
// key changed. It keeps unknown hashes: changes do not make them known.
func (s *Store) invalidateAll() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.lock()
		sh.epoch.Add(1)
		clear(sh.known)
		sh.mu.Unlock()
	}
}

// Create passes through, then forgets the key's hash if it was cached as
// unknown: when the store created it, and when it cannot tell. See
// [store.Store.Create].
func (s *Store) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	got, err := s.next.Create(ctx, rec, idem)
	if err == nil || !store.IsAnswer(err) {
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
	if err != nil && !store.IsAnswer(err) {
		s.invalidate(next.Hash) // it may have been stored
	}
	return old, created, err
}

// Revoke revokes through the wrapped store and removes the key from the
// cache before returning, so the next verification sees the revocation.
// See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	rec, err := s.next.Revoke(ctx, owner, id, r)
	s.afterChange(err, rec.Hash)
	return rec, err
}

// Expose marks the key exposed through the wrapped store and removes it
// from the cache before returning, so the next verification sees a
// revocation it made. See [store.Store.Expose].
func (s *Store) Expose(ctx context.Context, owner string, id uuid.UUID, e apikey.Exposure, revoke bool) (apikey.Record, error) {
	rec, err := s.next.Expose(ctx, owner, id, e, revoke)
	s.afterChange(err, rec.Hash)
	return rec, err
}

// RecordTrip passes through to the wrapped store: trips are not part of
// the records the cache keeps. See [store.Store.RecordTrip].
func (s *Store) RecordTrip(ctx context.Context, t apikey.Trip) error {
	return s.next.RecordTrip(ctx, t)
}

// Trips passes through to the wrapped store. See [store.Store.Trips].
func (s *Store) Trips(ctx context.Context, owner string, id uuid.UUID, limit int) ([]apikey.Trip, error) {
	return s.next.Trips(ctx, owner, id, limit)
}

// RevokeAll revokes through the wrapped store and removes every revoked
// key from the cache before returning. See [store.Store.RevokeAll].
func (s *Store) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	recs, err := s.next.RevokeAll(ctx, owner, r)
	hashes := make([]apikey.Hash, len(recs))
	for i, rec := range recs {
		hashes[i] = rec.Hash
	}
	s.afterChange(err, hashes...)
	return recs, err
}

// afterChange forgets the keys a change made through this Store changed.
// If the outcome is unknown (the store failed, or the context ended), the
// whole cache of records is emptied: the change may have happened. A
// refusal by the store's contract changed nothing.
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
	s.polls.Add(1)
	return next
}

// Audit passes through. See [store.Store.Audit].
func (s *Store) Audit(ctx context.Context, owner string, opts store.AuditOptions) (store.AuditPage, error) {
	return s.next.Audit(ctx, owner, opts)
}

// AuditChain passes through. See [store.Store.AuditChain].
func (s *Store) AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error) {
	return s.next.AuditChain(ctx, owner, after, limit)
}

// Usage passes through. See [store.Store.Usage].
func (s *Store) Usage(ctx context.Context, owner string, q store.UsageQuery) ([]store.HourUsage, error) {
	return s.next.Usage(ctx, owner, q)
}

// PruneUsage passes through. See [store.Store.PruneUsage].
func (s *Store) PruneUsage(ctx context.Context, before time.Time) error {
	return s.next.PruneUsage(ctx, before)
}
