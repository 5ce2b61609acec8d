package limit_test

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/limit/limittest"
)

func TestMemoryConformance(t *testing.T) {
	limittest.Run(t, func(t *testing.T) limit.Limiter { return limit.NewMemory() })
}

// A Memory that sweeps at every request, and has room for few keys, keeps
// the contract too.
func TestMemoryConformanceSweeping(t *testing.T) {
	limittest.Run(t, func(t *testing.T) limit.Limiter {
		return limit.NewMemory(limit.WithMaxKeys(100), limit.WithSweepInterval(time.Nanosecond))
	})
}

var (
	base = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	ctx  = context.Background()
)

// both is a policy with a rate limit and a quota.
var both = &apikey.Policy{
	Rate:  apikey.RateLimit{Requests: 1_000_000, Period: time.Second},
	Quota: apikey.Quota{Requests: apikey.MaxQuotaRequests, Per: apikey.Month},
}

func mustAllow(t testing.TB, m *limit.Memory, id uuid.UUID, p *apikey.Policy, now time.Time) limit.Decision {
	t.Helper()
	d, err := m.Allow(ctx, id, p, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMemoryAllocationFree(t *testing.T) {
	m := limit.NewMemory()
	id := uuid.New()
	withNetworks := *both
	withNetworks.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	policies := []struct {
		name string
		p    *apikey.Policy
	}{
		{"rate and quota", both},
		{"rate", &apikey.Policy{Rate: both.Rate}},
		{"quota per day", &apikey.Policy{Quota: apikey.Quota{Requests: 1e12, Per: apikey.Day}}},
		{"networks", &withNetworks},
		{"zero", &apikey.Policy{}},
		{"nil", nil},
	}
	for _, tc := range policies {
		mustAllow(t, m, id, tc.p, base) // the key's first request may allocate
		now := base
		allows := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Microsecond)
			if _, err := m.Allow(ctx, id, tc.p, now); err != nil {
				t.Fatal(err)
			}
		})
		peeks := testing.AllocsPerRun(1000, func() {
			if _, err := m.Peek(ctx, id, tc.p, now); err != nil {
				t.Fatal(err)
			}
		})
		if allows != 0 || peeks != 0 {
			t.Errorf("%s: Allow allocates %v times, Peek %v, want 0", tc.name, allows, peeks)
		}
	}
}

func TestMemoryFull(t *testing.T) {
	m := limit.NewMemory(limit.WithMaxKeys(100))
	p := &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}
	ids := make([]uuid.UUID, 100)
	for i := range ids {
		ids[i] = uuid.New()
		mustAllow(t, m, ids[i], p, base)
	}
	// Full of keys whose quota counts today: a new key is not tracked.
	if _, err := m.Allow(ctx, uuid.New(), p, base.Add(time.Hour)); !errors.Is(err, limit.ErrFull) {
		t.Fatalf("Allow of a new key in a full Memory = %v, want ErrFull", err)
	}
	// Keys tracked carry on, Peek of a new key works, and nothing grew.
	if d := mustAllow(t, m, ids[0], p, base.Add(time.Hour)); !d.Allowed || d.Quota.Remaining != 8 {
		t.Errorf("Allow of a tracked key in a full Memory = %+v", d)
	}
	if d, err := m.Peek(ctx, uuid.New(), p, base.Add(time.Hour)); err != nil || !d.Allowed {
		t.Errorf("Peek of a new key in a full Memory = %+v, %v", d, err)
	}
	if got := m.Len(); got != 100 {
		t.Errorf("Len = %d, want 100", got)
	}
	// The next day the counts are from a past period: the keys are idle,
	// and dropped to make room.
	next := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	if d := mustAllow(t, m, uuid.New(), p, next); !d.Allowed {
		t.Errorf("Allow of a new key the next day = %+v", d)
	}
	m.Sweep(next)
	if got := m.Len(); got != 1 {
		t.Errorf("Len after the keys went idle = %d, want 1", got)
	}
}

