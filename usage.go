package keyward

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/hashtab"
	"github.com/keyward/keyward/store"
)

// usage coalesces last-used times in memory between flushes: per key, one
// cell holds the latest time, so a key verified 10,000 times in an interval
// costs one row written.
//
// Recording a use takes no lock: the cell is found in a lock-free table and
// updated with an atomic compare-and-swap, and only when the time moved by
// at least [usePrecision], so that a key verified on every core at once
// does not make the cores fight over one cache line. A cell is queued for
// the next write only on its first use after a flush.
//
// Cells are kept for the life of the Keys: one per key verified, about 100
// bytes each, bounded by the number of keys in the store.
type usage struct {
	cells hashtab.Table[useCell]

	mu    sync.Mutex
	dirty []*useCell // cells used since the last drain
}

// usePrecision is the resolution of recorded last-used times: a use less
// than this after the recorded one is not recorded.
const usePrecision = time.Millisecond

type useCell struct {
	id    uuid.UUID
	last  atomic.Int64 // Unix microseconds of the latest use
	dirty atomic.Bool  // queued in usage.dirty
}

func newUsage() *usage { return new(usage) }

// record notes that the key with hash h and ID id authenticated at t, in
// Unix microseconds. It allocates only on a key's first use.
func (u *usage) record(h apikey.Hash, id uuid.UUID, t int64) {
	c := u.cells.Get(h)
	if c == nil {
		c, _ = u.cells.Insert(h, func(c *useCell) { c.id = id })
	}
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
		u.mu.Unlock()
	}
}

// drain empties the queue and returns its cells with their uses: uses[i]
// is the use of cells[i].
func (u *usage) drain() (cells []*useCell, uses []store.Use) {
	u.mu.Lock()
	cells = u.dirty
	u.dirty = nil
	u.mu.Unlock()
	uses = make([]store.Use, len(cells))
	for i, c := range cells {
		c.dirty.Store(false)
		uses[i] = store.Use{ID: c.id, At: time.UnixMicro(c.last.Load()).UTC()}
	}
	return cells, uses
}

// requeue queues again cells whose uses could not be written, so they are
// retried; their times can only have moved forward since.
func (u *usage) requeue(cells []*useCell) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range cells {
		if c.dirty.CompareAndSwap(false, true) {
			u.dirty = append(u.dirty, c)
		}
	}
}

func (u *usage) pending() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.dirty)
}
