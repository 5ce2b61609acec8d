package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// commandTimeout bounds every run of the binary.
const commandTimeout = 60 * time.Second

// TestCommands builds the binary once and runs every command as a
// subprocess against a throwaway PostgreSQL, each subtest in a schema of
// its own.
func TestCommands(t *testing.T) {
	pgtest.DSN(t) // skip (or fail under CI=true) before building without PostgreSQL
	bin := build(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, e *env)
	}{
		{"migrate", testMigrate},
		{"missing table", testMissingTable},
		{"create", testCreate},
		{"create idempotent", testCreateIdempotent},
		{"key format", testKeyFormat},
		{"lifetime rules", testLifetimeRules},
		{"list", testList},
		{"show", testShow},
		{"update", testUpdate},
		{"rotate", testRotate},
		{"revoke", testRevoke},
		{"revoke-all", testRevokeAll},
		{"report-exposure", testReportExposure},
		{"trips", testTrips},
		{"actor", testActor},
		{"audit", testAudit},
		{"check-audit", testCheckAudit},
		{"usage", testUsage},
		{"usage errors", testUsageErrors},
		{"not found", testNotFound},
		{"help", testHelp},
		{"readme", testReadme},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newEnv(t, bin))
		})
	}
}

// build compiles the command into a directory removed after t.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyward")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// env is one subtest's database: a schema of its own, which the binary
// reaches through DATABASE_URL's search_path.
type env struct {
	t      *testing.T
	bin    string
	dsn    string
	schema string
	keys   *keyward.Keys // the same table, through the library
}

func newEnv(t *testing.T, bin string) *env {
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	st, err := postgres.New(db, postgres.WithTable(schema+".api_keys"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyward.New(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	return &env{t: t, bin: bin, dsn: pgtest.SearchPath(pgtest.DSN(t), schema), schema: schema, keys: keys}
}

type result struct {
	stdout, stderr string
	code           int
}

// environ is the process's environment with DATABASE_URL set to dsn (or
// removed, if dsn is empty), and without KEYWARD_ACTOR.
func environ(dsn string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, actorEnv+"=") {
			env = append(env, kv)
		}
	}
	if dsn != "" {
		env = append(env, "DATABASE_URL="+dsn)
	}
	return env
}

// run runs the binary with args and stdin, against the subtest's schema.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runEnv(environ(e.dsn), stdin, e.bin, args...)
}

