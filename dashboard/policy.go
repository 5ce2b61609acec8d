package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
)

// A key's limits are its [apikey.Policy]: a rate limit, a quota and the
// networks it works from. The page calls them limits; the JSON API and
// the lifecycle, a policy. This file reads them from forms and JSON, and
// writes them for the pages.

// policyFields are the form fields of a key's limits. A form with none of
// them says nothing of the limits: an edit form from before they existed
// leaves them as they are.
var policyFields = []string{"rate_requests", "rate_period", "rate_burst", "quota_requests", "quota_per", "networks"}

// A policyForm is a key's limits as a form's fields hold them: as
// entered, or as the key has them.
type policyForm struct {
	RateRequests  string
	RatePeriod    string // a duration, such as "1m"
	RateBurst     string
	QuotaRequests string
	QuotaPer      string // "day" or "month"
	Networks      string // one per line
}

// newPolicyForm returns the fields of the policy p (nil for none).
func newPolicyForm(p *apikey.Policy) policyForm {
	var v policyForm
	if p == nil {
		return v
	}
	if r := p.Rate; !r.IsZero() {
		v.RateRequests = strconv.Itoa(r.Requests)
		v.RatePeriod = clock.ShortDuration(r.Period)
		if r.Burst != 0 {
			v.RateBurst = strconv.Itoa(r.Burst)
		}
	}
	if q := p.Quota; !q.IsZero() {
		v.QuotaRequests = strconv.FormatInt(q.Requests, 10)
		v.QuotaPer = q.Per.String()
	}
	nets := make([]string, len(p.Networks))
	for i, n := range p.Networks {
		nets[i] = n.String()
	}
	v.Networks = strings.Join(nets, "\n")
	return v
}

// formPolicy reads the limits of a form. It returns the fields as
// entered, to show the form again, and the policy they say: nil if the
// form has no limit fields at all, a zero Policy if they are all empty
// (no limits: an edit removes the key's). A limit left empty is none; the
// period of an empty rate limit, and of an empty quota, are ignored.
//
// The library validates each limit on its own, so that each message
// comes back next to the field at fault; errs holds them by field.
func formPolicy(f url.Values) (policyForm, *apikey.Policy, map[string]string) {
	if !slices.ContainsFunc(policyFields, f.Has) {
		return policyForm{}, nil, nil
	}
	v := policyForm{
		RateRequests:  strings.TrimSpace(f.Get("rate_requests")),
		RatePeriod:    strings.TrimSpace(f.Get("rate_period")),
		RateBurst:     strings.TrimSpace(f.Get("rate_burst")),
		QuotaRequests: strings.TrimSpace(f.Get("quota_requests")),
		QuotaPer:      strings.TrimSpace(f.Get("quota_per")),
		Networks:      f.Get("networks"),
	}
	p := new(apikey.Policy)
	errs := map[string]string{}

	if v.RateRequests != "" || v.RateBurst != "" {
		requests, okRequests := wholeNumber[int](v.RateRequests, "rate_requests", "Requests", errs)
		burst, okBurst := wholeNumber[int](v.RateBurst, "rate_burst", "Burst", errs)
		period, err := time.ParseDuration(v.RatePeriod)
		if err != nil {
			errs["rate_period"] = "Choose a period."
		}
		p.Rate = apikey.RateLimit{Requests: requests, Period: period, Burst: burst}
		if okRequests && okBurst && err == nil {
			if err := (&apikey.Policy{Rate: p.Rate}).Validate(); err != nil {
				errs[rateField(p.Rate)] = sentence(reason(err))
			}
		}
	}

	if v.QuotaRequests != "" {
		n, ok := wholeNumber[int64](v.QuotaRequests, "quota_requests", "Requests", errs)
		p.Quota.Requests = n
		if err := p.Quota.Per.UnmarshalText([]byte(v.QuotaPer)); err != nil {
			errs["quota_per"] = "Choose day or month."
			ok = false
		}
		if ok {
			if err := (&apikey.Policy{Quota: p.Quota}).Validate(); err != nil {
				errs["quota_requests"] = sentence(reason(err))
			}
		}
	}

	nets, err := parseNetworks(strings.FieldsFunc(v.Networks, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }))
	if err == nil {
		err = (&apikey.Policy{Networks: nets}).Validate()
	}
	if err != nil {
		errs["networks"] = sentence(reason(err))
	}
	p.Networks = nets

	if len(errs) > 0 {
		return v, nil, errs
	}
	return v, p, nil
}

// wholeNumber reads the whole number s of the form field named field,
// labelled label, or notes in errs why it cannot; the empty string is 0.
func wholeNumber[T int | int64](s, field, label string, errs map[string]string) (T, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || int64(T(n)) != n {
		errs[field] = label + " must be a whole number, such as 100."
		return 0, false
	}
	return T(n), true
}

