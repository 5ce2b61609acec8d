// Package limittest is the conformance suite for [limit.Limiter]
// implementations. Every limiter in this module passes it, and any other
// limiter proves it keeps the contract the same way:
//
//	func TestConformance(t *testing.T) {
//		limittest.Run(t, func(t *testing.T) limit.Limiter {
//			return mylimiter.New(...) // private to this test, or shared
//		})
//	}
//
// Each subtest checks sentences of the contract in the doc comments of
// [limit.Limiter], [limit.Decision] and [limit.Status], with exact values,
// including under concurrent use; run it with -race.
//
// The suite is deterministic: it never reads the wall clock, and passes as
// now a fixed base time plus offsets, in 2026, so in the past of any run
// after that. A limiter must take now as truth; one that sets expirations
// in its backend must compute them relative to now (a Redis PEXPIRE of the
// time left), never as absolute times, which would already have passed.
// The times are increasing or equal for each key, except in the subtest
// ClockSkew, which steps back by less than a second. All times and
// intervals are whole microseconds, so a limiter may keep time in Unix
// microseconds (exact in a Lua number); nanoseconds work too.
//
// Every subtest uses its own key IDs (uuid.New), so limiters returned by
// newLimiter may share one backend, such as one Redis database. The suite
// uses only the standard library's testing package.
package limittest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
)

// Run runs the conformance suite. newLimiter must return a limiter for
// one subtest; it is called once per subtest, and may register cleanups
// with t.Cleanup. The limiters may share state, since no two subtests use
// the same key.
func Run(t *testing.T, newLimiter func(t *testing.T) limit.Limiter) {
	tests := []struct {
		name string
		run  func(*testing.T, limit.Limiter)
	}{
		{"ZeroPolicy", testZeroPolicy},
		{"InvalidPolicy", testInvalidPolicy},
		{"Burst", testBurst},
		{"BurstDefaultsToRequests", testBurstDefault},
		{"Refill", testRefill},
		{"SteadyRate", testSteadyRate},
		{"QuotaDay", testQuotaDay},
		{"QuotaMonth", testQuotaMonth},
		{"Both", testBoth},
		{"BothRefuse", testBothRefuse},
		{"Peek", testPeek},
		{"KeysIndependent", testKeysIndependent},
		{"PolicyChange", testPolicyChange},
		{"Extremes", testExtremes},
		{"ClockSkew", testClockSkew},
		{"Concurrent", testConcurrent},
		{"ConcurrentKeys", testConcurrentKeys},
		{"ContextDone", testContextDone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newLimiter(t))
		})
	}
}

// base is the time of most requests the suite makes: whole milliseconds,
// outside UTC, so that a limiter reading the location instead of the
// instant shows. It is 2026-03-14 13:09:26.535 UTC.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("UTC+2", 2*3600))

// utc returns a time in UTC, in whole milliseconds.
func utc(year int, month time.Month, day, hour, min, sec, msec int) time.Time {
	return time.Date(year, month, day, hour, min, sec, msec*int(time.Millisecond), time.UTC)
}

// Policies the suite uses most.
var (
	// rate5 allows 10 requests per second, 5 at once: one every 100 ms.
	rate5 = apikey.RateLimit{Requests: 10, Period: time.Second, Burst: 5}
)

// allow calls l.Allow and fails the test on an error.
func allow(t *testing.T, l limit.Limiter, id uuid.UUID, p *apikey.Policy, now time.Time) limit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), id, p, now)
	if err != nil {
		t.Fatalf("Allow at %s: %v", now.UTC().Format(time.RFC3339Nano), err)
	}
	return d
}

// peek calls l.Peek and fails the test on an error.
func peek(t *testing.T, l limit.Limiter, id uuid.UUID, p *apikey.Policy, now time.Time) limit.Decision {
	t.Helper()
	d, err := l.Peek(context.Background(), id, p, now)
	if err != nil {
		t.Fatalf("Peek at %s: %v", now.UTC().Format(time.RFC3339Nano), err)
	}
	return d
}

// wantAllow calls Allow and checks the decision.
func wantAllow(t *testing.T, l limit.Limiter, id uuid.UUID, p *apikey.Policy, now time.Time, want limit.Decision) {
	t.Helper()
	same(t, "Allow", now, allow(t, l, id, p, now), want)
}

