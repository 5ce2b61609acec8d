package limit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
)

func ExampleMemory() {
	limiter := limit.NewMemory()

	// A key that may make 2 requests at once, one more every 500 ms, and
	// 1,000 a day.
	key := uuid.MustParse("0b0e7e6a-3c1f-4f7e-9a57-1d2c3b4a5f60")
	policy := &apikey.Policy{
		Rate:  apikey.RateLimit{Requests: 2, Period: time.Second},
		Quota: apikey.Quota{Requests: 1000, Per: apikey.Day},
	}

	// In a server, now is the time of the request: time.Now().
	now := time.Date(2026, 3, 14, 18, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 500 * time.Millisecond} {
		d, err := limiter.Allow(context.Background(), key, policy, now.Add(at))
		if err != nil {
			log.Fatal(err) // or let the request through: the limiter could not decide
		}
		if !d.Allowed {
			fmt.Printf("+%v: 429 Too Many Requests, retry after %v\n", at, d.RetryAfter)
			continue
		}
		fmt.Printf("+%v: 200 OK, %d left at once, %d left today (for %v)\n",
			at, d.Rate.Remaining, d.Quota.Remaining, d.Quota.Reset)
	}
	// Output:
	// +0s: 200 OK, 1 left at once, 999 left today (for 6h0m0s)
	// +0s: 200 OK, 0 left at once, 998 left today (for 6h0m0s)
	// +0s: 429 Too Many Requests, retry after 500ms
	// +500ms: 200 OK, 0 left at once, 997 left today (for 5h59m59.5s)
}
