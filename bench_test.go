package keyward_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

const benchKeys = 1_000_000

var bench struct {
	once  sync.Once
	store *memory.Store
	raws  []string
}

// benchStore returns a memory store holding 1,000,000 active keys, and
// their raw forms. It is built once per test binary.
func benchStore(b *testing.B) (*memory.Store, []string) {
	b.Helper()
	bench.once.Do(func() {
		st := memory.New()
		raws := make([]string, benchKeys)
		created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		scopes := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
		ctx := context.Background()
		for i := range raws {
			sec, err := apikey.Generate(apikey.Live)
			if err != nil {
				b.Fatal(err)
			}
			raws[i] = sec.Reveal()
			err = st.Create(ctx, apikey.Record{
				ID:        uuid.New(),
				Name:      "bench",
				Prefix:    sec.DisplayPrefix(),
				Mode:      apikey.Live,
				Scopes:    scopes,
				Hash:      sec.Hash(),
				CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		bench.store, bench.raws = st, raws
	})
	return bench.store, bench.raws
}

// BenchmarkVerifyMemory measures Keys.Verify against the memory store
// holding 1,000,000 keys: "hot" verifies one key, "uniform" cycles through
// all of them (cache-unfriendly, every key's use recorded).
func BenchmarkVerifyMemory(b *testing.B) {
	st, raws := benchStore(b)
	keys, err := keyward.New(st)
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	for _, pattern := range []string{"hot", "uniform"} {
		pick := func(i int) string { return raws[0] }
		if pattern == "uniform" {
			// A multiplicative step visits keys in a scattered order.
			pick = func(i int) string { return raws[(i*7919)%len(raws)] }
		}
		b.Run("serial/"+pattern, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := keys.Verify(ctx, pick(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("parallel/"+pattern, func(b *testing.B) {
			b.ReportAllocs()
			var worker atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) * 104729
				for pb.Next() {
					if _, err := keys.Verify(ctx, pick(i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
