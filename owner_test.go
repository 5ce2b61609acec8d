package keyward_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// inputField fails unless err is an *InputError for field.
func inputField(t *testing.T, err error, field string) {
	t.Helper()
	var ie *keyward.InputError
	if !errors.As(err, &ie) || !errors.Is(err, keyward.ErrInvalidInput) {
		t.Fatalf("error = %v, want an InputError for %q", err, field)
	}
	if ie.Field != field {
		t.Errorf("InputError for %q, want %q: %v", ie.Field, field, err)
	}
}

func TestOwnersAreIsolated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acme, globex := e.keys.Owner("acme"), e.keys.Owner("globex")
	create := func(o keyward.Owner) (string, apikey.Record) {
		sec, rec, err := o.Create(ctx, keyward.CreateParams{Name: o.ID() + " key", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead, scope.LinksWrite)})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Reveal(), rec
	}
	acmeRaw, acmeKey := create(acme)
	globexRaw, globexKey := create(globex)

	// Verify is global, and names each key's owner.
	for raw, want := range map[string]string{acmeRaw: "acme", globexRaw: "globex"} {
		rec, err := e.keys.Verify(ctx, raw)
		if err != nil || rec.Owner != want {
			t.Errorf("Verify = owner %q, %v; want %q", rec.Owner, err, want)
		}
	}

	// globex handed acme's key ID: exactly what an unknown ID gets.
	unknown := uuid.New()
	for _, id := range []uuid.UUID{acmeKey.ID, unknown} {
		checks := map[string]error{
			"Get":    second(globex.Get(ctx, id)),
			"Update": second(globex.Update(ctx, id, keyward.UpdateParams{Name: "mine now", Scopes: scope.NewSet(scope.LinksRead)})),
			"Rotate": third(globex.Rotate(ctx, id, keyward.RotateParams{Overlap: time.Hour})),
			"Revoke": second(globex.Revoke(ctx, id, keyward.RevokeParams{})),
		}
		for op, err := range checks {
			if !errors.Is(err, keyward.ErrNotFound) || err != keyward.ErrNotFound {
				t.Errorf("%s of %s through another owner = %v, want exactly ErrNotFound", op, id, err)
			}
		}
	}
	revoked, err := globex.RevokeAll(ctx, keyward.RevokeParams{})
	if err != nil || len(revoked) != 1 || revoked[0].ID != globexKey.ID {
		t.Fatalf("globex.RevokeAll = %v, %v; want globex's key only", revoked, err)
	}
	// acme's key is untouched and still works; globex's does not.
	if got := mustGet(t, acme, acmeKey.ID); got.Name != acmeKey.Name || got.Revoked() || got.ReplacedBy != uuid.Nil || !got.Scopes.Equal(acmeKey.Scopes) {
		t.Errorf("acme's key changed through globex: %+v", got)
	}
	if _, err := e.keys.Verify(ctx, acmeRaw); err != nil {
		t.Errorf("acme's key after globex revoked all its keys: %v", err)
	}
	if _, err := e.keys.Verify(ctx, globexRaw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("globex's key after RevokeAll: %v, want ErrRevoked", err)
	}
	for o, want := range map[keyward.Owner]uuid.UUID{acme: acmeKey.ID, globex: globexKey.ID} {
		page, err := o.List(ctx, keyward.ListOptions{})
		if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != want {
			t.Errorf("%s lists %v, %v; want only its key %s", o.ID(), page.Keys, err, want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func TestInvalidOwnerIsRefusedBeforeTheStore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"", "acct 1", "acct\n", strings.Repeat("o", apikey.MaxOwnerLen+1)} {
		o := e.keys.Owner(id)
		before := e.spy.calls.Load()
		for op, err := range map[string]error{
			"Create":    third(o.Create(ctx, keyward.CreateParams{Name: "x", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})),
			"Get":       second(o.Get(ctx, uuid.New())),
			"List":      second(o.List(ctx, keyward.ListOptions{})),
			"Update":    second(o.Update(ctx, uuid.New(), keyward.UpdateParams{Name: "x"})),
			"Rotate":    third(o.Rotate(ctx, uuid.New(), keyward.RotateParams{})),
			"Revoke":    second(o.Revoke(ctx, uuid.New(), keyward.RevokeParams{})),
			"RevokeAll": second(o.RevokeAll(ctx, keyward.RevokeParams{})),
		} {
			t.Run(fmt.Sprintf("%q/%s", id, op), func(t *testing.T) {
				inputField(t, err, "owner")
				if !errors.Is(err, apikey.ErrInvalidOwner) {
					t.Errorf("error %v does not match apikey.ErrInvalidOwner", err)
				}
			})
		}
		if n := e.spy.calls.Load() - before; n != 0 {
			t.Errorf("owner %q: %d store calls, want none", id, n)
		}
	}
	var zero keyward.Owner
	if _, err := zero.Get(ctx, uuid.New()); err == nil {
		t.Error("a zero Owner answered")
	}
}

func TestVerifyReturnsMetadata(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sec, _, err := e.acct.Create(ctx, keyward.CreateParams{
		Name: "tagged", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		Metadata: map[string]string{"merchant_plan": "gold", "integration": "woocommerce"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.keys.Verify(ctx, sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := rec.Metadata.Get("merchant_plan"); !ok || v != "gold" || rec.Metadata.Len() != 2 {
		t.Errorf("Verify returned metadata %v", rec.Metadata)
	}
}

// TestVerifyWithMetadataDoesNotAllocate holds the promise: a key
// carrying 10 metadata pairs verifies on the memory store without
// allocating (after its first use, which allocates its last-used cell).
func TestVerifyWithMetadataDoesNotAllocate(t *testing.T) {
	keys, err := keyward.New(memory.New(), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	sec, _, err := keys.Owner("acme").Create(ctx, keyward.CreateParams{
		Name: "tagged", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite), Metadata: manyPairs(10),
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	if _, err := keys.Verify(ctx, raw); err != nil { // first use: the cell
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() {
		rec, err := keys.Verify(ctx, raw)
		if err != nil || rec.Metadata.Len() != 10 {
			t.Fatalf("Verify = %v, %d pairs", err, rec.Metadata.Len())
		}
	}); n != 0 {
		t.Errorf("Verify of a key with 10 metadata pairs allocates %v times, want 0", n)
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live, scope.LinksRead, scope.LinksWrite, scope.SessionsWrite)

	got, err := e.acct.Update(ctx, rec.ID, keyward.UpdateParams{
		Name:     "  Renamed  ",
		Scopes:   scope.NewSet(scope.LinksRead, scope.SessionsWrite),
		Metadata: map[string]string{"team": "payments"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Renamed" || !got.Scopes.Equal(scope.NewSet(scope.LinksRead, scope.SessionsWrite)) {
		t.Errorf("Update returned %+v", got)
	}
	if v, _ := got.Metadata.Get("team"); v != "payments" {
		t.Errorf("metadata = %v", got.Metadata)
	}
	// Visible to Verify at once: the scope is gone for the next request.
	verified, err := e.keys.Verify(ctx, raw)
	if err != nil || verified.Scopes.Has(scope.LinksWrite) || verified.Name != "Renamed" {
		t.Errorf("Verify after Update = %v, %v: the update is not visible at once", verified.Scopes, err)
	}

	// The zero params change nothing; nil metadata keeps it, an empty map
	// clears it.
	if got, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{}); err != nil || got.Name != "Renamed" || got.Metadata.Len() != 1 {
		t.Errorf("an empty update = %+v, %v", got, err)
	}
	// The empty scope set leaves the scopes as they are.
	if got, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Scopes: scope.NewSet()}); err != nil ||
		!got.Scopes.Equal(scope.NewSet(scope.LinksRead, scope.SessionsWrite)) {
		t.Errorf("an update with no scopes = %v, %v; want the scopes unchanged", got.Scopes, err)
	}
	if got, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Metadata: map[string]string{}}); err != nil || !got.Metadata.IsEmpty() {
		t.Errorf("clearing metadata = %v, %v", got.Metadata, err)
	}

	// Widening is refused, saying to create a new key, and nothing changes.
	_, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Name: "sneaky", Scopes: scope.NewSet(scope.LinksRead, scope.LinksWrite)})
	inputField(t, err, "scopes")
	if !errors.Is(err, keyward.ErrWidening) || !strings.Contains(err.Error(), "create a new key") || !strings.Contains(err.Error(), "links:write") {
		t.Errorf("widening refused with %q; want ErrWidening naming links:write and saying to create a new key", err)
	}
	if got := mustGet(t, e.acct, rec.ID); got.Name != "Renamed" || got.Scopes.Has(scope.LinksWrite) {
		t.Errorf("a refused update changed the key: %+v", got)
	}

	// Expiry: only earlier, in the future.
	later := e.clock.Now().Add(48 * time.Hour)
	if got, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{ExpiresAt: later}); err != nil || got.ExpiresAt != later {
		t.Fatalf("setting an expiry = %v, %v", got.ExpiresAt, err)
	}
	_, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{ExpiresAt: later.Add(time.Hour)})
	inputField(t, err, "expires_at")
	if !strings.Contains(err.Error(), "create a new key") {
		t.Errorf("a later expiry refused with %q; want it to say to create a new key", err)
	}
	_, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{ExpiresAt: e.clock.Now().Add(-time.Second)})
	inputField(t, err, "expires_at")
	if got, err = e.acct.Update(ctx, rec.ID, keyward.UpdateParams{ExpiresAt: later.Add(-time.Hour)}); err != nil || got.ExpiresAt != later.Add(-time.Hour) {
		t.Errorf("an earlier expiry = %v, %v", got.ExpiresAt, err)
	}

	for name, p := range map[string]keyward.UpdateParams{
		"bad name":        {Name: "a\u2066b"},
		"unknown scope":   {Scopes: scope.NewSet("links:delete")},
		"metadata limits": {Metadata: manyPairs(apikey.MaxMetadataPairs + 1)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.acct.Update(ctx, rec.ID, p)
			var ie *keyward.InputError
			if !errors.As(err, &ie) {
				t.Errorf("Update = %v, want an InputError", err)
			}
		})
	}

	if _, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Name: "revived?"}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
		t.Errorf("Update of a revoked key = %v, want ErrAlreadyRevoked", err)
	}
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sec, old, err := e.acct.Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.WebhooksRead, scope.EventsRead),
		Metadata: map[string]string{"integration": "erp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	oldRaw := sec.Reveal()
	e.clock.Advance(time.Hour)
	newSec, rec, err := e.acct.Rotate(ctx, old.ID, keyward.RotateParams{Overlap: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID == old.ID || rec.Owner != old.Owner || rec.Name != old.Name || rec.Mode != old.Mode ||
		!rec.Scopes.Equal(old.Scopes) || !rec.Metadata.Equal(old.Metadata) || !rec.ExpiresAt.IsZero() ||
		rec.CreatedAt != e.clock.Now() || rec.Replaces != old.ID {
		t.Errorf("rotated record %+v does not replace %+v", rec, old)
	}
	if newSec.Reveal() == oldRaw {
		t.Fatal("rotation returned the old key")
	}
	oldNow := mustGet(t, e.acct, old.ID)
	if oldNow.ExpiresAt != e.clock.Now().Add(10*time.Minute) || oldNow.ReplacedBy != rec.ID {
		t.Errorf("old key expires at %v, replaced by %s; want now + overlap, %s", oldNow.ExpiresAt, oldNow.ReplacedBy, rec.ID)
	}
	// A second rotation during the overlap is refused: no third key.
	if _, _, err := e.acct.Rotate(ctx, old.ID, keyward.RotateParams{Overlap: time.Minute}); !errors.Is(err, keyward.ErrReplaced) {
		t.Errorf("rotating a key being replaced = %v, want ErrReplaced", err)
	}
	// Both work during the overlap.
	e.clock.Advance(10*time.Minute - time.Microsecond)
	for _, raw := range []string{oldRaw, newSec.Reveal()} {
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Errorf("during the overlap, Verify = %v", err)
		}
	}
	// Then only the new one, and the old one cannot be rotated any more.
	e.clock.Advance(time.Microsecond)
	if _, err := e.keys.Verify(ctx, oldRaw); !errors.Is(err, keyward.ErrExpired) {
		t.Errorf("after the overlap, the old key: %v, want ErrExpired", err)
	}
	if _, err := e.keys.Verify(ctx, newSec.Reveal()); err != nil {
		t.Errorf("after the overlap, the new key: %v", err)
	}
	if _, _, err := e.acct.Rotate(ctx, old.ID, keyward.RotateParams{}); !errors.Is(err, keyward.ErrKeyExpired) {
		t.Errorf("rotating an expired key = %v, want ErrKeyExpired", err)
	}
}

func TestRotateRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t.Run("zero overlap ends the old key at once", func(t *testing.T) {
		raw, rec := e.create(t, apikey.Test)
		if _, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrExpired) {
			t.Errorf("Verify = %v, want ErrExpired", err)
		}
	})
	t.Run("the overlap is capped", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		_, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: keyward.DefaultMaxOverlap + time.Nanosecond})
		inputField(t, err, "overlap")
		if !strings.Contains(err.Error(), "168h") {
			t.Errorf("the refusal %q does not say the cap", err)
		}
		if _, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: keyward.DefaultMaxOverlap}); err != nil {
			t.Errorf("an overlap of exactly the cap: %v", err)
		}
		if got := mustGet(t, e.acct, rec.ID).ExpiresAt; got != e.clock.Now().Add(7*24*time.Hour) {
			t.Errorf("the old key expires at %v, want in 7 days", got)
		}
	})
	t.Run("WithMaxOverlap", func(t *testing.T) {
		e := newEnv(t, keyward.WithMaxOverlap(time.Hour))
		_, rec := e.create(t, apikey.Test)
		_, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: 61 * time.Minute})
		inputField(t, err, "overlap")
		if !strings.Contains(err.Error(), "at most 1h") || e.keys.MaxOverlap() != time.Hour {
			t.Errorf("refusal %q, MaxOverlap %v; want the 1h cap", err, e.keys.MaxOverlap())
		}
	})
	t.Run("negative overlap", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		_, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: -time.Second})
		inputField(t, err, "overlap")
	})
	t.Run("the replacement keeps the old key's expiry", func(t *testing.T) {
		expires := e.clock.Now().Add(30 * 24 * time.Hour)
		_, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "expiring", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead), ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		_, next, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if next.ExpiresAt != expires {
			t.Errorf("the replacement expires at %v, want the old key's %v", next.ExpiresAt, expires)
		}
	})
	t.Run("unless given one", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		expires := e.clock.Now().Add(90 * 24 * time.Hour)
		_, next, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour, ExpiresAt: expires})
		if err != nil || next.ExpiresAt != expires {
			t.Errorf("Rotate with an expiry = %v, %v; want %v", next.ExpiresAt, err, expires)
		}
		_, rec = e.create(t, apikey.Test)
		_, _, err = e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{ExpiresAt: e.clock.Now()})
		inputField(t, err, "expires_at")
	})
	t.Run("an earlier expiry of the old key is kept", func(t *testing.T) {
		_, rec, err := e.acct.Create(ctx, keyward.CreateParams{
			Name: "short", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead),
			ExpiresAt: e.clock.Now().Add(time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, e.acct, rec.ID).ExpiresAt; got != rec.ExpiresAt {
			t.Errorf("rotation extended the expiry to %v (was %v)", got, rec.ExpiresAt)
		}
	})
	t.Run("again once the replacement is revoked", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		_, lost, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.acct.Revoke(ctx, lost.ID, keyward.RevokeParams{}); err != nil { // its raw key was lost
			t.Fatal(err)
		}
		_, next, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
		if err != nil || next.Replaces != rec.ID || mustGet(t, e.acct, rec.ID).ReplacedBy != next.ID {
			t.Errorf("rotating again after the replacement was revoked = %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		_, rec := e.create(t, apikey.Test)
		if _, err := e.acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour}); !errors.Is(err, keyward.ErrAlreadyRevoked) {
			t.Errorf("Rotate of a revoked key = %v, want ErrAlreadyRevoked", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, _, err := e.acct.Rotate(ctx, uuid.New(), keyward.RotateParams{Overlap: time.Hour}); !errors.Is(err, keyward.ErrNotFound) {
			t.Errorf("Rotate of an unknown key = %v, want ErrNotFound", err)
		}
	})
	t.Run("failure leaves things as they were", func(t *testing.T) {
		raw, rec := e.create(t, apikey.Test)
		before, _ := e.acct.List(ctx, keyward.ListOptions{Status: apikey.Active, Limit: 1000})
		e.spy.set(func(s *spyStore) { s.failRotate = errors.New("connection reset") })
		sec, _, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
		e.spy.set(func(s *spyStore) { s.failRotate = nil })
		if !errors.Is(err, keyward.ErrStoreUnavailable) {
			t.Fatalf("Rotate = %v, want ErrStoreUnavailable", err)
		}
		if !sec.IsZero() {
			t.Error("a failed rotation returned a key")
		}
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Errorf("the old key stopped working: %v", err)
		}
		after, _ := e.acct.List(ctx, keyward.ListOptions{Status: apikey.Active, Limit: 1000})
		if len(after.Keys) != len(before.Keys) {
			t.Errorf("a failed rotation left %d active keys, want %d", len(after.Keys), len(before.Keys))
		}
	})
}

