package keyward

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// DefaultFlushInterval is how often last-used times are written by default.
const DefaultFlushInterval = time.Second

// DefaultMaxOverlap is the longest rotation overlap by default: how long
// a replaced key may keep working beside its replacement.
const DefaultMaxOverlap = 7 * 24 * time.Hour

// flushTimeout bounds one write of last-used times.
const flushTimeout = 10 * time.Second

// Keys is the key lifecycle: it verifies keys kept in a [store.Store], and
// through [Keys.Owner] creates, lists, updates, rotates and revokes each
// account's keys. It is what the middleware and the dashboard use. Create
// it with [New] and call [Keys.Close] when done, after the HTTP server has
// stopped, to write the last uses.
//
// Keys is safe for concurrent use.
type Keys struct {
	store      store.Store
	format     apikey.Format
	catalog    *scope.Catalog
	clock      *clock.Clock
	interval   time.Duration
	maxOverlap time.Duration
	logger     *slog.Logger

	uses      *usage
	flushMu   sync.Mutex // one flush at a time
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// An Option configures [New].
type Option func(*config) error

type config struct {
	format     apikey.Format
	catalog    *scope.Catalog
	clock      func() time.Time
	interval   time.Duration
	maxOverlap time.Duration
	logger     *slog.Logger
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

// WithLogger sets where failed background writes of last-used times are
// reported. The default is [slog.Default]. Log lines carry counts and
// errors, never keys.
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
		format:     apikey.Default,
		catalog:    scope.Default,
		interval:   DefaultFlushInterval,
		maxOverlap: DefaultMaxOverlap,
		logger:     slog.Default(),
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
		store:      st,
		format:     c.format,
		catalog:    c.catalog,
		clock:      clk,
		interval:   c.interval,
		maxOverlap: c.maxOverlap,
		logger:     c.logger,
		uses:       newUsage(),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	go k.flushLoop()
	return k, nil
}

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
// The use is recorded in memory and written to the store in the
// background (see [Keys.Flush]); Verify never waits on a write. Against
// the memory store, a successful Verify does not allocate, whatever the
// key's metadata.
func (k *Keys) Verify(ctx context.Context, raw string) (apikey.Record, error) {
	mode, err := k.format.Parse(raw)
	if err != nil {
		return apikey.Record{}, malformedKey(err)
	}
	h := apikey.HashOf(raw)
	rec, err := k.store.GetByHash(ctx, h)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apikey.Record{}, ErrUnknownKey
		}
		return apikey.Record{}, &StoreError{Op: "verify", Err: err}
	}
	// A store answers by hash; check in constant time that it answered
	// for this key, and that the key's mode is the recorded one.
	if !rec.Hash.Equal(h) || rec.Mode != mode {
		return apikey.Record{}, ErrUnknownKey
	}
	now := k.clock.Micros()
	switch {
	case rec.Revoked():
		return apikey.Record{}, ErrRevoked
	case rec.Expired(time.UnixMicro(now)):
		return apikey.Record{}, ErrExpired
	}
	k.uses.record(h, rec.ID, now)
	if rec.LastUsedAt.IsZero() || now > rec.LastUsedAt.UnixMicro() {
		rec.LastUsedAt = time.UnixMicro(now).UTC()
	}
	return rec, nil
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
	if len(uses) == 0 {
		return nil
	}
	if err := k.store.RecordUses(ctx, uses); err != nil {
		k.uses.requeue(cells)
		return &StoreError{Op: "record uses", Err: err}
	}
	return nil
}

// Close stops the background writer and writes the pending last-used
// times. Call it after the HTTP server has shut down, so the last requests'
// uses are included. Close is idempotent and returns the error of the final
// write. Verify still works after Close, but its uses are only written by
// later calls to [Keys.Flush].
func (k *Keys) Close() error {
	k.closeOnce.Do(func() {
		close(k.stop)
		<-k.stopped
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		k.closeErr = k.Flush(ctx)
	})
	return k.closeErr
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
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := k.Flush(ctx); err != nil {
				k.logger.Warn("keyward: writing last-used times failed; will retry",
					"pending_keys", k.uses.pending(), "err", err)
			}
			cancel()
		case <-k.stop:
			return
		}
	}
}
