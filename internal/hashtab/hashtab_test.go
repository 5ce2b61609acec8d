package hashtab_test

import (
	"crypto/rand"
	"sync"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/hashtab"
)

func randomHash() apikey.Hash {
	var h apikey.Hash
	_, _ = rand.Read(h[:])
	return h
}

func TestTableMatchesAMap(t *testing.T) {
	var tab hashtab.Table[int]
	want := map[apikey.Hash]*int{}
	for i := range 10_000 {
		h := randomHash()
		if i%3 == 0 {
			h[8] = 0 // neighbours in probing order: collide on the low bytes
			h[0], h[1] = byte(i), 0
		}
		got, added := tab.Insert(h, func(v *int) { *v = i })
		if !added || *got != i {
			t.Fatalf("Insert of a new key = %v, %v", *got, added)
		}
		want[h] = got
	}
	if tab.Len() != len(want) {
		t.Errorf("Len = %d, want %d", tab.Len(), len(want))
	}
	for h, v := range want {
		if got := tab.Get(h); got != v {
			t.Fatalf("Get = %v, want %v", got, v)
		}
		if got, added := tab.Insert(h, func(v *int) { *v = -1 }); got != v || added || *v == -1 {
			t.Fatal("Insert of a present key replaced it")
		}
	}
	for range 1000 {
		if tab.Get(randomHash()) != nil {
			t.Fatal("Get of an absent key found something")
		}
	}
	seen := 0
	tab.Range(func(h apikey.Hash, v *int) bool {
		if want[h] != v {
			t.Fatalf("Range yields a wrong pair")
		}
		seen++
		return true
	})
	if seen != len(want) {
		t.Errorf("Range visited %d entries, want %d", seen, len(want))
	}
}

func TestEmptyTable(t *testing.T) {
	var tab hashtab.Table[int]
	if tab.Get(randomHash()) != nil || tab.Len() != 0 {
		t.Error("the zero table is not empty")
	}
	tab.Range(func(apikey.Hash, *int) bool { t.Error("Range of an empty table called f"); return true })
}

// TestConcurrentInsertAndGet runs readers during growth: every key a
// reader was told about must be found, under the race detector.
func TestConcurrentInsertAndGet(t *testing.T) {
	var tab hashtab.Table[int]
	const n = 5_000
	keys := make([]apikey.Hash, n)
	for i := range keys {
		keys[i] = randomHash()
	}
	inserted := make(chan int, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(inserted)
		for i := range keys {
			tab.Insert(keys[i], func(v *int) { *v = i })
			inserted <- i
		}
	})
	for range 3 {
		wg.Go(func() {
			for i := range inserted {
				if v := tab.Get(keys[i]); v == nil || *v != i {
					t.Errorf("key %d inserted but Get = %v", i, v)
					return
				}
				_ = tab.Get(keys[(i*31)%n]) // possibly absent: must not crash
			}
		})
	}
	wg.Wait()
}

func TestGetDoesNotAllocate(t *testing.T) {
	var tab hashtab.Table[int]
	h := randomHash()
	tab.Insert(h, nil)
	if n := testing.AllocsPerRun(100, func() { _ = tab.Get(h) }); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}
