package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
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

// newPolicyBenchStore returns a lifecycle over a memory store of benchUsed
// keys, all with policy p (nil for none), and their Authorization values.
func newPolicyBenchStore(b *testing.B, p *apikey.Policy) *benchStore {
	b.Helper()
	st := memory.New()
	set := scope.NewSet(scope.Default.Scopes()...)
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	bs := new(benchStore)
	for i := range benchUsed {
		sec, err := apikey.Generate(apikey.Test)
		if err != nil {
			b.Fatal(err)
		}
		rec := apikey.Record{
			ID: uuid.New(), Owner: "acct_bench", Name: "bench", Prefix: sec.DisplayPrefix(), Mode: apikey.Test,
			Scopes: set, Hash: sec.Hash(), CreatedAt: created.Add(time.Duration(i) * time.Microsecond), Policy: p,
		}
		if _, err := st.Create(context.Background(), rec, store.Idempotency{}); err != nil {
			b.Fatal(err)
		}
		bs.raws = append(bs.raws, sec.Reveal())
		bs.auths = append(bs.auths, "Bearer "+sec.Reveal())
	}
	keys, err := keyward.New(st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close() })
	bs.keys = keys
	runtime.GC()
	return bs
}

// BenchmarkPolicy serves a trivial handler behind Authenticate over a
// thousand keys that all have the same policy: none (the path of
// BenchmarkHandler), networks, or a rate limit and a quota enforced by
// limit.Memory (limits so high that every request is allowed), with and
// without the options that policies use. The requests come from
// 192.0.2.1, or through a trusted proxy at 10.0.0.1 that says so.
func BenchmarkPolicy(b *testing.B) {
	const ip = "192.0.2.1"
	networks := &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	limits := &apikey.Policy{
		Rate:  apikey.RateLimit{Requests: apikey.MaxRateRequests, Period: time.Second},
		Quota: apikey.Quota{Requests: apikey.MaxQuotaRequests, Per: apikey.Month},
	}
	proxy := middleware.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))
	for _, bc := range []struct {
		name    string
		policy  *apikey.Policy
		opts    func() []middleware.Option
		proxied bool
	}{
		{"none", nil, nil, false},
		{"none/limiter", nil, func() []middleware.Option { return []middleware.Option{middleware.WithLimiter(limit.NewMemory())} }, false},
		{"none/proxied", nil, func() []middleware.Option { return []middleware.Option{proxy} }, true},
		{"networks", networks, nil, false},
		{"networks/proxied", networks, func() []middleware.Option { return []middleware.Option{proxy} }, true},
		{"limits/memory", limits, func() []middleware.Option { return []middleware.Option{middleware.WithLimiter(limit.NewMemory())} }, false},
	} {
		request := func() (*http.Request, []string) {
			r, auth := newBenchRequest()
			r.RemoteAddr = ip + ":1234"
			if bc.proxied {
				r.RemoteAddr = "10.0.0.1:1234"
				r.Header.Set("X-Forwarded-For", ip+", 10.0.0.2")
			}
			return r, auth
		}
		handler := func(bs *benchStore) http.Handler {
			var opts []middleware.Option
			if bc.opts != nil {
				opts = bc.opts()
			}
			return middleware.Authenticate(bs.keys, opts...)(trivial(true))
		}
		b.Run(bc.name+"/serial", func(b *testing.B) {
			bs := newPolicyBenchStore(b, bc.policy)
			h := handler(bs)
			w := &discardWriter{h: http.Header{}}
			r, auth := request()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				auth[0] = bs.auths[i%benchUsed]
				h.ServeHTTP(w, r)
				i++
			}
			if w.code != http.StatusNoContent {
				b.Fatalf("status %d, want 204", w.code)
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			bs := newPolicyBenchStore(b, bc.policy)
			h := handler(bs)
			b.ReportAllocs()
			var seed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				r, auth := request()
				i := int(seed.Add(7919))
				for pb.Next() {
					auth[0] = bs.auths[i%benchUsed]
					h.ServeHTTP(w, r)
					i++
				}
				if w.code != 0 && w.code != http.StatusNoContent {
					panic(fmt.Sprintf("status %d, want 204", w.code))
				}
			})
		})
	}
}
