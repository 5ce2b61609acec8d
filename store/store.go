// Package store defines the Store interface that keeps API key records, its
// contract, and the sentinel errors every implementation returns.
//
// Implementations: [github.com/keyward/keyward/store/memory] (in-process, for
// tests and single-instance servers) and
// [github.com/keyward/keyward/store/postgres] (PostgreSQL through
// database/sql). Any other store proves it keeps the contract by passing the
// conformance suite, [github.com/keyward/keyward/store/storetest].
//
// Stores keep records, each under its owner, and the rules that must hold
// however many processes change them at once: revocation is final, scopes
// only shrink, an expiry only moves earlier, a key is replaced by one key
// at a time. Everything else (generating keys, validating names and scopes
// against a catalog, refusing revoked or expired keys at verification,
// batching last-used writes) is the work of the lifecycle type in package
// keyward, which is what applications use.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/scope"
)

// Sentinel errors. Stores return them, possibly wrapped; test with
// [errors.Is]. Any other error from a store means the store could not answer
// (it is down, timed out, or the context ended) and callers must fail closed.
var (
	// ErrNotFound: no key has the given ID or hash, or the key with that ID
	// belongs to another owner: the two are indistinguishable.
	ErrNotFound = errors.New("store: key not found")
	// ErrDuplicate: a key with the same ID or the same hash already exists.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrAlreadyRevoked: the key was revoked before; its revocation time
	// is unchanged.
	ErrAlreadyRevoked = errors.New("store: key already revoked")
	// ErrKeyExpired: the key has expired, so it cannot be rotated.
	ErrKeyExpired = errors.New("store: key expired")
	// ErrReplaced: the key is already being replaced by an active key, so
	// it cannot be rotated again.
	ErrReplaced = errors.New("store: key already being replaced")
	// ErrWidening: a change would give a key a scope it does not hold.
	// Scopes only ever shrink.
	ErrWidening = errors.New("store: scopes can only be narrowed")
	// ErrAlreadyCreated: the owner already has a key created with this
	// idempotency key and the same request; the store returns that key's
	// record and creates nothing.
	ErrAlreadyCreated = errors.New("store: key already created with this idempotency key")
	// ErrIdempotencyConflict: the owner already has a key created with
	// this idempotency key, for a different request.
	ErrIdempotencyConflict = errors.New("store: idempotency key already used for a different request")
	// ErrInvalidCursor: a List cursor was not produced by this store.
	ErrInvalidCursor = errors.New("store: invalid cursor")
	// ErrWouldBlock: a [LocalLookup] cannot answer from memory; ask
	// [Store.GetByHash].
	ErrWouldBlock = errors.New("store: the answer is not in memory")
	// ErrAlreadyExposed: the key was already marked exposed (and revoked,
	// if the call asked for it): nothing changed.
	ErrAlreadyExposed = errors.New("store: key already reported exposed")
)

// MaxTrips is the number of a canary key's trips a store keeps at least:
// the newest. It may drop older ones.
const MaxTrips = 100

// Page sizes for [Store.List].
const (
	DefaultLimit = 100  // used when ListOptions.Limit is 0
	MaxLimit     = 1000 // larger limits are lowered to this
)

