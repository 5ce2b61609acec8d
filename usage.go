package keyward

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/hashtab"
	"github.com/keyward/keyward/store"
)

// usage coalesces uses in memory between flushes: per key, one cell holds
// the latest time and the hour's count of verifications, so a key verified
// 10,000 times in an interval costs one row of last-used time and one row
// of counts written.
//
// Recording a use takes no lock: the cell is found in a lock-free table,
// its count incremented atomically, and its time updated with a
// compare-and-swap only when it moved by at least [usePrecision], so
// that a key verified on every core at once does not make the cores
// fight over the time. A cell is queued for the next write only on its
// first use after a flush.
//
// The counts of an hour that ended leave the cell, under the lock, for
// held, the first time the key is verified in the next hour; so do
// refusals, which are rare, and the counts of a write that failed, to be
// written again. A request within microseconds of the hour's end may be
// counted in the next hour.
//
// Cells are kept for the life of the Keys: one per key verified, about 100
// bytes each with the table's share, bounded by the number of keys in the
// store.
type usage struct {
	cells hashtab.Table[useCell]

	mu    sync.Mutex
	dirty []*useCell               // cells used since the last drain
	held  map[hourKey]store.Counts // counts not in a cell: past hours, refusals, failed writes
	since int64                    // Unix microseconds of the oldest use not written; 0 if none

	// spare and out are the buffers of the last drain, given back by
	// release for the next: a flush allocates nothing once they have
	// grown to the keys used in an interval, and requests, which queue
	// into the larger of dirty and spare, nothing once one has. Only the
	// flush, which is serialised, touches them (spare under mu).
	spare []*useCell
	out   []store.Use
}

// usePrecision is the resolution of recorded last-used times: a use less
// than this after the recorded one is not recorded.
const usePrecision = time.Millisecond

// microsPerHour is an hour in Unix microseconds.
const microsPerHour = int64(time.Hour / time.Microsecond)

type useCell struct {
	id       uuid.UUID
	last     atomic.Int64 // Unix microseconds of the latest use
	hour     atomic.Int64 // the hour of verified, in Unix microseconds / microsPerHour
	verified atomic.Int64 // verifications in hour not yet drained
	dirty    atomic.Bool  // queued in usage.dirty
	// stripes, once a key is verified on several cores at once, take its
	// count instead of verified, so that the cores do not take turns
	// owning the cell's cache line, which every verification reads.
	stripes atomic.Pointer[stripes]
}

// stripes spread one key's count over cache lines; each goroutine adds to
// the stripe of its stack (see stripe). 512 bytes, made only for a key
// whose count two cores contended for.
type stripes [8]struct {
	n atomic.Int64
	_ [56]byte // one cache line each
}

// count counts one verification.
func (c *useCell) count() {
	if s := c.stripes.Load(); s != nil {
		s[stripe()].n.Add(1)
		return
	}
	if old := c.verified.Load(); c.verified.CompareAndSwap(old, old+1) {
		return
	}
	// Another core counted at the same moment: from now on, stripes.
	s := c.stripes.Load()
	if s == nil {
		c.stripes.CompareAndSwap(nil, new(stripes))
		s = c.stripes.Load()
	}
	s[stripe()].n.Add(1)
}

// take returns the verifications counted since the last take, and starts
// again from zero.
func (c *useCell) take() int64 {
	n := c.verified.Swap(0)
	if s := c.stripes.Load(); s != nil {
		for i := range s {
			n += s[i].n.Swap(0)
		}
	}
	return n
}

// stripe returns the stripe of the calling goroutine, from the address of
// its stack: goroutines on different cores mostly get different stripes,
// and one goroutine keeps its own (until its stack moves, which costs
// nothing but a cache miss). The address is only hashed, never used.
func stripe() int {
	var b byte
	return int(uint64(uintptr(unsafe.Pointer(&b))>>10) * 0x9E3779B97F4A7C15 >> 61)
}

type hourKey struct {
	id   uuid.UUID
	hour int64 // Unix microseconds / microsPerHour
}

func newUsage() *usage { return &usage{held: make(map[hourKey]store.Counts)} }