// wantPeek calls Peek and checks the decision.
func wantPeek(t *testing.T, l limit.Limiter, id uuid.UUID, p *apikey.Policy, now time.Time, want limit.Decision) {
	t.Helper()
	same(t, "Peek", now, peek(t, l, id, p, now), want)
}

func same(t *testing.T, call string, now time.Time, got, want limit.Decision) {
	t.Helper()
	if got != want {
		t.Errorf("%s at %s\n got  %s\n want %s", call, now.UTC().Format(time.RFC3339Nano), format(got), format(want))
	}
}

// format writes a decision for a test failure.
func format(d limit.Decision) string {
	s := "refused"
	if d.Allowed {
		s = "allowed"
	}
	return fmt.Sprintf("%s, rate %d/%d reset %v, quota %d/%d reset %v, retry after %v",
		s, d.Rate.Remaining, d.Rate.Limit, d.Rate.Reset, d.Quota.Remaining, d.Quota.Limit, d.Quota.Reset, d.RetryAfter)
}

// ok returns an allowing decision.
func ok(rate, quota limit.Status) limit.Decision {
	return limit.Decision{Allowed: true, Rate: rate, Quota: quota}
}

// refused returns a refusing decision.
func refused(rate, quota limit.Status, retry time.Duration) limit.Decision {
	return limit.Decision{Rate: rate, Quota: quota, RetryAfter: retry}
}

// st returns a status.
func st(lim, remaining int64, reset time.Duration) limit.Status {
	return limit.Status{Limit: lim, Remaining: remaining, Reset: reset}
}

const ms = time.Millisecond

func testZeroPolicy(t *testing.T, l limit.Limiter) {
	policies := []struct {
		name string
		p    *apikey.Policy
	}{
		{"nil", nil},
		{"zero", &apikey.Policy{}},
		{"networks only", &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}},
	}
	for _, tc := range policies {
		id := uuid.New()
		for i := range 3 {
			now := base.Add(time.Duration(i) * ms)
			wantAllow(t, l, id, tc.p, now, limit.Decision{Allowed: true})
			wantPeek(t, l, id, tc.p, now, limit.Decision{Allowed: true})
		}
	}
}

func testInvalidPolicy(t *testing.T, l limit.Limiter) {
	bad := []struct {
		name string
		p    apikey.Policy
	}{
		{"rate without requests", apikey.Policy{Rate: apikey.RateLimit{Period: time.Second}}},
		{"rate without period", apikey.Policy{Rate: apikey.RateLimit{Requests: 10}}},
		{"rate of negative burst", apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second, Burst: -1}}},
		{"rate period under a second", apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: 500 * ms}}},
		{"quota without requests", apikey.Policy{Quota: apikey.Quota{Per: apikey.Day}}},
		{"quota without period", apikey.Policy{Quota: apikey.Quota{Requests: 10}}},
		{"quota of unknown period", apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: 7}}},
		{"valid rate, invalid quota", apikey.Policy{Rate: rate5, Quota: apikey.Quota{Requests: -1, Per: apikey.Day}}},
	}
	for _, tc := range bad {
		id := uuid.New()
		if _, err := l.Allow(context.Background(), id, &tc.p, base); !errors.Is(err, apikey.ErrInvalidPolicy) {
			t.Errorf("Allow with a %s = %v, want an error wrapping apikey.ErrInvalidPolicy", tc.name, err)
		}
		if _, err := l.Peek(context.Background(), id, &tc.p, base); !errors.Is(err, apikey.ErrInvalidPolicy) {
			t.Errorf("Peek with a %s = %v, want an error wrapping apikey.ErrInvalidPolicy", tc.name, err)
		}
	}
	// Nothing was counted for the valid part.
	id := uuid.New()
	p := &apikey.Policy{Rate: rate5, Quota: apikey.Quota{Requests: -1, Per: apikey.Day}}
	_, _ = l.Allow(context.Background(), id, p, base)
	wantPeek(t, l, id, &apikey.Policy{Rate: rate5}, base, ok(st(5, 5, 0), limit.Status{}))
}

