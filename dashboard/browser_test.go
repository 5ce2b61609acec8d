package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/dashboard"
	"github.com/keyward/keyward/internal/needs"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// TestBrowser drives the dashboard in a real headless Chromium, as an
// operator would: create a key with an expiry and metadata, copy it from
// the page, call an API with it, reload the page that showed it (which
// must not create a second key, nor show the key again), narrow its scopes
// in the edit form, roll it (the two keys' pages link to each other),
// revoke the new key in the page with a reason (first one the form
// refuses, next to its field), and see the API refuse it and the list
// keep it, revoked, with its time and reason. Then it creates a canary in
// the form, sees the API refuse it, and finds the use on the canary's
// trips page. It does so twice, with JavaScript and with JavaScript
// disabled, since the page must work without it. It also checks that a
// page on another origin cannot revoke a key with the operator's cookie.
// On the way, axe-core checks the pages that only this path reaches
// (checkA11y; TestBrowserAccessibility checks the others).
//
// It needs Chromium (.ci/install-chromium installs Debian's); without it the
// test skips, except under CI=true, where it fails. Its screenshots, one
// of which shows a raw key, go to a temporary directory removed when the
// test ends, unless KEYWARD_BROWSER_ARTIFACTS names a directory to keep
// them in. To refresh the README's screenshots of the list, on a desktop
// and on a phone, run from the module root:
//
//	KEYWARD_SCREENSHOT=docs/dashboard.png KEYWARD_PHONE_SCREENSHOT=docs/dashboard-phone.png go test ./dashboard -run 'TestBrowser$'
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	artifacts := t.TempDir()
	if dir := os.Getenv("KEYWARD_BROWSER_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		artifacts = dir
		t.Logf("screenshots kept in %s", artifacts)
	}

	tripped := make(chan apikey.Trip, 16)
	keys := newKeys(t, keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) {
		select {
		case tripped <- tr:
		default: // the test makes two trips
		}
	}))
	owner := keys.Owner("acct_acme")
	limiter := limit.NewMemory() // what the API's middleware would count requests with
	seed(t, owner)
	seed(t, keys.Owner("acct_other")) // never shown: another account's keys
	const cookieName, cookieValue = "operator_session", "e2e-session-7f3a"
	dash, err := dashboard.New(keys, func(r *http.Request) (dashboard.Operator, error) {
		c, err := r.Cookie(cookieName)
		if err != nil || c.Value != cookieValue {
			return dashboard.Operator{}, errors.New("no operator session")
		}
		return dashboard.Operator{Name: "ada@example.com", Owner: "acct_acme", Role: dashboard.Admin}, nil
	}, dashboard.WithTitle("Acme Checkout"), dashboard.WithLogger(testLogger(t)), dashboard.WithLimiter(limiter))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	mux.Handle("GET /api/v1/sessions", apiEndpoint(keys))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	browser := newBrowser(t, chromium)
	step(t, browser, "sign in", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
			Name: cookieName, Value: cookieValue, URL: srv.URL,
		})
		return err
	}))
	o := operator{srv: srv, keys: keys, owner: owner, artifacts: artifacts, tripped: tripped, limiter: limiter}

	t.Run("with JavaScript", func(t *testing.T) {
		ctx := newTab(t, browser, true)
		name := "Nightly reconciliation job"
		id, raw := o.createKey(t, ctx, name)

		// Another origin cannot revoke it with the operator's cookie: a
		// page on another port of the same host (same site, so the browser
		// sends the cookie along) that posts a revocation as it loads.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/dashboard/keys/%s/revoke"></form>
<script>document.getElementById("f").submit()</script>`, srv.URL, id)
		}))
		defer evil.Close()
		step(t, ctx, "open the cross-origin page", chromedp.Navigate(evil.URL))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
			`location.pathname.endsWith("/revoke") && document.readyState === "complete"`)); err != nil {
			t.Fatalf("waiting for the cross-origin post: %v", err)
		}
		if got := text(t, ctx, "h1"); got != "Forbidden" {
			t.Errorf("the cross-origin post got a page titled %q, want Forbidden", got)
		}
		checkA11y(t, ctx, "403, a cross-origin post")
		if rec, err := owner.Get(ctx, uuidOf(t, id)); err != nil || rec.Revoked() {
			t.Fatalf("after a cross-origin post the key is revoked=%v (error %v), want active", rec.Revoked(), err)
		}
		if got := callAPI(t, srv.URL, raw); got != http.StatusOK {
			t.Fatalf("after a cross-origin post the API answered %d, want 200", got)
		}

		o.editKey(t, ctx, id)
		newID, newRaw := o.rollKey(t, ctx, id, raw, name)
		step(t, ctx, "open the list", chromedp.Navigate(srv.URL+"/dashboard/keys"))
		o.revokeKey(t, ctx, newID, newRaw, name, "Laptop stolen")
		o.createCanary(t, ctx, "Tripwire in the CI secrets")
		o.createLimitedKey(t, ctx, "Partner integration")

		o.filtersWaitForSubmit(t, ctx)
		o.fitsPhones(t, ctx, id)
		step(t, ctx, "open the list", chromedp.Navigate(srv.URL+"/dashboard/keys"))
		shot := screenshot(t, ctx, filepath.Join(artifacts, "dashboard.png"))
		keepScreenshot(t, os.Getenv("KEYWARD_SCREENSHOT"), shot)
		// The README's screenshot of the list on a phone: its first
		// screen, 375 px wide.
		shot = phoneScreenshot(t, ctx, srv.URL+"/dashboard/keys", filepath.Join(artifacts, "dashboard-phone.png"))
		keepScreenshot(t, os.Getenv("KEYWARD_PHONE_SCREENSHOT"), shot)
	})

	t.Run("without JavaScript", func(t *testing.T) {
		ctx := newTab(t, browser, false)
		name := "Fulfilment worker"
		id, raw := o.createKey(t, ctx, name)
		o.editKey(t, ctx, id)
		newID, newRaw := o.rollKey(t, ctx, id, raw, name)
		step(t, ctx, "open the list", chromedp.Navigate(srv.URL+"/dashboard/keys"))
		o.revokeKey(t, ctx, newID, newRaw, name, "Contractor left")
		o.createCanary(t, ctx, "Tripwire in the old repository")
		o.createLimitedKey(t, ctx, "Reseller integration")
		o.filtersWaitForSubmit(t, ctx)
		o.fitsPhones(t, ctx, id)
	})
}

// filtersWaitForSubmit checks that the list's filters apply only when the
// operator presses Filter (WCAG 3.2.2): the button is shown, and the down
// arrow in the Mode select changes the choice but not the page.
func (o operator) filtersWaitForSubmit(t *testing.T, ctx context.Context) {
	t.Helper()
	list := o.srv.URL + "/dashboard/keys"
	step(t, ctx, "open the list", chromedp.Navigate(list))
	if visible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const b = document.querySelector("form.filters button[type=submit]");
		if (!b) return false;
		const r = b.getBoundingClientRect();
		return getComputedStyle(b).display !== "none" && getComputedStyle(b).visibility !== "hidden" && r.width > 0 && r.height > 0;
	})()`)); err != nil || !visible {
		t.Errorf("the filters' submit button is visible = %v (%v), want true", visible, err)
	}
	step(t, ctx, "press the down arrow in the Mode select",
		chromedp.Focus(chromedp.CSS(`form.filters select[name="mode"]`)),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.Sleep(500*time.Millisecond))
	if got, err := chromedp.Run(ctx, chromedp.Location()); err != nil || got != list {
		t.Errorf("after the down arrow in the Mode select the page is %s (%v), want still %s", got, err, list)
	}
	mode, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('form.filters select[name="mode"]').value`))
	if err != nil || mode == "" {
		t.Fatalf("the Mode select's value after the down arrow = %q (%v), want another choice than any", mode, err)
	}
	// The server marks the applied filter selected.
	step(t, ctx, "apply the filters", chromedp.Click(chromedp.CSS("form.filters button[type=submit]")),
		chromedp.WaitReady(chromedp.CSS(`form.filters select[name="mode"] option[value="`+mode+`"][selected]`)))
	if got, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(got, "mode="+mode) {
		t.Errorf("after Filter the page is %s (%v), want the list filtered by mode=%s", got, err, mode)
	}
}

// fitsPhones checks that the list and the key's pages fit a phone's
// viewport, 375 and 320 px wide, without scrolling sideways, and that every
// action of the list's rows is on screen.
func (o operator) fitsPhones(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	base := o.srv.URL + "/dashboard/"
	step(t, ctx, "open the list", chromedp.Navigate(base+"keys"))
	trips, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("td.actions a.trips") || {}).getAttribute?.("href") || ""`))
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{"keys", "keys/" + id, "keys/" + id + "/edit", "keys/" + id + "/rotate", "keys/" + id + "/revoke", "keys/new", "keys/revoke-all"}
	if trips != "" {
		pages = append(pages, trips)
	}
	defer func() {
		if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Errorf("clearing the viewport: %v", err)
		}
	}()
	for _, width := range []int64{375, 320} {
		if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: width, Height: 740, DeviceScaleFactor: 1, Mobile: true}); err != nil {
			t.Fatalf("emulating a %d px viewport: %v", width, err)
		}
		for _, p := range pages {
			step(t, ctx, "open "+p+" on a phone", chromedp.Navigate(base+p))
			fit, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
				ScrollWidth, InnerWidth int
				Wide                    []string
			}](`(() => {
				const w = window.innerWidth;
				const wide = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > w + 0.5)
					.slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "") + " " + Math.round(e.getBoundingClientRect().right));
				return {scrollWidth: document.documentElement.scrollWidth, innerWidth: w, wide};
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			if fit.InnerWidth != int(width) {
				t.Errorf("%s: the viewport is %d px wide, want %d", p, fit.InnerWidth, width)
			}
			if fit.ScrollWidth > fit.InnerWidth {
				t.Errorf("%s at %d px: the page scrolls sideways to %d px; too wide: %q", p, width, fit.ScrollWidth, fit.Wide)
			}
			if p != "keys" {
				continue
			}
			off, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("td.actions a")].filter(a => {
				const r = a.getBoundingClientRect();
				return r.width === 0 || r.left < 0 || r.right > window.innerWidth;
			}).map(a => a.textContent)`))
			if err != nil {
				t.Fatal(err)
			}
			if len(off) > 0 {
				t.Errorf("at %d px the list's actions %q are off screen", width, off)
			}
			if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("td.actions a").length`)); err != nil || n == 0 {
				t.Errorf("the list has %d row actions (%v), want some", n, err)
			}
			if width == 375 {
				screenshot(t, ctx, filepath.Join(o.artifacts, "phone"+suffix(t)+".png"))
			}
		}
	}
}

// An operator drives the dashboard's pages.
type operator struct {
	srv       *httptest.Server
	keys      *keyward.Keys
	owner     keyward.Owner // the operator's account
	artifacts string
	tripped   <-chan apikey.Trip // each trip, once stored
	limiter   limit.Limiter      // the dashboard's
}

// suffix names a tab's screenshots.
func suffix(t *testing.T) string {
	if strings.HasPrefix(t.Name(), "TestBrowser/with_") {
		return ""
	}
	return "-nojs"
}

// copyButtonShown reports whether the copy button is on screen. The script
// shows it; without the script it must not be, since it would do nothing.
func copyButtonShown(t *testing.T, ctx context.Context) bool {
	t.Helper()
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`(b => b !== null && b.getClientRects().length > 0 && getComputedStyle(b).visibility !== "hidden")(document.getElementById("copy"))`))
	if err != nil {
		t.Fatalf("looking at the copy button: %v", err)
	}
	return shown
}

// named returns the keys of the operator's account with the given name.
func (o operator) named(t *testing.T, ctx context.Context, name string) []apikey.Record {
	t.Helper()
	page, err := o.owner.List(ctx, keyward.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []apikey.Record
	for _, rec := range page.Keys {
		if rec.Name == name {
			out = append(out, rec)
		}
	}
	return out
}

// createKey opens the dashboard, creates a test key with two scopes, an
// expiry and a metadata pair in the form, checks the one-time reveal and
// the key against the API, reloads the reveal (which creates nothing and
// shows no key), goes on to the key's page, and returns the key's ID and
// raw key.
func (o operator) createKey(t *testing.T, ctx context.Context, name string) (id, raw string) {
	t.Helper()
	suffix := suffix(t)

	// The mount point redirects to the key list.
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(o.srv.URL+"/dashboard/"))
	if err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if got, want := resp.URL, o.srv.URL+"/dashboard/keys"; got != want {
		t.Errorf("the dashboard opened at %s, want %s", got, want)
	}
	if got := text(t, ctx, "h1"); got != "API keys" {
		t.Errorf("heading = %q, want %q", got, "API keys")
	}

	// New key: name, Test mode, two scopes, an expiry, one metadata pair.
	expires := o.keys.Now().AddDate(0, 2, 0).Format(time.DateOnly)
	step(t, ctx, "open the form", chromedp.Click(chromedp.ID("new-key")), chromedp.WaitVisible(chromedp.ID("name")))
	step(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.CSS(`input[name="mode"][value="test"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="sessions:write"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="links:read"]`)),
		chromedp.SetValue(chromedp.ID("expires_at"), expires),
		chromedp.SendKeys(chromedp.CSS(`.metadata-row:nth-child(2) input[name="metadata_key"]`), "integration"),
		chromedp.SendKeys(chromedp.CSS(`.metadata-row:nth-child(2) input[name="metadata_value"]`), "woocommerce"),
	)
	screenshot(t, ctx, filepath.Join(o.artifacts, "new"+suffix+".png"))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("create")))
	if err != nil {
		t.Fatalf("creating the key: %v", err)
	}
	if resp.Status != http.StatusCreated {
		t.Fatalf("create answered %d, want 201", resp.Status)
	}
	if got := header(resp, "Cache-Control"); got != "no-store" {
		t.Errorf("the reveal's Cache-Control = %q, want no-store", got)
	}

	// The one-time reveal.
	raw, err = chromedp.Run(ctx, chromedp.Value(chromedp.ID("raw-key")))
	if err != nil {
		t.Fatalf("reading the revealed key: %v", err)
	}
	if m, err := apikey.Parse(raw); err != nil || m != apikey.Test {
		t.Fatalf("the revealed key is not a test key (mode %v, error %v)", m, err)
	}
	if strings.Contains(resp.URL, raw) {
		t.Error("the raw key is in the URL")
	}
	if warning := text(t, ctx, ".notice.warning"); !strings.Contains(warning, "You will not see it again") {
		t.Errorf("the reveal's warning = %q, want it to say the key will not be shown again", warning)
	}
	if got, want := copyButtonShown(t, ctx), suffix == ""; got != want {
		t.Errorf("the copy button is shown: %v; want %v, as the script is on: %v", got, want, want)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "reveal"+suffix+".png"))
	checkA11y(t, ctx, "reveal")
	id = path.Base(header(resp, "Location"))

	// The key authenticates, and has what the form said.
	if got := callAPI(t, o.srv.URL, raw); got != http.StatusOK {
		t.Fatalf("the API answered %d to the new key, want 200", got)
	}
	rec, err := o.owner.Get(ctx, uuidOf(t, id))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Metadata.Get("integration"); v != "woocommerce" || rec.ExpiresAt.Format(time.RFC3339) != expires+"T00:00:00Z" ||
		!rec.Scopes.Equal(scope.NewSet(scope.SessionsWrite, scope.LinksRead)) {
		t.Errorf("the key was created as %+v, metadata %v", rec, rec.Metadata)
	}

	// Reloading the page that showed the key posts the form again: no
	// second key, and no key shown.
	resp, err = chromedp.RunResponse(ctx, chromedp.Reload())
	if err != nil {
		t.Fatalf("reloading the reveal: %v", err)
	}
	if resp.Status != http.StatusOK || resp.URL != o.srv.URL+"/dashboard/keys" {
		t.Errorf("the reload answered %d at %s, want 200 at the create's URL", resp.Status, resp.URL)
	}
	if got := text(t, ctx, "h1"); got != "API key already created" {
		t.Errorf("the reload shows %q, want the page saying the key was already created", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#raw-key").length`)); err != nil || n != 0 {
		t.Errorf("the reload shows a raw key field (%d, %v)", n, err)
	}
	if body := text(t, ctx, "body"); strings.Contains(body, raw) || strings.Contains(body, raw[len(rec.Prefix):]) {
		t.Error("the reload shows the raw key")
	}
	if n := len(o.named(t, ctx, name)); n != 1 {
		t.Fatalf("%d keys named %q after the reload, want 1", n, name)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "repeat"+suffix+".png"))
	checkA11y(t, ctx, "reveal reloaded")

	// On to the key's page: its metadata and expiry.
	step(t, ctx, "open the key", chromedp.Click(chromedp.ID("view-key")), chromedp.WaitVisible(chromedp.ID("edit")))
	if got := text(t, ctx, "dl.metadata"); got != "integration woocommerce" {
		t.Errorf("the key's metadata reads %q", got)
	}
	if got := attr(t, ctx, ".facts:nth-of-type(2) time", "datetime"); got != expires+"T00:00:00Z" {
		t.Errorf("the key's expiry reads %q, want %s", got, expires)
	}
	return id, raw
}

