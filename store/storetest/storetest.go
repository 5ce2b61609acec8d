// Package storetest is the conformance suite for [store.Store]
// implementations. Every store in this module passes it, and any third-party
// store proves it keeps the contract the same way:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return mystore.New(...) // empty, private to this test
//		})
//	}
//
// Each subtest checks sentences of the contract in the doc comments of
// [store.Store], including behaviour under concurrent use; run it with -race.
// The suite uses only the standard library's testing package.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// Run runs the conformance suite. newStore must return an empty store that
// no other test uses; it is called once per subtest, and may register
// cleanups with t.Cleanup. Stores that implement [store.ChangeFeed] or
// [store.LocalLookup] are checked against their contracts too; for others
// those subtests are skipped.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateNormalizesTimes", testCreateNormalizesTimes},
		{"CreateInvalid", testCreateInvalid},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateConcurrentSameHash", testCreateConcurrentSameHash},
		{"CreateConcurrent", testCreateConcurrent},
		{"NotFound", testNotFound},
		{"ReturnsCopies", testReturnsCopies},
		{"GetByHashReturnsInactive", testGetByHashReturnsInactive},
		{"ListOrder", testListOrder},
		{"ListPaging", testListPaging},
		{"ListLimits", testListLimits},
		{"ListFilters", testListFilters},
		{"ListBadOptions", testListBadOptions},
		{"ListWhileCreating", testListWhileCreating},
		{"Revoke", testRevoke},
		{"RevokeConcurrent", testRevokeConcurrent},
		{"RecordUses", testRecordUses},
		{"RecordUsesConcurrent", testRecordUsesConcurrent},
		{"ContextDone", testContextDone},
		{"ChangeFeed", testChangeFeed},
		{"LocalLookup", testLocalLookup},
		{"LocalRecordsAreNotChanged", testLocalRecordsAreNotChanged},
		{"OwnerIsolation", testOwnerIsolation},
		{"ListPerOwner", testListPerOwner},
		{"Metadata", testMetadata},
		{"Update", testUpdate},
		{"UpdateInvalid", testUpdateInvalid},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"Rotate", testRotate},
		{"RotateRefused", testRotateRefused},
		{"RotateAgainAfterReplacementRevoked", testRotateAgainAfterReplacementRevoked},
		{"RotateConcurrent", testRotateConcurrent},
		{"RevokeAll", testRevokeAll},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"RevokeReason", testRevokeReason},
		{"Expose", testExpose},
		{"ExposeConcurrent", testExposeConcurrent},
		{"Canary", testCanary},
		{"Trips", testTrips},
		{"Policy", testPolicy},
		{"AuditEvents", testAuditEvents},
		{"AuditUnchanged", testAuditUnchanged},
		{"AuditInvalidActor", testAuditInvalidActor},
		{"AuditChain", testAuditChain},
		{"AuditLimits", testAuditLimits},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditList", testAuditList},
		{"AuditPaging", testAuditPaging},
		{"AuditBadOptions", testAuditBadOptions},
		{"AuditReturnsCopies", testAuditReturnsCopies},
		{"AuditContextDone", testAuditContextDone},
		{"UsageCounts", testUsageCounts},
		{"UsageRange", testUsageRange},
		{"UsageOwners", testUsageOwners},
		{"UsageBadQuery", testUsageBadQuery},
		{"UsageConcurrent", testUsageConcurrent},
		{"PruneUsage", testPruneUsage},
		{"UsageContextDone", testUsageContextDone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

// base is the creation time of records made by the suite: a fixed time with
// nanoseconds, outside UTC, so that normalization is visible.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*3600))

// owner is the owner of the records the suite makes, unless a test names
// another.
const owner = "acct_conformance"

// newRecord returns a valid record of owner, with a real key's hash and
// prefix.
func newRecord(t testing.TB, mode apikey.Mode, created time.Time) apikey.Record {
	t.Helper()
	sec, err := apikey.Generate(mode)
	if err != nil {
		t.Fatal(err)
	}
	return apikey.Record{
		ID:        uuid.New(),
		Owner:     owner,
		Name:      "conformance key",
		Prefix:    sec.DisplayPrefix(),
		Mode:      mode,
		Scopes:    scope.NewSet(scope.SessionsWrite, scope.LinksRead),
		Hash:      sec.Hash(),
		CreatedAt: created,
	}
}

// ownedBy returns rec with another owner.
func ownedBy(who string, rec apikey.Record) apikey.Record {
	rec.Owner = who
	return rec
}

func mustCreate(t testing.TB, s store.Store, rec apikey.Record) apikey.Record {
	t.Helper()
	got, err := s.Create(context.Background(), rec, store.Idempotency{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	sameRecord(t, got, rec)
	return rec
}

func mustGet(t testing.TB, s store.Store, id uuid.UUID) apikey.Record {
	t.Helper()
	return mustGetOf(t, s, owner, id)
}

func mustGetOf(t testing.TB, s store.Store, who string, id uuid.UUID) apikey.Record {
	t.Helper()
	rec, err := s.Get(context.Background(), who, id)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", who, id, err)
	}
	return rec
}

// create calls Create without an idempotency key and returns its error.
func create(s store.Store, ctx context.Context, rec apikey.Record) error {
	_, err := s.Create(ctx, rec, store.Idempotency{})
	return err
}

// sameRecord fails unless got equals want, field by field, after want is
// put in store precision.
func sameRecord(t testing.TB, got, want apikey.Record) {
	t.Helper()
	want = store.Normalize(want)
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Owner", got.Owner == want.Owner, got.Owner, want.Owner)
	check("Name", got.Name == want.Name, got.Name, want.Name)
	check("Prefix", got.Prefix == want.Prefix, got.Prefix, want.Prefix)
	check("Mode", got.Mode == want.Mode, got.Mode, want.Mode)
	check("Scopes", got.Scopes.Equal(want.Scopes), got.Scopes, want.Scopes)
	check("Metadata", got.Metadata.Equal(want.Metadata), got.Metadata, want.Metadata)
	check("Hash", got.Hash == want.Hash, got.Hash, want.Hash)
	check("Replaces", got.Replaces == want.Replaces, got.Replaces, want.Replaces)
	check("ReplacedBy", got.ReplacedBy == want.ReplacedBy, got.ReplacedBy, want.ReplacedBy)
	check("RevokedReason", got.RevokedReason == want.RevokedReason, got.RevokedReason, want.RevokedReason)
	check("Canary", got.Canary == want.Canary, got.Canary, want.Canary)
	check("Exposure", sameExposure(got.Exposure, want.Exposure), got.Exposure, want.Exposure)
	check("Policy", samePolicy(got.Policy, want.Policy), got.Policy, want.Policy)
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastUsedAt", got.LastUsedAt, want.LastUsedAt},
		{"RevokedAt", got.RevokedAt, want.RevokedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
	} {
		// Exact equality: same instant, UTC location, no monotonic reading.
		check(f.name, f.got == f.want || f.got.IsZero() && f.want.IsZero() && f.got.Location() == time.UTC,
			f.got.Format(time.RFC3339Nano)+" "+f.got.Location().String(),
			f.want.Format(time.RFC3339Nano)+" "+f.want.Location().String())
	}
	if len(diffs) > 0 {
		t.Errorf("record differs:\n\t%s", strings.Join(diffs, "\n\t"))
	}
}

func testCreateGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, mode := range []apikey.Mode{apikey.Live, apikey.Test} {
		rec := newRecord(t, mode, base)
		rec.Name = "Production server — ünïcode"
		rec.Scopes = scope.NewSet(scope.Default.Scopes()...)
		rec.ExpiresAt = base.Add(90 * 24 * time.Hour)
		rec.LastUsedAt = base.Add(time.Minute)
		mustCreate(t, s, rec)
		sameRecord(t, mustGet(t, s, rec.ID), rec)
		byHash, err := s.GetByHash(ctx, rec.Hash)
		if err != nil {
			t.Fatalf("GetByHash: %v", err)
		}
		sameRecord(t, byHash, rec)
	}
}

func testCreateNormalizesTimes(t *testing.T, s store.Store) {
	rec := newRecord(t, apikey.Test, base)
	mustCreate(t, s, rec)
	got := mustGet(t, s, rec.ID)
	want := time.Date(2026, 3, 14, 13, 9, 26, 535897000, time.UTC)
	if got.CreatedAt != want {
		t.Errorf("CreatedAt = %v (%s), want %v: UTC, truncated to the microsecond",
			got.CreatedAt, got.CreatedAt.Location(), want)
	}
}

func testCreateInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name   string
		mutate func(*apikey.Record)
	}{
		{"nil ID", func(r *apikey.Record) { r.ID = uuid.Nil }},
		{"empty name", func(r *apikey.Record) { r.Name = "" }},
		{"untrimmed name", func(r *apikey.Record) { r.Name = " x" }},
		{"invalid mode", func(r *apikey.Record) { r.Mode = 7 }},
		{"no prefix", func(r *apikey.Record) { r.Prefix = "" }},
		{"no hash", func(r *apikey.Record) { r.Hash = apikey.Hash{} }},
		{"no scopes", func(r *apikey.Record) { r.Scopes = scope.Set{} }},
		{"malformed scope", func(r *apikey.Record) { r.Scopes = scope.NewSet("Links:Read") }},
		{"no creation time", func(r *apikey.Record) { r.CreatedAt = time.Time{} }},
		{"already revoked", func(r *apikey.Record) { r.RevokedAt = base }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord(t, apikey.Live, base)
			tc.mutate(&rec)
			err := create(s, context.Background(), rec)
			if !errors.Is(err, apikey.ErrInvalidRecord) {
				t.Fatalf("Create = %v, want ErrInvalidRecord", err)
			}
			if _, err := s.GetByHash(context.Background(), rec.Hash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after a refused Create, GetByHash = %v, want ErrNotFound", err)
			}
		})
	}
}

