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

// hour is the UTC hour base falls in, and hours(i) the i-th hour after
// it: the hours the suite records usage in.
var hour = store.Hour(base)

func hours(i int) time.Time { return hour.Add(time.Duration(i) * time.Hour) }

// usage calls Usage and fails on an error.
func usage(t testing.TB, s store.Store, who string, q store.UsageQuery) []store.HourUsage {
	t.Helper()
	got, err := s.Usage(context.Background(), who, q)
	if err != nil {
		t.Fatalf("Usage(%s, %d keys, %v to %v): %v", who, len(q.Keys), q.From, q.To, err)
	}
	return got
}

// sameUsage fails unless got is want, in order: the same keys, hours (UTC,
// on the hour) and counts.
func sameUsage(t testing.TB, what string, got, want []store.HourUsage) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		// Exact equality of hours: same instant, UTC location.
		same = got[i].KeyID == want[i].KeyID && got[i].Hour == want[i].Hour && got[i].Counts == want[i].Counts
	}
	if !same {
		t.Errorf("%s: usage differs:\n\tgot  %s\n\twant %s", what, usageText(got), usageText(want))
	}
}

func usageText(us []store.HourUsage) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			b.WriteString("\n\t     ")
		}
		fmt.Fprintf(&b, "%s %s %s %+v", u.KeyID, u.Hour.Format(time.RFC3339Nano), u.Hour.Location(), u.Counts)
	}
	if len(us) == 0 {
		return "none"
	}
	return b.String()
}

func testUsageCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s, newRecord(t, apikey.Live, base))
	b := mustCreate(t, s, newRecord(t, apikey.Test, base))
	quiet := mustCreate(t, s, newRecord(t, apikey.Test, base))
	revoked := mustCreate(t, s, newRecord(t, apikey.Test, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	t1 := base.Add(10 * time.Second)
	t2 := base.Add(20*time.Second + 999)

	err := s.RecordUses(ctx, []store.Use{
		// The same hour in another zone, and a later hour first: hours are
		// UTC, and Usage orders them.
		{ID: a.ID, Hour: hours(1).Add(59*time.Minute + 59*time.Second + 999999999), Counts: store.Counts{Verified: 5, Mode: 2, Network: 1}},
		{ID: a.ID, At: t1, Hour: base, Counts: store.Counts{Verified: 3, Scope: 1}},
		{ID: a.ID, At: t1, Hour: hour.In(base.Location()).Add(10 * time.Minute), Counts: store.Counts{Verified: 2, Limited: 1}},
		{ID: b.ID, At: t2, Hour: base, Counts: store.Counts{Verified: 7}},
		{ID: b.ID, At: t2, Hour: hours(2)}, // no counts: no hour
		{ID: quiet.ID, At: t1},             // a use without counts, nor hour
		{ID: uuid.New(), At: t2, Hour: base, Counts: store.Counts{Verified: 100}}, // unknown: ignored
		{ID: revoked.ID, At: t2, Hour: base, Counts: store.Counts{Verified: 1, Scope: 1}},
	})
	if err != nil {
		t.Fatalf("RecordUses: %v", err)
	}
	// A later call adds to the counts; a use without a time records its
	// counts and leaves the last-used time.
	err = s.RecordUses(ctx, []store.Use{
		{ID: a.ID, Hour: hour, Counts: store.Counts{Verified: 1, Network: 4}},
		{ID: quiet.ID, Hour: hours(2), Counts: store.Counts{Verified: 2, Mode: 2}},
	})
	if err != nil {
		t.Fatalf("RecordUses: %v", err)
	}
	for _, c := range []struct {
		rec  apikey.Record
		want time.Time
	}{{a, t1}, {b, t2}, {quiet, t1}, {revoked, t2}} {
		if got := mustGet(t, s, c.rec.ID).LastUsedAt; got != store.Time(c.want) {
			t.Errorf("LastUsedAt = %v, want %v", got, store.Time(c.want))
		}
	}

	q := store.UsageQuery{Keys: []uuid.UUID{revoked.ID, b.ID, a.ID, quiet.ID}, From: hour, To: hours(3)}
	sameUsage(t, "Usage", usage(t, s, owner, q), []store.HourUsage{
		{KeyID: revoked.ID, Hour: hour, Counts: store.Counts{Verified: 1, Scope: 1}},
		{KeyID: b.ID, Hour: hour, Counts: store.Counts{Verified: 7}},
		{KeyID: a.ID, Hour: hour, Counts: store.Counts{Verified: 6, Scope: 1, Limited: 1, Network: 4}},
		{KeyID: a.ID, Hour: hours(1), Counts: store.Counts{Verified: 5, Mode: 2, Network: 1}},
		{KeyID: quiet.ID, Hour: hours(2), Counts: store.Counts{Verified: 2, Mode: 2}},
	})
	q.Keys = []uuid.UUID{quiet.ID, a.ID}
	sameUsage(t, "Usage in another key order", usage(t, s, owner, q), []store.HourUsage{
		{KeyID: quiet.ID, Hour: hours(2), Counts: store.Counts{Verified: 2, Mode: 2}},
		{KeyID: a.ID, Hour: hour, Counts: store.Counts{Verified: 6, Scope: 1, Limited: 1, Network: 4}},
		{KeyID: a.ID, Hour: hours(1), Counts: store.Counts{Verified: 5, Mode: 2, Network: 1}},
	})

	// Nothing else of the record changed, and no audit entry was written.
	want := a
	want.LastUsedAt = t1
	sameRecord(t, mustGet(t, s, a.ID), want)
	if entries := chain(t, s, owner); len(entries) != 5 {
		t.Errorf("%s's chain holds %d entries after 4 creates and a revocation, want 5: %s", owner, len(entries), kinds(entries))
	}
}

func testUsageRange(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	var all []store.HourUsage
	for i := range 5 {
		// The last microsecond of each hour, which belongs to it.
		c := store.Counts{Verified: int64(i + 1)}
		if err := s.RecordUses(ctx, []store.Use{{ID: rec.ID, Hour: hours(i + 1).Add(-time.Microsecond), Counts: c}}); err != nil {
			t.Fatal(err)
		}
		all = append(all, store.HourUsage{KeyID: rec.ID, Hour: hours(i), Counts: c})
	}
	zone := base.Location()
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []store.HourUsage // of all
	}{
		{"every hour", hours(0), hours(5), all},
		{"a wider range", hours(-24), hours(48), all},
		{"From inside an hour includes it", hours(1).Add(59 * time.Minute), hours(3), all[1:3]},
		{"To on the hour excludes that hour", hours(1), hours(3), all[1:3]},
		{"To inside an hour includes it", hours(1), hours(3).Add(time.Microsecond), all[1:4]},
		{"in another zone", hours(1).In(zone), hours(3).Add(time.Minute).In(zone), all[1:4]},
		{"one hour", hours(2).Add(30 * time.Minute), hours(2).Add(31 * time.Minute), all[2:3]},
		{"no hour", hours(2), hours(2), nil},
		{"before every hour", hours(-3), hours(0), nil},
		{"after every hour", hours(5), hours(9), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := usage(t, s, owner, store.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: tc.from, To: tc.to})
			sameUsage(t, "Usage", got, tc.want)
		})
	}

	// To = now includes the current hour (of another key, so that the
	// hours above, whatever the date, do not count).
	live := mustCreate(t, s, newRecord(t, apikey.Live, base))
	now := time.Now()
	if store.Time(now) == store.Hour(now) {
		now = now.Add(time.Microsecond) // so that the current hour starts before now
	}
	current := store.Counts{Verified: 9, Limited: 9}
	if err := s.RecordUses(ctx, []store.Use{{ID: live.ID, At: now, Hour: now, Counts: current}}); err != nil {
		t.Fatal(err)
	}
	got := usage(t, s, owner, store.UsageQuery{Keys: []uuid.UUID{live.ID}, From: now.Add(-time.Hour), To: now})
	sameUsage(t, "Usage to now", got, []store.HourUsage{{KeyID: live.ID, Hour: store.Hour(now), Counts: current}})
}

