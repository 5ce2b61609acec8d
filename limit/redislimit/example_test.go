package redislimit_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit/redislimit"
)

// A limiter shared by every instance of a service: each instance creates
// one on the same Redis. It needs a Redis server, so it only compiles
// here.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr: os.Getenv("REDIS_ADDR"),
		// Fail within a quarter of a second when Redis is down or stuck,
		// and honour the request's deadline.
		DialTimeout:           250 * time.Millisecond,
		ReadTimeout:           250 * time.Millisecond,
		WriteTimeout:          250 * time.Millisecond,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()
	limiter, err := redislimit.New(rdb)
	if err != nil {
		log.Fatal(err)
	}

	// 100 requests a minute, 20 at once, and 10,000 a day.
	policy := &apikey.Policy{
		Rate:  apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Quota: apikey.Quota{Requests: 10_000, Per: apikey.Day},
	}
	keyID := uuid.MustParse("0190d7a4-8c1e-7a3b-9f00-5c2d6e7f8a9b")

	d, err := limiter.Allow(context.Background(), keyID, policy, time.Now())
	switch {
	case err != nil:
		// Redis is unreachable: the caller decides (the middleware fails
		// open or closed, as configured).
		log.Printf("rate limiter: %v", err)
	case !d.Allowed:
		fmt.Printf("%d Too Many Requests, retry after %v\n", http.StatusTooManyRequests, d.RetryAfter.Round(time.Second))
	default:
		fmt.Printf("allowed: %d of %d left at once, %d of %d today\n",
			d.Rate.Remaining, d.Rate.Limit, d.Quota.Remaining, d.Quota.Limit)
	}
}
