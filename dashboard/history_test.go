package dashboard_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/scope"
)

// A historyRow is a row of a key page's history, as text.
type historyRow struct {
	kind    string // data-kind
	what    string // the event in words
	actor   string // the actor's cell, as text
	details string // the reason and the changes, as text
}

var (
	historyRows = regexp.MustCompile(`(?s)<tr class="event" data-kind="([^"]+)">\s*<td class="nowrap">.*?</td>\s*<td class="what">(.*?)</td>\s*<td class="actor">(.*?)</td>\s*<td class="details">(.*?)</td>\s*</tr>`)
	hidden      = regexp.MustCompile(`<span aria-hidden="true">[^<]*</span>`)
	blockTags   = regexp.MustCompile(`</?(?:p|li|ul|small|td|th|tr)\b[^>]*>`)
	tags        = regexp.MustCompile(`<[^>]*>`)
)

// textOf returns the text of an HTML fragment as assistive technology
// reads it, roughly: without what is hidden from it, the blocks apart,
// the spaces collapsed.
func textOf(s string) string {
	s = blockTags.ReplaceAllString(hidden.ReplaceAllString(s, ""), " ")
	return strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(s, ""))), " ")
}

// historyOf returns the rows of a key page's history, in order.
func historyOf(body string) []historyRow {
	var rows []historyRow
	for _, m := range historyRows.FindAllStringSubmatch(body, -1) {
		rows = append(rows, historyRow{kind: m[1], what: textOf(m[2]), actor: textOf(m[3]), details: textOf(m[4])})
	}
	return rows
}

