package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/limit"
)

// DefaultPrefix begins the name of every key the limiter writes, unless
// [WithPrefix] says otherwise.
const DefaultPrefix = "keyward:limit:"

// KeyMargin is how long a key outlives what it records: a rate key lives
// until its bucket is full again, a quota key until its period ends, and
// each then KeyMargin more. An expired key and a kept one decide alike
// (the limiter reads a TAT in the past as a full bucket, and counts a new
// period under a new key), so the margin costs only memory. It absorbs
// the clock skew between instances (a key set by an instance whose clock
// is ahead expires early by that instance's reckoning) and, in tests that
// pass times of their own, the real time that passes between checks.
const KeyMargin = time.Minute

// maxTolerance caps a rate limit's burst tolerance, (capacity - 1) * T,
// which the largest valid policies (a burst of a million, one request a
// day) would take past what an int64 of nanoseconds holds: 2^62 ns is 146
// years, a bucket that never refills in practice.
const maxTolerance = 1 << 62

// maxPeriodRetries bounds how often a check asks again when, with
// [WithServerTime], the server's clock is in another quota period than
// the one asked about: once is enough unless a period ends in between.
const maxPeriodRetries = 3

//go:embed check.lua
var checkSource string

// check is the one script the limiter runs: EVALSHA, and EVAL when the
// server does not have it (NOSCRIPT), which also caches it there.
var check = redis.NewScript(checkSource)

// A Limiter is a [limit.Limiter] whose state lives in Redis, shared by
// every instance that uses the same server (or cluster) and key prefix.
// Create it with [New]. It is safe for concurrent use.
type Limiter struct {
	client     redis.Scripter
	prefix     string
	serverTime bool
}

var _ limit.Limiter = (*Limiter)(nil)

// An Option configures [New].
type Option func(*config) error

type config struct {
	prefix     string
	serverTime bool
}

// WithPrefix sets what the name of every key the limiter writes begins
// with; the default is [DefaultPrefix], "keyward:limit:". Limiters that
// share a limit must use the same prefix. The prefix may not contain "{"
// or "}": Redis Cluster would take a hash tag there for the key's slot,
// and put the keys of every key id in one slot.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if strings.ContainsAny(prefix, "{}") {
			return fmt.Errorf("redislimit: the key prefix %q contains a brace: it would be taken for a Redis Cluster hash tag", prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithServerTime has the limiter read the time from the Redis server
// (TIME, inside the script) rather than use the now passed to Allow and
// Peek, which it then ignores. Instances sharing a limit then agree on the
// time exactly, whatever their clocks; the price is that a test can no
// longer set the time. A quota period's end falling between the
// caller's clock and the server's costs a second round trip. Needs Redis
// 5 or later (scripts replicated by their effects).
func WithServerTime() Option {
	return func(c *config) error {
		c.serverTime = true
		return nil
	}
}

// New returns a limiter keeping its state through client: a
// [*redis.Client], [*redis.ClusterClient], [*redis.Ring] or any other
// [redis.UniversalClient] (or [redis.Scripter]), not a pipeline. It does no
// I/O; the script is loaded on first use. The client's timeouts bound each
// check: see the package documentation.
func New(client redis.Scripter, opts ...Option) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: nil client")
	}
	c := config{prefix: DefaultPrefix}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	return &Limiter{client: client, prefix: c.prefix, serverTime: c.serverTime}, nil
}

// Allow counts one request of the key id under p at time now, if both p's
// rate limit and its quota allow it, in one round trip to Redis (see
// [limit.Limiter.Allow]), and returns the decision with the state after
// the request. With [WithServerTime], now is the server's, not the one
// given. A policy without a rate limit or quota allows everything,
// without I/O; an invalid one is an error wrapping
// [apikey.ErrInvalidPolicy]. Any other error wraps the client's, or
// ctx.Err() if ctx ended; it means the limiter could not decide, and the
// caller chooses whether to let the request through.
func (l *Limiter) Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (limit.Decision, error) {
	return l.decide(ctx, id, p, now, true)
}

