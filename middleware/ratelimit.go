package middleware

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/internal/outage"
	"github.com/keyward/keyward/limit"
)

// The names of the two limits of a policy in the RateLimit header fields
// and in [Error.ViolatedPolicies].
const (
	policyRate  = "rate"
	policyQuota = "quota"
)

// WithLimiter enforces the rate limits and quotas of key policies
// ([apikey.Policy.Rate], [apikey.Policy.Quota]) with l, such as a
// [limit.Memory] for a single instance. Only keys whose policy sets a rate
// limit or a quota reach it: a key without one costs nothing more.
//
// For such a key, after the key is verified and its networks checked,
// l.Allow counts the request under the key's ID at the lifecycle's time
// ([keyward.Keys.Now]). A request over a limit is refused with 429
// Too Many Requests ([ErrRateLimited]), a Retry-After of the limiter's
// wait in whole seconds, rounded up, and a problem+json body of the type
// "https://iana.org/assignments/http-problem-types#quota-exceeded", whose
// member "violated-policies" names the limits exceeded. What happens when
// l fails is [WithLimiterFailure]'s choice.
//
// Every response to a request that l decided, allowed or refused, carries
// the RateLimit-Policy and RateLimit header fields of the HTTPAPI working
// group's draft (draft-ietf-httpapi-ratelimit-headers-11, May 2026, which
// defines both as Structured Field lists of String items), one item per
// limit the policy sets, named "rate" and "quota":
//
//	RateLimit-Policy: "rate";q=100;w=60, "quota";q=10000;w=86400
//	RateLimit: "rate";r=0;t=12, "quota";r=9850;t=40213
//
// In RateLimit-Policy, q is the rate limit's requests per period and w
// its period in seconds (a period that is not whole seconds is scaled with
// q, so 3 requests per 1.5 s reads q=6;w=3); when its burst differs from
// q, the parameter keyward-burst gives it. For the quota, q is its
// requests and w the length in seconds of the current calendar period
// (86400 for a day, 2678400 for a 31-day month). In RateLimit, r is the
// requests left ([limit.Status.Remaining]) and t the seconds, rounded up,
// until the limit is whole again ([limit.Status.Reset]); on a 429, t of a
// limit with nothing left is at most Retry-After, as the draft asks
// (section 6).
//
// Without WithLimiter, rate limits and quotas are not enforced (networks
// always are), and the first key that has one is logged as a warning.
func WithLimiter(l limit.Limiter) Option {
	return func(c *config) {
		if l == nil {
			c.setErr(errors.New("middleware: WithLimiter needs a limiter"))
			return
		}
		c.limiter = l
	}
}

// WithLimiterFailure sets what happens to a request when the limiter of
// [WithLimiter] returns an error: it is let through ([limit.LetThrough],
// the default) or refused with 503 Service Unavailable and Retry-After: 5
// ([limit.Refuse], [ErrLimiterUnavailable]). See [limit.FailureMode] for
// why the default lets requests through, and when to refuse. Either way
// the outage is logged, through [keyward.Keys.Logger].
func WithLimiterFailure(f limit.FailureMode) Option {
	return func(c *config) {
		if !f.Valid() {
			c.setErr(errors.New("middleware: WithLimiterFailure needs limit.LetThrough or limit.Refuse"))
			return
		}
		c.failure = f
	}
}

// enforceLimits asks the limiter about a request of the key with ID id and
// policy p, sets the rate-limit header fields on w, and returns the
// refusal, if any.
func (c *config) enforceLimits(w http.ResponseWriter, r *http.Request, id uuid.UUID, p *apikey.Policy) error {
	if c.limiter == nil {
		if c.unlimitedWarned.CompareAndSwap(false, true) {
			c.keys.Logger().Warn("keyward/middleware: key policies set rate limits or quotas, but Authenticate has no limiter (WithLimiter): they are not enforced",
				"key_id", id)
		}
		return nil
	}
	now := c.keys.Now()
	d, err := c.limiter.Allow(r.Context(), id, p, now)
	if err != nil {
		c.limiterHealth.Failed(err)
		if c.failure == limit.Refuse {
			return newError(c.realm, &limiterError{err})
		}
		return nil
	}
	c.limiterHealth.OK()
	c.setRateLimitHeaders(w.Header(), p, d, now)
	if d.Allowed {
		return nil
	}
	var violated []string
	if !p.Rate.IsZero() && d.Rate.Remaining <= 0 {
		violated = append(violated, policyRate)
	}
	if !p.Quota.IsZero() && d.Quota.Remaining <= 0 {
		violated = append(violated, policyQuota)
	}
	c.keys.CountRefusal(r.Context(), id, keyward.OutcomeLimited)
	return rateLimitedError(c.realm, violated, d.RetryAfter)
}

// setRateLimitHeaders sets RateLimit-Policy and RateLimit. The policy's
// value comes from c.policyFields; RateLimit's is written without fmt into
// one string, and both slices share one array: two allocations.
func (c *config) setRateLimitHeaders(h http.Header, p *apikey.Policy, d limit.Decision, now time.Time) {
	var buf [128]byte
	v := new([2]string)
	v[0], v[1] = c.policyFields.get(p, now), string(appendLimitField(buf[:0], p, d))
	h["Ratelimit-Policy"] = v[0:1:1]
	h["Ratelimit"] = v[1:2:2]
}

