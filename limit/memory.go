package limit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// Defaults of a [Memory].
const (
	DefaultMaxKeys       = 1_000_000   // the most keys a Memory tracks
	DefaultSweepInterval = time.Minute // how often each shard drops idle keys
)

// ErrFull is returned by [Memory.Allow] for a key it does not track yet
// when it tracks its maximum number of keys, none of them idle. As with any
// limiter error, the caller chooses whether to let the request through.
var ErrFull = errors.New("limit: memory limiter tracks its maximum number of keys")

// Memory is a [Limiter] for one process: the rate limit and quota state of
// each key in a table of 64 shards, each a mutex and a map, so that
// requests of different keys rarely wait for each other. Allow and Peek of
// a key already tracked allocate nothing (but for the sweep that shrinks a
// shard, below).
//
// A Memory tracks at most its maximum number of keys ([WithMaxKeys]), and
// drops the idle ones: those whose bucket is full and whose quota counts
// nothing in the current period, so that dropping them changes no
// decision. During an Allow, the key's shard drops its idle keys if it
// has not for a sweep interval ([WithSweepInterval]) of the times Allow is
// given, and moves to a smaller map once three quarters of the keys it
// held are gone, so that memory comes back after a crowd of keys has left.
// When the table is full, Allow of a new key first sweeps every shard, one
// at a time, unless that was done less than a second (of the times given)
// before; if no key was idle, the new key is refused with [ErrFull]. Keys
// already tracked carry on, and Peek never needs room. A Memory starts no
// goroutine and needs no closing; [Memory.Sweep] sweeps on demand.
//
// The times given to Allow and Peek must lie between the years 1678 and
// 2262, those that [time.Time.UnixNano] can count: a Memory keeps them in
// Unix nanoseconds.
//
// Use [NewMemory]; the zero Memory is not usable.
type Memory struct {
	shards [shardCount]shard
	count  atomic.Int64 // keys tracked, in all shards

	maxKeys int64
	sweep   int64 // sweep interval, ns

	full     sync.Mutex // serialises the sweeps of all shards when full
	fullAt   int64      // the now of the last such sweep, ns; guarded by full
	fullDone bool       // whether there was one; guarded by full
}

var _ Limiter = (*Memory)(nil)

// A MemoryOption configures a [Memory].
type MemoryOption func(*Memory)

// WithMaxKeys sets the most keys a Memory tracks, [DefaultMaxKeys] by
// default. It panics if n is less than 1.
func WithMaxKeys(n int) MemoryOption {
	if n < 1 {
		panic("limit: WithMaxKeys of less than 1")
	}
	return func(m *Memory) { m.maxKeys = int64(n) }
}

// WithSweepInterval sets how often, in the times given to Allow, each shard
// of a Memory drops its idle keys, [DefaultSweepInterval] by default. A
// sweep holds its shard's lock, and delays the Allow that runs it, for
// about 20 ns per key of the shard: 0.3 ms for the 15,600 keys of a shard
// of a full table of a million. It panics if d is not positive.
func WithSweepInterval(d time.Duration) MemoryOption {
	if d <= 0 {
		panic("limit: WithSweepInterval of a duration that is not positive")
	}
	return func(m *Memory) { m.sweep = int64(d) }
}

// NewMemory returns an empty in-memory limiter.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{maxKeys: DefaultMaxKeys, sweep: int64(DefaultSweepInterval)}
	for _, o := range opts {
		o(m)
	}
	for i := range m.shards {
		m.shards[i].keys = make(map[uuid.UUID]entry)
		m.shards[i].nextSweep = math.MinInt64
	}
	return m
}

// Len returns the number of keys m tracks.
func (m *Memory) Len() int { return int(m.count.Load()) }

// Allow implements [Limiter.Allow]. A key that m does not track yet is
// refused tracking with [ErrFull] if m is full of keys none of which is
// idle.
func (m *Memory) Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("limit: %w", err)
	}
	if p == nil || p.Rate.IsZero() && p.Quota.IsZero() {
		return Decision{Allowed: true}, nil
	}
	s := m.shard(id)
	t := now.UnixNano()
	for room := false; ; room = true {
		s.mu.Lock()
		if err := s.validate(p); err != nil {
			s.mu.Unlock()
			return Decision{}, err
		}
		if t >= s.nextSweep {
			m.sweepShard(s, now, t)
		}
		e, tracked := s.keys[id]
		d, next, write := s.decide(e, p, now, t, true)
		switch {
		case !write:
		case tracked:
			s.keys[id] = next
		case m.reserve():
			s.keys[id] = next
			s.peak = max(s.peak, len(s.keys))
		case !room:
			// Full: make room with the shard unlocked, then decide again.
			s.mu.Unlock()
			if m.makeRoom(t) {
				continue
			}
			return Decision{}, ErrFull
		default:
			s.mu.Unlock()
			return Decision{}, ErrFull
		}
		s.mu.Unlock()
		return d, nil
	}
}

