// Package hashtab is an insert-only hash table from SHA-256 hashes to
// pointers, whose lookups take no lock, write no shared memory and allocate
// nothing, so that they scale with cores.
//
// It is the index of the verification path: keys are uniformly random
// (they are SHA-256 outputs), so the table indexes by their first bytes
// without hashing them again, and probes linearly.
package hashtab

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/apikey"
)

// Table maps key hashes to values of type V, which live inside the
// table's entries (one allocation per entry, one pointer to follow per
// lookup) and are reached through the *V that Get and Insert return; a V
// never moves. Lookups are safe concurrently with each other and with
// inserts; inserts are serialised by the table. Entries are never removed.
// The zero Table is empty and ready to use.
type Table[V any] struct {
	mu    sync.Mutex // serialises inserts
	slots atomic.Pointer[[]slot[V]]
	count int // guarded by mu
}

type slot[V any] struct {
	p atomic.Pointer[entry[V]]
}

type entry[V any] struct {
	key apikey.Hash
	val V
}

// Get returns the value stored under key, or nil.
func (t *Table[V]) Get(key apikey.Hash) *V {
	sp := t.slots.Load()
	if sp == nil {
		return nil
	}
	slots := *sp
	mask := uint64(len(slots) - 1)
	for i := binary.LittleEndian.Uint64(key[:8]) & mask; ; i = (i + 1) & mask {
		e := slots[i].p.Load()
		if e == nil {
			return nil
		}
		if same(&e.key, &key) {
			return &e.val
		}
	}
}

// Insert adds an entry for key unless there is one, and returns the value
// of the entry for key. A new entry's value is set by init, if not nil,
// before any lookup can see it.
func (t *Table[V]) Insert(key apikey.Hash, init func(*V)) (v *V, added bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.Get(key); v != nil {
		return v, false
	}
	sp := t.slots.Load()
	// Keep the load factor at most 1/2, so probes stay short.
	if sp == nil || 2*(t.count+1) > len(*sp) {
		sp = t.grow(sp)
	}
	e := &entry[V]{key: key}
	if init != nil {
		init(&e.val)
	}
	place(*sp, e)
	t.count++
	return &e.val, true
}

// Len returns the number of entries.
func (t *Table[V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// grow publishes a table twice the size (at least 64 slots) holding every
// entry. Readers on the old slice still find every entry it held.
func (t *Table[V]) grow(old *[]slot[V]) *[]slot[V] {
	n := 64
	if old != nil {
		n = 2 * len(*old)
	}
	slots := make([]slot[V], n)
	if old != nil {
		for i := range *old {
			if e := (*old)[i].p.Load(); e != nil {
				place(slots, e)
			}
		}
	}
	t.slots.Store(&slots)
	return &slots
}

func place[V any](slots []slot[V], e *entry[V]) {
	mask := uint64(len(slots) - 1)
	for i := binary.LittleEndian.Uint64(e.key[:8]) & mask; ; i = (i + 1) & mask {
		if slots[i].p.Load() == nil {
			slots[i].p.Store(e)
			return
		}
	}
}

// Range calls f for every entry, in no particular order, until f returns
// false. Entries inserted during Range may or may not be visited.
func (t *Table[V]) Range(f func(key apikey.Hash, val *V) bool) {
	sp := t.slots.Load()
	if sp == nil {
		return
	}
	for i := range *sp {
		if e := (*sp)[i].p.Load(); e != nil && !f(e.key, &e.val) {
			return
		}
	}
}

// same compares two hashes word by word, inline: == on [32]byte calls the
// runtime's general memequal, which costs more than the lookup itself.
func same(a, b *apikey.Hash) bool {
	return binary.LittleEndian.Uint64(a[0:]) == binary.LittleEndian.Uint64(b[0:]) &&
		binary.LittleEndian.Uint64(a[8:]) == binary.LittleEndian.Uint64(b[8:]) &&
		binary.LittleEndian.Uint64(a[16:]) == binary.LittleEndian.Uint64(b[16:]) &&
		binary.LittleEndian.Uint64(a[24:]) == binary.LittleEndian.Uint64(b[24:])
}
