package redislimit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/redistest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/limit/limittest"
	"github.com/keyward/keyward/limit/redislimit"
)

func TestMain(m *testing.M) {
	if helperMode() {
		return // helperMain has run and exited
	}
	redistest.Main(m)
}

// newLimiter returns a limiter on client with a key prefix of the test's
// own.
func newLimiter(t testing.TB, client redis.Scripter, opts ...redislimit.Option) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(client, append([]redislimit.Option{redislimit.WithPrefix(redistest.Prefix(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestConformance(t *testing.T) {
	client := redistest.Shared(t).Client(t, nil)
	limittest.Run(t, func(t *testing.T) limit.Limiter { return newLimiter(t, client) })
}

// Over TCP and through a ClusterClient, on a one-node cluster that refuses
// keys of two slots in one script as any cluster does: the hash tag keeps
// both keys of a key id in one slot.
func TestConformanceCluster(t *testing.T) {
	srv := redistest.NewClusterNode(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { client.Close() })
	limittest.Run(t, func(t *testing.T) limit.Limiter { return newLimiter(t, client) })
}

func TestNew(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	tests := []struct {
		name    string
		client  redis.Scripter
		opts    []redislimit.Option
		wantErr string // a substring; "" for none
	}{
		{"defaults", client, nil, ""},
		{"prefix", client, []redislimit.Option{redislimit.WithPrefix("app:")}, ""},
		{"empty prefix", client, []redislimit.Option{redislimit.WithPrefix("")}, ""},
		{"server time", client, []redislimit.Option{redislimit.WithServerTime()}, ""},
		{"nil client", nil, nil, "nil client"},
		{"prefix with a hash tag", client, []redislimit.Option{redislimit.WithPrefix("{app}:")}, "hash tag"},
		{"prefix with a brace", client, []redislimit.Option{redislimit.WithPrefix("app}")}, "hash tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := redislimit.New(tc.client, tc.opts...)
			switch {
			case tc.wantErr == "" && (err != nil || l == nil):
				t.Errorf("New = %v, %v; want a limiter", l, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("New = %v, %v; want an error containing %q", l, err, tc.wantErr)
			}
		})
	}
}

// The keys are where the package documentation says, and expire when
// they no longer matter, plus the margin.
func TestKeys(t *testing.T) {
	client := redistest.Shared(t).Client(t, nil)
	prefix := redistest.Prefix(t)
	l, err := redislimit.New(client, redislimit.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.New()
	now := time.Date(2026, 3, 14, 23, 59, 59, 500_000_000, time.UTC) // 500 ms left of the day
	tests := []struct {
		name string
		p    apikey.Policy
		key  string
		ttl  time.Duration // before the margin
	}{
		// 10 per second: the bucket is full again 100 ms after a request.
		{"rate", apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}, "{" + id.String() + "}:rate", 100 * time.Millisecond},
		{"day", apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}, "{" + id.String() + "}:quota:2026-03-14", 500 * time.Millisecond},
		{"month", apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Month}}, "{" + id.String() + "}:quota:2026-03", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Sub(now)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Allow(ctx, id, &tc.p, now); err != nil {
				t.Fatal(err)
			}
			ttl, err := client.PTTL(ctx, prefix+tc.key).Result()
			if err != nil {
				t.Fatal(err)
			}
			// PTTL is read a moment later, so allow some real time to pass.
			if want := tc.ttl + redislimit.KeyMargin; ttl > want || ttl < want-5*time.Second {
				t.Errorf("PTTL %s = %v, want %v (its time left plus KeyMargin)", tc.key, ttl, want)
			}
		})
	}
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(tests) {
		t.Errorf("keys written: %q, want %d", keys, len(tests))
	}
}

// countHook counts the commands a client sends, one for each round trip
// outside pipelines, and the names of the last ones.
type countHook struct {
	mu    sync.Mutex
	names []string
	pipes int
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		h.pipes++
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countHook) take() (names []string, pipes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	names, pipes = h.names, h.pipes
	h.names, h.pipes = nil, 0
	return names, pipes
}

// Each Allow and Peek is one command, EVALSHA, once the server has the
// script; the first check of a server without it costs a second (EVALSHA
// refused, then EVAL), and a SCRIPT FLUSH too, with no decision lost.
func TestOneRoundTrip(t *testing.T) {
	srv := redistest.NewServer(t) // SCRIPT FLUSH: a server of its own
	client := srv.Client(t, nil)
	hook := new(countHook)
	client.AddHook(hook)
	l := newLimiter(t, client)
	ctx := context.Background()
	id := uuid.New()
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 3, Period: time.Minute}, Quota: apikey.Quota{Requests: 100, Per: apikey.Day}}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	if err := client.Ping(ctx).Err(); err != nil { // connect: the handshake is not a check's
		t.Fatal(err)
	}
	hook.take()
	remaining := func(d limit.Decision, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d.Rate.Remaining
	}

	if got := remaining(l.Allow(ctx, id, p, now)); got != 2 {
		t.Errorf("first Allow: rate remaining %d, want 2", got)
	}
	if names, _ := hook.take(); strings.Join(names, " ") != "evalsha eval" {
		t.Errorf("first Allow on a server without the script sent %q, want EVALSHA then EVAL", names)
	}
	for i, check := range []func(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error){l.Allow, l.Peek, l.Allow} {
		remaining(check(ctx, id, p, now))
		if names, pipes := hook.take(); len(names) != 1 || names[0] != "evalsha" || pipes != 0 {
			t.Errorf("check %d sent %q and %d pipelines, want one EVALSHA", i, names, pipes)
		}
	}

	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	hook.take()
	if got := remaining(l.Peek(ctx, id, p, now)); got != 0 {
		t.Errorf("Peek after SCRIPT FLUSH: rate remaining %d, want 0 (the state is kept)", got)
	}
	if names, _ := hook.take(); strings.Join(names, " ") != "evalsha eval" {
		t.Errorf("Peek after SCRIPT FLUSH sent %q, want EVALSHA then EVAL", names)
	}
	if d, err := l.Allow(ctx, id, p, now); err != nil || d.Allowed {
		t.Errorf("Allow after SCRIPT FLUSH = %+v, %v; want refused", d, err)
	}
	if names, _ := hook.take(); len(names) != 1 {
		t.Errorf("Allow after the reload sent %q, want one EVALSHA", names)
	}
}

