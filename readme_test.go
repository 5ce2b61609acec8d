package keyward_test

// The README cannot rot: every code block in it is checked here. Go blocks
// must be copied from a file named in the comment before them (code that
// is compiled, and run as an example or a test); shell blocks may hold only
// commands that CI or a test runs; the example response and the errors
// table must match what the middleware answers.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/needs"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// A block is a fenced code block of the README.
type block struct {
	info    string // the language after the fence
	marker  string // the HTML comment on the line before the fence, if any
	content string
	line    int // of the opening fence
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	lines := strings.Split(readme(t), "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		b := block{info: strings.TrimSpace(info), line: i + 1}
		if i > 0 {
			if m, ok := strings.CutPrefix(lines[i-1], "<!--"); ok {
				b.marker = strings.TrimSpace(strings.TrimSuffix(m, "-->"))
			}
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("README.md:%d: unclosed code block", b.line)
		}
		b.content = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		t.Fatal("no code blocks in README.md")
	}
	return blocks
}

func TestReadmeBlocksAreChecked(t *testing.T) {
	for _, b := range readmeBlocks(t) {
		if !slices.Contains([]string{"go", "sh", "http"}, b.info) {
			t.Errorf("README.md:%d: a %q block, which no test checks; use go, sh or http", b.line, b.info)
		}
	}
}

// TestReadmeGoBlocks checks that each Go block is a verbatim excerpt,
// indentation aside, of the file its marker names.
func TestReadmeGoBlocks(t *testing.T) {
	n := 0
	for _, b := range readmeBlocks(t) {
		if b.info != "go" {
			continue
		}
		n++
		path, ok := strings.CutPrefix(b.marker, "code: ")
		if !ok {
			t.Errorf("README.md:%d: a Go block needs <!-- code: path --> on the line before it", b.line)
			continue
		}
		if !strings.HasSuffix(path, ".go") {
			t.Errorf("README.md:%d: %s is not a Go file", b.line, path)
			continue
		}
		src, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		if !containsExcerpt(string(src), b.content) {
			t.Errorf("README.md:%d: this Go block is not in %s; update one from the other:\n%s", b.line, path, b.content)
		}
	}
	if n == 0 {
		t.Error("no Go blocks found")
	}
}

// containsExcerpt reports whether excerpt's lines appear consecutively in
// src, each indented by the same number of extra tabs.
func containsExcerpt(src, excerpt string) bool {
	lines := strings.Split(src, "\n")
	want := strings.Split(excerpt, "\n")
	for start := range lines {
		if start+len(want) > len(lines) {
			return false
		}
		first := lines[start]
		trimmed := strings.TrimLeft(first, "\t")
		extra := len(first) - len(trimmed) - (len(want[0]) - len(strings.TrimLeft(want[0], "\t")))
		if extra < 0 || trimmed != strings.TrimLeft(want[0], "\t") {
			continue
		}
		indent := strings.Repeat("\t", extra)
		match := true
		for j, w := range want {
			got := lines[start+j]
			if w == "" && got == "" || got == indent+w {
				continue
			}
			match = false
			break
		}
		if match {
			return true
		}
	}
	return false
}