// editKey narrows the key's scopes from its page, in the edit form.
func (o operator) editKey(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	step(t, ctx, "open the key", chromedp.Navigate(o.srv.URL+"/dashboard/keys/"+id), chromedp.WaitVisible(chromedp.ID("edit")))
	step(t, ctx, "open the edit form", chromedp.Click(chromedp.ID("edit")), chromedp.WaitVisible(chromedp.ID("save")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[name="scopes"]').length`)); err != nil || n != 2 {
		t.Errorf("the edit form offers %d scopes (%v), want the key's 2", n, err)
	}
	step(t, ctx, "uncheck links:read", chromedp.Click(chromedp.CSS(`input[name="scopes"][value="links:read"]`)))
	screenshot(t, ctx, filepath.Join(o.artifacts, "edit"+suffix(t)+".png"))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("save")))
	if err != nil {
		t.Fatalf("saving: %v", err)
	}
	if resp.Status != http.StatusOK || resp.URL != o.srv.URL+"/dashboard/keys/"+id {
		t.Errorf("saving ended at %d %s, want the key's page", resp.Status, resp.URL)
	}
	if got := text(t, ctx, ".facts .scopes"); got != "sessions:write" {
		t.Errorf("the key's page lists the scopes %q, want sessions:write", got)
	}
	// The key's history starts with the edit, by the operator.
	newest := "table.history tr.event:first-child"
	if what, by, details := text(t, ctx, newest+" td.what"), text(t, ctx, newest+" td.actor"), text(t, ctx, newest+" td.details"); what != "Edited" ||
		by != "ada@example.com operator" || !strings.HasPrefix(details, "Scopes: links:read sessions:write") || !strings.HasSuffix(details, "changed to sessions:write") {
		t.Errorf("the history's newest row reads %q, %q, %q; want the edit of the scopes by the operator", what, by, details)
	}
	rec, err := o.owner.Get(ctx, uuidOf(t, id))
	if err != nil || !rec.Scopes.Equal(scope.NewSet(scope.SessionsWrite)) {
		t.Errorf("after the edit the key has the scopes %v (%v)", rec.Scopes, err)
	}
	if v, _ := rec.Metadata.Get("integration"); v != "woocommerce" {
		t.Errorf("the edit lost the metadata: %v", rec.Metadata)
	}
}

