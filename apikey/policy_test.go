package apikey_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
)

func TestPolicyValidate(t *testing.T) {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	many := make([]netip.Prefix, apikey.MaxNetworks+1)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
	}
	tests := []struct {
		name   string
		policy *apikey.Policy
		want   string // in the error; "" for valid
	}{
		{"nil", nil, ""},
		{"zero", &apikey.Policy{}, ""},
		{"full", &apikey.Policy{
			Rate:     apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 5},
			Quota:    apikey.Quota{Requests: 10, Per: apikey.Month},
			Networks: []netip.Prefix{p("203.0.113.0/24"), p("2001:db8::/32"), p("0.0.0.0/0")},
		}, ""},
		{"no requests", &apikey.Policy{Rate: apikey.RateLimit{Period: time.Minute}}, "rate limit requests"},
		{"too many requests", &apikey.Policy{Rate: apikey.RateLimit{Requests: apikey.MaxRateRequests + 1, Period: time.Minute}}, "rate limit requests"},
		{"no period", &apikey.Policy{Rate: apikey.RateLimit{Requests: 1}}, "period"},
		{"sub-millisecond period", &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second + time.Microsecond}}, "period"},
		{"two days", &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: 48 * time.Hour}}, "period"},
		{"negative burst", &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Second, Burst: -1}}, "burst"},
		{"quota without period", &apikey.Policy{Quota: apikey.Quota{Requests: 5}}, "quota period"},
		{"quota of zero", &apikey.Policy{Quota: apikey.Quota{Per: apikey.Day}}, "quota requests"},
		{"unmasked", &apikey.Policy{Networks: []netip.Prefix{p("10.1.2.3/8")}}, "did you mean 10.0.0.0/8"},
		{"4in6", &apikey.Policy{Networks: []netip.Prefix{p("::ffff:10.0.0.0/104")}}, "write IPv4 networks as IPv4, such as 10.0.0.0/8"},
		{"twice", &apikey.Policy{Networks: []netip.Prefix{p("10.0.0.0/8"), p("10.0.0.0/8")}}, "listed twice"},
		{"invalid", &apikey.Policy{Networks: []netip.Prefix{{}}}, "invalid network"},
		{"too many", &apikey.Policy{Networks: many}, "at most 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, apikey.ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an ErrInvalidPolicy saying %q", err, tc.want)
			}
		})
	}
}

func TestPolicyJSON(t *testing.T) {
	in := &apikey.Policy{
		Rate:     apikey.RateLimit{Requests: 100, Period: 90 * time.Second, Burst: 5},
		Quota:    apikey.Quota{Requests: 10, Per: apikey.Month},
		Networks: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"rate":{"requests":100,"period":"1m30s","burst":5},"quota":{"requests":10,"per":"month"},"networks":["2001:db8::/32"]}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	var out apikey.Policy
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Rate != in.Rate || out.Quota != in.Quota || len(out.Networks) != 1 || out.Networks[0] != in.Networks[0] {
		t.Errorf("round trip = %+v", out)
	}
	if b, _ := json.Marshal(&apikey.Policy{}); string(b) != "{}" {
		t.Errorf("zero policy JSON = %s", b)
	}
	for _, bad := range []string{
		`{"quota":{"requests":1,"per":"week"}}`,
		`{"rate":{"requests":1,"period":"1s","brust":5}}`,
		`{"rate":{"requests":1}}`,
	} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

func TestPolicyAllowsAddr(t *testing.T) {
	p := &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	for addr, want := range map[string]bool{
		"203.0.113.9":        true,
		"::ffff:203.0.113.9": true, // IPv4-mapped counts as IPv4
		"203.0.114.1":        false,
		"2001:db8::1":        true,
		"2001:db9::1":        false,
	} {
		if got := p.AllowsAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowsAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if p.AllowsAddr(netip.Addr{}) {
		t.Error("an invalid address was allowed")
	}
	if !(*apikey.Policy)(nil).AllowsAddr(netip.Addr{}) || !(&apikey.Policy{}).AllowsAddr(netip.MustParseAddr("10.0.0.1")) {
		t.Error("a policy without networks refused an address")
	}
}

func TestQuotaPeriodBounds(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 999_000_000, time.FixedZone("UTC-5", -5*3600)) // 2027-01-01 04:59:59.999 UTC
	start, end := apikey.Day.Bounds(at)
	if !start.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day bounds = %v, %v", start, end)
	}
	start, end = apikey.Month.Bounds(time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC))
	if !start.Equal(time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("month bounds = %v, %v", start, end)
	}
}

func TestRateLimit(t *testing.T) {
	r := apikey.RateLimit{Requests: 100, Period: time.Minute}
	if r.Capacity() != 100 || r.Interval() != 600*time.Millisecond {
		t.Errorf("Capacity %d, Interval %v", r.Capacity(), r.Interval())
	}
	r.Burst = 7
	if r.Capacity() != 7 {
		t.Errorf("Capacity with a burst = %d", r.Capacity())
	}
}
