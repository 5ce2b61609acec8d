package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// TestBrowserAccessibility runs axe-core (testdata/axe-core) in Chromium
// on every page of the dashboard, in each of its states, at a desktop's
// width (1280 px) and at a phone's (375 px), with JavaScript and without:
// any violation fails the test, with its rule, impact and elements, as
// does a page that scrolls sideways. The states: the list (as admin,
// developer and viewer; with filters applied; with none matching; its
// second page; an account without keys; after revoking all), a key's
// page (with limits, usage, metadata, its chart and history, the chart's
// table open; the older page of a long history; a rolled, exposed,
// revoked, expired and canary key; as viewer), the forms (new key, as
// admin and developer; edit; roll; revoke; revoke all) empty, refused
// (no mode, an unknown mode, every field wrong at once, a reused form,
// a bad overlap, a bad reason) and where they cannot apply (a revoked
// key, a canary, a key rolled before), the result of a roll that ends
// the old key at once, the trips pages (none yet; not a canary), and the
// error pages (401, 403, 404, 400, 405). TestBrowser checks the states
// its operator's path reaches (the reveal, the reveal reloaded, a roll's
// reveal, a revocation's refused reason and its result, a canary's reveal
// and its trips, the cross-origin 403), and TestBrowserKeyPage a key's
// page with a month of requests and its history.
//
// It needs Chromium, as TestBrowser does.
func TestBrowserAccessibility(t *testing.T) {
	chromium := findChromium(t)
	if _, err := axeSource(); err != nil {
		t.Fatal(err)
	}
	clock := newTestClock(start)
	keys := newKeys(t, keyward.WithClock(clock.Now))
	limiter := limit.NewMemory()
	// The session cookie names the role and the account: "admin.acct_js".
	const cookieName = "operator_session"
	dash, err := dashboard.New(keys, func(r *http.Request) (dashboard.Operator, error) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			return dashboard.Operator{}, errors.New("no operator session")
		}
		role, account, _ := strings.Cut(c.Value, ".")
		return dashboard.Operator{Name: "ada@example.com", Owner: account, Role: dashboard.Role(role)}, nil
	}, dashboard.WithTitle("Acme Checkout"), dashboard.WithLogger(testLogger(t)), dashboard.WithLimiter(limiter))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	browser := newBrowser(t, chromium)

	t.Run("harness", func(t *testing.T) { testAxeHarness(t, browser) })

	for _, javascript := range []bool{true, false} {
		name, account := "with JavaScript", "acct_js"
		if !javascript {
			name, account = "without JavaScript", "acct_nojs"
		}
		t.Run(name, func(t *testing.T) {
			began := time.Now()
			k := seedA11y(t, clock, limiter, keys.Owner(account))
			ctx := newTab(t, browser, javascript)
			a := a11yTab{t: t, ctx: ctx, base: srv.URL + "/dashboard/"}
			signIn := func(role dashboard.Role, account string) {
				t.Helper()
				step(t, ctx, "sign in as "+string(role), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
					_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
						Name: cookieName, Value: string(role) + "." + account, URL: srv.URL})
					return err
				}))
			}
			signIn(dashboard.Admin, account)

			// The list.
			a.visit("list", "keys", http.StatusOK)
			step(t, ctx, "choose filters", chromedp.SetValue(chromedp.CSS(`form.filters select[name="mode"]`), "live"),
				chromedp.SetValue(chromedp.CSS(`form.filters select[name="status"]`), "active"))
			a.submit("list, filters applied", "", "apply-filters", http.StatusOK)
			if got := a.location(); !strings.HasSuffix(got, "keys?mode=live&status=active") {
				t.Errorf("after Filter the page is %s, want the filtered list", got)
			}
			a.visit("list, no key matches the filters", "keys?mode=test&status=expired", http.StatusOK)
			a.has("td.empty", true)
			a.visit("list, first of several pages", "keys?limit=3", http.StatusOK)
			a.submit("list, second page", "", "older", http.StatusOK)
			a.has(`.pager a[href="keys"]`, true)

			// Keys' pages.
			a.visit("key with limits, usage and metadata", "keys/"+k.limited, http.StatusOK)
			step(t, ctx, "open the chart's table", chromedp.Click(chromedp.CSS(".chart-data summary")), chromedp.WaitVisible(chromedp.ID("requests-table")))
			a.check("key with limits, usage and metadata, the chart's table open")
			a.visit("key with a long history", "keys/"+k.renamed, http.StatusOK)
			a.submit("key, older page of its history", "", "history-older", http.StatusOK)
			a.has("#history-newest", true)
			a.visit("key rolled to another", "keys/"+k.rolled, http.StatusOK)
			a.has("a.keylink", true)
			a.visit("key reported exposed", "keys/"+k.exposed, http.StatusOK)
			a.has(".badge.exposed", true)
			a.visit("key revoked", "keys/"+k.revoked, http.StatusOK)
			a.has(".badge.status-revoked", true)
			a.visit("key expired", "keys/"+k.expired, http.StatusOK)
			a.has(".badge.status-expired", true)
			a.visit("canary key", "keys/"+k.canary, http.StatusOK)
			a.has("#requests-canary", true)
			a.visit("trips of a canary, none yet", "keys/"+k.canary+"/trips", http.StatusOK)
			a.has("table.trips td.empty", true)
			a.visit("trips of a key that is no canary", "keys/"+k.limited+"/trips", http.StatusOK)
			a.has("table.trips", false)

			// The new key form, refused in every way.
			a.visit("new key form", "keys/new", http.StatusOK)
			a.submit("new key form refused: no mode", `fill("#name", "Warehouse"); checked('input[name="mode"]', false); checked('input[name="scopes"][value="links:read"]', true)`,
				"create", http.StatusBadRequest)
			a.visit("new key form", "keys/new", -1)
			a.submit("new key form refused: an unknown mode", `fill("#name", "Warehouse"); document.querySelector('input[name="mode"][value="test"]').value = "staging";
				checked('input[name="mode"][value="staging"]', true); checked('input[name="scopes"][value="links:read"]', true)`,
				"create", http.StatusBadRequest)
			a.visit("new key form", "keys/new", -1)
			a.submit("new key form refused: every field wrong", `fill("#expires_at", "2001-01-01");
				fill("#rate_requests", "1.5"); fill("#rate_period", ""); fill("#rate_burst", "2.5"); fill("#quota_requests", "0.5"); fill("#quota_per", "");
				fill('.metadata-row:nth-child(2) input[name="metadata_key"]', "team"); fill('.metadata-row:nth-child(2) input[name="metadata_value"]', "a");
				fill('.metadata-row:nth-child(3) input[name="metadata_key"]', "team"); fill('.metadata-row:nth-child(3) input[name="metadata_value"]', "b");
				fill("#networks", "10.1.2.3/8\nnot a network")`,
				"create", http.StatusBadRequest)
			for _, field := range []string{"metadata", "rate_requests", "rate_period", "rate_burst", "quota_requests", "quota_per", "networks"} {
				if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#`+field+`-error").length`)); err != nil || n != 1 {
					t.Errorf("the form refused with every field wrong shows no error for %s (%v)", field, err)
				}
			}
			// A form posted twice with different values: 422.
			a.visit("new key form", "keys/new", -1)
			token, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="idempotency_key"]`)))
			if err != nil {
				t.Fatal(err)
			}
			step(t, ctx, "create a key", chromedp.SendKeys(chromedp.ID("name"), "Warehouse"),
				chromedp.Click(chromedp.CSS(`input[name="scopes"][value="links:read"]`)))
			if resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("create"))); err != nil || resp.Status != http.StatusCreated {
				t.Fatalf("creating a key: %v", err)
			}
			a.visit("new key form", "keys/new", -1)
			a.submit("new key form refused: posted before with other values", `fill('input[name="idempotency_key"]', `+strconv.Quote(token)+`);
				fill("#name", "Warehouse (EU)"); checked('input[name="scopes"][value="links:read"]', true)`,
				"create", http.StatusUnprocessableEntity)

			// Edit, roll and revoke, and where they cannot apply.
			a.visit("edit form", "keys/"+k.limited+"/edit", http.StatusOK)
			a.submit("edit form refused", `document.querySelectorAll('input[name="scopes"]').forEach(c => c.checked = false);
				fill("#expires_at", "2001-01-01"); fill("#rate_period", "1h"); fill("#networks", "300.1.1.1/8")`, "save", http.StatusBadRequest)
			a.visit("edit form of a revoked key", "keys/"+k.revoked+"/edit", http.StatusOK)
			a.has("#save", false)
			a.visit("roll form", "keys/"+k.plain+"/rotate", http.StatusOK)
			a.submit("roll form refused", `document.querySelector('input[name="overlap"]').value = "soon"; checked('input[name="overlap"][value="soon"]', true)`,
				"confirm-rotate", http.StatusBadRequest)
			a.visit("roll form of a canary", "keys/"+k.canary+"/rotate", http.StatusOK)
			a.has("#confirm-rotate", false)
			a.visit("roll form of a revoked key", "keys/"+k.revoked+"/rotate", http.StatusOK)
			a.has("#confirm-rotate", false)
			a.visit("roll form of a key rolled before", "keys/"+k.rolled+"/rotate", http.StatusOK)
			a.has(".card > .notice.info", true)
			a.visit("roll form", "keys/"+k.plain+"/rotate", -1)
			step(t, ctx, "end the old key at once", chromedp.Click(chromedp.CSS(`input[name="overlap"]`)))
			a.submit("roll result, the old key ended at once", "", "confirm-rotate", http.StatusCreated)
			if got := text(t, ctx, ".reveal .notice.info"); !strings.Contains(got, "has stopped working") {
				t.Errorf("the roll's result says %q, want that the old key has stopped working", got)
			}
			a.visit("revoke form", "keys/"+k.limited+"/revoke", http.StatusOK)
			a.visit("revoke form of a canary", "keys/"+k.canary+"/revoke", http.StatusOK)
			a.has("#canary-revoke", true)
			a.visit("revoke form of a revoked key", "keys/"+k.revoked+"/revoke", http.StatusOK)
			a.has("#confirm-revoke", false)

			// Revoke all, refused, done, and with nothing left to revoke.
			a.visit("revoke-all form", "keys/revoke-all", http.StatusOK)
			a.submit("revoke-all form refused", `fill("#reason", "Account closed\u202e")`, "confirm-revoke-all", http.StatusBadRequest)
			a.submit("list after revoking all", `fill("#reason", "Account closed")`, "confirm-revoke-all", http.StatusOK)
			if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".notice.success").length`)); err != nil || n != 1 {
				t.Errorf("the list after revoking all shows %d success notices (%v), want 1", n, err)
			}
			a.visit("revoke-all form, nothing to revoke", "keys/revoke-all", http.StatusOK)
			a.has("#confirm-revoke-all", false)

			// Error pages.
			a.visit("404, an unknown page", "nothing/here", http.StatusNotFound)
			a.visit("404, an unknown key", "keys/"+uuid.NewString(), http.StatusNotFound)
			a.visit("400, a history page that is none", "keys/"+k.renamed+"?history=not-a-cursor", http.StatusBadRequest)
			a.visit("key", "keys/"+k.renamed, -1)
			a.submit("405, a method not allowed", `const f = document.createElement("form"); f.method = "post"; f.action = "keys/new";
				f.innerHTML = '<button id="post-to-new-form">Post</button>'; document.body.append(f)`, "post-to-new-form", http.StatusMethodNotAllowed)

			// Other roles, and accounts.
			signIn(dashboard.Developer, account)
			a.visit("list as developer", "keys", http.StatusOK)
			a.visit("new key form as developer", "keys/new", http.StatusOK)
			a.has(`input[name="mode"][value="live"]`, false)
			signIn(dashboard.Viewer, account)
			a.visit("list as viewer", "keys", http.StatusOK)
			a.has("td.actions a.edit", false)
			a.visit("key as viewer", "keys/"+k.renamed, http.StatusOK)
			a.visit("403, a viewer opens the new key form", "keys/new", http.StatusForbidden)
			signIn(dashboard.Admin, account+"_empty")
			a.visit("list of an account without keys", "keys", http.StatusOK)
			a.has(`td.empty a[href="keys/new"]`, true)
			step(t, ctx, "sign out", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: cookieName, URL: srv.URL})
				return err
			}))
			a.visit("401, signed out", "keys", http.StatusUnauthorized)
			t.Logf("%d states checked in %v", a.states, time.Since(began).Round(time.Millisecond))
		})
	}
}

