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
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
)

// operator is the actor of the suite's audited changes, unless a test
// names another.
var operator = audit.Actor{Type: audit.TypeOperator, ID: "ops@example.com — ünïcode"}

// as returns a context that names a as the actor of the changes made with
// it.
func as(a audit.Actor) context.Context { return audit.WithActor(context.Background(), a) }

// clockSkew is how far the store's clock may be from the test's, for an
// entry whose time is the store's current time.
const clockSkew = time.Minute

// createWith creates rec with ctx and returns it in store precision.
func createWith(t testing.TB, ctx context.Context, s store.Store, rec apikey.Record) apikey.Record {
	t.Helper()
	got, err := s.Create(ctx, rec, store.Idempotency{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	sameRecord(t, got, rec)
	return store.Normalize(rec)
}

// chain returns the owner's whole audit chain, oldest first, walked with
// AuditChain.
func chain(t testing.TB, s store.Store, who string) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	var after int64
	for {
		got, err := s.AuditChain(context.Background(), who, after, store.MaxLimit)
		if err != nil {
			t.Fatalf("AuditChain(%s, %d): %v", who, after, err)
		}
		if len(got) == 0 {
			return all
		}
		if got[0].Seq <= after {
			t.Fatalf("AuditChain(%s, after %d) returned entry %d", who, after, got[0].Seq)
		}
		all = append(all, got...)
		after = got[len(got)-1].Seq
	}
}

// checkChain fails unless entries are the whole, intact chain of who: Seq
// from 1 without gaps, each entry linked to the one before and sealed by
// [audit.Seal], and [audit.Check] accepts it.
func checkChain(t testing.TB, who string, entries []audit.Entry) {
	t.Helper()
	var prev [32]byte
	for i, e := range entries {
		switch {
		case e.Seq != int64(i+1):
			t.Errorf("entry %d of %s's chain has Seq %d, want %d", i, who, e.Seq, i+1)
			return
		case e.Owner != who:
			t.Errorf("entry %d of %s's chain belongs to %q", e.Seq, who, e.Owner)
		case e.Prev != prev:
			t.Errorf("entry %d of %s's chain: Prev is not the hash of the entry before", e.Seq, who)
		case e.Hash != audit.Seal(e.Prev, e.Seq, e.Body()):
			t.Errorf("entry %d of %s's chain: Hash is not audit.Seal of its Prev, Seq and body", e.Seq, who)
		}
		prev = e.Hash
	}
	if err := audit.Check(who, entries); err != nil {
		t.Errorf("audit.Check of %s's chain: %v", who, err)
	}
}

// sameEvent fails unless got is the event want, field by field; the
// builders of package audit give want in store precision.
func sameEvent(t testing.TB, what string, got, want audit.Event) {
	t.Helper()
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("Kind", got.Kind == want.Kind, got.Kind, want.Kind)
	check("Owner", got.Owner == want.Owner, got.Owner, want.Owner)
	check("KeyID", got.KeyID == want.KeyID, got.KeyID, want.KeyID)
	check("Prefix", got.Prefix == want.Prefix, got.Prefix, want.Prefix)
	// Exact equality: same instant, UTC location, no monotonic reading.
	check("At", got.At == want.At, got.At.Format(time.RFC3339Nano)+" "+got.At.Location().String(),
		want.At.Format(time.RFC3339Nano)+" "+want.At.Location().String())
	check("Actor", got.Actor == want.Actor, got.Actor, want.Actor)
	check("Reason", got.Reason == want.Reason, got.Reason, want.Reason)
	check("Changes", slices.Equal(got.Changes, want.Changes), got.Changes, want.Changes)
	check("Trip", got.Trip == nil, got.Trip, nil)
	if len(diffs) > 0 {
		t.Errorf("%s: audit event differs:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

// sameEntry fails unless got is want: the same event and Seq, and, if
// linked, the same Prev and Hash.
func sameEntry(t testing.TB, what string, got, want audit.Entry, linked bool) {
	t.Helper()
	if got.Seq != want.Seq {
		t.Errorf("%s: entry Seq %d, want %d", what, got.Seq, want.Seq)
		return
	}
	sameEvent(t, fmt.Sprintf("%s: entry %d", what, want.Seq), got.Event, want.Event)
	if linked && (got.Prev != want.Prev || got.Hash != want.Hash) {
		t.Errorf("%s: entry %d has another Prev or Hash than the chain's", what, want.Seq)
	}
}

// seqs returns the sequence numbers of entries.
func seqs(entries []audit.Entry) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.Seq
	}
	return out
}

// kinds describes entries for a failure message.
func kinds(entries []audit.Entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s %s", e.Seq, e.Kind, e.KeyID)
	}
	return "[" + b.String() + "]"
}

// newestFirst returns a reversed copy of entries.
func newestFirst(entries []audit.Entry) []audit.Entry {
	out := slices.Clone(entries)
	slices.Reverse(out)
	return out
}

// A trail follows one owner's audit chain from where it ends: each call
// of next returns the entries appended since the one before.
type trail struct {
	s    store.Store
	who  string
	seq  int64    // the last entry seen
	hash [32]byte // its hash
}

// follow returns a trail of who's chain, positioned at its end.
func follow(t testing.TB, s store.Store, who string) *trail {
	t.Helper()
	tr := &trail{s: s, who: who}
	if all := chain(t, s, who); len(all) > 0 {
		tr.seq, tr.hash = all[len(all)-1].Seq, all[len(all)-1].Hash
	}
	return tr
}

// next returns the entries appended since the last call, and fails unless
// they continue the chain.
func (tr *trail) next(t testing.TB) []audit.Entry {
	t.Helper()
	got, err := tr.s.AuditChain(context.Background(), tr.who, tr.seq, store.MaxLimit)
	if err != nil {
		t.Fatalf("AuditChain(%s, %d): %v", tr.who, tr.seq, err)
	}
	for _, e := range got {
		switch {
		case e.Seq != tr.seq+1:
			t.Fatalf("entry %d follows entry %d in %s's chain: want %d", e.Seq, tr.seq, tr.who, tr.seq+1)
		case e.Owner != tr.who:
			t.Fatalf("entry %d of %s's chain belongs to %q", e.Seq, tr.who, e.Owner)
		case e.Prev != tr.hash:
			t.Fatalf("entry %d of %s's chain does not link to entry %d", e.Seq, tr.who, tr.seq)
		case e.Hash != audit.Seal(e.Prev, e.Seq, e.Body()):
			t.Fatalf("entry %d of %s's chain: Hash is not audit.Seal of its Prev, Seq and body", e.Seq, tr.who)
		}
		tr.seq, tr.hash = e.Seq, e.Hash
	}
	return got
}

// expect fails unless the entries appended since the last call have the
// events want, in order: none if want is empty.
func (tr *trail) expect(t testing.TB, what string, want ...audit.Event) {
	t.Helper()
	got := tr.next(t)
	if len(got) != len(want) {
		t.Errorf("%s wrote %d audit entries of %s, want %d: %s", what, len(got), tr.who, len(want), kinds(got))
		return
	}
	for i := range want {
		sameEvent(t, what, got[i].Event, want[i])
	}
}

func testAuditEvents(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		name  string
		who   string
		ctx   context.Context
		actor audit.Actor
	}{
		{"actor", owner, as(operator), operator},
		{"no actor", other, context.Background(), audit.Actor{}},
		{"zero actor", "acct_zero_actor", as(audit.Actor{}), audit.Actor{}},
	} {
		t.Run(tc.name, func(t *testing.T) { auditEvents(t, s, tc.ctx, tc.who, tc.actor) })
	}
}

