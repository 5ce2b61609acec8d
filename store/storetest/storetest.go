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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// Run runs the conformance suite. newStore must return an empty store that
// no other test uses; it is called once per subtest, and may register
// cleanups with t.Cleanup. Stores that implement [store.ChangeFeed] are
// checked against its contract too; for others that subtest is skipped.
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
		{"SetExpiry", testSetExpiry},
		{"ContextDone", testContextDone},
		{"ChangeFeed", testChangeFeed},
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

// newRecord returns a valid record, with a real key's hash and prefix.
func newRecord(t testing.TB, mode apikey.Mode, created time.Time) apikey.Record {
	t.Helper()
	sec, err := apikey.Generate(mode)
	if err != nil {
		t.Fatal(err)
	}
	return apikey.Record{
		ID:        uuid.New(),
		Name:      "conformance key",
		Prefix:    sec.DisplayPrefix(),
		Mode:      mode,
		Scopes:    scope.NewSet(scope.SessionsWrite, scope.LinksRead),
		Hash:      sec.Hash(),
		CreatedAt: created,
	}
}

func mustCreate(t testing.TB, s store.Store, rec apikey.Record) apikey.Record {
	t.Helper()
	if err := s.Create(context.Background(), rec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return rec
}

func mustGet(t testing.TB, s store.Store, id uuid.UUID) apikey.Record {
	t.Helper()
	rec, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return rec
}

// sameRecord fails unless got equals want, field by field, after want is
// put in store precision.
func sameRecord(t testing.TB, got, want apikey.Record) {
	t.Helper()
	want.CreatedAt = store.Time(want.CreatedAt)
	want.LastUsedAt = store.Time(want.LastUsedAt)
	want.RevokedAt = store.Time(want.RevokedAt)
	want.ExpiresAt = store.Time(want.ExpiresAt)
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Name", got.Name == want.Name, got.Name, want.Name)
	check("Prefix", got.Prefix == want.Prefix, got.Prefix, want.Prefix)
	check("Mode", got.Mode == want.Mode, got.Mode, want.Mode)
	check("Scopes", got.Scopes.Equal(want.Scopes), got.Scopes, want.Scopes)
	check("Hash", got.Hash == want.Hash, got.Hash, want.Hash)
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
			err := s.Create(context.Background(), rec)
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
	if err := s.Create(ctx, sameID); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create with an existing ID = %v, want ErrDuplicate", err)
	}
	if _, err := s.GetByHash(ctx, sameID.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused record is stored: GetByHash = %v", err)
	}

	sameHash := newRecord(t, apikey.Live, base.Add(time.Second))
	sameHash.Hash = first.Hash
	if err := s.Create(ctx, sameHash); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Create with an existing hash = %v, want ErrDuplicate", err)
	}
	if _, err := s.Get(ctx, sameHash.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused record is stored: Get = %v", err)
	}
	sameRecord(t, mustGet(t, s, first.ID), first)
	page, err := s.List(ctx, store.ListOptions{})
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
			errs[i] = s.Create(context.Background(), rec)
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
				if err := s.Create(context.Background(), rec); err != nil {
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
	got := listAll(t, s, store.ListOptions{Limit: 17})
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
		{"Get", second(s.Get(ctx, missing.ID))},
		{"GetByHash", second(s.GetByHash(ctx, missing.Hash))},
		{"Revoke", second(s.Revoke(ctx, missing.ID, base))},
		{"SetExpiry", second(s.SetExpiry(ctx, missing.ID, base))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s of an unknown key = %v, want ErrNotFound", c.name, c.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

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
	if _, err := s.Revoke(ctx, revoked.ID, base.Add(time.Second)); err != nil {
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
func listAll(t testing.TB, s store.Store, opts store.ListOptions) []apikey.Record {
	t.Helper()
	var all []apikey.Record
	for {
		page, err := s.List(context.Background(), opts)
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
	page, err := s.List(context.Background(), store.ListOptions{})
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
	all := listAll(t, s, store.ListOptions{})
	for _, limit := range []int{1, 2, 5, 22, 23} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			var got []apikey.Record
			opts := store.ListOptions{Limit: limit}
			pages := 0
			for {
				page, err := s.List(context.Background(), opts)
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
		page, err := s.List(context.Background(), store.ListOptions{Limit: tc.limit})
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
			if _, err := s.Revoke(ctx, rec.ID, base); err != nil {
				t.Fatal(err)
			}
		}
		made[rec.ID] = want{c.mode, c.status}
	}
	for _, mode := range []apikey.Mode{0, apikey.Live, apikey.Test} {
		for _, status := range []apikey.Status{0, apikey.Active, apikey.Revoked, apikey.Expired} {
			t.Run(fmt.Sprintf("mode=%v,status=%v", mode, status), func(t *testing.T) {
				got := listAll(t, s, store.ListOptions{Mode: mode, Status: status, Now: now, Limit: 2})
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
			_, err := s.List(context.Background(), tc.opts)
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
			if err := s.Create(context.Background(), rec); err != nil {
				t.Errorf("Create during listing: %v", err)
				return
			}
		}
	}()
	seen := map[uuid.UUID]int{}
	for _, rec := range listAll(t, s, store.ListOptions{Limit: 7}) {
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
	if _, err := s.Revoke(ctx, rec.ID, time.Time{}); err == nil {
		t.Error("Revoke with a zero time succeeded")
	}
	if got := mustGet(t, s, rec.ID); got.Revoked() {
		t.Fatal("a refused Revoke revoked the key")
	}
	at := base.Add(time.Minute + 123456789)
	got, err := s.Revoke(ctx, rec.ID, at)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := rec
	want.RevokedAt = at
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)

	if _, err := s.Revoke(ctx, rec.ID, at.Add(time.Hour)); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	if _, err := s.SetExpiry(ctx, rec.ID, at.Add(time.Hour)); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("SetExpiry of a revoked key = %v, want ErrAlreadyRevoked", err)
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
			results[i], errs[i] = s.Revoke(context.Background(), rec.ID, base.Add(time.Duration(i+1)*time.Second))
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
	if _, err := s.Revoke(ctx, revoked.ID, base.Add(time.Second)); err != nil {
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

func testSetExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if _, err := s.SetExpiry(ctx, rec.ID, time.Time{}); err == nil {
		t.Error("SetExpiry with a zero time succeeded")
	}
	t2 := base.Add(2 * time.Hour)
	got, err := s.SetExpiry(ctx, rec.ID, t2)
	if err != nil {
		t.Fatalf("SetExpiry: %v", err)
	}
	want := rec
	want.ExpiresAt = t2
	sameRecord(t, got, want)

	// A later expiry is ignored; an earlier one applies.
	if got, err = s.SetExpiry(ctx, rec.ID, t2.Add(time.Hour)); err != nil || got.ExpiresAt != store.Time(t2) {
		t.Errorf("SetExpiry later = %v, %v; want the expiry unchanged at %v", got.ExpiresAt, err, store.Time(t2))
	}
	t1 := base.Add(time.Hour)
	if got, err = s.SetExpiry(ctx, rec.ID, t1); err != nil || got.ExpiresAt != store.Time(t1) {
		t.Errorf("SetExpiry earlier = %v, %v; want %v", got.ExpiresAt, err, store.Time(t1))
	}
	want.ExpiresAt = t1
	sameRecord(t, mustGet(t, s, rec.ID), want)
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
		{"Create", s.Create(ctx, other)},
		{"Get", second(s.Get(ctx, rec.ID))},
		{"GetByHash", second(s.GetByHash(ctx, rec.Hash))},
		{"List", second(s.List(ctx, store.ListOptions{}))},
		{"Revoke", second(s.Revoke(ctx, rec.ID, base))},
		{"RecordUses", s.RecordUses(ctx, []store.Use{{ID: rec.ID, At: base}})},
		{"SetExpiry", second(s.SetExpiry(ctx, rec.ID, base))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, c.err)
		}
	}
	// A cancelled call changes nothing.
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	if _, err := s.Get(context.Background(), other.ID); !errors.Is(err, store.ErrNotFound) {
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
	if _, err := s.Revoke(ctx, before.ID, base); err != nil {
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

	revoked := mustCreate(t, s, newRecord(t, apikey.Live, base))
	expiring := mustCreate(t, s, newRecord(t, apikey.Test, base))
	if _, err := s.Revoke(ctx, revoked.ID, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetExpiry(ctx, expiring.ID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	changed, next, err := feed.Changes(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []apikey.Record{revoked, expiring} {
		if !slices.Contains(changed, want.Hash) {
			t.Errorf("change of key %s not reported", want.ID)
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