// rollKey rolls the key from its page with an hour's overlap, checks that
// both keys work and that their pages link to each other, and returns the
// new key's ID and raw key.
func (o operator) rollKey(t *testing.T, ctx context.Context, id, raw, name string) (newID, newRaw string) {
	t.Helper()
	step(t, ctx, "open the key", chromedp.Navigate(o.srv.URL+"/dashboard/keys/"+id), chromedp.WaitVisible(chromedp.ID("roll")))
	step(t, ctx, "open the roll form", chromedp.Click(chromedp.ID("roll")), chromedp.WaitVisible(chromedp.ID("confirm-rotate")))
	step(t, ctx, "choose an hour", chromedp.Click(chromedp.CSS(`input[name="overlap"][value="1h"]`)))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("confirm-rotate")))
	if err != nil {
		t.Fatalf("rolling: %v", err)
	}
	if resp.Status != http.StatusCreated || header(resp, "Cache-Control") != "no-store" {
		t.Fatalf("the roll answered %d, Cache-Control %q", resp.Status, header(resp, "Cache-Control"))
	}
	if got := text(t, ctx, "h1"); got != "Key rolled" {
		t.Errorf("heading = %q", got)
	}
	newRaw, err = chromedp.Run(ctx, chromedp.Value(chromedp.ID("raw-key")))
	if err != nil {
		t.Fatalf("reading the new key: %v", err)
	}
	newID = path.Base(header(resp, "Location"))
	checkA11y(t, ctx, "roll result")
	for which, k := range map[string]string{"old": raw, "new": newRaw} {
		if got := callAPI(t, o.srv.URL, k); got != http.StatusOK {
			t.Errorf("during the overlap the API answered %d to the %s key, want 200", got, which)
		}
	}

	// The new key's page links to the old one, and back.
	step(t, ctx, "open the new key", chromedp.Navigate(o.srv.URL+"/dashboard/keys/"+newID), chromedp.WaitVisible(chromedp.CSS("a.keylink")))
	if got := attr(t, ctx, "a.keylink", "href"); got != "keys/"+id {
		t.Errorf("the new key's page links to %q, want the old key", got)
	}
	step(t, ctx, "follow Replaces", chromedp.Click(chromedp.CSS("a.keylink")), chromedp.WaitVisible(chromedp.CSS("a.keylink")))
	if got := text(t, ctx, "h1"); got != name {
		t.Errorf("the link led to %q", got)
	}
	if got := attr(t, ctx, "a.keylink", "href"); got != "keys/"+newID {
		t.Errorf("the old key's page links to %q, want the new key", got)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "key"+suffix(t)+".png"))
	return newID, newRaw
}