// record notes that the key with hash h and ID id authenticated at t, in
// Unix microseconds. It allocates only on a key's first use.
func (u *usage) record(h apikey.Hash, id uuid.UUID, t int64) {
	c := u.cells.Get(h)
	if c == nil {
		c, _ = u.cells.Insert(h, func(c *useCell) { c.id = id; c.hour.Store(t / microsPerHour) })
	}
	if hour := t / microsPerHour; c.hour.Load() != hour {
		u.rollover(c, hour)
	}
	c.count()
	for {
		old := c.last.Load()
		if t < old+usePrecision.Microseconds() {
			break
		}
		if c.last.CompareAndSwap(old, t) {
			break
		}
	}
	// Flag before queueing: drain clears the flag before reading the time,
	// so a use racing with a drain is either read by it or queued again.
	if !c.dirty.Load() && c.dirty.CompareAndSwap(false, true) {
		u.mu.Lock()
		u.dirty = append(u.dirty, c)
		if u.since == 0 {
			u.since = t
		}
		u.mu.Unlock()
	}
}

// rollover moves the counts of the hour that ended out of the cell, once
// per key and hour.
func (u *usage) rollover(c *useCell, hour int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := c.hour.Load()
	if old >= hour {
		return // another goroutine rolled it over, or t is late
	}
	if n := c.take(); n > 0 {
		k := hourKey{c.id, old}
		cs := u.held[k]
		cs.Verified += n
		u.held[k] = cs
	}
	c.hour.Store(hour)
}

// refuse counts a refusal of the key with ID id at t, in Unix
// microseconds: add holds a 1 in the refusal's field.
func (u *usage) refuse(id uuid.UUID, t int64, add store.Counts) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := hourKey{id, t / microsPerHour}
	u.held[k] = u.held[k].Add(add)
	if u.since == 0 {
		u.since = t
	}
}

// drain empties the queue and returns its cells with the uses to write:
// those of the cells, then those held. The two slices are the usage's
// buffers: give them back with release once the uses are written or
// requeued.
func (u *usage) drain() (cells []*useCell, uses []store.Use) {
	u.mu.Lock()
	cells = u.dirty
	u.dirty, u.spare = u.spare[:0], nil
	pending := u.held
	if len(pending) > 0 {
		u.held = make(map[hourKey]store.Counts)
	}
	u.since = 0
	u.mu.Unlock()
	uses = slices.Grow(u.out[:0], len(cells)+len(pending))[:len(cells)]
	u.out = nil
	for i, c := range cells {
		c.dirty.Store(false)
		hour := c.hour.Load()
		uses[i] = store.Use{ID: c.id, At: time.UnixMicro(c.last.Load()).UTC(),
			Hour: hourTime(hour), Counts: store.Counts{Verified: c.take()}}
	}
	for k, cs := range pending {
		uses = append(uses, store.Use{ID: k.id, Hour: hourTime(k.hour), Counts: cs})
	}
	return cells, uses
}

// release gives back the buffers of a drain, for the next, once its
// uses are written or requeued.
func (u *usage) release(cells []*useCell, uses []store.Use) {
	clear(uses) // no Location pointers kept from the last interval
	u.out = uses[:0]
	u.mu.Lock()
	defer u.mu.Unlock()
	// Requests queue into the larger of the two buffers: if the drained
	// one is, the cells queued during the write move into it (no
	// allocation: it holds them), so that a request never grows the
	// queue to a size the other buffer already has.
	if cap(cells) > cap(u.dirty) {
		cells = append(cells[:0], u.dirty...)
		u.dirty, cells = cells, u.dirty
	}
	u.spare = cells[:0]
}

func hourTime(hour int64) time.Time { return time.UnixMicro(hour * microsPerHour).UTC() }

// requeue keeps uses that could not be written, so they are retried: the
// cells' last-used times, which can only have moved forward since, and
// every count, added back to held.
func (u *usage) requeue(cells []*useCell, uses []store.Use, now int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range cells {
		if c.dirty.CompareAndSwap(false, true) {
			u.dirty = append(u.dirty, c)
		}
	}
	for _, use := range uses {
		if !use.Counts.IsZero() {
			k := hourKey{use.ID, use.Hour.UnixMicro() / microsPerHour}
			u.held[k] = u.held[k].Add(use.Counts)
		}
	}
	if u.since == 0 && (len(u.dirty) > 0 || len(u.held) > 0) {
		u.since = now
	}
}

// pendingStats returns the number of keys with uses waiting to be
// written, and the time of the oldest use, in Unix microseconds (0 if
// none).
func (u *usage) pendingStats() (keys int, since int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.held) == 0 {
		return len(u.dirty), u.since
	}
	ids := make(map[uuid.UUID]struct{}, len(u.dirty)+len(u.held))
	for _, c := range u.dirty {
		ids[c.id] = struct{}{}
	}
	for k := range u.held {
		ids[k.id] = struct{}{}
	}
	return len(ids), u.since
}

func (u *usage) pending() int {
	n, _ := u.pendingStats()
	return n
}