func testCreateDuplicate(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := mustCreate(t, s, newRecord(t, apikey.Live, base))

	sameID := newRecord(t, apikey.Test, base.Add(time.Second))
	sameID.ID = first.ID
	if err := create(s, ctx, sameID); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create with an existing ID = %v, want ErrDuplicate", err)
	}
	if _, err := s.GetByHash(ctx, sameID.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused record is stored: GetByHash = %v", err)
	}

	sameHash := newRecord(t, apikey.Live, base.Add(time.Second))
	sameHash.Hash = first.Hash
	if err := create(s, ctx, sameHash); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create with an existing hash = %v, want ErrDuplicate", err)
	}
	if _, err := s.Get(ctx, owner, sameHash.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused record is stored: Get = %v", err)
	}
	sameRecord(t, mustGet(t, s, first.ID), first)
	page, err := s.List(ctx, owner, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 {
		t.Errorf("List holds %d records after two refused duplicates, want 1", len(page.Records))
	}
}

func testCreateConcurrentSameHash(t *testing.T, s store.Store) {
	const n = 8
	hash := newRecord(t, apikey.Live, base).Hash
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := newRecord(t, apikey.Live, base)
			rec.Hash = hash
			errs[i] = create(s, context.Background(), rec)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrDuplicate):
			t.Errorf("concurrent Create = %v, want nil or ErrDuplicate", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent creates of one hash succeeded, want exactly 1", ok, n)
	}
}

