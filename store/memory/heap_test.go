package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/heapcheck"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// BenchmarkHeapPerKey reports the heap a key takes in the store, all its
// structures included (the record, its entry in the hash table, the
// indexes by ID and owner, its audit entry), at 1M keys of 1,000 owners
// created as an application creates them: B/key and objects/key.
//
//	go test -run '^$' -bench HeapPerKey -benchtime 1x ./store/memory/
func BenchmarkHeapPerKey(b *testing.B) {
	const n = 1_000_000
	scopes := scope.NewSet(scope.SessionsWrite, scope.LinksRead)
	owners := make([]string, 1000)
	for i := range owners {
		owners[i] = fmt.Sprintf("acct_%05d", i)
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for b.Loop() {
		before := heapcheck.Settled()
		st := memory.New()
		for i := range n {
			sec, err := apikey.Generate(apikey.Live)
			if err != nil {
				b.Fatal(err)
			}
			raw := sec.Reveal()
			rec := apikey.Record{
				ID: uuid.New(), Owner: owners[i%len(owners)], Name: "Production server",
				Prefix: apikey.Default.DisplayPrefix(raw), Mode: apikey.Live, Scopes: scopes,
				Hash: apikey.HashOf(raw), CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
			}
			if _, err := st.Create(ctx, rec, store.Idempotency{}); err != nil {
				b.Fatal(err)
			}
		}
		after := heapcheck.Settled()
		runtime.KeepAlive(st)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/key")
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/n, "objects/key")
	}
}