// TestRotateConcurrently: of many rotations of one key at once, exactly
// one succeeds, so a key never has two replacements.
func TestRotateConcurrently(t *testing.T) {
	e := newEnv(t)
	_, rec := e.create(t, apikey.Live)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = e.acct.Rotate(context.Background(), rec.ID, keyward.RotateParams{Overlap: time.Hour})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, keyward.ErrReplaced):
			t.Errorf("concurrent Rotate = %v, want nil or ErrReplaced", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent rotations succeeded, want 1", ok, n)
	}
}

func TestIdempotentCreate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := keyward.CreateParams{
		Name: "WooCommerce plugin", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		Metadata: map[string]string{"shop": "42"}, IdempotencyKey: "8e03978e-40d5-43e8-bc93-6894a57f9324",
	}
	sec, first, err := e.acct.Create(ctx, p)
	if err != nil || sec.IsZero() {
		t.Fatalf("first Create = %v", err)
	}
	e.clock.Advance(time.Hour)

	// The same request again: no new key, the first one's record, no raw
	// key. Its name given with other spaces is the same request.
	again := p
	again.Name = "  WooCommerce plugin "
	sec, got, err := e.acct.Create(ctx, again)
	if !errors.Is(err, keyward.ErrAlreadyCreated) {
		t.Fatalf("repeated Create = %v, want ErrAlreadyCreated", err)
	}
	if !sec.IsZero() || sec.Reveal() != "" {
		t.Error("a repeated create showed a raw key")
	}
	if got.ID != first.ID {
		t.Errorf("repeat returned key %s, want %s", got.ID, first.ID)
	}

	// The same idempotency key with other parameters is refused.
	for name, change := range map[string]func(*keyward.CreateParams){
		"name":     func(p *keyward.CreateParams) { p.Name = "Other" },
		"mode":     func(p *keyward.CreateParams) { p.Mode = apikey.Test },
		"scopes":   func(p *keyward.CreateParams) { p.Scopes = scope.NewSet(scope.SessionsRead) },
		"metadata": func(p *keyward.CreateParams) { p.Metadata = map[string]string{"shop": "43"} },
		"expiry":   func(p *keyward.CreateParams) { p.ExpiresAt = e.clock.Now().Add(time.Hour) },
	} {
		t.Run(name, func(t *testing.T) {
			q := p
			change(&q)
			sec, _, err := e.acct.Create(ctx, q)
			inputField(t, err, "idempotency_key")
			if !errors.Is(err, keyward.ErrIdempotencyConflict) || !sec.IsZero() {
				t.Errorf("Create = %v, want ErrIdempotencyConflict and no key", err)
			}
		})
	}

	// Idempotency keys are per owner.
	if _, theirs, err := e.keys.Owner("globex").Create(ctx, p); err != nil || theirs.ID == first.ID {
		t.Errorf("another owner's Create with the same idempotency key = %v", err)
	}
	page, err := e.acct.List(ctx, keyward.ListOptions{})
	if err != nil || len(page.Keys) != 1 {
		t.Errorf("the owner has %d keys after repeats and conflicts, want 1 (%v)", len(page.Keys), err)
	}
}