func testCreateConcurrent(t *testing.T, s store.Store) {
	const workers, each = 8, 25
	ids := make(chan uuid.UUID, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec := newRecord(t, apikey.Live, base.Add(time.Duration(w*each+i)*time.Millisecond))
				if err := create(s, context.Background(), rec); err != nil {
					t.Errorf("concurrent Create: %v", err)
					return
				}
				ids <- rec.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	want := map[uuid.UUID]bool{}
	for id := range ids {
		want[id] = true
	}
	got := listAll(t, s, owner, store.ListOptions{Limit: 17})
	if len(got) != len(want) {
		t.Fatalf("listed %d records, want %d", len(got), len(want))
	}
	for _, rec := range got {
		if !want[rec.ID] {
			t.Errorf("listed unknown record %s", rec.ID)
		}
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, newRecord(t, apikey.Live, base))
	missing := newRecord(t, apikey.Live, base)
	checks := []struct {
		name string
		err  error
	}{
		{"Get", second(s.Get(ctx, owner, missing.ID))},
		{"GetByHash", second(s.GetByHash(ctx, missing.Hash))},
		{"Revoke", second(s.Revoke(ctx, owner, missing.ID, store.Revocation{At: base}))},
		{"Update", second(s.Update(ctx, owner, missing.ID, store.Update{Name: "renamed"}))},
		{"Rotate", third(s.Rotate(ctx, owner, missing.ID, replacementOf(t, missing), base))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s of an unknown key = %v, want ErrNotFound", c.name, c.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

// replacementOf returns a valid replacement of old for Rotate, created an
// hour after base.
func replacementOf(t testing.TB, old apikey.Record) apikey.Record {
	t.Helper()
	next := newRecord(t, old.Mode, base.Add(time.Hour))
	next.Owner = old.Owner
	next.Name = old.Name
	next.Scopes = old.Scopes
	next.Metadata = old.Metadata
	next.Replaces = old.ID
	return next
}

func testReturnsCopies(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	got := mustGet(t, s, rec.ID)
	got.Name = "changed"
	got.RevokedAt = base
	got.Hash[0] ^= 0xff
	sameRecord(t, mustGet(t, s, rec.ID), rec)
}

func testGetByHashReturnsInactive(t *testing.T, s store.Store) {
	ctx := context.Background()
	revoked := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	expired := newRecord(t, apikey.Live, base)
	expired.ExpiresAt = base.Add(time.Second)
	mustCreate(t, s, expired)
	for _, rec := range []apikey.Record{revoked, expired} {
		got, err := s.GetByHash(ctx, rec.Hash)
		if err != nil {
			t.Fatalf("GetByHash of an inactive key = %v, want the record", err)
		}
		if got.ID != rec.ID {
			t.Errorf("GetByHash returned %s, want %s", got.ID, rec.ID)
		}
	}
	got, _ := s.GetByHash(ctx, revoked.Hash)
	if got.RevokedAt.IsZero() {
		t.Error("GetByHash of a revoked key returned no revocation time")
	}
}

// listAll walks every page and fails on an error or an empty page with a
// cursor.
func listAll(t testing.TB, s store.Store, who string, opts store.ListOptions) []apikey.Record {
	t.Helper()
	var all []apikey.Record
	for {
		page, err := s.List(context.Background(), who, opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		all = append(all, page.Records...)
		if page.Next == "" {
			return all
		}
		if len(page.Records) == 0 {
			t.Fatalf("List returned an empty page with a next cursor")
		}
		opts.Cursor = page.Next
	}
}

func ids(recs []apikey.Record) []uuid.UUID {
	out := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testListOrder(t *testing.T, s store.Store) {
	// Five records at three times, inserted out of order; equal times are
	// ordered by ID descending.
	var recs []apikey.Record
	for _, offset := range []int{2, 0, 1, 2, 0} {
		recs = append(recs, mustCreate(t, s, newRecord(t, apikey.Live, base.Add(time.Duration(offset)*time.Hour))))
	}
	want := slices.Clone(recs)
	slices.SortFunc(want, func(a, b apikey.Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return store.CompareIDs(b.ID, a.ID)
	})
	page, err := s.List(context.Background(), owner, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Next != "" {
		t.Errorf("Next = %q on a single page, want empty", page.Next)
	}
	if !slices.Equal(ids(page.Records), ids(want)) {
		t.Errorf("List order = %v, want newest first, then ID descending: %v", ids(page.Records), ids(want))
	}
	for i := range want {
		sameRecord(t, page.Records[i], want[i])
	}
}

func testListPaging(t *testing.T, s store.Store) {
	var want []uuid.UUID
	for i := range 23 {
		// Pairs share a creation time, so pages split ties too.
		rec := mustCreate(t, s, newRecord(t, apikey.Test, base.Add(time.Duration(i/2)*time.Second)))
		want = append(want, rec.ID)
	}
	all := listAll(t, s, owner, store.ListOptions{})
	for _, limit := range []int{1, 2, 5, 22, 23} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			var got []apikey.Record
			opts := store.ListOptions{Limit: limit}
			pages := 0
			for {
				page, err := s.List(context.Background(), owner, opts)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.Records) > limit {
					t.Fatalf("page of %d records, limit %d", len(page.Records), limit)
				}
				got = append(got, page.Records...)
				if page.Next == "" {
					break
				}
				opts.Cursor = page.Next
			}
			if !slices.Equal(ids(got), ids(all)) {
				t.Errorf("paged listing differs from the single-page listing")
			}
			if wantPages := (23 + limit - 1) / limit; pages != wantPages {
				t.Errorf("%d pages, want %d (no empty last page)", pages, wantPages)
			}
		})
	}
	gotIDs := ids(all)
	slices.SortFunc(gotIDs, store.CompareIDs)
	slices.SortFunc(want, store.CompareIDs)
	if !slices.Equal(gotIDs, want) {
		t.Errorf("listing does not hold exactly the created records")
	}
}

func testListLimits(t *testing.T, s store.Store) {
	n := store.MaxLimit + 1
	for i := range n {
		mustCreate(t, s, newRecord(t, apikey.Live, base.Add(time.Duration(i)*time.Millisecond)))
	}
	for _, tc := range []struct {
		limit, want int
	}{
		{0, store.DefaultLimit},
		{store.MaxLimit + 500, store.MaxLimit},
		{7, 7},
	} {
		page, err := s.List(context.Background(), owner, store.ListOptions{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Records) != tc.want || page.Next == "" {
			t.Errorf("List(Limit: %d) = %d records, next %q; want %d and a cursor",
				tc.limit, len(page.Records), page.Next, tc.want)
		}
	}
}

func testListFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base.Add(time.Hour)
	type want struct {
		mode   apikey.Mode
		status apikey.Status
	}
	made := map[uuid.UUID]want{}
	for i, c := range []struct {
		mode    apikey.Mode
		revoke  bool
		expires time.Duration // from now; 0 = never
		status  apikey.Status
	}{
		{apikey.Live, false, 0, apikey.Active},
		{apikey.Test, false, 0, apikey.Active},
		{apikey.Live, true, 0, apikey.Revoked},
		{apikey.Test, true, 0, apikey.Revoked},
		{apikey.Live, false, -time.Second, apikey.Expired},
		{apikey.Live, false, 0, apikey.Expired}, // expires exactly now
		{apikey.Test, false, time.Second, apikey.Active},
		{apikey.Live, true, -time.Second, apikey.Revoked}, // revocation wins
	} {
		rec := newRecord(t, c.mode, base.Add(time.Duration(i)*time.Minute))
		if c.expires != 0 || c.status == apikey.Expired {
			rec.ExpiresAt = now.Add(c.expires)
		}
		mustCreate(t, s, rec)
		if c.revoke {
			if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base}); err != nil {
				t.Fatal(err)
			}
		}
		made[rec.ID] = want{c.mode, c.status}
	}
	for _, mode := range []apikey.Mode{0, apikey.Live, apikey.Test} {
		for _, status := range []apikey.Status{0, apikey.Active, apikey.Revoked, apikey.Expired} {
			t.Run(fmt.Sprintf("mode=%v,status=%v", mode, status), func(t *testing.T) {
				got := listAll(t, s, owner, store.ListOptions{Mode: mode, Status: status, Now: now, Limit: 2})
				var wantIDs []uuid.UUID
				for id, w := range made {
					if (mode == 0 || w.mode == mode) && (status == 0 || w.status == status) {
						wantIDs = append(wantIDs, id)
					}
				}
				gotIDs := ids(got)
				slices.SortFunc(gotIDs, store.CompareIDs)
				slices.SortFunc(wantIDs, store.CompareIDs)
				if !slices.Equal(gotIDs, wantIDs) {
					t.Errorf("listed %d records, want %d", len(gotIDs), len(wantIDs))
				}
			})
		}
	}
}

func testListBadOptions(t *testing.T, s store.Store) {
	mustCreate(t, s, newRecord(t, apikey.Live, base))
	for _, tc := range []struct {
		name string
		opts store.ListOptions
		is   error // nil: any error
	}{
		{"negative limit", store.ListOptions{Limit: -1}, nil},
		{"garbage cursor", store.ListOptions{Cursor: "not a cursor"}, store.ErrInvalidCursor},
		{"truncated cursor", store.ListOptions{Cursor: "AAAA"}, store.ErrInvalidCursor},
		{"invalid mode", store.ListOptions{Mode: 9}, apikey.ErrInvalidMode},
		{"invalid status", store.ListOptions{Status: 9}, apikey.ErrInvalidStatus},
		{"active without now", store.ListOptions{Status: apikey.Active}, nil},
		{"expired without now", store.ListOptions{Status: apikey.Expired}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.List(context.Background(), owner, tc.opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("List = %v, want an error matching %v", err, tc.is)
			}
		})
	}
}

