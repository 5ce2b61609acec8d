package keywardtest_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
)

func TestNewKeyVerifies(t *testing.T) {
	key := keywardtest.NewKey(t, scope.SessionsWrite, scope.LinksRead)
	rec, err := key.Keys.Verify(context.Background(), key.Raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rec.ID != key.Record.ID {
		t.Errorf("Verify returned key %s, want %s", rec.ID, key.Record.ID)
	}
	if got, want := rec.Scopes.Strings(), []string{"links:read", "sessions:write"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("scopes %v, want %v", got, want)
	}
	if rec.Mode != apikey.Test || rec.Name != "keywardtest" || rec.Owner != keyward.DefaultOwner {
		t.Errorf("mode %v, name %q, owner %q; want test, keywardtest, %s", rec.Mode, rec.Name, rec.Owner, keyward.DefaultOwner)
	}
}

func TestAuthorize(t *testing.T) {
	key := keywardtest.NewKey(t, scope.EventsRead)
	req := httptest.NewRequest("GET", "/", nil)
	key.Authorize(req)
	if got, want := req.Header.Get("Authorization"), "Bearer "+key.Raw; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
}

func TestIssue(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	expires := time.Now().Add(time.Hour)
	live := keywardtest.Issue(t, keys.Owner("acme"), keyward.CreateParams{Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.EventsRead), ExpiresAt: expires})
	test := keywardtest.Issue(t, keys.Owner("globex"), keyward.CreateParams{Scopes: scope.NewSet(scope.EventsRead)})
	if live.Record.Mode != apikey.Live || live.Record.Name != "Backend" || live.Record.ExpiresAt.IsZero() || live.Record.Owner != "acme" {
		t.Errorf("live key record %+v", live.Record)
	}
	if test.Record.Owner != "globex" {
		t.Errorf("test key owned by %q, want globex", test.Record.Owner)
	}
	if live.Keys != keys || test.Keys != keys {
		t.Error("Issue did not use the given keys")
	}
	for _, k := range []keywardtest.Key{live, test} {
		if _, err := keys.Verify(context.Background(), k.Raw); err != nil {
			t.Errorf("Verify(%s): %v", k.Record.Prefix, err)
		}
	}
}

// TestNewKeysClosedAfterTest checks that the keys are closed by the
// cleanup: uses recorded during the test reach the store.
func TestNewKeysClosedAfterTest(t *testing.T) {
	var key keywardtest.Key
	t.Run("inner", func(t *testing.T) {
		key = keywardtest.NewKey(t, scope.EventsRead)
		if _, err := key.Keys.Verify(context.Background(), key.Raw); err != nil {
			t.Fatal(err)
		}
	})
	rec, err := key.Keys.Owner(keyward.DefaultOwner).Get(context.Background(), key.Record.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LastUsedAt.IsZero() {
		t.Error("the use was not written: the keys were not closed after the test")
	}
}

func TestRecord(t *testing.T) {
	a, b := keywardtest.Record(scope.SessionsRead), keywardtest.Record(scope.SessionsRead)
	if a.ID == b.ID || a.Hash == b.Hash {
		t.Error("two records share an ID or a hash")
	}
	if err := a.Validate(); err != nil {
		t.Errorf("the record is not valid: %v", err)
	}
	if a.Status(time.Now()) != apikey.Active || !a.Scopes.Has(scope.SessionsRead) {
		t.Errorf("record %+v", a)
	}
}

// fakeTB records fatal errors instead of stopping, to test failures.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = format
	panic(errFatal)
}

var errFatal = errors.New("fatal")

func TestIssueFailsTheTest(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != errFatal {
				t.Fatalf("recovered %v, want a fatal error", r)
			}
		}()
		keywardtest.Issue(f, keys.Owner("acme"), keyward.CreateParams{}) // no scopes
	}()
	if f.fatal == "" {
		t.Error("Issue without scopes did not fail the test")
	}
}
