package keyward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/internal/outage"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// DefaultFlushInterval is how often last-used times are written by default.
const DefaultFlushInterval = time.Second

// DefaultMaxOverlap is the longest rotation overlap by default: how long
// a replaced key may keep working beside its replacement.
const DefaultMaxOverlap = 7 * 24 * time.Hour

// Deadlines and the bound on lookups in flight, by default. A call that
// outlives its deadline fails with [ErrStoreUnavailable] (503 from the
// middleware), never hangs.
const (
	// DefaultLookupTimeout bounds a verification lookup that goes to the
	// store (one that no memory answers).
	DefaultLookupTimeout = time.Second
	// DefaultStoreTimeout bounds every other store call: management
	// calls, and each write of last-used times.
	DefaultStoreTimeout = 5 * time.Second
	// DefaultMaxLookups bounds the verification lookups in flight to the
	// store at once: below a connection pool of 16, with room left for
	// management calls, the writes of last-used times and a cache's feed.
	DefaultMaxLookups = 10
)

// closeTimeout bounds Close: the time its final write of last-used times
// may take, retries included.
const closeTimeout = 10 * time.Second

// Keys is the key lifecycle: it verifies keys kept in a [store.Store], and
// through [Keys.Owner] creates, lists, updates, rotates and revokes each
// account's keys. It is what the middleware and the dashboard use. Create
// it with [New] and call [Keys.Close] (or [Keys.Shutdown]) when done, after
// the HTTP server has stopped, to write the last uses.
//
// Every store call has a deadline, and verification lookups that go to the
// store are bounded in number (see [WithLookupTimeout], [WithStoreTimeout]
// and [WithMaxLookups]): a slow or unreachable store, or a flood of unknown
// keys, costs requests a 503 within the deadline, never a hang nor the
// database's last connection.
//
// Keys is safe for concurrent use.
type Keys struct {
	store         store.Store
	local         store.LocalLookup // st, if it answers from memory; else nil
	format        apikey.Format
	catalog       *scope.Catalog
	clock         *clock.Clock
	interval      time.Duration
	maxOverlap    time.Duration
	lookupTimeout time.Duration
	storeTimeout  time.Duration
	lookups       chan struct{} // one token per lookup in flight to the store
	logger        *slog.Logger
	lookupHealth  outage.Log // verification lookups
	writeHealth   outage.Log // writes of last-used times

	exposurePolicy ExposurePolicy
	exposureHook   func(context.Context, ExposureReport)
	canaryHook     func(context.Context, apikey.Trip)
	canaries       canaries
	maxLifetime    time.Duration
	requireExpiry  [3]bool // by mode
	subscribers    []Subscriber

	uses      *usage
	retention time.Duration // of usage counts
	pruned    int64         // Unix microseconds of the last pruning of usage; flushLoop's
	lastFlush atomic.Int64  // Unix microseconds of the last successful write of uses
	observer  Observer      // nil if none
	flushMu   sync.Mutex    // one flush at a time
	stop      chan struct{}
	stopped   chan struct{}
	stopOnce  sync.Once
}

// An Option configures [New].
type Option func(*config) error

type config struct {
	format        apikey.Format
	catalog       *scope.Catalog
	clock         func() time.Time
	interval      time.Duration
	maxOverlap    time.Duration
	lookupTimeout time.Duration
	storeTimeout  time.Duration
	maxLookups    int
	logger        *slog.Logger

	exposurePolicy ExposurePolicy
	exposureHook   func(context.Context, ExposureReport)
	canaryHook     func(context.Context, apikey.Trip)
	maxLifetime    time.Duration
	requireExpiry  [3]bool
	subscribers    []Subscriber
	retention      time.Duration
	observer       Observer
}

// WithFormat sets the key format, for products whose keys do not start with
// "ck". The default is [apikey.Default].
func WithFormat(f apikey.Format) Option {
	return func(c *config) error {
		if f.Product() == "" {
			return errors.New("keyward: WithFormat needs a format from apikey.NewFormat")
		}
		c.format = f
		return nil
	}
}

