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
	"errors"
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

	// mu serialises every change. It also guards byID and byAge, which
	// only change under it; readers take it for reading.
	mu    sync.RWMutex
	byID  map[uuid.UUID]*slot
	byAge []*slot // oldest first: CreatedAt ascending, then ID ascending
	// changes lists, in order, the hash of every revocation and expiry
	// change, for the change feed; a position is an index into it.
	changes []apikey.Hash
}

// A slot holds the current version of one record. A record, once stored,
// is never modified: a change stores a new version, so readers copy a
// consistent record without holding the write lock.
type slot struct {
	rec atomic.Pointer[apikey.Record]
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.ChangeFeed = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{byID: make(map[uuid.UUID]*slot)}
}

// Len returns the number of keys in the store, of any status.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID)
}

// Create adds a record. See [store.Store.Create].
func (s *Store) Create(ctx context.Context, rec apikey.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := rec.Validate(); err != nil {
		return err
	}
	rec = normalize(rec)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byID[rec.ID]; dup {
		return fmt.Errorf("%w: ID %s exists", store.ErrDuplicate, rec.ID)
	}
	if s.byHash.Get(rec.Hash) != nil {
		return fmt.Errorf("%w: hash exists", store.ErrDuplicate)
	}

	sl, _ := s.byHash.Insert(rec.Hash, func(sl *slot) { sl.rec.Store(&rec) })
	s.byID[rec.ID] = sl
	i, _ := slices.BinarySearchFunc(s.byAge, rec, compareAge)
	s.byAge = slices.Insert(s.byAge, i, sl)
	return nil
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

// normalize puts every time in store precision and copies nothing else: the
// scope set and strings are immutable and may be shared.
func normalize(rec apikey.Record) apikey.Record {
	rec.CreatedAt = store.Time(rec.CreatedAt)
	rec.LastUsedAt = store.Time(rec.LastUsedAt)
	rec.RevokedAt = store.Time(rec.RevokedAt)
	rec.ExpiresAt = store.Time(rec.ExpiresAt)
	return rec
}

// Get returns the record with the given ID. See [store.Store.Get].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	s.mu.RLock()
	sl := s.byID[id]
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
	sl := s.byHash.Get(h)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	return *sl.rec.Load(), nil
}

// List returns a page of records, newest first. See [store.Store.List].
func (s *Store) List(ctx context.Context, opts store.ListOptions) (store.Page, error) {
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
	end := len(s.byAge) // walk byAge[:end] backwards
	if after != nil {
		// The first slot not older than the cursor; every slot before it is
		// on a later page.
		end, _ = slices.BinarySearchFunc(s.byAge, *after, func(sl *slot, c store.Cursor) int {
			return compareAge(sl, apikey.Record{CreatedAt: c.CreatedAt, ID: c.ID})
		})
	}
	var page store.Page
	for i := end - 1; i >= 0; i-- {
		rec := *s.byAge[i].rec.Load()
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

// Revoke revokes a key. See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if at.IsZero() {
		return apikey.Record{}, errors.New("memory: revoke needs a time")
	}
	return s.update(ctx, id, func(rec *apikey.Record) error {
		if rec.Revoked() {
			return store.ErrAlreadyRevoked
		}
		rec.RevokedAt = store.Time(at)
		return nil
	})
}

// SetExpiry sets a key's expiry. See [store.Store.SetExpiry].
func (s *Store) SetExpiry(ctx context.Context, id uuid.UUID, at time.Time) (apikey.Record, error) {
	if at.IsZero() {
		return apikey.Record{}, errors.New("memory: set expiry needs a time")
	}
	return s.update(ctx, id, func(rec *apikey.Record) error {
		if rec.Revoked() {
			return store.ErrAlreadyRevoked
		}
		at := store.Time(at)
		if rec.ExpiresAt.IsZero() || at.Before(rec.ExpiresAt) {
			rec.ExpiresAt = at
		}
		return nil
	})
}

// update applies change to a copy of the record with the given ID and
// stores the copy, unless change fails.
func (s *Store) update(ctx context.Context, id uuid.UUID, change func(*apikey.Record) error) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.byID[id]
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	rec := *sl.rec.Load()
	if err := change(&rec); err != nil {
		return apikey.Record{}, err
	}
	sl.rec.Store(&rec)
	s.changes = append(s.changes, rec.Hash)
	return rec, nil
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

// Changes reports revocations and expiry changes. See
// [store.ChangeFeed.Changes]. A position is the count of changes seen.
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
