package redislimit_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/redistest"
	"github.com/keyward/keyward/limit/redislimit"
)

// The goal: Allow within 1.3x the time of the cheapest way to count a
// request in Redis, a pipeline of INCR and PEXPIRE (one round trip, no
// script), serially and with 8 goroutines, on the same server in the same
// run. Compare the two with benchstat:
//
//	go test ./limit/redislimit -run '^$' -bench . -count 6 > bench.txt
//	benchstat -col /op bench.txt
//
// Both go to the throwaway server over TCP on 127.0.0.1 and over its Unix
// socket, and spread their requests over benchKeys key ids, so that no
// rate limit or quota refuses one: Allow checks and counts both limits
// every time, its costliest path.
//
// A third, op=noop, is the floor of any design that runs one script: an
// EVALSHA of a script that does nothing ("return 1"), with as many keys
// and arguments as Allow's.
//
// On loopback the goal is not met: Allow takes about 2.5 times the
// pipeline's time, serially and with 8 goroutines, and even op=noop about
// 1.3 times (2 cores, Redis 7.0, go-redis 9.22). Redis spends about 7 µs
// running the script (1.4 µs to call any script, about 1 µs per
// redis.call, 2 µs of Lua) against 0.6 µs for INCR and PEXPIRE, and on
// loopback that is most of a round trip. Over a network, where a round
// trip takes 100 µs or more, the difference is a few percent.

const benchKeys = 1024

// benchPolicy allows a million requests per second and a million at once,
// and a trillion a month.
var benchPolicy = &apikey.Policy{
	Rate:  apikey.RateLimit{Requests: apikey.MaxRateRequests, Period: time.Second, Burst: apikey.MaxRateRequests},
	Quota: apikey.Quota{Requests: apikey.MaxQuotaRequests, Per: apikey.Month},
}

// noop is op=noop's script.
var noop = redis.NewScript("return 1")

func BenchmarkCount(b *testing.B) {
	srv := redistest.Shared(b)
	for _, tr := range []struct {
		name string
		opts *redis.Options
	}{
		{"tcp", srv.TCPOptions()},
		{"unix", srv.Options()},
	} {
		client := srv.Client(b, tr.opts)
		prefix := redistest.Prefix(b)
		ids := make([]uuid.UUID, benchKeys)
		keys := make([]string, benchKeys)
		for i := range ids {
			ids[i] = uuid.New()
			keys[i] = prefix + "raw:" + strconv.Itoa(i)
		}
		l, err := redislimit.New(client, redislimit.WithPrefix(prefix))
		if err != nil {
			b.Fatal(err)
		}
		ops := []struct {
			name string
			do   func(ctx context.Context, i int) error
		}{
			{"op=Allow", func(ctx context.Context, i int) error {
				_, err := l.Allow(ctx, ids[i%benchKeys], benchPolicy, time.Now())
				return err
			}},
			{"op=noop", func(ctx context.Context, i int) error {
				return noop.Run(ctx, client, []string{keys[0], keys[0]},
					"1", "1773493766", "535000000", int64(time.Microsecond), int64(time.Second), 1_000_000_000_000, 1772323200, 1775001600, 60000).Err()
			}},
			{"op=pipeline", func(ctx context.Context, i int) error {
				_, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
					key := keys[i%benchKeys]
					p.Incr(ctx, key)
					p.PExpire(ctx, key, time.Minute)
					return nil
				})
				return err
			}},
		}
		for _, op := range ops {
			for _, workers := range []int{1, 8} {
				b.Run(tr.name+"/goroutines="+strconv.Itoa(workers)+"/"+op.name, func(b *testing.B) {
					run(b, workers, op.do)
				})
			}
		}
	}
}

// run calls do b.N times from workers goroutines.
func run(b *testing.B, workers int, do func(ctx context.Context, i int) error) {
	ctx := context.Background()
	if err := do(ctx, 0); err != nil { // the script loaded, a connection open
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := do(ctx, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