// WithCatalog sets the scopes keys may be granted. The default is
// [scope.Default], the nine scopes of the checkout API.
func WithCatalog(cat *scope.Catalog) Option {
	return func(c *config) error {
		if cat == nil {
			return errors.New("keyward: WithCatalog needs a catalog")
		}
		c.catalog = cat
		return nil
	}
}

// WithClock sets the source of the current time, for tests. The default is
// the wall clock, read through the monotonic clock to save one clock read
// per verification and re-synchronised with [time.Now] every flush
// interval.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("keyward: WithClock needs a function")
		}
		c.clock = now
		return nil
	}
}

// WithFlushInterval sets how often last-used times are written to the store.
// The default is [DefaultFlushInterval], one second; it must be positive.
func WithFlushInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("keyward: the flush interval must be positive")
		}
		c.interval = d
		return nil
	}
}

// WithMaxOverlap sets the longest overlap a rotation may give the key it
// replaces ([RotateParams.Overlap]); a longer one is refused. The default
// is [DefaultMaxOverlap], 7 days; d must be positive. A cap keeps a
// "replaced" key from living on indefinitely beside its replacement.
func WithMaxOverlap(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("keyward: the maximum overlap must be positive")
		}
		c.maxOverlap = d
		return nil
	}
}

// WithMaxLifetime sets the longest life a key may have, from its creation
// or rotation to its expiry, as GitHub and GitLab cap their tokens': a key
// created or rotated without an expiry gets one d from now, and an expiry
// asked for beyond that is refused with an [*InputError]. Keys that
// exist are not changed; a replacement inheriting a longer expiry from
// before the rule is capped. d must be positive. The default is no limit.
func WithMaxLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("keyward: the maximum lifetime must be positive")
		}
		c.maxLifetime = d
		return nil
	}
}

// WithRequiredExpiry makes an expiry required for new keys of the given
// modes, such as apikey.Live: a create or rotation that gives none (and,
// for a rotation, inherits none) is refused with an [*InputError], so no
// live key is issued forever by oversight. With [WithMaxLifetime] as
// well, the requirement wins: the key is refused, not capped.
func WithRequiredExpiry(modes ...apikey.Mode) Option {
	return func(c *config) error {
		if len(modes) == 0 {
			return errors.New("keyward: WithRequiredExpiry needs a mode")
		}
		for _, m := range modes {
			if !m.Valid() {
				return apikey.ErrInvalidMode
			}
			c.requireExpiry[m] = true
		}
		return nil
	}
}

// WithLookupTimeout sets the deadline of a verification lookup that goes
// to the store: past it, Verify fails with [ErrStoreUnavailable] and the
// middleware answers 503. The default is [DefaultLookupTimeout], one
// second; d must be positive. Lookups answered from memory (the memory
// store, a cache's hits) need no deadline and get none.
//
// A lookup that finds every place among the lookups in flight taken (see
// [WithMaxLookups]) waits for one at most a tenth of d, then fails the
// same way.
//
// A lookup ends when the caller's context does, with its error; a caller
// whose context has ended before the lookup sends no query.
func WithLookupTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("keyward: the lookup timeout must be positive")
		}
		c.lookupTimeout = d
		return nil
	}
}

// WithStoreTimeout sets the deadline of every store call but verification
// lookups: the management calls of [Owner], and each write of last-used
// times. Past it, the call fails with [ErrStoreUnavailable]. The default is
// [DefaultStoreTimeout], five seconds; d must be positive. A caller's
// earlier deadline wins.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("keyward: the store timeout must be positive")
		}
		c.storeTimeout = d
		return nil
	}
}

// WithMaxLookups bounds the verification lookups in flight to the store at
// once (lookups answered from memory do not count). A flood of
// never-repeating keys then occupies at most n of the database's
// connections, and the requests beyond it get 503 rather than queue
// without end. The default is [DefaultMaxLookups], 10; size it below the
// connection pool (db.SetMaxOpenConns), leaving room for management calls,
// last-used writes and a cache's change feed, and the pool below the
// database's max_connections divided by the number of instances.
func WithMaxLookups(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("keyward: at least one lookup in flight")
		}
		c.maxLookups = n
		return nil
	}
}

