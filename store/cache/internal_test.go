package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// nowhere is a store that has no key and answers at once, without a
// change feed: the cheapest store a flood of unknown keys can hit.
type nowhere struct{ store.Store }

func (nowhere) GetByHash(context.Context, apikey.Hash) (apikey.Record, error) {
	return apikey.Record{}, store.ErrNotFound
}

func newNowhere(t testing.TB, opts ...Option) *Store {
	t.Helper()
	c, err := New(nowhere{memory.New()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// randomHash returns a hash no key has, cheaply and without allocating.
func randomHash(r *rand.Rand) apikey.Hash {
	var h apikey.Hash
	for i := 0; i < len(h); i += 8 {
		binary.LittleEndian.PutUint64(h[i:], r.Uint64())
	}
	return h
}

func (sh *shard) writes() int64 {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.writeLocks
}

// TestUnknownPathLocks: a first lookup of a hash no key has takes its
// shard's write lock once, to record it; a lookup of a hash recorded
// takes it never. Neither allocates once the cache has warmed up.
func TestUnknownPathLocks(t *testing.T) {
	c := newNowhere(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 { // warm up: the flights' free lists
		_, _ = c.GetByHash(ctx, randomHash(r))
	}

	h := randomHash(r)
	sh := c.shard(h)
	before := sh.writes()
	if _, err := c.GetByHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if n := sh.writes() - before; n != 1 {
		t.Errorf("a first lookup of an unknown hash took the write lock %d times, want 1", n)
	}
	before = sh.writes()
	for range 10 {
		if _, err := c.GetByHash(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := c.GetByHashLocal(h); err != store.ErrNotFound {
			t.Fatal(err)
		}
	}
	if n := sh.writes() - before; n != 0 {
		t.Errorf("lookups of a hash cached as unknown took the write lock %d times, want 0", n)
	}
	if st := c.Stats(); st.UnknownHits != 20 {
		t.Errorf("UnknownHits = %d, want 20", st.UnknownHits)
	}

	if n := testing.AllocsPerRun(1000, func() { _, _ = c.GetByHash(ctx, randomHash(r)) }); n != 0 {
		t.Errorf("a first lookup of an unknown hash allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = c.GetByHash(ctx, h) }); n != 0 {
		t.Errorf("a lookup of a hash cached as unknown allocates %v times", n)
	}
}

// TestUnknownSet: the set is exact (hashes that share a group are told
// apart by every byte), bounded, and forgets what it is told to.
func TestUnknownSet(t *testing.T) {
	u := unknownSet{slots: make([]apikey.Hash, 2*5), used: make([]uint8, 2), ways: 5}
	r := rand.New(rand.NewPCG(3, 4))
	// Hashes of one group: the same bytes 8 to 15, differing elsewhere.
	group := make([]apikey.Hash, 5)
	for i := range group {
		group[i] = randomHash(r)
		copy(group[i][8:16], group[0][8:16])
	}
	for _, h := range group {
		u.add(h)
		u.add(h) // once only
	}
	if u.n != 5 {
		t.Fatalf("n = %d after adding 5 hashes of one group, want 5", u.n)
	}
	for _, h := range group {
		if !u.has(h) {
			t.Errorf("%x missing", h[:4])
		}
		for i := range h {
			other := h
			other[i] ^= 1
			if u.has(other) {
				t.Errorf("the set has %x, which differs from %x in byte %d", other[:4], h[:4], i)
			}
		}
	}
	u.remove(group[2])
	if u.has(group[2]) || u.n != 4 {
		t.Errorf("after remove: has %v, n %d", u.has(group[2]), u.n)
	}
	u.remove(group[2]) // absent: nothing happens
	if u.n != 4 {
		t.Errorf("removing an absent hash changed n to %d", u.n)
	}
	// A full group replaces one of its hashes.
	u.add(group[2])
	extra := randomHash(r)
	copy(extra[8:16], group[0][8:16])
	u.add(extra)
	held := 0
	for _, h := range append(group, extra) {
		if u.has(h) {
			held++
		}
	}
	if !u.has(extra) || held != 5 || u.n != 5 {
		t.Errorf("adding to a full group: new hash held %v, %d of 6 held, n %d; want true, 5, 5", u.has(extra), held, u.n)
	}
	for range 1000 {
		u.add(randomHash(r))
	}
	if u.n != 10 {
		t.Errorf("n = %d after a flood, want the capacity, 10", u.n)
	}
}

func TestShape(t *testing.T) {
	for n := 1; n < 5000; n++ {
		w, g := shape(n)
		if w*g > n || w*g < n-3 || w > ways || (n >= 4 && w < 4) {
			t.Errorf("shape(%d) = %d ways × %d groups", n, w, g)
		}
	}
}
