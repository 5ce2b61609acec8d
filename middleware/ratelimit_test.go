package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
)

const (
	typeQuotaExceeded  = "https://iana.org/assignments/http-problem-types#quota-exceeded"
	titleQuotaExceeded = "Request cannot be satisfied as assigned quota has been exceeded"
	typeLimiter        = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrLimiterUnavailable"
)

// countingLimiter is a Limiter that records its calls and answers with
// what it is told: dec, or err; or, if next is set, what next answers.
type countingLimiter struct {
	mu       sync.Mutex
	ids      []uuid.UUID
	policies []*apikey.Policy
	nows     []time.Time
	dec      limit.Decision
	err      error
	next     limit.Limiter
}

func (l *countingLimiter) Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (limit.Decision, error) {
	l.mu.Lock()
	l.ids, l.policies, l.nows = append(l.ids, id), append(l.policies, p), append(l.nows, now)
	dec, err, next := l.dec, l.err, l.next
	l.mu.Unlock()
	if next != nil {
		return next.Allow(ctx, id, p, now)
	}
	return dec, err
}

func (l *countingLimiter) Peek(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error) {
	panic("the middleware never peeks")
}

func (l *countingLimiter) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// limitEnv is a lifecycle on a settable clock, at 2026-05-01 12:00:00
// UTC, with keys of several policies.
type limitEnv struct {
	keys  *keyward.Keys
	clock *clock

	none, networks, limited keywardtest.Key
}

// limitedPolicy allows 2 requests a minute, and 3 a day.
var limitedPolicy = apikey.Policy{
	Rate:  apikey.RateLimit{Requests: 2, Period: time.Minute},
	Quota: apikey.Quota{Requests: 3, Per: apikey.Day},
}

func newLimitEnv(t testing.TB) *limitEnv {
	t.Helper()
	e := &limitEnv{clock: newClock()}
	e.keys = keywardtest.NewKeys(t, keyward.WithClock(e.clock.Now))
	acct := e.keys.Owner("acct_limit")
	scopes := scope.NewSet(scope.SessionsRead)
	e.none = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scopes})
	e.networks = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scopes, Policy: &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	p := limitedPolicy
	e.limited = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scopes, Policy: &p})
	return e
}

// serve sends a request with key from 192.0.2.1 (httptest's address).
func serve(h http.Handler, key keywardtest.Key) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	key.Authorize(r)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

// TestRateLimitExact follows one key through a day with limit.Memory and
// a set clock, checking every header to the second.
func TestRateLimitExact(t *testing.T) {
	e := newLimitEnv(t)
	next := new(reached)
	h := middleware.Authenticate(e.keys, middleware.WithLimiter(limit.NewMemory()))(next)
	const policy = `"rate";q=2;w=60, "quota";q=3;w=86400`
	steps := []struct {
		name       string
		advance    time.Duration
		status     int
		rateLimit  string
		retryAfter string
		violated   []string
		detail     string
	}{
		{name: "first", status: 200, rateLimit: `"rate";r=1;t=30, "quota";r=2;t=43200`},
		{name: "second, same instant", status: 200, rateLimit: `"rate";r=0;t=60, "quota";r=1;t=43200`},
		{name: "third, over the rate", status: 429, rateLimit: `"rate";r=0;t=30, "quota";r=1;t=43200`, retryAfter: "30", violated: []string{"rate"},
			detail: "This API key is over its rate limit. Retry after the number of seconds in the Retry-After header."},
		{name: "30s later, one allowance back", advance: 30 * time.Second, status: 200, rateLimit: `"rate";r=0;t=60, "quota";r=0;t=43170`},
		{name: "over both, rounded up", advance: 100 * time.Millisecond, status: 429, rateLimit: `"rate";r=0;t=60, "quota";r=0;t=43170`, retryAfter: "43170", violated: []string{"rate", "quota"},
			detail: "This API key has used all the requests of its quota for this period."},
		{name: "rate whole again, quota spent", advance: 10*time.Minute + 30*time.Second + 300*time.Millisecond, status: 429,
			rateLimit: `"rate";r=2;t=0, "quota";r=0;t=42540`, retryAfter: "42540", violated: []string{"quota"},
			detail: "This API key has used all the requests of its quota for this period."},
		{name: "next day", advance: 12 * time.Hour, status: 200, rateLimit: `"rate";r=1;t=30, "quota";r=2;t=85740`},
	}
	for i, st := range steps {
		e.clock.advance(st.advance)
		rr := serve(h, e.limited)
		if rr.Code != st.status {
			t.Fatalf("%d %s: status %d, want %d; body %s", i, st.name, rr.Code, st.status, rr.Body)
		}
		if got := rr.Header().Get("RateLimit-Policy"); got != policy {
			t.Errorf("%d %s: RateLimit-Policy = %q, want %q", i, st.name, got, policy)
		}
		if got := rr.Header().Get("RateLimit"); got != st.rateLimit {
			t.Errorf("%d %s: RateLimit = %q, want %q", i, st.name, got, st.rateLimit)
		}
		if got := rr.Header().Get("Retry-After"); got != st.retryAfter {
			t.Errorf("%d %s: Retry-After = %q, want %q", i, st.name, got, st.retryAfter)
		}
		if st.status == 200 {
			continue
		}
		if got := rr.Header().Get("WWW-Authenticate"); got != "" {
			t.Errorf("%d %s: WWW-Authenticate = %q, want none", i, st.name, got)
		}
		p := decodeProblem(t, rr)
		if p.Type != typeQuotaExceeded || p.Title != titleQuotaExceeded || p.Status != 429 || p.Detail != st.detail {
			t.Errorf("%d %s: body %+v", i, st.name, p)
		}
		if !slices.Equal(p.ViolatedPolicies, st.violated) {
			t.Errorf("%d %s: violated-policies = %q, want %q", i, st.name, p.ViolatedPolicies, st.violated)
		}
	}
	if got, want := next.calls.Load(), int64(4); got != want {
		t.Errorf("the handler was reached %d times, want %d", got, want)
	}
}