// Two application instances, each with its own client and connection
// pool, racing on one key at one instant: between them they get exactly
// what the limits allow.
func TestTwoClients(t *testing.T) {
	srv := redistest.Shared(t)
	prefix := redistest.Prefix(t)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, tc := range sharedLimitCases {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.New()
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range 2 {
				l, err := redislimit.New(srv.Client(t, nil), redislimit.WithPrefix(prefix))
				if err != nil {
					t.Fatal(err)
				}
				for range 8 {
					wg.Go(func() {
						for range 40 { // 2 x 8 x 40 = 640 requests
							d, err := l.Allow(context.Background(), id, &tc.p, now)
							if err != nil {
								t.Error(err)
								return
							}
							if d.Allowed {
								allowed.Add(1)
							}
						}
					})
				}
			}
			wg.Wait()
			if got := allowed.Load(); got != tc.want {
				t.Errorf("640 requests from two clients: %d allowed, want %d", got, tc.want)
			}
		})
	}
}

// sharedLimitCases are the policies of the tests of several instances
// sharing a limit, each with how many of many requests at one instant it
// lets through.
var sharedLimitCases = []struct {
	name string
	p    apikey.Policy
	want int64
}{
	{"Rate", apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 37}}, 37},
	{"Quota", apikey.Policy{Quota: apikey.Quota{Requests: 53, Per: apikey.Month}}, 53},
	{"RateFirst", apikey.Policy{Rate: apikey.RateLimit{Requests: 41, Period: time.Hour}, Quota: apikey.Quota{Requests: 50, Per: apikey.Day}}, 41},
	{"QuotaFirst", apikey.Policy{Rate: apikey.RateLimit{Requests: 60, Period: time.Minute}, Quota: apikey.Quota{Requests: 47, Per: apikey.Day}}, 47},
}

