package dashboard

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

// A key's page shows its history, the audit trail the lifecycle keeps of
// every change to it ([keyward.Owner.Audit]), and its requests of the
// last 30 days ([keyward.Owner.Usage]) as a chart drawn on the server. The
// list shows each key's requests of the last 24 hours. This file reads
// them and writes them for the pages.

// historyPageSize is the number of history entries on one key page.
const historyPageSize = 20

// historyParam is the query parameter of a key page that holds the
// cursor of an older page of its history.
const historyParam = "history"

// chartDays is the number of UTC days the chart of a key's requests
// shows, today included.
const chartDays = 30

// A historyView is one page of a key's history, newest first.
type historyView struct {
	// Unavailable reports that the trail could not be read.
	Unavailable bool
	Entries     []entryView
	Older       string // the next page's URL, relative to the mount point
	Newest      string // the first page's URL, when not on it
}

// An entryView is one change to a key, as its history shows it.
type entryView struct {
	Kind   string // the kind, such as "key.updated", for the page's data attribute
	What   string // the kind in words, such as "Edited"
	At     time.Time
	Actor  actorView
	Reason string
	Change []changeView
}

// An actorView is who made a change.
type actorView struct {
	ID   string // the operator's name, the service's name; empty if none was given
	Type string // in words: "operator", "command line"; empty for an unknown actor
}

// A changeView is one field a change set, with its values before and
// after.
type changeView struct {
	Field    string // in words, such as "Expiry"
	From, To valueView
	// Values reports that the trail keeps the field's values; metadata is
	// named without them, since it may hold personal data.
	Values bool
	// Before reports that the change shows the value before it, "none" if
	// there was none: those of an edit, and any the trail keeps.
	Before bool
}

// A valueView is the value of a field in a change, as the page shows it:
// a time, a link to a key, code, or text. The zero value is none.
type valueView struct {
	Text string
	Time time.Time // for expiries and revocations
	Key  string    // the ID of a key, for the links of a rotation
	Code bool      // Text is code, such as scopes
}

// IsZero reports whether v is no value.
func (v valueView) IsZero() bool { return v.Text == "" && v.Time.IsZero() && v.Key == "" }

// kindWords are the kinds of events in the words of the history.
var kindWords = map[audit.Kind]string{
	audit.Created:       "Created",
	audit.Updated:       "Edited",
	audit.Rotated:       "Rolled",
	audit.Revoked:       "Revoked",
	audit.RevokedAll:    "Revoked with all keys",
	audit.Exposed:       "Reported exposed",
	audit.CanaryTripped: "Canary tripped",
}

// actorTypes are the library's actor types in the words of the history.
var actorTypes = map[string]string{
	audit.TypeOperator: "operator",
	audit.TypeCLI:      "command line",
	audit.TypeService:  "service",
	audit.TypeReporter: "reporter",
}

// fieldWords are the fields of changes in the words of the key page.
var fieldWords = map[string]string{
	audit.FieldName:       "Name",
	audit.FieldMode:       "Mode",
	audit.FieldScopes:     "Scopes",
	audit.FieldMetadata:   "Metadata",
	audit.FieldExpiresAt:  "Expiry",
	audit.FieldPolicy:     "Limits",
	audit.FieldCanary:     "Canary",
	audit.FieldReplaces:   "Replaces",
	audit.FieldReplacedBy: "Replaced by",
	audit.FieldRevokedAt:  "Revoked",
	audit.FieldExposure:   "Exposure",
}

// history reads a page of the key's history, at the cursor of the
// request's history parameter. An invalid cursor is the request's error,
// returned for the handler to answer; a store that fails is logged and
// shown as an unavailable history, never as a failed page.
func (h *Handler) history(r *http.Request, rec apikey.Record) (*historyView, error) {
	cursor := r.URL.Query().Get(historyParam)
	page, err := h.owner(r).Audit(r.Context(), keyward.AuditOptions{KeyID: rec.ID, Limit: historyPageSize, Cursor: cursor})
	var in *keyward.InputError
	switch {
	case errors.As(err, &in):
		return nil, &keyward.InputError{Field: historyParam, Err: errors.New("is not a page of this key's history; start from its newest entries")}
	case err != nil:
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: reading a key's history failed: history not shown",
			slog.Any("operator", operator(r)), slog.Any("key", rec), slog.Any("err", err))
		return &historyView{Unavailable: true}, nil
	}
	v := &historyView{Entries: make([]entryView, 0, len(page.Entries))}
	for _, e := range page.Entries {
		v.Entries = append(v.Entries, newEntryView(e.Event))
	}
	self := "keys/" + rec.ID.String()
	if page.Next != "" {
		v.Older = self + "?" + url.Values{historyParam: {page.Next}}.Encode() + "#history"
	}
	if cursor != "" {
		v.Newest = self + "#history"
	}
	return v, nil
}