func testListWhileCreating(t *testing.T, s store.Store) {
	const before, during = 300, 200
	existing := map[uuid.UUID]bool{}
	for i := range before {
		rec := mustCreate(t, s, newRecord(t, apikey.Live, base.Add(time.Duration(i/3)*time.Millisecond)))
		existing[rec.ID] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range during {
			// New keys are newer than every existing one, as a clock gives.
			rec := newRecord(t, apikey.Live, base.Add(time.Hour+time.Duration(i)*time.Millisecond))
			if err := create(s, context.Background(), rec); err != nil {
				t.Errorf("Create during listing: %v", err)
				return
			}
		}
	}()
	seen := map[uuid.UUID]int{}
	for _, rec := range listAll(t, s, owner, store.ListOptions{Limit: 7}) {
		seen[rec.ID]++
	}
	<-done
	for id := range existing {
		if seen[id] != 1 {
			t.Errorf("record %s listed %d times, want once", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("record %s listed %d times", id, n)
		}
	}
}

func testRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: time.Time{}}); err == nil {
		t.Error("Revoke with a zero time succeeded")
	}
	if got := mustGet(t, s, rec.ID); got.Revoked() {
		t.Fatal("a refused Revoke revoked the key")
	}
	at := base.Add(time.Minute + 123456789)
	got, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: at})
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := rec
	want.RevokedAt = at
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)

	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: at.Add(time.Hour)}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := s.Update(ctx, owner, rec.ID, store.Update{ExpiresAt: at.Add(time.Hour)}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("Update of a revoked key = %v, want ErrAlreadyRevoked", err)
	}
	if err := s.RecordUses(ctx, []store.Use{{ID: rec.ID, At: at.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	final := mustGet(t, s, rec.ID)
	if final.RevokedAt != store.Time(at) {
		t.Errorf("RevokedAt = %v after later calls, want the first revocation time %v", final.RevokedAt, store.Time(at))
	}
}

func testRevokeConcurrent(t *testing.T, s store.Store) {
	const n = 8
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	results := make([]apikey.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.Revoke(context.Background(), owner, rec.ID, store.Revocation{At: base.Add(time.Duration(i+1) * time.Second)})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("two concurrent revokes succeeded")
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrAlreadyRevoked):
			t.Errorf("concurrent Revoke = %v, want nil or ErrAlreadyRevoked", err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent revoke succeeded")
	}
	if got := mustGet(t, s, rec.ID).RevokedAt; got != results[winner].RevokedAt {
		t.Errorf("RevokedAt = %v, want the winner's %v", got, results[winner].RevokedAt)
	}
}

func testRecordUses(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newRecord(t, apikey.Live, base))
	b := mustCreate(t, s, newRecord(t, apikey.Test, base))
	untouched := mustCreate(t, s, newRecord(t, apikey.Test, base))
	revoked := mustCreate(t, s, newRecord(t, apikey.Test, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	t1 := base.Add(10 * time.Second)
	t2 := base.Add(20*time.Second + 999)

	if err := s.RecordUses(ctx, nil); err != nil {
		t.Errorf("RecordUses(nil) = %v", err)
	}
	err := s.RecordUses(ctx, []store.Use{
		{ID: a.ID, At: t1},
		{ID: uuid.New(), At: t2}, // unknown: ignored
		{ID: b.ID, At: t2},
		{ID: b.ID, At: t1}, // the latest time of a batch wins, whatever the order
		{ID: revoked.ID, At: t2},
	})
	if err != nil {
		t.Fatalf("RecordUses: %v", err)
	}
	for _, c := range []struct {
		rec  apikey.Record
		want time.Time
	}{{a, t1}, {b, t2}, {untouched, time.Time{}}, {revoked, t2}} {
		if got := mustGet(t, s, c.rec.ID).LastUsedAt; got != store.Time(c.want) {
			t.Errorf("LastUsedAt = %v, want %v", got, store.Time(c.want))
		}
	}
	// An earlier time never moves it backwards.
	if err := s.RecordUses(ctx, []store.Use{{ID: b.ID, At: t1}}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, b.ID).LastUsedAt; got != store.Time(t2) {
		t.Errorf("LastUsedAt moved backwards to %v", got)
	}
	// Nothing else changed.
	got := mustGet(t, s, a.ID)
	a.LastUsedAt = t1
	sameRecord(t, got, a)
}

func testRecordUsesConcurrent(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Interleaved times, each worker going backwards.
				at := base.Add(time.Duration((each-i)*workers+w) * time.Millisecond)
				if err := s.RecordUses(context.Background(), []store.Use{{ID: rec.ID, At: at}}); err != nil {
					t.Errorf("RecordUses: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := store.Time(base.Add(time.Duration(each*workers+workers-1) * time.Millisecond))
	if got := mustGet(t, s, rec.ID).LastUsedAt; got != want {
		t.Errorf("LastUsedAt = %v after concurrent uses, want the latest %v", got, want)
	}
}

func testContextDone(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := newRecord(t, apikey.Live, base)
	checks := []struct {
		name string
		err  error
	}{
		{"Create", create(s, ctx, other)},
		{"Get", second(s.Get(ctx, owner, rec.ID))},
		{"GetByHash", second(s.GetByHash(ctx, rec.Hash))},
		{"List", second(s.List(ctx, owner, store.ListOptions{}))},
		{"Revoke", second(s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base}))},
		{"RecordUses", s.RecordUses(ctx, []store.Use{{ID: rec.ID, At: base}})},
		{"Update", second(s.Update(ctx, owner, rec.ID, store.Update{Name: "renamed"}))},
		{"Rotate", third(s.Rotate(ctx, owner, rec.ID, replacementOf(t, rec), base.Add(time.Hour)))},
		{"RevokeAll", second(s.RevokeAll(ctx, owner, store.Revocation{At: base}))},
		{"Expose", second(s.Expose(ctx, owner, rec.ID, exposure(base, "github"), true))},
		{"RecordTrip", s.RecordTrip(ctx, apikey.Trip{KeyID: rec.ID, Owner: owner, At: base})},
		{"Trips", second(s.Trips(ctx, owner, rec.ID, 0))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, c.err)
		}
	}
	// A cancelled call changes nothing.
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	if _, err := s.Get(context.Background(), owner, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Create with a cancelled context stored the record: Get = %v", err)
	}
}

func testChangeFeed(t *testing.T, s store.Store) {
	feed, ok := s.(store.ChangeFeed)
	if !ok {
		t.Skip("the store does not implement store.ChangeFeed")
	}
	ctx := context.Background()
	before := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.Revoke(ctx, owner, before.ID, store.Revocation{At: base}); err != nil {
		t.Fatal(err)
	}
	changed, pos, err := feed.Changes(ctx, "")
	if err != nil {
		t.Fatalf("Changes(\"\"): %v", err)
	}
	if len(changed) != 0 || pos == "" {
		t.Fatalf("Changes(\"\") = %d hashes, position %q; want none and a position", len(changed), pos)
	}

	// Nothing changed: nothing reported (a repeat of the earlier revocation
	// would be allowed, but a new change must not be invented).
	unchanged := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if err := s.RecordUses(ctx, []store.Use{{ID: unchanged.ID, At: base}}); err != nil {
		t.Fatal(err)
	}
	changed, pos, err = feed.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range changed {
		if h == unchanged.Hash {
			t.Error("creating a key or recording a use was reported as a change")
		}
	}

	// Every kind of change is reported: revocation, expiry, each field an
	// update sets, rotation, revocation of all an owner's keys.
	revoked := mustCreate(t, s, newRecord(t, apikey.Live, base))
	expiring := mustCreate(t, s, newRecord(t, apikey.Test, base))
	renamed := mustCreate(t, s, newRecord(t, apikey.Test, base))
	narrowed := mustCreate(t, s, newRecord(t, apikey.Test, base))
	tagged := mustCreate(t, s, newRecord(t, apikey.Test, base))
	rotated := mustCreate(t, s, newRecord(t, apikey.Test, base))
	exposed := mustCreate(t, s, newRecord(t, apikey.Test, base))
	limited := mustCreate(t, s, newRecord(t, apikey.Test, base))
	closed := mustCreate(t, s, ownedBy("acct_closed", newRecord(t, apikey.Live, base)))
	md := apikey.MustMetadata(map[string]string{"plan": "gold"})
	for _, change := range []error{
		second(s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base})),
		second(s.Update(ctx, owner, expiring.ID, store.Update{ExpiresAt: base.Add(time.Hour)})),
		second(s.Update(ctx, owner, renamed.ID, store.Update{Name: "renamed"})),
		second(s.Update(ctx, owner, narrowed.ID, store.Update{Scopes: scope.NewSet(scope.LinksRead)})),
		second(s.Update(ctx, owner, tagged.ID, store.Update{Metadata: &md})),
		third(s.Rotate(ctx, owner, rotated.ID, replacementOf(t, rotated), base.Add(2*time.Hour))),
		second(s.RevokeAll(ctx, "acct_closed", store.Revocation{At: base.Add(time.Hour)})),
		second(s.Expose(ctx, owner, exposed.ID, exposure(base, "github"), false)),
		second(s.Update(ctx, owner, limited.ID, store.Update{Policy: fullPolicy()})),
	} {
		if change != nil {
			t.Fatal(change)
		}
	}
	changed, next, err := feed.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []apikey.Record{revoked, expiring, renamed, narrowed, tagged, rotated, exposed, limited, closed} {
		if !slices.Contains(changed, want.Hash) {
			t.Errorf("change of key %s (%s) not reported", want.ID, mustGetOf(t, s, want.Owner, want.ID).Name)
		}
	}
	if slices.Contains(changed, unchanged.Hash) {
		t.Error("an unchanged key was reported")
	}
	if next == "" {
		t.Error("Changes returned an empty next position")
	}
	if _, _, err := feed.Changes(ctx, "not a position"); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("Changes with a foreign position = %v, want ErrInvalidCursor", err)
	}
}

