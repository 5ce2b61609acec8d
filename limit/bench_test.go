package limit_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/limit"
)

// BenchmarkMemoryAllow measures Allow under a rate limit and a quota, on
// one hot key and on 100,000 keys chosen uniformly, each serial and
// parallel; time advances 1 µs per request in each goroutine.
//
//	go test ./limit -run '^$' -bench Memory -benchmem -cpu 1,2
func BenchmarkMemoryAllow(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		m := limit.NewMemory()
		ids := make([]uuid.UUID, keys)
		for i := range ids {
			ids[i] = uuid.New()
			mustAllow(b, m, ids[i], both, base)
		}
		name := "hot"
		if keys > 1 {
			name = "100k"
		}
		b.Run(name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			now, r := base, rng(1)
			for b.Loop() {
				now = now.Add(time.Microsecond)
				if _, err := m.Allow(ctx, ids[r.next()%uint64(keys)], both, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				now, r := base, rng(uint64(time.Now().UnixNano()))
				for pb.Next() {
					now = now.Add(time.Microsecond)
					if _, err := m.Allow(ctx, ids[r.next()%uint64(keys)], both, now); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkMemoryPeek measures Peek of a hot key.
func BenchmarkMemoryPeek(b *testing.B) {
	m, id := limit.NewMemory(), uuid.New()
	mustAllow(b, m, id, both, base)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Peek(ctx, id, both, base); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemorySweep measures a sweep of 1,000,000 keys none of which
// is idle: the time a full Memory spends looking for room, and, divided
// by 64, the time one shard's sweep holds its lock.
func BenchmarkMemorySweep(b *testing.B) {
	m := limit.NewMemory()
	for range 1_000_000 {
		mustAllow(b, m, uuid.New(), both, base)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := m.Sweep(base); n != 0 {
			b.Fatalf("swept %d keys", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/key")
}

// rng is a xorshift generator: cheap, and one per goroutine.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}