// WithServerTime ignores the now given and reads the server's clock: the
// decisions and key names follow today's date, whatever the caller says.
func TestServerTime(t *testing.T) {
	client := redistest.Shared(t).Client(t, nil)
	prefix := redistest.Prefix(t)
	l, err := redislimit.New(client, redislimit.WithPrefix(prefix), redislimit.WithServerTime())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.New()
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Hour}, Quota: apikey.Quota{Requests: 5, Per: apikey.Day}}
	// Times far apart, in other days: a limiter using them would allow
	// each request, and count them under other dates.
	for i, now := range []time.Time{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), {}, time.Now().Add(72 * time.Hour)} {
		before := time.Now()
		d, err := l.Allow(ctx, id, p, now)
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := d.Allowed, i == 0; got != want {
			t.Errorf("Allow %d: allowed = %v, want %v", i, got, want)
		}
		_, end := apikey.Day.Bounds(after)
		if left := d.Quota.Reset; left > end.Sub(before)+time.Second || left < end.Sub(after)-time.Second {
			t.Errorf("Allow %d: quota reset %v, want about %v (the server's day)", i, left, end.Sub(after))
		}
	}
	today := time.Now().UTC().Format("2006-01-02")
	if n, err := client.Exists(ctx, prefix+"{"+id.String()+"}:quota:"+today).Result(); err != nil || n != 1 {
		// Across midnight, the key may be yesterday's.
		yesterday := time.Now().UTC().Add(-time.Minute).Format("2006-01-02")
		if n2, _ := client.Exists(ctx, prefix+"{"+id.String()+"}:quota:"+yesterday).Result(); n2 != 1 {
			t.Errorf("no quota key of the server's date %s (EXISTS = %d, %v)", today, n, err)
		}
	}
}

// An outage is an error, promptly (within the client's timeouts), for
// the caller to decide on; when the server is back, so is the limiter.
func TestOutage(t *testing.T) {
	srv := redistest.NewServer(t)
	const timeout = 250 * time.Millisecond
	client := srv.Client(t, &redis.Options{
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		MaxRetries:            -1, // no retries: each check fails within one timeout
		DialerRetries:         1,  // one dial a check, not five 100 ms apart
		ContextTimeoutEnabled: true,
	})
	l := newLimiter(t, client)
	id := uuid.New()
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}, Quota: apikey.Quota{Requests: 1000, Per: apikey.Day}}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	// promptly calls check and fails the test if it takes longer than
	// limit. The limits are the timeouts plus slack for a loaded machine,
	// far below go-redis's defaults (3 retries, 5 dials 100 ms apart, a 3 s
	// read timeout).
	const slack = 500 * time.Millisecond
	promptly := func(name string, limit time.Duration, check func() error) error {
		t.Helper()
		start := time.Now()
		err := check()
		if d := time.Since(start); d > limit {
			t.Errorf("%s took %v, want at most %v", name, d, limit)
		}
		return err
	}
	allow := func() error {
		_, err := l.Allow(context.Background(), id, p, now)
		return err
	}
	if err := allow(); err != nil {
		t.Fatal(err)
	}

	t.Run("Stopped", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := promptly("Allow with the server stopped", timeout+slack, allow); err == nil {
				t.Error("Allow with the server stopped succeeded")
			} else if !strings.HasPrefix(err.Error(), "redislimit: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		// The server came back empty: the key is fresh again.
		if err := allow(); err != nil {
			t.Errorf("Allow with the server back: %v", err)
		}
	})

	t.Run("Paused", func(t *testing.T) {
		// A server that accepts but never answers: the read timeout.
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		defer srv.Resume()
		if err := promptly("Allow with the server paused", timeout+slack, allow); err == nil {
			t.Error("Allow with the server paused succeeded")
		}
		// A context's deadline shorter than the read timeout bounds the
		// check, and the error wraps the context's.
		ctx, cancel := context.WithTimeout(context.Background(), timeout/5)
		defer cancel()
		err := promptly("Allow with a 50 ms deadline", timeout/5+slack, func() error {
			_, err := l.Allow(ctx, id, p, now)
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Allow past its context's deadline = %v, want an error wrapping context.DeadlineExceeded", err)
		}
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		if err := allow(); err != nil {
			t.Errorf("Allow with the server resumed: %v", err)
		}
	})
}
