package storetest

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// fullPolicy returns a policy that sets everything.
func fullPolicy() *apikey.Policy {
	return &apikey.Policy{
		Rate:  apikey.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
		Quota: apikey.Quota{Requests: 1_000_000, Per: apikey.Month},
		Networks: []netip.Prefix{
			netip.MustParsePrefix("203.0.113.0/24"),
			netip.MustParsePrefix("2001:db8::/32"),
			netip.MustParsePrefix("198.51.100.7/32"),
		},
	}
}

// samePolicy reports whether two policies say the same, nil and zero
// alike.
func samePolicy(got, want *apikey.Policy) bool {
	if got.IsZero() || want.IsZero() {
		return got.IsZero() && want.IsZero()
	}
	return reflect.DeepEqual(*got, *want)
}

func testPolicy(t *testing.T, s store.Store) {
	ctx := context.Background()

	// Stored at creation, every field, and read back by every lookup.
	rec := newRecord(t, apikey.Live, base)
	rec.Policy = fullPolicy()
	rec = mustCreate(t, s, rec)
	sameRecord(t, mustGet(t, s, rec.ID), rec)
	byHash, err := s.GetByHash(ctx, rec.Hash)
	if err != nil || !samePolicy(byHash.Policy, fullPolicy()) {
		t.Errorf("GetByHash policy = %+v, %v; want %+v", byHash.Policy, err, fullPolicy())
	}
	// The store keeps its own copy: changing the caller's changes nothing.
	mine := fullPolicy()
	kept := newRecord(t, apikey.Live, base)
	kept.Policy = mine
	kept = mustCreate(t, s, kept)
	mine.Rate.Requests = 1
	mine.Networks[0] = netip.MustParsePrefix("0.0.0.0/0")
	if got := mustGet(t, s, kept.ID); !samePolicy(got.Policy, fullPolicy()) {
		t.Errorf("the stored policy changed with the caller's: %+v", got.Policy)
	}

	// A key without a policy has none; a zero policy is none.
	plain := mustCreate(t, s, newRecord(t, apikey.Live, base))
	if got := mustGet(t, s, plain.ID); got.Policy != nil {
		t.Errorf("a key created without a policy has %+v", got.Policy)
	}
	zero := newRecord(t, apikey.Live, base)
	zero.Policy = &apikey.Policy{}
	if got, err := s.Create(ctx, zero, store.Idempotency{}); err != nil || got.Policy != nil {
		t.Errorf("Create with a zero policy = %+v, %v; want no policy", got.Policy, err)
	}
	if got := mustGet(t, s, zero.ID); got.Policy != nil {
		t.Errorf("a key created with a zero policy reads back with %+v, want nil", got.Policy)
	}

	// Invalid policies are refused, at creation and by Update.
	bad := newRecord(t, apikey.Live, base)
	bad.Policy = &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}}
	if err := create(s, ctx, bad); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Create with an unmasked network = %v, want ErrInvalidRecord", err)
	}
	if _, err := s.Update(ctx, owner, plain.ID, store.Update{Policy: &apikey.Policy{Rate: apikey.RateLimit{Requests: 0, Period: time.Second}}}); !errors.Is(err, apikey.ErrInvalidRecord) {
		t.Errorf("Update with an invalid rate = %v, want ErrInvalidRecord", err)
	}
	sameRecord(t, mustGet(t, s, plain.ID), plain)

	// Update sets, replaces and removes a policy; nothing else changes.
	only := &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}
	got, err := s.Update(ctx, owner, plain.ID, store.Update{Policy: only})
	if err != nil {
		t.Fatal(err)
	}
	want := plain
	want.Policy = only
	sameRecord(t, got, want)
	sameRecord(t, mustGet(t, s, plain.ID), want)
	if got, err = s.Update(ctx, owner, plain.ID, store.Update{Policy: &apikey.Policy{}}); err != nil || got.Policy != nil {
		t.Errorf("Update with a zero policy = %+v, %v; want the policy removed", got.Policy, err)
	}
	if got := mustGet(t, s, plain.ID); got.Policy != nil {
		t.Errorf("after removal, Get has policy %+v", got.Policy)
	}
	// A name change keeps the policy.
	if got, err := s.Update(ctx, owner, rec.ID, store.Update{Name: "renamed"}); err != nil || !samePolicy(got.Policy, fullPolicy()) {
		t.Errorf("a rename changed the policy to %+v (%v)", got.Policy, err)
	}

	// A replacement stores the policy it is given.
	next := replacementOf(t, rec)
	next.Policy = fullPolicy()
	_, created, err := s.Rotate(ctx, owner, rec.ID, next, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, created.ID); !samePolicy(got.Policy, fullPolicy()) {
		t.Errorf("the replacement's policy = %+v", got.Policy)
	}
}