// auditEvents makes every kind of change of who's keys with ctx and checks
// that each writes exactly its entries, with the events package audit
// builds for it and actor.
func auditEvents(t *testing.T, s store.Store, ctx context.Context, who string, actor audit.Actor) {
	tr := follow(t, s, who)

	// Create: the fields the key was created with.
	rec := ownedBy(who, newRecord(t, apikey.Live, base))
	rec.Metadata = apikey.MustMetadata(map[string]string{"integration": "erp"})
	rec.ExpiresAt = base.Add(30*24*time.Hour + 123456789)
	rec.Policy = fullPolicy()
	rec = createWith(t, ctx, s, rec)
	tr.expect(t, "Create", audit.CreatedEvent(rec, actor))

	canary := ownedBy(who, newRecord(t, apikey.Test, base.Add(time.Second)))
	canary.Canary = true
	if _, err := s.Create(ctx, canary, idem("audit", "canary")); err != nil {
		t.Fatal(err)
	}
	canary = store.Normalize(canary)
	tr.expect(t, "Create with an idempotency key", audit.CreatedEvent(canary, actor))

	// Update: the fields that changed, at Update.At.
	md := apikey.MustMetadata(map[string]string{"integration": "crm"})
	u := store.Update{
		Name:      "renamed — ünïcode",
		Scopes:    scope.NewSet(scope.LinksRead),
		Metadata:  &md,
		ExpiresAt: base.Add(7*24*time.Hour + 987654321),
		Policy:    &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}},
		At:        base.Add(2*time.Hour + 555555555),
	}
	got, err := s.Update(ctx, who, rec.ID, u)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	updated := rec
	updated.Name, updated.Scopes, updated.Metadata, updated.ExpiresAt, updated.Policy = u.Name, u.Scopes, md, u.ExpiresAt, u.Policy
	updated = store.Normalize(updated)
	sameRecord(t, got, updated)
	want, ok := audit.UpdatedEvent(rec, updated, u.At, actor)
	if !ok || want.At != store.Time(u.At) {
		t.Fatalf("audit.UpdatedEvent = %v at %v; the suite expects a change at Update.At", ok, want.At)
	}
	tr.expect(t, "Update", want)

	// Update without At: the store's current time.
	start := time.Now()
	if _, err := s.Update(ctx, who, rec.ID, store.Update{Name: "renamed again", Policy: &apikey.Policy{}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	end := time.Now()
	before := updated
	updated.Name, updated.Policy = "renamed again", nil
	entries := tr.next(t)
	if len(entries) != 1 {
		t.Fatalf("Update wrote %d audit entries, want 1: %s", len(entries), kinds(entries))
	}
	if at := entries[0].At; at.Before(store.Time(start).Add(-clockSkew)) || at.After(end.Add(clockSkew)) {
		t.Errorf("Update without At wrote an entry at %v, want the store's current time, about %v", at, start)
	}
	want, _ = audit.UpdatedEvent(before, updated, entries[0].At, actor)
	sameEvent(t, "Update without At", entries[0].Event, want)

	// Rotate: the replacement's creation, then the old key's rotation.
	next := replacementOf(t, updated)
	overlapEnd := next.CreatedAt.Add(time.Hour)
	gotOld, gotNext, err := s.Rotate(ctx, who, rec.ID, next, overlapEnd)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	rotated := updated
	rotated.ReplacedBy, rotated.ExpiresAt = next.ID, store.Time(overlapEnd)
	next = store.Normalize(next)
	next.ExpiresAt = updated.ExpiresAt
	sameRecord(t, gotOld, rotated)
	sameRecord(t, gotNext, next)
	tr.expect(t, "Rotate", audit.CreatedEvent(next, actor), audit.RotatedEvent(updated, rotated, next.CreatedAt, actor))

	// Revoke: the revocation time and reason.
	r := store.Revocation{At: base.Add(3*time.Hour + 1234567), Reason: "rotated out"}
	if _, err := s.Revoke(ctx, who, rec.ID, r); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	revoked := rotated
	revoked.RevokedAt, revoked.RevokedReason = store.Time(r.At), r.Reason
	sameRecord(t, mustGetOf(t, s, who, rec.ID), revoked)
	tr.expect(t, "Revoke", audit.RevokedEvent(audit.Revoked, revoked, actor))

	// Expose: the exposure, then the revocation a later report asks for.
	e := exposure(base.Add(4*time.Hour+7654321), "github")
	if _, err := s.Expose(ctx, who, next.ID, e, false); err != nil {
		t.Fatalf("Expose: %v", err)
	}
	marked := next
	e.At = store.Time(e.At)
	marked.Exposure = &e
	tr.expect(t, "Expose without revoking", audit.ExposedEvent(next, marked, e.At, actor))
	e2 := exposure(base.Add(5*time.Hour), "pastebin")
	if _, err := s.Expose(ctx, who, next.ID, e2, true); err != nil {
		t.Fatalf("Expose: %v", err)
	}
	exposed := marked
	exposed.RevokedAt, exposed.RevokedReason = store.Time(e2.At), apikey.ReasonExposed
	sameRecord(t, mustGetOf(t, s, who, next.ID), exposed)
	tr.expect(t, "Expose of a marked key, revoking", audit.ExposedEvent(marked, exposed, e2.At, actor))

	fresh := createWith(t, ctx, s, ownedBy(who, newRecord(t, apikey.Live, base.Add(2*time.Second))))
	tr.expect(t, "Create", audit.CreatedEvent(fresh, actor))
	e3 := apikey.Exposure{At: base.Add(6 * time.Hour), Source: "support"}
	if _, err := s.Expose(ctx, who, fresh.ID, e3, true); err != nil {
		t.Fatalf("Expose: %v", err)
	}
	freshExposed := fresh
	e3.At = store.Time(e3.At)
	freshExposed.Exposure, freshExposed.RevokedAt, freshExposed.RevokedReason = &e3, e3.At, apikey.ReasonExposed
	tr.expect(t, "Expose, revoking", audit.ExposedEvent(fresh, freshExposed, e3.At, actor))

	// An exposure of a key revoked before: the exposure only.
	if _, err := s.Expose(ctx, who, rec.ID, e3, true); err != nil {
		t.Fatalf("Expose of a revoked key: %v", err)
	}
	revokedExposed := revoked
	revokedExposed.Exposure = &e3
	tr.expect(t, "Expose of a revoked key", audit.ExposedEvent(revoked, revokedExposed, e3.At, actor))

	// RevokeAll: one entry per key it revokes, and none for the others
	// (revoked, expired, another owner's).
	a := createWith(t, ctx, s, ownedBy(who, newRecord(t, apikey.Live, base.Add(3*time.Second))))
	b := createWith(t, ctx, s, ownedBy(who, newRecord(t, apikey.Test, base.Add(3*time.Second))))
	expired := ownedBy(who, newRecord(t, apikey.Live, base.Add(4*time.Second)))
	expired.ExpiresAt = base.Add(time.Hour)
	expired = createWith(t, ctx, s, expired)
	tr.expect(t, "three Creates", audit.CreatedEvent(a, actor), audit.CreatedEvent(b, actor), audit.CreatedEvent(expired, actor))
	bystander := follow(t, s, "acct_bystander")
	createWith(t, context.Background(), s, ownedBy("acct_bystander", newRecord(t, apikey.Live, base)))
	bystander.next(t)

	all := store.Revocation{At: base.Add(7*time.Hour + 42), Reason: "account closed"}
	got2, err := s.RevokeAll(ctx, who, all)
	if err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	var wantAll []audit.Event
	for _, k := range []apikey.Record{canary, a, b} {
		k.RevokedAt, k.RevokedReason = store.Time(all.At), all.Reason
		wantAll = append(wantAll, audit.RevokedEvent(audit.RevokedAll, k, actor))
	}
	if len(got2) != len(wantAll) {
		t.Fatalf("RevokeAll revoked %d keys, want %d", len(got2), len(wantAll))
	}
	entries = tr.next(t)
	if len(entries) != len(wantAll) {
		t.Fatalf("RevokeAll of %d keys wrote %d audit entries, want one per key: %s", len(wantAll), len(entries), kinds(entries))
	}
	// The contract does not order the entries of one RevokeAll.
	byKey := func(a, b audit.Event) int { return store.CompareIDs(a.KeyID, b.KeyID) }
	gotAll := make([]audit.Event, len(entries))
	for i, e := range entries {
		gotAll[i] = e.Event
	}
	slices.SortFunc(gotAll, byKey)
	slices.SortFunc(wantAll, byKey)
	for i := range wantAll {
		sameEvent(t, "RevokeAll", gotAll[i], wantAll[i])
	}
	bystander.expect(t, "another owner's RevokeAll")

	checkChain(t, who, chain(t, s, who))
}

func testAuditUnchanged(t *testing.T, s store.Store) {
	// Every refused change, and every call that changes nothing, writes no
	// entry, in the owner's chain or another's.
	ctx := as(operator)
	active := newRecord(t, apikey.Live, base)
	active.ExpiresAt = base.Add(48 * time.Hour)
	active.Metadata = apikey.MustMetadata(map[string]string{"a": "1"})
	if _, err := s.Create(ctx, active, idem("order-1", "request A")); err != nil {
		t.Fatal(err)
	}
	active = store.Normalize(active)
	revoked := createWith(t, ctx, s, newRecord(t, apikey.Live, base))
	if _, err := s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base}); err != nil {
		t.Fatal(err)
	}
	exposed := createWith(t, ctx, s, newRecord(t, apikey.Live, base))
	if _, err := s.Expose(ctx, owner, exposed.ID, exposure(base, "github"), false); err != nil {
		t.Fatal(err)
	}
	exposedRevoked := createWith(t, ctx, s, newRecord(t, apikey.Live, base))
	if _, err := s.Expose(ctx, owner, exposedRevoked.ID, exposure(base, "github"), true); err != nil {
		t.Fatal(err)
	}
	expired := newRecord(t, apikey.Live, base)
	expired.ExpiresAt = base.Add(time.Hour) // when replacementOf's key is created
	expired = createWith(t, ctx, s, expired)
	replaced := createWith(t, ctx, s, newRecord(t, apikey.Live, base))
	if _, _, err := s.Rotate(ctx, owner, replaced.ID, replacementOf(t, replaced), base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	replaced = mustGet(t, s, replaced.ID)
	theirs := createWith(t, ctx, s, ownedBy(other, newRecord(t, apikey.Live, base)))
	const dormant = "acct_dormant" // only inactive keys
	for _, rec := range []apikey.Record{ownedBy(dormant, newRecord(t, apikey.Live, base)), ownedBy(dormant, newRecord(t, apikey.Live, base))} {
		rec.ExpiresAt = base.Add(time.Minute)
		createWith(t, ctx, s, rec)
	}
	if _, err := s.Revoke(ctx, dormant, createWith(t, ctx, s, ownedBy(dormant, newRecord(t, apikey.Live, base))).ID, store.Revocation{At: base}); err != nil {
		t.Fatal(err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	dupID := newRecord(t, apikey.Live, base)
	dupID.ID = active.ID
	dupHash := newRecord(t, apikey.Live, base)
	dupHash.Hash = active.Hash
	wider := replacementOf(t, active)
	wider.Scopes = scope.NewSet(scope.LinksRead, scope.CustomersWrite)
	rotDupHash := replacementOf(t, active)
	rotDupHash.Hash = revoked.Hash
	invalid := newRecord(t, apikey.Live, base)
	invalid.Name = ""
	sameMD := apikey.MustMetadata(map[string]string{"a": "1"})
	missing := uuid.New()

	mine, others, idle := follow(t, s, owner), follow(t, s, other), follow(t, s, dormant)
	for _, tc := range []struct {
		name string
		err  func() error
		is   error // nil: the call succeeds, changing nothing
	}{
		{"Create with an existing ID", func() error { return create(s, ctx, dupID) }, store.ErrDuplicate},
		{"Create with an existing hash", func() error { return create(s, ctx, dupHash) }, store.ErrDuplicate},
		{"Create repeated with an idempotency key", func() error {
			return second(s.Create(ctx, newRecord(t, apikey.Live, base), idem("order-1", "request A")))
		}, store.ErrAlreadyCreated},
		{"Create reusing an idempotency key", func() error {
			return second(s.Create(ctx, newRecord(t, apikey.Live, base), idem("order-1", "request B")))
		}, store.ErrIdempotencyConflict},
		{"invalid Create", func() error { return create(s, ctx, invalid) }, apikey.ErrInvalidRecord},
		{"cancelled Create", func() error { return create(s, cancelled, newRecord(t, apikey.Live, base)) }, context.Canceled},

		{"Update of a revoked key", func() error { return second(s.Update(ctx, owner, revoked.ID, store.Update{Name: "x"})) }, store.ErrAlreadyRevoked},
		{"Update of an unknown key", func() error { return second(s.Update(ctx, owner, missing, store.Update{Name: "x"})) }, store.ErrNotFound},
		{"Update of another owner's key", func() error { return second(s.Update(ctx, owner, theirs.ID, store.Update{Name: "x"})) }, store.ErrNotFound},
		{"Update that widens", func() error {
			return second(s.Update(ctx, owner, active.ID, store.Update{Name: "x", Scopes: scope.NewSet(scope.CustomersWrite)}))
		}, store.ErrWidening},
		{"invalid Update", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{Name: " x"})) }, apikey.ErrInvalidRecord},
		{"cancelled Update", func() error { return second(s.Update(cancelled, owner, active.ID, store.Update{Name: "x"})) }, context.Canceled},
		{"empty Update", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{})) }, nil},
		{"Update with only a time", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{At: base})) }, nil},
		{"Update to the same name", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{Name: active.Name})) }, nil},
		{"Update to the same scopes", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{Scopes: active.Scopes})) }, nil},
		{"Update to the same metadata", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{Metadata: &sameMD})) }, nil},
		{"Update to a later expiry", func() error {
			return second(s.Update(ctx, owner, active.ID, store.Update{ExpiresAt: active.ExpiresAt.Add(time.Hour)}))
		}, nil},
		{"Update removing no policy", func() error { return second(s.Update(ctx, owner, active.ID, store.Update{Policy: &apikey.Policy{}})) }, nil},

		{"Rotate of a revoked key", func() error {
			return third(s.Rotate(ctx, owner, revoked.ID, replacementOf(t, revoked), base.Add(2*time.Hour)))
		}, store.ErrAlreadyRevoked},
		{"Rotate of an expired key", func() error {
			return third(s.Rotate(ctx, owner, expired.ID, replacementOf(t, expired), base.Add(2*time.Hour)))
		}, store.ErrKeyExpired},
		{"Rotate of a key being replaced", func() error {
			return third(s.Rotate(ctx, owner, replaced.ID, replacementOf(t, replaced), base.Add(2*time.Hour)))
		}, store.ErrReplaced},
		{"Rotate to wider scopes", func() error { return third(s.Rotate(ctx, owner, active.ID, wider, base.Add(2*time.Hour))) }, store.ErrWidening},
		{"Rotate to a duplicate hash", func() error { return third(s.Rotate(ctx, owner, active.ID, rotDupHash, base.Add(2*time.Hour))) }, store.ErrDuplicate},
		{"Rotate of an unknown key", func() error {
			next := replacementOf(t, active)
			next.Replaces = missing
			return third(s.Rotate(ctx, owner, missing, next, base.Add(2*time.Hour)))
		}, store.ErrNotFound},
		{"Rotate of another owner's key", func() error {
			return third(s.Rotate(ctx, owner, theirs.ID, ownedBy(owner, replacementOf(t, theirs)), base.Add(2*time.Hour)))
		}, store.ErrNotFound},
		{"cancelled Rotate", func() error {
			return third(s.Rotate(cancelled, owner, active.ID, replacementOf(t, active), base.Add(2*time.Hour)))
		}, context.Canceled},

		{"Revoke of a revoked key", func() error {
			return second(s.Revoke(ctx, owner, revoked.ID, store.Revocation{At: base.Add(time.Hour)}))
		}, store.ErrAlreadyRevoked},
		{"Revoke of an unknown key", func() error { return second(s.Revoke(ctx, owner, missing, store.Revocation{At: base})) }, store.ErrNotFound},
		{"Revoke of another owner's key", func() error { return second(s.Revoke(ctx, owner, theirs.ID, store.Revocation{At: base})) }, store.ErrNotFound},
		{"Revoke with an invalid reason", func() error {
			return second(s.Revoke(ctx, owner, active.ID, store.Revocation{At: base, Reason: "line\nbreak"}))
		}, apikey.ErrInvalidRecord},
		{"cancelled Revoke", func() error { return second(s.Revoke(cancelled, owner, active.ID, store.Revocation{At: base})) }, context.Canceled},

		{"RevokeAll with an invalid reason", func() error {
			return second(s.RevokeAll(ctx, owner, store.Revocation{At: base, Reason: "bad\x00"}))
		}, apikey.ErrInvalidRecord},
		{"cancelled RevokeAll", func() error { return second(s.RevokeAll(cancelled, owner, store.Revocation{At: base})) }, context.Canceled},
		{"RevokeAll with no active key", func() error {
			got, err := s.RevokeAll(ctx, dormant, store.Revocation{At: base.Add(time.Hour)})
			if err == nil && len(got) != 0 {
				return fmt.Errorf("revoked %d keys", len(got))
			}
			return err
		}, nil},

		{"Expose of an exposed key", func() error {
			return second(s.Expose(ctx, owner, exposed.ID, exposure(base.Add(time.Hour), "pastebin"), false))
		}, store.ErrAlreadyExposed},
		{"Expose of an exposed, revoked key", func() error {
			return second(s.Expose(ctx, owner, exposedRevoked.ID, exposure(base.Add(time.Hour), "pastebin"), true))
		}, store.ErrAlreadyExposed},
		{"Expose of an unknown key", func() error { return second(s.Expose(ctx, owner, missing, exposure(base, "github"), true)) }, store.ErrNotFound},
		{"Expose of another owner's key", func() error { return second(s.Expose(ctx, owner, theirs.ID, exposure(base, "github"), true)) }, store.ErrNotFound},
		{"invalid Expose", func() error { return second(s.Expose(ctx, owner, active.ID, apikey.Exposure{At: base}, true)) }, apikey.ErrInvalidRecord},
		{"cancelled Expose", func() error { return second(s.Expose(cancelled, owner, active.ID, exposure(base, "github"), true)) }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); !errors.Is(err, tc.is) {
				t.Errorf("%s = %v, want %v", tc.name, err, tc.is)
			}
			mine.expect(t, tc.name)
			others.expect(t, tc.name)
			idle.expect(t, tc.name)
		})
	}
	sameRecord(t, mustGet(t, s, active.ID), active)
}