// When full, Memory sweeps all shards at most once a second.
func TestMemoryFullSweepsOncePerSecond(t *testing.T) {
	m := limit.NewMemory(limit.WithMaxKeys(10))
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second}} // idle 1 s after a request
	for range 10 {
		mustAllow(t, m, uuid.New(), p, base)
	}
	steps := []struct {
		at   time.Duration
		full bool
	}{
		{500 * time.Millisecond, true},   // none idle: sweeps, finds nothing
		{1200 * time.Millisecond, true},  // all idle, but swept 700 ms ago
		{1500 * time.Millisecond, false}, // swept again
	}
	for _, s := range steps {
		_, err := m.Allow(ctx, uuid.New(), p, base.Add(s.at))
		if full := errors.Is(err, limit.ErrFull); full != s.full || err != nil && !full {
			t.Errorf("Allow of a new key at base+%v = %v, want full %v", s.at, err, s.full)
		}
	}
}

func TestMemorySweep(t *testing.T) {
	m := limit.NewMemory()
	rate := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Minute}}
	day := &apikey.Policy{Quota: apikey.Quota{Requests: 5, Per: apikey.Day}}
	month := &apikey.Policy{Quota: apikey.Quota{Requests: 5, Per: apikey.Month}}
	for _, p := range []*apikey.Policy{rate, day, month} {
		for range 1000 {
			mustAllow(t, m, uuid.New(), p, base)
		}
	}
	steps := []struct {
		at      time.Time
		dropped int
	}{
		{base.Add(59 * time.Second), 0},
		{base.Add(time.Minute), 1000},                            // buckets full
		{time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC), 0},     // still today
		{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 1000},     // day quotas of yesterday
		{time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), 0},     // still this month
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), 1000},      // month quotas of last month
		{time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), 0},         // nothing left
		{time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), 0},         // nothing left
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(-1), 0}, // the past: nothing to drop
	}
	for _, s := range steps {
		if got := m.Sweep(s.at); got != s.dropped {
			t.Errorf("Sweep at %v dropped %d keys, want %d", s.at, got, s.dropped)
		}
	}
	if m.Len() != 0 {
		t.Errorf("Len = %d, want 0", m.Len())
	}
}

// Allow sweeps each shard it visits once per sweep interval.
func TestMemorySweepsAsItGoes(t *testing.T) {
	m := limit.NewMemory(limit.WithSweepInterval(time.Minute))
	p := &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second}}
	for range 10_000 {
		mustAllow(t, m, uuid.New(), p, base)
	}
	later := base.Add(2 * time.Minute)
	for range 1000 { // visits all 64 shards but with a chance of 1e-7
		mustAllow(t, m, uuid.New(), p, later)
	}
	if got := m.Len(); got != 1000 {
		t.Errorf("Len = %d, want the 1000 keys of the last minute", got)
	}
}

// A quota whose period changes keeps the count of a shorter period inside
// the new one, and drops a count of a longer one.
func TestMemoryQuotaPeriodChange(t *testing.T) {
	m := limit.NewMemory()
	day := &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}
	month := &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Month}}
	id := uuid.New()
	mustAllow(t, m, id, day, base)
	if d := mustAllow(t, m, id, month, base); d.Quota.Remaining != 8 {
		t.Errorf("day then month: %d remaining, want 8", d.Quota.Remaining)
	}
	if d := mustAllow(t, m, id, day, base.Add(24*time.Hour)); d.Quota.Remaining != 9 {
		t.Errorf("month then day, the next day: %d remaining, want 9", d.Quota.Remaining)
	}
}

// TestMemoryBytesPerKey measures the heap a tracked key takes, and checks
// that a sweep gives it back. The figure is in the package doc.
func TestMemoryBytesPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 keys")
	}
	const n = 100_000
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	heap := func() uint64 {
		var s runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&s)
		return s.HeapAlloc
	}
	before := heap()
	m := limit.NewMemory()
	for _, id := range ids {
		mustAllow(t, m, id, both, base)
	}
	perKey := float64(heap()-before) / n
	t.Logf("%d keys: %.1f bytes per key", n, perKey)
	if perKey > 100 {
		t.Errorf("%.1f bytes per key, want at most 100", perKey)
	}
	m.Sweep(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	after := heap()
	if after > before+n*10 {
		t.Errorf("after a sweep of all keys, %d bytes left for %d keys", after-before, n)
	}
	runtime.KeepAlive(m)
}
