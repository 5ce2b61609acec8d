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
// serialised. Recording uses ([Store.RecordUses]) copies no record: a
// key's last-used time and its current hour's counts live beside the
// pointer to its record, in the table's entry.
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
	"github.com/keyward/keyward/audit"
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
	byOwner map[string][]*slot     // each oldest first: CreatedAt ascending, then ID ascending
	byIdem  map[idemKey]idemCreate // keys created with an idempotency key
	// trips holds each canary key's trips in the order recorded, the
	// newest store.MaxTrips by time.
	trips map[uuid.UUID][]apikey.Trip
	// changes lists, in order, the hash of every change of a record, for
	// the change feed; a position is an index into it.
	changes []apikey.Hash
	// trail holds each owner's audit entries, oldest first: entry i has
	// Seq i+1.
	trail map[string][]trailEntry
	// usage holds each key's counts by hour (Unix seconds), but for the
	// hour in its slot: every hour here is before it.
	usage map[uuid.UUID]map[int64]store.Counts
}

// A slot holds the current version of one record. A record, once stored,
// is never modified: a change stores a new version, so readers copy a
// consistent record without holding the write lock.
//
// The record's last use is not in it: recording uses would otherwise copy
// every record used, each flush. It is in lastUsed, which read (and only
// read) puts in the copies it returns; a change copies it into the new
// version with the rest.
type slot struct {
	rec      atomic.Pointer[apikey.Record]
	lastUsed atomic.Int64 // Unix microseconds of the latest use recorded; 0 if none
	// hour and counts are the usage of the latest hour recorded (Unix
	// seconds; 0 if none), kept here so that a key's counts in its
	// current hour cost no map entry. Guarded by Store.mu.
	hour   int64
	counts store.Counts
}

// read returns a copy of the record with its latest use.
func (sl *slot) read() apikey.Record {
	rec := *sl.rec.Load()
	if used := sl.lastUsed.Load(); used > 0 && (rec.LastUsedAt.IsZero() || used > rec.LastUsedAt.UnixMicro()) {
		rec.LastUsedAt = time.UnixMicro(used).UTC()
	}
	return rec
}

type idemKey struct {
	owner string
	key   [32]byte
}

// An idemCreate is a create that had an idempotency key.
type idemCreate struct {
	sl      *slot
	request [32]byte // Idempotency.Request of the create
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
		byIdem:  make(map[idemKey]idemCreate),
		trips:   make(map[uuid.UUID][]apikey.Trip),
		trail:   make(map[string][]trailEntry),
		usage:   make(map[uuid.UUID]map[int64]store.Counts),
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
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !idem.IsZero() {
		if c, ok := s.byIdem[idemKey{rec.Owner, idem.Key}]; ok {
			if c.request != idem.Request {
				return apikey.Record{}, store.ErrIdempotencyConflict
			}
			return c.sl.read(), store.ErrAlreadyCreated
		}
	}
	if err := s.checkNew(rec); err != nil {
		return apikey.Record{}, err
	}
	sl := s.insert(rec)
	if !idem.IsZero() {
		s.byIdem[idemKey{rec.Owner, idem.Key}] = idemCreate{sl, idem.Request}
	}
	s.appendCreated(sl.rec.Load(), actor)
	return rec, nil
}

// A trailEntry is an audit entry as the store keeps it: its hash, and
// what rebuilds its event. Its Seq is its place in the trail and its Prev
// the hash of the entry before. The creation of a key, the entry of every
// key, keeps no event: the record as created, which the key's slot
// shares until the key changes, rebuilds it ([audit.CreatedEvent] is a
// function of the record and the actor), at the cost of a pointer and an
// actor rather than an event, its changes and their text.
type trailEntry struct {
	hash    [32]byte
	created *apikey.Record // a creation: the record as created (read-only)
	actor   audit.Actor    // a creation's actor
	other   *audit.Event   // any other entry
}

// event returns the entry's event, a copy that shares nothing the caller
// could change with the trail.
func (te *trailEntry) event() audit.Event {
	if te.created != nil {
		return audit.CreatedEvent(*te.created, te.actor)
	}
	e := *te.other
	e.Changes = slices.Clone(e.Changes)
	return e
}

// keyID returns the ID of the entry's key.
func (te *trailEntry) keyID() uuid.UUID {
	if te.created != nil {
		return te.created.ID
	}
	return te.other.KeyID
}

