package keyward

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// DefaultOwner is the owner to use in an application with a single
// account: keys.Owner(keyward.DefaultOwner). It is [apikey.DefaultOwner].
const DefaultOwner = apikey.DefaultOwner

// An Owner manages the keys of one account: every call through it acts on
// that owner's keys only. A key of another owner is, to it, a key that
// does not exist: Get, Update, Rotate and Revoke of its ID return
// [ErrNotFound], exactly as for an unknown ID, so no answer reveals that
// the ID exists elsewhere. Get one from [Keys.Owner].
//
// Owner is a small value, safe for concurrent use; making one costs
// nothing and checks nothing: an invalid owner ID is refused by each call
// with an [*InputError] for the field "owner".
type Owner struct {
	k  *Keys
	id string
}

// Owner returns the manager of the keys of the account id, the
// application's own opaque account ID, such as "acct_123" (see
// [apikey.ValidOwner]). Applications with a single account use
// [DefaultOwner].
//
// Verification needs no owner: [Keys.Verify] finds any key, and its record
// names its owner.
func (k *Keys) Owner(id string) Owner { return Owner{k: k, id: id} }

// ID returns the owner's account ID.
func (o Owner) ID() string { return o.id }

// Keys returns the lifecycle the owner's keys are managed by.
func (o Owner) Keys() *Keys { return o.k }

// checkChange refuses an invalid owner ID, and an invalid actor in the
// context of a change.
func (o Owner) checkChange(ctx context.Context) error {
	if err := o.check(); err != nil {
		return err
	}
	return checkActor(ctx)
}

// check refuses an invalid owner ID.
func (o Owner) check() error {
	if o.k == nil {
		return errors.New("keyward: a zero Owner; use Keys.Owner")
	}
	if err := apikey.ValidOwner(o.id); err != nil {
		return &InputError{Field: "owner", Err: err}
	}
	return nil
}

// MaxIdempotencyKeyLen is the longest idempotency key accepted, in bytes.
const MaxIdempotencyKeyLen = 255

// CreateParams describes a key to create.
type CreateParams struct {
	// Name labels the key, such as "Production server". Surrounding spaces
	// are trimmed; it must then pass [apikey.ValidName].
	Name string
	// Mode is apikey.Live or apikey.Test.
	Mode apikey.Mode
	// Scopes are the permissions granted, from the catalog, such as
	// scope.NewSet(scope.SessionsRead, scope.SessionsWrite). At least one
	// is required: least privilege is explicit.
	Scopes scope.Set
	// Metadata is the application's own key-value pairs on the key, within
	// the limits of [apikey.Metadata]; nil for none.
	Metadata map[string]string
	// ExpiresAt, if not zero, is when the key stops working. It must be in
	// the future.
	ExpiresAt time.Time
	// IdempotencyKey, if not empty, makes the create safe to repeat, as
	// Stripe's Idempotency-Key header does: a repeat with the same key and
	// the same parameters creates nothing and returns [ErrAlreadyCreated]
	// with the key the first call created, whose raw key is never shown
	// again; a repeat with other parameters returns an [*InputError]
	// matching [ErrIdempotencyConflict]. Idempotency keys are unique per
	// owner and never expire. It is 1 to [MaxIdempotencyKeyLen] printable
	// ASCII characters, such as a UUID the client generated.
	IdempotencyKey string
	// Policy, if not nil, limits the key's rate, quota and client networks
	// (see [apikey.Policy]); enforced by the middleware. It must pass
	// [apikey.Policy.Validate].
	Policy *apikey.Policy
	// Canary makes the key a tripwire (see [Keys.Verify]): it never
	// authorizes anything, and every use is recorded as a trip and reported
	// to the hook of [WithCanaryHook]. Plant it where a thief would look:
	// a configuration file, a CI secret, a dormant repository. Its scopes
	// are decoration, but required like any key's.
	Canary bool
}