// other is the second owner of the isolation tests.
const other = "acct_other"

func testOwnerIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mine := mustCreate(t, s, newRecord(t, apikey.Live, base))
	theirs := mustCreate(t, s, ownedBy(other, newRecord(t, apikey.Live, base.Add(time.Second))))
	md := apikey.MustMetadata(map[string]string{"k": "v"})

	// Every owner-scoped method, handed the other owner's key ID, answers
	// exactly as for an unknown ID and changes nothing.
	checks := []struct {
		name string
		err  error
	}{
		{"Get", second(s.Get(ctx, owner, theirs.ID))},
		{"Update name", second(s.Update(ctx, owner, theirs.ID, store.Update{Name: "mine now"}))},
		{"Update metadata", second(s.Update(ctx, owner, theirs.ID, store.Update{Metadata: &md}))},
		{"Update expiry", second(s.Update(ctx, owner, theirs.ID, store.Update{ExpiresAt: base}))},
		{"Rotate", third(s.Rotate(ctx, owner, theirs.ID, ownedBy(owner, replacementOf(t, theirs)), base))},
		{"Revoke", second(s.Revoke(ctx, owner, theirs.ID, store.Revocation{At: base}))},
		{"Expose", second(s.Expose(ctx, owner, theirs.ID, exposure(base, "github"), true))},
		{"RecordTrip", s.RecordTrip(ctx, apikey.Trip{KeyID: theirs.ID, Owner: owner, At: base})},
		{"Trips", second(s.Trips(ctx, owner, theirs.ID, 0))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s of another owner's key = %v, want ErrNotFound", c.name, c.err)
		}
	}
	// A replacement that names the other owner is refused for the rotating
	// owner's own key, so no rotation can move a key across owners.
	if err := third(s.Rotate(ctx, owner, mine.ID, ownedBy(other, replacementOf(t, mine)), base)); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Rotate to a replacement of another owner = %v, want ErrInvalidRecord", err)
	}
	revoked, err := s.RevokeAll(ctx, owner, store.Revocation{At: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(revoked), []uuid.UUID{mine.ID}) {
		t.Errorf("RevokeAll revoked %v, want only the owner's key %s", ids(revoked), mine.ID)
	}
	sameRecord(t, mustGetOf(t, s, other, theirs.ID), theirs)
	if got := listAll(t, s, owner, store.ListOptions{}); !slices.Equal(ids(got), []uuid.UUID{mine.ID}) {
		t.Errorf("List(%s) = %v, want only %s", owner, ids(got), mine.ID)
	}
	// The verification lookup is global: a key identifies its owner.
	byHash, err := s.GetByHash(ctx, theirs.Hash)
	if err != nil || byHash.Owner != other {
		t.Errorf("GetByHash of another owner's key = %v owned by %q, want it, owned by %q", err, byHash.Owner, other)
	}
}

func testListPerOwner(t *testing.T, s store.Store) {
	// Three owners' keys interleaved in time: each listing, paged, holds
	// exactly its owner's keys, newest first.
	owners := []string{owner, other, "merchant-42"}
	want := map[string][]uuid.UUID{}
	for i := range 30 {
		who := owners[i%len(owners)]
		rec := mustCreate(t, s, ownedBy(who, newRecord(t, apikey.Test, base.Add(time.Duration(i/2)*time.Second))))
		want[who] = append(want[who], rec.ID)
	}
	for _, who := range owners {
		got := listAll(t, s, who, store.ListOptions{Limit: 3})
		for _, rec := range got {
			if rec.Owner != who {
				t.Errorf("List(%s) returned a key of %s", who, rec.Owner)
			}
		}
		if !slices.IsSortedFunc(got, func(a, b apikey.Record) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return store.CompareIDs(b.ID, a.ID)
		}) {
			t.Errorf("List(%s) is not newest first", who)
		}
		gotIDs := ids(got)
		slices.SortFunc(gotIDs, store.CompareIDs)
		slices.SortFunc(want[who], store.CompareIDs)
		if !slices.Equal(gotIDs, want[who]) {
			t.Errorf("List(%s) holds %d keys, want its %d", who, len(gotIDs), len(want[who]))
		}
	}
	page, err := s.List(context.Background(), "acct_nobody", store.ListOptions{})
	if err != nil || len(page.Records) != 0 || page.Next != "" {
		t.Errorf("List of an owner without keys = %d records, next %q, %v; want an empty page", len(page.Records), page.Next, err)
	}
}

