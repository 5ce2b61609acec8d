package keyward_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// The lifecycle of a key: create, verify, rotate, revoke.
func Example() {
	ctx := context.Background()
	keys, err := keyward.New(memory.New())
	if err != nil {
		panic(err)
	}
	defer keys.Close() // writes the last-used times still pending
	acct := keys.Owner("acct_123")

	// Create: the raw key is returned once. Hand it over, never store it.
	secret, rec, err := acct.Create(ctx, keyward.CreateParams{
		Name:   "WooCommerce plugin",
		Mode:   apikey.Test,
		Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Name, rec.Mode, rec.Scopes, len(secret.Reveal()))

	// Verify, on every request: the record says whose key it is.
	got, err := keys.Verify(ctx, secret.Reveal())
	fmt.Println(got.Owner, got.ID == rec.ID, got.Scopes.Has(scope.SessionsWrite), err)

	// Rotate: old and new keys both work during the overlap.
	newSecret, newRec, err := acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		panic(err)
	}
	_, errOld := keys.Verify(ctx, secret.Reveal())
	_, errNew := keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(errOld, errNew, newRec.Replaces == rec.ID)

	// Revoke: immediate and final.
	if _, err := acct.Revoke(ctx, newRec.ID, keyward.RevokeParams{Reason: "integration retired"}); err != nil {
		panic(err)
	}
	_, err = keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(errors.Is(err, keyward.ErrRevoked), errors.Is(err, keyward.ErrInvalidKey))
	// Output:
	// WooCommerce plugin test sessions:write 40
	// acct_123 true true <nil>
	// <nil> <nil> true
	// true true
}

func ExampleKeys_Verify() {
	ctx := context.Background()
	keys, _ := keyward.New(memory.New())
	defer keys.Close()

	for _, raw := range []string{"ck_test_nope", "ck_test_00000000000000000000000000000000"} {
		_, err := keys.Verify(ctx, raw)
		switch {
		case errors.Is(err, keyward.ErrStoreUnavailable):
			fmt.Println("503: try again later")
		case errors.Is(err, keyward.ErrMalformedKey):
			fmt.Println("401: invalid key (malformed, no store lookup)")
		case errors.Is(err, keyward.ErrInvalidKey):
			fmt.Println("401: invalid key")
		}
	}
	// Output:
	// 401: invalid key (malformed, no store lookup)
	// 401: invalid key
}

// Each merchant of a platform manages its own keys: every call through an
// Owner sees and touches that account's keys only, and another account's
// key ID is answered exactly as an unknown one.
func ExampleKeys_Owner() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()

	// The merchant's account ID is the application's own.
	acme := keys.Owner("acct_acme")
	_, rec, err := acme.Create(ctx, keyward.CreateParams{
		Name:     "WooCommerce plugin",
		Mode:     apikey.Live,
		Scopes:   scope.NewSet(scope.SessionsWrite),
		Metadata: map[string]string{"shop_id": "shop_42", "integration": "woocommerce"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Another merchant cannot see, change or revoke it.
	globex := keys.Owner("acct_globex")
	_, err = globex.Revoke(ctx, rec.ID, keyward.RevokeParams{})
	fmt.Println(errors.Is(err, keyward.ErrNotFound))

	page, err := acme.List(ctx, keyward.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	shop, _ := page.Keys[0].Metadata.Get("shop_id")
	fmt.Println(len(page.Keys), page.Keys[0].Owner, shop)
	// Output:
	// true
	// 1 acct_acme shop_42
}

// A handler scopes its work to the account of the key that called it: the
// record Verify returns (and the middleware puts in the request context)
// names its owner and carries its metadata, with no second lookup.
func ExampleKeys_Verify_owner() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	sec, _, err := keys.Owner("acct_acme").Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Test, Scopes: scope.NewSet(scope.CustomersRead),
		Metadata: map[string]string{"region": "eu"},
	})
	if err != nil {
		log.Fatal(err)
	}

	key, err := keys.Verify(ctx, sec.Reveal())
	if err != nil {
		log.Fatal(err)
	}
	region, _ := key.Metadata.Get("region")
	fmt.Printf("SELECT * FROM customers WHERE merchant = %q AND region = %q\n", key.Owner, region)
	// Output: SELECT * FROM customers WHERE merchant = "acct_acme" AND region = "eu"
}