// Create makes a new key of the owner and stores its record. It returns the
// raw key, which is never kept and cannot be retrieved again, and the
// record.
//
// Invalid params return an [*InputError] naming the field. A repeat of an
// idempotent create (see [CreateParams.IdempotencyKey]) returns a zero
// Secret, the record of the key the first call created, and an error
// matching [ErrAlreadyCreated]. A store failure returns an error matching
// [ErrStoreUnavailable].
func (o Owner) Create(ctx context.Context, p CreateParams) (apikey.Secret, apikey.Record, error) {
	if err := o.checkChange(ctx); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	k := o.k
	now := k.now()
	rec, err := k.newRecord(o.id, p.Name, p.Mode, p.Scopes, now)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	if rec.Metadata, err = newMetadata(p.Metadata); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	if rec.ExpiresAt, err = k.expiry(p.Mode, p.ExpiresAt, time.Time{}, now); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	if rec.Policy, err = checkPolicy(p.Policy); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	rec.Canary = p.Canary
	idem, err := idempotency(p.IdempotencyKey, rec)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	sec, err := k.generate(&rec)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	stored, err := k.store.Create(ctx, rec, idem)
	switch {
	case errors.Is(err, store.ErrAlreadyCreated):
		return apikey.Secret{}, stored, ErrAlreadyCreated
	case errors.Is(err, store.ErrIdempotencyConflict):
		return apikey.Secret{}, apikey.Record{}, &InputError{Field: "idempotency_key",
			Err: &reason{"was used before to create a key with other parameters", ErrIdempotencyConflict}}
	case err != nil:
		return apikey.Secret{}, apikey.Record{}, storeError("create", err)
	}
	k.emit(ctx, audit.CreatedEvent(stored, audit.ActorFrom(ctx)))
	return sec, stored, nil
}

// newRecord validates the parameters every new key has and returns the
// record of a key yet to be generated: everything but the hash and the
// display prefix.
func (k *Keys) newRecord(owner, name string, mode apikey.Mode, scopes scope.Set, now time.Time) (apikey.Record, error) {
	name, err := validName(name)
	if err != nil {
		return apikey.Record{}, err
	}
	if !mode.Valid() {
		return apikey.Record{}, &InputError{Field: "mode", Err: apikey.ErrInvalidMode}
	}
	set, err := k.scopeSet(scopes)
	if err != nil {
		return apikey.Record{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return apikey.Record{}, fmt.Errorf("keyward: generating an ID: %w", err)
	}
	return apikey.Record{ID: id, Owner: owner, Name: name, Mode: mode, Scopes: set, CreatedAt: now}, nil
}

// validName trims a name and checks it.
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if err := apikey.ValidName(name); err != nil {
		return "", &InputError{Field: "name", Err: err}
	}
	return name, nil
}

// scopeSet checks scopes against the catalog: at least one, each known.
func (k *Keys) scopeSet(scopes scope.Set) (scope.Set, error) {
	if scopes.IsEmpty() {
		return scope.Set{}, &InputError{Field: "scopes", Err: errors.New("at least one scope is required")}
	}
	for _, s := range scopes.Scopes() {
		if _, err := k.catalog.Parse(string(s)); err != nil {
			return scope.Set{}, &InputError{Field: "scopes", Err: err}
		}
	}
	return scopes, nil
}

// newMetadata checks metadata.
func newMetadata(m map[string]string) (apikey.Metadata, error) {
	md, err := apikey.NewMetadata(m)
	if err != nil {
		return apikey.Metadata{}, &InputError{Field: "metadata", Err: err}
	}
	return md, nil
}

// checkPolicy validates a policy given to Create or Update, and returns
// a copy that the caller cannot change afterwards; nil for none.
func checkPolicy(p *apikey.Policy) (*apikey.Policy, error) {
	if err := p.Validate(); err != nil {
		return nil, &InputError{Field: "policy", Err: err}
	}
	return p.Clone(), nil
}

// expiry returns the expiry of a new key of mode m: requested, else
// inherited (a rotation's old key's), under the lifetime rules (see
// [WithMaxLifetime] and [WithRequiredExpiry]).
func (k *Keys) expiry(m apikey.Mode, requested, inherited, now time.Time) (time.Time, error) {
	t, err := k.futureExpiry(requested, now)
	if err != nil {
		return time.Time{}, err
	}
	if t.IsZero() {
		t = store.Time(inherited)
	}
	if t.IsZero() && k.requireExpiry[m] {
		return time.Time{}, &InputError{Field: "expires_at", Err: fmt.Errorf("is required for %s keys", m)}
	}
	if k.maxLifetime > 0 {
		limit := store.Time(now.Add(k.maxLifetime))
		switch {
		case t.IsZero() || t.After(limit) && requested.IsZero():
			t = limit // capped: no expiry given, or one inherited from before the rule
		case t.After(limit):
			return time.Time{}, &InputError{Field: "expires_at",
				Err: fmt.Errorf("must be at most %s from now", clock.ShortDuration(k.maxLifetime))}
		}
	}
	return t, nil
}