// fullMetadata is metadata at every limit: the most keys, the longest keys
// and values, counted in characters of several bytes each.
func fullMetadata(t testing.TB) apikey.Metadata {
	t.Helper()
	m := map[string]string{"empty": ""}
	for i := len(m); i < apikey.MaxMetadataPairs; i++ {
		key := fmt.Sprintf("%02d-%s", i, strings.Repeat("ключ", (apikey.MaxMetadataKeyLen-3)/4))
		key += strings.Repeat("k", apikey.MaxMetadataKeyLen-utf8.RuneCountInString(key))
		m[key] = strings.Repeat("é€😀\"'\\<>&", apikey.MaxMetadataValueLen/10)
	}
	md, err := apikey.NewMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func testMetadata(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := newRecord(t, apikey.Live, base)
	rec.Metadata = fullMetadata(t)
	mustCreate(t, s, rec)
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	byHash, err := s.GetByHash(ctx, rec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, byHash, rec)
	page, err := s.List(ctx, owner, store.ListOptions{})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("List = %d records, %v", len(page.Records), err)
	}
	sameRecord(t, page.Records[0], rec)

	// Replaced whole, and cleared.
	small := apikey.MustMetadata(map[string]string{"integration": "woocommerce"})
	got, err := s.Update(ctx, owner, rec.ID, store.Update{Metadata: &small})
	if err != nil {
		t.Fatal(err)
	}
	rec.Metadata = small
	sameRecord(t, got, rec)
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	empty := apikey.Metadata{}
	if _, err := s.Update(ctx, owner, rec.ID, store.Update{Metadata: &empty}); err != nil {
		t.Fatal(err)
	}
	if md := mustGet(t, s, rec.ID).Metadata; !md.IsEmpty() {
		t.Errorf("metadata after clearing = %v, want empty", md)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := newRecord(t, apikey.Live, base)
	rec.Scopes = scope.NewSet(scope.LinksRead, scope.LinksWrite, scope.SessionsWrite)
	rec.Metadata = apikey.MustMetadata(map[string]string{"a": "1"})
	mustCreate(t, s, rec)

	if got, err := s.Update(ctx, owner, rec.ID, store.Update{}); err != nil {
		t.Fatalf("an empty Update = %v", err)
	} else {
		sameRecord(t, got, rec)
	}

	md := apikey.MustMetadata(map[string]string{"b": "2"})
	expires := base.Add(48*time.Hour + 123456789)
	got, err := s.Update(ctx, owner, rec.ID, store.Update{
		Name:      "Renamed — ünïcode",
		Scopes:    scope.NewSet(scope.LinksRead, scope.SessionsWrite),
		Metadata:  &md,
		ExpiresAt: expires,
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := rec
	want.Name = "Renamed — ünïcode"
	want.Scopes = scope.NewSet(scope.LinksRead, scope.SessionsWrite)
	want.Metadata = md
	want.ExpiresAt = expires
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)

	// Widening is refused, and the whole update with it.
	_, err = s.Update(ctx, owner, rec.ID, store.Update{Name: "sneaky", Scopes: scope.NewSet(scope.LinksRead, scope.LinksWrite)})
	if !errors.Is(err, store.ErrWidening) {
		t.Errorf("Update that widens scopes = %v, want ErrWidening", err)
	}
	sameRecord(t, mustGet(t, s, rec.ID), want)

	// An expiry only moves earlier.
	if got, err = s.Update(ctx, owner, rec.ID, store.Update{ExpiresAt: expires.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, want)
	earlier := base.Add(time.Hour)
	if got, err = s.Update(ctx, owner, rec.ID, store.Update{ExpiresAt: earlier}); err != nil {
		t.Fatal(err)
	}
	want.ExpiresAt = earlier
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)

	// An expired key can still be renamed; a revoked one cannot change.
	if _, err := s.Update(ctx, owner, rec.ID, store.Update{ExpiresAt: base}); err != nil {
		t.Fatal(err)
	}
	want.ExpiresAt = base
	if got, err = s.Update(ctx, owner, rec.ID, store.Update{Name: "Expired key"}); err != nil {
		t.Errorf("Update of an expired key = %v", err)
	}
	want.Name = "Expired key"
	sameRecord(t, got, want)
	revokedAt := base.Add(time.Minute)
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: revokedAt}); err != nil {
		t.Fatal(err)
	}
	want.RevokedAt = revokedAt
	if _, err := s.Update(ctx, owner, rec.ID, store.Update{Name: "Revived"}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("Update of a revoked key = %v, want ErrAlreadyRevoked", err)
	}
	sameRecord(t, mustGet(t, s, rec.ID), want)
}

func testUpdateInvalid(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	for _, tc := range []struct {
		name string
		u    store.Update
	}{
		{"untrimmed name", store.Update{Name: " x"}},
		{"control character", store.Update{Name: "a\x00b"}},
		{"bidirectional override", store.Update{Name: "abc\u202Edcb"}},
		{"malformed scope", store.Update{Scopes: scope.NewSet("Links:Read")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Update(context.Background(), owner, rec.ID, tc.u); !errors.Is(err, apikey.ErrInvalidRecord) {
				t.Errorf("Update = %v, want ErrInvalidRecord", err)
			}
			sameRecord(t, mustGet(t, s, rec.ID), rec)
		})
	}
}

func testUpdateConcurrent(t *testing.T, s store.Store) {
	// Each worker narrows the key to the scopes it was given, all subsets
	// of the key's: whatever the interleaving, each update either applies
	// to the key as it is or is refused, and the key never regains a scope
	// it lost.
	all := []scope.Scope{scope.LinksRead, scope.LinksWrite, scope.SessionsRead, scope.SessionsWrite, scope.EventsRead}
	rec := newRecord(t, apikey.Live, base)
	rec.Scopes = scope.NewSet(all...)
	mustCreate(t, s, rec)
	const n = 8
	applied := make([]scope.Set, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keep := slices.Clone(all)
			keep = slices.Delete(keep, i%len(all), i%len(all)+1) // drop one scope
			got, err := s.Update(context.Background(), owner, rec.ID, store.Update{Scopes: scope.NewSet(keep...)})
			switch {
			case err == nil:
				applied[i] = got.Scopes
			case !errors.Is(err, store.ErrWidening):
				t.Errorf("concurrent Update = %v, want nil or ErrWidening", err)
			}
		})
	}
	wg.Wait()
	final := mustGet(t, s, rec.ID).Scopes
	for i, set := range applied {
		if !set.IsEmpty() && !final.SubsetOf(set) {
			t.Errorf("update %d applied %v, but the key ended with %v: a scope came back", i, set, final)
		}
	}
	if final.Len() != len(all)-1 {
		t.Errorf("the key ended with %v; only the first update can apply, the rest would widen", final)
	}
}