// revokeKey revokes the key from the list, through the confirmation,
// with a reason: first one the form refuses, which it shows next to the
// field, keeping what was typed. It checks that the API refuses the key
// and that the list keeps it, revoked, with its time and reason, after a
// reload.
func (o operator) revokeKey(t *testing.T, ctx context.Context, id, raw, name, reason string) {
	t.Helper()
	start := o.keys.Now()
	row := `tr[data-key-id="` + id + `"]`
	step(t, ctx, "revoke", chromedp.Click(chromedp.CSS(row+` a.revoke`)), chromedp.WaitVisible(chromedp.ID("confirm-revoke")))
	if got, want := text(t, ctx, "h1"), "Revoke “"+name+"”?"; got != want {
		t.Errorf("confirmation heading = %q, want %q", got, want)
	}
	if got := text(t, ctx, "#reason-hint"); !strings.HasPrefix(got, "Kept with the key for audit") {
		t.Errorf("the reason's hint = %q", got)
	}
	if got := attr(t, ctx, "#reason", "maxlength"); got != "200" {
		t.Errorf("the reason's maxlength = %q", got)
	}

	// A reason with a bidirectional override is refused next to its field.
	spoofed := reason + "\u202e"
	step(t, ctx, "enter a spoofed reason", chromedp.SetValue(chromedp.ID("reason"), spoofed))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("confirm-revoke")))
	if err != nil {
		t.Fatalf("confirming with a spoofed reason: %v", err)
	}
	if resp.Status != http.StatusBadRequest {
		t.Errorf("a spoofed reason answered %d, want 400", resp.Status)
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || !strings.HasPrefix(title, "Error: ") {
		t.Errorf("the refused form's title = %q (%v), want it to start with Error:", title, err)
	}
	if got := text(t, ctx, "#reason-error"); got != "Reason contains invisible or bidirectional formatting characters." {
		t.Errorf("the error next to the reason = %q", got)
	}
	if got := attr(t, ctx, "#reason", "aria-describedby"); got != "reason-hint reason-error" {
		t.Errorf("the reason is described by %q, want its hint and its error", got)
	}
	if got := attr(t, ctx, "#reason", "aria-invalid"); got != "true" {
		t.Errorf("the reason's aria-invalid = %q", got)
	}
	if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("reason"))); err != nil || got != spoofed {
		t.Errorf("the refused form shows the reason %q (%v), want it as typed", got, err)
	}
	if !strings.Contains(t.Name(), "without") {
		screenshot(t, ctx, filepath.Join(o.artifacts, "revoke.png"))
	}
	checkA11y(t, ctx, "revoke form refused")
	if rec, err := o.owner.Get(ctx, uuidOf(t, id)); err != nil || rec.Revoked() {
		t.Fatalf("after a refused reason the key is revoked=%v (%v), want active", rec.Revoked(), err)
	}

	step(t, ctx, "enter the reason", chromedp.Clear(chromedp.ID("reason")), chromedp.SendKeys(chromedp.ID("reason"), reason))
	step(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-revoke")), chromedp.WaitVisible(chromedp.CSS(".notice.success")))
	if got := text(t, ctx, ".notice.success"); !strings.Contains(got, "Revoked “"+name+"”") {
		t.Errorf("notice after revoking = %q", got)
	}
	checkA11y(t, ctx, "list after revoking a key")

	// The key no longer authenticates.
	if got := callAPI(t, o.srv.URL, raw); got != http.StatusUnauthorized {
		t.Fatalf("the API answered %d to the revoked key, want 401", got)
	}

	// After a reload the key is still listed, revoked, with its time and
	// its reason.
	step(t, ctx, "reload", chromedp.Reload())
	if got := attr(t, ctx, row, "data-status"); got != "revoked" {
		t.Fatalf("after reload the key's status = %q, want revoked", got)
	}
	if got := text(t, ctx, row+" td.status"); !strings.HasPrefix(got, "Revoked") {
		t.Errorf("status cell = %q, want it to start with Revoked", got)
	}
	if got := text(t, ctx, row+" td.status .reason"); got != "Reason: "+reason {
		t.Errorf("the reason shown = %q, want %q", got, "Reason: "+reason)
	}
	if rec, err := o.owner.Get(ctx, uuidOf(t, id)); err != nil || rec.RevokedReason != reason {
		t.Errorf("the stored reason = %q (%v), want %q", rec.RevokedReason, err, reason)
	}
	stamp := attr(t, ctx, row+" td.status time", "datetime")
	at, err := time.Parse(time.RFC3339, stamp)
	if err != nil {
		t.Fatalf("the revocation time %q is not RFC 3339: %v", stamp, err)
	}
	if now := o.keys.Now(); at.Before(start.Truncate(time.Second)) || at.After(now) {
		t.Errorf("revoked at %v, want between %v and %v", at, start, now)
	}
}

