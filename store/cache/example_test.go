package cache_test

import (
	"context"
	"fmt"
	"log"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// The cache goes between the store and the lifecycle. In production the
// store is PostgreSQL (postgres.New(db)); the memory store keeps this
// example self-contained.
func Example() {
	st := memory.New()

	cached, err := cache.New(st) // any store.Store
	if err != nil {
		log.Fatal(err)
	}
	defer cached.Close() // stops polling the store's change feed
	keys, err := keyward.New(cached)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	ctx := context.Background()
	acct := keys.Owner("acct_123")
	secret, rec, err := acct.Create(ctx, keyward.CreateParams{
		Name: "Backend server", Mode: apikey.Live, Scopes: scope.NewSet(scope.SessionsWrite),
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = keys.Verify(ctx, secret.Reveal())
	fmt.Println("verified:", err == nil)

	// A revocation through the cache is seen at once.
	if _, err := acct.Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
		log.Fatal(err)
	}
	_, err = keys.Verify(ctx, secret.Reveal())
	fmt.Println("after revoke:", err)
	// Output:
	// verified: true
	// after revoke: keyward: API key revoked
}
