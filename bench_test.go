package keyward_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
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

// BenchmarkVerifyRefused compares, side by side, what Verify costs for a
// key that does not exist and for a canary key, which must answer in the
// same time class: both hash the key and look it up; the canary also
// queues its trip (or counts it dropped when the writer is behind).
func BenchmarkVerifyRefused(b *testing.B) {
	keys, err := keyward.New(memory.New(), keyward.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	sec, _, err := keys.Owner("acct_bench").Create(ctx, keyward.CreateParams{
		Name: "canary", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead), Canary: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	unknown, err := apikey.Generate(apikey.Live)
	if err != nil {
		b.Fatal(err)
	}
	caller := keyward.Caller{Addr: "203.0.113.9:51234", UserAgent: "curl/8.5.0", Method: "GET", Path: "/v1/links"}
	for _, bc := range []struct{ name, raw string }{{"unknown", unknown.Reveal()}, {"canary", sec.Reveal()}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := keys.VerifyFrom(ctx, bc.raw, caller); err != keyward.ErrUnknownKey {
					b.Fatal(err)
				}
			}
		})
	}
}