// TestRateLimitPolicyField checks RateLimit-Policy for periods that are
// not whole seconds, bursts, and months.
func TestRateLimitPolicyField(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    apikey.Policy
		want string
	}{
		{"rate per second", apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}, `"rate";q=10;w=1`},
		{"burst", apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20}}, `"rate";q=100;w=60;keyward-burst=20`},
		{"burst equal to requests", apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 100}}, `"rate";q=100;w=60`},
		{"period of 1.5s", apikey.Policy{Rate: apikey.RateLimit{Requests: 3, Period: 1500 * time.Millisecond}}, `"rate";q=6;w=3`},
		{"period of 1.001s", apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: 1001 * time.Millisecond}}, `"rate";q=1000;w=1001`},
		{"quota per month of 31 days", apikey.Policy{Quota: apikey.Quota{Requests: 10_000, Per: apikey.Month}}, `"quota";q=10000;w=2678400`},
		{"both", apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute}, Quota: apikey.Quota{Requests: 10_000, Per: apikey.Day}},
			`"rate";q=100;w=60, "quota";q=10000;w=86400`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitEnv(t)
			p := tc.p
			key := keywardtest.Issue(t, e.keys.Owner("acct_limit"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead), Policy: &p})
			rr := serve(middleware.Authenticate(e.keys, middleware.WithLimiter(limit.NewMemory()))(new(reached)), key)
			if rr.Code != http.StatusOK {
				t.Fatalf("status %d", rr.Code)
			}
			if got := rr.Header().Get("RateLimit-Policy"); got != tc.want {
				t.Errorf("RateLimit-Policy = %q, want %q", got, tc.want)
			}
			if n := len(rr.Header().Values("RateLimit")); n != 1 {
				t.Errorf("%d RateLimit fields, want 1", n)
			}
		})
	}
}

// TestRateLimitPolicyFieldChanges checks the RateLimit-Policy of several
// policies served by one Authenticate, in turn, and across a month's end.
func TestRateLimitPolicyFieldChanges(t *testing.T) {
	e := newLimitEnv(t)
	e.clock.set(time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC))
	h := middleware.Authenticate(e.keys, middleware.WithLimiter(limit.NewMemory()))(new(reached))
	type keyWant struct {
		key  keywardtest.Key
		want string
	}
	var keys []keyWant
	for i := 1; i <= 100; i++ {
		p := apikey.Policy{Rate: apikey.RateLimit{Requests: i, Period: time.Minute}, Quota: apikey.Quota{Requests: 1000, Per: apikey.Month}}
		key := keywardtest.Issue(t, e.keys.Owner("acct_limit"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead), Policy: &p})
		keys = append(keys, keyWant{key, fmt.Sprintf(`"rate";q=%d;w=60, "quota";q=1000;w=%%d`, i)})
	}
	for _, month := range []struct {
		name    string
		advance time.Duration
		seconds int
	}{{"May", 0, 31 * 86400}, {"June", 2 * time.Second, 30 * 86400}} {
		e.clock.advance(month.advance)
		for round := range 2 {
			for _, k := range keys {
				rr := serve(h, k.key)
				if want := fmt.Sprintf(k.want, month.seconds); rr.Header().Get("RateLimit-Policy") != want {
					t.Fatalf("%s, round %d: RateLimit-Policy = %q, want %q", month.name, round, rr.Header().Get("RateLimit-Policy"), want)
				}
			}
		}
	}
}

