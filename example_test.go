package keyward_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
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
		Scopes: []scope.Scope{scope.SessionsWrite},
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
	if _, err := acct.Revoke(ctx, newRec.ID); err != nil {
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
		Scopes:   []scope.Scope{scope.SessionsWrite},
		Metadata: map[string]string{"shop_id": "shop_42", "integration": "woocommerce"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Another merchant cannot see, change or revoke it.
	globex := keys.Owner("acct_globex")
	_, err = globex.Revoke(ctx, rec.ID)
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
		Name: "Backend", Mode: apikey.Test, Scopes: []scope.Scope{scope.CustomersRead},
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
		Name: "Backend server", Mode: apikey.Live, Scopes: []scope.Scope{scope.SessionsWrite},
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
	if _, err := acct.Revoke(ctx, old.ID); err != nil {
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
		Name: "Reporting", Mode: apikey.Live, Scopes: []scope.Scope{scope.EventsRead, scope.CustomersRead},
	})
	if err != nil {
		log.Fatal(err)
	}

	rec, err = acct.Update(ctx, rec.ID, keyward.UpdateParams{
		Name:     "Reporting (events only)",
		Scopes:   []scope.Scope{scope.EventsRead},
		Metadata: map[string]string{"owner_team": "data"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Name, rec.Scopes, rec.Metadata)

	_, err = acct.Update(ctx, rec.ID, keyward.UpdateParams{Scopes: []scope.Scope{scope.EventsRead, scope.CustomersWrite}})
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
		Name: "Backend server", Mode: apikey.Live, Scopes: []scope.Scope{scope.SessionsWrite},
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
		if _, _, err := acct.Create(ctx, keyward.CreateParams{Name: name, Mode: apikey.Live, Scopes: []scope.Scope{scope.LinksRead}}); err != nil {
			log.Fatal(err)
		}
	}

	revoked, err := acct.RevokeAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(revoked), "keys revoked")
	// Output: 2 keys revoked
}