func testAuditInvalidActor(t *testing.T, s store.Store) {
	// A change by an actor that audit.Actor.Validate refuses fails with
	// audit.ErrInvalidActor and changes nothing.
	rec := newRecord(t, apikey.Live, base)
	rec.ExpiresAt = base.Add(48 * time.Hour)
	rec = mustCreate(t, s, rec)
	tr := follow(t, s, owner)
	bad := as(audit.Actor{Type: "Bad Type"})
	fresh := newRecord(t, apikey.Live, base)
	freshIdem := newRecord(t, apikey.Live, base)
	next := replacementOf(t, rec)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Create", create(s, bad, fresh)},
		{"Create with an idempotency key", second(s.Create(bad, freshIdem, idem("order-1", "request A")))},
		{"Update", second(s.Update(bad, owner, rec.ID, store.Update{Name: "renamed", At: base}))},
		{"Rotate", third(s.Rotate(bad, owner, rec.ID, next, base.Add(2*time.Hour)))},
		{"Revoke", second(s.Revoke(bad, owner, rec.ID, store.Revocation{At: base}))},
		{"RevokeAll", second(s.RevokeAll(bad, owner, store.Revocation{At: base}))},
		{"Expose", second(s.Expose(bad, owner, rec.ID, exposure(base, "github"), false))},
		{"Expose revoking", second(s.Expose(bad, owner, rec.ID, exposure(base, "github"), true))},
	} {
		if !errors.Is(c.err, audit.ErrInvalidActor) {
			t.Errorf("%s by an invalid actor = %v, want an error wrapping audit.ErrInvalidActor", c.name, c.err)
		}
	}
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	for _, id := range []uuid.UUID{fresh.ID, freshIdem.ID, next.ID} {
		if _, err := s.Get(context.Background(), owner, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a change by an invalid actor stored key %s: Get = %v", id, err)
		}
	}
	tr.expect(t, "changes by an invalid actor")

	// Each rule of an actor.
	for _, a := range []audit.Actor{
		{ID: "someone"}, // no type
		{Type: strings.Repeat("a", 33)},
		{Type: "operator!"},
		{Type: audit.TypeOperator, ID: "line\nbreak"},
		{Type: audit.TypeOperator, ID: "\xff"},
		{Type: audit.TypeOperator, ID: strings.Repeat("x", audit.MaxActorIDLen+1)},
	} {
		if _, err := s.Update(as(a), owner, rec.ID, store.Update{Name: "renamed"}); !errors.Is(err, audit.ErrInvalidActor) {
			t.Errorf("Update by actor %+q = %v, want an error wrapping audit.ErrInvalidActor", a, err)
		}
	}
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	tr.expect(t, "updates by invalid actors")

	// The same change by a valid actor, of a type the library does not
	// define, succeeds: the refusals were the actor's.
	app := audit.Actor{Type: "ci-bot.v2_x", ID: strings.Repeat("é", audit.MaxActorIDLen/2)}
	if _, err := s.Update(as(app), owner, rec.ID, store.Update{Name: "renamed", At: base}); err != nil {
		t.Fatalf("Update by a valid actor: %v", err)
	}
	renamed := rec
	renamed.Name = "renamed"
	want, _ := audit.UpdatedEvent(rec, renamed, base, app)
	tr.expect(t, "Update by a valid actor", want)
	// The refused Create with an idempotency key did not take it.
	if _, err := s.Create(as(app), freshIdem, idem("order-1", "request A")); err != nil {
		t.Errorf("Create with the idempotency key of a Create refused for its actor = %v, want it created", err)
	}
	tr.expect(t, "Create by a valid actor", audit.CreatedEvent(store.Normalize(freshIdem), app))
}