// TestReadmeShellBlocks checks that the README's commands are the ones
// that CI and the tests run.
func TestReadmeShellBlocks(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, b := range readmeBlocks(t) {
		if b.info != "sh" {
			continue
		}
		for _, l := range strings.Split(b.content, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				commands = append(commands, l)
			}
		}
	}
	for _, c := range commands {
		switch {
		case c == readmeTestCommand:
			// The test command is what CI runs, with flags that need more
			// than Go (the race detector needs cgo) after it.
			if !slices.ContainsFunc(strings.Split(string(ci), "\n"), func(l string) bool {
				return l == c || strings.HasPrefix(l, c+" -")
			}) {
				t.Errorf(".ci/run does not run the README's test command %q", c)
			}
		case c == "KEYWARD_SCREENSHOT=docs/dashboard.png go test ./dashboard -run TestBrowser":
			// CI runs TestBrowser; with the variable set, it also writes the
			// screenshot that the README shows.
			src, err := os.ReadFile(filepath.Join("dashboard", "browser_test.go"))
			if err != nil || !strings.Contains(string(src), "func TestBrowser(") || !strings.Contains(string(src), `os.Getenv("KEYWARD_SCREENSHOT")`) {
				t.Errorf("%q: dashboard/browser_test.go has no TestBrowser that reads KEYWARD_SCREENSHOT: %v", c, err)
			}
			if !strings.Contains(readme(t), "](docs/dashboard.png)") {
				t.Errorf("%q: the README does not show docs/dashboard.png", c)
			}
		case examplesCheckout(c):
			// examples/checkout's TestCommand builds the package and runs
			// each command of its readmeCommands, as the shell would split it.
			src, err := os.ReadFile(filepath.Join("examples", "checkout", "main.go"))
			if err != nil || !strings.Contains(string(src), "\npackage main\n") {
				t.Errorf("%q: examples/checkout is not a main package: %v", c, err)
			}
			tests, err := os.ReadFile(filepath.Join("examples", "checkout", "main_test.go"))
			if err != nil || !strings.Contains(string(tests), "func TestCommand(") {
				t.Errorf("%q: no TestCommand in examples/checkout runs it", c)
			}
			_, list, _ := strings.Cut(string(tests), "\nvar readmeCommands = []string{\n")
			list, _, _ = strings.Cut(list, "\n}\n")
			if !slices.Contains(strings.Split(list, "\n"), "\t"+strconv.Quote(c)+",") {
				t.Errorf("%q: not in readmeCommands in examples/checkout/main_test.go, so TestCommand does not run it", c)
			}
		case strings.HasPrefix(c, "for i in $(seq 11); do curl "):
			runCurlLoop(t, c)
		case strings.HasPrefix(c, "keyward ") || strings.Contains(c, "$(keyward ") || strings.Contains(c, "| keyward ") ||
			strings.HasPrefix(c, "export KEYWARD_"):
			// cmd/keyward's testReadme runs the "Command line" section's
			// block verbatim, with the built command on PATH.
			src, err := os.ReadFile(filepath.Join("cmd", "keyward", "main_test.go"))
			if err != nil || !strings.Contains(string(src), `"\n## Command line\n"`) || !strings.Contains(string(src), "func testReadme(") {
				t.Errorf("%q: cmd/keyward's tests do not run the README's Command line block: %v", c, err)
			}
			_, section, _ := strings.Cut(readme(t), "\n## Command line\n")
			section, _, _ = strings.Cut(section, "\n## ")
			if !strings.Contains(section, "\n"+c+"\n") {
				t.Errorf("%q: a keyward command outside the Command line section, which no test runs", c)
			}
		default:
			t.Errorf("README command %q is not run by CI or any test; add it to TestReadmeShellBlocks with the check that covers it", c)
		}
	}
	for _, want := range []string{"go run ./examples/checkout", readmeTestCommand} {
		if !slices.Contains(commands, want) {
			t.Errorf("the README lacks the command %q", want)
		}
	}
}

// readmeTestCommand is the README's command that runs every test. From
// the root of the workspace, ./... stops at the nested modules, so it
// names each module that has tests (see TestReadmeTestCommandCoversModules).
const readmeTestCommand = "go test ./... ./keywardgrpc/... ./keywardotel/... ./examples/checkout/..."

// workspaceModules returns the directories of the modules that go.work
// uses, as patterns from the root: "./..." for the root module,
// "./keywardgrpc/..." for a nested one.
func workspaceModules(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("go.work")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	inUse := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "use (":
			inUse = true
			continue
		case inUse && l == ")":
			inUse = false
			continue
		case strings.HasPrefix(l, "use "):
			l = strings.TrimSpace(strings.TrimPrefix(l, "use "))
		case !inUse:
			continue
		}
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		if l == "." {
			dirs = append(dirs, "./...")
		} else {
			dirs = append(dirs, "./"+strings.TrimPrefix(l, "./")+"/...")
		}
	}
	if len(dirs) == 0 {
		t.Fatal("go.work uses no module")
	}
	return dirs
}