// WithLogger sets where the lifecycle reports what operators must know:
// the start and the end of a store outage (rate-limited), failed background
// writes of last-used times, and what Shutdown could not write. The
// default is [slog.Default]. Log lines carry counts and errors, never keys.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("keyward: WithLogger needs a logger")
		}
		c.logger = l
		return nil
	}
}

// New returns the lifecycle for keys kept in st and starts the background
// writer of last-used times. Call [Keys.Close] to stop it.
func New(st store.Store, opts ...Option) (*Keys, error) {
	if st == nil {
		return nil, errors.New("keyward: New needs a store")
	}
	c := config{
		format:        apikey.Default,
		catalog:       scope.Default,
		interval:      DefaultFlushInterval,
		maxOverlap:    DefaultMaxOverlap,
		lookupTimeout: DefaultLookupTimeout,
		storeTimeout:  DefaultStoreTimeout,
		maxLookups:    DefaultMaxLookups,
		logger:        slog.Default(),
		retention:     DefaultUsageRetention,
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	clk := clock.New()
	if c.clock != nil {
		clk = clock.Func(c.clock)
	}
	k := &Keys{
		store:         st,
		format:        c.format,
		catalog:       c.catalog,
		clock:         clk,
		interval:      c.interval,
		maxOverlap:    c.maxOverlap,
		lookupTimeout: c.lookupTimeout,
		storeTimeout:  c.storeTimeout,
		lookups:       make(chan struct{}, c.maxLookups),
		logger:        c.logger,
		uses:          newUsage(),
		retention:     c.retention,
		observer:      c.observer,
		stop:          make(chan struct{}),
		stopped:       make(chan struct{}),

		exposurePolicy: c.exposurePolicy,
		exposureHook:   c.exposureHook,
		canaryHook:     c.canaryHook,
		canaries:       canaries{queue: make(chan pendingTrip, tripQueueLen), done: make(chan struct{})},
		maxLifetime:    c.maxLifetime,
		requireExpiry:  c.requireExpiry,
		subscribers:    c.subscribers,
	}
	k.local, _ = st.(store.LocalLookup)
	k.lookupHealth = storeOutage(c.logger, clk, "verifying keys")
	k.writeHealth = storeOutage(c.logger, clk, "writing last-used times")
	go k.flushLoop()
	go k.tripLoop()
	return k, nil
}

// storeOutage returns the log of the store's outages while doing what.
func storeOutage(logger *slog.Logger, clk *clock.Clock, what string) outage.Log {
	return outage.Log{
		Logger: logger,
		Now:    func() time.Duration { return time.Duration(clk.Micros()) * time.Microsecond },
		Down:   "keyward: the key store is unavailable: requests get 503 until it answers again",
		Still:  "keyward: the key store is still unavailable",
		Up:     "keyward: the key store answers again",
		Attrs:  []any{"while", what},
	}
}

// Logger returns the logger of [WithLogger], for packages that report
// beside the lifecycle, such as the middleware's rate-limiter outages.
func (k *Keys) Logger() *slog.Logger { return k.logger }

// Format returns the key format in use.
func (k *Keys) Format() apikey.Format { return k.format }

// Catalog returns the scopes keys may be granted.
func (k *Keys) Catalog() *scope.Catalog { return k.catalog }

// MaxOverlap returns the longest overlap a rotation may give (see
// [WithMaxOverlap]).
func (k *Keys) MaxOverlap() time.Duration { return k.maxOverlap }

// now returns the current time, as stores keep it.
func (k *Keys) now() time.Time { return k.clock.Now() }

// Now returns the current time by the lifecycle's clock, in UTC to the
// microsecond: the time against which it judges expiry and status, for
// code that shows them, such as the dashboard.
func (k *Keys) Now() time.Time { return k.clock.Now() }

// Verify authenticates a raw key and returns its record, with LastUsedAt
// set to now. It is the call on every request, and it is global: a key
// identifies its owner ([apikey.Record.Owner]), so a handler scopes what it
// does to the owner of the key that called it.
//
// A key not in the configured format is refused before any store call,
// with an error matching [ErrMalformedKey]. Otherwise Verify looks the key
// up by its SHA-256 hash and refuses it with [ErrUnknownKey], [ErrRevoked]
// or [ErrExpired]; all four match [ErrInvalidKey]. A store failure returns
// an error matching [ErrStoreUnavailable], never an invalid-key error.
//
// A canary key (see [CreateParams.Canary]) that is active is refused with
// ErrUnknownKey, exactly as a key that does not exist, after the same
// work; its use is queued as a trip (see [WithCanaryHook]) and Verify
// returns without waiting for it to be stored.
//
// The use is recorded in memory and written to the store in the
// background (see [Keys.Flush]); Verify never waits on a write. Against
// the memory store, a successful Verify does not allocate, whatever the
// key's metadata.
func (k *Keys) Verify(ctx context.Context, raw string) (apikey.Record, error) {
	v, err := k.VerifyFrom(ctx, raw, Caller{})
	if err != nil {
		return apikey.Record{}, err
	}
	return v.Record(), nil
}

// VerifyFrom is [Keys.Verify] for a server that knows its caller and
// carries the key through the request: if the key is a canary, the trip
// records c; a key that passes is returned as a [Verified], a read-only
// view of its record that shares the store's answer instead of copying
// it (when the store answers from memory, it costs no allocation). The
// middleware calls it. Errors are Verify's.
func (k *Keys) VerifyFrom(ctx context.Context, raw string, c Caller) (Verified, error) {
	if k.observer == nil {
		return k.verify(ctx, raw, c)
	}
	if rand.Uint32()%latencySample != 0 {
		v, err := k.verify(ctx, raw, c)
		k.observer.ObserveVerify(ctx, outcome(err), 0)
		return v, err
	}
	start := time.Now()
	v, err := k.verify(ctx, raw, c)
	k.observer.ObserveVerify(ctx, outcome(err), max(time.Since(start), 1))
	return v, err
}

// latencySample is the share of verifications timed for the observer: one
// in latencySample, chosen at random. Two clock reads cost a fast
// verification a third of its time; a sample of its latency costs it a
// few nanoseconds, and describes it as well.
const latencySample = 16

// verify is VerifyFrom without its observer.
func (k *Keys) verify(ctx context.Context, raw string, c Caller) (Verified, error) {
	mode, err := k.format.Parse(raw)
	if err != nil {
		return Verified{}, malformedKey(err)
	}
	h := apikey.HashOf(raw)
	rec, err := k.getByHash(ctx, h)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			k.lookupHealth.OK()
			return Verified{}, ErrUnknownKey
		}
		k.lookupHealth.Failed(err)
		return Verified{}, &StoreError{Op: "verify", Err: err}
	}
	k.lookupHealth.OK()
	// A store answers by hash; check in constant time that it answered
	// for this key, and that the key's mode is the recorded one.
	if !rec.Hash.Equal(h) || rec.Mode != mode {
		return Verified{}, ErrUnknownKey
	}
	now := k.clock.Micros()
	switch {
	case rec.Revoked():
		return Verified{}, ErrRevoked
	case rec.Expired(time.UnixMicro(now)):
		return Verified{}, ErrExpired
	case rec.Canary:
		// A tripwire: the caller learns nothing it would not learn from
		// a key that does not exist.
		k.trip(rec, c, time.UnixMicro(now).UTC())
		return Verified{}, ErrUnknownKey
	}
	k.uses.record(h, rec.ID, now)
	return Verified{rec: rec, used: now}, nil
}