// A policyFieldCache holds recent RateLimit-Policy values by the limits
// they describe. It is a performance trick, fenced here: formatting the
// value, and reading the calendar for a quota's period, cost as much as
// the limiter's decision, yet keys share a few plans, and a value changes
// only with the policy, or at the end of its quota's period. A lookup is
// one atomic load and a comparison; slots are overwritten, never freed,
// so the cache holds at most policyFieldSlots values whatever the number
// of keys.
type policyFieldCache [policyFieldSlots]atomic.Pointer[policyField]

const policyFieldSlots = 64

// A policyField is the RateLimit-Policy value of rate and quota, valid
// from start to end (Unix ns): the quota's period, or forever.
type policyField struct {
	rate       apikey.RateLimit
	quota      apikey.Quota
	start, end int64
	value      string
}

// get returns the RateLimit-Policy value of p at now.
func (c *policyFieldCache) get(p *apikey.Policy, now time.Time) string {
	t := now.UnixNano()
	slot := &c[policyFieldSlot(p.Rate, p.Quota)]
	if f := slot.Load(); f != nil && f.rate == p.Rate && f.quota == p.Quota && f.start <= t && t < f.end {
		return f.value
	}
	f := &policyField{rate: p.Rate, quota: p.Quota, start: math.MinInt64, end: math.MaxInt64}
	var buf [128]byte
	b := buf[:0]
	if r := p.Rate; !r.IsZero() {
		q, w := rateWindow(r)
		b = append(b, `"rate";q=`...)
		b = strconv.AppendInt(b, q, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, w, 10)
		if r.Burst != 0 && r.Burst != r.Requests {
			b = append(b, ";keyward-burst="...)
			b = strconv.AppendInt(b, int64(r.Burst), 10)
		}
	}
	if q := p.Quota; !q.IsZero() {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		start, end := q.Per.Bounds(now)
		f.start, f.end = start.UnixNano(), end.UnixNano()
		b = append(b, `"quota";q=`...)
		b = strconv.AppendInt(b, q.Requests, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, int64(end.Sub(start)/time.Second), 10)
	}
	f.value = string(b)
	slot.Store(f)
	return f.value
}

// policyFieldSlot spreads limits over the cache's slots.
func policyFieldSlot(r apikey.RateLimit, q apikey.Quota) int {
	h := uint64(r.Requests)*0x9e3779b97f4a7c15 ^ uint64(r.Period)*0xbf58476d1ce4e5b9 ^
		uint64(r.Burst)*0x94d049bb133111eb ^ uint64(q.Requests)*0xd6e8feb86659fd93 ^ uint64(q.Per)
	return int((h ^ h>>32) % policyFieldSlots)
}

// rateWindow returns a rate limit as q requests per w whole seconds: the
// period in seconds if it is whole, else the smallest multiple of it that
// is, with the requests scaled alike.
func rateWindow(r apikey.RateLimit) (q, w int64) {
	ms := r.Period.Milliseconds()
	k := 1000 / gcd(ms, 1000)
	return int64(r.Requests) * k, ms * k / 1000
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// appendLimitField appends the RateLimit value of decision d under p.
func appendLimitField(b []byte, p *apikey.Policy, d limit.Decision) []byte {
	if !p.Rate.IsZero() {
		b = appendLimitItem(b, policyRate, d.Rate, d)
	}
	if !p.Quota.IsZero() {
		if !p.Rate.IsZero() {
			b = append(b, ", "...)
		}
		b = appendLimitItem(b, policyQuota, d.Quota, d)
	}
	return b
}

// appendLimitItem appends the item of one limit, of status s, to RateLimit.
func appendLimitItem(b []byte, name string, s limit.Status, d limit.Decision) []byte {
	t := ceilSeconds(s.Reset, 0)
	if !d.Allowed && s.Remaining <= 0 {
		t = min(t, ceilSeconds(d.RetryAfter, 1))
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, max(s.Remaining, 0), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, t, 10)
}

// ceilSeconds returns d in whole seconds, rounded up, and at least least.
func ceilSeconds(d time.Duration, least int64) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, least)
}

// limiterOutage returns the log of the limiter's outages: the first
// failure, a line every outage.Every while it lasts, and the recovery, in
// the lifecycle's log.
func limiterOutage(logger *slog.Logger, f limit.FailureMode) outage.Log {
	down := "keyward/middleware: the rate limiter is unavailable: requests of keys with rate limits or quotas are let through, unlimited, until it answers again"
	if f == limit.Refuse {
		down = "keyward/middleware: the rate limiter is unavailable: requests of keys with rate limits or quotas get 503 until it answers again"
	}
	return outage.Log{
		Logger: logger,
		Now:    func() time.Duration { return time.Duration(clock.Mono()) },
		Down:   down,
		Still:  "keyward/middleware: the rate limiter is still unavailable",
		Up:     "keyward/middleware: the rate limiter answers again",
	}
}