// TestOnlyLimitedKeysReachTheLimiter counts the limiter's calls: keys
// without a rate limit or quota never reach it, nor keys refused before.
func TestOnlyLimitedKeysReachTheLimiter(t *testing.T) {
	e := newLimitEnv(t)
	l := &countingLimiter{dec: limit.Decision{Allowed: true}}
	h := middleware.Authenticate(e.keys, middleware.WithLimiter(l))(new(reached))
	for range 3 {
		for _, key := range []keywardtest.Key{e.none, e.networks} {
			if rr := serve(h, key); rr.Code != http.StatusOK {
				t.Fatalf("status %d", rr.Code)
			}
		}
	}
	// Refused for its network before the limiter.
	networked := keywardtest.Issue(t, e.keys.Owner("acct_limit"), keyward.CreateParams{
		Scopes: scope.NewSet(scope.SessionsRead),
		Policy: &apikey.Policy{Rate: limitedPolicy.Rate, Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}},
	})
	if rr := serve(h, networked); rr.Code != http.StatusForbidden {
		t.Fatalf("wrong network: status %d, want 403", rr.Code)
	}
	if got := l.calls(); got != 0 {
		t.Fatalf("the limiter was called %d times for keys without limits", got)
	}
	rr := serve(h, e.limited)
	if rr.Code != http.StatusOK || l.calls() != 1 {
		t.Fatalf("limited key: status %d, %d calls; want 200, 1 call", rr.Code, l.calls())
	}
	if l.ids[0] != e.limited.Record.ID {
		t.Errorf("limiter asked for key %s, want %s", l.ids[0], e.limited.Record.ID)
	}
	if p := l.policies[0]; p.Rate != limitedPolicy.Rate || p.Quota != limitedPolicy.Quota || p.Networks != nil {
		t.Errorf("limiter given policy %+v, want %+v", *l.policies[0], limitedPolicy)
	}
	if !l.nows[0].Equal(e.clock.Now()) {
		t.Errorf("limiter given now = %v, want the lifecycle's %v", l.nows[0], e.clock.Now())
	}
}

// TestRateLimitedErrorHandler checks what the error handler receives for
// a 429, and that the rate-limit fields are set before it runs.
func TestRateLimitedErrorHandler(t *testing.T) {
	e := newLimitEnv(t)
	l := &countingLimiter{dec: limit.Decision{
		Rate:       limit.Status{Limit: 2, Remaining: 0, Reset: 59*time.Second + time.Millisecond},
		Quota:      limit.Status{Limit: 3, Remaining: 1, Reset: time.Hour},
		RetryAfter: 11*time.Second + time.Nanosecond,
	}}
	var got error
	var fields string
	h := middleware.Authenticate(e.keys, middleware.WithLimiter(l), middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got, fields = err, w.Header().Get("RateLimit")
		middleware.WriteError(w, r, err)
	}))(new(reached))
	rr := serve(h, e.limited)
	if rr.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rr.Code)
	}
	var mwErr *middleware.Error
	if !errors.As(got, &mwErr) || !errors.Is(got, middleware.ErrRateLimited) {
		t.Fatalf("error %v, want a *middleware.Error matching ErrRateLimited", got)
	}
	if mwErr.Status != 429 || mwErr.RetryAfter != l.dec.RetryAfter || !slices.Equal(mwErr.ViolatedPolicies, []string{"rate"}) {
		t.Errorf("Error = %+v", mwErr)
	}
	if want := `"rate";r=0;t=12, "quota";r=1;t=3600`; fields != want {
		t.Errorf("RateLimit when the error handler ran = %q, want %q", fields, want)
	}
	if got := rr.Header().Get("Retry-After"); got != "12" {
		t.Errorf("Retry-After = %q, want 12", got)
	}
}