// createCanary creates a canary key in the form, checks what the reveal
// says of it, presents it to the API (which refuses it, as an unknown
// key), and finds the use on the canary's trips page, reached from its
// row in the list, which offers no roll.
func (o operator) createCanary(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	suffix := suffix(t)
	step(t, ctx, "open the list", chromedp.Navigate(o.srv.URL+"/dashboard/keys"))
	step(t, ctx, "open the form", chromedp.Click(chromedp.ID("new-key")), chromedp.WaitVisible(chromedp.ID("name")))
	if got := text(t, ctx, `label[for="canary"]`); got != "Canary (tripwire)" {
		t.Errorf("the canary box's label = %q", got)
	}
	if got := attr(t, ctx, "#canary", "aria-describedby"); got != "canary-hint" {
		t.Errorf("the canary box is described by %q", got)
	}
	step(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.CSS(`input[name="mode"][value="test"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="customers:read"]`)),
		chromedp.Click(chromedp.ID("canary")),
	)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("create")))
	if err != nil {
		t.Fatalf("creating the canary: %v", err)
	}
	if resp.Status != http.StatusCreated {
		t.Fatalf("create answered %d, want 201", resp.Status)
	}
	id := path.Base(header(resp, "Location"))
	if note := text(t, ctx, "#canary-note"); !strings.Contains(note, "This is a canary key: it never authorizes a request.") ||
		!strings.Contains(note, "Plant it where a thief would look") {
		t.Errorf("the reveal's canary note = %q", note)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "canary"+suffix+".png"))
	checkA11y(t, ctx, "reveal of a canary")
	raw, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("raw-key")))
	if err != nil {
		t.Fatalf("reading the revealed key: %v", err)
	}
	if rec, err := o.owner.Get(ctx, uuidOf(t, id)); err != nil || !rec.Canary || rec.Name != name {
		t.Fatalf("the form created %+v (%v), want a canary named %q", rec, err, name)
	}

	// The API refuses it, and the use is recorded: wait for it to be
	// stored, which happens in the background.
	if got := callAPI(t, o.srv.URL, raw); got != http.StatusUnauthorized {
		t.Fatalf("the API answered %d to the canary, want 401", got)
	}
	select {
	case tr := <-o.tripped:
		if tr.KeyID.String() != id {
			t.Fatalf("a trip of %v, want of the canary %s", tr.KeyID, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the canary's trip was not stored within 10s")
	}

	// Its row: a badge, no roll, and the trips, named for the key.
	step(t, ctx, "open the list", chromedp.Navigate(o.srv.URL+"/dashboard/keys"))
	row := `tr[data-key-id="` + id + `"]`
	if got := text(t, ctx, row+" .badge.canary"); got != "Canary" {
		t.Errorf("the canary's badge reads %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+row+` a.rotate').length`)); err != nil || n != 0 {
		t.Errorf("the canary's row offers %d roll links (%v), want none", n, err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+row+` a.trips').textContent`)); err != nil || got != "Trips of "+name {
		t.Errorf("the trips link's accessible text = %q (%v), want %q", got, err, "Trips of "+name)
	}
	step(t, ctx, "open the trips", chromedp.Click(chromedp.CSS(row+" a.trips")), chromedp.WaitVisible(chromedp.CSS("table.trips")))
	if got := text(t, ctx, "table.trips caption"); !strings.HasPrefix(got, "Uses of the canary key") {
		t.Errorf("the table's caption = %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.trip").length`)); err != nil || n != 1 {
		t.Fatalf("the trips page lists %d trips (%v), want 1", n, err)
	}
	if got := text(t, ctx, "tr.trip"); !strings.Contains(got, "GET /api/v1/sessions") || !strings.Contains(got, "Go-http-client/1.1") ||
		!strings.Contains(got, "127.0.0.1:") {
		t.Errorf("the trip reads %q, want the route, the user agent and the address of the call", got)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "trips"+suffix+".png"))
	checkA11y(t, ctx, "trips of a canary")

	// The key's page offers no roll either.
	step(t, ctx, "open the canary", chromedp.Navigate(o.srv.URL+"/dashboard/keys/"+id), chromedp.WaitVisible(chromedp.ID("trips")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#roll").length`)); err != nil || n != 0 {
		t.Errorf("the canary's page offers a roll (%d, %v)", n, err)
	}
}

// createLimitedKey creates a key with a rate limit, a quota and allowed
// networks in the form: first with a network the library refuses, which
// the form shows next to its field, keeping what was typed; then
// corrected. It checks the limits on the key's page and in the list, and
// the usage the page shows once the limiter has counted requests.
func (o operator) createLimitedKey(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	suffix := suffix(t)
	step(t, ctx, "open the list", chromedp.Navigate(o.srv.URL+"/dashboard/keys"))
	step(t, ctx, "open the form", chromedp.Click(chromedp.ID("new-key")), chromedp.WaitVisible(chromedp.ID("name")))
	if got := text(t, ctx, "fieldset.limits > legend"); got != "Limits (optional)" {
		t.Errorf("the limits' legend = %q", got)
	}
	step(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.CSS(`input[name="mode"][value="test"]`)),
		chromedp.Click(chromedp.CSS(`input[name="scopes"][value="links:read"]`)),
		chromedp.SendKeys(chromedp.ID("rate_requests"), "100"),
		chromedp.SetValue(chromedp.ID("rate_period"), "1h"),
		chromedp.SendKeys(chromedp.ID("rate_burst"), "20"),
		chromedp.SendKeys(chromedp.ID("quota_requests"), "1000"),
		chromedp.SendKeys(chromedp.ID("networks"), "203.0.113.0/24\n10.1.2.3/8"),
	)
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("create")))
	if err != nil {
		t.Fatalf("creating the key: %v", err)
	}
	if resp.Status != http.StatusBadRequest {
		t.Fatalf("a network with bits past its length answered %d, want 400", resp.Status)
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || !strings.HasPrefix(title, "Error: ") {
		t.Errorf("the refused form's title = %q (%v), want it to start with Error:", title, err)
	}
	if got := text(t, ctx, "#networks-error"); got != "Network 10.1.2.3/8 has bits set past its length; did you mean 10.0.0.0/8?" {
		t.Errorf("the error next to the networks = %q", got)
	}
	if got := attr(t, ctx, "#networks", "aria-describedby"); got != "networks-hint networks-error" {
		t.Errorf("the networks are described by %q, want their hint and their error", got)
	}
	if got := attr(t, ctx, "#networks", "aria-invalid"); got != "true" {
		t.Errorf("the networks' aria-invalid = %q", got)
	}
	for sel, want := range map[string]string{"#networks": "203.0.113.0/24\n10.1.2.3/8", "#rate_requests": "100", "#rate_period": "1h",
		"#rate_burst": "20", "#quota_requests": "1000", "#quota_per": "day", "#name": name} {
		if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel))); err != nil || got != want {
			t.Errorf("the refused form shows %s = %q (%v), want %q as entered", sel, got, err, want)
		}
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "limits-error"+suffix+".png"))

	step(t, ctx, "correct the networks", chromedp.Clear(chromedp.ID("networks")),
		chromedp.SendKeys(chromedp.ID("networks"), "203.0.113.0/24\n10.0.0.0/8"))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("create")))
	if err != nil {
		t.Fatalf("creating the key: %v", err)
	}
	if resp.Status != http.StatusCreated {
		t.Fatalf("create answered %d, want 201", resp.Status)
	}
	id := path.Base(header(resp, "Location"))
	rec, err := o.owner.Get(ctx, uuidOf(t, id))
	if err != nil {
		t.Fatal(err)
	}
	want := apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Hour, Burst: 20}, Quota: apikey.Quota{Requests: 1000, Per: apikey.Day},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("10.0.0.0/8")}}
	if rec.Policy == nil || rec.Policy.Rate != want.Rate || rec.Policy.Quota != want.Quota || !slices.Equal(rec.Policy.Networks, want.Networks) {
		t.Fatalf("the form created the policy %+v, want %+v", rec.Policy, want)
	}

	// The API's middleware counts three requests.
	for range 3 {
		if _, err := o.limiter.Allow(ctx, rec.ID, rec.Policy, o.keys.Now()); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "open the key", chromedp.Navigate(o.srv.URL+"/dashboard/keys/"+id), chromedp.WaitVisible(chromedp.ID("limit-rate")))
	for sel, want := range map[string]string{
		"#limit-rate":     "100 requests per hour, bursts of up to 20",
		"#limit-quota":    "1,000 requests per day (UTC)",
		"#limit-networks": "203.0.113.0/24 10.0.0.0/8",
		"#usage-quota":    "Quota: 3 of 1,000 used today, resets at 00:00 UTC",
	} {
		if got := text(t, ctx, sel); got != want {
			t.Errorf("the key's page shows %s = %q, want %q", sel, got, want)
		}
	}
	// One request's allowance comes back every 36 s: the test is quicker.
	if got := text(t, ctx, "#usage-rate"); !strings.HasPrefix(got, "Rate: 17 of 20 left, full in 1 min ") {
		t.Errorf("the key's page shows the rate's usage %q, want 17 of 20 left", got)
	}
	screenshot(t, ctx, filepath.Join(o.artifacts, "limits"+suffix+".png"))

	step(t, ctx, "open the list", chromedp.Navigate(o.srv.URL+"/dashboard/keys"))
	if got := text(t, ctx, `tr[data-key-id="`+id+`"] .limits`); got != "Limits: 100/h · 1k/day · 2 networks" {
		t.Errorf("the list shows the limits %q", got)
	}
}

