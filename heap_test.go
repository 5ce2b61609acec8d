package keyward_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/heapcheck"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// TestRecordsDoNotPinTheRawKey: no string of a record points into the raw
// key's memory, so the only heap object that holds a raw key is its
// Secret: a heap dump of a server holds records, never keys.
func TestRecordsDoNotPinTheRawKey(t *testing.T) {
	check := func(t *testing.T, where string, rec apikey.Record, raw string) {
		t.Helper()
		strs := []string{rec.Prefix, rec.Name, rec.Owner}
		for k, v := range rec.Metadata.All() {
			strs = append(strs, k, v)
		}
		for _, s := range strs {
			if heapcheck.Within(s, raw) {
				t.Errorf("%s: the record's %q points into the raw key", where, s)
			}
		}
	}
	mem := memory.New()
	c, err := cache.New(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, st := range map[string]store.Store{"memory": mem, "cache": c} {
		t.Run(name, func(t *testing.T) {
			keys, err := keyward.New(st)
			if err != nil {
				t.Fatal(err)
			}
			defer keys.Close()
			ctx := context.Background()
			acct := keys.Owner("acme")
			sec, rec, err := acct.Create(ctx, keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
			if err != nil {
				t.Fatal(err)
			}
			raw := sec.Reveal()
			check(t, "Create", rec, raw)
			if got, err := acct.Get(ctx, rec.ID); err != nil {
				t.Fatal(err)
			} else {
				check(t, "Get", got, raw)
			}
			if got, err := keys.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			} else {
				check(t, "Verify", got, raw)
			}
			next, nrec, err := acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "Rotate", nrec, next.Reveal())
			if got, err := st.GetByHash(ctx, apikey.HashOf(next.Reveal())); err != nil {
				t.Fatal(err)
			} else {
				check(t, "the store", got, next.Reveal())
			}
		})
	}
	sec, _ := apikey.Generate(apikey.Live)
	raw := sec.Reveal()
	if heapcheck.Within(sec.DisplayPrefix(), raw) {
		t.Error("the Secret's display prefix is a slice of the raw key")
	}
	if heapcheck.Within(apikey.Default.DisplayPrefix(raw), raw) {
		t.Error("Format.DisplayPrefix returns a slice of the raw key")
	}
}