// Store keeps API key records. The doc comment of each method is its
// contract; [github.com/keyward/keyward/store/storetest.Run] checks every
// sentence of it.
//
// Every key belongs to an owner ([apikey.Record.Owner]), and every method
// but the verification lookup and the recording of uses names the owner it
// acts for: a key of another owner is, to it, a key that does not exist
// ([ErrNotFound]), whatever the method, so that no answer reveals that an
// ID exists elsewhere.
//
// All methods are safe for concurrent use, take a context first and return
// promptly with an error wrapping ctx.Err() once the context is done.
//
// Times are kept to the microsecond (what PostgreSQL keeps), in UTC: a store
// truncates times it is given and returns them in UTC. Records returned are
// copies; changing one changes nothing in the store.
//
// Every change of a record (Create, Update, Rotate, Revoke, RevokeAll,
// Expose) appends its entry to the owner's audit trail in the same atomic
// step as the change: a change that fails writes no entry, and an entry
// that cannot be written fails the change. The entry's event is the one
// package audit builds for the change ([audit.CreatedEvent],
// [audit.UpdatedEvent], [audit.RotatedEvent], [audit.RevokedEvent],
// [audit.ExposedEvent]), with the actor [audit.ActorFrom] finds in the
// call's context; an actor [audit.Actor.Validate] refuses fails the
// change with an error wrapping [audit.ErrInvalidActor]. Entries chain per
// owner (see [audit.Next]): the first has Seq 1, each next one Seq+1 and
// the hash of the one before. A call that changes nothing (an Update with
// nothing to change, an Expose returning [ErrAlreadyExposed], a RevokeAll
// with no active key) writes no entry. Entries are never changed nor
// removed.
type Store interface {
	// Create adds a new record. The record must pass
	// [apikey.Record.Validate]; otherwise Create returns an error wrapping
	// [apikey.ErrInvalidRecord]. If a record with the same ID or the same
	// hash exists, Create returns [ErrDuplicate] and changes nothing.
	// On success it returns the record as stored.
	//
	// If idem is not zero and the record's owner already has a key created
	// with the same idem.Key, Create stores nothing and returns that key's
	// record with [ErrAlreadyCreated] if it was created with the same
	// idem.Request, or [ErrIdempotencyConflict] (and no record) if not.
	// Idempotency keys of different owners never meet. Of concurrent
	// creates with one idempotency key, exactly one creates its key.
	Create(ctx context.Context, rec apikey.Record, idem Idempotency) (apikey.Record, error)

	// Get returns the record with the given ID and owner, or [ErrNotFound].
	Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error)

	// GetByHash returns the record whose hash is h, or [ErrNotFound], of
	// any owner. It is the verification lookup: it returns revoked and
	// expired records too, and the caller decides. It must not write
	// anything.
	GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error)

	// List returns the owner's records newest first: by CreatedAt
	// descending, then by ID descending for equal times. It returns at most
	// opts.Limit records ([DefaultLimit] if 0, at most [MaxLimit]) that match
	// the filters, and Page.Next, a cursor for the following page, which is
	// empty on the last page. A listing walked page by page returns every
	// record of the owner that existed when it began exactly once, even
	// while records are created; records created meanwhile appear at most
	// once. A cursor from elsewhere returns [ErrInvalidCursor]; a negative
	// limit or an invalid filter value returns an error.
	List(ctx context.Context, owner string, opts ListOptions) (Page, error)

	// Update changes the fields of the key with the given ID and owner
	// that u sets, all at once or none, and returns the updated record. The
	// new scopes must be a non-empty subset of the key's scopes
	// ([ErrWidening] otherwise); an expiry only moves earlier (a later one
	// leaves the expiry unchanged). A revoked key cannot change
	// ([ErrAlreadyRevoked]); an unknown ID returns [ErrNotFound]. Invalid
	// values return an error wrapping [apikey.ErrInvalidRecord]. Nothing
	// else of the record changes.
	Update(ctx context.Context, owner string, id uuid.UUID, u Update) (apikey.Record, error)

	// Rotate stores next, the replacement of the key with the given ID and
	// owner, and in the same atomic step links the two (next.Replaces and
	// the old key's ReplacedBy) and makes the old key expire at overlapEnd,
	// unless it already expires sooner. next must pass
	// [apikey.Record.Validate], belong to the owner and name the old key in
	// Replaces; its scopes must be a subset of the old key's ([ErrWidening]
	// otherwise), and a zero next.ExpiresAt gives it the old key's expiry.
	// It returns the old record and next as stored.
	//
	// The old key must be active at next.CreatedAt: a revoked key returns
	// [ErrAlreadyRevoked], an expired one [ErrKeyExpired], and a key
	// already replaced by a key that is not revoked returns [ErrReplaced];
	// an unknown ID returns [ErrNotFound]. On any error nothing changes. Of
	// concurrent rotations of one key, at most one succeeds.
	Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (old, created apikey.Record, err error)

	// Revoke sets the revocation time of the key with the given ID and
	// owner to r.At, and its revocation reason to r.Reason, and returns the
	// updated record. Revocation is final: if the key is already revoked,
	// Revoke returns [ErrAlreadyRevoked] and keeps the first revocation
	// time and reason; no method ever clears them. An unknown ID returns
	// [ErrNotFound]. A zero r.At is refused with an error, and a reason
	// [apikey.ValidReason] refuses with an error wrapping
	// [apikey.ErrInvalidRecord].
	Revoke(ctx context.Context, owner string, id uuid.UUID, r Revocation) (apikey.Record, error)

	// RevokeAll revokes, in one atomic step, every key of the owner that is
	// active at time r.At (neither revoked nor expired), setting its
	// revocation time and reason from r, and returns the revoked records in
	// List order. Keys of other owners are untouched. An owner with no
	// active key gets an empty result. A zero r.At or an invalid reason is
	// refused as Revoke refuses them.
	RevokeAll(ctx context.Context, owner string, r Revocation) ([]apikey.Record, error)

	// Expose marks the key with the given ID and owner exposed, in one
	// atomic step: it sets the key's Exposure to e unless the key has one
	// already (the first report stays), and, if revoke is true and the key
	// is not revoked, revokes it at e.At with the reason
	// [apikey.ReasonExposed]. It applies to revoked and expired keys too.
	// It returns the updated record; if nothing changed, it returns the
	// record with [ErrAlreadyExposed]. An exposure
	// [apikey.Exposure.Validate] refuses returns an error wrapping
	// [apikey.ErrInvalidRecord]; an unknown ID returns [ErrNotFound].
	// Of concurrent calls for one key, exactly one sets the exposure.
	Expose(ctx context.Context, owner string, id uuid.UUID, e apikey.Exposure, revoke bool) (apikey.Record, error)

	// RecordTrip stores one use of a canary key: t.KeyID must be a key of
	// t.Owner ([ErrNotFound] otherwise), and t.At not zero. The store keeps
	// the text fields as given (the lifecycle cleans them with
	// [apikey.Trip.Clean]) and keeps at least the newest [MaxTrips] trips
	// of each key.
	RecordTrip(ctx context.Context, t apikey.Trip) error

	// Trips returns the trips of the owner's key with the given ID, newest
	// first (by At, then in the reverse order they were recorded), at most
	// limit of them (all that are kept if limit is 0 or more than
	// [MaxTrips]). A key without trips, or not a canary, gets an empty
	// result; an unknown ID returns [ErrNotFound].
	Trips(ctx context.Context, owner string, id uuid.UUID, limit int) ([]apikey.Trip, error)

	// RecordUses records uses of keys: it sets the last-used time of each
	// listed key to the later of its current value and Use.At (unless At is
	// zero), so a last-used time never moves backwards, whatever the order
	// of calls, and adds Use.Counts to the key's usage in the hour
	// Use.Hour. It applies to revoked and expired keys too (a use may be
	// recorded after the key was revoked). Unknown IDs are ignored. If an
	// ID is listed several times, the latest time wins and the counts add
	// up. An empty list does nothing. It writes all the uses at once or
	// none: a failed call may be retried with the same uses, and a
	// successful one must not be repeated (the counts would add up twice).
	// The slice is the caller's, who reuses it: the store must not keep
	// it after returning.
	RecordUses(ctx context.Context, uses []Use) error

	// Audit returns a page of the owner's audit trail, newest first (by
	// Seq descending), of one key if opts.KeyID is set: at most
	// opts.Limit entries ([DefaultLimit] if 0, at most [MaxLimit]), and
	// Page.Next, the cursor of the following page, empty on the last
	// page. A cursor from elsewhere returns [ErrInvalidCursor]; a negative
	// limit, an error. A key ID that is not the owner's has no entries.
	Audit(ctx context.Context, owner string, opts AuditOptions) (AuditPage, error)

	// AuditChain returns the owner's entries with Seq above after, oldest
	// first, at most limit of them ([DefaultLimit] if 0, at most
	// [MaxLimit]): the walk of the chain that [audit.Checker] checks. It
	// returns the entries as stored, with their Prev and Hash, whatever
	// was done to them.
	AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error)

	// Usage returns the counts of the owner's keys listed in q.Keys (at
	// most [MaxUsageKeys]) for the hours that start from q.From (truncated
	// to the hour) and before q.To, so that To = now includes the current
	// hour: one [HourUsage]
	// per key and hour that has counts, by key in q.Keys order, then by
	// hour. Keys of other owners, and unknown keys, have none.
	Usage(ctx context.Context, owner string, q UsageQuery) ([]HourUsage, error)

	// PruneUsage deletes the counts of every key for the hours before
	// before: the retention of usage.
	PruneUsage(ctx context.Context, before time.Time) error
}

