// Package keywardtest helps test code that uses keyward: it issues real
// keys against the in-memory store in one line, and makes key records for
// handler tests that need no key at all. Keys belong to
// [keyward.DefaultOwner] unless a test issues them for another owner with
// [Issue].
//
//	func TestCreateSession(t *testing.T) {
//		key := keywardtest.NewKey(t, scope.SessionsWrite)
//		h := middleware.Authenticate(key.Keys)(newAPI())
//
//		req := httptest.NewRequest("POST", "/api/v1/sessions", body)
//		key.Authorize(req)
//		...
//	}
//
// Everything it creates is closed when the test ends. A failure to create
// a key ends the test with t.Fatal.
package keywardtest

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// A Key is a key issued for a test.
type Key struct {
	// Keys is the lifecycle the key was issued by: pass it to
	// middleware.Authenticate, or use Keys.Owner(Record.Owner) to revoke,
	// update or rotate the key.
	Keys *keyward.Keys
	// Raw is the raw key, to send as "Authorization: Bearer " + Raw. Outside
	// tests, a raw key lives only in an [apikey.Secret].
	Raw string
	// Record is the key's record as created.
	Record apikey.Record
}

// Authorize sets r's Authorization header to "Bearer " + k.Raw.
func (k Key) Authorize(r *http.Request) {
	r.Header.Set("Authorization", "Bearer "+k.Raw)
}

// NewKeys returns a lifecycle over a new, empty memory store, configured by
// opts. It is closed when the test and its subtests end.
func NewKeys(t testing.TB, opts ...keyward.Option) *keyward.Keys {
	t.Helper()
	keys, err := keyward.New(memory.New(), opts...)
	if err != nil {
		t.Fatalf("keywardtest: %v", err)
	}
	t.Cleanup(func() {
		if err := keys.Close(); err != nil {
			t.Errorf("keywardtest: closing the keys: %v", err)
		}
	})
	return keys
}

// NewKey issues a test-mode key holding scopes, owned by
// [keyward.DefaultOwner], by a new lifecycle over a new memory store (see
// [NewKeys]). At least one scope is required.
func NewKey(t testing.TB, scopes ...scope.Scope) Key {
	t.Helper()
	keys := NewKeys(t)
	return Issue(t, keys.Owner(keyward.DefaultOwner), keyward.CreateParams{Scopes: scope.NewSet(scopes...)})
}

// Issue creates a key for owner, for tests that need several keys from one
// lifecycle, keys of several owners, a live key, metadata or an expiry:
//
//	keys := keywardtest.NewKeys(t)
//	acme := keywardtest.Issue(t, keys.Owner("acme"), keyward.CreateParams{Scopes: ...})
//
// An empty Name becomes "keywardtest" and a zero Mode becomes
// [apikey.Test]; the rest of p is passed as is to [keyward.Owner.Create].
func Issue(t testing.TB, owner keyward.Owner, p keyward.CreateParams) Key {
	t.Helper()
	if p.Name == "" {
		p.Name = "keywardtest"
	}
	if p.Mode == 0 {
		p.Mode = apikey.Test
	}
	sec, rec, err := owner.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("keywardtest: creating a key: %v", err)
	}
	return Key{Keys: owner.Keys(), Raw: sec.Reveal(), Record: rec}
}

// Record returns the record of an active test-mode key of
// [keyward.DefaultOwner] holding scopes, as [keyward.Keys.Verify] would
// return it, without creating any key. Set its Owner or Metadata for a
// handler that reads them. Put it
// in a request's context with middleware.NewContext to unit-test a handler:
//
//	ctx := middleware.NewContext(req.Context(), keywardtest.Record(scope.SessionsRead))
//	handler.ServeHTTP(rec, req.WithContext(ctx))
func Record(scopes ...scope.Scope) apikey.Record {
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	now := clock.New().Now()
	return apikey.Record{
		ID:         uuid.Must(uuid.NewV7()),
		Owner:      keyward.DefaultOwner,
		Name:       "keywardtest",
		Prefix:     sec.DisplayPrefix(),
		Mode:       apikey.Test,
		Scopes:     scope.NewSet(scopes...),
		Hash:       sec.Hash(),
		CreatedAt:  now,
		LastUsedAt: now,
	}
}
