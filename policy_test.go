package keyward_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

func testPolicy() *apikey.Policy {
	return &apikey.Policy{
		Rate:     apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 10},
		Quota:    apikey.Quota{Requests: 5000, Per: apikey.Day},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
}

func TestPolicyLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mine := testPolicy()
	_, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "limited", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead), Policy: mine})
	if err != nil {
		t.Fatal(err)
	}
	mine.Rate.Requests = 1 // the caller's copy; the key's is its own
	got := mustGet(t, e.acct, rec.ID)
	if got.Policy == nil || got.Policy.Rate.Requests != 100 || got.Policy.Quota != testPolicy().Quota || len(got.Policy.Networks) != 1 {
		t.Fatalf("stored policy = %+v", got.Policy)
	}

	_, _, err = e.acct.Create(ctx, keyward.CreateParams{Name: "bad", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead),
		Policy: &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/24")}}})
	inputField(t, err, "policy")
	if !errors.Is(err, apikey.ErrInvalidPolicy) || !strings.Contains(err.Error(), "did you mean 203.0.113.0/24") {
		t.Errorf("unmasked network: %v", err)
	}

	// Update replaces, and a zero policy removes.
	lower := &apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Second}}
	up, err := e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Policy: lower})
	if err != nil || up.Policy == nil || up.Policy.Rate != lower.Rate || up.Policy.Quota != (apikey.Quota{}) {
		t.Fatalf("Update policy = %+v, %v", up.Policy, err)
	}
	_, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Policy: &apikey.Policy{Quota: apikey.Quota{Requests: 5}}})
	inputField(t, err, "policy")

	// A rotation keeps the policy.
	_, next, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Policy == nil || next.Policy.Rate != lower.Rate {
		t.Errorf("replacement policy = %+v, want %+v", next.Policy, lower)
	}
	if up, err := e.acct.Update(ctx, next.ID, keyward.UpdateParams{Policy: &apikey.Policy{}}); err != nil || up.Policy != nil {
		t.Errorf("removing the policy: %+v, %v", up.Policy, err)
	}
}

func TestIdempotencyCoversThePolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := keyward.CreateParams{Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead), IdempotencyKey: "req-1", Policy: testPolicy()}
	if _, _, err := e.acct.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.acct.Create(ctx, p); !errors.Is(err, keyward.ErrAlreadyCreated) {
		t.Errorf("repeat = %v, want ErrAlreadyCreated", err)
	}
	p.Policy = &apikey.Policy{Quota: apikey.Quota{Requests: 1, Per: apikey.Month}}
	if _, _, err := e.acct.Create(ctx, p); !errors.Is(err, keyward.ErrIdempotencyConflict) {
		t.Errorf("repeat with another policy = %v, want ErrIdempotencyConflict", err)
	}
}

func TestLifetimeRules(t *testing.T) {
	const lifetime = 90 * 24 * time.Hour
	e := newEnv(t, keyward.WithMaxLifetime(lifetime), keyward.WithRequiredExpiry(apikey.Live))
	ctx := context.Background()
	now := e.keys.Now()
	create := func(mode apikey.Mode, expires time.Time) (apikey.Record, error) {
		_, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "k", Mode: mode, Scopes: scope.NewSet(scope.LinksRead), ExpiresAt: expires})
		return rec, err
	}
	// Test keys without an expiry are capped at the lifetime.
	rec, err := create(apikey.Test, time.Time{})
	if err != nil || !rec.ExpiresAt.Equal(now.Add(lifetime)) {
		t.Errorf("test key without expiry: expires %v, %v; want %v", rec.ExpiresAt, err, now.Add(lifetime))
	}
	// Live keys must say when they expire: the requirement wins over the cap.
	_, err = create(apikey.Live, time.Time{})
	inputField(t, err, "expires_at")
	if !strings.Contains(err.Error(), "required for live keys") {
		t.Errorf("error %q", err)
	}
	if rec, err = create(apikey.Live, now.Add(30*24*time.Hour)); err != nil || !rec.ExpiresAt.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("live key with an expiry: %v, %v", rec.ExpiresAt, err)
	}
	// Beyond the lifetime: refused, with the limit in the message.
	_, err = create(apikey.Test, now.Add(lifetime+time.Second))
	inputField(t, err, "expires_at")
	if !strings.Contains(err.Error(), "at most 90d") && !strings.Contains(err.Error(), "at most 2160h") {
		t.Errorf("error %q does not state the limit", err)
	}

	// A key issued before the rules, without an expiry, rotates into a
	// capped replacement; a live one needs an expiry given.
	old, err := keyward.New(e.spy, keyward.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, forever, err := old.Owner("acct_test").Create(ctx, keyward.CreateParams{Name: "old", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	_, next, err := e.acct.Rotate(ctx, forever.ID, keyward.RotateParams{})
	if err != nil || !next.ExpiresAt.Equal(now.Add(lifetime)) {
		t.Errorf("replacement of a key without expiry: %v, %v; want capped at %v", next.ExpiresAt, err, now.Add(lifetime))
	}
	_, liveForever, err := old.Owner("acct_test").Create(ctx, keyward.CreateParams{Name: "old live", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.acct.Rotate(ctx, liveForever.ID, keyward.RotateParams{})
	inputField(t, err, "expires_at")
	if _, _, err := e.acct.Rotate(ctx, liveForever.ID, keyward.RotateParams{ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Errorf("rotation with an expiry: %v", err)
	}

	for name, opt := range map[string]keyward.Option{
		"zero lifetime": keyward.WithMaxLifetime(0),
		"no mode":       keyward.WithRequiredExpiry(),
		"bad mode":      keyward.WithRequiredExpiry(apikey.Mode(9)),
	} {
		if _, err := keyward.New(memory.New(), opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