func (e *env) runEnv(environ []string, stdin, name string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("running %s %q: %v", name, args, err)
	}
	if ctx.Err() != nil {
		e.t.Fatalf("%s %q did not finish within %s", name, args, commandTimeout)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs a command that must succeed.
func (e *env) ok(stdin string, args ...string) result {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("keyward %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs a command that must exit with code and print want on stderr.
func (e *env) fails(code int, want, stdin string, args ...string) result {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		e.t.Fatalf("keyward %q: exit %d, stderr %q; want exit %d, stderr containing %q", args, r.code, r.stderr, code, want)
	}
	return r
}

func (e *env) migrate() {
	e.t.Helper()
	e.ok("", "migrate")
}

// create runs create and returns the raw key and its record.
func (e *env) create(args ...string) (string, apikey.Record) {
	e.t.Helper()
	r := e.ok("", append([]string{"create"}, args...)...)
	key := strings.TrimSuffix(r.stdout, "\n")
	if slices.Contains(args, "-canary") { // Verify would trip it: find it by prefix
		page, err := e.keys.Owner(args[slices.Index(args, "-owner")+1]).List(context.Background(), keyward.ListOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, rec := range page.Keys {
			if rec.Prefix == apikey.Default.DisplayPrefix(key) {
				return key, rec
			}
		}
		e.t.Fatalf("created canary %s not listed", apikey.Default.DisplayPrefix(key))
	}
	rec, err := e.keys.Verify(context.Background(), key)
	if err != nil {
		e.t.Fatalf("Verify(created key) = %v", err)
	}
	return key, rec
}

func (e *env) get(owner string, id uuid.UUID) apikey.Record {
	e.t.Helper()
	rec, err := e.keys.Owner(owner).Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func testMigrate(t *testing.T, e *env) {
	r := e.ok("", "migrate")
	if r.stdout != "migrated api_keys\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	e.ok("", "migrate") // idempotent
	// The table is there: the library creates a key in it.
	if _, _, err := e.keys.Owner("acct_1").Create(context.Background(), keyward.CreateParams{
		Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
		t.Fatal(err)
	}
	// -table names another table, in the flag's schema.
	r = e.ok("", "migrate", "-table", e.schema+".other_keys")
	if r.stdout != "migrated "+e.schema+".other_keys\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	e.ok("", "list", "-table", e.schema+".other_keys", "-owner", "acct_1")
}

func testMissingTable(t *testing.T, e *env) {
	e.fails(1, `run "keyward migrate"`, "", "list", "-owner", "acct_1")
}

func testCreate(t *testing.T, e *env) {
	e.migrate()
	r := e.ok("", "create", "-owner", "acct_1", "-name", "Backend server", "-mode", "live",
		"-scopes", "sessions:write,sessions:read", "-expires", "720h",
		"-metadata", "region=eu", "-metadata", "team=payments",
		"-rate", "100/1m,burst=20", "-quota", "10000/day", "-network", "203.0.113.0/24")
	if !regexp.MustCompile(`^ck_live_[0-9A-Za-z]{32}\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout = %q, want the key alone and a newline", r.stdout)
	}
	key := strings.TrimSuffix(r.stdout, "\n")
	rec, err := e.keys.Verify(context.Background(), key)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if strings.Contains(r.stderr, key) {
		t.Fatalf("stderr holds the key:\n%s", r.stderr)
	}
	contains(t, "stderr", r.stderr, rec.ID.String(), rec.Prefix, "acct_1", "live",
		"sessions:read sessions:write", rec.ExpiresAt.UTC().Format(time.RFC3339), "shown only this once")
	if got, want := rec.ExpiresAt, time.Now().Add(720*time.Hour); got.Before(want.Add(-time.Minute)) || got.After(want) {
		t.Errorf("ExpiresAt = %v, want about %v", got, want)
	}
	if v, _ := rec.Metadata.Get("team"); v != "payments" || rec.Metadata.Len() != 2 {
		t.Errorf("Metadata = %v", rec.Metadata)
	}
	p := rec.Policy
	if p == nil || p.Rate != (apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20}) ||
		p.Quota != (apikey.Quota{Requests: 10000, Per: apikey.Day}) || len(p.Networks) != 1 || p.Networks[0].String() != "203.0.113.0/24" {
		t.Errorf("Policy = %+v", p)
	}

	// The library's refusals are usage errors, named by field.
	r = e.fails(2, "keyward: invalid scopes:", "", "create", "-owner", "acct_1", "-name", "x", "-mode", "test", "-scopes", "nope:read")
	if r.stdout != "" {
		t.Errorf("stdout = %q after a refusal", r.stdout)
	}
	e.fails(2, "keyward: invalid expires:", "", "create", "-owner", "acct_1", "-name", "x", "-mode", "test", "-scopes", "links:read", "-expires", "tomorrow")
	e.fails(2, "keyward: invalid rate:", "", "create", "-owner", "acct_1", "-name", "x", "-mode", "test", "-scopes", "links:read", "-rate", "100")
	e.fails(2, "keyward: invalid policy:", "", "create", "-owner", "acct_1", "-name", "x", "-mode", "test", "-scopes", "links:read", "-rate", "100/1ms")
}

func testCreateIdempotent(t *testing.T, e *env) {
	e.migrate()
	args := []string{"-owner", "acct_1", "-name", "CI", "-mode", "test", "-scopes", "links:read", "-idempotency-key", "req-42"}
	_, rec := e.create(args...)
	r := e.fails(1, "keyward: already created", "", append([]string{"create"}, args...)...)
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	contains(t, "stderr", r.stderr, rec.ID.String())
}

func testList(t *testing.T, e *env) {
	e.migrate()
	_, a := e.create("-owner", "acct_1", "-name", "First", "-mode", "live", "-scopes", "links:read")
	_, b := e.create("-owner", "acct_1", "-name", "Second", "-mode", "test", "-scopes", "links:read")
	e.create("-owner", "acct_2", "-name", "Other account", "-mode", "test", "-scopes", "links:read")
	e.ok("", "revoke", "-owner", "acct_1", a.ID.String())

	r := e.ok("", "list", "-owner", "acct_1")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table =\n%s\nwant a header and 2 rows", r.stdout)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID NAME PREFIX MODE STATUS LAST USED CREATED" {
		t.Errorf("header = %q", lines[0])
	}
	contains(t, "row 1", lines[1], b.ID.String(), "Second", b.Prefix, "test", "active", "never")
	contains(t, "row 2", lines[2], a.ID.String(), "First", a.Prefix, "live", "revoked")

	r = e.ok("", "list", "-owner", "acct_1", "-json")
	var got []struct {
		ID     uuid.UUID `json:"id"`
		Name   string    `json:"name"`
		Status string    `json:"status"`
		Mode   string    `json:"mode"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-json: %v\n%s", err, r.stdout)
	}
	if len(got) != 2 || got[0].ID != b.ID || got[0].Status != "active" || got[1].ID != a.ID || got[1].Status != "revoked" || got[1].Mode != "live" {
		t.Errorf("-json = %+v", got)
	}

	r = e.ok("", "list", "-owner", "acct_1", "-status", "revoked", "-q")
	if r.stdout != a.ID.String()+"\n" {
		t.Errorf("-status revoked -q = %q", r.stdout)
	}
	r = e.ok("", "list", "-owner", "acct_1", "-limit", "1", "-q")
	if r.stdout != b.ID.String()+"\n" || !strings.Contains(r.stderr, "more than 1 keys") {
		t.Errorf("-limit 1: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	e.fails(2, "keyward: invalid status:", "", "list", "-owner", "acct_1", "-status", "gone")
}

func testShow(t *testing.T, e *env) {
	e.migrate()
	_, rec := e.create("-owner", "acct_1", "-name", "Reporting", "-mode", "live", "-scopes", "events:read",
		"-metadata", "region=eu", "-quota", "500/month", "-network", "10.0.0.0/8")
	e.ok("", "revoke", "-owner", "acct_1", "-reason", "rotated out", rec.ID.String())

	r := e.ok("", "show", "-owner", "acct_1", rec.ID.String())
	for _, want := range []string{
		"ID:", rec.ID.String(), "Owner:", "acct_1", "Name:", "Reporting", "Prefix:", rec.Prefix,
		"Mode:", "live", "Status:", "revoked", "Canary:", "no", "Scopes:", "events:read",
		"Metadata:", "region=eu", "Expires:", "never", "Revoked reason:", "rotated out",
		"Exposed:", "Policy:", "quota 500/month; networks 10.0.0.0/8",
	} {
		contains(t, "show", r.stdout, want)
	}
	// Flags after the argument work too.
	r2 := e.ok("", "show", rec.ID.String(), "-owner", "acct_1")
	if r2.stdout != r.stdout {
		t.Errorf("show KEY_ID -owner differs:\n%s", r2.stdout)
	}

	r = e.ok("", "show", "-owner", "acct_1", "-json", rec.ID.String())
	var got struct {
		apikey.Record
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-json: %v\n%s", err, r.stdout)
	}
	if got.ID != rec.ID || got.Status != "revoked" || got.RevokedReason != "rotated out" ||
		got.Policy == nil || got.Policy.Quota.Requests != 500 {
		t.Errorf("-json = %+v", got)
	}
}

func testUpdate(t *testing.T, e *env) {
	e.migrate()
	_, rec := e.create("-owner", "acct_1", "-name", "Old", "-mode", "test", "-scopes", "links:read,links:write",
		"-metadata", "a=1", "-quota", "1000/day")
	id := rec.ID.String()

	r := e.ok("", "update", "-owner", "acct_1", "-name", "New", "-scopes", "links:read",
		"-metadata", "b=2", "-expires", "48h", "-rate", "10/1s", id)
	contains(t, "update", r.stdout, "Name:", "New", "b=2", "rate 10/1s; quota 1000/day")
	got := e.get("acct_1", rec.ID)
	if got.Name != "New" || got.Scopes.String() != "links:read" || got.Metadata.Len() != 1 || got.ExpiresAt.IsZero() ||
		got.Policy.Rate.Requests != 10 || got.Policy.Quota.Requests != 1000 {
		t.Errorf("after update: %+v, policy %+v", got, got.Policy)
	}

	e.ok("", "update", "-owner", "acct_1", "-quota", "none", "-no-metadata", id)
	got = e.get("acct_1", rec.ID)
	if !got.Policy.Quota.IsZero() || got.Policy.Rate.Requests != 10 || !got.Metadata.IsEmpty() {
		t.Errorf("after -quota none -no-metadata: %+v, policy %+v", got, got.Policy)
	}
	e.ok("", "update", "-owner", "acct_1", "-no-policy", id)
	if got = e.get("acct_1", rec.ID); got.Policy != nil {
		t.Errorf("after -no-policy: policy %+v", got.Policy)
	}

	e.fails(2, "keyward: invalid scopes:", "", "update", "-owner", "acct_1", "-scopes", "links:write", id)
	e.fails(2, "nothing to update", "", "update", "-owner", "acct_1", id)
}

func testRotate(t *testing.T, e *env) {
	e.migrate()
	oldKey, old := e.create("-owner", "acct_1", "-name", "Rotated", "-mode", "live", "-scopes", "links:read")
	r := e.ok("", "rotate", "-owner", "acct_1", "-overlap", "1h", old.ID.String())
	if !regexp.MustCompile(`^ck_live_[0-9A-Za-z]{32}\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout = %q, want the new key alone", r.stdout)
	}
	newKey := strings.TrimSuffix(r.stdout, "\n")
	ctx := context.Background()
	next, err := e.keys.Verify(ctx, newKey)
	if err != nil {
		t.Fatalf("Verify(new) = %v", err)
	}
	if next.Replaces != old.ID || next.Name != "Rotated" {
		t.Errorf("new record = %+v", next)
	}
	if _, err := e.keys.Verify(ctx, oldKey); err != nil {
		t.Errorf("Verify(old) during the overlap = %v", err)
	}
	if strings.Contains(r.stderr, newKey) || strings.Contains(r.stderr, oldKey) {
		t.Fatalf("stderr holds a key:\n%s", r.stderr)
	}
	contains(t, "stderr", r.stderr, old.ID.String(), next.ID.String(), "the old key works until")
	// A key being replaced is not rotated again.
	e.fails(1, "keyward: key already being replaced", "", "rotate", "-owner", "acct_1", old.ID.String())
}

func testRevoke(t *testing.T, e *env) {
	e.migrate()
	key, rec := e.create("-owner", "acct_1", "-name", "Doomed", "-mode", "test", "-scopes", "links:read")
	r := e.ok("", "revoke", "-owner", "acct_1", "-reason", "laptop stolen", rec.ID.String())
	contains(t, "stdout", r.stdout, "revoked "+rec.ID.String(), "laptop stolen")
	if _, err := e.keys.Verify(context.Background(), key); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify = %v, want ErrRevoked", err)
	}
	if got := e.get("acct_1", rec.ID).RevokedReason; got != "laptop stolen" {
		t.Errorf("RevokedReason = %q", got)
	}
	e.fails(1, "keyward: key already revoked", "", "revoke", "-owner", "acct_1", rec.ID.String())
	// Another account's key is not found.
	_, other := e.create("-owner", "acct_2", "-name", "Theirs", "-mode", "test", "-scopes", "links:read")
	e.fails(1, "keyward: key not found", "", "revoke", "-owner", "acct_1", other.ID.String())
}

func testRevokeAll(t *testing.T, e *env) {
	e.migrate()
	k1, r1 := e.create("-owner", "acct_1", "-name", "One", "-mode", "test", "-scopes", "links:read")
	k2, r2 := e.create("-owner", "acct_1", "-name", "Two", "-mode", "live", "-scopes", "links:read")
	k3, _ := e.create("-owner", "acct_2", "-name", "Other", "-mode", "live", "-scopes", "links:read")
	ctx := context.Background()

	e.fails(2, "-yes", "", "revoke-all", "-owner", "acct_1")
	if _, err := e.keys.Verify(ctx, k1); err != nil {
		t.Fatalf("without -yes, Verify = %v", err)
	}

	r := e.ok("", "revoke-all", "-owner", "acct_1", "-reason", "account closed", "-yes")
	contains(t, "stdout", r.stdout, r1.ID.String(), r2.ID.String(), "account closed")
	contains(t, "stderr", r.stderr, "Revoked 2 keys of owner acct_1")
	for _, k := range []string{k1, k2} {
		if _, err := e.keys.Verify(ctx, k); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("Verify = %v, want ErrRevoked", err)
		}
	}
	if _, err := e.keys.Verify(ctx, k3); err != nil {
		t.Errorf("another account's key: Verify = %v", err)
	}
}

func testReportExposure(t *testing.T, e *env) {
	e.migrate()
	key, rec := e.create("-owner", "acct_1", "-name", "Leaky", "-mode", "live", "-scopes", "links:read")

	// On the command line, the key is refused and never echoed.
	for _, args := range [][]string{
		{"report-exposure", "-source", "support", key},
		{"report-exposure", key, "-source", "support"},
		{"report-exposure", "-source", key},
		{"revoke", "-owner", "acct_1", "-reason", key, rec.ID.String()},
	} {
		r := e.run("", args...)
		if r.code != 2 || strings.Contains(r.stderr, key) || strings.Contains(r.stdout, key) || !strings.Contains(r.stderr, "standard input") {
			t.Errorf("%d %q %q: want exit 2, no key echoed, a hint to use stdin", r.code, r.stdout, r.stderr)
		}
	}
	if _, err := e.keys.Verify(context.Background(), key); err != nil {
		t.Fatalf("refused reports changed the key: %v", err)
	}

	r := e.ok(key+"\n", "report-exposure", "-source", "support", "-url", "https://tickets.example/42")
	contains(t, "stdout", r.stdout, rec.ID.String(), "marked exposed and revoked", "exposed")
	if strings.Contains(r.stdout+r.stderr, key) {
		t.Fatalf("output holds the key")
	}
	if _, err := e.keys.Verify(context.Background(), key); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify = %v, want ErrRevoked", err)
	}
	got := e.get("acct_1", rec.ID)
	if got.RevokedReason != apikey.ReasonExposed || got.Exposure == nil || got.Exposure.Source != "support" || got.Exposure.URL != "https://tickets.example/42" {
		t.Errorf("record = %+v, exposure %+v", got, got.Exposure)
	}
	r = e.ok(key+"\n", "report-exposure", "-source", "github")
	contains(t, "repeat", r.stdout, "reported exposed before", "by support", "nothing changed")

	other, err := apikey.Generate(apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	r = e.ok(other.Reveal(), "report-exposure", "-source", "support")
	contains(t, "unknown key", r.stdout, "not one of our keys")

	e.fails(2, "no key on standard input", "", "report-exposure", "-source", "support")
	e.fails(2, "-source is required", key, "report-exposure")
}

func testTrips(t *testing.T, e *env) {
	e.migrate()
	key, rec := e.create("-owner", "acct_1", "-name", "tripwire", "-mode", "live", "-scopes", "links:read", "-canary")
	if !rec.Canary {
		t.Fatal("not a canary")
	}
	// A thief tries it: the trip is written by the time Close returns.
	st, err := postgres.New(pgtest.DB(t), postgres.WithTable(e.schema+".api_keys"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyward.New(st)
	if err != nil {
		t.Fatal(err)
	}
	_, err = keys.VerifyFrom(context.Background(), key, keyward.Caller{
		Addr: "203.0.113.9:51234", UserAgent: "curl/8.5.0", Method: "GET", Path: "/v1/links"})
	if !errors.Is(err, keyward.ErrInvalidKey) {
		t.Fatalf("VerifyFrom(canary) = %v", err)
	}
	if err := keys.Close(); err != nil {
		t.Fatal(err)
	}

	r := e.ok("", "trips", "-owner", "acct_1", rec.ID.String())
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "AT ADDR USER AGENT ROUTE" {
		t.Fatalf("trips =\n%s", r.stdout)
	}
	contains(t, "trip", lines[1], "203.0.113.9:51234", "curl/8.5.0", "GET /v1/links")

	r = e.ok("", "trips", "-owner", "acct_1", "-json", rec.ID.String())
	var trips []apikey.Trip
	if err := json.Unmarshal([]byte(r.stdout), &trips); err != nil {
		t.Fatal(err)
	}
	if len(trips) != 1 || trips[0].KeyID != rec.ID || trips[0].UserAgent != "curl/8.5.0" {
		t.Errorf("-json = %+v", trips)
	}
}

func testUsageErrors(t *testing.T, e *env) {
	id := uuid.Must(uuid.NewV7()).String()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"list", "-owner", "a", "-bogus"}, "flag provided but not defined: -bogus"},
		{"missing owner", []string{"list"}, "-owner is required"},
		{"bad mode", []string{"create", "-owner", "a", "-name", "n", "-mode", "prod", "-scopes", "links:read"}, "keyward: invalid mode:"},
		{"missing mode", []string{"create", "-owner", "a", "-name", "n", "-scopes", "links:read"}, "-mode is required"},
		{"bad id", []string{"show", "-owner", "a", "not-an-id"}, "keyward: invalid id:"},
		{"missing id", []string{"show", "-owner", "a"}, "missing KEY_ID"},
		{"extra argument", []string{"list", "-owner", "a", "extra"}, `unexpected argument "extra"`},
		{"two ids", []string{"revoke", "-owner", "a", id, id}, "unexpected arguments"},
		{"bad owner", []string{"list", "-owner", "has space"}, "keyward: invalid owner:"},
		{"bad duration", []string{"rotate", "-owner", "a", "-overlap", "soon", id}, `invalid value "soon" for flag -overlap`},
		{"bad overlap", []string{"rotate", "-owner", "a", "-overlap", "720h", id}, "keyward: invalid overlap:"},
		{"help of unknown", []string{"help", "nope"}, `unknown command "nope"`},
		{"bad actor", []string{"list", "-owner", "a", "-actor", "tab\there"}, `keyward: invalid actor: -actor "tab\there": the ID holds control characters`},
		{"long actor", []string{"-actor", strings.Repeat("a", 257), "list", "-owner", "a"}, "keyward: invalid actor: -actor"},
		{"audit limit", []string{"audit", "-owner", "a", "-limit", "1001"}, "keyward: invalid limit: must be 1 to 1000"},
		{"audit key twice", []string{"audit", "-owner", "a", "-key", id, id}, "not both"},
		{"audit bad key", []string{"audit", "-owner", "a", "-key", "nope"}, "keyward: invalid id:"},
		{"check-audit expect", []string{"check-audit", "-owner", "a", "-expect", "3"}, "keyward: invalid expect:"},
		{"check-audit argument", []string{"check-audit", "-owner", "a", id}, "unexpected argument"},
		{"usage days", []string{"usage", "-owner", "a", "-days", "0", id}, "keyward: invalid days: must be 1 to 400"},
		{"usage hours", []string{"usage", "-owner", "a", "-hours", "9601", id}, "keyward: invalid hours: must be 1 to 9600"},
		{"usage days and hours", []string{"usage", "-owner", "a", "-days", "2", "-hours", "2", id}, "-days and -hours exclude each other"},
		{"usage missing id", []string{"usage", "-owner", "a"}, "missing KEY_ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr containing %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	// No database at all is a usage error, named.
	r := e.runEnv(environ(""), "", e.bin, "list", "-owner", "a")
	if r.code != 2 || !strings.Contains(r.stderr, "set DATABASE_URL or pass -database URL") {
		t.Errorf("no database: exit %d, stderr %q", r.code, r.stderr)
	}
	// -database wins over DATABASE_URL.
	e.migrate()
	r = e.runEnv(environ("postgres://nobody@127.0.0.1:1/none?connect_timeout=5"), "", e.bin, "list", "-owner", "a", "-database", e.dsn)
	if r.code != 0 {
		t.Errorf("-database: exit %d, stderr %q", r.code, r.stderr)
	}
}

func testNotFound(t *testing.T, e *env) {
	e.migrate()
	id := uuid.Must(uuid.NewV7()).String()
	for _, args := range [][]string{
		{"show", "-owner", "acct_1", id},
		{"update", "-owner", "acct_1", "-name", "x", id},
		{"rotate", "-owner", "acct_1", id},
		{"revoke", "-owner", "acct_1", id},
		{"trips", "-owner", "acct_1", id},
		{"audit", "-owner", "acct_1", id},
		{"usage", "-owner", "acct_1", id},
	} {
		r := e.fails(1, "keyward: key not found", "", args...)
		contains(t, "stderr", r.stderr, id)
	}
}

func testHelp(t *testing.T, e *env) {
	r := e.ok("", "help")
	for _, c := range commands {
		contains(t, "help", r.stdout, c.name, c.summary)
	}
	r = e.ok("", "help", "create")
	contains(t, "help create", r.stdout, "usage: keyward create -owner ID", "-idempotency-key", "-database URL",
		"-product NAME", "-checksum", "-max-lifetime DURATION", "-require-expiry MODES")
	contains(t, "help", e.ok("", "help").stdout, "-product NAME", "-checksum", "-max-lifetime DURATION", "-require-expiry MODES")
	r2 := e.ok("", "create", "-h")
	if r2.stdout != r.stdout {
		t.Errorf("create -h differs from help create:\n%s", r2.stdout)
	}
	e.ok("", "-h")
}

// readmeScript returns the shell block of the README's "Command line"
// section, which testReadme runs verbatim.
func readmeScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Command line\n")
	if !ok {
		t.Fatal(`README.md has no "Command line" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```sh\n")
	if !ok {
		t.Fatal(`the README's "Command line" section has no sh block`)
	}
	block, _, _ = strings.Cut(block, "\n```")
	return block
}

func testReadme(t *testing.T, e *env) {
	env := environ(e.dsn)
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + filepath.Dir(e.bin) + string(os.PathListSeparator) + v
		}
	}
	script := readmeScript(t)
	r := e.runEnv(env, "", "sh", "-euc", script)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	contains(t, "stdout", r.stdout, "migrated api_keys", "Backend server", "sessions:read", "team=payments",
		"revoked", "rotated out", "marked exposed and revoked")
	// The commands of the audit trail and usage, if the session shows them.
	if strings.Contains(script, "keyward audit ") {
		contains(t, "stdout", r.stdout, "SEQ", "key.created", "key.rotated", "key.revoked", "key.exposed")
		if m := regexp.MustCompile(`(?m)^export KEYWARD_ACTOR=(\S+)$`).FindStringSubmatch(script); m != nil {
			contains(t, "stdout", r.stdout, "cli:"+m[1])
		}
	}
	if strings.Contains(script, "keyward check-audit ") {
		contains(t, "stdout", r.stdout, "the audit trail of owner acct_123 holds: head ")
	}
	if strings.Contains(script, "keyward usage ") {
		contains(t, "stdout", r.stdout, "VERIFIED", "total")
	}
	if m := regexp.MustCompile(`ck_live_[0-9A-Za-z]{32}`).FindString(r.stdout + r.stderr); m != "" {
		t.Errorf("a raw key was printed outside $(...): %s", m)
	}
}

// keysOf returns a lifecycle of the format f over the subtest's table,
// as the application with that format has.
func (e *env) keysOf(f apikey.Format) *keyward.Keys {
	e.t.Helper()
	st, err := postgres.New(pgtest.DB(e.t), postgres.WithTable(e.schema+".api_keys"))
	if err != nil {
		e.t.Fatal(err)
	}
	keys, err := keyward.New(st, keyward.WithFormat(f))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { keys.Close() })
	return keys
}

func testKeyFormat(t *testing.T, e *env) {
	e.migrate()
	ctx := context.Background()
	acme, err := apikey.NewFormat("acme", apikey.WithChecksum())
	if err != nil {
		t.Fatal(err)
	}
	keys := e.keysOf(acme)
	checksummed := regexp.MustCompile(`^acme_(live|test)_[0-9A-Za-z]{38}$`)
	verify := func(key, name string) apikey.Record {
		t.Helper()
		if !checksummed.MatchString(key) || len(key) != acme.KeyLen() {
			t.Fatalf("key %s..., want an acme_ key of %d characters", key[:min(len(key), 10)], acme.KeyLen())
		}
		if _, err := acme.Parse(key); err != nil {
			t.Fatalf("acme.Parse = %v: the checksum does not hold", err)
		}
		if c := acme.Find(key); len(c) != 1 || !c[0].Checksummed {
			t.Fatalf("acme.Find = %+v, want one checksummed candidate", c)
		}
		rec, err := keys.Verify(ctx, key)
		if err != nil || rec.Name != name {
			t.Fatalf("Verify through the acme format = %+v, %v", rec, err)
		}
		return rec
	}

	// -product and -checksum.
	r := e.ok("", "create", "-product", "acme", "-checksum", "-owner", "acct_1", "-name", "Acme server",
		"-mode", "live", "-scopes", "links:read")
	key := strings.TrimSuffix(r.stdout, "\n")
	rec := verify(key, "Acme server")
	contains(t, "stderr", r.stderr, rec.Prefix)
	if _, err := e.keys.Verify(ctx, key); err == nil {
		t.Error("a lifecycle of the default format verified an acme_ key")
	}
	// Before the command, as the other common flags.
	r = e.ok("", "-product", "acme", "-checksum", "create", "-owner", "acct_1", "-name", "Acme test",
		"-mode", "test", "-scopes", "links:read")
	verify(strings.TrimSuffix(r.stdout, "\n"), "Acme test")

	// $KEYWARD_PRODUCT and $KEYWARD_CHECKSUM, which the flags override.
	env := append(environ(e.dsn), productEnv+"=acme", checksumEnv+"=1")
	r = e.runEnv(env, "", e.bin, "create", "-owner", "acct_1", "-name", "From env", "-mode", "live", "-scopes", "links:read")
	if r.code != 0 {
		t.Fatalf("create with $%s: exit %d: %s", productEnv, r.code, r.stderr)
	}
	verify(strings.TrimSuffix(r.stdout, "\n"), "From env")
	r = e.runEnv(env, "", e.bin, "create", "-checksum=false", "-owner", "acct_1", "-name", "Plain", "-mode", "live", "-scopes", "links:read")
	if plain := strings.TrimSuffix(r.stdout, "\n"); r.code != 0 || !regexp.MustCompile(`^acme_live_[0-9A-Za-z]{32}$`).MatchString(plain) {
		t.Fatalf("create -checksum=false: exit %d, stderr %q; want a plain acme_ key", r.code, r.stderr)
	}

	// Rotation keeps the format.
	r = e.ok("", "rotate", "-product", "acme", "-checksum", "-owner", "acct_1", rec.ID.String())
	if next := verify(strings.TrimSuffix(r.stdout, "\n"), "Acme server"); next.Replaces != rec.ID {
		t.Errorf("the replacement replaces %s, want %s", next.Replaces, rec.ID)
	}

	// A key of the format on the command line is refused, unechoed.
	r = e.fails(2, "keyward: an API key was given on the command line", "", "-product", "acme", "show", "-owner", "acct_1", key)
	if strings.Contains(r.stderr, key) {
		t.Error("the refusal echoes the key")
	}
	// An invalid product or $KEYWARD_CHECKSUM is a usage error.
	e.fails(2, `keyward: invalid product: -product "Acme"`, "", "list", "-product", "Acme", "-owner", "acct_1")
	r = e.runEnv(append(environ(e.dsn), checksumEnv+"=yes"), "", e.bin, "list", "-owner", "acct_1")
	if r.code != 2 || !strings.Contains(r.stderr, "keyward: invalid checksum: $"+checksumEnv) {
		t.Errorf("$%s=yes: exit %d, stderr %q; want a usage error", checksumEnv, r.code, r.stderr)
	}
}

func testLifetimeRules(t *testing.T, e *env) {
	e.migrate()
	const month = 30 * 24 * time.Hour
	near := func(what string, got, want time.Time) {
		t.Helper()
		if d := got.Sub(want); d < -time.Minute || d > time.Minute {
			t.Errorf("%s expires at %v, want about %v", what, got, want)
		}
	}
	create := func(args ...string) []string {
		return append([]string{"-owner", "acct_1", "-name", "k", "-scopes", "links:read"}, args...)
	}

	// -max-lifetime gives an expiry to a key without one, keeps a shorter
	// one and refuses a longer one.
	_, rec := e.create(create("-mode", "live", "-max-lifetime", "30d")...)
	near("a key created without -expires", rec.ExpiresAt, time.Now().Add(month))
	_, rec = e.create(create("-mode", "live", "-max-lifetime", "30d", "-expires", "48h")...)
	near("a key created with -expires 48h", rec.ExpiresAt, time.Now().Add(48*time.Hour))
	e.fails(2, "keyward: invalid expires_at: must be at most 720h from now", "",
		append([]string{"create"}, create("-mode", "live", "-max-lifetime", "720h", "-expires", "90d")...)...)
	// A rotation of a key without expiry is capped.
	_, forever := e.create(create("-mode", "live")...)
	if !forever.ExpiresAt.IsZero() {
		t.Fatalf("a key without -max-lifetime expires at %v", forever.ExpiresAt)
	}
	r := e.ok("", "rotate", "-max-lifetime", "7d", "-owner", "acct_1", forever.ID.String())
	next, err := e.keys.Verify(context.Background(), strings.TrimSuffix(r.stdout, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	near("a replacement under -max-lifetime 7d", next.ExpiresAt, time.Now().Add(7*24*time.Hour))

	// -require-expiry refuses a key of its modes without -expires, before
	// any database: exit 2.
	r = e.fails(2, "keyward: -expires is required for live keys (-require-expiry live)", "",
		append([]string{"create"}, create("-mode", "live", "-require-expiry", "live")...)...)
	if r.stdout != "" {
		t.Errorf("stdout = %q", r.stdout)
	}
	e.fails(2, "-expires is required for test keys", "",
		append([]string{"-require-expiry", "live,test", "create"}, create("-mode", "test")...)...)
	_, rec = e.create(create("-mode", "test", "-require-expiry", "live")...)
	if !rec.ExpiresAt.IsZero() {
		t.Errorf("a test key under -require-expiry live expires at %v", rec.ExpiresAt)
	}
	_, rec = e.create(create("-mode", "live", "-require-expiry", "live", "-expires", "720h")...)
	near("a live key with -expires 720h", rec.ExpiresAt, time.Now().Add(month))
	// The requirement wins over the cap, as in the library.
	e.fails(2, "-expires is required for live keys", "",
		append([]string{"create"}, create("-mode", "live", "-require-expiry", "live", "-max-lifetime", "30d")...)...)
	// A rotation that would inherit no expiry is refused by the library.
	_, forever = e.create(create("-mode", "live")...)
	e.fails(2, "keyward: invalid expires_at: is required for live keys", "",
		"rotate", "-require-expiry", "live", "-owner", "acct_1", forever.ID.String())

	// Malformed values.
	e.fails(2, `invalid value "prod" for flag -require-expiry`, "", "list", "-owner", "acct_1", "-require-expiry", "prod")
	e.fails(2, `invalid value "0" for flag -max-lifetime`, "", "list", "-owner", "acct_1", "-max-lifetime", "0")
	e.fails(2, `invalid value "soon" for flag -max-lifetime`, "", "list", "-owner", "acct_1", "-max-lifetime", "soon")
}