func testUsageOwners(t *testing.T, s store.Store) {
	ctx := context.Background()
	mine := mustCreate(t, s, newRecord(t, apikey.Live, base))
	theirs := mustCreate(t, s, ownedBy(other, newRecord(t, apikey.Live, base)))
	// RecordUses names no owner: the uses of every owner's keys count.
	if err := s.RecordUses(ctx, []store.Use{
		{ID: mine.ID, Hour: hour, Counts: store.Counts{Verified: 1}},
		{ID: theirs.ID, Hour: hour, Counts: store.Counts{Verified: 2}},
	}); err != nil {
		t.Fatal(err)
	}
	q := func(keys ...uuid.UUID) store.UsageQuery {
		return store.UsageQuery{Keys: keys, From: hour, To: hours(1)}
	}
	sameUsage(t, "Usage of the owner's, another owner's and an unknown key", usage(t, s, owner, q(theirs.ID, uuid.New(), mine.ID)),
		[]store.HourUsage{{KeyID: mine.ID, Hour: hour, Counts: store.Counts{Verified: 1}}})
	sameUsage(t, "Usage of another owner's key", usage(t, s, other, q(mine.ID)), nil)
	sameUsage(t, "Usage of the other owner's key", usage(t, s, other, q(theirs.ID)),
		[]store.HourUsage{{KeyID: theirs.ID, Hour: hour, Counts: store.Counts{Verified: 2}}})
	sameUsage(t, "Usage of an owner without keys", usage(t, s, "acct_nobody", q(mine.ID, theirs.ID)), nil)
	sameUsage(t, "Usage of no keys", usage(t, s, owner, q()), nil)
}

func testUsageBadQuery(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if err := s.RecordUses(context.Background(), []store.Use{{ID: rec.ID, Hour: hour, Counts: store.Counts{Verified: 1}}}); err != nil {
		t.Fatal(err)
	}
	many := make([]uuid.UUID, store.MaxUsageKeys+1)
	for i := range many {
		many[i] = uuid.New()
	}
	many[0] = rec.ID
	for _, tc := range []struct {
		name string
		q    store.UsageQuery
	}{
		{"too many keys", store.UsageQuery{Keys: many, From: hour, To: hours(1)}},
		{"no From", store.UsageQuery{Keys: many[:1], To: hours(1)}},
		{"no To", store.UsageQuery{Keys: many[:1], From: hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := s.Usage(context.Background(), owner, tc.q); err == nil {
				t.Errorf("Usage = %d hours, nil; want an error", len(got))
			}
		})
	}
	got := usage(t, s, owner, store.UsageQuery{Keys: many[:store.MaxUsageKeys], From: hour, To: hours(1)})
	sameUsage(t, "Usage of MaxUsageKeys keys", got, []store.HourUsage{{KeyID: rec.ID, Hour: hour, Counts: store.Counts{Verified: 1}}})
}

