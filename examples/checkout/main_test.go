package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

var keyLine = regexp.MustCompile(`^ck_test_[0-9A-Za-z]{32}$`)

// printedKey is a key as the banner shows it.
type printedKey struct {
	raw, scopes, curl string
}

// parseBanner reads the keys and the URL from the start-up output.
func parseBanner(t *testing.T, out string) (keys []printedKey, url string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if keyLine.MatchString(l) {
			if i == 0 || i+1 >= len(lines) {
				t.Fatalf("key line %d has no scopes or curl line around it:\n%s", i, out)
			}
			_, scopes, ok := strings.Cut(lines[i-1], "scopes: ")
			if !ok {
				t.Fatalf("the line before a key does not list its scopes: %q", lines[i-1])
			}
			keys = append(keys, printedKey{raw: l, scopes: scopes, curl: lines[i+1]})
		}
		if rest, ok := strings.CutPrefix(l, "Listening on "); ok {
			url, _, _ = strings.Cut(rest, " ")
		}
	}
	if url == "" {
		t.Fatalf("no Listening line in:\n%s", out)
	}
	return keys, url
}

// startServer starts the example in-process on a free loopback port.
func startServer(t *testing.T) (*server, []printedKey, string) {
	t.Helper()
	var out bytes.Buffer
	srv, err := start(t.Context(), config{addr: "127.0.0.1:0"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.shutdown(io.Discard)
		}
	})
	keys, url := parseBanner(t, out.String())
	if url != srv.url {
		t.Fatalf("printed URL %s, server at %s", url, srv.url)
	}
	return srv, keys, url
}

type response struct {
	status    int
	challenge string
	body      map[string]any
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", method, url, raw, err)
		}
	}
	return r
}

// TestServer starts the example on a free port, reads the printed keys and
// makes real requests with them.
func TestServer(t *testing.T) {
	srv, printed, url := startServer(t)
	if len(printed) != 2 {
		t.Fatalf("%d keys printed, want 2", len(printed))
	}
	all, sessions := printed[0], printed[1]
	if got, want := all.scopes, scope.NewSet(scope.Default.Scopes()...).String(); got != want {
		t.Errorf("first key's scopes = %q, want every scope %q", got, want)
	}
	if got, want := sessions.scopes, "sessions:write"; got != want {
		t.Errorf("second key's scopes = %q, want %q", got, want)
	}
	for _, k := range printed {
		if !strings.HasPrefix(k.curl, "curl "+url+"/api/v1/") || !strings.Contains(k.curl, `-H "Authorization: Bearer `+k.raw+`"`) {
			t.Errorf("curl line %q does not call %s with the key", k.curl, url)
		}
	}

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
		rec := findKey(t, srv.keys, sessions.raw)
		if _, err := srv.keys.Revoke(context.Background(), rec.ID); err != nil {
			t.Fatal(err)
		}
		r := call(t, "POST", url+"/api/v1/sessions", sessions.raw, sessionBody)
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the request right after revocation: %d %q", r.status, r.challenge)
		}
	})
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

// findKey returns the record of a raw key, found by its display prefix.
func findKey(t *testing.T, keys *keyward.Keys, raw string) apikey.Record {
	t.Helper()
	page, err := keys.List(context.Background(), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page.Records {
		if rec.Prefix == apikey.Default.DisplayPrefix(raw) {
			return rec
		}
	}
	t.Fatalf("no key has the prefix of %s", apikey.Default.DisplayPrefix(raw))
	return apikey.Record{}
}

// TestShutdownWritesLastUsed checks that a graceful shutdown writes the
// last-used times of the keys used.
func TestShutdownWritesLastUsed(t *testing.T) {
	var out bytes.Buffer
	srv, err := start(t.Context(), config{addr: "127.0.0.1:0"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	printed, url := parseBanner(t, out.String())
	before := time.Now().UTC().Truncate(time.Microsecond)
	if r := call(t, "GET", url+"/api/v1/events", printed[0].raw, ""); r.status != http.StatusOK {
		t.Fatalf("GET events: %d", r.status)
	}
	rec := findKey(t, srv.keys, printed[0].raw)
	if err := srv.shutdown(&out); err != nil {
		t.Fatal(err)
	}
	got, err := srv.keys.Store().Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt.Before(before) {
		t.Errorf("LastUsedAt = %v after shutdown, want the request's time (>= %v)", got.LastUsedAt, before)
	}
	if unused := findKey(t, srv.keys, printed[1].raw); !unused.LastUsedAt.IsZero() {
		t.Errorf("the unused key has LastUsedAt %v", unused.LastUsedAt)
	}
	if !strings.Contains(out.String(), "Stopped; last-used times written.") {
		t.Errorf("no shutdown message in %q", out.String())
	}
	if r, err := http.Get(url + "/healthz"); err == nil {
		r.Body.Close()
		t.Error("the server still answers after shutdown")
	}
}

func TestRun(t *testing.T) {
	t.Run("serves until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw)
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
		if err := run(t.Context(), []string{"-nope"}, io.Discard); err == nil {
			t.Error("no error for an unknown flag")
		}
		if err := run(t.Context(), []string{"extra"}, io.Discard); err == nil {
			t.Error("no error for an extra argument")
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"-h"}, &out); err != nil {
			t.Errorf("-h: %v", err)
		}
		if !strings.Contains(out.String(), "-addr") {
			t.Errorf("usage %q does not mention -addr", out.String())
		}
	})
	t.Run("address in use", func(t *testing.T) {
		_, _, url := startServer(t)
		err := run(t.Context(), []string{"-addr", strings.TrimPrefix(url, "http://")}, io.Discard)
		if err == nil {
			t.Error("no error listening on a busy address")
		}
	})
}

// TestCommand builds the example as `go run ./examples/checkout` would,
// runs it, uses a printed key, and stops it with SIGINT and SIGTERM.
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
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0")
			cmd.Stderr = os.Stderr
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
			printed, url := parseBanner(t, banner.String())
			if r := call(t, "GET", url+"/api/v1/customers", printed[0].raw, ""); r.status != http.StatusOK {
				t.Errorf("GET customers: %d", r.status)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v", sig, err)
			}
			if !strings.Contains(string(rest), "Stopped; last-used times written.") {
				t.Errorf("output after %v: %q", sig, rest)
			}
		})
	}
}
