package dashboard_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axe-core, the accessibility engine, as released on npm and kept in
// testdata/axe-core (its README says where from, and how to update it).
// The browser tests inject it into each page they check, after checking
// the file against axeSHA256.
const (
	axeVersion = "4.14.1"
	axeFile    = "testdata/axe-core/axe.min.js"
	axeSHA256  = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
)

// The viewports each state is checked at: a desktop's, and a phone's.
var (
	desktop = viewport{Width: 1280, Height: 900}
	phone   = viewport{Width: 375, Height: 740, Mobile: true}
)

type viewport struct {
	Width, Height int64
	Mobile        bool
}

func (v viewport) String() string { return fmt.Sprintf("%d px", v.Width) }

// checkAxeSource returns an error unless src is the axe.min.js of
// axeVersion, byte for byte.
func checkAxeSource(src []byte) error {
	sum := sha256.Sum256(src)
	if got := hex.EncodeToString(sum[:]); got != axeSHA256 {
		return fmt.Errorf("%s has sha256 %s (%d bytes), want %s, the axe.min.js of axe-core %s: "+
			"the file is damaged or was changed; restore it as testdata/axe-core/README.md says", axeFile, got, len(src), axeSHA256, axeVersion)
	}
	return nil
}

var axeSource = sync.OnceValues(func() (string, error) {
	src, err := os.ReadFile(axeFile)
	if err != nil {
		return "", err
	}
	if err := checkAxeSource(src); err != nil {
		return "", err
	}
	return string(src), nil
})

// TestAxeCoreVendored checks the copy of axe-core the browser tests use,
// without a browser: its checksum, its version, its licence, and that its
// README records them.
func TestAxeCoreVendored(t *testing.T) {
	src, err := os.ReadFile(axeFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAxeSource(src); err != nil {
		t.Fatal(err)
	}
	if banner := "/*! axe v" + axeVersion + "\n"; !strings.HasPrefix(string(src), banner) {
		t.Errorf("%s does not start with %q", axeFile, banner)
	}
	if err := checkAxeSource(src[:len(src)-1]); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("a truncated axe.min.js passes the check: %v", err)
	}
	licence, err := os.ReadFile("testdata/axe-core/LICENSE")
	if err != nil || !strings.HasPrefix(string(licence), "Mozilla Public License, version 2.0") {
		t.Errorf("testdata/axe-core/LICENSE is not the MPL 2.0 (%v)", err)
	}
	readme, err := os.ReadFile("testdata/axe-core/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{axeVersion, axeSHA256, "https://registry.npmjs.org/axe-core/-/axe-core-" + axeVersion + ".tgz"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("testdata/axe-core/README.md does not say %s", want)
		}
	}
}

// scriptKey is the context key of whether a tab runs the page's
// JavaScript (newTab sets it).
type scriptKey struct{}

func scriptOn(ctx context.Context) bool {
	on, ok := ctx.Value(scriptKey{}).(bool)
	if !ok {
		panic("a tab's context without scriptKey: open tabs with newTab")
	}
	return on
}

// An axeReport is what auditPage found on a page.
type axeReport struct {
	URL        string
	Version    string // axe-core's, as it says
	Script     bool   // the page's script ran: it marks <html class="js">
	Styled     bool   // the page's stylesheet applies
	NoScript   int    // <noscript> elements
	Scroll     int    // the document's scrollWidth
	Client     int    // and its clientWidth: the viewport's width
	Wide       []string
	Violations []axeViolation
}

type axeViolation struct {
	ID, Impact, Help, HelpURL string
	Nodes                     []struct {
		Target  []string
		HTML    string
		Summary string
	}
}

// axeRun runs axe-core on the document, with its default rules (WCAG
// 2.0, 2.1 and 2.2 A and AA, and best practices; not those of AAA, nor
// the deprecated ones) and target-size (WCAG 2.2 AA's 2.5.8, which
// axe-core leaves off by default), and measures how wide the page is.
// The page's own state is read after the run.
const axeRun = `(async () => {
	const r = await axe.run(document, {resultTypes: ["violations"], rules: {"target-size": {enabled: true}}});
	const de = document.documentElement, w = de.clientWidth;
	const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
		(typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\s+/).join(".") : "");
	return {
		url: location.href,
		version: axe.version,
		script: de.classList.contains("js"),
		styled: [...document.querySelectorAll('link[rel="stylesheet"]')].some(l => { try { return l.sheet.cssRules.length > 0; } catch { return false; } }),
		noScript: document.getElementsByTagName("noscript").length,
		scroll: de.scrollWidth,
		client: w,
		wide: [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > w + 0.5).slice(0, 5)
			.map(e => name(e) + " to " + Math.round(e.getBoundingClientRect().right) + " px"),
		violations: r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, helpURL: v.helpUrl,
			nodes: v.nodes.map(n => ({
				target: n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)),
				html: n.html, summary: n.failureSummary || ""}))})),
	};
})()`

