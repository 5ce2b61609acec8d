// Package store defines the Store interface that keeps API key records, its
// contract, and the sentinel errors every implementation returns.
//
// Implementations: [github.com/keyward/keyward/store/memory] (in-process, for
// tests and single-instance servers) and
// [github.com/keyward/keyward/store/postgres] (PostgreSQL through
// database/sql). Any other store proves it keeps the contract by passing the
// conformance suite, [github.com/keyward/keyward/store/storetest].
//
// Stores keep records; they make no decisions. Generating keys, validating
// names and scopes against a catalog, refusing revoked or expired keys and
// batching last-used writes is the work of the lifecycle type in package
// keyward, which is what applications use.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// Sentinel errors. Stores return them, possibly wrapped; test with
// [errors.Is]. Any other error from a store means the store could not answer
// (it is down, timed out, or the context ended) and callers must fail closed.
var (
	// ErrNotFound: no key has the given ID or hash.
	ErrNotFound = errors.New("store: key not found")
	// ErrDuplicate: a key with the same ID or the same hash already exists.
	ErrDuplicate = errors.New("store: duplicate key")
	// ErrAlreadyRevoked: the key was revoked before; its revocation time
	// is unchanged.
	ErrAlreadyRevoked = errors.New("store: key already revoked")
	// ErrInvalidCursor: a List cursor was not produced by this store.
	ErrInvalidCursor = errors.New("store: invalid cursor")
)

// Page sizes for [Store.List].
const (
	DefaultLimit = 100  // used when ListOptions.Limit is 0
	MaxLimit     = 1000 // larger limits are lowered to this
)

// Store keeps API key records. The doc comment of each method is its
// contract; [github.com/keyward/keyward/store/storetest.Run] checks every
// sentence of it.
//
// All methods are safe for concurrent use, take a context first and return
// promptly with an error wrapping ctx.Err() once the context is done.
//
// Times are kept to the microsecond (what PostgreSQL keeps), in UTC: a store
// truncates times it is given and returns them in UTC. Records returned are
// copies; changing one changes nothing in the store.
type Store interface {
	// Create adds a new record. The record must pass
	// [apikey.Record.Validate]; otherwise Create returns an error wrapping
	// [apikey.ErrInvalidRecord]. If a record with the same ID or the same
	// hash exists, Create returns [ErrDuplicate] and changes nothing.
	Create(ctx context.Context, rec apikey.Record) error

	// Get returns the record with the given ID, or [ErrNotFound].
	Get(ctx context.Context, id uuid.UUID) (apikey.Record, error)

	// GetByHash returns the record whose hash is h, or [ErrNotFound]. It is
	// the verification lookup: it returns revoked and expired records too,
	// and the caller decides. It must not write anything.
	GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error)

	// List returns records newest first: by CreatedAt descending, then by ID
	// descending for equal times. It returns at most opts.Limit records
	// ([DefaultLimit] if 0, at most [MaxLimit]) that match the filters, and
	// Page.Next, a cursor for the following page, which is empty on the last
	// page. A listing walked page by page returns every record that existed
	// when it began exactly once, even while records are created; records
	// created meanwhile appear at most once. A cursor from elsewhere returns
	// [ErrInvalidCursor]; a negative limit or an invalid filter value returns
	// an error.
	List(ctx context.Context, opts ListOptions) (Page, error)

	// Revoke sets the revocation time of the key with the given ID to at and
	// returns the updated record. Revocation is final: if the key is already
	// revoked, Revoke returns [ErrAlreadyRevoked] and keeps the first
	// revocation time; no method ever clears it. An unknown ID returns
	// [ErrNotFound]. A zero at is refused with an error.
	Revoke(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error)

	// RecordUses sets the last-used time of each listed key to the later of
	// its current value and the given time, so a last-used time never moves
	// backwards, whatever the order of calls. It applies to revoked and
	// expired keys too (a use may be recorded after the key was revoked).
	// Unknown IDs are ignored. If an ID is listed several times, the latest
	// time wins. An empty list does nothing.
	RecordUses(ctx context.Context, uses []Use) error

	// SetExpiry makes the key with the given ID expire at the given time and
	// returns the updated record. An expiry only moves earlier: if the key
	// already expires before at, its expiry is unchanged. A revoked key
	// returns [ErrAlreadyRevoked]; an unknown ID, [ErrNotFound]. A zero at is
	// refused with an error.
	SetExpiry(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error)
}

// A Use is one successful authentication of a key, for [Store.RecordUses].
type Use struct {
	ID uuid.UUID // the key
	At time.Time // when it authenticated
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

// A ChangeFeed is implemented by stores that several processes share, so
// that a verification cache in one process learns of revocations and expiry
// changes made through another. The PostgreSQL and memory stores implement
// it.
type ChangeFeed interface {
	// Changes returns the hashes of keys revoked, or whose expiry was set,
	// since the position since, and the position to pass next time. Called
	// with since == "", it returns no hashes and the current position.
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