// testBurst: exactly Capacity at once, then refusals that count nothing,
// with exact statuses and RetryAfter.
func testBurst(t *testing.T, l limit.Limiter) {
	id, p := uuid.New(), &apikey.Policy{Rate: rate5}
	for i := range int64(5) {
		wantAllow(t, l, id, p, base, ok(st(5, 4-i, time.Duration(i+1)*100*ms), limit.Status{}))
	}
	for range 3 {
		wantAllow(t, l, id, p, base, refused(st(5, 0, 500*ms), limit.Status{}, 100*ms))
	}
}

func testBurstDefault(t *testing.T, l limit.Limiter) {
	// Burst 0 means Requests: 3 at once, one back every second.
	id, p := uuid.New(), &apikey.Policy{Rate: apikey.RateLimit{Requests: 3, Period: 3 * time.Second}}
	for i := range int64(3) {
		wantAllow(t, l, id, p, base, ok(st(3, 2-i, time.Duration(i+1)*time.Second), limit.Status{}))
	}
	wantAllow(t, l, id, p, base, refused(st(3, 0, 3*time.Second), limit.Status{}, time.Second))
}

// testRefill: one request's allowance comes back every Interval, and an
// idle bucket holds no more than Capacity.
func testRefill(t *testing.T, l limit.Limiter) {
	id, p := uuid.New(), &apikey.Policy{Rate: rate5}
	for range 5 {
		allow(t, l, id, p, base)
	}
	wantAllow(t, l, id, p, base.Add(99*ms), refused(st(5, 0, 401*ms), limit.Status{}, ms))
	wantAllow(t, l, id, p, base.Add(100*ms), ok(st(5, 0, 500*ms), limit.Status{}))
	wantAllow(t, l, id, p, base.Add(100*ms), refused(st(5, 0, 500*ms), limit.Status{}, 100*ms))
	// 250 ms later, 2.5 allowances are back: 2 whole requests.
	wantPeek(t, l, id, p, base.Add(350*ms), ok(st(5, 2, 250*ms), limit.Status{}))
	wantAllow(t, l, id, p, base.Add(350*ms), ok(st(5, 1, 350*ms), limit.Status{}))
	wantAllow(t, l, id, p, base.Add(350*ms), ok(st(5, 0, 450*ms), limit.Status{}))
	wantAllow(t, l, id, p, base.Add(350*ms), refused(st(5, 0, 450*ms), limit.Status{}, 50*ms))
	// Full again after Reset.
	wantPeek(t, l, id, p, base.Add(799*ms), ok(st(5, 4, ms), limit.Status{}))
	wantPeek(t, l, id, p, base.Add(800*ms), ok(st(5, 5, 0), limit.Status{}))
	// An hour idle: still Capacity, not more.
	later := base.Add(time.Hour)
	for i := range int64(5) {
		wantAllow(t, l, id, p, later, ok(st(5, 4-i, time.Duration(i+1)*100*ms), limit.Status{}))
	}
	wantAllow(t, l, id, p, later, refused(st(5, 0, 500*ms), limit.Status{}, 100*ms))
}

// testSteadyRate: a client asking ten times per interval gets Capacity at
// once and then Requests per Period.
func testSteadyRate(t *testing.T, l limit.Limiter) {
	r := apikey.RateLimit{Requests: 60, Period: time.Minute, Burst: 10}
	id, p := uuid.New(), &apikey.Policy{Rate: r}
	count := func(from, to time.Duration) (n int) {
		for at := from; at <= to; at += 100 * ms {
			if allow(t, l, id, p, base.Add(at)).Allowed {
				n++
			}
		}
		return n
	}
	if got, want := count(0, time.Minute), r.Requests+r.Capacity(); got != want {
		t.Errorf("requests every 100 ms over [0, 1 min] under %d/min, burst %d: %d allowed, want %d", r.Requests, r.Burst, got, want)
	}
	if got, want := count(time.Minute+100*ms, 2*time.Minute), r.Requests; got != want {
		t.Errorf("requests every 100 ms over the next minute: %d allowed, want %d", got, want)
	}
}