// hasTests reports whether a module, by its pattern, holds a test, an
// example or a fuzz test.
func hasTests(t *testing.T, pattern string) bool {
	t.Helper()
	root := strings.TrimSuffix(strings.TrimSuffix(pattern, "..."), "/")
	found := false
	err := filepath.WalkDir(filepath.FromSlash(root), func(path string, d os.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && path != filepath.FromSlash(root) {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range testFuncRE.FindAllSubmatch(src, -1) {
			found = found || string(m[1]) != "TestMain"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

var testFuncRE = regexp.MustCompile(`(?m)^func ((?:Test|Example|Fuzz)\w*)\(`)

// TestReadmeTestCommandCoversModules checks that the README's test
// command runs the tests of every module of the workspace that has tests,
// and that .ci/run vets every module.
func TestReadmeTestCommandCoversModules(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	patterns := strings.Fields(strings.TrimPrefix(readmeTestCommand, "go test "))
	var vet []string
	for _, l := range strings.Split(string(ci), "\n") {
		if rest, ok := strings.CutPrefix(l, "go vet "); ok {
			vet = append(vet, strings.Fields(rest)...)
		}
	}
	for _, m := range workspaceModules(t) {
		if !slices.Contains(patterns, m) && hasTests(t, m) {
			t.Errorf("the README's test command %q does not run the tests of the module %s", readmeTestCommand, m)
		}
		if !slices.Contains(vet, m) {
			t.Errorf(".ci/run does not vet the module %s", m)
		}
	}
	for _, p := range patterns {
		if !slices.Contains(workspaceModules(t), p) {
			t.Errorf("the README's test command names %s, which is not a module of go.work", p)
		}
	}
}

// examplesCheckout reports whether c runs the checkout example.
func examplesCheckout(c string) bool {
	rest, ok := strings.CutPrefix(c, "go run ./examples/checkout")
	return ok && (rest == "" || rest[0] == ' ')
}

// TestReadmeLinks checks that every relative link and image of the README
// leads to a file of the repository, and each #fragment to a heading of
// its Markdown file.
func TestReadmeLinks(t *testing.T) {
	n := 0
	for _, target := range markdownLinks(readme(t)) {
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		n++
		path, frag, _ := strings.Cut(target, "#")
		file := "README.md"
		if path != "" {
			file = filepath.FromSlash(path)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Errorf("README link %q: %v", target, err)
			continue
		}
		if frag == "" {
			continue
		}
		if fi.IsDir() || !strings.HasSuffix(file, ".md") {
			t.Errorf("README link %q: a fragment needs a Markdown file", target)
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(headingAnchors(string(src)), frag) {
			t.Errorf("README link %q: %s has no heading with that anchor", target, file)
		}
	}
	if n == 0 {
		t.Error("no relative links found")
	}
}

// outsideFences returns the lines of a Markdown text outside fenced code
// blocks.
func outsideFences(md string) []string {
	var out []string
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// markdownLinks returns the targets of the inline links and images of a
// Markdown text, outside code blocks and code spans.
func markdownLinks(md string) []string {
	var targets []string
	for _, l := range outsideFences(md) {
		// Drop code spans: `[x](y)` in backquotes is not a link.
		parts := strings.Split(l, "`")
		for i := 0; i < len(parts); i += 2 {
			for _, m := range linkRE.FindAllStringSubmatch(parts[i], -1) {
				targets = append(targets, m[1])
			}
		}
	}
	return targets
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown text: lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(md string) []string {
	var anchors []string
	for _, l := range outsideFences(md) {
		text, ok := strings.CutPrefix(strings.TrimLeft(l, "#"), " ")
		if !ok || !strings.HasPrefix(l, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchors = append(anchors, b.String())
	}
	return anchors
}

// fixture is a lifecycle over a store that can fail, with keys of each
// kind, and a handler that answers 200 behind the middleware.
type fixture struct {
	keys              *keyward.Keys
	store             *failingStore
	read, write, live keywardtest.Key
	revoked, expired  keywardtest.Key
	office            keywardtest.Key // allowed from 203.0.113.0/24 only
	slow              keywardtest.Key // allowed 1 request a minute
	demo              keywardtest.Key // the example's all-scopes limit: 60 a minute, 10 at once
}

type failingStore struct {
	*memory.Store
	down bool
}

func (s *failingStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.down {
		return apikey.Record{}, errors.New("connection refused")
	}
	return s.Store.GetByHash(ctx, h)
}

// GetByHashLocal sends lookups to GetByHash while the store is down.
func (s *failingStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	if s.down {
		return nil, store.ErrWouldBlock
	}
	return s.Store.GetByHashLocal(h)
}

func newFixture(t *testing.T) *fixture {
	now := time.Now()
	f := &fixture{store: &failingStore{Store: memory.New()}}
	keys, err := keyward.New(f.store, keyward.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	f.keys = keys
	acct := keys.Owner(keyward.DefaultOwner)
	issue := func(mode apikey.Mode, s scope.Scope, expires time.Time) keywardtest.Key {
		return keywardtest.Issue(t, acct, keyward.CreateParams{Mode: mode, Scopes: scope.NewSet(s), ExpiresAt: expires})
	}
	f.read = issue(apikey.Test, scope.SessionsRead, time.Time{})
	f.write = issue(apikey.Test, scope.SessionsWrite, time.Time{})
	f.live = issue(apikey.Live, scope.SessionsWrite, time.Time{})
	f.revoked = issue(apikey.Test, scope.SessionsWrite, time.Time{})
	if _, err := acct.Revoke(context.Background(), f.revoked.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	f.expired = issue(apikey.Test, scope.SessionsWrite, now.Add(time.Minute))
	limited := func(p *apikey.Policy) keywardtest.Key {
		return keywardtest.Issue(t, acct, keyward.CreateParams{Mode: apikey.Test, Scopes: scope.NewSet(scope.SessionsWrite), Policy: p})
	}
	f.office = limited(&apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	f.slow = limited(&apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Minute}})
	f.demo = limited(&apikey.Policy{Rate: apikey.RateLimit{Requests: 60, Period: time.Minute, Burst: 10}})
	now = now.Add(time.Hour)
	return f
}

// downLimiter is a rate limiter whose backend is down.
type downLimiter struct{}

func (downLimiter) Allow(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error) {
	return limit.Decision{}, errors.New("redis: connection refused")
}

func (downLimiter) Peek(context.Context, uuid.UUID, *apikey.Policy, time.Time) (limit.Decision, error) {
	return limit.Decision{}, errors.New("redis: connection refused")
}

// serve sends a request with the given Authorization values to a route
// that requires sessions:write.
func (f *fixture) serve(auth []string, opts ...middleware.Option) *httptest.ResponseRecorder {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := middleware.Authenticate(f.keys, opts...)(middleware.RequireScopes(scope.SessionsWrite)(ok))
	r := httptest.NewRequest("POST", "/api/v1/sessions", nil)
	if auth != nil {
		r.Header["Authorization"] = auth
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

// errorCases produce, for each row of the README's errors table (by the
// start of its first cell), every request that row describes.
var errorCases = map[string]func(f *fixture) []*httptest.ResponseRecorder{
	"No key": func(f *fixture) []*httptest.ResponseRecorder {
		return []*httptest.ResponseRecorder{f.serve(nil), f.serve([]string{"Basic dXNlcjpwYXNz"})}
	},
	"Malformed header": func(f *fixture) []*httptest.ResponseRecorder {
		k := f.write.Raw
		return []*httptest.ResponseRecorder{
			f.serve([]string{"Bearer " + k, "Bearer " + k}),     // repeated
			f.serve([]string{"Bearer " + k + " " + f.live.Raw}), // two credentials
			f.serve([]string{"Bearer"}),                         // Bearer without a key
			f.serve([]string{"Bearer " + k + "\x01"}),           // control characters
			f.serve([]string{"Bearer " + strings.Repeat("a", 1025)}),
		}
	},
	"Malformed, unknown, revoked or expired key": func(f *fixture) []*httptest.ResponseRecorder {
		sec, _ := apikey.Generate(apikey.Test)
		return []*httptest.ResponseRecorder{
			f.serve([]string{"Bearer ck_test_short"}),
			f.serve([]string{"Bearer " + sec.Reveal()}),
			f.serve([]string{"Bearer " + f.revoked.Raw}),
			f.serve([]string{"Bearer " + f.expired.Raw}),
		}
	},
	"Key of the wrong mode": func(f *fixture) []*httptest.ResponseRecorder {
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.write.Raw}, middleware.WithMode(apikey.Live))}
	},
	"Key lacks a scope": func(f *fixture) []*httptest.ResponseRecorder {
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.read.Raw})}
	},
	"Key store unavailable": func(f *fixture) []*httptest.ResponseRecorder {
		f.store.down = true
		defer func() { f.store.down = false }()
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.write.Raw})}
	},
	"Client outside the key's allowed networks": func(f *fixture) []*httptest.ResponseRecorder {
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.office.Raw})} // from httptest's 192.0.2.1
	},
	"Key over its rate limit or quota": func(f *fixture) []*httptest.ResponseRecorder {
		lim := middleware.WithLimiter(limit.NewMemory())
		f.serve([]string{"Bearer " + f.slow.Raw}, lim)
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.slow.Raw}, lim)}
	},
	"Rate limiter unavailable": func(f *fixture) []*httptest.ResponseRecorder {
		return []*httptest.ResponseRecorder{f.serve([]string{"Bearer " + f.slow.Raw},
			middleware.WithLimiter(downLimiter{}), middleware.WithLimiterFailure(limit.Refuse))}
	},
}

