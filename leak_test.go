package keyward_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// wait returns the next value from c, failing the test if none comes
// within ten seconds.
func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestRevokeKeepsTheReason(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, rec := e.create(t, apikey.Live)
	_, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{Reason: "bad\nreason"})
	inputField(t, err, "reason")
	if mustGet(t, e.acct, rec.ID).Revoked() {
		t.Fatal("a refused revocation revoked the key")
	}
	got, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{Reason: "  laptop stolen  "})
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedReason != "laptop stolen" || mustGet(t, e.acct, rec.ID).RevokedReason != "laptop stolen" {
		t.Errorf("RevokedReason = %q, want the trimmed reason", got.RevokedReason)
	}
	_, a := e.create(t, apikey.Live)
	_, b := e.create(t, apikey.Test)
	all, err := e.acct.RevokeAll(ctx, keyward.RevokeParams{Reason: "account closed"})
	if err != nil || len(all) != 2 {
		t.Fatalf("RevokeAll = %d, %v", len(all), err)
	}
	for _, r := range []apikey.Record{a, b} {
		if got := mustGet(t, e.acct, r.ID).RevokedReason; got != "account closed" {
			t.Errorf("RevokeAll reason = %q", got)
		}
	}
}

func TestReportExposure(t *testing.T) {
	reports := make(chan keyward.ExposureReport, 10)
	e := newEnv(t, keyward.WithExposureHook(func(_ context.Context, r keyward.ExposureReport) { reports <- r }))
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)

	got, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "github", URL: "https://github.com/acme/app/blob/main/.env"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Known || !got.First || got.Record.ID != rec.ID {
		t.Fatalf("report = %+v, want a first report of the key", got)
	}
	r := got.Record
	if !r.Revoked() || r.RevokedReason != apikey.ReasonExposed || !r.RevokedAt.Equal(e.keys.Now()) {
		t.Errorf("record revoked=%v reason %q at %v; want revoked now as exposed", r.Revoked(), r.RevokedReason, r.RevokedAt)
	}
	if r.Exposure == nil || r.Exposure.Source != "github" || r.Exposure.URL != "https://github.com/acme/app/blob/main/.env" || !r.Exposure.At.Equal(e.keys.Now()) {
		t.Errorf("exposure = %+v", r.Exposure)
	}
	if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify of an exposed key = %v, want ErrRevoked", err)
	}
	if h := wait(t, reports, "the exposure hook"); h.Record.ID != rec.ID || !h.First {
		t.Errorf("hook got %+v", h)
	}

	// Idempotent: a repeat changes nothing and tells no one.
	e.clock.Advance(time.Hour)
	again, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "pastebin"})
	if err != nil || !again.Known || again.First || again.Record.Exposure.Source != "github" {
		t.Errorf("repeat = %+v, %v; want known, not first, the first source kept", again, err)
	}
	select {
	case h := <-reports:
		t.Errorf("the hook was called for a repeat: %+v", h)
	default:
	}
	if strings.Contains(e.logs.String(), raw[len("ck_live_"):]) {
		t.Error("the logs hold the raw key")
	}
}

func TestReportExposureOfKeysThatAreNotOurs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sec, err := apikey.Generate(apikey.Live) // well formed, never stored
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{
		"unknown":   sec.Reveal(),
		"malformed": "ck_live_short",
		"other":     "sk_live_" + strings.Repeat("a", 32),
	} {
		got, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "github"})
		if err != nil || got.Known || got.First || got.Record.ID != [16]byte{} {
			t.Errorf("%s: report = %+v, %v; want unknown, no error", name, got, err)
		}
	}
	_, err = e.keys.ReportExposure(ctx, sec.Reveal(), keyward.Exposure{})
	inputField(t, err, "source")
	_, err = e.keys.ReportExposure(ctx, sec.Reveal(), keyward.Exposure{Source: "github", URL: "https://x.test/a b"})
	inputField(t, err, "url")

	e.spy.set(func(s *spyStore) { s.failHash = errors.New("connection refused") })
	raw, _ := e.create(t, apikey.Live)
	if _, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "github"}); !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Errorf("report during an outage = %v, want ErrStoreUnavailable", err)
	}
}

func TestReportExposureMarkOnly(t *testing.T) {
	e := newEnv(t, keyward.WithExposurePolicy(keyward.MarkExposed))
	ctx := context.Background()
	raw, _ := e.create(t, apikey.Live)
	got, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "support"})
	if err != nil || !got.First || got.Record.Revoked() || got.Record.Exposure == nil {
		t.Fatalf("report = %+v, %v; want marked, not revoked", got, err)
	}
	if _, err := e.keys.Verify(ctx, raw); err != nil {
		t.Errorf("a key only marked exposed stopped working: %v", err)
	}
	if _, err := keyward.New(memory.New(), keyward.WithExposurePolicy(7)); err == nil {
		t.Error("an unknown policy was accepted")
	}
}