// apiEndpoint stands in for an API protected by keyward: it answers 200 to
// a valid Bearer key and 401 otherwise, and tells the lifecycle who called,
// for the trips of canaries. The real middleware, in package middleware,
// is tested on its own; this test only needs VerifyFrom.
func apiEndpoint(keys *keyward.Keys) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "missing key", http.StatusUnauthorized)
			return
		}
		_, err := keys.VerifyFrom(r.Context(), token, keyward.Caller{Addr: r.RemoteAddr, UserAgent: r.UserAgent(),
			Method: r.Method, Path: r.URL.Path})
		switch {
		case errors.Is(err, keyward.ErrInvalidKey):
			http.Error(w, "invalid key", http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

func callAPI(t *testing.T, base, raw string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/sessions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// seed creates the keys of a plausible account, so that the screenshot
// shows live and test keys, uses, metadata and a key being rolled.
func seed(t *testing.T, owner keyward.Owner) {
	t.Helper()
	ctx := context.Background()
	create := func(name string, m apikey.Mode, md map[string]string, scopes ...scope.Scope) (apikey.Secret, apikey.Record) {
		sec, rec, err := owner.Create(ctx, keyward.CreateParams{Name: name, Mode: m, Scopes: scope.NewSet(scopes...), Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		return sec, rec
	}
	create("Staging", apikey.Test, nil, scope.LinksRead, scope.SessionsRead, scope.SessionsWrite, scope.EventsRead)
	sec, _ := create("Production server", apikey.Live, map[string]string{"host": "api-1"}, scope.SessionsWrite, scope.SessionsRead, scope.WebhooksRead)
	if _, err := owner.Keys().Verify(ctx, sec.Reveal()); err != nil {
		t.Fatal(err)
	}
	_, woo := create("WooCommerce plugin", apikey.Live, map[string]string{"integration": "woocommerce"}, scope.SessionsWrite, scope.CustomersWrite)
	if _, _, err := owner.Rotate(ctx, woo.ID, keyward.RotateParams{Overlap: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, old := create("Old CI token", apikey.Test, nil, scope.EventsRead)
	if _, err := owner.Revoke(ctx, old.ID, keyward.RevokeParams{Reason: "Moved to OIDC"}); err != nil {
		t.Fatal(err)
	}
	sec, _ = create("Export script", apikey.Live, nil, scope.CustomersRead)
	if _, err := owner.Keys().ReportExposure(ctx, sec.Reveal(), keyward.Exposure{Source: "github",
		URL: "https://github.com/acme/scripts/blob/main/export.py"}); err != nil {
		t.Fatal(err)
	}
	if err := owner.Keys().Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// findChromium returns the Chromium to drive, or skips the test (fails it
// under CI=true) if there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("KEYWARD_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	needs.Check(t, "dashboard", "Chromium not found (set KEYWARD_CHROMIUM or run .ci/install-chromium); skipping the browser test", nil)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, with the
// flags this machine's closed network needs, and returns its context.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-device-scale-factor", "1"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, without a deadline: the first Run binds the
	// browser's life to its context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", chromium, err)
	}
	return ctx
}

// newTab opens a tab of the browser, with or without JavaScript, and
// returns its context, with a deadline; the context says which
// (scriptOn).
func newTab(t *testing.T, browser context.Context, javascript bool) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	step(t, ctx, "open a tab", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !javascript})
		return err
	}))
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel)
	return context.WithValue(ctx, scriptKey{}, javascript)
}

func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !a.Exists {
		t.Fatalf("reading %s[%s]: exists=%v, %v", sel, name, a.Exists, err)
	}
	return a.Value
}

func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// screenshot saves a PNG of the whole page to file and returns it.
func screenshot(t *testing.T, ctx context.Context, file string) []byte {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

// phoneScreenshot opens url in a viewport of 375 by 812 px, as a phone's,
// saves a PNG of what the screen shows to file, and returns it.
func phoneScreenshot(t *testing.T, ctx context.Context, url, file string) []byte {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 375, Height: 812, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		t.Fatalf("emulating a phone: %v", err)
	}
	defer func() {
		if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Errorf("clearing the viewport: %v", err)
		}
	}()
	step(t, ctx, "open "+url+" on a phone", chromedp.Navigate(url))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