func testAuditChain(t *testing.T, s store.Store) {
	ctx := as(operator)
	// Two owners' changes, interleaved.
	var mine []apikey.Record
	for i := range 4 {
		rec := createWith(t, ctx, s, newRecord(t, apikey.Live, base.Add(time.Duration(i)*time.Second)))
		mine = append(mine, rec)
		theirs := createWith(t, ctx, s, ownedBy(other, newRecord(t, apikey.Live, base.Add(time.Duration(i)*time.Second))))
		if _, err := s.Update(ctx, owner, rec.ID, store.Update{Name: fmt.Sprint("key ", i)}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Revoke(ctx, other, theirs.ID, store.Revocation{At: base.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.RevokeAll(ctx, owner, store.Revocation{At: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	entries := chain(t, s, owner)
	if len(entries) != 12 {
		t.Fatalf("%s's chain holds %d entries, want 12 (4 creates, 4 updates, 4 revocations): %s", owner, len(entries), kinds(entries))
	}
	checkChain(t, owner, entries)
	for _, e := range entries {
		if !slices.Contains(ids(mine), e.KeyID) {
			t.Errorf("%s's entry %d is of key %s, not one of its keys", owner, e.Seq, e.KeyID)
		}
	}
	theirs := chain(t, s, other)
	if len(theirs) != 6 {
		t.Fatalf("%s's chain holds %d entries, want 6: %s", other, len(theirs), kinds(theirs))
	}
	checkChain(t, other, theirs)
	if got, err := s.AuditChain(context.Background(), "acct_nobody", 0, 0); err != nil || len(got) != 0 {
		t.Errorf("AuditChain of an owner without entries = %d entries, %v; want none", len(got), err)
	}

	// After and limit.
	for _, tc := range []struct {
		after       int64
		limit       int
		first, last int64 // the Seqs returned; 0, 0 for none
	}{
		{0, 0, 1, 12},
		{0, 5, 1, 5},
		{3, 4, 4, 7},
		{11, 5, 12, 12},
		{12, 0, 0, 0},
		{50, 0, 0, 0},
	} {
		got, err := s.AuditChain(context.Background(), owner, tc.after, tc.limit)
		if err != nil {
			t.Errorf("AuditChain(after %d, limit %d): %v", tc.after, tc.limit, err)
			continue
		}
		var want []audit.Entry
		if tc.first > 0 {
			want = entries[tc.first-1 : tc.last]
		}
		if !slices.Equal(seqs(got), seqs(want)) {
			t.Errorf("AuditChain(after %d, limit %d) = entries %v, want %v", tc.after, tc.limit, seqs(got), seqs(want))
			continue
		}
		for i := range got {
			sameEntry(t, "AuditChain", got[i], want[i], true)
		}
	}
	if _, err := s.AuditChain(context.Background(), owner, 0, -1); err == nil {
		t.Error("AuditChain with a negative limit succeeded")
	}

	// Entries are never changed nor removed: later changes, of the same
	// keys too, leave them as they were.
	rec := createWith(t, ctx, s, newRecord(t, apikey.Live, base.Add(time.Minute)))
	if _, _, err := s.Rotate(ctx, owner, rec.ID, replacementOf(t, rec), base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range append(mine, rec) {
		if _, err := s.Expose(ctx, owner, k.ID, exposure(base.Add(3*time.Hour), "github"), true); err != nil {
			t.Fatal(err)
		}
	}
	again := chain(t, s, owner)
	if len(again) != len(entries)+3+len(mine)+1 {
		t.Fatalf("%s's chain holds %d entries after 1 create, 1 rotation and %d exposures; want %d",
			owner, len(again), len(mine)+1, len(entries)+3+len(mine)+1)
	}
	for i := range entries {
		sameEntry(t, "after later changes", again[i], entries[i], true)
	}
	checkChain(t, owner, again)
	if got := chain(t, s, other); len(got) != len(theirs) {
		t.Errorf("%s's chain grew to %d entries with changes of %s's keys", other, len(got), owner)
	}
}

func testAuditLimits(t *testing.T, s store.Store) {
	n := store.MaxLimit + 1
	for i := range n {
		mustCreate(t, s, newRecord(t, apikey.Live, base.Add(time.Duration(i)*time.Millisecond)))
	}
	ctx := context.Background()
	// chainPrefix returns the entries 1 to k, by Seq only.
	chainPrefix := func(k int) []audit.Entry {
		out := make([]audit.Entry, k)
		for i := range out {
			out[i].Seq = int64(i + 1)
		}
		return out
	}
	for _, tc := range []struct {
		limit, want int
	}{
		{0, store.DefaultLimit},
		{store.MaxLimit + 500, store.MaxLimit},
		{7, 7},
	} {
		got, err := s.AuditChain(ctx, owner, 0, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || !slices.Equal(seqs(got), seqs(chainPrefix(tc.want))) {
			t.Errorf("AuditChain(limit %d) = %d entries, %v...; want entries 1 to %d", tc.limit, len(got), seqs(got[:min(3, len(got))]), tc.want)
		}
		page, err := s.Audit(ctx, owner, store.AuditOptions{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != tc.want || page.Next == "" || page.Entries[0].Seq != int64(n) || page.Entries[tc.want-1].Seq != int64(n-tc.want+1) {
			t.Errorf("Audit(Limit: %d) = %d entries, %v..., next %q; want entries %d down to %d and a cursor",
				tc.limit, len(page.Entries), seqs(page.Entries[:min(3, len(page.Entries))]), page.Next, n, n-tc.want+1)
		}
	}

	// The whole chain, walked in pages of the default size, passes an
	// audit.Checker, which ends at its last entry.
	c := audit.NewChecker(owner)
	var after int64
	var last audit.Entry
	for {
		got, err := s.AuditChain(ctx, owner, after, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if got[0].Seq <= after {
			t.Fatalf("AuditChain(after %d) returned entry %d", after, got[0].Seq)
		}
		for _, e := range got {
			if err := c.Add(e); err != nil {
				t.Fatalf("audit.Checker: %v", err)
			}
		}
		last = got[len(got)-1]
		after = last.Seq
	}
	if seq, hash := c.Head(); seq != int64(n) || hash != last.Hash {
		t.Errorf("the checker ended at entry %d, want %d", seq, n)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	// Workers change the keys of two owners at once, each as its own
	// actor: every owner's chain still holds, without gaps, exactly one
	// entry per change made, each attributed to the worker that made it,
	// and the entries of one change next to each other.
	const workers, each = 8, 12
	owners := []string{owner, other}
	recs := make([][]apikey.Record, workers)
	nexts := make([][]apikey.Record, workers)
	for w := range workers {
		for i := range each {
			rec := ownedBy(owners[w%2], newRecord(t, apikey.Live, base.Add(time.Duration(w*each+i)*time.Millisecond)))
			recs[w] = append(recs[w], rec)
			nexts[w] = append(nexts[w], replacementOf(t, rec))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	made := make([]int, workers)                  // entries written by each worker's changes
	allRevoked := make([]map[string]int, workers) // keys revoked by each RevokeAll, by reason
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		allRevoked[w] = map[string]int{}
		wg.Go(func() {
			who := owners[w%2]
			ctx := audit.WithActor(ctx, audit.Actor{Type: audit.TypeService, ID: fmt.Sprint("worker-", w)})
			fail := func(op string, err error) bool {
				switch {
				case err == nil:
					return false
				case errors.Is(err, store.ErrAlreadyRevoked): // another worker's RevokeAll
					return true
				}
				if errs[w] == nil {
					errs[w] = fmt.Errorf("%s: %w", op, err)
				}
				return true
			}
			for i, rec := range recs[w] {
				if _, err := s.Create(ctx, rec, store.Idempotency{}); err != nil {
					errs[w] = fmt.Errorf("Create: %w", err)
					return
				}
				made[w]++
				if _, err := s.Update(ctx, who, rec.ID, store.Update{Name: fmt.Sprintf("worker %d key %d", w, i)}); !fail("Update", err) {
					made[w]++
				}
				switch i % 3 {
				case 0:
					if _, _, err := s.Rotate(ctx, who, rec.ID, nexts[w][i], base.Add(2*time.Hour)); !fail("Rotate", err) {
						made[w] += 2
					}
				case 1:
					if _, err := s.Revoke(ctx, who, rec.ID, store.Revocation{At: base.Add(time.Hour)}); !fail("Revoke", err) {
						made[w]++
					}
				}
				if w < 2 && i%4 == 3 {
					reason := fmt.Sprintf("revoke all %d/%d", w, i)
					got, err := s.RevokeAll(ctx, who, store.Revocation{At: base.Add(30 * time.Minute), Reason: reason})
					if !fail("RevokeAll", err) {
						made[w] += len(got)
						allRevoked[w][reason] = len(got)
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("concurrent changes did not finish within a minute")
	}
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}

	for o, who := range owners {
		entries := chain(t, s, who)
		checkChain(t, who, entries)
		want := 0
		for w := o; w < workers; w += len(owners) {
			want += made[w]
		}
		if len(entries) != want {
			t.Errorf("%s's chain holds %d entries, want one per change made: %d", who, len(entries), want)
		}
		byActor := map[string]int{}
		byReason := map[string][]int{} // the indexes of the entries of each RevokeAll
		for i, e := range entries {
			byActor[e.Actor.ID]++
			if e.Kind == audit.RevokedAll {
				byReason[e.Reason] = append(byReason[e.Reason], i)
			}
			if e.Kind != audit.Rotated {
				continue
			}
			// A rotation's two entries are written in one step.
			var replacement string
			for _, ch := range e.Changes {
				if ch.Field == audit.FieldReplacedBy {
					replacement = ch.To
				}
			}
			if i == 0 || entries[i-1].Kind != audit.Created || entries[i-1].KeyID.String() != replacement || entries[i-1].Actor != e.Actor {
				t.Errorf("%s's entry %d, the rotation of %s, does not follow the creation of its replacement %s", who, e.Seq, e.KeyID, replacement)
			}
		}
		for w := o; w < workers; w += len(owners) {
			if id := fmt.Sprint("worker-", w); byActor[id] != made[w] {
				t.Errorf("%s's chain holds %d entries by %s, want %d", who, byActor[id], id, made[w])
			}
			for reason, n := range allRevoked[w] {
				at := byReason[reason]
				if len(at) != n || n > 0 && at[n-1]-at[0] != n-1 {
					t.Errorf("RevokeAll %q revoked %d keys; its entries are at %v, want %d next to each other", reason, n, at, n)
				}
			}
		}
	}
}

// auditAll walks every page of Audit and fails on an error, a page over
// the limit, entries out of order or repeated, or an empty page with a
// next cursor.
func auditAll(t testing.TB, s store.Store, who string, opts store.AuditOptions) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	for {
		page, err := s.Audit(context.Background(), who, opts)
		if err != nil {
			t.Fatalf("Audit(%s, %+v): %v", who, opts, err)
		}
		if opts.Limit > 0 && len(page.Entries) > opts.Limit {
			t.Fatalf("Audit returned a page of %d entries, limit %d", len(page.Entries), opts.Limit)
		}
		for _, e := range page.Entries {
			if len(all) > 0 && e.Seq >= all[len(all)-1].Seq {
				t.Fatalf("Audit listed entry %d after entry %d: want newest first, each once", e.Seq, all[len(all)-1].Seq)
			}
			all = append(all, e)
		}
		if page.Next == "" {
			return all
		}
		if len(page.Entries) == 0 {
			t.Fatalf("Audit returned an empty page with a next cursor")
		}
		opts.Cursor = page.Next
	}
}

func testAuditList(t *testing.T, s store.Store) {
	ctx := as(operator)
	a := createWith(t, ctx, s, newRecord(t, apikey.Live, base))
	b := createWith(t, ctx, s, newRecord(t, apikey.Test, base.Add(time.Second)))
	theirs := createWith(t, ctx, s, ownedBy(other, newRecord(t, apikey.Live, base)))
	for _, err := range []error{
		second(s.Update(ctx, owner, a.ID, store.Update{Name: "renamed"})),
		second(s.Update(ctx, other, theirs.ID, store.Update{Name: "theirs renamed"})),
		second(s.Expose(ctx, owner, b.ID, exposure(base.Add(time.Hour), "github"), false)),
		third(s.Rotate(ctx, owner, a.ID, replacementOf(t, a), base.Add(2*time.Hour))),
		second(s.Update(ctx, owner, b.ID, store.Update{ExpiresAt: base.Add(24 * time.Hour)})),
		second(s.Revoke(ctx, owner, a.ID, store.Revocation{At: base.Add(3 * time.Hour)})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries := chain(t, s, owner)
	if len(entries) != 8 {
		t.Fatalf("%s's chain holds %d entries, want 8: %s", owner, len(entries), kinds(entries))
	}
	want := newestFirst(entries)

	// Newest first, on one page.
	page, err := s.Audit(context.Background(), owner, store.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Next != "" {
		t.Errorf("Next = %q on a single page, want empty", page.Next)
	}
	if !slices.Equal(seqs(page.Entries), seqs(want)) {
		t.Fatalf("Audit = entries %v, want newest first %v", seqs(page.Entries), seqs(want))
	}
	for i := range want {
		sameEntry(t, "Audit", page.Entries[i], want[i], false)
	}

	// One key's entries, paged or not.
	for _, k := range []apikey.Record{a, b} {
		var wantKey []audit.Entry
		for _, e := range want {
			if e.KeyID == k.ID {
				wantKey = append(wantKey, e)
			}
		}
		for _, limit := range []int{0, 1, 2} {
			got := auditAll(t, s, owner, store.AuditOptions{KeyID: k.ID, Limit: limit})
			if !slices.Equal(seqs(got), seqs(wantKey)) {
				t.Errorf("Audit(KeyID %s, Limit %d) = entries %v, want %v", k.ID, limit, seqs(got), seqs(wantKey))
				continue
			}
			for i := range got {
				sameEntry(t, "Audit of one key", got[i], wantKey[i], false)
			}
		}
	}

	// Another owner's key, an unknown key, an owner without entries:
	// nothing.
	for _, c := range []struct {
		name, who string
		key       uuid.UUID
	}{
		{"another owner's key", owner, theirs.ID},
		{"an unknown key", owner, uuid.New()},
		{"an owner without entries", "acct_nobody", uuid.Nil},
		{"an owner without entries, of another's key", "acct_nobody", a.ID},
	} {
		page, err := s.Audit(context.Background(), c.who, store.AuditOptions{KeyID: c.key})
		if err != nil || len(page.Entries) != 0 || page.Next != "" {
			t.Errorf("Audit of %s = %d entries, next %q, %v; want an empty page", c.name, len(page.Entries), page.Next, err)
		}
	}
	got := auditAll(t, s, other, store.AuditOptions{KeyID: theirs.ID})
	if len(got) != 2 || got[0].Owner != other || got[0].Kind != audit.Updated || got[1].Kind != audit.Created {
		t.Errorf("Audit of %s's key = %s, want its update and creation", other, kinds(got))
	}
}

func testAuditPaging(t *testing.T, s store.Store) {
	ctx := as(operator)
	const n = 23
	var keys []apikey.Record
	for i := range n {
		if i%3 == 2 {
			if _, err := s.Update(ctx, owner, keys[len(keys)-1].ID, store.Update{Name: fmt.Sprint("renamed ", i)}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		keys = append(keys, createWith(t, ctx, s, newRecord(t, apikey.Test, base.Add(time.Duration(i)*time.Second))))
	}
	all := auditAll(t, s, owner, store.AuditOptions{})
	if len(all) != n {
		t.Fatalf("Audit holds %d entries, want %d", len(all), n)
	}
	if !slices.Equal(seqs(all), seqs(newestFirst(chain(t, s, owner)))) {
		t.Fatalf("Audit = entries %v, want the chain newest first", seqs(all))
	}
	for _, limit := range []int{1, 2, 5, n - 1, n} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			var got []audit.Entry
			opts := store.AuditOptions{Limit: limit}
			pages := 0
			for {
				page, err := s.Audit(context.Background(), owner, opts)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.Entries) > limit || pages > n {
					t.Fatalf("page %d of %d entries, limit %d", pages, len(page.Entries), limit)
				}
				got = append(got, page.Entries...)
				if page.Next == "" {
					break
				}
				opts.Cursor = page.Next
			}
			if !slices.Equal(seqs(got), seqs(all)) {
				t.Errorf("paged listing = %v, want the single-page listing %v", seqs(got), seqs(all))
			}
			if wantPages := (n + limit - 1) / limit; pages != wantPages {
				t.Errorf("%d pages, want %d (no empty last page)", pages, wantPages)
			}
		})
	}

	// Entries appended while a listing is walked: every entry that existed
	// when it began, exactly once, of all keys and of one.
	for i := range 6 {
		if _, err := s.Update(ctx, owner, keys[0].ID, store.Update{Name: fmt.Sprint("renamed before listing ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		key  uuid.UUID
		add  func(i int) error
	}{
		{"all keys", uuid.Nil, func(i int) error {
			return create(s, ctx, newRecord(t, apikey.Live, base.Add(time.Hour+time.Duration(i)*time.Second)))
		}},
		{"one key", keys[0].ID, func(i int) error {
			return second(s.Update(ctx, owner, keys[0].ID, store.Update{Name: fmt.Sprint("renamed while listing ", i)}))
		}},
	} {
		t.Run("appending to "+tc.name, func(t *testing.T) {
			existing := auditAll(t, s, owner, store.AuditOptions{KeyID: tc.key})
			seen := map[int64]int{}
			opts := store.AuditOptions{KeyID: tc.key, Limit: 2}
			for i := 0; ; i++ {
				page, err := s.Audit(context.Background(), owner, opts)
				if err != nil {
					t.Fatal(err)
				}
				if i > len(existing) {
					t.Fatalf("the listing of %d entries still has a next page after %d pages", len(existing), i)
				}
				for _, e := range page.Entries {
					seen[e.Seq]++
					if tc.key != uuid.Nil && e.KeyID != tc.key {
						t.Errorf("Audit of key %s returned entry %d of key %s", tc.key, e.Seq, e.KeyID)
					}
				}
				if page.Next == "" {
					break
				}
				if err := tc.add(i); err != nil {
					t.Fatal(err)
				}
				opts.Cursor = page.Next
			}
			for _, e := range existing {
				if seen[e.Seq] != 1 {
					t.Errorf("entry %d listed %d times, want once", e.Seq, seen[e.Seq])
				}
			}
			for seq, k := range seen {
				if k > 1 {
					t.Errorf("entry %d listed %d times", seq, k)
				}
			}
		})
	}
}

func testAuditBadOptions(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, newRecord(t, apikey.Live, base))
	mustCreate(t, s, newRecord(t, apikey.Live, base.Add(time.Second)))
	listPage, err := s.List(ctx, owner, store.ListOptions{Limit: 1})
	if err != nil || listPage.Next == "" {
		t.Fatalf("List(Limit: 1) of two keys = next %q, %v; want a cursor", listPage.Next, err)
	}
	auditPage, err := s.Audit(ctx, owner, store.AuditOptions{Limit: 1})
	if err != nil || auditPage.Next == "" {
		t.Fatalf("Audit(Limit: 1) of two entries = next %q, %v; want a cursor", auditPage.Next, err)
	}
	for _, tc := range []struct {
		name string
		opts store.AuditOptions
		is   error // nil: any error
	}{
		{"negative limit", store.AuditOptions{Limit: -1}, nil},
		{"garbage cursor", store.AuditOptions{Cursor: "not a cursor"}, store.ErrInvalidCursor},
		{"truncated cursor", store.AuditOptions{Cursor: "AAAA"}, store.ErrInvalidCursor},
		{"a List cursor", store.AuditOptions{Cursor: listPage.Next}, store.ErrInvalidCursor},
		{"a List cursor, of one key", store.AuditOptions{Cursor: listPage.Next, KeyID: uuid.New()}, store.ErrInvalidCursor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Audit(ctx, owner, tc.opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Audit = %v, want an error matching %v", err, tc.is)
			}
		})
	}
	if _, err := s.List(ctx, owner, store.ListOptions{Cursor: auditPage.Next}); !errors.Is(err, store.ErrInvalidCursor) {
		t.Errorf("List with an Audit cursor = %v, want ErrInvalidCursor", err)
	}
}

func testAuditReturnsCopies(t *testing.T, s store.Store) {
	rec := newRecord(t, apikey.Live, base)
	rec.Policy = fullPolicy()
	rec = createWith(t, as(operator), s, rec)
	ctx := context.Background()
	want := chain(t, s, owner)
	if len(want) != 1 || len(want[0].Changes) == 0 {
		t.Fatalf("the chain = %s, want one entry with changes", kinds(want))
	}
	want[0].Changes = slices.Clone(want[0].Changes)

	tamper := func(e *audit.Entry) {
		e.Changes[0].To = "tampered"
		e.Changes = append(e.Changes[:1], audit.Change{Field: "extra"})
		e.Actor.ID = "mallory"
		e.Hash[0] ^= 0xff
	}
	page, err := s.Audit(ctx, owner, store.AuditOptions{})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("Audit = %d entries, %v", len(page.Entries), err)
	}
	tamper(&page.Entries[0])
	got, err := s.AuditChain(ctx, owner, 0, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("AuditChain = %d entries, %v", len(got), err)
	}
	tamper(&got[0])

	again := chain(t, s, owner)
	sameEntry(t, "after changing returned entries", again[0], want[0], true)
	page, err = s.Audit(ctx, owner, store.AuditOptions{})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("Audit = %d entries, %v", len(page.Entries), err)
	}
	sameEntry(t, "Audit after changing returned entries", page.Entries[0], want[0], false)
	checkChain(t, owner, again)
}

func testAuditContextDone(t *testing.T, s store.Store) {
	mustCreate(t, s, newRecord(t, apikey.Live, base))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Audit", second(s.Audit(ctx, owner, store.AuditOptions{}))},
		{"AuditChain", second(s.AuditChain(ctx, owner, 0, 0))},
	} {
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want an error wrapping context.Canceled", c.name, c.err)
		}
	}
}
