package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
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
		},
	}
}

// The policy column holds the policy as package apikey marshals it, what
// it does not set left out, and NULL for none: the form other tools read
// the column in.
func TestPolicyStoredForm(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	tests := []struct {
		name   string
		policy *apikey.Policy
		want   string // JSON; "" for NULL
	}{
		{"everything", fullPolicy(),
			`{"rate":{"requests":100,"period":"1m0s","burst":20},"quota":{"requests":1000000,"per":"month"},"networks":["203.0.113.0/24","2001:db8::/32"]}`},
		{"a rate without burst", &apikey.Policy{Rate: apikey.RateLimit{Requests: 5, Period: 1500 * time.Millisecond}},
			`{"rate":{"requests":5,"period":"1.5s"}}`},
		{"a quota", &apikey.Policy{Quota: apikey.Quota{Requests: 10, Per: apikey.Day}}, `{"quota":{"requests":10,"per":"day"}}`},
		{"networks", &apikey.Policy{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")}}, `{"networks":["192.0.2.7/32"]}`},
		{"none", nil, ""},
		{"zero", &apikey.Policy{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord(t)
			rec.Policy = tc.policy
			rec = mustCreate(t, s, rec)
			var got sql.NullString
			if err := db.QueryRowContext(ctx, "SELECT policy::text FROM "+table+" WHERE id = $1", rec.ID).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" || !got.Valid {
				if got.Valid != (tc.want != "") {
					t.Errorf("the policy column holds %q (NULL: %v), want %q", got.String, !got.Valid, tc.want)
				}
				return
			}
			var same bool // jsonb keeps no order of keys: compare values
			if err := db.QueryRowContext(ctx, "SELECT $1::text::jsonb = $2::text::jsonb", got.String, tc.want).Scan(&same); err != nil {
				t.Fatal(err)
			}
			if !same {
				t.Errorf("the policy column holds %s, want %s", got.String, tc.want)
			}
		})
	}
}

// A policy the store did not write is read strictly: a field it does not
// know, at any depth, a value of another type, and a policy that
// apikey.Policy.Validate refuses fail every read of the key with a
// failure, never an answer, so that the lifecycle refuses the key with
// 503 rather than apply a limit other than the one stored. What the
// store would have written in other words reads as it says.
func TestPolicyReadStrictly(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	refused := []struct{ name, policy string }{
		{"a field it does not know", `{"quota": {"requests": 10, "per": "day"}, "schedule": "weekdays"}`},
		{"a field of the rate it does not know", `{"rate": {"requests": 10, "period": "1s", "window": "sliding"}}`},
		{"a field of the quota it does not know", `{"quota": {"requests": 10, "per": "day", "rollover": true}}`},
		{"a period that is no duration", `{"rate": {"requests": 10, "period": "1 minute"}}`},
		{"a period in seconds", `{"rate": {"requests": 10, "period": 60}}`},
		{"a rate without period", `{"rate": {"requests": 10}}`},
		{"requests as a string", `{"rate": {"requests": "10", "period": "1s"}}`},
		{"fractional requests", `{"quota": {"requests": 10.5, "per": "day"}}`},
		{"a quota per week", `{"quota": {"requests": 10, "per": "week"}}`},
		{"a quota without period", `{"quota": {"requests": 10}}`},
		{"a rate of none", `{"rate": {"requests": 0, "period": "1s"}}`},
		{"a period too short", `{"rate": {"requests": 10, "period": "1ms"}}`},
		{"a network with bits past its length", `{"networks": ["10.1.2.3/8"]}`},
		{"an address for a network", `{"networks": ["10.1.2.3"]}`},
		{"networks as a string", `{"networks": "10.0.0.0/8"}`},
		{"a network listed twice", `{"networks": ["10.0.0.0/8", "10.0.0.0/8"]}`},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecord(t)
			rec.Owner = fmt.Sprint("acct_strict_", i) // a List of its own
			rec = mustCreate(t, s, rec)
			if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET policy = $2::text::jsonb WHERE id = $1", rec.ID, tc.policy); err != nil {
				t.Fatal(err)
			}
			_, getErr := s.Get(ctx, rec.Owner, rec.ID)
			_, hashErr := s.GetByHash(ctx, rec.Hash)
			_, listErr := s.List(ctx, rec.Owner, store.ListOptions{})
			for op, err := range map[string]error{"Get": getErr, "GetByHash": hashErr, "List": listErr} {
				if err == nil || store.IsAnswer(err) {
					t.Errorf("%s of a key whose policy is %s = %v, want a failure", op, tc.policy, err)
				}
			}
		})
	}

	read := []struct {
		name, policy string
		want         *apikey.Policy
	}{
		{"a period in other words", `{"rate": {"requests": 10, "period": "1m"}}`,
			&apikey.Policy{Rate: apikey.RateLimit{Requests: 10, Period: time.Minute}}},
		{"nulls", `{"rate": null, "quota": {"requests": 1, "per": "day"}, "networks": null}`,
			&apikey.Policy{Quota: apikey.Quota{Requests: 1, Per: apikey.Day}}},
		{"an empty object", `{}`, nil},
	}
	for _, tc := range read {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustCreate(t, s, newRecord(t))
			if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET policy = $2::text::jsonb WHERE id = $1", rec.ID, tc.policy); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetByHash(ctx, rec.Hash)
			if err != nil || !reflect.DeepEqual(got.Policy, tc.want) {
				t.Errorf("GetByHash of a key whose policy is %s = %+v, %v; want %+v", tc.policy, got.Policy, err, tc.want)
			}
		})
	}
}

// A revoked key's policy stays as it was: the store refuses to change it,
// and so does the guard for SQL of the application's role (see
// TestGuardHoldsForTheApplicationRole).
func TestPolicyOfRevokedKey(t *testing.T) {
	db := pgtest.DB(t)
	s := newStore(t, db)
	ctx := context.Background()
	rec := newRecord(t)
	rec.Policy = fullPolicy()
	rec = mustCreate(t, s, rec)
	if _, err := s.Revoke(ctx, testOwner, rec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*apikey.Policy{{}, {Quota: apikey.Quota{Requests: 1, Per: apikey.Day}}} {
		if _, err := s.Update(ctx, testOwner, rec.ID, store.Update{Policy: p}); !errors.Is(err, store.ErrAlreadyRevoked) {
			t.Errorf("Update of a revoked key's policy to %+v = %v, want ErrAlreadyRevoked", p, err)
		}
	}
	if got, err := s.Get(ctx, testOwner, rec.ID); err != nil || !reflect.DeepEqual(got.Policy, fullPolicy()) {
		t.Errorf("the revoked key's policy = %+v, %v; want it unchanged", got.Policy, err)
	}
}