// An Update says which fields of a key [Store.Update] changes; its zero
// value changes nothing.
type Update struct {
	// Name, if not empty, is the new name.
	Name string
	// Scopes, if not empty, are the new scopes: a subset of the key's.
	Scopes scope.Set
	// Metadata, if not nil, replaces the key's metadata.
	Metadata *apikey.Metadata
	// ExpiresAt, if not zero, is the new expiry, applied only if it is
	// earlier than the key's expiry or the key has none.
	ExpiresAt time.Time
	// Policy, if not nil, replaces the key's policy; a zero Policy removes
	// it. It must pass [apikey.Policy.Validate].
	Policy *apikey.Policy
	// At is the time of the change, for its audit entry; zero means the
	// store's current time. It changes nothing by itself.
	At time.Time
}

// IsZero reports whether u changes nothing (its At aside).
func (u Update) IsZero() bool {
	return u.Name == "" && u.Scopes.IsEmpty() && u.Metadata == nil && u.ExpiresAt.IsZero() && u.Policy == nil
}

// A Revocation is the time and reason of a revocation, for [Store.Revoke]
// and [Store.RevokeAll].
type Revocation struct {
	At     time.Time
	Reason string // optional; see apikey.ValidReason
}

// An Idempotency identifies a create request for [Store.Create], so that
// a repeat of the request creates nothing: Key is a digest of the
// idempotency key the client sent, unique per owner, and Request a digest
// of the request's parameters. A store keeps both beside the key they
// created, so they take the same fixed space, however long what the
// client sent, and live as long as the key. The zero Idempotency means
// none.
type Idempotency struct {
	Key     [32]byte
	Request [32]byte
}