// keepScreenshot writes png to dst, a path relative to the module root
// or absolute, unless dst is empty.
func keepScreenshot(t *testing.T, dst string, png []byte) {
	t.Helper()
	if dst == "" {
		return
	}
	if !filepath.IsAbs(dst) {
		dst = filepath.Join(moduleRoot(t), dst)
	}
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to %s", dst)
}

// moduleRoot returns the directory of go.mod, for paths given relative to
// the module root.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// TestBrowserKeyPage drives a key's page in Chromium, with JavaScript and
// without: an account whose key was rolled from an older one, edited by
// two operators and the command line, and verified every day for 30
// days, some requests refused after verification (all through the
// lifecycle, on a clock the test moves). From the list, which shows the
// key's requests of the last 24 hours, it opens the key's page and checks
// the history (kinds, actors, reasons, changes) and the chart: a bar per
// day with the counts, drawn, with its title, description and table, and
// the total. Then it renames the key in the page, and finds the edit at
// the top of the history.
//
// To refresh the README's screenshot of a key's page, run from the module
// root:
//
//	KEYWARD_KEY_SCREENSHOT=docs/dashboard-key.png go test ./dashboard -run TestBrowserKeyPage
func TestBrowserKeyPage(t *testing.T) {
	chromium := findChromium(t)
	artifacts := t.TempDir()
	if dir := os.Getenv("KEYWARD_BROWSER_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		artifacts = dir
	}

	clock := newTestClock(start.AddDate(0, 0, -60))
	keys := newKeys(t, keyward.WithClock(clock.Now))
	owner := keys.Owner("acct_acme")
	k := seedHistory(t, clock, owner)
	seed(t, keys.Owner("acct_other")) // never shown

	const cookieName, cookieValue = "operator_session", "e2e-session-9c1d"
	dash, err := dashboard.New(keys, func(r *http.Request) (dashboard.Operator, error) {
		if c, err := r.Cookie(cookieName); err != nil || c.Value != cookieValue {
			return dashboard.Operator{}, errors.New("no operator session")
		}
		return dashboard.Operator{Name: "ada@example.com", Owner: "acct_acme", Role: dashboard.Admin}, nil
	}, dashboard.WithTitle("Acme Checkout"), dashboard.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	browser := newBrowser(t, chromium)
	step(t, browser, "sign in", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: cookieName, Value: cookieValue, URL: srv.URL})
		return err
	}))

	for _, javascript := range []bool{true, false} {
		name, suffix := "with JavaScript", ""
		if !javascript {
			name, suffix = "without JavaScript", "-nojs"
		}
		t.Run(name, func(t *testing.T) {
			ctx := newTab(t, browser, javascript)
			count := func(sel string) int {
				t.Helper()
				n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
				if err != nil {
					t.Fatalf("counting %s: %v", sel, err)
				}
				return n
			}

			// The list: the key's requests of the last 24 hours, and a link
			// to its page.
			step(t, ctx, "open the list", chromedp.Navigate(srv.URL+"/dashboard/keys"))
			row := `tr[data-key-id="` + k.id + `"]`
			if got := text(t, ctx, row+" td.requests"); got != k.lastDay {
				t.Errorf("the list shows the key's requests of the last 24 h as %q, want %q", got, k.lastDay)
			}
			step(t, ctx, "open the key from the list", chromedp.Click(chromedp.CSS(row+" td.name a")),
				chromedp.WaitVisible(chromedp.ID("history")))
			if got, err := chromedp.Run(ctx, chromedp.Location()); err != nil || got != srv.URL+"/dashboard/keys/"+k.id {
				t.Errorf("the name links to %s (%v), want the key's page", got, err)
			}

			// Headings: the key's name, then its sections.
			headings, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("h1, h2")].map(h => h.tagName + " " + h.textContent.trim())`))
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"H1 " + k.name, "H2 Limits", "H2 Metadata", "H2 Requests, last 30 days", "H2 History"}; !slices.Equal(headings, want) {
				t.Errorf("the headings are %q, want %q", headings, want)
			}

			// The chart: 30 bars, oldest first, with the counts of each day,
			// drawn to scale.
			if n := count("#requests-chart g.day"); n != 30 {
				t.Fatalf("the chart has %d bars, want 30", n)
			}
			counts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#requests-chart g.day")].map(g => g.dataset.requests + "/" + g.dataset.refused)`))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(counts, k.days) {
				t.Errorf("the bars count (requests/refused)\n%v\nwant\n%v", counts, k.days)
			}
			if n, want := count("#requests-chart rect.refused"), k.refusedDays; n != want {
				t.Errorf("%d bars show refusals, want %d", n, want)
			}
			if n := count("#requests-chart rect.allowed"); n != 30 {
				t.Errorf("%d bars show allowed requests, want 30: every day has some", n)
			}
			// Drawn: the chart fills the card, and the busiest day's bar is
			// as high as the plot, nearly.
			size, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Width, Tallest float64 }](`({width: document.getElementById("requests-chart").getBoundingClientRect().width,
				tallest: Math.max(...[...document.querySelectorAll("#requests-chart g.day")].map(g => g.getBoundingClientRect().height))})`))
			if err != nil {
				t.Fatal(err)
			}
			if size.Width < 600 || size.Tallest < 100 {
				t.Errorf("the chart is drawn %.0f px wide, its tallest bar %.0f px high; want at least 600 and 100", size.Width, size.Tallest)
			}
			if got := attr(t, ctx, "#requests-chart", "role"); got != "img" {
				t.Errorf("the chart's role = %q", got)
			}
			if got := text(t, ctx, "#requests-total"); got != k.total {
				t.Errorf("the total reads %q, want %q", got, k.total)
			}
			desc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("requests-desc").textContent`))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(desc, k.descPrefix) {
				t.Errorf("the chart's description = %q, want it to start with %q", desc, k.descPrefix)
			}
			// The table, in a details element that opens without script.
			step(t, ctx, "open the table", chromedp.Click(chromedp.CSS(".chart-data summary")), chromedp.WaitVisible(chromedp.ID("requests-table")))
			if n := count("#requests-table tbody tr"); n != 30 {
				t.Errorf("the table has %d days, want 30", n)
			}
			if got := text(t, ctx, "#requests-table tfoot tr"); got != k.totalRow {
				t.Errorf("the table's total reads %q, want %q", got, k.totalRow)
			}

			// The history, newest first.
			rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.history tr.event")].map(tr =>
				[...tr.querySelectorAll("td.what, td.actor")].map(td => td.innerText.replace(/\s+/g, " ").trim()).join(" | "))`))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rows, k.history) {
				t.Errorf("the history reads\n%q\nwant\n%q", rows, k.history)
			}
			if got := text(t, ctx, "table.history tr.event:nth-last-child(3) td.details"); got != "Limits: none → changed to 100/min · 10k/day" {
				t.Errorf("the limits' change reads %q", got)
			}
			screenshot(t, ctx, filepath.Join(artifacts, "key"+suffix+".png"))
			checkA11y(t, ctx, "key with a month of requests and its history, the table open")

			// Rename the key in the page: the edit tops the history.
			renamed := k.name + " (EU)"
			if !javascript {
				renamed = k.name + " (US)"
			}
			step(t, ctx, "open the edit form", chromedp.Click(chromedp.ID("edit")), chromedp.WaitVisible(chromedp.ID("save")))
			step(t, ctx, "rename", chromedp.Clear(chromedp.ID("name")), chromedp.SendKeys(chromedp.ID("name"), renamed))
			if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("save"))); err != nil {
				t.Fatalf("saving: %v", err)
			}
			newest := "table.history tr.event:first-child"
			if what, by, details := text(t, ctx, newest+" td.what"), text(t, ctx, newest+" td.actor"), text(t, ctx, newest+" td.details"); what != "Edited" ||
				by != "ada@example.com operator" || !strings.HasPrefix(details, "Name: ") || !strings.HasSuffix(details, "changed to "+renamed) {
				t.Errorf("after the rename the history's newest row reads %q, %q, %q", what, by, details)
			}
			if javascript {
				// The README's screenshot: the key's page with its history
				// and a month of requests.
				shot := screenshot(t, ctx, filepath.Join(artifacts, "dashboard-key.png"))
				keepScreenshot(t, os.Getenv("KEYWARD_KEY_SCREENSHOT"), shot)
			}
			// The other tab sees the key as this one left it.
			k.name = renamed
			k.history = append([]string{"Edited | ada@example.com operator"}, k.history...)
		})
	}
}

