package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// benchUsed is the number of keys the benchmarks send, spread over the
// store.
const benchUsed = 1000

// benchSizes are the store sizes benchmarked: the million keys of the
// goal, and a thousand, where the garbage collector has little heap to
// mark, to show the middleware's own cost.
var benchSizes = []int{1_000_000, 1_000}

// A benchStore is a lifecycle over a memory store holding n keys, and
// benchUsed of them, as raw keys and as Authorization values.
type benchStore struct {
	keys  *keyward.Keys
	raws  []string
	auths []string // "Bearer " + raw
}

var (
	benchMu    sync.Mutex
	benchCache *benchStore // the store of the last size asked for
	benchSize  int
)

// benchSetup returns the store of n keys. Records go straight to the store,
// sharing one scope set, to keep the set-up short; Verify sees ordinary
// records. Only one store lives at a time, so that the heap the garbage
// collector marks is that of the size measured: asking for another size
// frees the previous store. To avoid rebuilding the large store, select one
// size per run, such as -bench '/keys=1000000/'.
func benchSetup(b *testing.B, n int) *benchStore {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	defer b.ResetTimer()
	if benchCache != nil && benchSize == n {
		return benchCache
	}
	if benchCache != nil {
		benchCache.keys.Close()
		benchCache = nil
		runtime.GC()
	}
	st := memory.New()
	set := scope.NewSet(scope.Default.Scopes()...)
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	ctx := context.Background()
	bs := new(benchStore)
	for i := range n {
		sec, err := apikey.Generate(apikey.Test)
		if err != nil {
			b.Fatal(err)
		}
		rec := apikey.Record{
			ID:        uuid.New(),
			Owner:     "acct_bench",
			Name:      "bench",
			Prefix:    sec.DisplayPrefix(),
			Mode:      apikey.Test,
			Scopes:    set,
			Hash:      sec.Hash(),
			CreatedAt: created.Add(time.Duration(i) * time.Microsecond),
		}
		if _, err := st.Create(ctx, rec, store.Idempotency{}); err != nil {
			b.Fatal(err)
		}
		if i%(n/benchUsed) == 0 && len(bs.raws) < benchUsed {
			bs.raws = append(bs.raws, sec.Reveal())
		}
	}
	keys, err := keyward.New(st)
	if err != nil {
		b.Fatal(err)
	}
	bs.keys = keys
	for _, raw := range bs.raws {
		bs.auths = append(bs.auths, "Bearer "+raw)
	}
	benchCache, benchSize = bs, n
	runtime.GC() // start the timed loop without the set-up's garbage
	return bs
}

// discard is a ResponseWriter that keeps nothing, so that benchmarks
// measure the handlers, not a recorder.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
func newDiscard() http.ResponseWriter       { return discard{h: http.Header{}} }

// newBenchRequest returns a request and its Authorization values, to set
// before each use. Like a request a server has just read, it stays in the
// cache; only the key changes, spread over the store as in BenchmarkVerify.
func newBenchRequest() (*http.Request, []string) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	r.Header.Set("Authorization", "Bearer placeholder")
	return r, r.Header["Authorization"]
}

// trivial is the application handler: it reads the key, as a real handler
// does, and answers 204.
type trivial bool

func (t trivial) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec, ok := middleware.KeyFrom(r.Context())
	if bool(t) && (!ok || rec.Mode != apikey.Test) {
		panic("no key in the context")
	}
	w.WriteHeader(http.StatusNoContent)
}

// BenchmarkVerify is the cost of keyward.Keys.Verify alone, the floor of
// the middleware's cost.
func BenchmarkVerify(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d/serial", n), func(b *testing.B) {
			bs := benchSetup(b, n)
			b.ReportAllocs()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := bs.keys.Verify(ctx, bs.raws[i%benchUsed]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("keys=%d/parallel", n), func(b *testing.B) {
			bs := benchSetup(b, n)
			b.ReportAllocs()
			var seed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				i := int(seed.Add(7919))
				for pb.Next() {
					if _, err := bs.keys.Verify(ctx, bs.raws[i%benchUsed]); err != nil {
						panic(err)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkHandler serves a trivial handler bare and behind Authenticate:
// the difference is the middleware's overhead.
func BenchmarkHandler(b *testing.B) {
	for _, n := range benchSizes {
		for _, bc := range []struct {
			name string
			h    func(*benchStore) http.Handler
		}{
			{"bare", func(*benchStore) http.Handler { return trivial(false) }},
			{"authenticate", func(bs *benchStore) http.Handler { return middleware.Authenticate(bs.keys)(trivial(true)) }},
		} {
			b.Run(fmt.Sprintf("keys=%d/%s/serial", n, bc.name), func(b *testing.B) {
				bs := benchSetup(b, n)
				h := bc.h(bs)
				w := newDiscard()
				r, auth := newBenchRequest()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					auth[0] = bs.auths[i%benchUsed]
					h.ServeHTTP(w, r)
					i++
				}
			})
			b.Run(fmt.Sprintf("keys=%d/%s/parallel", n, bc.name), func(b *testing.B) {
				bs := benchSetup(b, n)
				h := bc.h(bs)
				b.ReportAllocs()
				var seed atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					w := newDiscard()
					r, auth := newBenchRequest()
					i := int(seed.Add(7919))
					for pb.Next() {
						auth[0] = bs.auths[i%benchUsed]
						h.ServeHTTP(w, r)
						i++
					}
				})
			})
		}
	}
}

// BenchmarkRefusal measures the middleware refusing keys that never reach
// the store, side by side: a malformed key, and a key of a checksummed
// format whose checksum fails (a mistyped or invented key), which costs
// the checksum but no hash and no lookup.
func BenchmarkRefusal(b *testing.B) {
	sum, err := apikey.NewFormat("ck", apikey.WithChecksum())
	if err != nil {
		b.Fatal(err)
	}
	keys, err := keyward.New(memory.New(), keyward.WithFormat(sum))
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	sec, err := sum.Generate(apikey.Test)
	if err != nil {
		b.Fatal(err)
	}
	good := sec.Reveal()
	bad := good[:len(good)-1] + "0"
	if bad == good {
		bad = good[:len(good)-1] + "1"
	}
	h := middleware.Authenticate(keys)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, bc := range []struct{ name, key string }{
		{"malformed", good[:len(good)-7]}, // too short: refused on length
		{"bad-checksum", bad},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/v1/links", nil)
			r.Header.Set("Authorization", "Bearer "+bc.key)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if w.code != http.StatusUnauthorized {
				b.Fatalf("status %d, want 401", w.code)
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