// futureExpiry checks an expiry given by a caller: zero (none), or after
// now. It returns it in store precision.
func (k *Keys) futureExpiry(t, now time.Time) (time.Time, error) {
	t = store.Time(t)
	if !t.IsZero() && !t.After(now) {
		return time.Time{}, &InputError{Field: "expires_at", Err: errors.New("must be in the future")}
	}
	return t, nil
}

// generate makes the key of rec and sets its hash and display prefix.
func (k *Keys) generate(rec *apikey.Record) (apikey.Secret, error) {
	sec, err := k.format.Generate(rec.Mode)
	if err != nil {
		return apikey.Secret{}, err
	}
	rec.Hash = sec.Hash()
	rec.Prefix = sec.DisplayPrefix()
	return sec, nil
}

// idempotency returns what the store keeps of an idempotency key and of the
// request it came with: digests, so that what a client sends takes a fixed
// space, and a repeat with other parameters can be told apart.
func idempotency(key string, rec apikey.Record) (store.Idempotency, error) {
	if key == "" {
		return store.Idempotency{}, nil
	}
	if len(key) > MaxIdempotencyKeyLen {
		return store.Idempotency{}, &InputError{Field: "idempotency_key",
			Err: fmt.Errorf("is longer than %d bytes", MaxIdempotencyKeyLen)}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return store.Idempotency{}, &InputError{Field: "idempotency_key",
				Err: errors.New("may hold only printable ASCII characters other than space")}
		}
	}
	var idem store.Idempotency
	h := sha256.New()
	field(h, "keyward idempotency key v1")
	field(h, key)
	h.Sum(idem.Key[:0])

	// The request: every parameter that shapes the key, unambiguously.
	h.Reset()
	field(h, "keyward create request v1")
	field(h, rec.Name)
	field(h, rec.Mode.String())
	field(h, rec.Scopes.String())
	for k, v := range rec.Metadata.All() {
		field(h, k)
		field(h, v)
	}
	field(h, "expires")
	binary.Write(h, binary.BigEndian, rec.ExpiresAt.UnixMicro())
	if rec.Canary { // after the rest, so digests of plain keys are as before
		field(h, "canary")
	}
	if rec.Policy != nil {
		b, _ := json.Marshal(rec.Policy) // of validated values: cannot fail
		field(h, "policy")
		field(h, string(b))
	}
	h.Sum(idem.Request[:0])
	return idem, nil
}

// field writes s to h, preceded by its length, so that no two sequences of
// fields write the same bytes.
func field(h hash.Hash, s string) {
	binary.Write(h, binary.BigEndian, uint64(len(s)))
	h.Write([]byte(s))
}

