package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// exposure returns a valid exposure reported at at by source.
func exposure(at time.Time, source string) apikey.Exposure {
	return apikey.Exposure{At: at, Source: source, URL: "https://github.com/acme/app/blob/0123abc/.env#L3"}
}

// sameExposure reports whether got is want in store precision.
func sameExposure(got, want *apikey.Exposure) bool {
	if got == nil || want == nil {
		return got == want
	}
	return got.At == store.Time(want.At) && got.Source == want.Source && got.URL == want.URL
}

func testRevokeReason(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	for _, bad := range []string{" padded ", "line\nbreak", "bidi \u202e", strings.Repeat("x", apikey.MaxReasonLen+1), "\xff"} {
		if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base, Reason: bad}); !errors.Is(err, apikey.ErrInvalidRecord) {
			t.Errorf("Revoke with reason %q = %v, want ErrInvalidRecord", bad, err)
		}
	}
	sameRecord(t, mustGet(t, s, rec.ID), rec)

	const reason = "laptop stolen, ticket #4471 ✓"
	got, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base.Add(time.Minute), Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	want := rec
	want.RevokedAt, want.RevokedReason = base.Add(time.Minute), reason
	sameRecord(t, got, want)
	if _, err := s.Revoke(ctx, owner, rec.ID, store.Revocation{At: base.Add(time.Hour), Reason: "again"}); !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Errorf("second Revoke = %v, want ErrAlreadyRevoked", err)
	}
	sameRecord(t, mustGet(t, s, rec.ID), want)

	a := mustCreate(t, s, newRecord(t, apikey.Live, base))
	b := mustCreate(t, s, newRecord(t, apikey.Test, base.Add(time.Second)))
	if _, err := s.RevokeAll(ctx, owner, store.Revocation{At: base, Reason: "bad\x00"}); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("RevokeAll with an invalid reason = %v, want ErrInvalidRecord", err)
	}
	all, err := s.RevokeAll(ctx, owner, store.Revocation{At: base.Add(time.Hour), Reason: "account closed"})
	if err != nil || len(all) != 2 {
		t.Fatalf("RevokeAll = %d records, %v; want 2", len(all), err)
	}
	for _, r := range []apikey.Record{a, b} {
		if got := mustGet(t, s, r.ID); got.RevokedReason != "account closed" {
			t.Errorf("RevokeAll left reason %q, want %q", got.RevokedReason, "account closed")
		}
	}
	if got := mustGet(t, s, rec.ID); got.RevokedReason != reason {
		t.Errorf("RevokeAll changed the reason of a key revoked before to %q", got.RevokedReason)
	}
}