// testQuotaDay: a quota per UTC day, from 00:00 UTC whatever the location
// of now, refused until the last millisecond of the day.
func testQuotaDay(t *testing.T, l limit.Limiter) {
	id, p := uuid.New(), &apikey.Policy{Quota: apikey.Quota{Requests: 3, Per: apikey.Day}}
	// 01:00 on the 15th in UTC+2 is 23:00 on the 14th in UTC.
	at := time.Date(2026, 3, 15, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600))
	for i := range int64(3) {
		wantAllow(t, l, id, p, at, ok(limit.Status{}, st(3, 2-i, time.Hour)))
	}
	wantAllow(t, l, id, p, at, refused(limit.Status{}, st(3, 0, time.Hour), time.Hour))
	last := utc(2026, 3, 14, 23, 59, 59, 999)
	wantPeek(t, l, id, p, last, refused(limit.Status{}, st(3, 0, ms), ms))
	wantAllow(t, l, id, p, last, refused(limit.Status{}, st(3, 0, ms), ms))
	next := utc(2026, 3, 15, 0, 0, 0, 0)
	wantPeek(t, l, id, p, next, ok(limit.Status{}, st(3, 3, 24*time.Hour)))
	wantAllow(t, l, id, p, next, ok(limit.Status{}, st(3, 2, 24*time.Hour)))
	wantAllow(t, l, id, p, next.Add(12*time.Hour), ok(limit.Status{}, st(3, 1, 12*time.Hour)))
}

// testQuotaMonth: a quota per UTC calendar month, days of which do not
// reset it.
func testQuotaMonth(t *testing.T, l limit.Limiter) {
	id, p := uuid.New(), &apikey.Policy{Quota: apikey.Quota{Requests: 2, Per: apikey.Month}}
	feb, mar, apr := utc(2026, 2, 1, 0, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0, 0), utc(2026, 4, 1, 0, 0, 0, 0)
	wantAllow(t, l, id, p, feb, ok(limit.Status{}, st(2, 1, 28*24*time.Hour)))
	mid := utc(2026, 2, 15, 12, 0, 0, 0)
	wantAllow(t, l, id, p, mid, ok(limit.Status{}, st(2, 0, mar.Sub(mid))))
	wantAllow(t, l, id, p, mid.Add(24*time.Hour), refused(limit.Status{}, st(2, 0, mar.Sub(mid)-24*time.Hour), mar.Sub(mid)-24*time.Hour))
	last := mar.Add(-ms)
	wantAllow(t, l, id, p, last, refused(limit.Status{}, st(2, 0, ms), ms))
	wantPeek(t, l, id, p, mar, ok(limit.Status{}, st(2, 2, apr.Sub(mar))))
	wantAllow(t, l, id, p, mar, ok(limit.Status{}, st(2, 1, apr.Sub(mar))))
	wantAllow(t, l, id, p, mar, ok(limit.Status{}, st(2, 0, apr.Sub(mar))))
	wantAllow(t, l, id, p, mar, refused(limit.Status{}, st(2, 0, apr.Sub(mar)), apr.Sub(mar)))
}

// testBoth: a request refused by one limit is counted against neither.
func testBoth(t *testing.T, l limit.Limiter) {
	// 2 at once, one back every 500 ms; 3 a day. Noon: 12 h left of the day.
	id := uuid.New()
	p := &apikey.Policy{
		Rate:  apikey.RateLimit{Requests: 2, Period: time.Second},
		Quota: apikey.Quota{Requests: 3, Per: apikey.Day},
	}
	noon := utc(2026, 3, 14, 12, 0, 0, 0)
	wantAllow(t, l, id, p, noon, ok(st(2, 1, 500*ms), st(3, 2, 12*time.Hour)))
	wantAllow(t, l, id, p, noon, ok(st(2, 0, time.Second), st(3, 1, 12*time.Hour)))
	// Refused by the rate limit: the quota keeps its 1.
	wantAllow(t, l, id, p, noon, refused(st(2, 0, time.Second), st(3, 1, 12*time.Hour), 500*ms))
	wantAllow(t, l, id, p, noon.Add(250*ms), refused(st(2, 0, 750*ms), st(3, 1, 12*time.Hour-250*ms), 250*ms))
	wantAllow(t, l, id, p, noon.Add(time.Second), ok(st(2, 1, 500*ms), st(3, 0, 12*time.Hour-time.Second)))
	// Refused by the quota: the bucket keeps filling, nothing taken from it.
	left := 12*time.Hour - 2*time.Second
	wantAllow(t, l, id, p, noon.Add(2*time.Second), refused(st(2, 2, 0), st(3, 0, left), left))
	wantAllow(t, l, id, p, noon.Add(2*time.Second), refused(st(2, 2, 0), st(3, 0, left), left))
	wantPeek(t, l, id, p, noon.Add(2*time.Second), refused(st(2, 2, 0), st(3, 0, left), left))
	// The next day: both allow again.
	wantAllow(t, l, id, p, utc(2026, 3, 15, 0, 0, 0, 0), ok(st(2, 1, 500*ms), st(3, 2, 24*time.Hour)))
}

