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

	// Create: the raw key is returned once. Hand it over, never store it.
	secret, rec, err := keys.Create(ctx, keyward.CreateParams{
		Name:   "WooCommerce plugin",
		Mode:   apikey.Test,
		Scopes: []scope.Scope{scope.SessionsWrite},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Name, rec.Mode, rec.Scopes, len(secret.Reveal()))

	// Verify, on every request.
	got, err := keys.Verify(ctx, secret.Reveal())
	fmt.Println(got.ID == rec.ID, got.Scopes.Has(scope.SessionsWrite), err)

	// Rotate: old and new keys both work during the overlap.
	newSecret, newRec, err := keys.Rotate(ctx, rec.ID, time.Hour)
	if err != nil {
		panic(err)
	}
	_, errOld := keys.Verify(ctx, secret.Reveal())
	_, errNew := keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(errOld, errNew)

	// Revoke: immediate and final.
	if _, err := keys.Revoke(ctx, newRec.ID); err != nil {
		panic(err)
	}
	_, err = keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(errors.Is(err, keyward.ErrRevoked), errors.Is(err, keyward.ErrInvalidKey))
	// Output:
	// WooCommerce plugin test sessions:write 40
	// true true <nil>
	// <nil> <nil>
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

// Rotating a key without downtime: issue the replacement, let both work
// while the integration switches, then revoke the old one.
func ExampleKeys_Rotate() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	oldSecret, old, err := keys.Create(ctx, keyward.CreateParams{
		Name: "Backend server", Mode: apikey.Live, Scopes: []scope.Scope{scope.SessionsWrite},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Same name, mode and scopes; the old key keeps working for a day.
	newSecret, rec, err := keys.Rotate(ctx, old.ID, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	// Deploy newSecret.Reveal() to the integration. Once it uses the new
	// key, end the old one at once rather than waiting for its expiry:
	if _, err := keys.Revoke(ctx, old.ID); err != nil {
		log.Fatal(err)
	}

	_, errOld := keys.Verify(ctx, oldSecret.Reveal())
	_, errNew := keys.Verify(ctx, newSecret.Reveal())
	fmt.Println(rec.Name, rec.Scopes, errors.Is(errOld, keyward.ErrRevoked), errNew == nil)
	// Output: Backend server sessions:write true true
}
