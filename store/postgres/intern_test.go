package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// The table returns the set UnmarshalText returns, the same one for the
// same text, and never holds more than its bound.
func TestScopeTable(t *testing.T) {
	tab := newScopeTable(4, 40)
	for i := range 20 {
		text := fmt.Sprintf("links:read sessions:write s%d:read", i)
		a, err := tab.set(text)
		if err != nil {
			t.Fatal(err)
		}
		var want scope.Set
		if err := want.UnmarshalText([]byte(text)); err != nil {
			t.Fatal(err)
		}
		if !a.Equal(want) || a.Len() != 3 {
			t.Fatalf("set(%q) = %v, want %v", text, a, want)
		}
		b, err := tab.set(text)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Equal(a) {
			t.Fatalf("set(%q) the second time = %v, want %v", text, b, a)
		}
		if n := tab.len(); n > 4 {
			t.Fatalf("the table holds %d sets, bound 4", n)
		}
	}
	// Sets are found again without allocating.
	tab.set("sessions:write")
	if n := testing.AllocsPerRun(100, func() { tab.set("sessions:write") }); n != 0 {
		t.Errorf("a set the table holds costs %v allocations, want 0", n)
	}
}

// A text longer than the bound on texts is parsed each time and not kept;
// a malformed one is refused, every time, and not kept either.
func TestScopeTableRefuses(t *testing.T) {
	tab := newScopeTable(4, 20)
	long := "links:read sessions:write customers:read"
	s, err := tab.set(long)
	if err != nil || s.Len() != 3 {
		t.Fatalf("set(%q) = %v, %v", long, s, err)
	}
	if n := tab.len(); n != 0 {
		t.Errorf("the table keeps a text of %d bytes, bound 20", len(long))
	}
	for range 2 {
		if _, err := tab.set("links:read NOT A SCOPE"); !errors.Is(err, scope.ErrMalformed) {
			t.Errorf("set of a malformed scope = %v, want ErrMalformed", err)
		}
	}
	if n := tab.len(); n != 0 {
		t.Errorf("the table holds %d sets after a refusal", n)
	}
	if s, err := tab.set(""); err != nil || !s.IsEmpty() {
		t.Errorf(`set("") = %v, %v, want the empty set`, s, err)
	}
}

// The table keeps its own copy of a text given as part of a larger string
// (the row of a lookup), and is safe for concurrent use (go test -race).
func TestScopeTableConcurrent(t *testing.T) {
	tab := newScopeTable(8, 100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				row := fmt.Sprintf(`["x", "s%d:read links:read"]`, (g+i)%12)
				text := row[len(`["x", "`) : len(row)-2]
				s, err := tab.set(text)
				if err != nil {
					t.Error(err)
					return
				}
				if !s.Has(scope.Scope(fmt.Sprintf("s%d:read", (g+i)%12))) || !s.Has("links:read") {
					t.Errorf("set(%q) = %v", text, s)
					return
				}
			}
		})
	}
	wg.Wait()
	tab.mu.RLock()
	defer tab.mu.RUnlock()
	for text := range tab.sets {
		if strings.ContainsAny(text, `"[]`) {
			t.Errorf("the table holds %q, beyond the scopes' text", text)
		}
	}
}