func testExpose(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := base.Add(time.Hour + 987654321)

	// Revoke: the key is marked exposed and revoked at once.
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	e := exposure(at, "github")
	got, err := s.Expose(ctx, owner, rec.ID, e, true)
	if err != nil {
		t.Fatalf("Expose: %v", err)
	}
	want := rec
	want.Exposure, want.RevokedAt, want.RevokedReason = &e, at, apikey.ReasonExposed
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)
	// Idempotent: a repeat changes nothing, and the first report stays.
	again, err := s.Expose(ctx, owner, rec.ID, exposure(at.Add(time.Hour), "pastebin"), true)
	if !errors.Is(err, store.ErrAlreadyExposed) {
		t.Errorf("second Expose = %v, want ErrAlreadyExposed", err)
	}
	sameRecord(t, again, want)
	sameRecord(t, mustGet(t, s, rec.ID), want)

	// Mark only, then revoke on a later report.
	marked := mustCreate(t, s, newRecord(t, apikey.Live, base))
	e2 := apikey.Exposure{At: at, Source: "support"}
	got, err = s.Expose(ctx, owner, marked.ID, e2, false)
	if err != nil {
		t.Fatalf("Expose without revoking: %v", err)
	}
	want = marked
	want.Exposure = &e2
	sameRecord(t, got, want)
	if _, err := s.Expose(ctx, owner, marked.ID, exposure(at.Add(time.Minute), "github"), false); !errors.Is(err, store.ErrAlreadyExposed) {
		t.Errorf("second mark = %v, want ErrAlreadyExposed", err)
	}
	got, err = s.Expose(ctx, owner, marked.ID, exposure(at.Add(time.Minute), "github"), true)
	if err != nil {
		t.Fatalf("Expose with revoking after a mark: %v", err)
	}
	want.RevokedAt, want.RevokedReason = at.Add(time.Minute), apikey.ReasonExposed
	sameRecord(t, got, want)

	// A key revoked before keeps its revocation; the exposure is recorded.
	revoked := mustCreate(t, s, newRecord(t, apikey.Test, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base, Reason: "rotated out"}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Expose(ctx, owner, revoked.ID, e, true)
	if err != nil {
		t.Fatalf("Expose of a revoked key: %v", err)
	}
	want = revoked
	want.RevokedAt, want.RevokedReason, want.Exposure = base, "rotated out", &e
	sameRecord(t, got, want)

	// An expired key can be reported too.
	expired := newRecord(t, apikey.Test, base)
	expired.ExpiresAt = base.Add(time.Second)
	expired = mustCreate(t, s, expired)
	if _, err := s.Expose(ctx, owner, expired.ID, e, true); err != nil {
		t.Errorf("Expose of an expired key: %v", err)
	}

	// Invalid exposures and unknown keys change nothing.
	fresh := mustCreate(t, s, newRecord(t, apikey.Live, base))
	for _, bad := range []apikey.Exposure{
		{Source: "github"},
		{At: at},
		{At: at, Source: "git\nhub"},
		{At: at, Source: "github", URL: "https://x.test/a b"},
		{At: at, Source: strings.Repeat("s", apikey.MaxSourceLen+1)},
		{At: at, Source: "github", URL: "https://x.test/" + strings.Repeat("u", apikey.MaxURLLen)},
	} {
		if _, err := s.Expose(ctx, owner, fresh.ID, bad, true); !errors.Is(err, apikey.ErrInvalidRecord) {
			t.Errorf("Expose(%+v) = %v, want ErrInvalidRecord", bad, err)
		}
	}
	sameRecord(t, mustGet(t, s, fresh.ID), fresh)
	if _, err := s.Expose(ctx, owner, uuid.New(), e, true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Expose of an unknown key = %v, want ErrNotFound", err)
	}
}

func testExposeConcurrent(t *testing.T, s store.Store) {
	const n = 8
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	results := make([]apikey.Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.Expose(context.Background(), owner, rec.ID, exposure(base.Add(time.Duration(i+1)*time.Second), fmt.Sprintf("scanner %d", i)), i%2 == 0)
		})
	}
	wg.Wait()
	setters := 0
	var winner apikey.Record
	for i, err := range errs {
		switch {
		case err == nil && results[i].Exposure.Source == fmt.Sprintf("scanner %d", i):
			setters++
			winner = results[i]
		case err == nil:
			// A later report that revoked a key another marked.
			if results[i].RevokedReason != apikey.ReasonExposed {
				t.Errorf("report %d changed the key without exposing or revoking it", i)
			}
		case !errors.Is(err, store.ErrAlreadyExposed):
			t.Errorf("concurrent Expose = %v, want nil or ErrAlreadyExposed", err)
		}
	}
	if setters != 1 {
		t.Fatalf("%d concurrent reports set the exposure, want exactly 1", setters)
	}
	final := mustGet(t, s, rec.ID)
	if !sameExposure(final.Exposure, winner.Exposure) {
		t.Errorf("stored exposure %+v, want the first report's %+v", final.Exposure, winner.Exposure)
	}
	if !final.Revoked() || final.RevokedReason != apikey.ReasonExposed {
		t.Errorf("reports asking to revoke left the key revoked=%v reason %q", final.Revoked(), final.RevokedReason)
	}
}

func testCanary(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := newRecord(t, apikey.Live, base)
	rec.Canary = true
	rec = mustCreate(t, s, rec)
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	byHash, err := s.GetByHash(ctx, rec.Hash)
	if err != nil || !byHash.Canary {
		t.Errorf("GetByHash of a canary = canary %v, %v; want a canary", byHash.Canary, err)
	}
	plain := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if mustGet(t, s, plain.ID).Canary {
		t.Error("a plain key reads back as a canary")
	}
}

