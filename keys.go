package keyward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// DefaultFlushInterval is how often last-used times are written by default.
const DefaultFlushInterval = time.Second

// flushTimeout bounds one write of last-used times.
const flushTimeout = 10 * time.Second

// Keys is the key lifecycle: it creates, verifies, lists, rotates and
// revokes keys kept in a [store.Store]. It is what the middleware and the
// dashboard use. Create it with [New] and call [Keys.Close] when done, after
// the HTTP server has stopped, to write the last uses.
//
// Keys is safe for concurrent use.
type Keys struct {
	store    store.Store
	format   apikey.Format
	catalog  *scope.Catalog
	clock    func() time.Time
	mono     *monoClock // the default clock, rebased by the writer; nil with WithClock
	interval time.Duration
	logger   *slog.Logger

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
	format   apikey.Format
	catalog  *scope.Catalog
	clock    func() time.Time
	interval time.Duration
	logger   *slog.Logger
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
		format:   apikey.Default,
		catalog:  scope.Default,
		interval: DefaultFlushInterval,
		logger:   slog.Default(),
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	var mono *monoClock
	if c.clock == nil {
		mono = newMonoClock()
		c.clock = mono.Now
	}
	k := &Keys{
		store:    st,
		format:   c.format,
		catalog:  c.catalog,
		clock:    c.clock,
		mono:     mono,
		interval: c.interval,
		logger:   c.logger,
		uses:     newUsage(),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go k.flushLoop()
	return k, nil
}

// Format returns the key format in use.
func (k *Keys) Format() apikey.Format { return k.format }

// Catalog returns the scopes keys may be granted.
func (k *Keys) Catalog() *scope.Catalog { return k.catalog }

// Store returns the store the keys are kept in.
func (k *Keys) Store() store.Store { return k.store }

// now returns the current time in store precision.
func (k *Keys) now() time.Time { return store.Time(k.clock()) }

// nowMicros returns the current time in Unix microseconds: the cheap form
// of now, for the verification path.
func (k *Keys) nowMicros() int64 {
	if k.mono != nil {
		return k.mono.micros()
	}
	return k.clock().UnixMicro()
}

// CreateParams describes a key to create.
type CreateParams struct {
	// Name labels the key, such as "Production server". Surrounding spaces
	// are trimmed; it must then be non-empty, at most apikey.MaxNameLen
	// bytes, without control characters.
	Name string
	// Mode is apikey.Live or apikey.Test.
	Mode apikey.Mode
	// Scopes are the permissions granted, from the catalog. At least one is
	// required: least privilege is explicit.
	Scopes []scope.Scope
	// ExpiresAt, if not zero, is when the key stops working. It must be in
	// the future.
	ExpiresAt time.Time
}

// Create makes a new key and stores its record. It returns the raw key,
// which is never kept and cannot be retrieved again, and the record.
//
// Invalid params return an [*InputError] naming the field. A store failure
// returns an error matching [ErrStoreUnavailable].
func (k *Keys) Create(ctx context.Context, p CreateParams) (apikey.Secret, apikey.Record, error) {
	now := k.now()
	rec, err := k.newRecord(p, now)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	return k.issue(ctx, rec)
}

// newRecord validates p and returns the record of a key yet to be
// generated: everything but the hash and the display prefix.
func (k *Keys) newRecord(p CreateParams, now time.Time) (apikey.Record, error) {
	name := strings.TrimSpace(p.Name)
	if err := apikey.ValidName(name); err != nil {
		return apikey.Record{}, &InputError{Field: "name", Err: err}
	}
	if !p.Mode.Valid() {
		return apikey.Record{}, &InputError{Field: "mode", Err: apikey.ErrInvalidMode}
	}
	if len(p.Scopes) == 0 {
		return apikey.Record{}, &InputError{Field: "scopes", Err: errors.New("at least one scope is required")}
	}
	for _, s := range p.Scopes {
		if _, err := k.catalog.Parse(string(s)); err != nil {
			return apikey.Record{}, &InputError{Field: "scopes", Err: err}
		}
	}
	expires := store.Time(p.ExpiresAt)
	if !expires.IsZero() && !expires.After(now) {
		return apikey.Record{}, &InputError{Field: "expires_at", Err: errors.New("must be in the future")}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return apikey.Record{}, fmt.Errorf("keyward: generating an ID: %w", err)
	}
	return apikey.Record{
		ID:        id,
		Name:      name,
		Mode:      p.Mode,
		Scopes:    scope.NewSet(p.Scopes...),
		CreatedAt: now,
		ExpiresAt: expires,
	}, nil
}

// issue generates the key for rec and stores it.
func (k *Keys) issue(ctx context.Context, rec apikey.Record) (apikey.Secret, apikey.Record, error) {
	sec, err := k.format.Generate(rec.Mode)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	rec.Hash = sec.Hash()
	rec.Prefix = sec.DisplayPrefix()
	if err := k.store.Create(ctx, rec); err != nil {
		return apikey.Secret{}, apikey.Record{}, storeError("create", err)
	}
	return sec, rec, nil
}

// Verify authenticates a raw key and returns its record, with LastUsedAt
// set to now. It is the call on every request.
//
// A key not in the configured format is refused before any store call,
// with an error matching [ErrMalformedKey]. Otherwise Verify looks the key
// up by its SHA-256 hash and refuses it with [ErrUnknownKey], [ErrRevoked]
// or [ErrExpired]; all four match [ErrInvalidKey]. A store failure returns
// an error matching [ErrStoreUnavailable], never an invalid-key error.
//
// The use is recorded in memory and written to the store in the
// background (see [Keys.Flush]); Verify never waits on a write. Against
// the memory store, a successful Verify does not allocate.
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
	now := k.nowMicros()
	switch { // the fields, not the methods: those copy the record
	case !rec.RevokedAt.IsZero():
		return apikey.Record{}, ErrRevoked
	case !rec.ExpiresAt.IsZero() && now >= rec.ExpiresAt.UnixMicro():
		return apikey.Record{}, ErrExpired
	}
	k.uses.record(h, rec.ID, now)
	if rec.LastUsedAt.IsZero() || now > rec.LastUsedAt.UnixMicro() {
		rec.LastUsedAt = time.UnixMicro(now).UTC()
	}
	return rec, nil
}

