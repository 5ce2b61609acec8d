// Package keywardtest helps test code that uses keyward: it issues real
// keys against the in-memory store in one line, and makes key records for
// handler tests that need no key at all.
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
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// A Key is a key issued for a test.
type Key struct {
	// Keys is the lifecycle the key was issued by: pass it to
	// middleware.Authenticate, or use it to revoke or rotate the key.
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

// NewKey issues a test-mode key holding scopes, by a new lifecycle over a
// new memory store (see [NewKeys]). At least one scope is required.
func NewKey(t testing.TB, scopes ...scope.Scope) Key {
	t.Helper()
	return Issue(t, NewKeys(t), keyward.CreateParams{Scopes: scopes})
}

// Issue creates a key with keys, for tests that need several keys from one
// lifecycle, a live key, or an expiry. An empty Name becomes "keywardtest"
// and a zero Mode becomes [apikey.Test]; the rest of p is passed as is to
// [keyward.Keys.Create].
func Issue(t testing.TB, keys *keyward.Keys, p keyward.CreateParams) Key {
	t.Helper()
	if p.Name == "" {
		p.Name = "keywardtest"
	}
	if p.Mode == 0 {
		p.Mode = apikey.Test
	}
	sec, rec, err := keys.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("keywardtest: creating a key: %v", err)
	}
	return Key{Keys: keys, Raw: sec.Reveal(), Record: rec}
}

// Record returns the record of an active test-mode key holding scopes, as
// [keyward.Keys.Verify] would return it, without creating any key. Put it
// in a request's context with middleware.NewContext to unit-test a handler:
//
//	ctx := middleware.NewContext(req.Context(), keywardtest.Record(scope.SessionsRead))
//	handler.ServeHTTP(rec, req.WithContext(ctx))
func Record(scopes ...scope.Scope) apikey.Record {
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	return apikey.Record{
		ID:         uuid.Must(uuid.NewV7()),
		Name:       "keywardtest",
		Prefix:     sec.DisplayPrefix(),
		Mode:       apikey.Test,
		Scopes:     scope.NewSet(scopes...),
		Hash:       sec.Hash(),
		CreatedAt:  now,
		LastUsedAt: now,
	}
}
