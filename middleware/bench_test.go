package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

const (
	benchKeys = 1_000_000 // keys in the store
	benchUsed = 1024      // keys the benchmarks send, spread over the store
)

var bench struct {
	once sync.Once
	keys *keyward.Keys
	raws []string
	reqs []*http.Request
}

// benchSetup fills a memory store with a million keys, once per process.
// Records go straight to the store, sharing one scope set, to keep the
// set-up short; Verify sees ordinary records.
func benchSetup(b *testing.B) {
	b.Helper()
	bench.once.Do(func() {
		st := memory.New()
		set := scope.NewSet(scope.Default.Scopes()...)
		created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
		ctx := context.Background()
		for i := range benchKeys {
			sec, err := apikey.Generate(apikey.Test)
			if err != nil {
				panic(err)
			}
			rec := apikey.Record{
				ID:        uuid.New(),
				Name:      "bench",
				Prefix:    sec.DisplayPrefix(),
				Mode:      apikey.Test,
				Scopes:    set,
				Hash:      sec.Hash(),
				CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
			}
			if err := st.Create(ctx, rec); err != nil {
				panic(err)
			}
			if i%(benchKeys/benchUsed) == 0 && len(bench.raws) < benchUsed {
				bench.raws = append(bench.raws, sec.Reveal())
			}
		}
		keys, err := keyward.New(st)
		if err != nil {
			panic(err)
		}
		bench.keys = keys
		for _, raw := range bench.raws {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
			r.Header.Set("Authorization", "Bearer "+raw)
			bench.reqs = append(bench.reqs, r)
		}
	})
	b.ResetTimer()
}

// discard is a ResponseWriter that keeps nothing, so that benchmarks
// measure the handlers, not a recorder.
type discard struct{ h http.Header }

func (d discard) Header() http.Header                              { return d.h }
func (discard) Write(p []byte) (int, error)                        { return len(p), nil }
func (discard) WriteHeader(int)                                    {}
func newDiscard() http.ResponseWriter                              { return discard{h: http.Header{}} }
func benchHandler(auth bool) http.Handler                          { return trivial(auth) }
func (t trivial) ServeHTTP(w http.ResponseWriter, r *http.Request) { t.serve(w, r) }

// trivial is the application handler: it reads the key, as a real handler
// does, and answers 204.
type trivial bool

func (t trivial) serve(w http.ResponseWriter, r *http.Request) {
	rec, ok := middleware.KeyFrom(r.Context())
	if bool(t) && (!ok || rec.Mode != apikey.Test) {
		panic("no key in the context")
	}
	w.WriteHeader(http.StatusNoContent)
}

// BenchmarkVerify is the cost of keyward.Keys.Verify alone, the floor of
// the middleware's cost.
func BenchmarkVerify(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		benchSetup(b)
		b.ReportAllocs()
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if _, err := bench.keys.Verify(ctx, bench.raws[i%benchUsed]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		benchSetup(b)
		b.ReportAllocs()
		var seed atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := int(seed.Add(7919))
			for pb.Next() {
				if _, err := bench.keys.Verify(ctx, bench.raws[i%benchUsed]); err != nil {
					panic(err)
				}
				i++
			}
		})
	})
}

// BenchmarkHandler serves a trivial handler bare and behind Authenticate:
// the difference is the middleware's overhead.
func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    func() http.Handler
	}{
		{"bare", func() http.Handler { return benchHandler(false) }},
		{"authenticate", func() http.Handler { return middleware.Authenticate(bench.keys)(benchHandler(true)) }},
	} {
		b.Run(bc.name+"/serial", func(b *testing.B) {
			benchSetup(b)
			h := bc.h()
			w := newDiscard()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.ServeHTTP(w, bench.reqs[i%benchUsed])
				i++
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			benchSetup(b)
			h := bc.h()
			b.ReportAllocs()
			var seed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				w := newDiscard()
				i := int(seed.Add(7919))
				for pb.Next() {
					h.ServeHTTP(w, bench.reqs[i%benchUsed])
					i++
				}
			})
		})
	}
}