func newEntryView(e audit.Event) entryView {
	v := entryView{Kind: string(e.Kind), What: kindWords[e.Kind], At: e.At, Reason: e.Reason,
		Actor: actorView{ID: e.Actor.ID, Type: e.Actor.Type}}
	if v.What == "" {
		v.What = string(e.Kind) // a kind of a later version of the library
	}
	if t, ok := actorTypes[e.Actor.Type]; ok {
		v.Actor.Type = t
	}
	for _, c := range e.Changes {
		cv := changeView{Field: fieldWords[c.Field], From: fieldValue(c.Field, c.From), To: fieldValue(c.Field, c.To)}
		if cv.Field == "" {
			cv.Field = c.Field
		}
		cv.Values = c.Field != audit.FieldMetadata
		cv.Before = !cv.From.IsZero() || e.Kind == audit.Updated
		v.Change = append(v.Change, cv)
	}
	return v
}

// fieldValue is the value s of a change's field, as the page shows it.
// The trail keeps times in RFC 3339, limits as their JSON, and keys by ID.
func fieldValue(field, s string) valueView {
	if s == "" {
		return valueView{}
	}
	switch field {
	case audit.FieldExpiresAt, audit.FieldRevokedAt:
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return valueView{Time: t}
		}
	case audit.FieldReplaces, audit.FieldReplacedBy:
		if id, err := uuid.Parse(s); err == nil {
			return valueView{Key: id.String()}
		}
	case audit.FieldPolicy:
		var p apikey.Policy
		if json.Unmarshal([]byte(s), &p) == nil {
			if pv := newPolicyView(&p); pv != nil {
				return valueView{Text: pv.Summary}
			}
			return valueView{Text: "none"}
		}
	case audit.FieldScopes:
		return valueView{Text: s, Code: true}
	case audit.FieldMode:
		if m, err := apikey.ParseMode(s); err == nil && m == apikey.Live {
			return valueView{Text: "Live"}
		}
		return valueView{Text: "Test"}
	case audit.FieldCanary:
		if s == "true" {
			return valueView{Text: "Yes"}
		}
	}
	return valueView{Text: s}
}

// A chartView is a key's requests per UTC day, as a bar chart drawn in
// SVG: a stacked bar per day, the requests allowed below those refused
// after verification.
type chartView struct {
	// Unavailable reports that the usage could not be read.
	Unavailable bool
	From, To    time.Time // the first and the last day
	Days        []dayView // oldest first
	Ticks       []tickView
	Requests    int64 // in all the days
	Refused     int64 // of the requests, those refused after verification
	Allowed     int64 // the others
	Desc        string

	// The drawing: the view box, and the plot's edges in it.
	Width, Height            int
	Left, Right, Top, Bottom string
}

// A dayView is one day of the chart: its counts and its bar.
type dayView struct {
	Start             time.Time
	Requests, Refused int64
	Allowed           int64
	Title             string // "2031-03-14: 120 requests, 3 refused"
	Label             string // the axis label under the bar, on some days only
	// The bar: its left edge and width, and the top and height of its two
	// parts; a part of height "" is not drawn.
	X, W, LabelX       string
	AllowedY, AllowedH string
	RefusedY, RefusedH string
}

// A tickView is a value marked on the chart's vertical axis.
type tickView struct {
	Y     string
	Label string
}

// The chart's drawing, in the units of its view box.
const (
	chartWidth  = 960
	chartHeight = 200
	chartLeft   = 44 // room for the values of the ticks
	chartRight  = 8
	chartTop    = 10
	chartBottom = 24 // room for the dates
)

// requests reads the key's requests per UTC day of the last chartDays
// days, today included, at the lifecycle's time. A store that fails is
// logged and shown as unavailable, never as a failed page.
func (h *Handler) requests(r *http.Request, rec apikey.Record) *chartView {
	now := h.keys.Now().UTC()
	from := now.Truncate(24*time.Hour).AddDate(0, 0, 1-chartDays)
	usage, err := h.owner(r).Usage(r.Context(), keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: from, To: now, Per: 24 * time.Hour})
	if err != nil || len(usage) != 1 {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: reading a key's usage failed: requests not shown",
			slog.Any("operator", operator(r)), slog.Any("key", rec), slog.Any("err", err))
		return &chartView{Unavailable: true}
	}
	return newChartView(usage[0].Buckets)
}