// rateField names the field of the rate limit r that fails validation,
// asking the library about each field alone.
func rateField(r apikey.RateLimit) string {
	fails := func(r apikey.RateLimit) bool { return (&apikey.Policy{Rate: r}).Validate() != nil }
	switch {
	case fails(apikey.RateLimit{Requests: r.Requests, Period: apikey.MinRatePeriod}):
		return "rate_requests"
	case fails(apikey.RateLimit{Requests: 1, Period: r.Period}):
		return "rate_period"
	}
	return "rate_burst"
}

// parseNetworks reads networks written as text, such as 203.0.113.0/24.
// The library checks the rest: masked, listed once, how many.
func parseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		n, err := netip.ParsePrefix(s)
		if err == nil {
			out = append(out, n)
			continue
		}
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			a = a.WithZone("")
			return nil, fmt.Errorf("%s is an address, not a network: write %s for it alone", a, netip.PrefixFrom(a, a.BitLen()))
		}
		return nil, fmt.Errorf("%q is not a network such as 203.0.113.0/24 or 2001:db8::/32", shorten(s, 60))
	}
	return out, nil
}

// parsePolicyJSON reads the "policy" member of a JSON request, in the
// library's JSON form: nil if it is absent or null. The lifecycle
// validates it.
func parsePolicyJSON(raw json.RawMessage) (*apikey.Policy, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	p := new(apikey.Policy)
	if err := dec.Decode(p); err != nil {
		return nil, &keyward.InputError{Field: "policy", Err: policyDecodeError(raw, err)}
	}
	return p, nil
}

// policyDecodeError says what is wrong with a policy that does not
// decode. Its text describes the input only.
func policyDecodeError(raw []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return errors.New(typeErr.Field + " must be " + jsonKind(typeErr.Type))
	case errors.As(err, &typeErr):
		return errors.New(`must be an object such as {"rate": {"requests": 100, "period": "1m"}}`)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errors.New("has no field " + strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	// A network that does not parse: say which, as the form does.
	var nets struct {
		Networks []string `json:"networks"`
	}
	if json.Unmarshal(raw, &nets) == nil {
		if _, nerr := parseNetworks(nets.Networks); nerr != nil {
			return nerr
		}
	}
	return err // a period or a quota period the library cannot read, in its words
}

// noPolicy is nil for a policy that sets nothing: a key created without
// limits has no policy.
func noPolicy(p *apikey.Policy) *apikey.Policy {
	if p.IsZero() {
		return nil
	}
	return p
}

// The periods the form offers for a rate limit: "per second" to "per
// day". A key given another period through the API keeps it: the form
// offers it too.
var ratePeriods = []struct {
	d    time.Duration
	unit string // in the summary: 100/min
	name string // in words: 100 requests per minute
}{
	{time.Second, "s", "second"},
	{time.Minute, "min", "minute"},
	{time.Hour, "h", "hour"},
	{24 * time.Hour, "day", "day"},
}

// defaultRatePeriod is the period an empty form selects.
const defaultRatePeriod = time.Minute

// periodOptions returns the periods the form offers, current selected.
func periodOptions(current string) []option {
	d, err := time.ParseDuration(current)
	if err != nil {
		d = defaultRatePeriod
	}
	var out []option
	listed := false
	for _, p := range ratePeriods {
		out = append(out, option{Value: clock.ShortDuration(p.d), Label: p.name, Selected: p.d == d})
		listed = listed || p.d == d
	}
	if !listed {
		out = append(out, option{Value: clock.ShortDuration(d), Label: clock.ShortDuration(d), Selected: true})
	}
	return out
}

// quotaOptions returns the quota periods, current selected ("day" if
// none).
func quotaOptions(current string) []option {
	if current != "month" {
		current = "day"
	}
	return options(current, "day", "day", "month", "month")
}

// limitsFields are what a form shows of a key's limits.
type limitsFields struct {
	policyForm
	Periods []option // of the rate limit
	Pers    []option // of the quota
	// Editing says the form edits a key, whose limits it removes if every
	// field is cleared.
	Editing bool
}

func newLimitsFields(v policyForm, editing bool) limitsFields {
	return limitsFields{policyForm: v, Periods: periodOptions(v.RatePeriod), Pers: quotaOptions(v.QuotaPer), Editing: editing}
}

// A policyView is a key's limits as the pages show them.
type policyView struct {
	Rate     string   // "100 requests per minute, bursts of up to 20"; empty for none
	Quota    string   // "10,000 requests per day"; empty for none
	Networks []string // empty for any
	// Summary is the list's: "100/min · 10k/day · 2 networks".
	Summary string
}

// newPolicyView returns the view of p, nil if it sets nothing.
func newPolicyView(p *apikey.Policy) *policyView {
	if p.IsZero() {
		return nil
	}
	v := new(policyView)
	var summary []string
	if r := p.Rate; !r.IsZero() {
		unit, name := "", "per "+clock.ShortDuration(r.Period)
		for _, rp := range ratePeriods {
			if rp.d == r.Period {
				unit, name = rp.unit, "per "+rp.name
			}
		}
		if unit == "" {
			unit = clock.ShortDuration(r.Period)
		}
		v.Rate = count(int64(r.Requests), "request") + " " + name
		if r.Burst != 0 {
			v.Rate += ", bursts of up to " + thousands(int64(r.Burst))
		}
		summary = append(summary, compact(int64(r.Requests))+"/"+unit)
	}
	if q := p.Quota; !q.IsZero() {
		v.Quota = count(q.Requests, "request") + " per " + q.Per.String() + " (UTC)"
		summary = append(summary, compact(q.Requests)+"/"+q.Per.String())
	}
	for _, n := range p.Networks {
		v.Networks = append(v.Networks, n.String())
	}
	if len(p.Networks) > 0 {
		summary = append(summary, plural(len(p.Networks), "network"))
	}
	v.Summary = strings.Join(summary, " · ")
	return v
}

// A usageView is how much of its limits a key has used, as the limiter
// says now.
type usageView struct {
	// Unavailable reports that the limiter did not answer.
	Unavailable bool
	Rate        string // "37 of 100 left, full in 12 s"; empty for no rate limit
	Quota       string // "4,210 of 10,000 used today, resets at 00:00 UTC"; empty for no quota
}

// usageTimeout bounds the limiter's answer: past it, the page shows the
// usage as unavailable rather than wait.
const usageTimeout = 2 * time.Second

// usage asks the limiter how much of its limits the key has used, at the
// lifecycle's time, without counting anything. It is nil if the
// dashboard has no limiter, or the key no rate limit or quota. A limiter
// error is logged and shown as unavailable usage, never as a failed page.
func (h *Handler) usage(r *http.Request, rec apikey.Record) *usageView {
	p := rec.Policy
	if h.limiter == nil || p == nil || p.Rate.IsZero() && p.Quota.IsZero() {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), usageTimeout)
	defer cancel()
	now := h.keys.Now()
	d, err := h.limiter.Peek(ctx, rec.ID, p, now)
	if err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: limiter unavailable: usage not shown",
			slog.Any("operator", operator(r)), slog.Any("key", rec), slog.Any("err", err))
		return &usageView{Unavailable: true}
	}
	u := new(usageView)
	if s := d.Rate; !p.Rate.IsZero() && !s.IsZero() {
		u.Rate = thousands(max(s.Remaining, 0)) + " of " + thousands(s.Limit) + " left"
		if s.Remaining < s.Limit && s.Reset > 0 {
			u.Rate += ", full in " + roughDuration(s.Reset)
		}
	}
	if s := d.Quota; !p.Quota.IsZero() && !s.IsZero() {
		used := min(max(s.Limit-s.Remaining, 0), s.Limit)
		u.Quota = thousands(used) + " of " + thousands(s.Limit) + " used "
		_, end := p.Quota.Per.Bounds(now)
		if p.Quota.Per == apikey.Month {
			u.Quota += "this month, resets on " + end.Format(time.DateOnly) + " at 00:00 UTC"
		} else {
			u.Quota += "today, resets at 00:00 UTC"
		}
	}
	return u
}