// testBothRefuse: RetryAfter is the later of the two limits' times.
func testBothRefuse(t *testing.T, l limit.Limiter) {
	quota := apikey.Quota{Requests: 1, Per: apikey.Day}
	at := utc(2026, 3, 14, 23, 59, 59, 500) // 500 ms left of the day
	tests := []struct {
		name  string
		rate  apikey.RateLimit
		retry time.Duration
	}{
		{"rate later", apikey.RateLimit{Requests: 1, Period: time.Second}, time.Second},
		{"quota later", apikey.RateLimit{Requests: 10, Period: time.Second, Burst: 1}, 500 * ms},
	}
	for _, tc := range tests {
		id, p := uuid.New(), &apikey.Policy{Rate: tc.rate, Quota: quota}
		interval := tc.rate.Interval()
		wantAllow(t, l, id, p, at, ok(st(1, 0, interval), st(1, 0, 500*ms)))
		want := refused(st(1, 0, interval), st(1, 0, 500*ms), tc.retry)
		wantPeek(t, l, id, p, at, want)
		wantAllow(t, l, id, p, at, want)
	}
}

// testPeek: Peek decides as Allow would, shows the state before the
// request, and counts nothing.
func testPeek(t *testing.T, l limit.Limiter) {
	id := uuid.New()
	p := &apikey.Policy{Rate: rate5, Quota: apikey.Quota{Requests: 100, Per: apikey.Month}}
	left := utc(2026, 4, 1, 0, 0, 0, 0).Sub(base)
	for range 3 {
		wantPeek(t, l, id, p, base, ok(st(5, 5, 0), st(100, 100, left)))
	}
	wantAllow(t, l, id, p, base, ok(st(5, 4, 100*ms), st(100, 99, left)))
	for range 3 {
		wantPeek(t, l, id, p, base, ok(st(5, 4, 100*ms), st(100, 99, left)))
	}
	for range 4 {
		allow(t, l, id, p, base)
	}
	want := refused(st(5, 0, 500*ms), st(100, 95, left), 100*ms)
	wantPeek(t, l, id, p, base, want)
	wantAllow(t, l, id, p, base, want)
	wantPeek(t, l, id, p, base, want)
	// Peek of a key never seen.
	wantPeek(t, l, uuid.New(), p, base, ok(st(5, 5, 0), st(100, 100, left)))
}

func testKeysIndependent(t *testing.T, l limit.Limiter) {
	a, b := uuid.New(), uuid.New()
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 2, Period: time.Second}, Quota: apikey.Quota{Requests: 2, Per: apikey.Day}}
	left := utc(2026, 3, 15, 0, 0, 0, 0).Sub(base)
	allow(t, l, a, p, base)
	allow(t, l, a, p, base)
	wantAllow(t, l, a, p, base, refused(st(2, 0, time.Second), st(2, 0, left), left))
	wantPeek(t, l, b, p, base, ok(st(2, 2, 0), st(2, 2, left)))
	wantAllow(t, l, b, p, base, ok(st(2, 1, 500*ms), st(2, 1, left)))
	wantPeek(t, l, a, p, base, refused(st(2, 0, time.Second), st(2, 0, left), left))
}

