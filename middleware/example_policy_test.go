package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// A server behind load balancers in 10.0.0.0/8, and a key that works only
// from the office network, 203.0.113.0/24. The client's address is read
// from X-Forwarded-For, right to left, past the load balancers only: a
// client cannot choose it by sending the header.
func ExampleWithTrustedProxies() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{
		Name:   "Office backend",
		Mode:   apikey.Live,
		Scopes: scope.NewSet(scope.SessionsRead),
		Policy: &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	})
	if err != nil {
		log.Fatal(err)
	}

	handler := middleware.Authenticate(keys,
		middleware.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")),
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _ := middleware.ClientAddrFrom(r.Context()) // for logs, too
		fmt.Fprintf(w, "hello %s", addr)
	}))

	for _, req := range []struct{ remoteAddr, xff string }{
		{"10.0.0.5:41000", "203.0.113.7"},                // from the office, through the load balancer
		{"10.0.0.5:41000", "203.0.113.7, 198.51.100.7"},  // from elsewhere, with a forged entry
		{"198.51.100.7:41000", "203.0.113.7"},            // around the load balancer, forged
		{"10.0.0.5:41000", "203.0.113.7, 10.0.0.9:8080"}, // two load balancers
	} {
		r := httptest.NewRequest("GET", "/api/v1/sessions", nil)
		r.RemoteAddr = req.remoteAddr
		r.Header.Set("X-Forwarded-For", req.xff)
		r.Header.Set("Authorization", "Bearer "+sec.Reveal())
		rr := httptest.NewRecorder()
		handler.ServeHTTP(rr, r)
		if rr.Code == http.StatusOK {
			fmt.Println(rr.Code, rr.Body)
			continue
		}
		var p struct{ Detail string } // an RFC 9457 problem
		json.Unmarshal(rr.Body.Bytes(), &p)
		fmt.Println(rr.Code, p.Detail)
	}
	// Output:
	// 200 hello 203.0.113.7
	// 403 This API key is not allowed from this network.
	// 403 This API key is not allowed from this network.
	// 200 hello 203.0.113.7
}

// A key limited to 2 requests a minute and 1,000 a day, enforced by an
// in-memory limiter. Every response the limiter decided carries the
// RateLimit-Policy and RateLimit fields; the third request in a minute is
// refused with 429 and Retry-After. (The clock is set, for stable output.)
func ExampleWithLimiter() {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	keys, err := keyward.New(memory.New(), keyward.WithClock(func() time.Time { return now }))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{
		Name:   "Reporting",
		Mode:   apikey.Live,
		Scopes: scope.NewSet(scope.SessionsRead),
		Policy: &apikey.Policy{
			Rate:  apikey.RateLimit{Requests: 2, Period: time.Minute},
			Quota: apikey.Quota{Requests: 1000, Per: apikey.Day},
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	handler := middleware.Authenticate(keys,
		middleware.WithLimiter(limit.NewMemory()),
	)(http.HandlerFunc(listSessions))

	for range 3 {
		r := httptest.NewRequest("GET", "/api/v1/sessions", nil)
		r.Header.Set("Authorization", "Bearer "+sec.Reveal())
		rr := httptest.NewRecorder()
		handler.ServeHTTP(rr, r)
		fmt.Println(rr.Code)
		for _, name := range []string{"RateLimit-Policy", "RateLimit", "Retry-After"} {
			if v := rr.Header().Get(name); v != "" {
				fmt.Printf("  %s: %s\n", name, v)
			}
		}
	}
	// Output:
	// 200
	//   RateLimit-Policy: "rate";q=2;w=60, "quota";q=1000;w=86400
	//   RateLimit: "rate";r=1;t=30, "quota";r=999;t=43200
	// 200
	//   RateLimit-Policy: "rate";q=2;w=60, "quota";q=1000;w=86400
	//   RateLimit: "rate";r=0;t=60, "quota";r=998;t=43200
	// 429
	//   RateLimit-Policy: "rate";q=2;w=60, "quota";q=1000;w=86400
	//   RateLimit: "rate";r=0;t=30, "quota";r=998;t=43200
	//   Retry-After: 30
}

// downLimiter is a limiter whose backend is down.
type downLimiter struct{}

func (downLimiter) Allow(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error) {
	return limit.Decision{}, errors.New("redis: connection refused")
}

func (downLimiter) Peek(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error) {
	return limit.Decision{}, errors.New("redis: connection refused")
}

// Quotas that are billed must not be exceeded while the limiter is down:
// Refuse answers 503 until it is back. (By default, requests are let
// through.) Keys without limits never reach the limiter, and work as ever.
func ExampleWithLimiterFailure() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	acct := keys.Owner("acct_123")
	billed, _, err := acct.Create(context.Background(), keyward.CreateParams{
		Name:   "Metered",
		Mode:   apikey.Live,
		Scopes: scope.NewSet(scope.SessionsRead),
		Policy: &apikey.Policy{Quota: apikey.Quota{Requests: 100_000, Per: apikey.Month}},
	})
	if err != nil {
		log.Fatal(err)
	}
	free, _, err := acct.Create(context.Background(), keyward.CreateParams{Name: "Internal", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsRead)})
	if err != nil {
		log.Fatal(err)
	}

	handler := middleware.Authenticate(keys,
		middleware.WithLimiter(downLimiter{}),
		middleware.WithLimiterFailure(limit.Refuse),
	)(http.HandlerFunc(listSessions))

	for _, sec := range []apikey.Secret{billed, free} {
		r := httptest.NewRequest("GET", "/api/v1/sessions", nil)
		r.Header.Set("Authorization", "Bearer "+sec.Reveal())
		rr := httptest.NewRecorder()
		handler.ServeHTTP(rr, r)
		fmt.Println(rr.Code, rr.Header().Get("Retry-After"))
	}
	// Output:
	// 503 5
	// 200
}
