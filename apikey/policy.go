package apikey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Limits of a [Policy].
const (
	MaxRateRequests  = 1_000_000         // the most requests a RateLimit allows per period
	MinRatePeriod    = time.Second       // the shortest RateLimit period
	MaxRatePeriod    = 24 * time.Hour    // the longest RateLimit period
	MaxQuotaRequests = 1_000_000_000_000 // the largest Quota
	MaxNetworks      = 64                // the most networks a Policy allows
)

// A Policy is what a key may do beyond its scopes: how often, how much,
// and from where. The zero Policy allows everything; a key without one
// pays nothing for policies at verification. Treat a Policy held by a
// [Record] as read-only: records share it.
type Policy struct {
	// Rate, if not zero, limits how fast the key may be used.
	Rate RateLimit `json:"rate,omitzero"`
	// Quota, if not zero, caps the requests per UTC calendar day or month.
	Quota Quota `json:"quota,omitzero"`
	// Networks, if not empty, are the only client networks the key works
	// from, such as 203.0.113.0/24 or 2001:db8::/32. Each is masked: no
	// address bits past its length.
	Networks []netip.Prefix `json:"networks,omitempty"`
}

// A RateLimit allows Requests per Period on average, and at most Burst at
// once: a token bucket of Burst tokens refilled at Requests per Period
// (the generic cell rate algorithm computes the same).
type RateLimit struct {
	// Requests is how many requests a Period allows, 1 to MaxRateRequests.
	Requests int
	// Period is 1 second to 24 hours, in whole milliseconds.
	Period time.Duration
	// Burst is the most requests allowed at once, 1 to MaxRateRequests;
	// 0 means Requests.
	Burst int
}

// IsZero reports whether r sets no limit.
func (r RateLimit) IsZero() bool { return r == RateLimit{} }

// Capacity returns the most requests allowed at once: Burst, or Requests
// if Burst is 0.
func (r RateLimit) Capacity() int {
	if r.Burst == 0 {
		return r.Requests
	}
	return r.Burst
}

// Interval returns the time in which one request's allowance comes back:
// Period / Requests.
func (r RateLimit) Interval() time.Duration { return r.Period / time.Duration(r.Requests) }

type rateJSON struct {
	Requests int    `json:"requests"`
	Period   string `json:"period"`
	Burst    int    `json:"burst,omitempty"`
}

// MarshalJSON writes the limit as {"requests":100,"period":"1m0s","burst":20},
// the period as [time.Duration.String] writes it.
func (r RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(rateJSON{Requests: r.Requests, Period: r.Period.String(), Burst: r.Burst})
}

// UnmarshalJSON reads what MarshalJSON writes; the period is any text
// [time.ParseDuration] accepts, such as "1m" or "1h30m".
// Unknown fields are refused: a misspelled "burst" must not silently
// give a key no burst.
func (r *RateLimit) UnmarshalJSON(b []byte) error {
	var v rateJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if v.Period == "" {
		return errors.New(`rate limit period is required, such as "1m"`)
	}
	d, err := time.ParseDuration(v.Period)
	if err != nil {
		return fmt.Errorf("rate limit period: %w", err)
	}
	*r = RateLimit{Requests: v.Requests, Period: d, Burst: v.Burst}
	return nil
}

// A QuotaPeriod is the calendar period a [Quota] counts over, in UTC.
type QuotaPeriod uint8

// Quota periods.
const (
	Day   QuotaPeriod = iota + 1 // from 00:00 UTC to the next
	Month                        // from the 1st, 00:00 UTC, to the next month's
)

// String returns "day" or "month", and "unknown" otherwise.
func (p QuotaPeriod) String() string {
	switch p {
	case Day:
		return "day"
	case Month:
		return "month"
	}
	return "unknown"
}

