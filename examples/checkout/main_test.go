package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
)

// keyLine matches a raw test key.
var keyLine = regexp.MustCompile(`^ck_test_[0-9A-Za-z]{32}$`)

// bannerKeyLine matches a key line of the banner: merchant, label, key.
var bannerKeyLine = regexp.MustCompile(`^(\S+) +(\S.*?) +(ck_test_[0-9A-Za-z]{32})$`)

// printedKey is a key as the banner shows it.
type printedKey struct {
	merchant, label, raw string
	curl                 string // the curl command that uses it
}

// parseBanner reads the keys and the URL from the start-up output. Each
// key must be used by exactly one curl line.
func parseBanner(t *testing.T, out string) (keys []printedKey, url string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if m := bannerKeyLine.FindStringSubmatch(l); m != nil {
			keys = append(keys, printedKey{merchant: m[1], label: m[2], raw: m[3]})
		}
		if rest, ok := strings.CutPrefix(l, "Listening on "); ok {
			url, _, _ = strings.Cut(rest, " ")
		}
	}
	if url == "" {
		t.Fatalf("no Listening line in:\n%s", out)
	}
	for i, k := range keys {
		for _, l := range lines {
			if strings.HasPrefix(l, "curl ") && strings.Contains(l, `"Authorization: Bearer `+k.raw+`"`) {
				if keys[i].curl != "" {
					t.Fatalf("two curl lines use %s's %s key:\n%s", k.merchant, k.label, out)
				}
				keys[i].curl = l
			}
		}
		if keys[i].curl == "" {
			t.Fatalf("no curl line uses %s's %s key:\n%s", k.merchant, k.label, out)
		}
	}
	return keys, url
}

// key returns the printed key of a merchant with a label, such as "all
// scopes".
func key(t *testing.T, keys []printedKey, merchant, label string) printedKey {
	t.Helper()
	for _, k := range keys {
		if k.merchant == merchant && k.label == label {
			return k
		}
	}
	t.Fatalf("no %s key of %s printed", label, merchant)
	return printedKey{}
}

// instance is the example started in-process, with what it printed and
// what it logged.
type instance struct {
	srv    *server
	keys   []printedKey // the demo keys, as printed
	url    string       // http://host:port, as printed
	dash   printedDashboard
	banner string
	log    *syncbuf.Buffer
}

// startInstance starts the example in-process with cfg, and shuts it down
// when the test ends unless the test did.
func startInstance(t *testing.T, cfg config) *instance {
	t.Helper()
	var out bytes.Buffer
	logs := new(syncbuf.Buffer)
	srv, err := start(t.Context(), cfg, &out, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if srv.http != nil {
			srv.shutdown(io.Discard)
		}
	})
	in := &instance{srv: srv, banner: out.String(), log: logs}
	in.keys, in.url = parseBanner(t, in.banner)
	in.dash = parseDashboard(t, in.banner)
	if in.url != srv.url {
		t.Fatalf("printed URL %s, server at %s", in.url, srv.url)
	}
	if want := srv.url + "/dashboard/"; in.dash.url != want {
		t.Fatalf("printed dashboard URL %s, want %s", in.dash.url, want)
	}
	return in
}

// stop shuts the instance down and checks that it says so.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	var out bytes.Buffer
	err := in.srv.shutdown(&out)
	in.srv.http = nil // shut down: nothing left for the cleanup
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(out.String(), "Stopped; last-used times written.") {
		t.Errorf("no shutdown message in %q", out.String())
	}
}

// printedDashboard is how the banner says to reach the dashboard.
type printedDashboard struct {
	url      string
	password string // set if generated, and so printed
	given    bool   // the banner says the password was given
	users    []printedUser
}

// printedUser is a user of the dashboard's demo sign-in, as the banner
// lists it.
type printedUser struct{ name, merchant, role string }

var userLine = regexp.MustCompile(`^([a-z]+) +([a-z]+) +(admin|developer|viewer): `)

