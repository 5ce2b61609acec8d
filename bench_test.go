package keyward_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
)

// runPatterns runs op serially and in parallel over each access pattern of
// benchkeys, with allocation reporting: sub-benchmarks are named
// serial/hot, serial/uniform, parallel/hot and parallel/uniform.
func runPatterns(b *testing.B, raws []string, op func(raw string) error) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, pattern := range benchkeys.Patterns {
			pick := benchkeys.Picker(pattern)
			b.Run(mode+"/"+pattern, func(b *testing.B) {
				b.ReportAllocs()
				if mode == "serial" {
					i := 0
					for b.Loop() {
						if err := op(raws[pick(i)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
					return
				}
				var worker atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(worker.Add(1)) * 104729 // workers start far apart
					for pb.Next() {
						if err := op(raws[pick(i)]); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkFloor is the least any verification can cost: the SHA-256 of
// the key and one lookup in a plain Go map of 1,000,000 records, with no
// parsing, locking, status check or use recording.
func BenchmarkFloor(b *testing.B) {
	pop := benchkeys.Keys(b)
	m := make(map[apikey.Hash]*apikey.Record, len(pop.Records))
	for i := range pop.Records {
		m[pop.Records[i].Hash] = &pop.Records[i]
	}
	runPatterns(b, pop.Raws, func(raw string) error {
		if m[apikey.HashOf(raw)] == nil {
			b.Fatal("missing key")
		}
		return nil
	})
}

// BenchmarkVerifyMemory measures Keys.Verify against the memory store
// holding 1,000,000 keys.
func BenchmarkVerifyMemory(b *testing.B) {
	keys, err := keyward.New(benchkeys.Memory(b))
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	runPatterns(b, benchkeys.Keys(b).Raws, func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	})
}