// TestLimiterFailure checks both answers to a failing limiter.
func TestLimiterFailure(t *testing.T) {
	errDown := errors.New(internalText)
	for _, tc := range []struct {
		name   string
		opts   []middleware.Option
		status int
	}{
		{"default lets through", nil, http.StatusOK},
		{"LetThrough", []middleware.Option{middleware.WithLimiterFailure(limit.LetThrough)}, http.StatusOK},
		{"Refuse", []middleware.Option{middleware.WithLimiterFailure(limit.Refuse)}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitEnv(t)
			l := &countingLimiter{err: errDown}
			var got error
			opts := append([]middleware.Option{middleware.WithLimiter(l), middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				got = err
				middleware.WriteError(w, r, err)
			})}, tc.opts...)
			next := new(reached)
			rr := serve(middleware.Authenticate(e.keys, opts...)(next), e.limited)
			if rr.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rr.Code, tc.status, rr.Body)
			}
			for _, name := range []string{"RateLimit", "RateLimit-Policy"} {
				if v := rr.Header().Get(name); v != "" {
					t.Errorf("%s = %q, want none: the limiter did not decide", name, v)
				}
			}
			if tc.status == http.StatusOK {
				if next.calls.Load() != 1 || got != nil {
					t.Errorf("handler calls %d, error %v; want 1, none", next.calls.Load(), got)
				}
				return
			}
			if next.calls.Load() != 0 {
				t.Fatal("a refused request reached the handler")
			}
			if !errors.Is(got, middleware.ErrLimiterUnavailable) || !errors.Is(got, errDown) {
				t.Errorf("error %v, want ErrLimiterUnavailable wrapping the limiter's error", got)
			}
			if strings.Contains(rr.Body.String(), internalText) {
				t.Errorf("the body leaks the limiter's error: %s", rr.Body)
			}
			if got := rr.Header().Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After = %q, want 5", got)
			}
			p := decodeProblem(t, rr)
			if p.Type != typeLimiter || p.Status != 503 || p.Detail != "The rate limits of this API key cannot be checked right now. Retry later." {
				t.Errorf("body = %+v", p)
			}
		})
	}
}

// captureLog sends slog's default logger to a buffer until the test ends.
func captureLog(t *testing.T) *syncBuffer {
	t.Helper()
	buf := new(syncBuffer)
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// lines returns the middleware's lines of the log: the lifecycle logs
// its own events (keys created, revoked) to the same logger.
func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		if strings.Contains(l, `msg="keyward/middleware: `) {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestLimiterOutageLogged checks that an outage is logged once, however
// many requests fail, and its end once.
func TestLimiterOutageLogged(t *testing.T) {
	logs := captureLog(t)
	e := newLimitEnv(t)
	l := &countingLimiter{err: errors.New(internalText)}
	h := middleware.Authenticate(e.keys, middleware.WithLimiter(l))(new(reached))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				serve(h, e.limited)
			}
		})
	}
	wg.Wait()
	lines := logs.lines()
	if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "let through") || !strings.Contains(lines[0], internalText) {
		t.Fatalf("log during the outage:\n%s\nwant one error line", strings.Join(lines, "\n"))
	}
	l.mu.Lock()
	l.err, l.dec = nil, limit.Decision{Allowed: true}
	l.mu.Unlock()
	serve(h, e.limited)
	serve(h, e.limited)
	lines = logs.lines()
	if len(lines) != 2 || !strings.Contains(lines[1], "level=INFO") || !strings.Contains(lines[1], "failures=100") {
		t.Fatalf("log after the outage:\n%s\nwant one recovery line with failures=100", strings.Join(lines, "\n"))
	}
}

// TestLimitsWithoutLimiter: without WithLimiter, limits are not enforced,
// and the first limited key is logged once.
func TestLimitsWithoutLimiter(t *testing.T) {
	logs := captureLog(t)
	e := newLimitEnv(t)
	h := middleware.Authenticate(e.keys)(new(reached))
	for range 5 {
		rr := serve(h, e.limited)
		if rr.Code != http.StatusOK || rr.Header().Get("RateLimit") != "" {
			t.Fatalf("status %d, RateLimit %q; want 200 and no field", rr.Code, rr.Header().Get("RateLimit"))
		}
	}
	lines := logs.lines()
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "not enforced") {
		t.Fatalf("log:\n%s\nwant one warning", strings.Join(lines, "\n"))
	}
}

func TestLimiterOptionsPanic(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	for _, tc := range []struct {
		name string
		opts []middleware.Option
	}{
		{"nil limiter", []middleware.Option{middleware.WithLimiter(nil)}},
		{"zero failure", []middleware.Option{middleware.WithLimiter(limit.NewMemory()), middleware.WithLimiterFailure(0)}},
		{"unknown failure", []middleware.Option{middleware.WithLimiter(limit.NewMemory()), middleware.WithLimiterFailure(7)}},
		{"failure without limiter", []middleware.Option{middleware.WithLimiterFailure(limit.Refuse)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			middleware.Authenticate(keys, tc.opts...)
		})
	}
}