// testPolicyChange: usage carries over to a changed policy, and a bucket
// is never emptier than empty.
func testPolicyChange(t *testing.T, l limit.Limiter) {
	t.Run("RateRaised", func(t *testing.T) {
		id := uuid.New()
		hourly := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Hour}}
		fast := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}
		wantAllow(t, l, id, hourly, base, ok(st(1, 0, time.Hour), limit.Status{}))
		// Full in 1 h under the old limit: empty under the new one, whose
		// bucket fills in 1 s, and refilling from the first request under it.
		at := base.Add(time.Second)
		wantPeek(t, l, id, fast, at, refused(st(10, 0, time.Second), limit.Status{}, 100*ms))
		wantAllow(t, l, id, fast, at, refused(st(10, 0, time.Second), limit.Status{}, 100*ms))
		wantAllow(t, l, id, fast, at.Add(100*ms), ok(st(10, 0, time.Second), limit.Status{}))
		wantPeek(t, l, id, fast, at.Add(1100*ms), ok(st(10, 10, 0), limit.Status{}))
	})
	t.Run("RateLowered", func(t *testing.T) {
		id := uuid.New()
		wide := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}
		for range 10 {
			allow(t, l, id, wide, base) // full again in 1 s
		}
		// Capacity 3, one back every second: 1 s from full is 1 used.
		narrow := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second, Burst: 3}}
		wantPeek(t, l, id, narrow, base, ok(st(3, 2, time.Second), limit.Status{}))
		// Capacity 1, one back every 500 ms: empty, full in 500 ms.
		single := &apikey.Policy{Rate: apikey.RateLimit{Requests: 2, Period: time.Second, Burst: 1}}
		wantAllow(t, l, id, single, base, refused(st(1, 0, 500*ms), limit.Status{}, 500*ms))
		wantAllow(t, l, id, single, base.Add(500*ms), ok(st(1, 0, 500*ms), limit.Status{}))
	})
	t.Run("Quota", func(t *testing.T) {
		id := uuid.New()
		left := utc(2026, 3, 15, 0, 0, 0, 0).Sub(base)
		for range 5 {
			allow(t, l, id, &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}, base)
		}
		lowered := &apikey.Policy{Quota: apikey.Quota{Requests: 3, Per: apikey.Day}}
		wantAllow(t, l, id, lowered, base, refused(limit.Status{}, st(3, 0, left), left))
		raised := &apikey.Policy{Quota: apikey.Quota{Requests: 8, Per: apikey.Day}}
		wantAllow(t, l, id, raised, base, ok(limit.Status{}, st(8, 2, left)))
	})
}

// testExtremes: the largest and smallest limits a valid policy sets.
func testExtremes(t *testing.T, l limit.Limiter) {
	// One request per microsecond.
	id := uuid.New()
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: apikey.MaxRateRequests, Period: time.Second}}
	const max = apikey.MaxRateRequests
	wantAllow(t, l, id, p, base, ok(st(max, max-1, time.Microsecond), limit.Status{}))
	wantAllow(t, l, id, p, base, ok(st(max, max-2, 2*time.Microsecond), limit.Status{}))
	wantPeek(t, l, id, p, base.Add(time.Microsecond), ok(st(max, max-1, time.Microsecond), limit.Status{}))

	// One request a day, a million at once: a bucket that takes 2,738
	// years to fill.
	id = uuid.New()
	p = &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: 24 * time.Hour, Burst: max}}
	wantAllow(t, l, id, p, base, ok(st(max, max-1, 24*time.Hour), limit.Status{}))
	wantPeek(t, l, id, p, base.Add(12*time.Hour), ok(st(max, max-1, 12*time.Hour), limit.Status{}))
	wantPeek(t, l, id, p, base.Add(24*time.Hour), ok(st(max, max, 0), limit.Status{}))

	// The largest quota.
	id = uuid.New()
	p = &apikey.Policy{Quota: apikey.Quota{Requests: apikey.MaxQuotaRequests, Per: apikey.Month}}
	left := utc(2026, 4, 1, 0, 0, 0, 0).Sub(base)
	wantAllow(t, l, id, p, base, ok(limit.Status{}, st(apikey.MaxQuotaRequests, apikey.MaxQuotaRequests-1, left)))
}

// testClockSkew: times that step back a little, as from servers whose
// clocks differ, never let through more than Capacity, and every decision
// stays within bounds.
func testClockSkew(t *testing.T, l limit.Limiter) {
	id := uuid.New()
	r := apikey.RateLimit{Requests: 3, Period: 3 * time.Second} // 3 at once, one a second
	p := &apikey.Policy{Rate: r}
	allowed := 0
	for _, off := range []time.Duration{1000, 900, 800, 1000, 700, 1000, 950, 600} {
		d := allow(t, l, id, p, base.Add(off*ms))
		if d.Allowed {
			allowed++
		}
		if d.Rate.Limit != 3 || d.Rate.Remaining < 0 || d.Rate.Remaining > 3 ||
			d.Rate.Reset < 0 || d.Rate.Reset > 3*time.Second+400*ms || d.RetryAfter < 0 || d.RetryAfter > 3*time.Second {
			t.Errorf("Allow at base+%v: %s, out of bounds", off*ms, format(d))
		}
		if d.Allowed == (d.RetryAfter != 0) {
			t.Errorf("Allow at base+%v: %s", off*ms, format(d))
		}
	}
	if allowed < 1 || allowed > 3 {
		t.Errorf("%d requests allowed within 400 ms under a capacity of 3", allowed)
	}
	// Later, the bucket is full again.
	wantPeek(t, l, id, p, base.Add(time.Minute), ok(st(3, 3, 0), limit.Status{}))
}