// Peek returns what Allow would decide at time now, with the state before
// the request, without counting anything, in one round trip to Redis (see
// [limit.Limiter.Peek]). Its errors are Allow's.
func (l *Limiter) Peek(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (limit.Decision, error) {
	return l.decide(ctx, id, p, now, false)
}

func (l *Limiter) decide(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time, count bool) (limit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return limit.Decision{}, fmt.Errorf("redislimit: %w", err)
	}
	r, err := params(p)
	if err != nil || r.interval == 0 && r.quota == 0 {
		return limit.Decision{Allowed: err == nil}, err
	}
	write := "0"
	if count {
		write = "1"
	}
	for range maxPeriodRetries {
		var start, end time.Time
		if r.quota > 0 {
			start, end = p.Quota.Per.Bounds(now)
		}
		keys := l.keys(id, p, start)
		sec, nsec := "", ""
		if !l.serverTime {
			sec, nsec = strconv.FormatInt(now.Unix(), 10), strconv.Itoa(now.Nanosecond())
		}
		res, err := check.Run(ctx, l.client, keys[:],
			write, sec, nsec,
			r.interval, r.tolerance,
			r.quota, start.Unix(), end.Unix(),
			KeyMargin.Milliseconds(),
		).Int64Slice()
		if err != nil {
			if cerr := ctxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (%w)", cerr, err)
			}
			return limit.Decision{}, fmt.Errorf("redislimit: %w", err)
		}
		if len(res) != 5 {
			return limit.Decision{}, fmt.Errorf("redislimit: the script replied %d numbers, want 5", len(res))
		}
		if l.serverTime {
			now = time.Unix(res[3], res[4])
		}
		if res[0] < 0 { // the server's time is in another quota period
			continue
		}
		return r.decision(res[0] == 1, count, res[1], res[2], end.Sub(now)), nil
	}
	return limit.Decision{}, errors.New("redislimit: the server's clock kept moving to another quota period")
}

// ctxErr returns ctx.Err(), or context.DeadlineExceeded if ctx's deadline
// has passed but its timer has not fired yet: the client sets ctx's
// deadline on its connection (ContextTimeoutEnabled), whose timeout can
// come a moment before.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// rule is a policy in the script's terms.
type rule struct {
	interval  int64 // the emission interval T, ns; 0: no rate limit
	tolerance int64 // the burst tolerance, (capacity - 1) * T, ns
	capacity  int64
	quota     int64 // requests per period; 0: no quota
}

// params validates what a limiter reads of p, its rate limit and quota,
// as [apikey.Policy.Validate] does (the networks are not its business),
// and returns them in the script's terms.
func params(p *apikey.Policy) (rule, error) {
	if p == nil {
		return rule{}, nil
	}
	v := apikey.Policy{Rate: p.Rate, Quota: p.Quota}
	if err := v.Validate(); err != nil {
		return rule{}, fmt.Errorf("redislimit: %w", err)
	}
	var r rule
	if !p.Rate.IsZero() {
		r.interval = int64(p.Rate.Interval())
		r.capacity = int64(p.Rate.Capacity())
		if r.capacity-1 > maxTolerance/r.interval {
			r.tolerance = maxTolerance
		} else {
			r.tolerance = (r.capacity - 1) * r.interval
		}
	}
	r.quota = p.Quota.Requests // 0 if none
	return r, nil
}

// decision turns the script's reply into a Decision: whether the request
// is allowed; whether it was counted (Allow) or not (Peek); diff, the time
// until the bucket is full, max(TAT - now, 0), before the request; used,
// the quota's count before it; and the time left in the quota's period.
// An Allow that counts shows the state after the request, a Peek the state
// before it.
func (r rule) decision(allowed, count bool, diff, used int64, periodLeft time.Duration) limit.Decision {
	d := limit.Decision{Allowed: allowed}
	if r.interval > 0 {
		// Allowances in use: the bucket's debt in intervals, rounded up.
		inUse := min((diff+r.interval-1)/r.interval, r.capacity)
		rateOK := inUse < r.capacity // diff <= tolerance
		if allowed && count {
			inUse++
			diff += r.interval
		}
		d.Rate = limit.Status{Limit: r.capacity, Remaining: r.capacity - inUse, Reset: time.Duration(diff)}
		if !rateOK {
			d.RetryAfter = time.Duration(diff - r.tolerance)
		}
	}
	if r.quota > 0 {
		quotaOK := used < r.quota
		if allowed && count {
			used++
		}
		d.Quota = limit.Status{Limit: r.quota, Remaining: max(r.quota-used, 0), Reset: periodLeft}
		if !quotaOK {
			d.RetryAfter = max(d.RetryAfter, periodLeft)
		}
	}
	return d
}

// keys returns the names of the rate key and of the quota key of the
// period beginning at start:
//
//	<prefix>{<id>}:rate
//	<prefix>{<id>}:quota:2026-03-01   (a daily quota)
//	<prefix>{<id>}:quota:2026-03      (a monthly quota)
//
// A policy with one limit gets its one key twice.
func (l *Limiter) keys(id uuid.UUID, p *apikey.Policy, start time.Time) [2]string {
	var rate, quota string
	if !p.Rate.IsZero() {
		rate = l.prefix + "{" + id.String() + "}:rate"
	}
	if !p.Quota.IsZero() {
		layout := "2006-01-02"
		if p.Quota.Per == apikey.Month {
			layout = "2006-01"
		}
		quota = l.prefix + "{" + id.String() + "}:quota:" + start.Format(layout)
	}
	switch {
	case rate == "":
		return [2]string{quota, quota}
	case quota == "":
		return [2]string{rate, rate}
	}
	return [2]string{rate, quota}
}