// parseDashboard reads the dashboard's lines from the start-up output.
func parseDashboard(t *testing.T, out string) printedDashboard {
	t.Helper()
	var d printedDashboard
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Dashboard: "); ok {
			d.url = rest
		}
		if strings.HasPrefix(l, "Sign in with a user name below and this password, generated") && i+1 < len(lines) {
			d.password = lines[i+1]
		}
		if l == "Sign in with a user name below and the password set by -dashboard-password or CHECKOUT_DASHBOARD_PASSWORD." {
			d.given = true
		}
		if m := userLine.FindStringSubmatch(l); m != nil {
			d.users = append(d.users, printedUser{m[1], m[2], m[3]})
		}
	}
	if d.url == "" || (d.password == "") == !d.given || len(d.users) == 0 {
		t.Fatalf("no dashboard URL, no users, or not one way to sign in, in:\n%s", out)
	}
	return d
}

// startServer starts the example in-process on a free loopback port.
func startServer(t *testing.T) (*server, []printedKey, string) {
	t.Helper()
	in := startInstance(t, config{addr: "127.0.0.1:0"})
	return in.srv, in.keys, in.url
}

type response struct {
	status    int
	challenge string
	body      map[string]any // if JSON
	raw       string
	header    http.Header
}

func call(t *testing.T, method, url, key, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, req)
}

// send makes the request and reads the response, parsing a JSON body.
func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), raw: string(raw), header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", req.Method, req.URL, raw, err)
		}
	}
	return r
}

// TestServer starts the example on a free port, reads the printed keys and
// makes real requests with them.
func TestServer(t *testing.T) {
	srv, printed, url := startServer(t)
	if len(printed) != len(merchants)*len(demoKeySpecs) {
		t.Fatalf("%d keys printed, want %d", len(printed), len(merchants)*len(demoKeySpecs))
	}
	all, sessions := key(t, printed, "acme", "all scopes"), key(t, printed, "acme", "sessions:write")

	t.Run("allowed", func(t *testing.T) {
		r := call(t, "GET", url+"/api/v1/links", all.raw, "")
		if r.status != http.StatusOK || r.body["object"] != "list" {
			t.Fatalf("GET links: %d %v", r.status, r.body)
		}
		r = call(t, "POST", url+"/api/v1/sessions", sessions.raw, sessionBody)
		if r.status != http.StatusCreated {
			t.Fatalf("POST sessions: %d %v", r.status, r.body)
		}
		if id, _ := r.body["id"].(string); !strings.HasPrefix(id, "cs_test_") || r.header.Get("Location") != "/api/v1/sessions/"+id {
			t.Errorf("session id %q, Location %q", id, r.header.Get("Location"))
		}
		amount, _ := r.body["amount"].(map[string]any)
		meta, _ := r.body["metadata"].(map[string]any)
		if amount["value"] != "49.99" || amount["currency"] != "USD" || r.body["successUrl"] != "https://your-store.com/thank-you" ||
			meta["orderId"] != "order_789" || r.body["mode"] != "test" || r.body["status"] != "open" {
			t.Errorf("created session %v", r.body)
		}
	})
	t.Run("the printed curl commands work", func(t *testing.T) {
		for _, k := range printed {
			r := runCurlLine(t, k.curl)
			if r.status != http.StatusOK && r.status != http.StatusCreated {
				t.Errorf("%s: %d %v", k.curl, r.status, r.body)
			}
		}
	})
	t.Run("wrong scope", func(t *testing.T) {
		r := call(t, "GET", url+"/api/v1/sessions", sessions.raw, "")
		if r.status != http.StatusForbidden || r.challenge != `Bearer realm="checkout", error="insufficient_scope", scope="sessions:read"` {
			t.Fatalf("GET sessions with sessions:write: %d %q", r.status, r.challenge)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		r := call(t, "GET", url+"/api/v1/links", "", "")
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout"` {
			t.Fatalf("no key: %d %q", r.status, r.challenge)
		}
	})
	t.Run("garbage key", func(t *testing.T) {
		r := call(t, "GET", url+"/api/v1/links", "garbage", "")
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("garbage key: %d %q", r.status, r.challenge)
		}
	})
	t.Run("public health check", func(t *testing.T) {
		if r := call(t, "GET", url+"/healthz", "", ""); r.status != http.StatusOK {
			t.Fatalf("healthz: %d", r.status)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if r := call(t, "POST", url+"/api/v1/sessions", sessions.raw, sessionBody); r.status != http.StatusCreated {
			t.Fatalf("before revocation: %d", r.status)
		}
		rec := findKey(t, srv.keys, "acme", sessions.raw)
		if _, err := srv.keys.Owner("acme").Revoke(context.Background(), rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		r := call(t, "POST", url+"/api/v1/sessions", sessions.raw, sessionBody)
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the request right after revocation: %d %q", r.status, r.challenge)
		}
		// globex's key of the same kind is another key: it still works.
		if r := call(t, "POST", url+"/api/v1/sessions", key(t, printed, "globex", "sessions:write").raw, sessionBody); r.status != http.StatusCreated {
			t.Errorf("globex's session key after acme's was revoked: %d", r.status)
		}
	})
}