func testRotate(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newRecord(t, apikey.Live, base)
	old.ExpiresAt = base.Add(30 * 24 * time.Hour)
	old.Metadata = apikey.MustMetadata(map[string]string{"integration": "erp"})
	mustCreate(t, s, old)

	next := replacementOf(t, old)
	next.Scopes = scope.NewSet(scope.LinksRead) // narrower is allowed
	overlapEnd := next.CreatedAt.Add(24 * time.Hour)
	gotOld, gotNext, err := s.Rotate(ctx, owner, old.ID, next, overlapEnd)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	wantOld := old
	wantOld.ExpiresAt = overlapEnd
	wantOld.ReplacedBy = next.ID
	wantNext := next
	wantNext.ExpiresAt = old.ExpiresAt // a zero expiry takes the old key's
	sameRecord(t, gotOld, wantOld)
	sameRecord(t, gotNext, wantNext)
	sameRecord(t, mustGet(t, s, old.ID), wantOld)
	sameRecord(t, mustGet(t, s, next.ID), wantNext)
	byHash, err := s.GetByHash(ctx, next.Hash)
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, byHash, wantNext)

	// An old key that expires before the overlap ends keeps its expiry; a
	// replacement given an expiry keeps it.
	soon := newRecord(t, apikey.Test, base)
	soon.ExpiresAt = base.Add(90 * time.Minute)
	mustCreate(t, s, soon)
	next2 := replacementOf(t, soon)
	next2.ExpiresAt = base.Add(365 * 24 * time.Hour)
	gotOld, gotNext, err = s.Rotate(ctx, owner, soon.ID, next2, next2.CreatedAt.Add(7*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if gotOld.ExpiresAt != store.Time(soon.ExpiresAt) {
		t.Errorf("old key's expiry = %v, want it kept at %v", gotOld.ExpiresAt, store.Time(soon.ExpiresAt))
	}
	if gotNext.ExpiresAt != store.Time(next2.ExpiresAt) {
		t.Errorf("replacement's expiry = %v, want the one given, %v", gotNext.ExpiresAt, store.Time(next2.ExpiresAt))
	}
}

func testRotateRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	revoked := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base}); err != nil {
		t.Fatal(err)
	}
	expired := newRecord(t, apikey.Live, base)
	expired.ExpiresAt = base.Add(time.Hour) // exactly when replacementOf's key is created
	mustCreate(t, s, expired)
	replaced := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, _, err := s.Rotate(ctx, owner, replaced.ID, replacementOf(t, replaced), base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	replaced = mustGet(t, s, replaced.ID)
	active := mustCreate(t, s, newRecord(t, apikey.Live, base))

	wider := replacementOf(t, active)
	wider.Scopes = scope.NewSet(scope.LinksRead, scope.CustomersWrite)
	otherMode := replacementOf(t, active)
	otherMode.Mode, otherMode.Prefix = apikey.Test, "ck_test_abc123"
	unlinked := replacementOf(t, active)
	unlinked.Replaces = uuid.New()
	dupHash := replacementOf(t, active)
	dupHash.Hash = revoked.Hash

	for _, tc := range []struct {
		name string
		old  apikey.Record
		next apikey.Record
		is   error
	}{
		{"revoked", revoked, replacementOf(t, revoked), store.ErrAlreadyRevoked},
		{"expired", expired, replacementOf(t, expired), store.ErrKeyExpired},
		{"already being replaced", replaced, replacementOf(t, replaced), store.ErrReplaced},
		{"wider scopes", active, wider, store.ErrWidening},
		{"another mode", active, otherMode, apikey.ErrInvalidRecord},
		{"replacement names another key", active, unlinked, apikey.ErrInvalidRecord},
		{"invalid replacement", active, func() apikey.Record { r := replacementOf(t, active); r.Name = ""; return r }(), apikey.ErrInvalidRecord},
		{"duplicate hash", active, dupHash, store.ErrDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := mustGet(t, s, tc.old.ID)
			_, _, err := s.Rotate(ctx, owner, tc.old.ID, tc.next, base.Add(2*time.Hour))
			if !errors.Is(err, tc.is) {
				t.Fatalf("Rotate = %v, want %v", err, tc.is)
			}
			sameRecord(t, mustGet(t, s, tc.old.ID), before)
			if _, err := s.Get(ctx, owner, tc.next.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused rotation stored its replacement: Get = %v", err)
			}
		})
	}
}

func testRotateAgainAfterReplacementRevoked(t *testing.T, s store.Store) {
	// A replacement whose raw key was lost is revoked; the old key, still
	// in its overlap, may then be rotated again. Never are there more than
	// two active keys of the lineage.
	ctx := context.Background()
	old := mustCreate(t, s, newRecord(t, apikey.Live, base))
	first := replacementOf(t, old)
	if _, _, err := s.Rotate(ctx, owner, old.ID, first, base.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, owner, first.ID, store.Revocation{At: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	second := replacementOf(t, old)
	gotOld, _, err := s.Rotate(ctx, owner, old.ID, second, base.Add(12*time.Hour))
	if err != nil {
		t.Fatalf("Rotate after the replacement was revoked = %v", err)
	}
	if gotOld.ReplacedBy != second.ID || gotOld.ExpiresAt != store.Time(base.Add(12*time.Hour)) {
		t.Errorf("old key replaced by %s until %v, want %s until %v", gotOld.ReplacedBy, gotOld.ExpiresAt, second.ID, store.Time(base.Add(12*time.Hour)))
	}
	now := base.Add(2 * time.Hour)
	var active int
	for _, rec := range listAll(t, s, owner, store.ListOptions{}) {
		if rec.Status(now) == apikey.Active {
			active++
		}
	}
	if active != 2 {
		t.Errorf("%d active keys after two rotations, one replacement revoked; want 2", active)
	}
}

func testRotateConcurrent(t *testing.T, s store.Store) {
	old := mustCreate(t, s, newRecord(t, apikey.Live, base))
	const n = 8
	errs := make([]error, n)
	nexts := make([]apikey.Record, n)
	var wg sync.WaitGroup
	for i := range n {
		nexts[i] = replacementOf(t, old)
		wg.Go(func() {
			_, _, errs[i] = s.Rotate(context.Background(), owner, old.ID, nexts[i], base.Add(24*time.Hour))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("two concurrent rotations of one key succeeded")
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrReplaced):
			t.Errorf("concurrent Rotate = %v, want nil or ErrReplaced", err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent rotation succeeded")
	}
	if got := mustGet(t, s, old.ID).ReplacedBy; got != nexts[winner].ID {
		t.Errorf("ReplacedBy = %s, want the winner's %s", got, nexts[winner].ID)
	}
	if n := len(listAll(t, s, owner, store.ListOptions{})); n != 2 {
		t.Errorf("%d keys after concurrent rotations, want 2", n)
	}
}

func testRevokeAll(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := base.Add(time.Hour)
	var active []apikey.Record
	for i := range 5 {
		active = append(active, mustCreate(t, s, newRecord(t, apikey.Mode(1+i%2), base.Add(time.Duration(i)*time.Second))))
	}
	future := newRecord(t, apikey.Live, base.Add(time.Minute))
	future.ExpiresAt = at.Add(time.Second)
	active = append(active, mustCreate(t, s, future))
	// The inactive keys sit among the active ones in the list order.
	revoked := mustCreate(t, s, newRecord(t, apikey.Live, base.Add(1500*time.Millisecond)))
	firstRevocation := base.Add(time.Minute)
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: firstRevocation}); err != nil {
		t.Fatal(err)
	}
	expired := newRecord(t, apikey.Live, base.Add(2500*time.Millisecond))
	expired.ExpiresAt = at
	mustCreate(t, s, expired)
	theirs := mustCreate(t, s, ownedBy(other, newRecord(t, apikey.Live, base)))

	if _, err := s.RevokeAll(ctx, owner, store.Revocation{At: time.Time{}}); err == nil {
		t.Error("RevokeAll with a zero time succeeded")
	}
	got, err := s.RevokeAll(ctx, owner, store.Revocation{At: at})
	if err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	want := slices.Clone(active)
	slices.SortFunc(want, func(a, b apikey.Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return store.CompareIDs(b.ID, a.ID)
	})
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("RevokeAll returned %v, want the active keys newest first %v", ids(got), ids(want))
	}
	for i, rec := range got {
		w := want[i]
		w.RevokedAt = at
		sameRecord(t, rec, w)
		sameRecord(t, mustGet(t, s, rec.ID), w)
	}
	if got := mustGet(t, s, revoked.ID).RevokedAt; got != store.Time(firstRevocation) {
		t.Errorf("a key revoked before has RevokedAt %v, want its first revocation %v", got, store.Time(firstRevocation))
	}
	if got := mustGet(t, s, expired.ID); got.Revoked() {
		t.Error("RevokeAll revoked an expired key")
	}
	sameRecord(t, mustGetOf(t, s, other, theirs.ID), theirs)

	again, err := s.RevokeAll(ctx, owner, store.Revocation{At: at.Add(time.Hour)})
	if err != nil || len(again) != 0 {
		t.Errorf("a second RevokeAll = %d records, %v; want none", len(again), err)
	}
}

// idem returns an Idempotency made of two labels.
func idem(key, request string) store.Idempotency {
	var i store.Idempotency
	copy(i.Key[:], key)
	copy(i.Request[:], request)
	return i
}

func testIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := newRecord(t, apikey.Live, base)
	got, err := s.Create(ctx, first, idem("order-1", "request A"))
	if err != nil {
		t.Fatal(err)
	}
	sameRecord(t, got, first)

	// The same request again: nothing created, the first key returned.
	repeat := newRecord(t, apikey.Live, base.Add(time.Second))
	got, err = s.Create(ctx, repeat, idem("order-1", "request A"))
	if !errors.Is(err, store.ErrAlreadyCreated) {
		t.Fatalf("repeated Create = %v, want ErrAlreadyCreated", err)
	}
	sameRecord(t, got, first)
	if _, err := s.GetByHash(ctx, repeat.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Error("a repeated Create stored a second key")
	}

	// Another request under the same idempotency key is a conflict.
	conflict := newRecord(t, apikey.Test, base.Add(time.Second))
	if _, err := s.Create(ctx, conflict, idem("order-1", "request B")); !errors.Is(err, store.ErrIdempotencyConflict) {
		t.Errorf("Create with a reused idempotency key for another request = %v, want ErrIdempotencyConflict", err)
	}
	if _, err := s.GetByHash(ctx, conflict.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Error("a conflicting Create stored a key")
	}

	// Idempotency keys are per owner, and a key created without one is not
	// matched by any.
	theirs := ownedBy(other, newRecord(t, apikey.Live, base.Add(time.Second)))
	if _, err := s.Create(ctx, theirs, idem("order-1", "request A")); err != nil {
		t.Errorf("another owner's Create with the same idempotency key = %v, want it created", err)
	}
	plain := mustCreate(t, s, newRecord(t, apikey.Live, base.Add(2*time.Second)))
	if _, err := s.Create(ctx, newRecord(t, apikey.Live, base.Add(3*time.Second)), idem("order-2", "request A")); err != nil {
		t.Errorf("a new idempotency key = %v, want it created", err)
	}
	if n := len(listAll(t, s, owner, store.ListOptions{})); n != 3 {
		t.Errorf("the owner has %d keys, want 3 (first, plain %s, order-2)", n, plain.ID)
	}
}