// Peek implements [Limiter.Peek].
func (m *Memory) Peek(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("limit: %w", err)
	}
	if p == nil || p.Rate.IsZero() && p.Quota.IsZero() {
		return Decision{Allowed: true}, nil
	}
	s := m.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.validate(p); err != nil {
		return Decision{}, err
	}
	d, _, _ := s.decide(s.keys[id], p, now, now.UnixNano(), false)
	return d, nil
}

// Sweep drops the keys idle at now, one shard at a time, and returns how
// many it dropped. Allow sweeps as it goes, so calling Sweep is optional:
// it returns memory when requests have stopped coming.
func (m *Memory) Sweep(now time.Time) int {
	t, n := now.UnixNano(), 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += m.sweepShard(s, now, t)
		s.mu.Unlock()
	}
	return n
}

const (
	shardCount = 64
	shardBits  = 6
)

// A shard is one part of a Memory's table, padded so that shards do not
// share cache lines.
type shard struct {
	mu        sync.Mutex
	keys      map[uuid.UUID]entry
	peak      int   // the most keys since the map was made
	nextSweep int64 // ns
	day       window
	month     window
	valid     limits // the limits of the last valid policy seen
	_         [64]byte
}

// limits are what a Memory reads of a policy.
type limits struct {
	rate  apikey.RateLimit
	quota apikey.Quota
}

// validate returns the error of [apikey.Policy.Validate] for the rate
// limit and quota of p, which are all a limiter reads. It remembers the
// limits of the last valid policy, so that a shard whose keys share a
// policy validates it once: Validate takes a quarter of a request's time.
func (s *shard) validate(p *apikey.Policy) error {
	l := limits{p.Rate, p.Quota}
	if l == s.valid {
		return nil
	}
	v := apikey.Policy{Rate: p.Rate, Quota: p.Quota}
	if err := v.Validate(); err != nil {
		return err
	}
	s.valid = l
	return nil
}

// A window caches the bounds of a quota period, in Unix ns: the calendar
// arithmetic of [apikey.QuotaPeriod.Bounds] runs once a period per shard.
type window struct{ lo, hi int64 }

// An entry is the state of one key: 16 bytes, so that a map slot with its
// key is 32.
type entry struct {
	// tat is the theoretical arrival time of the generic cell rate
	// algorithm: when the key's bucket is full again, in Unix ns; at or
	// before now, it is full.
	tat int64
	// q packs the quota counter: its period (2 bits), the Unix day its
	// period starts, biased by 2^21 (22 bits, ±5,700 years), and its count
	// (40 bits, up to apikey.MaxQuotaRequests). Zero means no count.
	q uint64
}

const (
	countBits = 40
	dayBits   = 22
	dayBias   = 1 << (dayBits - 1)
	countMask = 1<<countBits - 1
	dayMask   = 1<<dayBits - 1
	nsPerDay  = int64(24 * time.Hour)
)

func packQuota(per apikey.QuotaPeriod, day, count int64) uint64 {
	return uint64(per)<<(countBits+dayBits) | uint64(day+dayBias)&dayMask<<countBits | uint64(count)
}

// The count fits in its bits.
var _ [countMask - apikey.MaxQuotaRequests]struct{}

func unpackQuota(q uint64) (per apikey.QuotaPeriod, day, count int64) {
	return apikey.QuotaPeriod(q >> (countBits + dayBits)), int64(q>>countBits&dayMask) - dayBias, int64(q & countMask)
}

// shard returns the shard of id. IDs are random, but the first bytes of a
// version 7 UUID are a time, so all its bytes are mixed.
func (m *Memory) shard(id uuid.UUID) *shard {
	h := binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])
	return &m.shards[h*0x9e3779b97f4a7c15>>(64-shardBits)]
}

// bounds returns the bounds of the period per holding now (t in Unix ns).
func (s *shard) bounds(per apikey.QuotaPeriod, now time.Time, t int64) window {
	w := &s.day
	if per == apikey.Month {
		w = &s.month
	}
	if t < w.lo || t >= w.hi {
		lo, hi := per.Bounds(now)
		*w = window{lo.UnixNano(), hi.UnixNano()}
	}
	return *w
}