// count writes n of a noun with thousands separators: "1 request",
// "10,000 requests".
func count(n int64, noun string) string {
	s := thousands(n) + " " + noun
	if n != 1 {
		s += "s"
	}
	return s
}

// thousands writes n with commas between thousands: 10,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// compact writes n in at most a few characters, to one decimal: 950,
// 1.5k, 10k, 2.5M.
func compact(n int64) string {
	units := []struct {
		size int64
		unit string
	}{{1e3, "k"}, {1e6, "M"}, {1e9, "B"}, {1e12, "T"}}
	if n < units[0].size {
		return strconv.FormatInt(n, 10)
	}
	i := len(units) - 1
	for i > 0 && n < units[i].size {
		i--
	}
	tenths := (n*10 + units[i].size/2) / units[i].size
	if tenths >= 10_000 && i+1 < len(units) { // 999,999 is 1M, not 1000k
		i++
		tenths = (n*10 + units[i].size/2) / units[i].size
	}
	if tenths%10 == 0 {
		return strconv.FormatInt(tenths/10, 10) + units[i].unit
	}
	return strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10) + units[i].unit
}

// roughDuration writes d rounded up to the second, in its two largest
// units: "12 s", "2 min 5 s", "3 h 20 min", "2 d 4 h".
func roughDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	parts := []struct {
		n    int64
		unit string
	}{{secs / 86400, "d"}, {secs / 3600 % 24, "h"}, {secs / 60 % 60, "min"}, {secs % 60, "s"}}
	for i, p := range parts {
		if p.n == 0 && i < len(parts)-1 {
			continue
		}
		s := strconv.FormatInt(p.n, 10) + " " + p.unit
		if i+1 < len(parts) && parts[i+1].n != 0 {
			s += " " + strconv.FormatInt(parts[i+1].n, 10) + " " + parts[i+1].unit
		}
		return s
	}
	return "0 s"
}
