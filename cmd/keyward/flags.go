package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

// A listFlag is a repeatable flag: every use adds a value.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// isSet reports whether the flag name was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// parseScopes reads "a,b" (commas or spaces) as scopes; the library checks
// them against the catalog.
func parseScopes(s string) scope.Set {
	var scopes []scope.Scope
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		scopes = append(scopes, scope.Scope(f))
	}
	return scope.NewSet(scopes...)
}

// parseMetadata reads k=v pairs.
func parseMetadata(pairs []string) (map[string]string, error) {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("invalid metadata: %q is not key=value", p)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("invalid metadata: key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// parseDuration is time.ParseDuration that also reads days, "30d".
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseExpiry reads -expires: an RFC 3339 time, or a duration from now
// such as 720h or 90d.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := parseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usagef("invalid expires: %s is not in the future", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("invalid expires: %q is neither an RFC 3339 time (2026-12-31T23:59:59Z) nor a duration (720h, 90d)", s)
	}
	return t, nil
}

// parseRate reads -rate: "100/1m", "100/m", "100/1m,burst=20".
func parseRate(s string) (apikey.RateLimit, error) {
	bad := func(why string) (apikey.RateLimit, error) {
		return apikey.RateLimit{}, usagef("invalid rate: %q: %s; want requests/period[,burst=N], such as 100/1m,burst=20", s, why)
	}
	spec, burst, hasBurst := strings.Cut(s, ",")
	n, per, ok := strings.Cut(spec, "/")
	if !ok {
		return bad("no period")
	}
	var r apikey.RateLimit
	var err error
	if r.Requests, err = strconv.Atoi(strings.TrimSpace(n)); err != nil {
		return bad("the requests are not a number")
	}
	per = strings.TrimSpace(per)
	if r.Period, err = time.ParseDuration(per); err != nil {
		if r.Period, err = time.ParseDuration("1" + per); err != nil { // "100/m"
			return bad("the period is not a duration")
		}
	}
	if hasBurst {
		v, ok := strings.CutPrefix(strings.TrimSpace(burst), "burst=")
		if !ok {
			return bad("after the comma, only burst=N")
		}
		if r.Burst, err = strconv.Atoi(v); err != nil {
			return bad("the burst is not a number")
		}
	}
	return r, nil
}

// parseQuota reads -quota: "10000/day" or "1000000/month".
func parseQuota(s string) (apikey.Quota, error) {
	n, per, ok := strings.Cut(s, "/")
	var q apikey.Quota
	var err error
	if ok {
		q.Requests, err = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	}
	if !ok || err != nil || q.Per.UnmarshalText([]byte(strings.TrimSpace(per))) != nil {
		return apikey.Quota{}, usagef("invalid quota: %q; want requests/day or requests/month, such as 10000/day", s)
	}
	return q, nil
}

// parseNetworks reads -network values.
func parseNetworks(vals []string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(f))
			if err != nil {
				return nil, usagef("invalid network: %q is not a CIDR network such as 203.0.113.0/24", f)
			}
			nets = append(nets, p)
		}
	}
	return nets, nil
}

// policyFlags are -rate, -quota and -network.
type policyFlags struct {
	fs       *flag.FlagSet
	rate     string
	quota    string
	networks listFlag
}

func newPolicyFlags(fs *flag.FlagSet, update bool) *policyFlags {
	p := &policyFlags{fs: fs}
	none := ""
	if update {
		none = `; "none" removes it, and the parts not given are kept`
	}
	fs.StringVar(&p.rate, "rate", "", "a rate `limit`: requests/period[,burst=N], such as 100/1m,burst=20"+none)
	fs.StringVar(&p.quota, "quota", "", "a `quota` per UTC day or month, such as 10000/day"+none)
	nets := "a client `network` (CIDR) the key works from; repeat for more"
	if update {
		nets += `; replaces the list, "none" clears it`
	}
	fs.Var(&p.networks, "network", nets)
	return p
}

// given reports whether any policy flag was given.
func (p *policyFlags) given() bool {
	return isSet(p.fs, "rate") || isSet(p.fs, "quota") || isSet(p.fs, "network")
}

// apply sets the parts of pol that flags give.
func (p *policyFlags) apply(pol *apikey.Policy) error {
	var err error
	switch {
	case !isSet(p.fs, "rate"):
	case p.rate == "none":
		pol.Rate = apikey.RateLimit{}
	default:
		if pol.Rate, err = parseRate(p.rate); err != nil {
			return err
		}
	}
	switch {
	case !isSet(p.fs, "quota"):
	case p.quota == "none":
		pol.Quota = apikey.Quota{}
	default:
		if pol.Quota, err = parseQuota(p.quota); err != nil {
			return err
		}
	}
	switch {
	case !isSet(p.fs, "network"):
	case len(p.networks) == 1 && p.networks[0] == "none":
		pol.Networks = nil
	default:
		if pol.Networks, err = parseNetworks(p.networks); err != nil {
			return err
		}
	}
	return nil
}

// ownerFlag defines -owner.
func ownerFlag(fs *flag.FlagSet) *string {
	return fs.String("owner", "", "the account `ID` whose keys to manage (required; \"default\" in a single-account application)")
}

// needOwner checks that -owner was given.
func needOwner(owner string) error {
	if owner == "" {
		return usagef("-owner is required: the account whose keys to manage (\"default\" in a single-account application)")
	}
	return nil
}

// ownedID checks -owner and reads the single KEY_ID argument: what every
// command that acts on one key of an owner needs first.
func ownedID(owner string, args []string) (uuid.UUID, error) {
	if err := needOwner(owner); err != nil {
		return uuid.Nil, err
	}
	return oneID(args)
}

// oneID reads the single KEY_ID argument.
func oneID(args []string) (uuid.UUID, error) {
	switch len(args) {
	case 0:
		return uuid.Nil, usagef("missing KEY_ID argument")
	case 1:
	default:
		return uuid.Nil, usagef("unexpected arguments after KEY_ID: %q", args[1:])
	}
	return keyward.ParseID(args[0])
}

// noArgs refuses positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