// Rotating a key without downtime: issue the replacement, let both work
// while the integration switches, then revoke the old one.
func ExampleOwner_Rotate() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")
	oldSecret, old, err := acct.Create(ctx, keyward.CreateParams{
		Name: "Backend server", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		log.Fatal(err)
	}

	// Same name, mode, scopes and metadata; the old key keeps working for
	// a day (at most 7 days, unless keyward.WithMaxOverlap says otherwise).
	newSecret, _, err := acct.Rotate(ctx, old.ID, keyward.RotateParams{Overlap: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	// Deploy newSecret.Reveal() to the integration. Once it uses the new
	// key, end the old one at once rather than waiting for its expiry:
	if _, err := acct.Revoke(ctx, old.ID, keyward.RevokeParams{Reason: "rotated out"}); err != nil {
		log.Fatal(err)
	}

	_, errOld := keys.Verify(ctx, oldSecret.Reveal())
	_, errNew := keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(errors.Is(errOld, keyward.ErrRevoked), errNew == nil)
	// Output: true true
}

// Edits narrow a key, never widen it: a key that leaks never gains power.
func ExampleOwner_Update() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")
	_, rec, err := acct.Create(ctx, keyward.CreateParams{
		Name: "Reporting", Mode: apikey.Live, Scopes: scope.NewSet(scope.EventsRead, scope.CustomersRead),
	})
	if err != nil {
		log.Fatal(err)
	}

	rec, err = acct.Update(ctx, rec.ID, keyward.UpdateParams{
		Name:     "Reporting (events only)",
		Scopes:   scope.NewSet(scope.EventsRead),
		Metadata: map[string]string{"owner_team": "data"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Name, rec.Scopes, rec.Metadata)

	_, err = acct.Update(ctx, rec.ID, keyward.UpdateParams{Scopes: scope.NewSet(scope.EventsRead, scope.CustomersWrite)})
	fmt.Println(errors.Is(err, keyward.ErrWidening))
	fmt.Println(err)
	// Output:
	// Reporting (events only) events:read {"owner_team":"data"}
	// true
	// keyward: invalid scopes: the key does not hold customers:write, and scopes can only be narrowed; create a new key to grant more
}

// An idempotency key makes a create safe to retry: the repeat creates
// nothing, and never shows the raw key a second time.
func ExampleOwner_Create_idempotent() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")
	p := keyward.CreateParams{
		Name: "Backend server", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
		IdempotencyKey: "3f1c9a52-7f0e-4b0a-9d55-2b7e2c8c1f11", // from the client's request
	}
	first, rec, err := acct.Create(ctx, p)
	if err != nil {
		log.Fatal(err)
	}

	// The client timed out and retried.
	again, same, err := acct.Create(ctx, p)
	if errors.Is(err, keyward.ErrAlreadyCreated) {
		fmt.Println("already created:", same.ID == rec.ID, "raw key shown again:", !again.IsZero())
	}
	fmt.Println(len(first.Reveal()))
	// Output:
	// already created: true raw key shown again: false
	// 40
}

// Closing an account, or answering its compromise: every active key of the
// account stops working at once, and stays listed, revoked, for audit.
func ExampleOwner_RevokeAll() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")
	for _, name := range []string{"Backend", "Plugin"} {
		if _, _, err := acct.Create(ctx, keyward.CreateParams{Name: name, Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
			log.Fatal(err)
		}
	}

	revoked, err := acct.RevokeAll(ctx, keyward.RevokeParams{Reason: "account closed"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(revoked), "keys revoked")
	// Output: 2 keys revoked
}

// A key found in the open is reported with where it was found: it is
// revoked at once, marked exposed, and the hook tells its owner.
func ExampleKeys_ReportExposure() {
	keys, err := keyward.New(memory.New(),
		keyward.WithExposureHook(func(ctx context.Context, r keyward.ExposureReport) {
			fmt.Println("tell", r.Record.Owner, "that key", r.Record.Name, "leaked on", r.Record.Exposure.Source)
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	secret, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead),
	})
	if err != nil {
		log.Fatal(err)
	}
	leaked := secret.Reveal() // as a scanner would find it, in a public repository

	report, err := keys.ReportExposure(ctx, leaked, keyward.Exposure{
		Source: "github",
		URL:    "https://github.com/acme/shop/blob/main/.env",
	})
	if err != nil {
		log.Fatal(err) // the store is down: report again later, it is safe
	}
	fmt.Println(report.Known, report.Record.RevokedReason)

	_, err = keys.Verify(ctx, leaked)
	fmt.Println(errors.Is(err, keyward.ErrRevoked))
	// Output:
	// tell acct_123 that key Backend leaked on github
	// true exposed
	// true
}

// A canary key is a tripwire: plant it in a configuration file nobody
// should read. It never authorizes anything, and every use is reported.
func ExampleCreateParams_canary() {
	trips := make(chan apikey.Trip)
	keys, err := keyward.New(memory.New(),
		keyward.WithCanaryHook(func(ctx context.Context, t apikey.Trip) { trips <- t }))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	secret, canary, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name:   "tripwire in deploy/.env",
		Mode:   apikey.Live,
		Scopes: scope.NewSet(scope.LinksRead),
		Canary: true,
	})
	if err != nil {
		log.Fatal(err)
	}

	// Someone found the file and tries the key: the same 401 as any
	// unknown key, and the hook hears of it.
	_, err = keys.VerifyFrom(ctx, secret.Reveal(), keyward.Caller{
		Addr: "203.0.113.9:51234", UserAgent: "curl/8.5.0", Method: "GET", Path: "/v1/links",
	})
	fmt.Println(err)
	trip := <-trips
	fmt.Println(trip.KeyID == canary.ID, trip.Addr, trip.UserAgent, trip.Route)
	// Output:
	// keyward: unknown API key
	// true 203.0.113.9:51234 curl/8.5.0 GET /v1/links
}

// A checksummed format, for a product that wants scanners and the
// middleware to tell real keys from typos offline.
func ExampleWithFormat_checksum() {
	// Keys end with a CRC-32 of the rest, as GitHub's tokens do: a
	// mistyped or invented key is refused before any hash or lookup.
	// Keys issued before the switch, without a checksum, keep working.
	format, err := apikey.NewFormat("ck", apikey.WithChecksum())
	if err != nil {
		log.Fatal(err)
	}
	keys, err := keyward.New(memory.New(), keyward.WithFormat(format))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	secret, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead),
	})
	if err != nil {
		log.Fatal(err)
	}
	raw := secret.Reveal()
	fmt.Println(len(raw))

	last := byte('0')
	if raw[len(raw)-1] == last {
		last = '1'
	}
	_, err = keys.Verify(ctx, raw[:len(raw)-1]+string(last)) // a typo
	fmt.Println(errors.Is(err, keyward.ErrMalformedKey), errors.Is(err, apikey.ErrChecksum))
	// Output:
	// 46
	// true true
}

