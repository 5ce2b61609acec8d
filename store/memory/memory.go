// Package memory is an in-process [store.Store]: keys live in maps, in the
// memory of one process, and are gone when it exits.
//
// It is the store for tests and for single-instance servers that issue keys
// at start-up. It passes the same conformance suite as the PostgreSQL store
// and behaves like it: microsecond times in UTC, the same errors, the same
// list order and cursors. Code tested against it behaves the same way on
// PostgreSQL.
//
// The verification lookup, [Store.GetByHash], takes no lock and writes no
// shared memory: it probes a hash table of atomic pointers and copies one
// record out, so it does not allocate and scales with cores. Writes are
// serialised.
package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/hashtab"
	"github.com/keyward/keyward/store"
)

// Store is the in-memory store. Use [New]; the zero value is not usable.
type Store struct {
	byHash hashtab.Table[slot]

	// mu serialises every change. It also guards the maps below, which
	// only change under it; readers take it for reading.
	mu      sync.RWMutex
	byID    map[uuid.UUID]*slot
	byOwner map[string][]*slot // each oldest first: CreatedAt ascending, then ID ascending
	byIdem  map[idemKey]*slot  // keys created with an idempotency key
	// trips holds each canary key's trips in the order recorded, the
	// newest store.MaxTrips by time.
	trips map[uuid.UUID][]apikey.Trip
	// changes lists, in order, the hash of every change of a record, for
	// the change feed; a position is an index into it.
	changes []apikey.Hash
}

// A slot holds the current version of one record. A record, once stored,
// is never modified: a change stores a new version, so readers copy a
// consistent record without holding the write lock.
type slot struct {
	rec     atomic.Pointer[apikey.Record]
	request [32]byte // Idempotency.Request of the create, if it had one
}

type idemKey struct {
	owner string
	key   [32]byte
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.ChangeFeed  = (*Store)(nil)
	_ store.LocalLookup = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:    make(map[uuid.UUID]*slot),
		byOwner: make(map[string][]*slot),
		byIdem:  make(map[idemKey]*slot),
		trips:   make(map[uuid.UUID][]apikey.Trip),
	}
}

// Len returns the number of keys in the store, of any owner and status.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// Create adds a record. See [store.Store.Create].
func (s *Store) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	if err := rec.Validate(); err != nil {
		return apikey.Record{}, err
	}
	rec = store.Normalize(rec)

	s.mu.Lock()
	defer s.mu.Unlock()
	if !idem.IsZero() {
		if sl := s.byIdem[idemKey{rec.Owner, idem.Key}]; sl != nil {
			if sl.request != idem.Request {
				return apikey.Record{}, store.ErrIdempotencyConflict
			}
			return *sl.rec.Load(), store.ErrAlreadyCreated
		}
	}
	if err := s.checkNew(rec); err != nil {
		return apikey.Record{}, err
	}
	sl := s.insert(rec)
	if !idem.IsZero() {
		sl.request = idem.Request
		s.byIdem[idemKey{rec.Owner, idem.Key}] = sl
	}
	return rec, nil
}

// checkNew refuses a record whose ID or hash is taken. The caller holds mu.
func (s *Store) checkNew(rec apikey.Record) error {
	if _, dup := s.byID[rec.ID]; dup {
		return fmt.Errorf("%w: ID %s exists", store.ErrDuplicate, rec.ID)
	}
	if s.byHash.Get(rec.Hash) != nil {
		return fmt.Errorf("%w: hash exists", store.ErrDuplicate)
	}
	return nil
}

// insert stores a new record, checked by checkNew. The caller holds mu.
func (s *Store) insert(rec apikey.Record) *slot {
	sl, _ := s.byHash.Insert(rec.Hash, func(sl *slot) { sl.rec.Store(&rec) })
	s.byID[rec.ID] = sl
	owned := s.byOwner[rec.Owner]
	i, _ := slices.BinarySearchFunc(owned, rec, compareAge)
	s.byOwner[rec.Owner] = slices.Insert(owned, i, sl)
	return sl
}