// TestKeyPageHistory changes a key through the dashboard as two
// operators, and through the lifecycle as the command line and as nobody
// in particular, and checks that the key's page lists every change,
// newest first, with its time, its kind in words, its actor, its reason
// and the fields it changed.
func TestKeyPageHistory(t *testing.T) {
	f := newFixtureWith(t, []keyward.Option{keyward.WithMaxOverlap(48 * time.Hour)})
	ctx := context.Background()

	// alice creates the key in the form.
	_, _, body := f.page("GET", "/dashboard/keys/new", nil)
	status, header, _ := f.page("POST", "/dashboard/keys", url.Values{"name": {"Warehouse sync"}, "mode": {"live"},
		"scopes": {"links:read", "events:read"}, "metadata_key": {"team"}, "metadata_value": {"logistics"},
		"idempotency_key": {tokenOf(t, body)}})
	if status != http.StatusCreated {
		t.Fatalf("create: %d", status)
	}
	id := strings.TrimPrefix(header.Get("Location"), "./keys/")
	rec := f.get(uuidOf(t, id))

	// bob renames it and narrows its scopes, in the edit form.
	f.clock.Advance(time.Hour)
	status, _, _ = f.pageAs(http.Header{"X-Operator": {"bob@example.com"}}, "POST", "/dashboard/keys/"+id+"/edit",
		url.Values{"name": {"Warehouse sync <EU>"}, "scopes": {"links:read"}, "metadata_key": {"team"}, "metadata_value": {"platform"}})
	if status != http.StatusSeeOther {
		t.Fatalf("edit: %d", status)
	}

	// The command line sets an expiry; an unattributed call gives limits.
	f.clock.Advance(time.Hour)
	cli := audit.WithActor(ctx, audit.Actor{Type: audit.TypeCLI, ID: "root@ops-1"})
	if _, err := f.owner.Update(cli, rec.ID, keyward.UpdateParams{ExpiresAt: time.Date(2031, 9, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.owner.Update(ctx, rec.ID, keyward.UpdateParams{Policy: limited()}); err != nil {
		t.Fatal(err)
	}

	// alice rolls it, then revokes the old key with a reason.
	f.clock.Advance(time.Hour)
	status, header, _ = f.page("POST", "/dashboard/keys/"+id+"/rotate", url.Values{"overlap": {"24h"}})
	if status != http.StatusCreated {
		t.Fatalf("rotate: %d", status)
	}
	newID := strings.TrimPrefix(header.Get("Location"), "../../keys/")
	f.clock.Advance(time.Hour)
	if status, _, _ := f.page("POST", "/dashboard/keys/"+id+"/revoke", url.Values{"reason": {"Laptop stolen <at the airport>"}}); status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", status)
	}

	status, _, body = f.page("GET", "/dashboard/keys/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("the key's page: %d", status)
	}
	mustContain(t, body, `<section class="card section" id="history" aria-labelledby="history-heading">`,
		`<h2 id="history-heading">History</h2>`,
		`<div class="table-scroll" role="region" aria-labelledby="history-caption" tabindex="0">`,
		`<caption id="history-caption">Every change to this key, newest first, as the audit trail keeps it.</caption>`,
		`<th scope="col">Time</th>`, `<th scope="col">Event</th>`, `<th scope="col">By</th>`, `<th scope="col">Details</th>`,
		// Hostile text is escaped; the reason and the name are isolated.
		`Reason: <bdi>Laptop stolen &lt;at the airport&gt;</bdi>`, `<bdi>Warehouse sync &lt;EU&gt;</bdi>`,
		// The times of the entries, and of the expiry the change set.
		`<time datetime="`+f.keys.Now().Format(time.RFC3339)+`"`, `<time datetime="2031-09-01T00:00:00Z"`,
		// The rotation links to the new key.
		`<a class="keylink" href="keys/`+newID+`"><code>`+newID+`</code></a>`)
	mustNotContain(t, body, "<at the airport>", "logistics") // the metadata's old value is not in the trail

	got := historyOf(body)
	want := []historyRow{
		{"key.revoked", "Revoked", "alice operator", "Reason: Laptop stolen <at the airport> Revoked: 2031-03-14 14:26 UTC"},
		{"key.rotated", "Rolled", "alice operator", "Replaced by: " + newID + " Expiry: 2031-09-01 00:00 UTC changed to 2031-03-15 13:26 UTC"},
		{"key.updated", "Edited", "Unknown", "Limits: none changed to 100/min · 10k/day · 2 networks"},
		{"key.updated", "Edited", "root@ops-1 command line", "Expiry: none changed to 2031-09-01 00:00 UTC"},
		{"key.updated", "Edited", "bob@example.com operator", "Name: Warehouse sync changed to Warehouse sync <EU> " +
			"Scopes: events:read links:read changed to links:read Metadata: changed"},
		{"key.created", "Created", "alice operator", "Name: Warehouse sync Mode: Live Scopes: events:read links:read Metadata: changed"},
	}
	if len(got) != len(want) {
		t.Fatalf("the history has %d rows, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v\nwant     %+v", i, got[i], want[i])
		}
	}
	mustNotContain(t, body, `id="history-older"`, `id="history-newest"`)

	// The new key's history starts with its creation by the rotation.
	_, _, body = f.page("GET", "/dashboard/keys/"+newID, nil)
	if rows := historyOf(body); len(rows) != 1 || rows[0].what != "Created" || rows[0].actor != "alice operator" ||
		!strings.Contains(rows[0].details, "Replaces: "+id) {
		t.Errorf("the new key's history = %+v", rows)
	}

	// Reads are no change.
	f.pageAs(http.Header{"X-Operator": {"carol"}, "X-Role": {"viewer"}}, "GET", "/dashboard/keys/"+id, nil)
	if n := len(f.trail(rec.ID)); n != len(want) {
		t.Errorf("the trail has %d entries after reads, want %d", n, len(want))
	}
}

// TestKeyPageHistoryPages pages through a long history with the page's
// links, and refuses a cursor that is none.
func TestKeyPageHistoryPages(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Renamed often", apikey.Test, scope.LinksRead)
	id := rec.ID.String()
	for i := range 24 { // 25 entries with the creation
		w := f.api("PATCH", "/dashboard/keys/"+id, fmt.Sprintf(`{"name":"Name %02d"}`, i))
		if w.Code != http.StatusOK {
			t.Fatalf("rename: %d %s", w.Code, w.Body)
		}
	}

	_, _, body := f.page("GET", "/dashboard/keys/"+id, nil)
	rows := historyOf(body)
	if len(rows) != 20 || rows[0].details != "Name: Name 22 changed to Name 23" || rows[19].details != "Name: Name 03 changed to Name 04" {
		t.Fatalf("the first page has %d rows: %+v", len(rows), rows)
	}
	older := regexp.MustCompile(`<a class="button" id="history-older" href="([^"]+)">Older →</a>`).FindStringSubmatch(body)
	if older == nil {
		t.Fatal("no link to the older history")
	}
	mustNotContain(t, body, `id="history-newest"`)
	mustContain(t, body, `<nav class="pager" aria-label="History pages">`)
	link := html.UnescapeString(older[1])
	if !strings.HasPrefix(link, "keys/"+id+"?history=") || !strings.HasSuffix(link, "#history") {
		t.Errorf("the link to the older history is %q", link)
	}

	link, _, _ = strings.Cut(link, "#")
	status, _, body := f.page("GET", "/dashboard/"+link, nil)
	if status != http.StatusOK {
		t.Fatalf("the older history: %d", status)
	}
	rows = historyOf(body)
	if len(rows) != 5 || rows[0].details != "Name: Name 02 changed to Name 03" || rows[4].what != "Created" || rows[4].actor != "fixture service" {
		t.Errorf("the second page = %+v", rows)
	}
	mustContain(t, body, `<a class="button" id="history-newest" href="keys/`+id+`#history">← Newest</a>`)
	mustNotContain(t, body, `id="history-older"`)

	for _, cursor := range []string{"not-a-cursor", "AAAAAAAAAAAA"} {
		status, _, body := f.page("GET", "/dashboard/keys/"+id+"?history="+cursor, nil)
		if status != http.StatusBadRequest || !strings.Contains(body, "history: is not a page of this key&#39;s history") {
			t.Errorf("the cursor %q: %d\n%s", cursor, status, body)
		}
	}
}

// A chartDay is a bar of a key page's chart of requests.
type chartDay struct {
	date              string
	requests, refused int64
	allowedH          string // the height of the bar's part allowed, "" if not drawn
	refusedH          string
}

var (
	chartBars    = regexp.MustCompile(`(?s)<g class="day" data-date="([^"]+)" data-requests="(\d+)" data-refused="(\d+)">\s*<title>[^<]*</title>(.*?)</g>`)
	allowedPart  = regexp.MustCompile(`<rect class="allowed" [^>]*height="([^"]+)"`)
	refusedPart  = regexp.MustCompile(`<rect class="refused" [^>]*height="([^"]+)"`)
	verticalTick = regexp.MustCompile(`text-anchor="end">([^<]+)</text>`)
	dateTick     = regexp.MustCompile(`text-anchor="middle">([^<]+)</text>`)
)

// chartOf returns the bars of a key page's chart, oldest first.
func chartOf(body string) []chartDay {
	var days []chartDay
	for _, m := range chartBars.FindAllStringSubmatch(body, -1) {
		d := chartDay{date: m[1]}
		d.requests, _ = strconv.ParseInt(m[2], 10, 64)
		d.refused, _ = strconv.ParseInt(m[3], 10, 64)
		if h := allowedPart.FindStringSubmatch(m[4]); h != nil {
			d.allowedH = h[1]
		}
		if h := refusedPart.FindStringSubmatch(m[4]); h != nil {
			d.refusedH = h[1]
		}
		days = append(days, d)
	}
	return days
}

// TestKeyPageRequests verifies a key on several days, with refusals
// after verification, writes the uses with Flush, and checks the chart of
// the key's page: a bar per UTC day of the last 30, today last, with its
// counts, the heights in proportion, the text for assistive technology,
// the table and the total.
func TestKeyPageRequests(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw, rec := f.create("Busy server", apikey.Live, scope.LinksRead)
	_, quiet := f.create("Quiet server", apikey.Live, scope.LinksRead)
	// The requests verified on days after the first, and of them those
	// refused after verification.
	uses := []struct{ day, verified, refused int }{
		{0, 7, 0}, // more than 30 days before the last: not on the chart
		{10, 0, 0},
		{15, 2, 0},
		{16, 4, 1},
		{20, 16, 0},
		{25, 9, 9},
		{38, 1, 0}, // today
	}
	day := 0
	for _, u := range uses {
		f.clock.Advance(time.Duration(u.day-day) * 24 * time.Hour)
		day = u.day
		for i := range u.verified {
			got, err := f.keys.Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if i < u.refused {
				f.keys.CountRefusal(ctx, got.ID, keyward.OutcomeLimited)
			}
		}
		if err := f.keys.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	today := f.keys.Now().UTC().Truncate(24 * time.Hour)

	status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	days := chartOf(body)
	if len(days) != 30 {
		t.Fatalf("the chart has %d bars, want 30", len(days))
	}
	want := map[string][2]int64{}
	for _, u := range uses[1:] {
		want[today.AddDate(0, 0, u.day-day).Format(time.DateOnly)] = [2]int64{int64(u.verified), int64(u.refused)}
	}
	for i, d := range days {
		if date := today.AddDate(0, 0, i-29).Format(time.DateOnly); d.date != date {
			t.Errorf("bar %d is of %s, want %s", i, d.date, date)
		}
		w := want[d.date]
		if d.requests != w[0] || d.refused != w[1] {
			t.Errorf("%s: %d requests, %d refused; want %d, %d", d.date, d.requests, d.refused, w[0], w[1])
		}
		if (d.allowedH != "") != (w[0]-w[1] > 0) || (d.refusedH != "") != (w[1] > 0) {
			t.Errorf("%s: bar parts allowed %q, refused %q", d.date, d.allowedH, d.refusedH)
		}
		// The busiest day has 16 requests: the scale goes to 20 in steps
		// of 5, and the plot is 166 units high.
		if d.requests == 16 && d.allowedH != "132.8" {
			t.Errorf("the busiest day's bar is %s high, want 132.8 (16/20 of 166)", d.allowedH)
		}
		if d.requests == 9 && d.refusedH != "74.7" {
			t.Errorf("the refused day's bar is %s high, want 74.7 (9/20 of 166)", d.refusedH)
		}
	}
	var ticks, dates []string
	for _, m := range verticalTick.FindAllStringSubmatch(body, -1) {
		ticks = append(ticks, m[1])
	}
	if strings.Join(ticks, " ") != "0 5 10 15 20" {
		t.Errorf("the vertical axis is marked %v", ticks)
	}
	for _, m := range dateTick.FindAllStringSubmatch(body, -1) {
		dates = append(dates, m[1])
	}
	if len(dates) != 5 || dates[4] != today.Format("Jan 2") || dates[3] != today.AddDate(0, 0, -7).Format("Jan 2") {
		t.Errorf("the dates under the chart are %v, want 5 a week apart, ending today", dates)
	}

	from, to := today.AddDate(0, 0, -29).Format(time.DateOnly), today.Format(time.DateOnly)
	mustContain(t, body,
		`<section class="card section" id="requests" aria-labelledby="requests-heading">`,
		`<h2 id="requests-heading">Requests, last 30 days</h2>`,
		`<p class="requests-total" id="requests-total"><strong>32</strong> requests in the last 30 days (UTC), <strong>10</strong> of them refused after verification.</p>`,
		`role="img" aria-labelledby="requests-title requests-desc"`,
		`<title id="requests-title">Requests per day, `+from+` to `+to+` (UTC)</title>`,
		`<desc id="requests-desc">32 requests from `+from+` to `+to+` (UTC), 10 of them refused after verification; the busiest day was `+
			today.AddDate(0, 0, -18).Format(time.DateOnly)+`, with 16 requests.</desc>`,
		`<ul class="legend" aria-label="Legend">`,
		`<summary>Requests per day as a table</summary>`,
		`<div class="table-scroll" role="region" aria-labelledby="requests-table-caption" tabindex="0">`,
		`<caption id="requests-table-caption">Requests per UTC day, oldest first</caption>`,
		`<th scope="row">Total</th>
        <td class="num">32</td>
        <td class="num">22</td>
        <td class="num">10</td>`)
	// No style attribute: the Content-Security-Policy allows none.
	mustNotContain(t, body, "style=")
	if n := strings.Count(body, `<th scope="row"><time datetime=`); n != 30 {
		t.Errorf("the table has %d days, want 30", n)
	}

	// A key never used has an empty chart that says so.
	_, _, body = f.page("GET", "/dashboard/keys/"+quiet.ID.String(), nil)
	if days := chartOf(body); len(days) != 30 {
		t.Errorf("the quiet key's chart has %d bars", len(days))
	}
	mustContain(t, body, `<strong>0</strong> requests in the last 30 days (UTC).`, `<desc id="requests-desc">No requests from `)
	mustNotContain(t, body, `<rect class="allowed" x=`, `<rect class="refused" x=`)
}

// TestListShowsRequestsOfTheLastDay checks the list's column of the
// requests of the last 24 hours, counted by the hour: refusals beside,
// and nothing for a canary, whose uses are trips.
func TestListShowsRequestsOfTheLastDay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	raw, busy := f.create("Busy", apikey.Live)
	_, idle := f.create("Idle", apikey.Test)
	canaryRaw, canary := f.createFor(f.owner, keyward.CreateParams{Name: "Tripwire", Mode: apikey.Live, Canary: true})
	verify := func(n, refused int) {
		for i := range n {
			rec, err := f.keys.Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if i < refused {
				f.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope)
			}
		}
		if err := f.keys.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	verify(1000, 0) // 51 hours ago: not counted
	f.clock.Advance(26 * time.Hour)
	verify(5, 0) // 25 hours ago: not counted
	f.clock.Advance(2 * time.Hour)
	verify(1200, 3) // 23 hours ago
	f.clock.Advance(23 * time.Hour)
	verify(34, 0) // now
	f.trip(canaryRaw, keyward.Caller{Method: "GET", Path: "/v1/links"})

	status, _, body := f.page("GET", "/dashboard/keys", nil)
	if status != http.StatusOK {
		t.Fatalf("%d", status)
	}
	mustContain(t, body, `<th scope="col" class="num">Requests, last 24 h</th>`)
	for _, tt := range []struct{ id, want string }{
		{busy.ID.String(), `<td class="num requests" data-label="Requests, last 24 h">1,234<small class="refused">3 refused</small></td>`},
		{idle.ID.String(), `<td class="num requests" data-label="Requests, last 24 h">0</td>`},
		{canary.ID.String(), `<td class="num requests" data-label="Requests, last 24 h"><span aria-hidden="true">—</span><span class="visually-hidden">Not counted: a canary's uses are its trips</span></td>`},
	} {
		if row := rowOf(body, tt.id); !strings.Contains(row, tt.want) {
			t.Errorf("the row of %s lacks %s:\n%s", tt.id, tt.want, row)
		}
	}
	// Each key links to its page.
	for _, rec := range []apikey.Record{busy, idle, canary} {
		mustContain(t, body, `<td class="name" data-label="Name"><a href="keys/`+rec.ID.String()+`"><bdi>`+rec.Name+`</bdi></a>`)
	}
}

// TestKeyPageOfACanary checks that a canary's page shows its history but
// no chart of requests: its uses are its trips, on their own page.
func TestKeyPageOfACanary(t *testing.T) {
	f := newFixture(t)
	_, rec := f.createFor(f.owner, keyward.CreateParams{Name: "Tripwire", Mode: apikey.Live, Canary: true})
	_, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
	mustContain(t, body, `<h2 id="requests-heading">Requests, last 30 days</h2>`,
		`<p class="muted" id="requests-canary">A canary never authorizes a request, so it has no requests to count: each use is a trip. <a href="keys/`+
			rec.ID.String()+`/trips">See its trips</a>.</p>`,
		`id="trips" href="keys/`+rec.ID.String()+`/trips"`)
	mustNotContain(t, body, `id="requests-chart"`)
	if rows := historyOf(body); len(rows) != 1 || rows[0].details != "Name: Tripwire Mode: Live Scopes: sessions:write Canary: Yes" {
		t.Errorf("the canary's history = %+v", rows)
	}
}

// TestKeyPageWhenTheHistoryFails makes the reads of the trail and of the
// usage fail: the pages are shown all the same, say what is missing, and
// log the failure, never showing its text.
func TestKeyPageWhenTheHistoryFails(t *testing.T) {
	f := newFixture(t)
	_, rec := f.create("Server", apikey.Live)
	f.store.historyDown.Store(true)

	status, _, body := f.page("GET", "/dashboard/keys/"+rec.ID.String(), nil)
	if status != http.StatusOK {
		t.Fatalf("the key's page: %d", status)
	}
	mustContain(t, body, `<h1><bdi>Server</bdi></h1>`,
		`<p class="muted" id="requests-unavailable">Requests unavailable: the key store did not answer.</p>`,
		`<p class="muted" id="history-unavailable">History unavailable: the key store did not answer.</p>`)
	mustNotContain(t, body, "10.9.8.7")
	status, _, body = f.page("GET", "/dashboard/keys", nil)
	if status != http.StatusOK {
		t.Fatalf("the list: %d", status)
	}
	if row := rowOf(body, rec.ID.String()); !strings.Contains(row, `<td class="num requests" data-label="Requests, last 24 h"><span class="muted">Unavailable</span></td>`) {
		t.Errorf("the list's row:\n%s", row)
	}
	mustNotContain(t, body, "10.9.8.7")
	logs := f.logs.String()
	for _, line := range []string{"reading a key's history failed", "reading a key's usage failed", "reading the keys' usage failed"} {
		if !strings.Contains(logs, line) {
			t.Errorf("the log lacks %q:\n%s", line, logs)
		}
	}
}