// newChartView draws the chart of days, one bucket a day, oldest first.
func newChartView(days []keyward.UsageBucket) *chartView {
	c := &chartView{Width: chartWidth, Height: chartHeight,
		Left: px(chartLeft), Right: px(chartWidth - chartRight), Top: px(chartTop), Bottom: px(chartHeight - chartBottom)}
	if len(days) == 0 {
		return c
	}
	c.From, c.To = days[0].Start, days[len(days)-1].Start
	var most int64
	var busiest time.Time
	for _, d := range days {
		c.Requests += d.Counts.Verified
		c.Refused += refusedOf(d.Counts)
		if d.Counts.Verified > most {
			most, busiest = d.Counts.Verified, d.Start
		}
	}
	c.Allowed = c.Requests - c.Refused

	// The vertical scale: ticks at a round step, the top one at or above
	// the busiest day.
	step := niceStep(float64(most) / 4)
	top := int64(math.Ceil(float64(most)/float64(step))) * step
	if top == 0 {
		top = step
	}
	plotW, plotH := float64(chartWidth-chartLeft-chartRight), float64(chartHeight-chartTop-chartBottom)
	y := func(v int64) float64 { return chartTop + plotH - float64(v)/float64(top)*plotH }
	for v := int64(0); v <= top; v += step {
		c.Ticks = append(c.Ticks, tickView{Y: px(y(v)), Label: compact(v)})
	}

	slot := plotW / float64(len(days))
	barW := slot * 0.7
	for i, d := range days {
		refused := refusedOf(d.Counts)
		allowed := d.Counts.Verified - refused
		x := chartLeft + float64(i)*slot + (slot-barW)/2
		v := dayView{Start: d.Start, Requests: d.Counts.Verified, Refused: refused, Allowed: allowed,
			X: px(x), W: px(barW), LabelX: px(x + barW/2)}
		v.Title = d.Start.Format(time.DateOnly) + ": " + count(v.Requests, "request")
		if refused > 0 {
			v.Title += ", " + thousands(refused) + " refused"
		}
		if allowed > 0 {
			v.AllowedY, v.AllowedH = px(y(allowed)), px(y(0)-y(allowed))
		}
		if refused > 0 {
			v.RefusedY, v.RefusedH = px(y(allowed+refused)), px(y(allowed)-y(allowed+refused))
		}
		if (len(days)-1-i)%7 == 0 { // every week back from today
			v.Label = d.Start.Format("Jan 2")
		}
		c.Days = append(c.Days, v)
	}

	span := c.From.Format(time.DateOnly) + " to " + c.To.Format(time.DateOnly) + " (UTC)"
	switch {
	case c.Requests == 0:
		c.Desc = "No requests from " + span + "."
	default:
		c.Desc = count(c.Requests, "request") + " from " + span
		if c.Refused > 0 {
			c.Desc += ", " + thousands(c.Refused) + " of them refused after verification"
		}
		c.Desc += "; the busiest day was " + busiest.Format(time.DateOnly) + ", with " + count(most, "request") + "."
	}
	return c
}

// refusedOf returns the requests of c refused after verification: a
// subset of its verifications.
func refusedOf(c store.Counts) int64 { return min(c.Refused(), c.Verified) }

// niceStep returns the smallest step of 1, 2 or 5 times a power of ten
// that is at least x, and at least 1.
func niceStep(x float64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if float64(m*p) >= x {
				return m * p
			}
		}
		if p > math.MaxInt64/100 {
			return p * 10
		}
	}
}

// px writes a coordinate of the chart to a tenth of a unit.
func px(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

// A recentView is a key's requests of the last 24 hours, for the list.
type recentView struct {
	Unavailable bool // the usage could not be read
	Requests    int64
	Refused     int64
}

// recent reads the requests of the last 24 hours of the keys listed, in
// one call, hour by hour: from the start of the hour 24 hours ago to now.
// A store that fails is logged, and the list shows the requests as
// unavailable.
func (h *Handler) recent(r *http.Request, views []keyView, recs []apikey.Record) {
	if len(recs) == 0 {
		return
	}
	ids := make([]uuid.UUID, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	now := h.keys.Now()
	usage, err := h.owner(r).Usage(r.Context(), keyward.UsageQuery{Keys: ids, From: now.Add(-24 * time.Hour), To: now})
	if err != nil || len(usage) != len(recs) {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: reading the keys' usage failed: requests not shown",
			slog.Any("operator", operator(r)), slog.Int("keys", len(ids)), slog.Any("err", err))
		for i := range views {
			views[i].Recent = recentView{Unavailable: true}
		}
		return
	}
	for i, u := range usage {
		views[i].Recent = recentView{Requests: u.Total.Verified, Refused: refusedOf(u.Total)}
	}
}