func testPruneUsage(t *testing.T, s store.Store) {
	ctx := context.Background()
	mine := mustCreate(t, s, newRecord(t, apikey.Live, base))
	theirs := mustCreate(t, s, ownedBy(other, newRecord(t, apikey.Live, base)))
	c := store.Counts{Verified: 3, Scope: 1}
	var uses []store.Use
	for i := range 3 {
		uses = append(uses, store.Use{ID: mine.ID, At: hours(i), Hour: hours(i), Counts: c})
		if i < 2 {
			uses = append(uses, store.Use{ID: theirs.ID, Hour: hours(i), Counts: c})
		}
	}
	if err := s.RecordUses(ctx, uses); err != nil {
		t.Fatal(err)
	}
	check := func(what string, mineFrom, theirsFrom int) {
		t.Helper()
		var wantMine, wantTheirs []store.HourUsage
		for i := mineFrom; i < 3; i++ {
			wantMine = append(wantMine, store.HourUsage{KeyID: mine.ID, Hour: hours(i), Counts: c})
		}
		for i := theirsFrom; i < 2; i++ {
			wantTheirs = append(wantTheirs, store.HourUsage{KeyID: theirs.ID, Hour: hours(i), Counts: c})
		}
		q := store.UsageQuery{From: hours(-1), To: hours(4)}
		q.Keys = []uuid.UUID{mine.ID}
		sameUsage(t, what+": "+owner, usage(t, s, owner, q), wantMine)
		q.Keys = []uuid.UUID{theirs.ID}
		sameUsage(t, what+": "+other, usage(t, s, other, q), wantTheirs)
	}
	check("before pruning", 0, 0)
	if err := s.PruneUsage(ctx, hour); err != nil {
		t.Fatalf("PruneUsage: %v", err)
	}
	check("after pruning before the first hour", 0, 0)
	if err := s.PruneUsage(ctx, hours(1)); err != nil {
		t.Fatalf("PruneUsage: %v", err)
	}
	check("after pruning before the second hour", 1, 1)
	if err := s.PruneUsage(ctx, hours(2).In(base.Location())); err != nil {
		t.Fatalf("PruneUsage: %v", err)
	}
	check("after pruning before the third hour", 2, 2)
	// Pruning counts changes no record.
	want := mine
	want.LastUsedAt = hours(2)
	sameRecord(t, mustGet(t, s, mine.ID), want)
	sameRecord(t, mustGetOf(t, s, other, theirs.ID), theirs)
	// Counts of a pruned hour may be recorded again.
	if err := s.RecordUses(ctx, []store.Use{{ID: mine.ID, Hour: hour, Counts: c}}); err != nil {
		t.Fatal(err)
	}
	sameUsage(t, "a pruned hour recorded again", usage(t, s, owner, store.UsageQuery{Keys: []uuid.UUID{mine.ID}, From: hour, To: hours(1)}),
		[]store.HourUsage{{KeyID: mine.ID, Hour: hour, Counts: c}})
}

func testUsageConcurrent(t *testing.T, s store.Store) {
	// Concurrent calls that count uses of one key in the same hours: the
	// counts add up to every use recorded.
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				uses := []store.Use{{ID: rec.ID, At: base.Add(time.Duration(i) * time.Second), Hour: hours(i % 2), Counts: store.Counts{Verified: 1, Scope: int64(w % 2)}}}
				if i%5 == 0 { // one call, two counts of one hour
					uses = append(uses, store.Use{ID: rec.ID, Hour: hours(i % 2), Counts: store.Counts{Verified: 1}})
				}
				if err := s.RecordUses(context.Background(), uses); err != nil {
					t.Errorf("RecordUses: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Each hour gets each's half of the uses of each worker, plus the
	// extra uses of i%5 == 0 (i = 0, 10 in hour 0; 5, 15 in hour 1).
	per := int64(workers * (each/2 + 2))
	scoped := int64(workers / 2 * each / 2)
	want := []store.HourUsage{
		{KeyID: rec.ID, Hour: hours(0), Counts: store.Counts{Verified: per, Scope: scoped}},
		{KeyID: rec.ID, Hour: hours(1), Counts: store.Counts{Verified: per, Scope: scoped}},
	}
	sameUsage(t, "Usage after concurrent uses", usage(t, s, owner, store.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: hour, To: hours(2)}), want)
	if got := mustGet(t, s, rec.ID).LastUsedAt; got != store.Time(base.Add((each-1)*time.Second)) {
		t.Errorf("LastUsedAt = %v after concurrent uses, want the latest %v", got, store.Time(base.Add((each-1)*time.Second)))
	}
}

func testUsageContextDone(t *testing.T, s store.Store) {
	rec := mustCreate(t, s, newRecord(t, apikey.Live, base))
	one := store.Counts{Verified: 1}
	if err := s.RecordUses(context.Background(), []store.Use{{ID: rec.ID, Hour: hour, Counts: one}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := store.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: hour, To: hours(1)}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"RecordUses", s.RecordUses(ctx, []store.Use{{ID: rec.ID, Hour: hour, Counts: one}})},
		{"Usage", second(s.Usage(ctx, owner, q))},
		{"PruneUsage", s.PruneUsage(ctx, hours(1))},
	} {
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, c.err)
		}
	}
	// A cancelled call changes nothing.
	sameUsage(t, "Usage after cancelled calls", usage(t, s, owner, q), []store.HourUsage{{KeyID: rec.ID, Hour: hour, Counts: one}})
}