// auditPage runs axe-core on the page the tab shows, at the viewport v,
// within a deadline.
//
// A tab without JavaScript (emulation.SetScriptExecutionDisabled) loads
// its pages without running their scripts; the DevTools protocol still
// evaluates expressions there, but timers do not fire, and axe.run waits
// on them. So once the page has loaded, auditPage turns scripts on for
// the time of the run, and off again. Turning them on runs nothing of
// the page: its scripts were skipped as it loaded, and are not run later,
// so axe checks the DOM and the styles of the page without JavaScript.
// The report's Script field says whether the page's script ran, before
// or during the run; TestBrowserAccessibility's harness test checks all
// this on a page whose script fixes a violation.
func auditPage(ctx context.Context, v viewport) (rep axeReport, err error) {
	src, err := axeSource()
	if err != nil {
		return rep, err
	}
	// Whatever happens, the tab is left as it was: with its own viewport,
	// and without scripts if it had none. That needs a context of its own,
	// as the run may have timed out.
	restore := func(name string, f func(context.Context) error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if e := f(ctx); e != nil && err == nil {
			err = fmt.Errorf("%s after axe: %w", name, e)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: v.Width, Height: v.Height, DeviceScaleFactor: 1, Mobile: v.Mobile}); err != nil {
		return rep, fmt.Errorf("emulating a %v viewport: %w", v, err)
	}
	defer restore("clearing the viewport", func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	})
	if !scriptOn(ctx) {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
			return rep, fmt.Errorf("turning scripts on for axe: %w", err)
		}
		defer restore("turning scripts off again", func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		})
	}
	version, err := chromedp.Run(ctx, chromedp.Evaluate[string](`typeof axe === "object" ? axe.version : ""`))
	if err != nil {
		return rep, err
	}
	if version == "" {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src+"\n//# sourceURL=axe.min.js")); err != nil {
			return rep, fmt.Errorf("injecting axe-core: %w", err)
		}
	}
	if rep, err = chromedp.Run(ctx, chromedp.Evaluate[axeReport](axeRun, chromedp.EvalAwaitPromise)); err != nil {
		return rep, fmt.Errorf("running axe-core: %w", err)
	}
	if rep.Version != axeVersion {
		return rep, fmt.Errorf("axe-core says it is version %q, want %s", rep.Version, axeVersion)
	}
	return rep, nil
}

// checkA11y checks the page the tab shows, in the state named, at a
// desktop's width and at a phone's (375 px): axe-core must find no
// violation, and the page must not scroll sideways. The page must also
// have its stylesheet, and have run its script, or not, as the tab does:
// so a tab without JavaScript is known to check the page as it is
// without it.
func checkA11y(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	checkPage(t, ctx, state, true)
}

// checkPage is checkA11y, for a page that has its assets, or that has
// none: the dashboard serves its stylesheet and script to operators only,
// so the page that says sign-in is required has neither.
func checkPage(t *testing.T, ctx context.Context, state string, assets bool) {
	t.Helper()
	js := "with JavaScript"
	if !scriptOn(ctx) {
		js = "without JavaScript"
	}
	for _, v := range []viewport{desktop, phone} {
		rep, err := auditPage(ctx, v)
		if err != nil {
			t.Fatalf("%s at %v, %s: %v", state, v, js, err)
		}
		where := fmt.Sprintf("%s at %v, %s (%s)", state, v, js, rep.URL)
		switch {
		case !assets && (rep.Styled || rep.Script):
			t.Errorf("%s: the page has its stylesheet = %v, ran its script = %v; want neither, as the assets are for operators", where, rep.Styled, rep.Script)
		case assets && !rep.Styled:
			t.Errorf("%s: the page's stylesheet does not apply", where)
		case assets && rep.Script != scriptOn(ctx):
			t.Errorf("%s: the page's script ran = %v, want %v", where, rep.Script, scriptOn(ctx))
		}
		if rep.NoScript > 0 && !scriptOn(ctx) {
			// Scripts are on during the run, and with them a browser
			// hides what <noscript> holds: axe would not see it.
			t.Errorf("%s: the page has <noscript>, which the check without JavaScript does not see: check it otherwise", where)
		}
		if rep.Client != int(v.Width) {
			t.Errorf("%s: the viewport is %d px wide, want %d", where, rep.Client, v.Width)
		}
		if rep.Scroll > rep.Client {
			t.Errorf("%s: the page scrolls sideways, %d px wide in %d px; past the edge: %q", where, rep.Scroll, rep.Client, rep.Wide)
		}
		if len(rep.Violations) > 0 {
			t.Errorf("%s: axe-core %s found %d violations:\n%s", where, rep.Version, len(rep.Violations), formatViolations(rep.Violations))
		}
	}
}