// entry returns the i-th entry of trail.
func entry(trail []trailEntry, i int) audit.Entry {
	e := audit.Entry{Event: trail[i].event(), Seq: int64(i + 1), Hash: trail[i].hash}
	if i > 0 {
		e.Prev = trail[i-1].hash
	}
	return e
}

// appendCreated adds the creation of the key whose stored record is rec
// to its owner's audit trail. The caller holds mu.
func (s *Store) appendCreated(rec *apikey.Record, actor audit.Actor) {
	s.appendEntry(audit.CreatedEvent(*rec, actor), trailEntry{created: rec, actor: actor})
}

// append adds an event to its owner's audit trail. The caller holds mu.
func (s *Store) append(e audit.Event) {
	s.appendEntry(e, trailEntry{other: &e})
}

// appendEntry seals e, kept as te, at the end of its owner's trail.
func (s *Store) appendEntry(e audit.Event, te trailEntry) {
	trail := s.trail[e.Owner]
	var last audit.Entry
	if n := len(trail); n > 0 {
		last = audit.Entry{Seq: int64(n), Hash: trail[n-1].hash}
	}
	te.hash = audit.Next(last, e).Hash
	s.trail[e.Owner] = append(trail, te)
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
	return sl.read(), nil
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
	return sl.read(), nil
}

// GetByHashLocal is GetByHash without a context: the memory store always
// answers from memory. The record is the store's own and read-only; its
// LastUsedAt is the one it was stored with, not the latest use. See
// [store.LocalLookup].
func (s *Store) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	sl := s.byHash.Get(h)
	if sl == nil {
		return nil, store.ErrNotFound
	}
	return sl.rec.Load(), nil
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
		rec := owned[i].read()
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
	at := u.ChangeTime()
	return s.update(ctx, owner, id, u.Apply, func(before, after apikey.Record, actor audit.Actor) (audit.Event, bool) {
		return audit.UpdatedEvent(before, after, at, actor)
	})
}

// Revoke revokes a key. See [store.Store.Revoke].
func (s *Store) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	r, err := r.Check()
	if err != nil {
		return apikey.Record{}, err
	}
	return s.update(ctx, owner, id, r.Revoke, func(_, after apikey.Record, actor audit.Actor) (audit.Event, bool) {
		return audit.RevokedEvent(audit.Revoked, after, actor), true
	})
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
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(owner, id)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	before := sl.read()
	rec := before
	if err := store.Expose(&rec, e, revoke); err != nil {
		return rec, err
	}
	s.replace(sl, rec)
	s.append(audit.ExposedEvent(before, rec, e.At, actor))
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
// owner and stores the copy, unless change fails, with the audit entry of
// the event describe makes of the record before and after, if it makes
// one.
func (s *Store) update(ctx context.Context, owner string, id uuid.UUID, change func(*apikey.Record) error,
	describe func(before, after apikey.Record, actor audit.Actor) (audit.Event, bool)) (apikey.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	actor, err := store.Actor(ctx)
	if err != nil {
		return apikey.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.owned(owner, id)
	if sl == nil {
		return apikey.Record{}, store.ErrNotFound
	}
	before := sl.read()
	rec := before
	if err := change(&rec); err != nil {
		return apikey.Record{}, err
	}
	e, changed := describe(before, rec, actor)
	if !changed {
		return rec, nil // nothing changed: no new version, no entry
	}
	s.replace(sl, rec)
	s.append(e)
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
	actor, err := store.Actor(ctx)
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
			replacement = r.read()
		}
	}
	before := sl.read()
	old, next, err := store.Rotation(before, replacement, next, overlapEnd)
	if err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	if err := s.checkNew(next); err != nil {
		return apikey.Record{}, apikey.Record{}, err
	}
	created := s.insert(next)
	s.replace(sl, old)
	s.appendCreated(created.rec.Load(), actor)
	s.append(audit.RotatedEvent(before, old, next.CreatedAt, actor))
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
	actor, err := store.Actor(ctx)
	if err != nil {
		return nil, err
	}
	at := r.At
	s.mu.Lock()
	defer s.mu.Unlock()
	owned := s.byOwner[owner]
	revoked := []apikey.Record{}
	for i := len(owned) - 1; i >= 0; i-- {
		rec := owned[i].read()
		if rec.Status(at) != apikey.Active {
			continue
		}
		rec.RevokedAt, rec.RevokedReason = at, r.Reason
		s.replace(owned[i], rec)
		s.append(audit.RevokedEvent(audit.RevokedAll, rec, actor))
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
		if !u.Counts.IsZero() {
			s.count(sl, u.ID, store.Hour(u.Hour).Unix(), u.Counts)
		}
		at := store.Time(u.At).UnixMicro()
		if !u.At.IsZero() && at > sl.lastUsed.Load() {
			sl.lastUsed.Store(at) // under mu: no other writer
		}
	}
	return nil
}