// IsZero reports whether i is the zero Idempotency.
func (i Idempotency) IsZero() bool { return i == Idempotency{} }

// A Use is what [Store.RecordUses] records of a key: its latest
// successful authentication, and its counts in one hour.
type Use struct {
	ID uuid.UUID // the key
	At time.Time // when it last authenticated; zero to leave the last-used time
	// Hour is the UTC hour the counts belong to (truncated to the hour);
	// it may be zero if Counts is.
	Hour   time.Time
	Counts Counts
}

// Counts are the uses of one key in one hour: its successful
// verifications, and the requests refused after the key was verified,
// by why. The refusals are a subset of the verifications: a key that
// authenticates and then lacks the scope counts once in Verified and
// once in Scope.
type Counts struct {
	Verified int64 `json:"verified"`          // successful verifications
	Scope    int64 `json:"scope,omitempty"`   // refused: a scope the route needs is missing
	Mode     int64 `json:"mode,omitempty"`    // refused: a key of the other mode
	Limited  int64 `json:"limited,omitempty"` // refused: the key's rate limit or quota
	Network  int64 `json:"network,omitempty"` // refused: a client outside the key's networks
}

// Refused returns the requests refused after verification, for any reason.
func (c Counts) Refused() int64 { return c.Scope + c.Mode + c.Limited + c.Network }

// IsZero reports whether c counts nothing.
func (c Counts) IsZero() bool { return c == Counts{} }

// Add returns the sum of c and d.
func (c Counts) Add(d Counts) Counts {
	return Counts{c.Verified + d.Verified, c.Scope + d.Scope, c.Mode + d.Mode, c.Limited + d.Limited, c.Network + d.Network}
}

// MaxUsageKeys is the most keys one [Store.Usage] call reports.
const MaxUsageKeys = MaxLimit