// Get returns the record of the key with the given ID, or an error matching
// [ErrNotFound].
func (k *Keys) Get(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	rec, err := k.store.Get(ctx, id)
	return rec, storeError("get", err)
}

// List returns a page of records, newest first. If opts.Now is zero, the
// status filter is evaluated at the current time. Invalid options return an
// [*InputError].
func (k *Keys) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	if opts.Now.IsZero() {
		opts.Now = k.now()
	}
	if _, err := opts.Check(); err != nil {
		return store.Page{}, &InputError{Field: "list options", Err: err}
	}
	page, err := k.store.List(ctx, opts)
	return page, storeError("list", err)
}

// Revoke revokes the key with the given ID, now and for good: its next
// verification fails with [ErrRevoked]. It returns the revoked record. A
// key revoked before returns an error matching [ErrAlreadyRevoked] and
// keeps its first revocation time; an unknown ID matches [ErrNotFound].
func (k *Keys) Revoke(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	rec, err := k.store.Revoke(ctx, id, k.now())
	return rec, storeError("revoke", err)
}

// Rotate replaces a key, as a "roll key" button does: it creates a new key
// with the same name, mode and scopes (and no expiry), and makes the old key
// expire after overlap, so both work during the cutover. An overlap of 0
// ends the old key at once. If the old key already expires sooner, its
// expiry is kept. It returns the new raw key and its record.
//
// A revoked key cannot be rotated ([ErrAlreadyRevoked]). If the old key's
// expiry cannot be set, the new key is revoked again and the error returned,
// so a failed rotation leaves things as they were.
func (k *Keys) Rotate(ctx context.Context, id uuid.UUID, overlap time.Duration) (apikey.Secret, apikey.Record, error) {
	if overlap < 0 {
		return apikey.Secret{}, apikey.Record{}, &InputError{Field: "overlap", Err: errors.New("must not be negative")}
	}
	old, err := k.store.Get(ctx, id)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, storeError("rotate", err)
	}
	if old.Revoked() {
		return apikey.Secret{}, apikey.Record{}, ErrAlreadyRevoked
	}
	now := k.now()
	rec, err := k.newRecord(CreateParams{Name: old.Name, Mode: old.Mode, Scopes: old.Scopes.Scopes()}, now)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	sec, rec, err := k.issue(ctx, rec)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	if _, err := k.store.SetExpiry(ctx, id, now.Add(overlap)); err != nil {
		// Undo with a fresh context: ctx may be what failed.
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if _, uerr := k.store.Revoke(undo, rec.ID, now); uerr != nil {
			k.logger.Error("keyward: rotation failed and its new key could not be revoked",
				"old_key", old, "new_key", rec, "err", uerr)
		}
		return apikey.Secret{}, apikey.Record{}, storeError("rotate", err)
	}
	return sec, rec, nil
}