// TestBanner checks what start prints: each merchant's two test keys, each
// once on a line that names its merchant and once in the curl command that
// uses it, under a heading that names the same merchant; and the
// dashboard's users.
func TestBanner(t *testing.T) {
	in := startInstance(t, config{addr: "127.0.0.1:0"})
	var want []string
	for _, m := range merchants {
		for _, spec := range demoKeySpecs {
			want = append(want, m.id+" "+spec.label)
		}
	}
	var got []string
	for _, k := range in.keys {
		got = append(got, k.merchant+" "+k.label)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("printed keys %q, want %q:\n%s", got, want, in.banner)
	}
	lines := strings.Split(in.banner, "\n")
	for _, k := range in.keys {
		t.Run(k.merchant+" "+k.label, func(t *testing.T) {
			// The key line, exactly, with its columns aligned.
			line := fmt.Sprintf("%-8s%-17s%s", k.merchant, k.label, k.raw)
			if !slices.Contains(lines, line) {
				t.Errorf("no line %q in:\n%s", line, in.banner)
			}
			// The raw key appears only where needed: its line and its curl.
			if n := strings.Count(in.banner, k.raw); n != 2 {
				t.Errorf("the key is printed %d times, want 2 (its line and its curl command)", n)
			}
			// The key is the merchant's, with the label's scopes: ask the
			// lifecycle, not the banner.
			rec, err := in.srv.keys.Verify(t.Context(), k.raw)
			if err != nil {
				t.Fatal(err)
			}
			wantScopes := scope.NewSet(scope.SessionsWrite)
			if k.label == "all scopes" {
				wantScopes = scope.NewSet(scope.Default.Scopes()...)
			}
			if rec.Owner != k.merchant || rec.Mode != apikey.Test || rec.Scopes.String() != wantScopes.String() {
				t.Errorf("the key belongs to %q, mode %s, scopes %s; want %q, test, %s", rec.Owner, rec.Mode, rec.Scopes, k.merchant, wantScopes)
			}
			// Its curl command is under its merchant's heading.
			heading := ""
			for _, l := range lines {
				if strings.HasPrefix(l, "Try ") {
					heading = l
				}
				if l == k.curl {
					break
				}
			}
			if want := "Try " + k.merchant + "'s keys"; !strings.HasPrefix(heading, want) {
				t.Errorf("the curl command of %s's key is under %q, want %q...", k.merchant, heading, want)
			}
		})
	}
	var users []printedUser
	for _, u := range demoUsers {
		users = append(users, printedUser{u.name, u.merchant, string(u.role)})
	}
	if !slices.Equal(in.dash.users, users) {
		t.Errorf("printed users %v, want %v", in.dash.users, users)
	}
	if strings.Contains(in.banner, "revoked") {
		t.Errorf("a start on an empty store says it revoked keys:\n%s", in.banner)
	}
}