// Get returns the record of the owner's key with the given ID, or an error
// matching [ErrNotFound].
func (o Owner) Get(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	if err := o.check(); err != nil {
		return apikey.Record{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	rec, err := o.k.store.Get(ctx, o.id, id)
	return rec, storeError("get", err)
}

// ListOptions selects and pages the keys [Owner.List] returns. The zero
// value lists the first [store.DefaultLimit] keys of any mode and status.
type ListOptions struct {
	// Limit is the page size: 0 means 100, more than 1000 means 1000.
	Limit int
	// Cursor is Page.Next of the previous page, or empty for the first page.
	Cursor string
	// Mode, if not zero, lists only keys of that mode.
	Mode apikey.Mode
	// Status, if not zero, lists only keys with that status now.
	Status apikey.Status
}

// A Page is one page of an owner's keys, newest first.
type Page struct {
	// Keys are newest first. A record's status depends on the time it
	// is judged at, so a record holds none: a JSON API serves each as
	// Record.At(keys.Now()), with its status, as the dashboard and the
	// keyward command do.
	Keys []apikey.Record `json:"keys"`
	// Next, passed as ListOptions.Cursor, returns the following page; it is
	// empty on the last page.
	Next string `json:"next_cursor,omitempty"`
}

// List returns a page of the owner's keys, newest first: by creation time,
// then by ID. Walked page by page, it returns every key that existed when it
// began exactly once, even while keys are created. Invalid options return
// an [*InputError] naming the option: "limit", "cursor", "mode" or
// "status".
func (o Owner) List(ctx context.Context, opts ListOptions) (Page, error) {
	if err := o.check(); err != nil {
		return Page{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	switch {
	case opts.Limit < 0:
		return Page{}, &InputError{Field: "limit", Err: errors.New("must not be negative")}
	case opts.Mode != 0 && !opts.Mode.Valid():
		return Page{}, &InputError{Field: "mode", Err: apikey.ErrInvalidMode}
	case opts.Status != 0 && !opts.Status.Valid():
		return Page{}, &InputError{Field: "status", Err: apikey.ErrInvalidStatus}
	}
	page, err := o.k.store.List(ctx, o.id, store.ListOptions{
		Limit:  opts.Limit,
		Cursor: opts.Cursor,
		Mode:   opts.Mode,
		Status: opts.Status,
		Now:    o.k.now(),
	})
	if errors.Is(err, store.ErrInvalidCursor) {
		return Page{}, &InputError{Field: "cursor", Err: errors.New("is not a cursor of this list")}
	}
	if err != nil {
		return Page{}, storeError("list", err)
	}
	return Page{Keys: page.Records, Next: page.Next}, nil
}

// UpdateParams says what [Owner.Update] changes; its zero value changes
// nothing. A key's owner, mode, hash and creation time never change.
type UpdateParams struct {
	// Name, if not empty, is the new name (trimmed, as at creation).
	Name string
	// Scopes, if not empty, are the new scopes, all of them held by the
	// key already; the empty set (the zero Set) leaves the scopes
	// unchanged, so a key's scopes can never be emptied. Scopes only
	// narrow: a key that leaks never gains power; to grant more, create a
	// new key.
	Scopes scope.Set
	// Metadata, if not nil, replaces the key's metadata; an empty, non-nil
	// map clears it.
	Metadata map[string]string
	// ExpiresAt, if not zero, is an earlier expiry for the key: in the
	// future, and before the key's current expiry if it has one. An
	// expiry only ever moves earlier.
	ExpiresAt time.Time
	// Policy, if not nil, replaces the key's policy; a zero Policy
	// removes it. It must pass [apikey.Policy.Validate].
	Policy *apikey.Policy
}

// Update changes the owner's key with the given ID, all at once or not at
// all, and returns the updated record. The change is visible to
// [Keys.Verify] at once in this process, and in others within the bound of
// their verification cache (see package [github.com/keyward/keyward/store/cache]).
//
// Invalid params return an [*InputError] naming the field; scopes the key
// does not hold are refused with one matching [ErrWidening]. A revoked key
// cannot change ([ErrAlreadyRevoked]); an unknown ID, or another owner's,
// matches [ErrNotFound].
func (o Owner) Update(ctx context.Context, id uuid.UUID, p UpdateParams) (apikey.Record, error) {
	if err := o.checkChange(ctx); err != nil {
		return apikey.Record{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	k := o.k
	var u store.Update
	var err error
	if p.Name != "" {
		if u.Name, err = validName(p.Name); err != nil {
			return apikey.Record{}, err
		}
	}
	if !p.Scopes.IsEmpty() {
		if u.Scopes, err = k.scopeSet(p.Scopes); err != nil {
			return apikey.Record{}, err
		}
	}
	if p.Metadata != nil {
		md, err := newMetadata(p.Metadata)
		if err != nil {
			return apikey.Record{}, err
		}
		u.Metadata = &md
	}
	if p.Policy != nil {
		if u.Policy, err = checkPolicy(p.Policy); err != nil {
			return apikey.Record{}, err
		}
		if u.Policy == nil { // Clone of a non-nil policy is not nil
			u.Policy = &apikey.Policy{}
		}
	}
	now := k.now()
	if u.ExpiresAt, err = k.futureExpiry(p.ExpiresAt, now); err != nil {
		return apikey.Record{}, err
	}
	u.At = now
	// Read the key first, to refuse with a clear message what the store
	// would refuse or ignore; the store applies the same rules atomically.
	cur, err := k.store.Get(ctx, o.id, id)
	if err != nil {
		return apikey.Record{}, storeError("update", err)
	}
	if cur.Revoked() {
		return apikey.Record{}, ErrAlreadyRevoked
	}
	if missing := cur.Scopes.Missing(u.Scopes.Scopes()...); len(missing) > 0 {
		return apikey.Record{}, widening(missing)
	}
	if !u.ExpiresAt.IsZero() && !cur.ExpiresAt.IsZero() && u.ExpiresAt.After(cur.ExpiresAt) {
		return apikey.Record{}, &InputError{Field: "expires_at", Err: fmt.Errorf(
			"can only move earlier than the key's expiry, %s; to extend a key's life, create a new key",
			cur.ExpiresAt.Format(time.RFC3339))}
	}
	rec, err := k.store.Update(ctx, o.id, id, u)
	if errors.Is(err, store.ErrWidening) { // narrowed meanwhile
		return apikey.Record{}, widening(nil)
	}
	if err != nil {
		return apikey.Record{}, storeError("update", err)
	}
	if e, changed := audit.UpdatedEvent(cur, rec, now, audit.ActorFrom(ctx)); changed {
		k.emit(ctx, e)
	}
	return rec, nil
}

// widening is the refusal of scopes a key does not hold.
func widening(missing []scope.Scope) error {
	msg := "can only be narrowed; create a new key to grant more"
	if len(missing) > 0 {
		msg = fmt.Sprintf("the key does not hold %s, and scopes can only be narrowed; create a new key to grant more",
			scope.NewSet(missing...))
	}
	return &InputError{Field: "scopes", Err: &reason{msg, ErrWidening}}
}

// A reason is the text of an InputError that wraps a sentinel of package
// store, whose own text ("store: ...") is not for the caller's user.
type reason struct {
	msg string
	err error
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.err }

// RotateParams says how [Owner.Rotate] replaces a key.
type RotateParams struct {
	// Overlap is how long the old key keeps working beside its
	// replacement, so that a deployment can switch without downtime: 0
	// ends it at once. It is at most [Keys.MaxOverlap] (7 days unless
	// [WithMaxOverlap] says otherwise). If the old key expires sooner, it
	// keeps its expiry.
	Overlap time.Duration
	// ExpiresAt, if not zero, is the replacement's expiry, in the future;
	// otherwise the replacement keeps the old key's expiry (none if it has
	// none), so rotation never extends a key's life unasked.
	ExpiresAt time.Time
}

// Rotate replaces the owner's key with the given ID, as a "roll key" button
// does: it creates a new key with the same name, mode, scopes and metadata,
// and makes the old key expire after the overlap, in one atomic step. The
// records link the two: the new key's Replaces and the old key's
// ReplacedBy. It returns the new raw key and its record.
//
// Only an active key can be rotated: a revoked key returns
// [ErrAlreadyRevoked], an expired one [ErrKeyExpired], and a key already
// being replaced returns [ErrReplaced] until its replacement is revoked
// (say, because its raw key was lost), so that a key never has two live
// replacements. An unknown ID, or another owner's, matches [ErrNotFound];
// invalid params return an [*InputError]. On any error nothing changes.
func (o Owner) Rotate(ctx context.Context, id uuid.UUID, p RotateParams) (apikey.Secret, apikey.Record, error) {
	if err := o.checkChange(ctx); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	k := o.k
	switch {
	case p.Overlap < 0:
		return apikey.Secret{}, apikey.Record{}, &InputError{Field: "overlap", Err: errors.New("must not be negative")}
	case p.Overlap > k.maxOverlap:
		return apikey.Secret{}, apikey.Record{}, &InputError{Field: "overlap",
			Err: fmt.Errorf("must be at most %s", clock.ShortDuration(k.maxOverlap))}
	}
	now := k.now()
	if _, err := k.futureExpiry(p.ExpiresAt, now); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	old, err := k.store.Get(ctx, o.id, id)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, storeError("rotate", err)
	}
	if old.Canary {
		return apikey.Secret{}, apikey.Record{}, ErrCanaryRotation
	}
	// The store checks again, atomically; this read only gives the
	// replacement its name, mode, scopes and metadata.
	next, err := k.newRecord(o.id, old.Name, old.Mode, old.Scopes, now)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	next.Metadata = old.Metadata
	next.Policy = old.Policy
	next.Replaces = old.ID
	if next.ExpiresAt, err = k.expiry(old.Mode, p.ExpiresAt, old.ExpiresAt, now); err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	sec, err := k.generate(&next)
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, err
	}
	linked, created, err := k.store.Rotate(ctx, o.id, id, next, now.Add(p.Overlap))
	if errors.Is(err, store.ErrWidening) { // narrowed meanwhile: try again
		return apikey.Secret{}, apikey.Record{}, fmt.Errorf("keyward: the key's scopes changed during the rotation; rotate again: %w", err)
	}
	if err != nil {
		return apikey.Secret{}, apikey.Record{}, storeError("rotate", err)
	}
	actor := audit.ActorFrom(ctx)
	k.emit(ctx, audit.CreatedEvent(created, actor), audit.RotatedEvent(old, linked, created.CreatedAt, actor))
	return sec, created, nil
}

// RevokeParams says why [Owner.Revoke] or [Owner.RevokeAll] revokes.
type RevokeParams struct {
	// Reason, if not empty, is kept on the record (RevokedReason) for
	// audit, such as "laptop stolen"; surrounding spaces are trimmed, and
	// it must then pass [apikey.ValidReason].
	Reason string
}

// revocation checks p and returns the store's revocation at now.
func (k *Keys) revocation(p RevokeParams) (store.Revocation, error) {
	reason := strings.TrimSpace(p.Reason)
	if err := apikey.ValidReason(reason); err != nil {
		return store.Revocation{}, &InputError{Field: "reason", Err: err}
	}
	return store.Revocation{At: k.now(), Reason: reason}, nil
}

// Revoke revokes the owner's key with the given ID, now and for good: its
// next verification fails with [ErrRevoked], in this process at once and in
// others within the bound of their verification cache. It returns the
// revoked record, which keeps p.Reason. A key revoked before returns an
// error matching [ErrAlreadyRevoked] and keeps its first revocation time
// and reason; an unknown ID, or another owner's, matches [ErrNotFound].
func (o Owner) Revoke(ctx context.Context, id uuid.UUID, p RevokeParams) (apikey.Record, error) {
	if err := o.checkChange(ctx); err != nil {
		return apikey.Record{}, err
	}
	r, err := o.k.revocation(p)
	if err != nil {
		return apikey.Record{}, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	rec, err := o.k.store.Revoke(ctx, o.id, id, r)
	if err != nil {
		return apikey.Record{}, storeError("revoke", err)
	}
	o.k.emit(ctx, audit.RevokedEvent(audit.Revoked, rec, audit.ActorFrom(ctx)))
	return rec, nil
}

// RevokeAll revokes every active key of the owner in one atomic step, for
// an account that closes or is compromised, and returns the revoked
// records, newest first. Like [Owner.Revoke], it is final, keeps p.Reason
// on every record, and reaches other processes within the bound of their
// verification cache. Keys already revoked or expired are left as they
// are. A key created while RevokeAll runs may escape it: stop creating
// keys for the account first.
func (o Owner) RevokeAll(ctx context.Context, p RevokeParams) ([]apikey.Record, error) {
	if err := o.checkChange(ctx); err != nil {
		return nil, err
	}
	r, err := o.k.revocation(p)
	if err != nil {
		return nil, err
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	recs, err := o.k.store.RevokeAll(ctx, o.id, r)
	if err != nil {
		return nil, storeError("revoke all", err)
	}
	actor := audit.ActorFrom(ctx)
	for _, rec := range recs {
		o.k.emit(ctx, audit.RevokedEvent(audit.RevokedAll, rec, actor))
	}
	return recs, nil
}

// Trips returns the uses of the owner's canary key with the given ID,
// newest first: at most limit (the store keeps the newest
// [store.MaxTrips]; 0 means all it keeps). A key that is not a canary has
// none. An unknown ID, or another owner's, matches [ErrNotFound].
func (o Owner) Trips(ctx context.Context, id uuid.UUID, limit int) ([]apikey.Trip, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, &InputError{Field: "limit", Err: errors.New("must not be negative")}
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	trips, err := o.k.store.Trips(ctx, o.id, id, limit)
	return trips, storeError("list trips", err)
}