func TestChecksummedFormatVerifiesOldKeys(t *testing.T) {
	e := newEnv(t) // plain format
	ctx := context.Background()
	old, _ := e.create(t, apikey.Live)
	sum, err := apikey.NewFormat("ck", apikey.WithChecksum())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyward.New(e.spy, keyward.WithFormat(sum), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	sec, _, err := k2.Owner("acct_test").Create(ctx, keyward.CreateParams{Name: "new", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	fresh := sec.Reveal()
	if len(fresh) != sum.KeyLen() {
		t.Fatalf("new key has %d characters, want %d", len(fresh), sum.KeyLen())
	}
	for name, raw := range map[string]string{"old plain key": old, "new checksummed key": fresh} {
		if _, err := k2.Verify(ctx, raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	typo := []byte(fresh)
	typo[15] = map[bool]byte{true: 'B', false: 'A'}[typo[15] == 'A']
	before := e.spy.getByHash.Load()
	_, err = k2.Verify(ctx, string(typo))
	if !errors.Is(err, keyward.ErrMalformedKey) || !errors.Is(err, apikey.ErrChecksum) {
		t.Errorf("Verify of a mistyped key = %v, want ErrMalformedKey matching apikey.ErrChecksum", err)
	}
	if n := e.spy.getByHash.Load() - before; n != 0 {
		t.Errorf("a key failing its checksum cost %d store lookups, want 0", n)
	}
}

func TestCanary(t *testing.T) {
	trips := make(chan apikey.Trip, 10)
	e := newEnv(t, keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { trips <- tr }))
	ctx := context.Background()
	sec, canary, err := e.acct.Create(ctx, keyward.CreateParams{Name: "tripwire in .env", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead), Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	if !canary.Canary {
		t.Fatal("the record is not a canary")
	}
	raw := sec.Reveal()
	caller := keyward.Caller{Addr: "203.0.113.9:4242", UserAgent: "python-requests/2.32\x00\u202e", Method: "GET", Path: "/v1/links"}
	for i := range 3 {
		e.clock.Advance(time.Second)
		_, err := e.keys.VerifyFrom(ctx, raw, caller)
		if err != keyward.ErrUnknownKey { // the very same error as a key that does not exist
			t.Fatalf("use %d of a canary = %v, want ErrUnknownKey itself", i, err)
		}
		tr := wait(t, trips, "a trip")
		if tr.KeyID != canary.ID || tr.Owner != "acct_test" || tr.Addr != caller.Addr || tr.Route != "GET /v1/links" || !tr.At.Equal(e.keys.Now()) {
			t.Errorf("trip %d = %+v", i, tr)
		}
		if tr.UserAgent != "python-requests/2.32\ufffd\ufffd" {
			t.Errorf("trip user agent %q, want control and bidi characters replaced", tr.UserAgent)
		}
	}
	stored, err := e.acct.Trips(ctx, canary.ID, 0)
	if err != nil || len(stored) != 3 {
		t.Fatalf("Trips = %d, %v; want 3", len(stored), err)
	}
	if !stored[0].At.After(stored[2].At) {
		t.Error("trips are not newest first")
	}
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e.acct, canary.ID); !got.LastUsedAt.IsZero() {
		t.Errorf("a canary's use was recorded as a last use: %v", got.LastUsedAt)
	}
	if _, _, err := e.acct.Rotate(ctx, canary.ID, keyward.RotateParams{}); !errors.Is(err, keyward.ErrCanaryRotation) {
		t.Errorf("Rotate of a canary = %v, want ErrCanaryRotation", err)
	}
	if !strings.Contains(e.logs.String(), "canary key was used") || strings.Contains(e.logs.String(), raw[len("ck_live_"):]) {
		t.Errorf("logs should report the trip without the key:\n%s", e.logs.String())
	}

	// A canary found exposed is marked, not revoked: it stays armed.
	rep, err := e.keys.ReportExposure(ctx, raw, keyward.Exposure{Source: "github"})
	if err != nil || !rep.Known || rep.Record.Revoked() || rep.Record.Exposure == nil {
		t.Errorf("exposure of a canary = %+v, %v; want marked, not revoked", rep, err)
	}
	if _, err := e.keys.Verify(ctx, raw); err != keyward.ErrUnknownKey {
		t.Errorf("after the report, Verify = %v", err)
	}
	wait(t, trips, "a trip after the report")

	// A revoked canary is retired: it answers as revoked and trips no more.
	if _, err := e.acct.Revoke(ctx, canary.ID, keyward.RevokeParams{Reason: "retired"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("Verify of a revoked canary = %v, want ErrRevoked", err)
	}
	if err := e.keys.Close(); err != nil { // drains the trip queue
		t.Fatal(err)
	}
	select {
	case tr := <-trips:
		t.Errorf("a revoked canary tripped: %+v", tr)
	default:
	}
}

func TestCanaryTripsAreBoundedAndHooksContained(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls int
	e := newEnv(t, keyward.WithCanaryHook(func(context.Context, apikey.Trip) {
		calls++ // the writer is one goroutine: no lock needed
		if calls == 1 {
			entered <- struct{}{}
			<-release
		}
		if calls == 2 {
			panic("hook bug")
		}
	}))
	ctx := context.Background()
	sec, _, err := e.acct.Create(ctx, keyward.CreateParams{Name: "canary", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead), Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	if _, err := e.keys.Verify(ctx, raw); err != keyward.ErrUnknownKey {
		t.Fatal(err)
	}
	wait(t, entered, "the hook of the first trip")
	// The writer is held in the hook: the queue fills, and the rest is
	// dropped without blocking verification.
	const flood = 300
	for range flood {
		if _, err := e.keys.Verify(ctx, raw); err != keyward.ErrUnknownKey {
			t.Fatal(err)
		}
	}
	close(release)
	if err := e.keys.Close(); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "dropped_trips=44") {
		t.Errorf("logs do not count the 44 dropped trips:\n%.2000s", logs)
	}
	if !strings.Contains(logs, "the canary hook panicked") {
		t.Error("the hook's panic was not logged")
	}
	if calls != 1+256 {
		t.Errorf("hook called %d times, want %d (the first trip and the queue)", calls, 1+256)
	}
}

var _ store.Store = (*spyStore)(nil)
