package keyward_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
)

// BenchmarkFloor is the least any verification can cost: the SHA-256 of
// the key and one lookup in a plain Go map of 1,000,000 records, with no
// parsing, locking, status check or use recording.
func BenchmarkFloor(b *testing.B) {
	pop := benchkeys.Keys(b)
	m := make(map[apikey.Hash]*apikey.Record, len(pop.Records))
	for i := range pop.Records {
		m[pop.Records[i].Hash] = &pop.Records[i]
	}
	benchkeys.Run(b, 1, func(i int) string { return pop.Raws[i] }, func(raw string) error {
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
	raws := benchkeys.Keys(b).Raws
	benchkeys.Run(b, 1, func(i int) string { return raws[i] }, func(raw string) error {
		_, err := keys.Verify(ctx, raw)
		return err
	})
}