// runCurlLine makes the request a printed curl line describes.
func runCurlLine(t *testing.T, line string) response {
	t.Helper()
	m := regexp.MustCompile(`^curl (\S+) -H "Authorization: Bearer (\S+)"(?: -H "Content-Type: application/json" -d '(.*)')?$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("unexpected curl line %q", line)
	}
	method := "GET"
	if m[3] != "" {
		method = "POST" // curl -d posts
	}
	return call(t, method, m[1], m[2], m[3])
}

// findKey returns the record of a raw key of owner, found by its display
// prefix among the owner's keys.
func findKey(t *testing.T, keys *keyward.Keys, owner, raw string) apikey.Record {
	t.Helper()
	prefix := apikey.Default.DisplayPrefix(raw)
	opts := keyward.ListOptions{}
	for {
		page, err := keys.Owner(owner).List(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page.Keys {
			if rec.Prefix == prefix {
				return rec
			}
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	t.Fatalf("%s has no key with the prefix %s", owner, prefix)
	return apikey.Record{}
}

// TestShutdownWritesLastUsed checks that a graceful shutdown writes the
// last-used times of the keys used.
func TestShutdownWritesLastUsed(t *testing.T) {
	var out bytes.Buffer
	srv, err := start(t.Context(), config{addr: "127.0.0.1:0"}, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	printed, url := parseBanner(t, out.String())
	used, unused := key(t, printed, "globex", "all scopes"), key(t, printed, "acme", "all scopes")
	before := srv.keys.Now()
	if r := call(t, "GET", url+"/api/v1/events", used.raw, ""); r.status != http.StatusOK {
		t.Fatalf("GET events: %d", r.status)
	}
	rec := findKey(t, srv.keys, "globex", used.raw)
	if err := srv.shutdown(&out); err != nil {
		t.Fatal(err)
	}
	got, err := srv.keys.Owner("globex").Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt.Before(before) {
		t.Errorf("LastUsedAt = %v after shutdown, want the request's time (>= %v)", got.LastUsedAt, before)
	}
	if rec := findKey(t, srv.keys, "acme", unused.raw); !rec.LastUsedAt.IsZero() {
		t.Errorf("the unused key has LastUsedAt %v", rec.LastUsedAt)
	}
	if !strings.Contains(out.String(), "Stopped; last-used times written.") {
		t.Errorf("no shutdown message in %q", out.String())
	}
	if r, err := http.Get(url + "/healthz"); err == nil {
		r.Body.Close()
		t.Error("the server still answers after shutdown")
	}
}

// TestParseFlags checks the flags, and the environment variables that
// main turns into leading flags (envArgs): a flag given wins.
func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want config
	}{
		{"defaults", nil, nil, config{addr: "127.0.0.1:8080"}},
		{"flags", nil, []string{"-addr", ":9000", "-postgres", "postgres://db/checkout", "-dashboard-password", "pw"},
			config{addr: ":9000", postgres: "postgres://db/checkout", dashboardPassword: "pw"}},
		{"environment", map[string]string{"DATABASE_URL": "host=/run/pg dbname=checkout", "CHECKOUT_DASHBOARD_PASSWORD": "from env"}, nil,
			config{addr: "127.0.0.1:8080", postgres: "host=/run/pg dbname=checkout", dashboardPassword: "from env"}},
		{"flags win over the environment", map[string]string{"DATABASE_URL": "postgres://env/db", "CHECKOUT_DASHBOARD_PASSWORD": "from env"},
			[]string{"-postgres", "postgres://flag/db", "-dashboard-password", "from flag"},
			config{addr: "127.0.0.1:8080", postgres: "postgres://flag/db", dashboardPassword: "from flag"}},
		{"without the verification cache", nil, []string{"-postgres", "postgres://db/checkout", "-cache=false"},
			config{addr: "127.0.0.1:8080", postgres: "postgres://db/checkout", noCache: true}},
		{"an empty flag wins too: keys in memory", map[string]string{"DATABASE_URL": "postgres://env/db"}, []string{"-postgres="},
			config{addr: "127.0.0.1:8080"}},
		{"empty variables are unset", map[string]string{"DATABASE_URL": "", "CHECKOUT_DASHBOARD_PASSWORD": ""}, nil,
			config{addr: "127.0.0.1:8080"}},
		{"other variables are ignored", map[string]string{"PGHOST": "db", "CHECKOUT_ADDR": ":1"}, nil,
			config{addr: "127.0.0.1:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			got, err := parseFlags(append(envArgs(getenv), tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	t.Run("usage", func(t *testing.T) {
		var out bytes.Buffer
		env := map[string]string{"DATABASE_URL": "postgres://u:dbsecret@db/x", "CHECKOUT_DASHBOARD_PASSWORD": "pwsecret"}
		_, err := parseFlags(append(envArgs(func(k string) string { return env[k] }), "-h"), &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("-h: %v", err)
		}
		for _, want := range []string{"-addr", "-postgres", "DATABASE_URL", "-cache", "within 1s", "-dashboard-password", "CHECKOUT_DASHBOARD_PASSWORD"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("usage does not mention %s:\n%s", want, out.String())
			}
		}
		for _, secret := range []string{"dbsecret", "pwsecret"} {
			if strings.Contains(out.String(), secret) {
				t.Errorf("usage shows a value from the environment:\n%s", out.String())
			}
		}
	})
}

func TestRun(t *testing.T) {
	t.Run("serves until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw, io.Discard)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		var url string
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Listening on "); ok {
				url, _, _ = strings.Cut(rest, " ")
				break
			}
		}
		if r := call(t, "GET", url+"/healthz", "", ""); r.status != http.StatusOK {
			t.Fatalf("healthz: %d", r.status)
		}
		cancel()
		go io.Copy(io.Discard, pr)
		if err := <-done; err != nil {
			t.Fatalf("run returned %v after cancellation", err)
		}
	})
	t.Run("bad flag", func(t *testing.T) {
		if err := run(t.Context(), []string{"-nope"}, io.Discard, io.Discard); err == nil {
			t.Error("no error for an unknown flag")
		}
		if err := run(t.Context(), []string{"extra"}, io.Discard, io.Discard); err == nil {
			t.Error("no error for an extra argument")
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"-h"}, &out, io.Discard); err != nil {
			t.Errorf("-h: %v", err)
		}
		if !strings.Contains(out.String(), "-addr") {
			t.Errorf("usage %q does not mention -addr", out.String())
		}
	})
	t.Run("address in use", func(t *testing.T) {
		_, _, url := startServer(t)
		err := run(t.Context(), []string{"-addr", strings.TrimPrefix(url, "http://")}, io.Discard, io.Discard)
		if err == nil {
			t.Error("no error listening on a busy address")
		}
	})
}

// readmeCommands are the commands the repository's README shows to run
// the example. TestCommand runs each of them, and the README's own test
// (readme_test.go at the root) refuses a command that is not listed here.
var readmeCommands = []string{
	"go run ./examples/checkout",
	"go run ./examples/checkout -dashboard-password 'choose-one'",
}

// commandArgs returns the arguments that a README command passes to the
// example, split as a POSIX shell splits plain and 'single-quoted' words.
// Any other shell syntax fails the test: it would need a real shell.
func commandArgs(t *testing.T, command string) []string {
	t.Helper()
	rest, ok := strings.CutPrefix(command, "go run ./examples/checkout")
	if !ok || (rest != "" && rest[0] != ' ') {
		t.Fatalf("%q does not run the example", command)
	}
	args := []string{}
	for rest = strings.TrimLeft(rest, " "); rest != ""; rest = strings.TrimLeft(rest, " ") {
		var word string
		if quoted, ok := strings.CutPrefix(rest, "'"); ok {
			var closed bool
			word, rest, closed = strings.Cut(quoted, "'")
			if !closed || (rest != "" && rest[0] != ' ') {
				t.Fatalf("%q: a quoted word must end with a quote, then a space or the end", command)
			}
		} else {
			word, rest, _ = strings.Cut(rest, " ")
			if strings.ContainsAny(word, "'\"\\$`*?[]{}~;&|<>()#=") {
				t.Fatalf("%q: the word %q needs a shell; keep README commands to plain and 'single-quoted' words", command, word)
			}
		}
		args = append(args, word)
	}
	return args
}