// decide returns the decision on a request of a key in state e under the
// valid, non-zero policy p at now (t in Unix ns), counting it if count is
// true, and the key's next state, which should be written if write is
// true.
func (s *shard) decide(e entry, p *apikey.Policy, now time.Time, t int64, count bool) (d Decision, next entry, write bool) {
	next = e
	var (
		rateOK, quotaOK = true, true
		used, c, iv     int64 // rate: allowances in use, capacity, interval
		debt            int64 // rate: ns until the bucket is full
		qcount, qday    int64 // quota: count and period start day
		w               window
	)
	if r := p.Rate; !r.IsZero() {
		c, iv = int64(r.Capacity()), int64(r.Interval())
		debt = max(e.tat-t, 0)
		used = debt / iv
		if debt%iv != 0 {
			used++
		}
		if used > c {
			// Full later than a bucket of this policy can be: the policy
			// changed. The bucket is empty, and fills from now.
			used, debt = c, c*iv
			next.tat, write = t+debt, count
		}
		rateOK = used < c
	}
	if q := p.Quota; !q.IsZero() {
		w = s.bounds(q.Per, now, t)
		qday = floorDiv(w.lo, nsPerDay)
		_, day, n := unpackQuota(e.q)
		if e.q != 0 && day >= qday {
			// Counted in this period, or in a later one if now steps back:
			// the count holds.
			qcount, qday = n, day
		}
		quotaOK = qcount < q.Requests
	}

	d.Allowed = rateOK && quotaOK
	if d.Allowed && count {
		write = true
		if c != 0 {
			used++
			debt += iv
			next.tat = satAdd(t, debt)
		}
		if !p.Quota.IsZero() {
			qcount++
			next.q = packQuota(p.Quota.Per, qday, qcount)
		}
	}
	if c != 0 {
		d.Rate = Status{Limit: c, Remaining: c - used, Reset: time.Duration(debt)}
		if !rateOK {
			d.RetryAfter = time.Duration(debt - (c-1)*iv)
		}
	}
	if q := p.Quota; !q.IsZero() {
		d.Quota = Status{Limit: q.Requests, Remaining: max(q.Requests-qcount, 0), Reset: time.Duration(w.hi - t)}
		if !quotaOK {
			d.RetryAfter = max(d.RetryAfter, d.Quota.Reset)
		}
	}
	return d, next, write
}

// idle reports whether e holds no information at now (t in Unix ns): its
// bucket is full, and its quota counts nothing in the current period.
func (s *shard) idle(e entry, now time.Time, t int64) bool {
	if e.tat > t {
		return false
	}
	per, day, n := unpackQuota(e.q)
	if e.q == 0 || n == 0 || per != apikey.Day && per != apikey.Month {
		return true
	}
	return day < floorDiv(s.bounds(per, now, t).lo, nsPerDay)
}

// sweepShard drops the idle keys of s, which the caller has locked, and
// returns how many it dropped. If s holds a quarter of the keys its map
// was grown for, it moves them to a new map and lets the old one go.
func (m *Memory) sweepShard(s *shard, now time.Time, t int64) int {
	s.nextSweep = satAdd(t, m.sweep)
	n := 0
	for id, e := range s.keys {
		if s.idle(e, now, t) {
			delete(s.keys, id)
			n++
		}
	}
	m.count.Add(-int64(n))
	if s.peak >= 1024 && len(s.keys) <= s.peak/4 {
		keys := make(map[uuid.UUID]entry, len(s.keys))
		for id, e := range s.keys {
			keys[id] = e
		}
		s.keys, s.peak = keys, len(keys)
	}
	return n
}

// reserve counts one more key, if m has room for it.
func (m *Memory) reserve() bool {
	for {
		n := m.count.Load()
		if n >= m.maxKeys {
			return false
		}
		if m.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// makeRoom sweeps all shards, unless another call did within the last
// second of now (t in Unix ns), and reports whether m has room for a key.
// The caller holds no shard lock.
func (m *Memory) makeRoom(t int64) bool {
	m.full.Lock()
	defer m.full.Unlock()
	if m.count.Load() < m.maxKeys {
		return true // another call made room
	}
	if m.fullDone && t < satAdd(m.fullAt, int64(time.Second)) {
		return false // no key has become idle since, or not many
	}
	m.fullAt, m.fullDone = t, true
	m.Sweep(time.Unix(0, t))
	return m.count.Load() < m.maxKeys
}

// floorDiv returns a/b rounded down, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// satAdd returns a+b for b >= 0, or the largest int64 if that overflows.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