func TestRevokeAll(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var raws []string
	for range 3 {
		raw, _ := e.create(t, apikey.Live)
		raws = append(raws, raw)
		e.clock.Advance(time.Second)
	}
	_, revokedBefore := e.create(t, apikey.Test)
	if _, err := e.acct.Revoke(ctx, revokedBefore.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	theirs := e.keys.Owner("globex")
	sec, _, err := theirs.Create(ctx, keyward.CreateParams{Name: "globex", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)

	revoked, err := e.acct.RevokeAll(ctx, keyward.RevokeParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(revoked) != 3 {
		t.Fatalf("RevokeAll revoked %d keys, want the 3 active ones", len(revoked))
	}
	for _, rec := range revoked {
		if rec.RevokedAt != e.clock.Now() {
			t.Errorf("key %s revoked at %v, want now", rec.ID, rec.RevokedAt)
		}
	}
	for _, raw := range raws {
		if _, err := e.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("Verify after RevokeAll = %v, want ErrRevoked", err)
		}
	}
	if _, err := e.keys.Verify(ctx, sec.Reveal()); err != nil {
		t.Errorf("another owner's key after RevokeAll: %v", err)
	}
	if again, err := e.acct.RevokeAll(ctx, keyward.RevokeParams{}); err != nil || len(again) != 0 {
		t.Errorf("a second RevokeAll = %d keys, %v; want none", len(again), err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var created []apikey.Record
	for i := range 5 {
		mode := apikey.Live
		if i%2 == 1 {
			mode = apikey.Test
		}
		_, rec := e.create(t, mode)
		created = append(created, rec)
		e.clock.Advance(time.Second)
	}
	page, err := e.acct.List(ctx, keyward.ListOptions{Limit: 2, Mode: apikey.Live})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 2 || page.Keys[0].ID != created[4].ID || page.Keys[1].ID != created[2].ID || page.Next == "" {
		t.Fatalf("first page of live keys = %v", page)
	}
	page, err = e.acct.List(ctx, keyward.ListOptions{Limit: 2, Mode: apikey.Live, Cursor: page.Next})
	if err != nil || len(page.Keys) != 1 || page.Keys[0].ID != created[0].ID || page.Next != "" {
		t.Fatalf("second page = %v, %v", page, err)
	}
	for field, opts := range map[string]keyward.ListOptions{
		"limit":  {Limit: -1},
		"mode":   {Mode: 9},
		"status": {Status: 9},
		"cursor": {Cursor: "garbage"},
	} {
		_, err := e.acct.List(ctx, opts)
		inputField(t, err, field)
		if errors.Is(err, keyward.ErrStoreUnavailable) {
			t.Errorf("%s: an invalid option matched ErrStoreUnavailable", field)
		}
	}
}