func TestCommandArgs(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    []string
	}{
		{"go run ./examples/checkout", []string{}},
		{"go run ./examples/checkout -addr 127.0.0.1:9000", []string{"-addr", "127.0.0.1:9000"}},
		{"go run ./examples/checkout  -dashboard-password 'choose one'", []string{"-dashboard-password", "choose one"}},
		{"go run ./examples/checkout -dashboard-password ''", []string{"-dashboard-password", ""}},
	} {
		t.Run(tc.command, func(t *testing.T) {
			if got := commandArgs(t, tc.command); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCommand builds the example as `go run ./examples/checkout` would,
// runs it as the README does and with its environment variables, uses a
// printed key and the dashboard, and stops it with SIGINT or SIGTERM.
func TestCommand(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals are Unix-only")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "checkout")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	type commandCase struct {
		name     string
		args     []string
		env      func(t *testing.T) []string // added to a clean environment
		password string                      // the dashboard password given, if any
		postgres bool                        // the keys are in PostgreSQL
		sig      syscall.Signal
	}
	var cases []commandCase
	for _, c := range readmeCommands {
		args := commandArgs(t, c)
		cfg, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		cases = append(cases, commandCase{name: c, args: args, password: cfg.dashboardPassword, sig: syscall.SIGINT})
	}
	cases = append(cases,
		commandCase{name: "SIGTERM", sig: syscall.SIGTERM},
		commandCase{
			name:     "CHECKOUT_DASHBOARD_PASSWORD",
			env:      func(*testing.T) []string { return []string{"CHECKOUT_DASHBOARD_PASSWORD=from the environment"} },
			password: "from the environment",
			sig:      syscall.SIGINT,
		},
		commandCase{
			name: "DATABASE_URL",
			env: func(t *testing.T) []string {
				return []string{"DATABASE_URL=" + pgtest.SearchPath(pgtest.DSN(t), pgtest.Schema(t, pgtest.DB(t)))}
			},
			postgres: true,
			sig:      syscall.SIGTERM,
		},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The environment of the test, less the variables the example
			// reads, plus those of the case.
			env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
				return strings.HasPrefix(kv, envPostgres+"=") || strings.HasPrefix(kv, envDashboardPassword+"=")
			})
			if tc.env != nil {
				env = append(env, tc.env(t)...)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append(slices.Clone(tc.args), "-addr", "127.0.0.1:0")...)
			cmd.Env = env
			var stderr syncbuf.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var banner strings.Builder
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				banner.WriteString(sc.Text() + "\n")
				if strings.HasPrefix(sc.Text(), "Listening on ") {
					break
				}
			}
			if !strings.Contains(banner.String(), "Listening on ") {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the command did not start:\n%s%s", banner.String(), stderr.String())
			}
			printed, url := parseBanner(t, banner.String())
			dash := parseDashboard(t, banner.String())

			if got, want := strings.Contains(banner.String(), "its keys in PostgreSQL"), tc.postgres; got != want {
				t.Errorf("banner says keys in PostgreSQL: %v, want %v:\n%s", got, want, banner.String())
			}
			password := dash.password
			if tc.password != "" {
				password = tc.password
				if !dash.given || strings.Contains(banner.String(), tc.password) {
					t.Errorf("the banner prints the password given, or does not say it was given:\n%s", banner.String())
				}
			}
			if r := call(t, "GET", url+"/api/v1/customers", key(t, printed, "globex", "all scopes").raw, ""); r.status != http.StatusOK {
				t.Errorf("GET customers with globex's key: %d", r.status)
			}
			for _, k := range printed {
				if r := runCurlLine(t, k.curl); r.status != http.StatusOK && r.status != http.StatusCreated {
					t.Errorf("%s's %s key: %d", k.merchant, k.label, r.status)
				}
			}
			if r := dashCall(t, "GET", dash.url+"keys", "ada", password, ""); r.status != http.StatusOK {
				t.Errorf("GET the dashboard's keys with the password: %d", r.status)
			}
			if r := dashCall(t, "GET", dash.url+"keys", "ada", password+"x", ""); r.status != http.StatusUnauthorized {
				t.Errorf("GET the dashboard's keys with a wrong password: %d", r.status)
			}

			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v\n%s", tc.sig, err, stderr.String())
			}
			if !strings.Contains(string(rest), "Stopped; last-used times written.") {
				t.Errorf("output after %v: %q", tc.sig, rest)
			}
			log := stderr.String()
			if !strings.Contains(log, "wrong password") {
				t.Errorf("the wrong password was not logged to stderr:\n%s", log)
			}
			secrets := []string{password}
			for _, k := range printed {
				secrets = append(secrets, k.raw)
			}
			for _, secret := range secrets {
				if strings.Contains(log, secret) {
					t.Errorf("stderr holds a secret (%.12s...):\n%s", secret, log)
				}
			}
		})
	}
}