// TestReadmeErrorsTable checks each row of the errors table against the
// middleware's responses to the requests it describes.
func TestReadmeErrorsTable(t *testing.T) {
	text := readme(t)
	_, section, ok := strings.Cut(text, "\n## Errors\n")
	if !ok {
		t.Fatal("no Errors section in README.md")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// The table's challenges are those of the default realm, which the
	// text names; the example's own realm is named too.
	if !strings.Contains(section, "the default realm, `"+middleware.DefaultRealm+"`") {
		t.Errorf("the Errors section does not name the default realm, %q", middleware.DefaultRealm)
	}
	if src, err := os.ReadFile(filepath.Join("examples", "checkout", "main.go")); err != nil {
		t.Error(err)
	} else if m := regexp.MustCompile(`middleware\.WithRealm\("([^"]+)"\)`).FindSubmatch(src); m == nil ||
		!strings.Contains(section, "the example's is `"+string(m[1])+"`") {
		t.Errorf("the Errors section does not name the example's realm (WithRealm in examples/checkout/main.go)")
	}
	var rows [][]string
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 4 {
			t.Fatalf("errors table row with %d cells: %s", len(cells), l)
		}
		if cells[0] == "Case" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, cells)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		var name string
		for k := range errorCases {
			if strings.HasPrefix(row[0], k) {
				name = k
			}
		}
		if name == "" {
			t.Errorf("errors table row %q has no test case", row[0])
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			status, err := strconv.Atoi(row[1])
			if err != nil {
				t.Fatalf("status cell %q", row[1])
			}
			wantChallenge, wantRetry := strings.Trim(row[2], "`"), ""
			if rest, ok := strings.CutPrefix(row[2], "none; `Retry-After: "); ok {
				wantChallenge = ""
				wantRetry, _, _ = strings.Cut(rest, "`")
			} else if row[2] == "none" {
				wantChallenge = ""
			}
			for i, rr := range errorCases[name](newFixture(t)) {
				if rr.Code != status {
					t.Errorf("request %d: status %d, table says %d", i, rr.Code, status)
				}
				if got := rr.Header().Get("WWW-Authenticate"); got != wantChallenge {
					t.Errorf("request %d: WWW-Authenticate %q, table says %q", i, got, wantChallenge)
				}
				if got := rr.Header().Get("Retry-After"); got != wantRetry {
					t.Errorf("request %d: Retry-After %q, table says %q", i, got, wantRetry)
				}
				var body struct{ Title string }
				if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Title != row[3] {
					t.Errorf("request %d: title %q (%v), table says %q", i, body.Title, err, row[3])
				}
			}
		})
	}
	for name := range errorCases {
		if !seen[name] {
			t.Errorf("the errors table has no row for %q", name)
		}
	}
}