// A seededKey is what seedHistory made, as the pages should show it.
type seededKey struct {
	id, name    string
	days        []string // the chart's bars, oldest first: "requests/refused"
	refusedDays int      // the days with refusals
	lastDay     string   // the list's requests of the last 24 hours
	total       string   // the text above the chart
	totalRow    string   // the table's total row
	descPrefix  string   // the chart's description starts so
	history     []string // the history's rows, newest first: "what | actor"
}

// seedHistory makes the key of TestBrowserKeyPage, moving clock from 60
// days before start to start: an older key rolled into it 35 days ago
// by ada, edits by grace, ada and the command line, and requests every
// day of the last 30, at 08:00 UTC, with refusals on some days.
func seedHistory(t *testing.T, clock *testClock, owner keyward.Owner) seededKey {
	t.Helper()
	keys := owner.Keys()
	as := func(typ, id string) context.Context {
		return audit.WithActor(context.Background(), audit.Actor{Type: typ, ID: id})
	}
	ada, grace := as(audit.TypeOperator, "ada@example.com"), as(audit.TypeOperator, "grace@example.com")
	// Other keys of the account, for the list.
	if _, _, err := owner.Create(ada, keyward.CreateParams{Name: "Staging", Mode: apikey.Test,
		Scopes: scope.NewSet(scope.LinksRead, scope.SessionsWrite)}); err != nil {
		t.Fatal(err)
	}
	_, old, err := owner.Create(ada, keyward.CreateParams{Name: "Storefront", Mode: apikey.Live,
		Scopes: scope.NewSet(scope.SessionsWrite, scope.SessionsRead, scope.LinksRead, scope.CustomersWrite), Metadata: map[string]string{"host": "shop-1"}})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * 24 * time.Hour) // 35 days before start
	sec, rec, err := owner.Rotate(ada, old.ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * 24 * time.Hour) // 20 days before
	if _, err := owner.Update(grace, rec.ID, keyward.UpdateParams{Name: "Storefront (web)",
		Scopes: scope.NewSet(scope.SessionsWrite, scope.SessionsRead, scope.LinksRead)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(8 * 24 * time.Hour) // 12 days before
	policy := &apikey.Policy{Rate: apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Quota: apikey.Quota{Requests: 10000, Per: apikey.Day}}
	if _, err := owner.Update(ada, rec.ID, keyward.UpdateParams{Policy: policy}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(7 * 24 * time.Hour) // 5 days before
	if _, err := owner.Update(as(audit.TypeCLI, "deploy@ci-runner"), rec.ID, keyward.UpdateParams{
		ExpiresAt: start.AddDate(1, 0, 0).Truncate(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// 30 days of requests, the last today, each at 08:00 UTC: fewer at
	// weekends, and refusals on some days, a burst of them once.
	clock.micros.Store(start.AddDate(0, 0, -30).Truncate(24 * time.Hour).Add(8 * time.Hour).UnixMicro())
	k := seededKey{id: rec.ID.String(), name: "Storefront (web)"}
	raw := sec.Reveal()
	var total, refusedTotal int64
	for i := range 30 {
		clock.Advance(24 * time.Hour)
		day := clock.Now()
		n := 180 + 35*(i%5) + 6*i
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			n /= 3
		}
		refused := 0
		switch {
		case i == 21:
			refused = 140 // a client over its rate limit
		case i%6 == 2:
			refused = n / 15
		}
		for j := range n {
			got, err := keys.Verify(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if j < refused {
				keys.CountRefusal(context.Background(), got.ID, keyward.OutcomeLimited)
			}
		}
		if err := keys.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		k.days = append(k.days, fmt.Sprintf("%d/%d", n, refused))
		if refused > 0 {
			k.refusedDays++
		}
		total += int64(n)
		refusedTotal += int64(refused)
		k.lastDay = strconv.Itoa(n)
		if refused > 0 {
			k.lastDay += " " + strconv.Itoa(refused) + " refused"
		}
	}
	clock.micros.Store(start.UnixMicro()) // 09:26:53, after today's requests
	k.total = fmt.Sprintf("%s requests in the last 30 days (UTC), %d of them refused after verification.", thousandsOf(total), refusedTotal)
	k.totalRow = fmt.Sprintf("Total %s %s %d", thousandsOf(total), thousandsOf(total-refusedTotal), refusedTotal)
	k.descPrefix = fmt.Sprintf("%s requests from %s to %s (UTC), %d of them refused after verification; the busiest day was ",
		thousandsOf(total), start.AddDate(0, 0, -29).Format(time.DateOnly), start.Format(time.DateOnly), refusedTotal)
	k.history = []string{
		"Edited | deploy@ci-runner command line",
		"Edited | ada@example.com operator",
		"Edited | grace@example.com operator",
		"Created | ada@example.com operator",
	}
	return k
}

// thousandsOf writes n with commas between thousands, as the pages do.
func thousandsOf(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
