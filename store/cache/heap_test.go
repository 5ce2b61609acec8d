package cache_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/heapcheck"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// freshStore answers lookups with records whose strings are their own,
// as the PostgreSQL store's are (owner, prefix and name in one
// allocation), so that the cache's heap counts them.
type freshStore struct{ *memory.Store }

func (s freshStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	rec, err := s.Store.GetByHash(ctx, h)
	text := rec.Owner + rec.Prefix + rec.Name // a new string: concatenation copies
	rec.Owner, rec.Prefix, rec.Name = text[:len(rec.Owner)], text[len(rec.Owner):len(rec.Owner)+len(rec.Prefix)], text[len(rec.Owner)+len(rec.Prefix):]
	return rec, err
}

// BenchmarkHeapPerEntry reports the heap a cached record takes, all the
// cache's structures included, with DefaultMaxEntries records cached
// (in a cache sized for twice as many, so that none is evicted), read from a store whose records have strings of their own, as
// PostgreSQL's do; scope sets are shared, as the PostgreSQL store shares
// them): B/entry and objects/entry.
//
//	go test -run '^$' -bench HeapPerEntry -benchtime 1x ./store/cache/
func BenchmarkHeapPerEntry(b *testing.B) {
	const n = cache.DefaultMaxEntries
	ctx := context.Background()
	st := memory.New()
	scopes := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	hashes := make([]apikey.Hash, n)
	for i := range hashes {
		sec, err := apikey.Generate(apikey.Live)
		if err != nil {
			b.Fatal(err)
		}
		rec := apikey.Record{
			ID: uuid.New(), Owner: "acct_00042", Name: "Production server", Prefix: sec.DisplayPrefix(),
			Mode: apikey.Live, Scopes: scopes, Hash: sec.Hash(), CreatedAt: time.Now(),
		}
		if _, err := st.Create(ctx, rec, store.Idempotency{}); err != nil {
			b.Fatal(err)
		}
		hashes[i] = rec.Hash
	}
	for b.Loop() {
		before := heapcheck.Settled()
		c, err := cache.New(freshStore{st}, cache.WithBound(time.Hour), cache.WithMaxEntries(2*n))
		if err != nil {
			b.Fatal(err)
		}
		// Records read before the first poll of the change feed are not
		// kept: wait for it.
		for deadline := time.Now().Add(30 * time.Second); c.Stats().Polls < 1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("no poll of the change feed in 30s")
			}
		}
		for _, h := range hashes {
			if _, err := c.GetByHash(ctx, h); err != nil {
				b.Fatal(err)
			}
		}
		if got := c.Stats().Known; got != n {
			b.Fatalf("%d entries cached, want %d", got, n)
		}
		after := heapcheck.Settled()
		runtime.KeepAlive(c)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/entry")
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/n, "objects/entry")
		c.Close()
	}
}
