package benchmarks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/middleware"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks
// measure the handlers, not a recorder.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}

// app is the application handler: it reads the key from the request
// context, as a real handler does, and answers 204.
func app(w http.ResponseWriter, r *http.Request) {
	if _, ok := middleware.KeyFrom(r.Context()); !ok {
		panic("no key in the context")
	}
	w.WriteHeader(http.StatusNoContent)
}

var (
	bearersOnce sync.Once
	bearersList []string
)

// bearers returns the Authorization values of the memory population,
// built once.
func bearers(b *testing.B) []string {
	bearersOnce.Do(func() {
		raws := benchkeys.Keys(b).Raws
		bearersList = make([]string, len(raws))
		for i, raw := range raws {
			bearersList[i] = "Bearer " + raw
		}
	})
	return bearersList
}

// serveRuns runs h over the memory population's access patterns, serially
// and in parallel. Each goroutine reuses one request, as a server's
// freshly read request is hot in cache, and sets only its key.
func serveRuns(b *testing.B, h http.Handler) {
	auths := bearers(b)
	newReq := func() (*http.Request, []string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
		r.Header.Set("Authorization", "Bearer placeholder")
		return r, r.Header["Authorization"]
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, pattern := range benchkeys.Patterns {
			pick := benchkeys.Picker(pattern)
			b.Run(mode+"/"+pattern, func(b *testing.B) {
				b.ReportAllocs()
				if mode == "serial" {
					r, auth := newReq()
					w := discard{h: http.Header{}}
					i := 0
					for b.Loop() {
						auth[0] = auths[pick(i)]
						h.ServeHTTP(w, r)
						i++
					}
					return
				}
				var worker atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					r, auth := newReq()
					w := discard{h: http.Header{}}
					i := int(worker.Add(1)) * 104729
					for pb.Next() {
						auth[0] = auths[pick(i)]
						h.ServeHTTP(w, r)
						i++
					}
				})
			})
		}
	}
}

// memKeys returns the lifecycle over the memory population, every key
// verified once (the steady state; see BenchmarkVerifyMemory).
func memKeys(b *testing.B) *keyward.Keys {
	keys, err := keyward.New(benchkeys.Memory(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close() })
	for _, raw := range benchkeys.Keys(b).Raws {
		if _, err := keys.Verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
	}
	return keys
}

// BenchmarkMiddleware serves a trivial handler under httptest requests,
// bare (no authentication: the cost of the harness) and behind
// middleware.Authenticate over the memory store of 1,000,000 keys. The
// handler reads the key from the request context.
func BenchmarkMiddleware(b *testing.B) {
	keys := memKeys(b)
	b.Run("bare", func(b *testing.B) {
		serveRuns(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
	})
	b.Run("authenticate", func(b *testing.B) {
		serveRuns(b, middleware.Authenticate(keys)(http.HandlerFunc(app)))
	})
}

// BenchmarkEchoKeyAuth is the peer: echo's KeyAuth middleware, with a
// validator doing the same lookup (keyward's Verify on the same store) and
// putting the record in echo's context, in front of an echo handler that
// reads it.
func BenchmarkEchoKeyAuth(b *testing.B) {
	keys := memKeys(b)
	e := echo.New()
	e.Use(echomw.KeyAuth(func(key string, c echo.Context) (bool, error) {
		rec, err := keys.Verify(c.Request().Context(), key)
		switch {
		case errors.Is(err, keyward.ErrInvalidKey):
			return false, nil
		case err != nil:
			return false, err
		}
		c.Set("key", rec)
		return true, nil
	}))
	e.GET("/api/v1/sessions", func(c echo.Context) error {
		if _, ok := c.Get("key").(apikey.Record); !ok {
			panic("no key in the context")
		}
		return c.NoContent(http.StatusNoContent)
	})
	serveRuns(b, e)
}