func TestSplitJSONArray(t *testing.T) {
	tests := []struct {
		in   string
		want []jsonField // nil: an error
	}{
		{`["a", 12, null, -5, {"k": "v"}]`, []jsonField{{jsonString, "a"}, {jsonNumber, "12"}, {}, {jsonNumber, "-5"}, {jsonRaw, `{"k": "v"}`}}},
		{` [ "" ,null,"x y", 0 , null ] `, []jsonField{{jsonString, ""}, {}, {jsonString, "x y"}, {jsonNumber, "0"}, {}}},
		{`["q\"b\\s\u00e9\n", "é🔑", 1, 2, [{"m": null}]]`, []jsonField{{jsonString, "q\"b\\s\u00e9\n"}, {jsonString, "é🔑"}, {jsonNumber, "1"}, {jsonNumber, "2"}, {jsonRaw, `[{"m": null}]`}}},
		{`["a", 1, 2, 3]`, nil}, // too few
		{`["a", 1, 2, 3, 4, 5]`, []jsonField{{jsonString, "a"}, {jsonNumber, "1"}, {jsonNumber, "2"}, {jsonNumber, "3"}, {jsonRaw, "4, 5"}}}, // the last is not checked here
		{`["a", 1, 2, 3, null] x`, nil},
		{`["a" 1, 2, 3, null]`, nil},
		{`["a, 1, 2, 3, null]`, nil},
		{`[true, 1, 2, 3, null]`, nil},
		{`["a", 1.5, 2, 3, null]`, nil},
		{`["a", 1, 2, 3, ]`, nil},
		{`{"a": 1}`, nil},
		{``, nil},
		{`["\x", 1, 2, 3, null]`, nil},
	}
	for _, tc := range tests {
		got := make([]jsonField, 5)
		err := splitJSONArray(tc.in, got)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("splitJSONArray(%q) = %q, want an error", tc.in, got)
		case tc.want != nil && err != nil:
			t.Errorf("splitJSONArray(%q): %v", tc.in, err)
		case tc.want != nil && !reflect.DeepEqual(got, tc.want):
			t.Errorf("splitJSONArray(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// lookupStore returns a store on a table of its own, and the table.
func lookupStore(t *testing.T) (*Store, string) {
	t.Helper()
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	if err := Migrate(context.Background(), db, WithTable(table)); err != nil {
		t.Fatal(err)
	}
	s, err := New(db, WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	return s, table
}

// lookupRecord returns a valid record of a new key.
func lookupRecord(t *testing.T, name string) apikey.Record {
	t.Helper()
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	return apikey.Record{
		ID: uuid.New(), Owner: "acct_lookup", Name: name, Prefix: sec.DisplayPrefix(), Mode: apikey.Test,
		Scopes: scope.NewSet(scope.SessionsWrite, scope.LinksRead), Hash: sec.Hash(),
		CreatedAt: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC), // before the epoch
	}
}

// The verification lookup reads, through its one JSON column, the record
// Get reads through the store's columns, whatever the record holds: names
// that need escaping in JSON, every time, links, metadata, the fields of
// leaked keys and a policy.
func TestLookupReadsWhatGetReads(t *testing.T) {
	s, _ := lookupStore(t)
	ctx := context.Background()
	plain := lookupRecord(t, "plain")
	plain.Scopes = scope.NewSet(scope.LinksRead)
	escaped := lookupRecord(t, "a \"quoted\" name \\ with é and 🔑, [brackets], {braces}, null")
	tagged := lookupRecord(t, "tagged")
	tagged.Metadata = apikey.MustMetadata(map[string]string{"team": `bill"ing`, "plan": "gold ✓"})
	tagged.ExpiresAt = time.Now().Add(time.Hour)
	tagged.LastUsedAt = time.Date(2038, 1, 19, 3, 14, 8, 999999000, time.UTC)
	limited := lookupRecord(t, "limited")
	limited.Policy = &apikey.Policy{
		Rate:     apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
	canary := lookupRecord(t, "canary")
	canary.Canary = true
	recs := []apikey.Record{plain, escaped, tagged, limited, canary}
	for i, rec := range recs {
		recs[i] = mustCreateInternal(t, s, rec)
	}
	// Links, revocation and exposure.
	next := lookupRecord(t, "next")
	next.Replaces = recs[2].ID
	old, replacement, err := s.Rotate(ctx, "acct_lookup", recs[2].ID, next, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := s.Revoke(ctx, "acct_lookup", recs[1].ID, store.Revocation{At: time.Now(), Reason: "a \"reason\""})
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := s.Expose(ctx, "acct_lookup", recs[3].ID,
		apikey.Exposure{At: time.Now(), Source: "github", URL: "https://example.com/a?b=\"c\""}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range append(recs, old, replacement, revoked, exposed) {
		byID, err := s.Get(ctx, rec.Owner, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		byHash, err := s.GetByHash(ctx, rec.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(byHash, byID) {
			t.Errorf("GetByHash of %q = %+v\nGet = %+v", rec.Name, byHash, byID)
		}
		if byHash.Name != rec.Name || byHash.Owner != rec.Owner || byHash.Prefix != rec.Prefix {
			t.Errorf("GetByHash of %q read the name %q, owner %q, prefix %q", rec.Name, byHash.Name, byHash.Owner, byHash.Prefix)
		}
	}
	if _, err := s.GetByHash(ctx, apikey.HashOf("ck_test_nosuchkey")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetByHash of an unknown key = %v, want ErrNotFound", err)
	}
}

func mustCreateInternal(t *testing.T, s *Store, rec apikey.Record) apikey.Record {
	t.Helper()
	got, err := s.Create(context.Background(), rec, store.Idempotency{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

// Two lookups of a key share nothing a caller can change: changing what
// one returned (its policy, exposure, scopes' slice) leaves the next
// lookup's record as it was.
func TestLookupsShareNothingMutable(t *testing.T) {
	s, _ := lookupStore(t)
	ctx := context.Background()
	rec := lookupRecord(t, "shared")
	rec.Policy = &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	rec = mustCreateInternal(t, s, rec)
	if _, err := s.Expose(ctx, rec.Owner, rec.ID, apikey.Exposure{At: time.Now(), Source: "support"}, false); err != nil {
		t.Fatal(err)
	}
	want, err := s.GetByHash(ctx, rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.GetByHash(ctx, rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	first.Policy.Networks[0] = netip.MustParsePrefix("198.51.100.0/24")
	first.Policy.Rate.Requests = 7
	first.Exposure.Source = "changed"
	first.Scopes.Scopes()[0] = "changed:scope"
	second, err := s.GetByHash(ctx, rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second, want) {
		t.Errorf("after a caller changed a record it read, the next lookup read %+v, want %+v", second, want)
	}
	if !second.Scopes.Equal(scope.NewSet(scope.SessionsWrite, scope.LinksRead)) {
		t.Errorf("scopes = %v", second.Scopes)
	}
}

// A row the lookup cannot read fails the lookup, naming what is wrong,
// rather than return a record with a field left zero.
func TestScanLookupRefuses(t *testing.T) {
	const id = `"0f8fad5b-d9cb-469f-a165-70867728950e"`
	good := `[` + id + `, "acct_1", "ck_live_abc123", "n", "live", "links:read", 1000000, null, null, null, null, null, null]`
	if rec, err := scanLookup(good, apikey.Hash{1}); err != nil || rec.CreatedAt != time.Unix(1, 0).UTC() || rec.Hash != (apikey.Hash{1}) {
		t.Fatalf("scanLookup(%s) = %+v, %v", good, rec, err)
	}
	for _, tc := range []struct{ row, want string }{
		{strings.Replace(good, id, "null", 1), "ID"},
		{strings.Replace(good, `"live"`, `"prod"`, 1), "mode"},
		{strings.Replace(good, `"links:read"`, `"Links Read"`, 1), "scopes"},
		{strings.Replace(good, `"acct_1"`, `12`, 1), "owner"},
		{strings.Replace(good, `1000000`, `null`, 1), "creation time"},
		{strings.Replace(good, `1000000, null`, `1000000, "x"`, 1), "last use"},
		{strings.Replace(good, `null, null]`, `"not a uuid", null]`, 1), "replacement"},
		{strings.Replace(good, `null]`, `{"k": 1}]`, 1), "metadata"},
		{strings.Replace(good, `null]`, `[{"c": 3}]`, 1), "canary flag"},
		{strings.Replace(good, `, null]`, `]`, 1), "record"},
	} {
		if _, err := scanLookup(tc.row, apikey.Hash{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("scanLookup(%s) = %v, want an error about the %s", tc.row, err, tc.want)
		}
	}
}
