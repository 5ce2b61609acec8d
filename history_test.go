package keyward_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// events collects what subscribers are told.
type events struct {
	mu  sync.Mutex
	got []audit.Event
}

func (e *events) Notify(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) take() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.got
	e.got = nil
	return got
}

func kinds(evs []audit.Event) []audit.Kind {
	var ks []audit.Kind
	for _, e := range evs {
		ks = append(ks, e.Kind)
	}
	return ks
}

func TestEveryChangeIsAnEventWithItsActor(t *testing.T) {
	sub := new(events)
	e := newEnv(t, keyward.WithSubscriber(sub))
	ada := audit.Actor{Type: audit.TypeOperator, ID: "ada@acme.example"}
	ctx := audit.WithActor(context.Background(), ada)

	sec, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "Backend", Mode: apikey.Live,
		Scopes: scope.NewSet(scope.LinksRead, scope.LinksWrite)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Name: "Backend v2", Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
		t.Fatal(err)
	}
	// An update that changes nothing is no event.
	if _, err := e.acct.Update(ctx, rec.ID, keyward.UpdateParams{Name: "Backend v2"}); err != nil {
		t.Fatal(err)
	}
	_, next, err := e.acct.Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.Revoke(ctx, next.ID, keyward.RevokeParams{Reason: "laptop stolen"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.RevokeAll(ctx, keyward.RevokeParams{Reason: "account closed"}); err != nil {
		t.Fatal(err)
	}
	github := audit.WithActor(context.Background(), audit.Actor{Type: audit.TypeReporter, ID: "github"})
	if rep, err := e.keys.ReportExposure(github, sec.Reveal(), keyward.Exposure{Source: "github"}); err != nil || !rep.First {
		t.Fatalf("ReportExposure = %+v, %v", rep, err)
	}

	got := sub.take()
	want := []audit.Kind{audit.Created, audit.Updated, audit.Created, audit.Rotated, audit.Revoked, audit.RevokedAll, audit.Exposed}
	if !slices.Equal(kinds(got), want) {
		t.Fatalf("events %v, want %v", kinds(got), want)
	}
	for i, ev := range got {
		wantActor := ada
		if ev.Kind == audit.Exposed {
			wantActor = audit.Actor{Type: audit.TypeReporter, ID: "github"}
		}
		if ev.Actor != wantActor || ev.Owner != "acct_test" || ev.At.IsZero() || ev.Prefix == "" {
			t.Errorf("event %d (%s): %+v", i, ev.Kind, ev)
		}
	}
	if got[1].KeyID != rec.ID || !slices.Contains(got[1].Changes, audit.Change{Field: audit.FieldName, From: "Backend", To: "Backend v2"}) {
		t.Errorf("the update's event: %+v", got[1])
	}
	if got[2].KeyID != next.ID || got[3].KeyID != rec.ID {
		t.Errorf("the rotation's events are of %s and %s, want the new key %s then the old %s", got[2].KeyID, got[3].KeyID, next.ID, rec.ID)
	}
	if got[4].Reason != "laptop stolen" || got[5].Reason != "account closed" || got[5].KeyID != rec.ID {
		t.Errorf("revocations: %+v, %+v", got[4], got[5])
	}

	// What subscribers heard is what the trail keeps.
	page, err := e.acct.Audit(context.Background(), keyward.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != len(got) {
		t.Fatalf("the trail has %d entries, the subscribers heard %d events", len(page.Entries), len(got))
	}
	for i, entry := range page.Entries {
		ev := got[len(got)-1-i]
		entry.Event.Changes, ev.Changes = nil, nil // compared above; Exposed's differ in nothing else
		if entry.Event.Kind != ev.Kind || entry.KeyID != ev.KeyID || entry.Actor != ev.Actor || entry.Reason != ev.Reason {
			t.Errorf("entry %d: %+v, event %+v", entry.Seq, entry.Event, ev)
		}
	}
	if !strings.Contains(e.logs.String(), "actor=operator:ada@acme.example") || !strings.Contains(e.logs.String(), `reason="laptop stolen"`) {
		t.Errorf("the default log does not carry the actor and reason:\n%s", e.logs)
	}
	if strings.Contains(e.logs.String(), sec.Reveal()[8:]) {
		t.Error("a log line carries the key")
	}
}

func TestAPanickingSubscriberStillGetsTheKeyCreated(t *testing.T) {
	e := newEnv(t, keyward.WithSubscriber(keyward.SubscriberFunc(func(context.Context, audit.Event) { panic("boom") })))
	sec, rec, err := e.acct.Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil || sec.Reveal() == "" {
		t.Fatalf("Create with a panicking subscriber = %v, %v", sec, err)
	}
	if got, err := e.keys.Verify(context.Background(), sec.Reveal()); err != nil || got.ID != rec.ID {
		t.Fatalf("the key does not verify: %v", err)
	}
	if !strings.Contains(e.logs.String(), "panicked") {
		t.Errorf("the panic is not logged:\n%s", e.logs)
	}
}

func TestAnInvalidActorChangesNothing(t *testing.T) {
	e := newEnv(t)
	_, rec := e.create(t, apikey.Live)
	bad := audit.WithActor(context.Background(), audit.Actor{Type: "Not A Type", ID: "x"})
	_, _, err := e.acct.Create(bad, keyward.CreateParams{Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
	var in *keyward.InputError
	if !errors.As(err, &in) || in.Field != "actor" || !errors.Is(err, audit.ErrInvalidActor) {
		t.Fatalf("Create with an invalid actor = %v, want an input error for the actor", err)
	}
	if _, err := e.acct.Revoke(bad, rec.ID, keyward.RevokeParams{}); !errors.As(err, &in) || in.Field != "actor" {
		t.Fatalf("Revoke with an invalid actor = %v", err)
	}
	page, err := e.acct.List(context.Background(), keyward.ListOptions{})
	if err != nil || len(page.Keys) != 1 || page.Keys[0].Revoked() {
		t.Fatalf("after refused changes the owner has %+v, %v", page.Keys, err)
	}
	trail, err := e.acct.Audit(context.Background(), keyward.AuditOptions{})
	if err != nil || len(trail.Entries) != 1 {
		t.Fatalf("the trail has %d entries, want the first create's only (%v)", len(trail.Entries), err)
	}
}

func TestAuditPagesAndChecksTheChain(t *testing.T) {
	e := newEnv(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.TypeService, ID: "billing"})
	var ids []uuid.UUID
	for i := range 5 {
		_, rec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
		e.clock.Advance(time.Duration(i+1) * time.Second)
	}
	if _, err := e.acct.Revoke(ctx, ids[2], keyward.RevokeParams{Reason: "unused"}); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	opts := keyward.AuditOptions{Limit: 2}
	for {
		page, err := e.acct.Audit(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range page.Entries {
			seqs = append(seqs, en.Seq)
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	if !slices.Equal(seqs, []int64{6, 5, 4, 3, 2, 1}) {
		t.Fatalf("paged trail: %v, want 6..1", seqs)
	}
	one, err := e.acct.Audit(context.Background(), keyward.AuditOptions{KeyID: ids[2]})
	if err != nil || len(one.Entries) != 2 || one.Entries[0].Kind != audit.Revoked || one.Entries[1].Kind != audit.Created {
		t.Fatalf("the key's trail: %+v, %v", one.Entries, err)
	}
	other, err := e.keys.Owner("acct_other").Audit(context.Background(), keyward.AuditOptions{KeyID: ids[2]})
	if err != nil || len(other.Entries) != 0 {
		t.Fatalf("another owner sees %d entries of the key (%v)", len(other.Entries), err)
	}
	var in *keyward.InputError
	if _, err := e.acct.Audit(context.Background(), keyward.AuditOptions{Cursor: "not-a-cursor"}); !errors.As(err, &in) || in.Field != "cursor" {
		t.Errorf("a bad cursor = %v", err)
	}
	if _, err := e.acct.Audit(context.Background(), keyward.AuditOptions{Limit: -1}); !errors.As(err, &in) || in.Field != "limit" {
		t.Errorf("a negative limit = %v", err)
	}
	head, err := e.acct.CheckAudit(context.Background())
	if err != nil || head.Seq != 6 {
		t.Fatalf("CheckAudit = %+v, %v", head, err)
	}
	last, _ := e.acct.Audit(context.Background(), keyward.AuditOptions{Limit: 1})
	if head.Hash != last.Entries[0].Hash {
		t.Error("the head's hash is not the newest entry's")
	}
}

// brokenChain returns a trail with one entry edited.
type brokenChain struct {
	store.Store
	edit int64
}

func (b brokenChain) AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error) {
	entries, err := b.Store.AuditChain(ctx, owner, after, limit)
	for i := range entries {
		if entries[i].Seq == b.edit {
			entries[i].Reason = "nothing to see here"
		}
	}
	return entries, err
}

func TestCheckAuditFindsAnEditedEntry(t *testing.T) {
	st := memory.New()
	keys, err := keyward.New(brokenChain{Store: st, edit: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	acct := keys.Owner("acct_test")
	ctx := context.Background()
	for range 3 {
		if _, _, err := acct.Create(ctx, keyward.CreateParams{Name: "k", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = acct.CheckAudit(ctx)
	var te *audit.TamperError
	if !errors.As(err, &te) || te.Seq != 2 || !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("CheckAudit of a trail with entry 2 edited = %v", err)
	}
}

func TestUsageCountsVerificationsAndRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	raw2, rec2 := e.create(t, apikey.Live)
	for range 5 {
		if _, err := e.keys.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.keys.Verify(ctx, raw2)
	if err != nil {
		t.Fatal(err)
	}
	e.keys.CountRefusal(ctx, got.ID, keyward.OutcomeInsufficientScope)
	e.keys.CountRefusal(ctx, got.ID, keyward.OutcomeLimited)
	e.keys.CountRefusal(ctx, got.ID, keyward.OutcomeOK) // not a refusal: ignored
	calls := e.spy.recordUses.Load()
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.spy.recordUses.Load() - calls; n != 1 {
		t.Errorf("one flush made %d writes, want 1", n)
	}
	usage, err := e.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID, rec2.ID}, From: e.clock.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if usage[0].KeyID != rec.ID || usage[0].Total != (store.Counts{Verified: 5}) {
		t.Errorf("first key: %+v", usage[0])
	}
	if usage[1].Total != (store.Counts{Verified: 1, Scope: 1, Limited: 1}) || usage[1].Total.Refused() != 2 {
		t.Errorf("second key: %+v", usage[1])
	}
	if usage[0].Buckets != nil {
		t.Error("totals only, yet buckets")
	}
}

func TestUsageIsCountedByTheHourAndReportedByTheDay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	verify := func(n int) {
		for range n {
			if _, err := e.keys.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := e.clock.Now() // 09:00
	verify(3)
	e.clock.Advance(59 * time.Minute) // 09:59
	verify(2)
	e.clock.Advance(2 * time.Minute) // 10:01: the 09:00 hour's counts roll over without a flush
	verify(4)
	e.clock.Advance(24 * time.Hour) // the next day
	verify(1)
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hours, err := e.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: start, To: start.Add(2 * time.Hour), Per: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, b := range hours[0].Buckets {
		got = append(got, b.Counts.Verified)
	}
	// To is rounded to the hour and moves one hour later: 09, 10, 11.
	if !slices.Equal(got, []int64{5, 4, 0}) || !hours[0].Buckets[0].Start.Equal(start) {
		t.Errorf("by the hour: %v from %v, want [5 4 0] from %v", got, hours[0].Buckets[0].Start, start)
	}
	days, err := e.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: start.Add(-24 * time.Hour), Per: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, b := range days[0].Buckets {
		got = append(got, b.Counts.Verified)
		if b.Start.Hour() != 0 || b.Start.Location() != time.UTC {
			t.Errorf("a day starts at %v", b.Start)
		}
	}
	if !slices.Equal(got, []int64{0, 9, 1}) || days[0].Total.Verified != 10 {
		t.Errorf("by the day: %v (total %d), want [0 9 1]", got, days[0].Total.Verified)
	}
}

func TestUsageSurvivesAFailedWriteExactlyOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	for range 3 {
		e.keys.Verify(ctx, raw)
	}
	got, _ := e.keys.Verify(ctx, raw)
	e.keys.CountRefusal(ctx, got.ID, keyward.OutcomeWrongMode)
	e.spy.set(func(s *spyStore) { s.failUses = errors.New("connection reset by peer") })
	if err := e.keys.Flush(ctx); err == nil {
		t.Fatal("the flush did not fail")
	}
	if st := e.keys.Stats(); st.PendingUses != 1 {
		t.Errorf("after a failed write, %d keys pending, want 1", st.PendingUses)
	}
	e.keys.Verify(ctx, raw)
	e.spy.set(func(s *spyStore) { s.failUses = nil })
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Flush(ctx); err != nil { // nothing left: writes nothing twice
		t.Fatal(err)
	}
	usage, err := e.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Counts{Verified: 5, Mode: 1}); usage[0].Total != want {
		t.Errorf("after a failed then a good write: %+v, want %+v", usage[0].Total, want)
	}
	if st := e.keys.Stats(); st.PendingUses != 0 || st.FlushLag != 0 || st.LastFlush.IsZero() {
		t.Errorf("stats after the write: %+v", st)
	}
}

func TestStatsShowTheFlushLag(t *testing.T) {
	e := newEnv(t)
	raw, _ := e.create(t, apikey.Live)
	if st := e.keys.Stats(); st.PendingUses != 0 || st.FlushLag != 0 || !st.LastFlush.IsZero() {
		t.Fatalf("fresh stats: %+v", st)
	}
	e.keys.Verify(context.Background(), raw)
	e.clock.Advance(3 * time.Second)
	if st := e.keys.Stats(); st.PendingUses != 1 || st.FlushLag != 3*time.Second {
		t.Errorf("3 s after an unwritten use: %+v", st)
	}
}

func TestUsageQueriesAreChecked(t *testing.T) {
	e := newEnv(t)
	_, rec := e.create(t, apikey.Live)
	now := e.clock.Now()
	for name, q := range map[string]keyward.UsageQuery{
		"keys": {From: now},
		"per":  {Keys: []uuid.UUID{rec.ID}, From: now, Per: time.Minute},
		"from": {Keys: []uuid.UUID{rec.ID}},
		"to":   {Keys: []uuid.UUID{rec.ID}, From: now, To: now.Add(-48 * time.Hour), Per: 24 * time.Hour},
	} {
		var in *keyward.InputError
		if _, err := e.acct.Usage(context.Background(), q); !errors.As(err, &in) || in.Field != name {
			t.Errorf("%s: %v, want an input error for %q", name, err, name)
		}
	}
	var in *keyward.InputError
	if _, err := e.acct.Usage(context.Background(), keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: now.AddDate(-2, 0, 0)}); !errors.As(err, &in) {
		t.Errorf("a span of two years = %v", err)
	}
}

// pruneSpy reports each PruneUsage call once the store has pruned, so a
// test that waits for the report reads the pruned store.
type pruneSpy struct {
	store.Store
	pruned chan time.Time
}

func (p pruneSpy) PruneUsage(ctx context.Context, before time.Time) error {
	err := p.Store.PruneUsage(ctx, before)
	select {
	case p.pruned <- before:
	default:
	}
	return err
}

func TestOldUsageIsPruned(t *testing.T) {
	clk := newClock()
	st := memory.New()
	old := clk.Now().Add(-31 * 24 * time.Hour)
	recent := clk.Now().Add(-29 * 24 * time.Hour)
	// The key and its counts are in the store before the lifecycle that
	// prunes starts: its first flush prunes at once.
	setup, err := keyward.New(st, keyward.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	sec, rec, err := setup.Owner("acct_test").Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil || sec.Reveal() == "" {
		t.Fatal(err)
	}
	if err := setup.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordUses(context.Background(), []store.Use{
		{ID: rec.ID, Hour: old, Counts: store.Counts{Verified: 7}},
		{ID: rec.ID, Hour: recent, Counts: store.Counts{Verified: 3}},
	}); err != nil {
		t.Fatal(err)
	}
	spy := pruneSpy{Store: st, pruned: make(chan time.Time, 1)}
	keys, err := keyward.New(spy, keyward.WithClock(clk.Now), keyward.WithFlushInterval(time.Millisecond),
		keyward.WithUsageRetention(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	select {
	case before := <-spy.pruned:
		if want := clk.Now().Add(-30 * 24 * time.Hour); !before.Equal(want) {
			t.Errorf("pruned before %v, want %v", before, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the background writer never pruned usage")
	}
	usage, err := keys.Owner("acct_test").Usage(context.Background(), keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: old.Add(-time.Hour)})
	if err != nil || usage[0].Total.Verified != 3 {
		t.Fatalf("after pruning: %+v, %v; want the recent 3 only", usage, err)
	}
	if _, err := keyward.New(st, keyward.WithUsageRetention(time.Hour)); err == nil {
		t.Error("a retention of an hour was accepted")
	}
}

// outcomes records what an observer sees.
type outcomes struct {
	mu       sync.Mutex
	verify   []keyward.Outcome
	refusals []keyward.Outcome
	timed    int // verifications observed with a duration
}

func (o *outcomes) ObserveVerify(_ context.Context, out keyward.Outcome, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		panic("negative duration")
	}
	if d > 0 {
		o.timed++
	}
	o.verify = append(o.verify, out)
}

func (o *outcomes) ObserveRefusal(_ context.Context, out keyward.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refusals = append(o.refusals, out)
}

func TestTheObserverSeesEveryOutcome(t *testing.T) {
	obs := new(outcomes)
	e := newEnv(t, keyward.WithObserver(obs))
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	revoked, rrec := e.create(t, apikey.Live)
	if _, err := e.acct.Revoke(ctx, rrec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	_, erec, err := e.acct.Create(ctx, keyward.CreateParams{Name: "soon", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead), ExpiresAt: e.clock.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	_ = erec
	unknown, _ := apikey.Generate(apikey.Live)
	e.keys.Verify(ctx, raw)
	e.keys.Verify(ctx, unknown.Reveal())
	e.keys.Verify(ctx, revoked)
	e.keys.Verify(ctx, "ck_live_short")
	e.spy.set(func(s *spyStore) { s.failHash = errors.New("connection refused") })
	e.keys.Verify(ctx, raw)
	e.spy.set(func(s *spyStore) { s.failHash = nil })
	e.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeNetworkRefused)
	want := []keyward.Outcome{keyward.OutcomeOK, keyward.OutcomeUnknown, keyward.OutcomeRevoked, keyward.OutcomeMalformed, keyward.OutcomeUnavailable}
	if !slices.Equal(obs.verify, want) || !slices.Equal(obs.refusals, []keyward.Outcome{keyward.OutcomeNetworkRefused}) {
		t.Errorf("observed %v and %v, want %v and [network_refused]", obs.verify, obs.refusals, want)
	}
	// One verification in 16 is timed, at random: of 1,600, some and far
	// from all (outside these bounds once in 10^9 runs).
	obs.timed = 0
	for range 1600 {
		e.keys.Verify(ctx, raw)
	}
	if obs.timed < 40 || obs.timed > 200 {
		t.Errorf("%d of 1600 verifications timed, want about 100", obs.timed)
	}
	for o, name := range map[keyward.Outcome]string{keyward.OutcomeOK: "ok", keyward.OutcomeInsufficientScope: "insufficient_scope", 0: "invalid", 99: "invalid"} {
		if o.String() != name {
			t.Errorf("%d.String() = %q, want %q", o, o.String(), name)
		}
	}
}

type nopObserver struct{}

func (nopObserver) ObserveVerify(context.Context, keyward.Outcome, time.Duration) {}
func (nopObserver) ObserveRefusal(context.Context, keyward.Outcome)               {}

func TestVerifyWithAnObserverDoesNotAllocate(t *testing.T) {
	keys, err := keyward.New(memory.New(), keyward.WithObserver(nopObserver{}))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_test").Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	ctx := context.Background()
	keys.Verify(ctx, raw) // the key's first use makes its cell
	if n := testing.AllocsPerRun(1000, func() { keys.Verify(ctx, raw) }); n != 0 {
		t.Errorf("Verify with an observer allocates %v times", n)
	}
}

func TestUsageSurvivesARestart(t *testing.T) {
	st := memory.New()
	ctx := context.Background()
	first, err := keyward.New(st)
	if err != nil {
		t.Fatal(err)
	}
	sec, rec, err := first.Owner("acct_test").Create(ctx, keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := first.Verify(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Close(); err != nil { // writes what the last interval counted
		t.Fatal(err)
	}
	second, err := keyward.New(st)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.Verify(ctx, sec.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	usage, err := second.Owner("acct_test").Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: second.Now().Add(-time.Hour)})
	if err != nil || usage[0].Total.Verified != 5 {
		t.Fatalf("after a restart: %+v, %v; want the 4 verifications before it and the 1 after", usage, err)
	}
}

func TestUsageCountsExactlyOnManyCores(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, rec := e.create(t, apikey.Live)
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	done := make(chan struct{})
	flushed := make(chan error, 1)
	go func() { // flushes race with the counting
		var err error
		for {
			select {
			case <-done:
				flushed <- err
				return
			default:
				if ferr := e.keys.Flush(ctx); ferr != nil {
					err = ferr
				}
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := e.keys.Verify(ctx, raw); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	usage, err := e.acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{rec.ID}, From: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := usage[0].Total.Verified; got != workers*each {
		t.Fatalf("%d verifications on %d goroutines counted %d", workers*each, workers, got)
	}
}