// MarshalText returns "day" or "month".
func (p QuotaPeriod) MarshalText() ([]byte, error) {
	if p != Day && p != Month {
		return nil, errors.New(`apikey: a quota period is "day" or "month"`)
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads "day" or "month".
func (p *QuotaPeriod) UnmarshalText(b []byte) error {
	switch string(b) {
	case "day":
		*p = Day
	case "month":
		*p = Month
	default:
		return errors.New(`apikey: a quota period is "day" or "month"`)
	}
	return nil
}

// Bounds returns the start of the period holding t and the start of the
// next, in UTC.
func (p QuotaPeriod) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	switch p {
	case Month:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	default:
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	}
}

// A Quota caps the requests of a key per UTC calendar period.
type Quota struct {
	// Requests is how many requests a period allows, 1 to
	// MaxQuotaRequests.
	Requests int64 `json:"requests"`
	// Per is Day or Month.
	Per QuotaPeriod `json:"per"`
}

// IsZero reports whether q sets no quota.
func (q Quota) IsZero() bool { return q == Quota{} }

// ErrInvalidPolicy is wrapped by the errors of [Policy.Validate].
var ErrInvalidPolicy = errors.New("apikey: invalid policy")

// IsZero reports whether p sets nothing: no rate limit, no quota, no
// networks. A nil Policy is zero.
func (p *Policy) IsZero() bool {
	return p == nil || p.Rate.IsZero() && p.Quota.IsZero() && len(p.Networks) == 0
}

// Validate checks a policy, with errors that name the field at fault and
// wrap [ErrInvalidPolicy]: a rate limit of 1 to MaxRateRequests requests
// per 1 s to 24 h (whole milliseconds) with a burst of 0 to
// MaxRateRequests; a quota of 1 to MaxQuotaRequests per day or month; at
// most MaxNetworks networks, each valid, masked, and listed once. A nil
// Policy is valid.
func (p *Policy) Validate() error {
	if p == nil {
		return nil
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...)
	}
	if r := p.Rate; !r.IsZero() {
		switch {
		case r.Requests < 1 || r.Requests > MaxRateRequests:
			return fail("rate limit requests must be 1 to %d", MaxRateRequests)
		case r.Period < MinRatePeriod || r.Period > MaxRatePeriod || r.Period%time.Millisecond != 0:
			return fail("rate limit period must be 1s to 24h, in whole milliseconds")
		case r.Burst < 0 || r.Burst > MaxRateRequests:
			return fail("rate limit burst must be 0 (the requests per period) to %d", MaxRateRequests)
		}
	}
	if q := p.Quota; !q.IsZero() {
		switch {
		case q.Requests < 1 || q.Requests > MaxQuotaRequests:
			return fail("quota requests must be 1 to %d", int64(MaxQuotaRequests))
		case q.Per != Day && q.Per != Month:
			return fail(`quota period must be "day" or "month"`)
		}
	}
	if len(p.Networks) > MaxNetworks {
		return fail("at most %d networks", MaxNetworks)
	}
	seen := make(map[netip.Prefix]bool, len(p.Networks))
	for _, n := range p.Networks {
		switch {
		case !n.IsValid():
			return fail("invalid network")
		case n.Addr().Is4In6():
			return fail("network %s: write IPv4 networks as IPv4, such as %s", n, netip.PrefixFrom(n.Addr().Unmap(), max(n.Bits()-96, 0)).Masked())
		case n.Masked() != n:
			return fail("network %s has bits set past its length; did you mean %s?", n, n.Masked())
		case seen[n]:
			return fail("network %s is listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// AllowsAddr reports whether a client at addr may use the key: true if the
// policy lists no networks, else whether one of them contains addr (an
// IPv4 address written as IPv4-mapped IPv6 counts as IPv4). An invalid
// addr is allowed by no network list.
func (p *Policy) AllowsAddr(addr netip.Addr) bool {
	if p == nil || len(p.Networks) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, n := range p.Networks {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of p (nil for nil), for a store that must
// not share what its caller may change.
func (p *Policy) Clone() *Policy {
	if p == nil {
		return nil
	}
	c := *p
	c.Networks = slices.Clone(p.Networks)
	return &c
}

// Limited reports whether p sets a rate limit or a quota: whether a
// limiter must be asked about the key's requests.
func (p *Policy) Limited() bool {
	return p != nil && (!p.Rate.IsZero() || !p.Quota.IsZero())
}