// An a11yTab checks the pages of a tab.
type a11yTab struct {
	t      *testing.T
	ctx    context.Context
	base   string // the dashboard's
	state  string // the last checked
	states int    // checked
}

// visit opens path, checks that it answers status, and checks the page
// in the state named (checkA11y). A status of -1 only opens the page.
func (a *a11yTab) visit(state, path string, status int64) {
	a.t.Helper()
	resp, err := chromedp.Run(a.ctx, chromedp.NavigateResponse(a.base+path))
	if err != nil {
		a.t.Fatalf("%s: opening %s: %v", state, path, err)
	}
	if status < 0 {
		return
	}
	if resp.Status != status {
		a.t.Errorf("%s: %s answered %d, want %d", state, path, resp.Status, status)
	}
	// The page that says sign-in is required has no assets.
	a.checkPage(state, status != http.StatusUnauthorized)
}

// submit runs fill, a script that changes the page's forms (with the
// helpers fill(selector, value) and checked(selector, bool)), then presses
// the button with the ID given, as the operator would, checks that the
// page it leads to answers status, and checks that page in the state
// named. The forms' own validation is off, for the server's to show.
func (a *a11yTab) submit(state, fill, button string, status int64) {
	a.t.Helper()
	script := `(() => {
		const el = s => { const e = document.querySelector(s); if (!e) throw new Error("no " + s); return e; };
		const fill = (s, v) => { el(s).value = v; };
		const checked = (s, on) => { document.querySelectorAll(s).forEach(e => e.checked = on); el(s); };
		document.querySelectorAll("form").forEach(f => f.noValidate = true);
		` + fill + `;
	})()`
	if _, err := chromedp.Run(a.ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		a.t.Fatalf("%s: filling the form: %v", state, err)
	}
	resp, err := chromedp.RunResponse(a.ctx, chromedp.Click(chromedp.ID(button)))
	if err != nil {
		a.t.Fatalf("%s: pressing %s: %v", state, button, err)
	}
	if resp.Status != status {
		a.t.Errorf("%s: pressing %s answered %d, want %d", state, button, resp.Status, status)
	}
	a.check(state)
}