// testConcurrent: goroutines racing on one key at one instant get exactly
// what the limits allow, no more and no fewer.
func testConcurrent(t *testing.T, l limit.Limiter) {
	noon := utc(2026, 3, 14, 12, 0, 0, 0)
	tests := []struct {
		name string
		p    apikey.Policy
		want int64
	}{
		{"Rate", apikey.Policy{Rate: apikey.RateLimit{Requests: 50, Period: time.Minute}}, 50},
		{"Quota", apikey.Policy{Quota: apikey.Quota{Requests: 50, Per: apikey.Day}}, 50},
		{"RateFirst", apikey.Policy{Rate: apikey.RateLimit{Requests: 40, Period: time.Minute}, Quota: apikey.Quota{Requests: 50, Per: apikey.Day}}, 40},
		{"QuotaFirst", apikey.Policy{Rate: apikey.RateLimit{Requests: 60, Period: time.Minute}, Quota: apikey.Quota{Requests: 50, Per: apikey.Day}}, 50},
	}
	const workers, each = 8, 25 // 200 requests
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.New()
			var n atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						d, err := l.Allow(context.Background(), id, &tc.p, noon)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							n.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := n.Load(); got != tc.want {
				t.Errorf("%d concurrent requests at one instant: %d allowed, want %d", workers*each, got, tc.want)
			}
			d := peek(t, l, id, &tc.p, noon)
			if d.Allowed || d.Rate.Remaining != 0 && d.Quota.Remaining != 0 {
				t.Errorf("Peek after the race: %s, want refused with nothing remaining", format(d))
			}
			if !tc.p.Rate.IsZero() && d.Rate.Remaining != int64(tc.p.Rate.Capacity())-tc.want {
				t.Errorf("Peek after the race: %s, want rate remaining %d", format(d), int64(tc.p.Rate.Capacity())-tc.want)
			}
			if !tc.p.Quota.IsZero() && d.Quota.Remaining != tc.p.Quota.Requests-tc.want {
				t.Errorf("Peek after the race: %s, want quota remaining %d", format(d), tc.p.Quota.Requests-tc.want)
			}
		})
	}
}

// testConcurrentKeys: goroutines racing over many keys keep each key's
// count separate.
func testConcurrentKeys(t *testing.T, l limit.Limiter) {
	const keys, workers, capacity = 32, 8, 5
	ids := make([]uuid.UUID, keys)
	for i := range ids {
		ids[i] = uuid.New()
	}
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: capacity, Period: time.Minute}, Quota: apikey.Quota{Requests: 100, Per: apikey.Day}}
	var counts [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range keys * 2 {
				k := (i*7 + w*5) % keys // each worker in its own order
				d, err := l.Allow(context.Background(), ids[k], p, base)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					counts[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := counts[k].Load(); got != capacity {
			t.Errorf("key %d: %d of %d concurrent requests allowed, want %d", k, got, workers*2, capacity)
		}
	}
}

// testContextDone: a context already done is an error wrapping its Err,
// and counts nothing.
func testContextDone(t *testing.T, l limit.Limiter) {
	id := uuid.New()
	p := &apikey.Policy{Rate: rate5, Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		if _, err := l.Allow(ctx, id, p, base); !errors.Is(err, ctx.Err()) {
			t.Errorf("Allow with a done context = %v, want an error wrapping %v", err, ctx.Err())
		}
		if _, err := l.Peek(ctx, id, p, base); !errors.Is(err, ctx.Err()) {
			t.Errorf("Peek with a done context = %v, want an error wrapping %v", err, ctx.Err())
		}
	}
	left := utc(2026, 3, 15, 0, 0, 0, 0).Sub(base)
	wantPeek(t, l, id, p, base, ok(st(5, 5, 0), st(10, 10, left)))
}
