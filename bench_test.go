package keyward_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/benchkeys"
)

// BenchmarkVerifyMemory measures Keys.Verify against the memory store
// holding 1,000,000 keys. The comparative module benchmarks/ runs it beside
// its floor (SHA-256 and a plain map lookup) and the other paths; see
// BENCHMARKS.md.
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