func (a *a11yTab) check(state string) {
	a.t.Helper()
	a.checkPage(state, true)
}

func (a *a11yTab) checkPage(state string, assets bool) {
	a.t.Helper()
	checkPage(a.t, a.ctx, state, assets)
	a.state = state
	a.states++
}

// has checks that the page of the last state checked has an element that
// sel selects, or has none: that it is the state its name says.
func (a *a11yTab) has(sel string, want bool) {
	a.t.Helper()
	got, err := chromedp.Run(a.ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`))
	if err != nil {
		a.t.Fatal(err)
	}
	if got != want {
		a.t.Errorf("%s: the page has %s = %v, want %v", a.state, sel, got, want)
	}
}

func (a *a11yTab) location() string {
	a.t.Helper()
	loc, err := chromedp.Run(a.ctx, chromedp.Location())
	if err != nil {
		a.t.Fatal(err)
	}
	return loc
}

// a11yKeys are the IDs of the keys seedA11y made.
type a11yKeys struct {
	limited     string // with limits, usage, metadata and a month of requests
	renamed     string // with a history of 25 entries
	rolled      string // rolled to replacement, which overlaps it
	replacement string
	exposed     string
	revoked     string
	expired     string
	canary      string
	plain       string // to roll
}

// seedA11y creates the keys of an account, as TestBrowser's seed does,
// and a key in each state the pages show differently.
func seedA11y(t *testing.T, clock *testClock, limiter limit.Limiter, owner keyward.Owner) a11yKeys {
	t.Helper()
	ctx := context.Background()
	seed(t, owner)
	var k a11yKeys
	create := func(p keyward.CreateParams) (apikey.Secret, apikey.Record) {
		t.Helper()
		if p.Scopes.Len() == 0 {
			p.Scopes = scope.NewSet(scope.LinksRead)
		}
		sec, rec, err := owner.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return sec, rec
	}
	policy := &apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Quota:    apikey.Quota{Requests: 10000, Per: apikey.Day},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	sec, rec := create(keyward.CreateParams{Name: "Storefront (web)", Mode: apikey.Live, Policy: policy,
		Scopes:   scope.NewSet(scope.SessionsWrite, scope.SessionsRead, scope.LinksRead),
		Metadata: map[string]string{"host": "shop-1", "team": "payments"}})
	k.limited = rec.ID.String()
	for i := range 40 {
		got, err := owner.Keys().Verify(ctx, sec.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			owner.Keys().CountRefusal(ctx, got.ID, keyward.OutcomeLimited)
		}
		if _, err := limiter.Allow(ctx, rec.ID, policy, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := owner.Keys().Flush(ctx); err != nil {
		t.Fatal(err)
	}

	_, rec = create(keyward.CreateParams{Name: "Renamed often", Mode: apikey.Test})
	k.renamed = rec.ID.String()
	for i := range 24 { // 25 entries with the creation: two pages
		if _, err := owner.Update(ctx, rec.ID, keyward.UpdateParams{Name: fmt.Sprintf("Renamed often %02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, rec = create(keyward.CreateParams{Name: "Short-lived", Mode: apikey.Live, ExpiresAt: clock.Now().Add(time.Hour)})
	k.expired = rec.ID.String()
	clock.Advance(2 * time.Hour)
	_, rec = create(keyward.CreateParams{Name: "Tripwire", Mode: apikey.Test, Canary: true})
	k.canary = rec.ID.String()
	_, rec = create(keyward.CreateParams{Name: "Nightly export", Mode: apikey.Test})
	k.plain = rec.ID.String()

	page, err := owner.List(ctx, keyward.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page.Keys {
		switch {
		case rec.Name == "WooCommerce plugin" && rec.ReplacedBy != uuid.Nil:
			k.rolled = rec.ID.String()
		case rec.Name == "WooCommerce plugin":
			k.replacement = rec.ID.String()
		case rec.Name == "Export script":
			k.exposed = rec.ID.String()
		case rec.Name == "Old CI token":
			k.revoked = rec.ID.String()
		}
	}
	if k.rolled == "" || k.replacement == "" || k.exposed == "" || k.revoked == "" {
		t.Fatalf("the seed lacks a key: %+v", k)
	}
	return k
}