// getByHash looks a key up: from memory if the store can answer there,
// else from the store, with a deadline and a place among the lookups in
// flight. The record is read-only: from memory, it is the store's own.
func (k *Keys) getByHash(ctx context.Context, h apikey.Hash) (*apikey.Record, error) {
	if k.local != nil {
		if rec, err := k.local.GetByHashLocal(h); err != store.ErrWouldBlock { // a sentinel, never wrapped
			return rec, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the caller gave up: start no query
	}
	if err := k.acquireLookup(ctx); err != nil {
		return nil, err
	}
	defer func() { <-k.lookups }()
	ctx, cancel := context.WithTimeout(ctx, k.lookupTimeout)
	defer cancel()
	rec, err := k.store.GetByHash(ctx, h)
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// acquireLookup takes a place among the lookups in flight, waiting for one
// at most a tenth of the lookup timeout.
func (k *Keys) acquireLookup(ctx context.Context) error {
	select {
	case k.lookups <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(k.lookupTimeout / 10)
	defer wait.Stop()
	select {
	case k.lookups <- struct{}{}:
		return nil
	case <-wait.C:
		return ErrOverloaded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storeContext returns ctx with the deadline of a store call that is not
// a verification lookup.
func (k *Keys) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, k.storeTimeout)
}

// Flush writes the pending last-used times to the store now, in one call to
// [store.Store.RecordUses]. The background writer calls it every flush
// interval; call it yourself to make the times visible at once, as tests do.
//
// Accuracy: a successful verification at time t is visible in the store's
// LastUsedAt by t + the flush interval + the time of one write. The time
// written is the verification time, to the microsecond, except that uses
// less than a millisecond after the last recorded use of the same key are
// not recorded: LastUsedAt is never more than 1 ms older than the true last
// use. If a write fails, the uses are kept and retried at the next flush.
// If the process dies without [Keys.Close], at most the uses of the last
// interval are lost: LastUsedAt then shows an earlier use.
func (k *Keys) Flush(ctx context.Context) error {
	k.flushMu.Lock()
	defer k.flushMu.Unlock()
	cells, uses := k.uses.drain()
	defer k.uses.release(cells, uses)
	if len(uses) == 0 {
		return nil
	}
	if err := k.store.RecordUses(ctx, uses); err != nil {
		k.uses.requeue(cells, uses, k.clock.Micros())
		return &StoreError{Op: "record uses", Err: err}
	}
	k.lastFlush.Store(k.clock.Micros())
	return nil
}

// Shutdown stops the background writer and writes the pending last-used
// times, retrying with backoff (from 10 ms, doubling, at most a second
// apart) until a write succeeds or ctx ends. Call it after the HTTP server
// has shut down, so the last requests' uses are included. If ctx ends
// first, Shutdown logs, and returns in its error, how many keys' last use
// it could not write: those are lost once the process exits. Calling it
// again tries again. Verify still works after Shutdown, but its uses are
// only written by later calls to [Keys.Flush] or Shutdown.
func (k *Keys) Shutdown(ctx context.Context) error {
	k.stopOnce.Do(func() {
		close(k.stop)
		<-k.stopped
	})
	select {
	case <-k.canaries.done: // the canary trips queued are written
	case <-ctx.Done():
		k.logger.Error("keyward: shutting down before the queued canary trips were written", "trips", len(k.canaries.queue))
	}
	backoff := 10 * time.Millisecond
	for {
		attempt, cancel := k.storeContext(ctx)
		err := k.Flush(attempt)
		cancel()
		if err == nil {
			return nil
		}
		wait := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			wait.Stop()
			n := k.uses.pending()
			k.logger.Error("keyward: shutting down without writing last-used times; they are lost when the process exits",
				"keys", n, "err", err)
			return fmt.Errorf("keyward: the last-used times of %d keys could not be written: %w", n, err)
		case <-wait.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Close is [Keys.Shutdown] with a deadline of ten seconds. It is
// idempotent, and a Close that failed to write may be called again to try
// again.
func (k *Keys) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return k.Shutdown(ctx)
}

// flushLoop writes last-used times every flush interval until Close, and
// rebases the clock as often.
func (k *Keys) flushLoop() {
	defer close(k.stopped)
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			k.clock.Rebase()
			ctx, cancel := k.storeContext(context.Background())
			if err := k.Flush(ctx); err != nil {
				k.writeHealth.Failed(err, "pending_keys", k.uses.pending())
			} else {
				k.writeHealth.OK()
				k.pruneUsage(ctx)
			}
			cancel()
		case <-k.stop:
			return
		}
	}
}