// count adds counts to a key's usage in an hour (Unix seconds): in its
// slot if the hour is the slot's or later, else in the map of earlier
// hours. The caller holds mu.
func (s *Store) count(sl *slot, id uuid.UUID, hour int64, c store.Counts) {
	switch {
	case hour == sl.hour:
		sl.counts = sl.counts.Add(c)
		return
	case hour < sl.hour:
		s.countEarlier(id, hour, c)
		return
	}
	if sl.hour != 0 {
		s.countEarlier(id, sl.hour, sl.counts)
	}
	sl.hour, sl.counts = hour, c
}

// countEarlier adds counts to the map of a key's earlier hours. The
// caller holds mu.
func (s *Store) countEarlier(id uuid.UUID, hour int64, c store.Counts) {
	byHour := s.usage[id]
	if byHour == nil {
		byHour = make(map[int64]store.Counts)
		s.usage[id] = byHour
	}
	byHour[hour] = byHour[hour].Add(c)
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

// Audit returns a page of an owner's audit trail. See [store.Store.Audit].
func (s *Store) Audit(ctx context.Context, owner string, opts store.AuditOptions) (store.AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditPage{}, err
	}
	limit, before, err := opts.Resolve()
	if err != nil {
		return store.AuditPage{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	trail := s.trail[owner]
	page := store.AuditPage{Entries: []audit.Entry{}}
	// Entry i has Seq i+1: the page starts below the cursor's Seq.
	for i := int(min(before-1, int64(len(trail)))) - 1; i >= 0; i-- {
		if opts.KeyID != uuid.Nil && trail[i].keyID() != opts.KeyID {
			continue
		}
		if len(page.Entries) == limit {
			page.Next = store.AuditCursor(page.Entries[len(page.Entries)-1].Seq)
			break
		}
		page.Entries = append(page.Entries, entry(trail, i))
	}
	return page, nil
}

// AuditChain returns an owner's entries after a sequence number. See
// [store.Store.AuditChain].
func (s *Store) AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit, err := store.ChainLimit(limit)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	trail := s.trail[owner]
	out := []audit.Entry{}
	for i := int(max(after, 0)); i < len(trail) && len(out) < limit; i++ {
		out = append(out, entry(trail, i))
	}
	return out, nil
}

// Usage returns the counts of an owner's keys. See [store.Store.Usage].
func (s *Store) Usage(ctx context.Context, owner string, q store.UsageQuery) ([]store.HourUsage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := q.Check()
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.HourUsage{}
	for _, id := range q.Keys {
		if s.owned(owner, id) == nil {
			continue
		}
		first := len(out)
		in := func(h int64) bool {
			hour := time.Unix(h, 0)
			return !hour.Before(q.From) && hour.Before(q.To)
		}
		for h, c := range s.usage[id] {
			if in(h) {
				out = append(out, store.HourUsage{KeyID: id, Hour: time.Unix(h, 0).UTC(), Counts: c})
			}
		}
		if sl := s.byID[id]; sl.hour != 0 && in(sl.hour) {
			out = append(out, store.HourUsage{KeyID: id, Hour: time.Unix(sl.hour, 0).UTC(), Counts: sl.counts})
		}
		slices.SortFunc(out[first:], func(a, b store.HourUsage) int { return a.Hour.Compare(b.Hour) })
	}
	return out, nil
}

// PruneUsage deletes the counts of the hours before a time. See
// [store.Store.PruneUsage].
func (s *Store) PruneUsage(ctx context.Context, before time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.byID {
		if sl.hour != 0 && time.Unix(sl.hour, 0).Before(before) {
			sl.hour, sl.counts = 0, store.Counts{}
		}
	}
	for id, byHour := range s.usage {
		for h := range byHour {
			if time.Unix(h, 0).Before(before) {
				delete(byHour, h)
			}
		}
		if len(byHour) == 0 {
			delete(s.usage, id)
		}
	}
	return nil
}