func testTrips(t *testing.T, s store.Store) {
	ctx := context.Background()
	canary := newRecord(t, apikey.Live, base)
	canary.Canary = true
	canary = mustCreate(t, s, canary)
	trip := func(at time.Time, addr string) apikey.Trip {
		return apikey.Trip{KeyID: canary.ID, Owner: owner, At: at, Addr: addr, UserAgent: "curl/8.5.0 ✓", Route: "GET /v1/links"}
	}
	if got, err := s.Trips(ctx, owner, canary.ID, 0); err != nil || len(got) != 0 {
		t.Fatalf("Trips of an untripped canary = %v, %v; want none", got, err)
	}
	if err := s.RecordTrip(ctx, apikey.Trip{KeyID: canary.ID, Owner: owner}); err == nil {
		t.Error("RecordTrip without a time succeeded")
	}
	if err := s.RecordTrip(ctx, apikey.Trip{KeyID: uuid.New(), Owner: owner, At: base}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordTrip of an unknown key = %v, want ErrNotFound", err)
	}
	if _, err := s.Trips(ctx, owner, uuid.New(), 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Trips of an unknown key = %v, want ErrNotFound", err)
	}

	t1, t2, t3 := trip(base.Add(time.Second+1234), "203.0.113.7:5501"), trip(base.Add(time.Minute), "[2001:db8::1]:443"), trip(base.Add(time.Minute), "198.51.100.2:1")
	for _, tr := range []apikey.Trip{t1, t2, t3} {
		if err := s.RecordTrip(ctx, tr); err != nil {
			t.Fatalf("RecordTrip: %v", err)
		}
	}
	got, err := s.Trips(ctx, owner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []apikey.Trip{t3, t2, t1} // newest first; of equal times, the last recorded first
	if len(got) != len(wantOrder) {
		t.Fatalf("Trips = %d trips, want %d", len(got), len(wantOrder))
	}
	for i, w := range wantOrder {
		w.At = store.Time(w.At)
		if got[i] != w {
			t.Errorf("trip %d = %+v, want %+v", i, got[i], w)
		}
	}
	if got, err := s.Trips(ctx, owner, canary.ID, 1); err != nil || len(got) != 1 || got[0].Addr != t3.Addr {
		t.Errorf("Trips with limit 1 = %v, %v; want the newest", got, err)
	}

	// At least the newest MaxTrips are kept, newest first.
	for i := range store.MaxTrips + 5 {
		if err := s.RecordTrip(ctx, trip(base.Add(time.Hour+time.Duration(i)*time.Second), fmt.Sprintf("192.0.2.%d:80", i%250))); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Trips(ctx, owner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxTrips {
		t.Fatalf("Trips after %d trips = %d, want the newest %d", store.MaxTrips+8, len(got), store.MaxTrips)
	}
	for i, tr := range got {
		if want := store.Time(base.Add(time.Hour + time.Duration(store.MaxTrips+4-i)*time.Second)); tr.At != want {
			t.Fatalf("trip %d at %v, want %v", i, tr.At, want)
		}
	}
	// Trips recorded out of time order: the newest by time are kept.
	late := trip(base, "192.0.2.250:80") // older than every trip above
	newest := trip(base.Add(2*time.Hour), "192.0.2.251:80")
	for _, tr := range []apikey.Trip{late, newest} {
		if err := s.RecordTrip(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Trips(ctx, owner, canary.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxTrips || got[0].Addr != newest.Addr {
		t.Fatalf("after an out-of-order trip: %d trips, newest %+v", len(got), got[0])
	}
	for i, tr := range got[1:] {
		if want := store.Time(base.Add(time.Hour + time.Duration(store.MaxTrips+4-i)*time.Second)); tr.At != want {
			t.Fatalf("after an out-of-order trip, trip %d at %v, want %v", i+1, tr.At, want)
		}
	}

	// Trips of one key are not another's.
	plain := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if got, err := s.Trips(ctx, owner, plain.ID, 0); err != nil || len(got) != 0 {
		t.Errorf("Trips of another key = %d, %v; want none", len(got), err)
	}
}