// TestRetireDemoKeys checks which keys a start revokes: the owner's active
// test keys that carry the mark of a demo key it created, and are older.
// Newer demo keys are kept, so that two instances starting at once on one
// database end with the newer one's keys, not with none.
func TestRetireDemoKeys(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	acme := keys.Owner("acme")
	issue := func(owner keyward.Owner, mode apikey.Mode, md map[string]string) apikey.Record {
		t.Helper()
		return keywardtest.Issue(t, owner, keyward.CreateParams{Mode: mode, Scopes: scope.NewSet(scope.LinksRead), Metadata: md}).Record
	}
	all := map[string]string{demoMetadataKey: "all-scopes"}
	older := issue(acme, apikey.Test, all)
	otherTag := issue(acme, apikey.Test, map[string]string{demoMetadataKey: "sessions-write"}) // not created by this start
	unknownTag := issue(acme, apikey.Test, map[string]string{demoMetadataKey: "mine"})
	own := issue(acme, apikey.Test, map[string]string{"integration": "woocommerce"})
	unmarked := issue(acme, apikey.Test, nil)
	globex := issue(keys.Owner("globex"), apikey.Test, all) // another owner's
	current := issue(acme, apikey.Test, all)
	newer := issue(acme, apikey.Test, all) // by an instance starting at the same time

	n, err := retireDemoKeys(t.Context(), acme, map[string]apikey.Record{"all-scopes": current})
	if err != nil || n != 1 {
		t.Fatalf("retireDemoKeys: %d, %v; want 1 revoked", n, err)
	}
	status := func(owner string, rec apikey.Record) apikey.Status {
		t.Helper()
		got, err := keys.Owner(owner).Get(t.Context(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status(keys.Now())
	}
	for name, k := range map[string]struct {
		owner string
		rec   apikey.Record
		want  apikey.Status
	}{
		"older demo key":           {"acme", older, apikey.Revoked},
		"the start's own":          {"acme", current, apikey.Active},
		"newer demo key":           {"acme", newer, apikey.Active},
		"demo key of another kind": {"acme", otherTag, apikey.Active},
		"unknown demo mark":        {"acme", unknownTag, apikey.Active},
		"key with other metadata":  {"acme", own, apikey.Active},
		"key without metadata":     {"acme", unmarked, apikey.Active},
		"another owner's demo key": {"globex", globex, apikey.Active},
	} {
		if got := status(k.owner, k.rec); got != k.want {
			t.Errorf("%s: %s, want %s", name, got, k.want)
		}
	}
	// The instance that created newer retires current in turn: one key of
	// the kind is left, the newest.
	if n, err := retireDemoKeys(t.Context(), acme, map[string]apikey.Record{"all-scopes": newer}); err != nil || n != 1 {
		t.Fatalf("the other instance's retireDemoKeys: %d, %v; want 1 revoked", n, err)
	}
	if got := status("acme", current); got != apikey.Revoked {
		t.Errorf("the older start's key after the newer start: %s, want revoked", got)
	}
}