// compareAge orders slots oldest first, breaking ties by ID, the reverse of
// the list order.
func compareAge(sl *slot, rec apikey.Record) int {
	have := sl.rec.Load()
	if c := have.CreatedAt.Compare(rec.CreatedAt); c != 0 {
		return c
	}
	return store.CompareIDs(have.ID, rec.ID)
}

// owned returns the slot of the owner's key with the given ID, or nil. The
// caller holds mu.
func (s *Store) owned(owner string, id uuid.UUID) *slot {
	sl := s.byID[id]
	if sl == nil || sl.rec.Load().Owner != owner {
		return nil
	}
	return sl
}

// Get returns the record with the given ID and owner. See
// [store.Store.Get].
func (s *Store) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	s.mu.RLock()
	sl := s.owned(owner, id)
	s.mu.RUnlock()
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	return *sl.rec.Load(), nil
}

// GetByHash returns the record with the given hash. It does not allocate.
// See [store.Store.GetByHash].
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	return s.GetByHashLocal(h)
}

// GetByHashLocal is GetByHash without a context: the memory store always
// answers from memory. See [store.LocalLookup].
func (s *Store) GetByHashLocal(h apikey.Hash) (apikey.Record, error) {
	sl := s.byHash.Get(h)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	return *sl.rec.Load(), nil
}

// List returns a page of the owner's records, newest first. See
// [store.Store.List].
func (s *Store) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	opts, err := opts.Check()
	if err != nil {
		return store.Page{}, err
	}
	var after *store.Cursor
	if opts.Cursor != "" {
		c, err := store.ParseCursor(opts.Cursor)
		if err != nil {
			return store.Page{}, err
		}
		after = &c
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	owned := s.byOwner[owner]
	end := len(owned) // walk owned[:end] backwards
	if after != nil {
		// The first slot not older than the cursor; every slot before it is
		// on a later page.
		end, _ = slices.BinarySearchFunc(owned, *after, func(sl *slot, c store.Cursor) int {
			return compareAge(sl, apikey.Record{CreatedAt: c.CreatedAt, ID: c.ID})
		})
	}
	var page store.Page
	for i := end - 1; i >= 0; i-- {
		rec := *owned[i].rec.Load()
		if !opts.Matches(rec) {
			continue
		}
		if len(page.Records) == opts.Limit {
			page.Next = store.CursorAfter(page.Records[len(page.Records)-1]).String()
			break
		}
		page.Records = append(page.Records, rec)
	}
	return page, nil
}

// Update changes a key. See [store.Store.Update].
func (s *Store) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	u, err := u.Check()
	if err != nil {
		return apikey.Record{}, err
	}
	return s.update(ctx, owner, id, u.Apply)
}

// Revoke revokes a key. See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	r, err := r.Check()
	if err != nil {
		return apikey.Record{}, err
	}
	return s.update(ctx, owner, id, r.Revoke)
}

// Expose marks a key exposed, and revokes it if asked. See
// [store.Store.Expose].
func (s *Store) Expose(ctx context.Context, owner string, id uuid.UUID, e apikey.Exposure, revoke bool) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	e, err := store.CheckExposure(e)
	if err != nil {
		return apikey.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(owner, id)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	rec := *sl.rec.Load()
	if err := store.Expose(&rec, e, revoke); err != nil {
		return rec, err
	}
	s.replace(sl, rec)
	return rec, nil
}

// RecordTrip stores a use of a canary key. See [store.Store.RecordTrip].
func (s *Store) RecordTrip(ctx context.Context, t apikey.Trip) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := store.CheckTrip(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(t.Owner, t.KeyID)
	if sl == nil {
		return store.ErrNotFound
	}
	trips := append(s.trips[t.KeyID], t)
	if len(trips) > store.MaxTrips {
		// Drop the oldest by time (of equal times, the first recorded):
		// trips may be recorded out of time order.
		oldest := 0
		for i, tr := range trips {
			if tr.At.Before(trips[oldest].At) {
				oldest = i
			}
		}
		trips = slices.Delete(trips, oldest, oldest+1)
	}
	s.trips[t.KeyID] = trips
	return nil
}