// Lifetime rules for every key of a Keys: live keys must say when they
// expire, and no key lives more than 90 days.
func ExampleWithMaxLifetime() {
	keys, err := keyward.New(memory.New(),
		keyward.WithMaxLifetime(90*24*time.Hour), // a test key without an expiry gets one in 90 days
		keyward.WithRequiredExpiry(apikey.Live),  // a live key without one is refused
	)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")

	_, _, err = acct.Create(ctx, keyward.CreateParams{Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	fmt.Println(err)
	_, rec, err := acct.Create(ctx, keyward.CreateParams{Name: "Staging", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.ExpiresAt.Sub(rec.CreatedAt))
	// Output:
	// keyward: invalid expires_at: is required for live keys
	// 2160h0m0s
}

// Every change names who made it: the actor travels in the context, and
// the store keeps it in the key's audit trail, written with the change.
func ExampleOwner_Audit() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	acct := keys.Owner("acct_123")
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.TypeOperator, ID: "ada@acme.example"})
	_, key, err := acct.Create(ctx, keyward.CreateParams{Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := acct.Revoke(ctx, key.ID, keyward.RevokeParams{Reason: "laptop stolen"}); err != nil {
		log.Fatal(err)
	}

	page, err := acct.Audit(ctx, keyward.AuditOptions{KeyID: key.ID})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range page.Entries { // newest first
		fmt.Println(e.Seq, e.Kind, e.Actor, e.Reason)
	}
	// The trail is a hash chain: CheckAudit finds an entry edited,
	// removed or reordered in the database.
	if _, err := acct.CheckAudit(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2 key.revoked operator:ada@acme.example laptop stolen
	// 1 key.created operator:ada@acme.example
}

// Subscribers hear of every change as it is made, with its actor.
func ExampleWithSubscriber() {
	notify := keyward.SubscriberFunc(func(ctx context.Context, e audit.Event) {
		fmt.Println(e.Kind, "by", e.Actor, "of", e.Owner)
	})
	keys, err := keyward.New(memory.New(), keyward.WithSubscriber(notify))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.TypeService, ID: "onboarding"})
	if _, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead),
	}); err != nil {
		log.Fatal(err)
	}
	// Output: key.created by service:onboarding of acct_123
}

// Usage per key: verifications, and the refusals that follow them,
// counted in memory and written with the last-used times.
func ExampleOwner_Usage() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	acct := keys.Owner("acct_123")
	secret, key, err := acct.Create(ctx, keyward.CreateParams{Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if _, err := keys.Verify(ctx, secret.Reveal()); err != nil {
			log.Fatal(err)
		}
	}
	// The middleware counts what it refuses after verification; so may
	// your own checks.
	keys.CountRefusal(ctx, key.ID, keyward.OutcomeInsufficientScope)
	if err := keys.Flush(ctx); err != nil { // written every second anyway
		log.Fatal(err)
	}

	usage, err := acct.Usage(ctx, keyward.UsageQuery{
		Keys: []uuid.UUID{key.ID},
		From: keys.Now().AddDate(0, 0, -29), // 30 days, today included
		Per:  24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	total := usage[0].Total
	fmt.Println(len(usage[0].Buckets), "days:", total.Verified, "verified,", total.Refused(), "refused")
	// Output: 30 days: 3 verified, 1 refused
}
