package keywardotel_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// TestVerifyDoesNotAllocate checks the goal of the adapter's hot path:
// with the observer attached, over a wrapped memory store, a verification
// from memory allocates nothing, whatever its outcome, nor does a
// refusal's count (past a key's first refusal in an hour, which the
// lifecycle's usage keeps in a map).
func TestVerifyDoesNotAllocate(t *testing.T) {
	tm := newTelemetry(t)
	keys, err := keyward.New(tm.obs.WrapStore(memory.New()), keyward.WithObserver(tm.obs))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if _, err := tm.obs.RegisterKeys(keys); err != nil {
		t.Fatal(err)
	}
	key := keywardtest.Issue(t, keys.Owner("acct_otel"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, err := keys.Verify(ctx, key.Raw) // the key's first use allocates its cell
	if err != nil {
		t.Fatal(err)
	}
	keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope) // and its first refusal, a map entry
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"ok", func() { keys.Verify(ctx, key.Raw) }},
		{"unknown", func() { keys.Verify(ctx, sec.Reveal()) }},
		{"malformed", func() { keys.Verify(ctx, "ck_test_short") }},
		{"refusal", func() { keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope) }},
		{"observer alone", func() { tm.obs.ObserveVerify(ctx, keyward.OutcomeOK, 300) }},
	} {
		tc.f() // the first measurement of an attribute set allocates its aggregation
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %g allocations, want 0", tc.name, n)
		}
	}
	tm.collect(t) // a collection between measurements changes nothing
	if n := testing.AllocsPerRun(1000, func() { keys.Verify(ctx, key.Raw) }); n != 0 {
		t.Errorf("ok, after a collection: %g allocations, want 0", n)
	}
	if spans := tm.spans.Ended(); len(spans) != 1 || spans[0].Name() != "keyward.store.Create" {
		t.Errorf("%d spans, want only the Create's: answers from memory have none", len(spans))
	}
}