func formatViolations(vs []axeViolation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %s (%s): %s, %s\n", v.ID, v.Impact, v.Help, v.HelpURL)
		for _, n := range v.Nodes {
			html := n.HTML
			if len(html) > 300 {
				html = html[:300] + "…"
			}
			fmt.Fprintf(&b, "    at %s: %s\n", strings.Join(n.Target, " "), html)
			for _, line := range strings.Split(n.Summary, "\n") {
				if line = strings.TrimSpace(line); line != "" {
					fmt.Fprintf(&b, "      %s\n", line)
				}
			}
		}
	}
	return b.String()
}

// testAxeHarness checks auditPage itself, on pages of its own: without
// JavaScript, it checks the page as it is without it (its script would
// have fixed the violation), and with JavaScript after the script ran;
// it runs target-size; and it sees a page that scrolls sideways on a
// phone.
func testAxeHarness(t *testing.T, browser context.Context) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fix.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.documentElement.classList.add("js"); document.querySelector("img").alt = "Logo";`)
		case "/small":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Small</title></head><body><main><h1>Small</h1>`+
				`<button style="width: 10px; height: 10px; padding: 0; margin: 0" aria-label="Up"></button>`+
				`<button style="width: 10px; height: 10px; padding: 0; margin: 0" aria-label="Down"></button></main></body></html>`)
		case "/wide":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1">`+
				`<title>Wide</title></head><body><main><h1>Wide</h1><p style="width: 600px">Six hundred pixels.</p></main></body></html>`)
		default:
			// The dashboard's policy: no inline script, nor eval.
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; img-src 'self'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1">`+
				`<title>Fixable</title><script src="/fix.js" defer></script></head><body><main><h1>Fixable</h1><img src="/logo.png" width="10" height="10"></main></body></html>`)
		}
	}))
	defer srv.Close()
	for _, javascript := range []bool{true, false} {
		ctx := newTab(t, browser, javascript)
		step(t, ctx, "open the page", chromedp.Navigate(srv.URL+"/"))
		rep, err := auditPage(ctx, desktop)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, v := range rep.Violations {
			ids = append(ids, v.ID)
		}
		if javascript && (!rep.Script || len(ids) != 0) {
			t.Errorf("with JavaScript: the page's script ran = %v, violations %q; want true, none", rep.Script, ids)
		}
		if !javascript && (rep.Script || strings.Join(ids, " ") != "image-alt") {
			t.Errorf("without JavaScript: the page's script ran = %v, violations %q; want false, image-alt", rep.Script, ids)
		}
		// Scripts are off again: a page loaded now does not run its own.
		step(t, ctx, "open the page again", chromedp.Navigate(srv.URL+"/"))
		if ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.classList.contains("js")`)); err != nil || ran != javascript {
			t.Errorf("after the audit a page's script ran = %v (%v), want %v", ran, err, javascript)
		}

		step(t, ctx, "open the page of small buttons", chromedp.Navigate(srv.URL+"/small"))
		if rep, err := auditPage(ctx, desktop); err != nil {
			t.Fatal(err)
		} else if len(rep.Violations) != 1 || rep.Violations[0].ID != "target-size" {
			t.Errorf("on a page of small buttons axe-core found %+v, want target-size", rep.Violations)
		}

		step(t, ctx, "open the wide page", chromedp.Navigate(srv.URL+"/wide"))
		for _, v := range []viewport{desktop, phone} {
			rep, err := auditPage(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			if wide := rep.Scroll > rep.Client; wide != (v == phone) || rep.Client != int(v.Width) {
				t.Errorf("the wide page at %v: scrolls sideways = %v (%d px in %d)", v, wide, rep.Scroll, rep.Client)
			}
		}
	}
}
