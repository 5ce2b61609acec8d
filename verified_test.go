package keyward_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// TestVerifyFrom: a Verified reads as the record Verify returns, with the
// verification's time as its last use, and its Record is a copy.
func TestVerifyFrom(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	keys, err := keyward.New(memory.New(), keyward.WithClock(func() time.Time { return now }), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	ctx := context.Background()
	sec, created, err := keys.Owner("acct_1").Create(ctx, keyward.CreateParams{
		Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead, scope.SessionsWrite),
		Metadata: map[string]string{"team": "payments"},
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	v, err := keys.VerifyFrom(ctx, sec.Reveal(), keyward.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if v.IsZero() || v.ID() != created.ID || v.Owner() != "acct_1" || v.Mode() != apikey.Live ||
		!v.Scopes().Equal(created.Scopes) || v.Metadata().Len() != 1 || v.Policy() != nil {
		t.Errorf("VerifyFrom = %v %q %v %v, want the created key's", v.ID(), v.Owner(), v.Mode(), v.Scopes())
	}
	rec := v.Record()
	if !rec.LastUsedAt.Equal(now) {
		t.Errorf("Record().LastUsedAt = %v, want the verification's time %v", rec.LastUsedAt, now)
	}
	want, err := keys.Verify(ctx, sec.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != want.ID || rec.Name != want.Name || !rec.LastUsedAt.Equal(want.LastUsedAt) || !rec.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("Record() = %+v, Verify = %+v", rec, want)
	}
	rec.Name = "changed by a handler"
	if again := v.Record(); again.Name != "Backend" {
		t.Errorf("changing Record()'s copy changed the view: name %q", again.Name)
	}
	if got, _ := keys.Verify(ctx, sec.Reveal()); got.Name != "Backend" {
		t.Errorf("changing Record()'s copy changed the stored record: name %q", got.Name)
	}

	// A key refused is the zero Verified.
	bad, err := keys.VerifyFrom(ctx, "ck_live_00000000000000000000000000000000", keyward.Caller{})
	if err == nil || !bad.IsZero() {
		t.Errorf("VerifyFrom(unknown) = %v, %v; want an error and the zero Verified", bad.ID(), err)
	}
	var zero keyward.Verified
	if zero.ID() != uuid.Nil || zero.Owner() != "" || zero.Mode() != 0 || !zero.Scopes().IsEmpty() ||
		zero.Metadata().Len() != 0 || zero.Policy() != nil || zero.Record().ID != uuid.Nil {
		t.Error("the zero Verified is not empty")
	}
}

// usedKeys is a lifecycle on the memory store holding n keys of the owner
// acct_1, on a clock that moves only by interval, writing uses only when
// flushed.
type usedKeys struct {
	keys *keyward.Keys
	acct keyward.Owner
	raws []string
	now  time.Time
}

func newUsedKeys(t *testing.T, n int) *usedKeys {
	t.Helper()
	u := &usedKeys{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	keys, err := keyward.New(memory.New(), keyward.WithClock(func() time.Time { return u.now }), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	u.keys, u.acct = keys, keys.Owner("acct_1")
	for range n {
		sec, _, err := u.acct.Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
		if err != nil {
			t.Fatal(err)
		}
		u.raws = append(u.raws, sec.Reveal())
	}
	return u
}

// interval moves the clock and verifies every key once: a new last use
// for each.
func (u *usedKeys) interval(t *testing.T) {
	t.Helper()
	u.now = u.now.Add(2 * time.Millisecond)
	for _, raw := range u.raws {
		if _, err := u.keys.VerifyFrom(context.Background(), raw, keyward.Caller{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (u *usedKeys) flush(t *testing.T) {
	t.Helper()
	if err := u.keys.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyAndFlushDoNotAllocate: on the memory store, verifying many
// keys and writing their uses allocates nothing once each key has its
// cell and the flush its buffers: writing a use copies no record.
func TestVerifyAndFlushDoNotAllocate(t *testing.T) {
	u := newUsedKeys(t, 200)
	round := func() { u.interval(t); u.flush(t) }
	round() // the cells, the buffers, each key's hour
	if n := testing.AllocsPerRun(20, round); n != 0 {
		t.Errorf("verifying %d keys and writing their uses allocates %v times, want 0", len(u.raws), n)
	}
	// And the uses were written: the last use and the counts.
	ctx := context.Background()
	page, err := u.acct.List(ctx, keyward.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page.Keys {
		if !rec.LastUsedAt.Equal(u.now) {
			t.Fatalf("key %s last used at %v, want %v", rec.ID, rec.LastUsedAt, u.now)
		}
	}
	usage, err := u.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{page.Keys[0].ID}, From: u.now.Add(-time.Hour), To: u.now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if usage[0].Total.Verified != 22 { // 1 + 20 rounds + AllocsPerRun's warm-up
		t.Errorf("a key's verifications counted %d, want 22", usage[0].Total.Verified)
	}
}

// TestTheNextIntervalQueuesWithoutAllocating: after a flush, the next
// interval's requests queue as many keys as the last without allocating.
// The queue of keys used has two buffers, one filled by requests while
// the flush writes the other; requests get the larger once the write is
// done, so that a new server does not grow the second on its requests
// (TestVerifyAndFlushDoNotAllocate, which measures from the third
// interval on, cannot tell).
func TestTheNextIntervalQueuesWithoutAllocating(t *testing.T) {
	u := newUsedKeys(t, 500)
	u.interval(t) // each key's cell, and the first buffer
	u.flush(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // as testing.AllocsPerRun does
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	u.interval(t)
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n != 0 {
		t.Errorf("the interval after the first flush allocated %d times for %d keys, want 0", n, len(u.raws))
	}
	u.flush(t)
	page, err := u.acct.List(context.Background(), keyward.ListOptions{Limit: 1})
	if err != nil || len(page.Keys) != 1 || !page.Keys[0].LastUsedAt.Equal(u.now) {
		t.Fatalf("after the second flush: %+v, %v; want a key last used at %v", page.Keys, err, u.now)
	}
}
