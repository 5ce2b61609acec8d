package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/keyward/keyward/apikey"
)

// policyJSON returns what the store writes in the policy column for p: NULL
// (nil) for no policy or a zero one, else p as package apikey marshals it
// to JSON, text that the query casts to jsonb:
//
//	{"rate":{"requests":100,"period":"1m0s","burst":20},"quota":{"requests":1000000,"per":"month"},
//	 "networks":["203.0.113.0/24","2001:db8::/32"]}
//
// with what the policy does not set left out. p has passed
// [apikey.Policy.Validate].
func policyJSON(p *apikey.Policy) (any, error) {
	if p.IsZero() {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: policy: %w", apikey.ErrInvalidRecord, err)
	}
	return string(b), nil
}

// storedPolicy is the policy in the array form of [extras]: the JSON that
// [policyJSON] wrote, as jsonb gives it back (its keys reordered, a space
// after each colon and comma).
//
// It is read strictly, so that a policy written otherwise (in raw SQL, or
// by a later version that knows more of a policy) fails the read rather
// than reach the application as a limit other than the one stored: a field
// it does not know, at any depth, and a value of another type, are errors
// here, and a policy that [apikey.Policy.Validate] refuses is an error of
// [storedPolicy.policy].
//
// It reads the format of package apikey's marshalling, but not through
// its unmarshalling, for the verification lookup: RateLimit.UnmarshalJSON
// runs a decoder of its own, and decoding into apikey.Policy costs a
// lookup of a key with a policy 7 or 8 allocations more (108 against 100;
// see BenchmarkGetByHash). A field that package apikey adds to the format
// fails the read here until it is added here too, which the conformance
// suite, storing a policy of every field, shows.
type storedPolicy struct {
	Rate struct {
		Requests int          `json:"requests"`
		Period   storedPeriod `json:"period"`
		Burst    int          `json:"burst"`
	} `json:"rate"`
	Quota    apikey.Quota   `json:"quota"` // its period, "day" or "month", read by QuotaPeriod.UnmarshalText
	Networks []netip.Prefix `json:"networks"`
}

// UnmarshalJSON decodes a stored policy, refusing fields it does not know.
// encoding/json calls it only for a policy: null leaves the field nil, at
// no cost to the keys without one.
func (s *storedPolicy) UnmarshalJSON(text []byte) error {
	type fields storedPolicy // without this method, which Decode would call again
	d := json.NewDecoder(bytes.NewReader(text))
	d.DisallowUnknownFields()
	return d.Decode((*fields)(s))
}

// policy returns the policy s holds, nil if it is zero. A policy that
// [apikey.Policy.Validate] refuses is an error, not a policy: the read
// fails rather than give the application a limit other than the one
// stored.
func (s *storedPolicy) policy() (*apikey.Policy, error) {
	p := apikey.Policy{
		Rate:     apikey.RateLimit{Requests: s.Rate.Requests, Period: time.Duration(s.Rate.Period), Burst: s.Rate.Burst},
		Quota:    s.Quota,
		Networks: s.Networks,
	}
	if p.IsZero() {
		return nil, nil
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &p, nil
}

// A storedPeriod is the period of a stored rate limit, written as
// [time.Duration.String] writes it, such as "1m0s".
type storedPeriod time.Duration

// UnmarshalText reads any text [time.ParseDuration] accepts.
func (p *storedPeriod) UnmarshalText(text []byte) error {
	d, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("rate limit period: %w", err)
	}
	*p = storedPeriod(d)
	return nil
}