func testIdempotencyConcurrent(t *testing.T, s store.Store) {
	const n = 8
	recs := make([]apikey.Record, n)
	got := make([]apikey.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = newRecord(t, apikey.Live, base)
		wg.Go(func() {
			got[i], errs[i] = s.Create(context.Background(), recs[i], idem("retry-storm", "same request"))
		})
	}
	wg.Wait()
	created := -1
	for i, err := range errs {
		switch {
		case err == nil && created >= 0:
			t.Errorf("two concurrent creates with one idempotency key both created a key")
		case err == nil:
			created = i
		case !errors.Is(err, store.ErrAlreadyCreated):
			t.Errorf("concurrent Create = %v, want nil or ErrAlreadyCreated", err)
		}
	}
	if created < 0 {
		t.Fatal("no concurrent create created the key")
	}
	for i, err := range errs {
		if err != nil && got[i].ID != recs[created].ID {
			t.Errorf("a repeat returned key %s, want the created %s", got[i].ID, recs[created].ID)
		}
	}
	if n := len(listAll(t, s, owner, store.ListOptions{})); n != 1 {
		t.Errorf("%d keys stored, want 1", n)
	}
}

func testLocalLookup(t *testing.T, s store.Store) {
	local, ok := s.(store.LocalLookup)
	if !ok {
		t.Skip("the store does not implement store.LocalLookup")
	}
	ctx := context.Background()
	active := mustCreate(t, s, newRecord(t, apikey.Live, base))
	revoked := mustCreate(t, s, newRecord(t, apikey.Test, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	unknown := newRecord(t, apikey.Live, base).Hash
	for name, h := range map[string]apikey.Hash{"active": active.Hash, "revoked": revoked.Hash, "unknown": unknown} {
		t.Run(name, func(t *testing.T) {
			// Let a store that learns from lookups (a cache) learn.
			want, wantErr := s.GetByHash(ctx, h)
			got, err := local.GetByHashLocal(h)
			switch {
			case err == store.ErrWouldBlock:
				if got != nil {
					t.Errorf("ErrWouldBlock came with a record")
				}
				return // allowed: the answer is not in memory
			case errors.Is(wantErr, store.ErrNotFound) != errors.Is(err, store.ErrNotFound):
				t.Fatalf("GetByHashLocal = %v, GetByHash = %v: the two disagree", err, wantErr)
			case err == nil:
				sameRecord(t, *got, want)
			default:
				if got != nil {
					t.Errorf("GetByHashLocal = %v came with a record", err)
				}
			}
			if n := testing.AllocsPerRun(100, func() { local.GetByHashLocal(h) }); n != 0 {
				t.Errorf("GetByHashLocal allocates %v times", n)
			}
		})
	}
}

// testLocalRecordsAreNotChanged: a record GetByHashLocal returned is
// shared, not copied, so the store must never change it: changes of the
// key and recorded uses store new values elsewhere.
func testLocalRecordsAreNotChanged(t *testing.T, s store.Store) {
	local, ok := s.(store.LocalLookup)
	if !ok {
		t.Skip("the store does not implement store.LocalLookup")
	}
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.GetByHash(ctx, rec.Hash); err != nil { // let a cache learn
		t.Fatal(err)
	}
	got, err := local.GetByHashLocal(rec.Hash)
	if err == store.ErrWouldBlock {
		t.Skip("the store does not answer this lookup from memory")
	}
	if err != nil {
		t.Fatal(err)
	}
	before := *got
	if err := s.RecordUses(ctx, []store.Use{{ID: rec.ID, At: base.Add(time.Minute), Hour: base, Counts: store.Counts{Verified: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, owner, rec.ID, store.Update{Name: "renamed", At: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, before) {
		t.Errorf("the record GetByHashLocal returned changed after its key did:\n before %+v\n after  %+v", before, *got)
	}
	used := base.Add(time.Minute).Truncate(time.Microsecond)
	if now, err := s.GetByHash(ctx, rec.Hash); err != nil || !now.Revoked() || now.Name != "renamed" || !now.LastUsedAt.Equal(used) {
		t.Errorf("GetByHash after the changes = %+v, %v; want the key renamed, revoked, last used at %v", now, err, used)
	}
}