// responseCases produce the response of each http block, by its marker.
var responseCases = map[string]func(f *fixture) *httptest.ResponseRecorder{
	"response: insufficient scope": func(f *fixture) *httptest.ResponseRecorder {
		return f.serve([]string{"Bearer " + f.read.Raw})
	},
	"response: rate limited": func(f *fixture) *httptest.ResponseRecorder {
		lim := middleware.WithLimiter(limit.NewMemory())
		for range 10 {
			f.serve([]string{"Bearer " + f.demo.Raw}, lim)
		}
		return f.serve([]string{"Bearer " + f.demo.Raw}, lim)
	},
}

// TestReadmeResponses checks each example response against the real one:
// status line, the headers shown, and the body byte for byte.
func TestReadmeResponses(t *testing.T) {
	for _, b := range readmeBlocks(t) {
		if b.info != "http" {
			continue
		}
		produce, ok := responseCases[b.marker]
		if !ok {
			t.Errorf("README.md:%d: an http block needs a known <!-- response: ... --> marker, not %q", b.line, b.marker)
			continue
		}
		rr := produce(newFixture(t))
		head, body, _ := strings.Cut(b.content, "\n\n")
		lines := strings.Split(head, "\n")
		if got, want := fmt.Sprintf("HTTP/1.1 %d %s", rr.Code, http.StatusText(rr.Code)), lines[0]; got != want {
			t.Errorf("README.md:%d: status line %q, real %q", b.line, want, got)
		}
		for _, l := range lines[1:] {
			name, value, _ := strings.Cut(l, ": ")
			if got := rr.Header().Get(name); got != value {
				t.Errorf("README.md:%d: %s: %q, real %q", b.line, name, value, got)
			}
		}
		if got := strings.TrimSpace(rr.Body.String()); got != strings.TrimSpace(body) {
			t.Errorf("README.md:%d: body\n%s\nreal\n%s", b.line, body, got)
		}
	}
}

// runCurlLoop runs the README's curl loop with sh and curl against the
// middleware guarding a key with the example's all-scopes limit (60 a
// minute, 10 at once), and checks that it prints ten 200s, then 429.
func runCurlLoop(t *testing.T, command string) {
	const addr = "http://127.0.0.1:8080"
	for _, bin := range []string{"sh", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			needs.Check(t, "README", bin+" not found, so the README's curl loop is not run (.ci/run installs it)", nil)
		}
	}
	if !strings.Contains(command, addr) {
		t.Fatalf("the curl loop does not call the example's address %s", addr)
	}
	f := newFixture(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httptest.NewServer(middleware.Authenticate(f.keys, middleware.WithLimiter(limit.NewMemory()))(ok))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", strings.Replace(command, addr, srv.URL, 1))
	cmd.Env = append(os.Environ(), "KEY="+f.demo.Raw)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	if want := strings.Repeat("200 ", 10) + "429 "; string(out) != want {
		t.Errorf("the curl loop printed %q, want %q", out, want)
	}
}