// A UsageQuery selects the usage [Store.Usage] returns.
type UsageQuery struct {
	Keys []uuid.UUID // the keys, at most MaxUsageKeys
	From time.Time   // the first hour: the one From falls in
	To   time.Time   // the hours that start before To
}

// An HourUsage is the counts of one key in one hour.
type HourUsage struct {
	KeyID  uuid.UUID
	Hour   time.Time // UTC, on the hour
	Counts Counts
}

// AuditOptions selects and pages the entries [Store.Audit] returns.
type AuditOptions struct {
	// KeyID, if not zero, returns only the entries of that key.
	KeyID uuid.UUID
	// Limit is the page size: 0 means DefaultLimit, more than MaxLimit
	// means MaxLimit.
	Limit int
	// Cursor is AuditPage.Next of the previous page, or empty for the
	// first page.
	Cursor string
}

// An AuditPage is one page of [Store.Audit] results.
type AuditPage struct {
	// Entries are newest first.
	Entries []audit.Entry
	// Next is the cursor of the following page, or empty on the last page.
	Next string
}

// ListOptions selects and pages the records [Store.List] returns.
type ListOptions struct {
	// Limit is the page size: 0 means DefaultLimit, more than MaxLimit means
	// MaxLimit.
	Limit int
	// Cursor is Page.Next of the previous page, or empty for the first page.
	Cursor string
	// Mode, if not zero, returns only keys of that mode.
	Mode apikey.Mode
	// Status, if not zero, returns only keys with that status at time Now.
	Status apikey.Status
	// Now is the time the Status filter is evaluated at; it is required
	// when Status is Active or Expired.
	Now time.Time
}

// A Page is one page of [Store.List] results.
type Page struct {
	// Records are newest first.
	Records []apikey.Record
	// Next is the cursor of the following page, or empty on the last page.
	Next string
}

// A LocalLookup is implemented by stores that can answer some
// verification lookups from memory, without I/O and without waiting: the
// memory store always, a cache when it holds the answer. The lifecycle asks
// it first, and gives a deadline, and a place among its lookups in flight,
// only to the lookups it cannot answer, so that answers from memory cost
// neither a timer nor an allocation.
//
// A wrapper that embeds a store implementing LocalLookup, to change what
// GetByHash answers, must change GetByHashLocal too: otherwise the
// embedded store's answers from memory bypass its GetByHash.
type LocalLookup interface {
	// GetByHashLocal answers as [Store.GetByHash] would at this moment, from
	// memory only: the record, or [ErrNotFound]. If it cannot answer without
	// I/O or waiting, it returns [ErrWouldBlock]. It never blocks on I/O
	// nor on a lock held across I/O, and does not allocate.
	//
	// The record is the store's own, shared rather than copied, so that a
	// verification carries it through a request without copying it: it
	// must never change once returned (a change of the key stores a new
	// record), and callers must not modify it. Its LastUsedAt may be older
	// than GetByHash's, since a store may keep last uses beside it.
	GetByHashLocal(h apikey.Hash) (*apikey.Record, error)
}

// A ChangeFeed is implemented by stores that several processes share, so
// that a verification cache in one process learns of the changes made
// through another. The PostgreSQL and memory stores implement it.
type ChangeFeed interface {
	// Changes returns the hashes of keys changed since the position since,
	// and the position to pass next time. A change is anything that
	// changes a key's record other than its last-used time: a revocation,
	// an expiry, an update of its name, scopes or metadata, a rotation, an
	// exposure, a policy. (A canary's trips are not part of its record.)
	// Called with since == "", it returns no hashes and the current
	// position.
	//
	// Delivery is at least once. In a chain of calls, each passing the
	// position the previous one returned, a change completed before a call
	// begins (and after the chain's first call began) is in the result of
	// that call or of an earlier one. A change may be reported more than
	// once, and a key may be reported without a change; never may a change
	// be missed. Positions are opaque; one not made by this store returns
	// [ErrInvalidCursor].
	Changes(ctx context.Context, since string) (changed []apikey.Hash, next string, err error)
}
