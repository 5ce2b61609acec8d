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