// Trips returns the trips of a canary key. See [store.Store.Trips].
func (s *Store) Trips(ctx context.Context, owner string, id uuid.UUID, limit int) ([]apikey.Trip, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit = store.TripsLimit(limit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.owned(owner, id) == nil {
		return nil, store.ErrNotFound
	}
	kept := s.trips[id]
	out := make([]apikey.Trip, len(kept))
	copy(out, kept)
	// Newest first by time; among equal times, the last recorded first.
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b apikey.Trip) int { return b.At.Compare(a.At) })
	return out[:min(limit, len(out))], nil
}

// update applies change to a copy of the record with the given ID and
// owner and stores the copy, unless change fails.
func (s *Store) update(ctx context.Context, owner string, id uuid.UUID, change func(*apikey.Record) error) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(owner, id)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	rec := *sl.rec.Load()
	if err := change(&rec); err != nil {
		return apikey.Record{}, err
	}
	s.replace(sl, rec)
	return rec, nil
}

// replace stores a new version of a record and reports the change. The
// caller holds mu.
func (s *Store) replace(sl *slot, rec apikey.Record) {
	sl.rec.Store(&rec)
	s.changes = append(s.changes, rec.Hash)
}

// Rotate stores a key's replacement and links the two. See
// [store.Store.Rotate].
func (s *Store) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	next, err := store.CheckRotation(owner, id, next)
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(owner, id)
	if sl == nil {
		return apikey.Record{}, apikey.Record{}, store.ErrNotFound
	}
	var replacement apikey.Record
	if old := sl.rec.Load(); old.ReplacedBy != uuid.Nil {
		if r := s.byID[old.ReplacedBy]; r != nil {
			replacement = *r.rec.Load()
		}
	}
	old, next, err := store.Rotation(*sl.rec.Load(), replacement, next, overlapEnd)
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	if err := s.checkNew(next); err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	s.insert(next)
	s.replace(sl, old)
	return old, next, nil
}

// RevokeAll revokes every active key of an owner. See
// [store.Store.RevokeAll].
func (s *Store) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := r.Check()
	if err != nil {
		return nil, err
	}
	at := r.At
	s.mu.Lock()
	defer s.mu.Unlock()
	owned := s.byOwner[owner]
	revoked := []apikey.Record{}
	for i := len(owned) - 1; i >= 0; i-- {
		rec := *owned[i].rec.Load()
		if rec.Status(at) != apikey.Active {
			continue
		}
		rec.RevokedAt, rec.RevokedReason = at, r.Reason
		s.replace(owned[i], rec)
		revoked = append(revoked, rec)
	}
	return revoked, nil
}

// RecordUses records last-used times. See [store.Store.RecordUses].
func (s *Store) RecordUses(ctx context.Context, uses []store.Use) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		sl := s.byID[u.ID]
		if sl == nil {
			continue
		}
		at := store.Time(u.At)
		old := sl.rec.Load()
		if !at.After(old.LastUsedAt) {
			continue
		}
		rec := *old
		rec.LastUsedAt = at
		sl.rec.Store(&rec)
	}
	return nil
}

// Changes reports the records changed. See [store.ChangeFeed.Changes]. A
// position is the count of changes seen.
func (s *Store) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := len(s.changes)
	next := strconv.Itoa(end)
	if since == "" {
		return nil, next, nil
	}
	from, err := strconv.Atoi(since)
	if err != nil || from < 0 || from > end {
		return nil, "", store.ErrInvalidCursor
	}
	return slices.Clone(s.changes[from:end]), next, nil
}
