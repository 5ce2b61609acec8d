package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/audit"
)

func chain(t *testing.T, owner string, n int) []audit.Entry {
	t.Helper()
	var entries []audit.Entry
	var last audit.Entry
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		e := audit.Event{Kind: audit.Revoked, Owner: owner, KeyID: uuid.New(), Prefix: "ck_live_abc123",
			At: at.Add(time.Duration(i) * time.Second), Actor: audit.Actor{Type: audit.TypeCLI, ID: "ada"},
			Reason: "rotated out", Changes: []audit.Change{{Field: audit.FieldRevokedAt, To: "x"}}}
		last = audit.Next(last, e)
		entries = append(entries, last)
	}
	return entries
}

func TestSealIsTheDocumentedHash(t *testing.T) {
	var prev [32]byte
	prev[0] = 7
	body := []byte(`{"kind":"key.created"}`)
	h := sha256.New()
	h.Write([]byte("keyward audit v1\x00"))
	h.Write(prev[:])
	binary.Write(h, binary.BigEndian, int64(42))
	h.Write(body)
	var want [32]byte
	h.Sum(want[:0])
	if got := audit.Seal(prev, 42, body); got != want {
		t.Fatalf("Seal = %x, want %x", got, want)
	}
}

func TestCheckFindsTheFirstBadEntry(t *testing.T) {
	if err := audit.Check("acct_a", chain(t, "acct_a", 5)); err != nil {
		t.Fatalf("an intact chain: %v", err)
	}
	if err := audit.Check("acct_a", nil); err != nil {
		t.Fatalf("an empty chain: %v", err)
	}
	for name, tc := range map[string]struct {
		tamper func([]audit.Entry) []audit.Entry
		seq    int64
		says   string
	}{
		"edited reason": {func(es []audit.Entry) []audit.Entry { es[2].Reason = "fine"; return es }, 3, "edited"},
		"edited actor":  {func(es []audit.Entry) []audit.Entry { es[0].Actor.ID = "eve"; return es }, 1, "edited"},
		"edited time":   {func(es []audit.Entry) []audit.Entry { es[4].At = es[4].At.Add(time.Hour); return es }, 5, "edited"},
		"removed":       {func(es []audit.Entry) []audit.Entry { return append(es[:1:1], es[2:]...) }, 2, "missing"},
		"first removed": {func(es []audit.Entry) []audit.Entry { return es[1:] }, 1, "missing"},
		"swapped": {func(es []audit.Entry) []audit.Entry {
			es[1], es[2] = es[2], es[1]
			return es
		}, 2, "missing"},
		"swapped seqs": {func(es []audit.Entry) []audit.Entry {
			es[1].Seq, es[2].Seq = es[2].Seq, es[1].Seq
			es[1], es[2] = es[2], es[1]
			return es
		}, 2, "link"},
		"repeated": {func(es []audit.Entry) []audit.Entry { return append(es[:3:3], es[2:]...) }, 4, "reordered or repeated"},
		"rehashed": {func(es []audit.Entry) []audit.Entry {
			// An edit whose own hash is recomputed breaks the next link.
			es[1].Reason = "fine"
			es[1].Hash = audit.Seal(es[1].Prev, es[1].Seq, es[1].Body())
			return es
		}, 3, "link"},
		"other owner": {func(es []audit.Entry) []audit.Entry { es[0].Owner = "acct_b"; return es }, 1, "another owner"},
	} {
		t.Run(name, func(t *testing.T) {
			err := audit.Check("acct_a", tc.tamper(chain(t, "acct_a", 5)))
			var te *audit.TamperError
			if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("Check = %v, want a TamperError", err)
			}
			if te.Seq != tc.seq || !strings.Contains(te.Problem, tc.says) {
				t.Errorf("Check = %v, want entry %d reported with %q", err, tc.seq, tc.says)
			}
		})
	}
}

func TestCheckerKeepsItsFirstError(t *testing.T) {
	es := chain(t, "acct_a", 3)
	es[0].Reason = "edited"
	c := audit.NewChecker("acct_a")
	first := c.Add(es[0])
	if first == nil || c.Add(es[1]) != first {
		t.Fatalf("the checker did not keep its first error: %v", first)
	}
	good := audit.NewChecker("acct_a")
	for _, e := range chain(t, "acct_a", 3) {
		if err := good.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if seq, hash := good.Head(); seq != 3 || hash == ([32]byte{}) {
		t.Errorf("Head = %d, %x", seq, hash)
	}
}

func TestBodyRoundTrips(t *testing.T) {
	e := chain(t, "acct_a", 1)[0].Event
	e.At = e.At.Add(1500 * time.Nanosecond) // kept to the microsecond
	e.Changes = append(e.Changes, audit.Change{Field: audit.FieldName, From: "<a>", To: "b & c"})
	back, err := audit.ParseBody(e.Body())
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Body()) != string(e.Body()) || !back.At.Equal(e.At.Truncate(time.Microsecond)) {
		t.Errorf("round trip: %s != %s", back.Body(), e.Body())
	}
	if _, err := audit.ParseBody([]byte(`{"at":"yesterday"}`)); err == nil {
		t.Error("a bad time parsed")
	}
}

func TestActors(t *testing.T) {
	for _, a := range []audit.Actor{{}, {Type: "operator", ID: "ada@acme.example"}, {Type: "github.app-1"}, {Type: "cli", ID: "Zoë"}} {
		if err := a.Validate(); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	for _, a := range []audit.Actor{{ID: "no type"}, {Type: "Operator"}, {Type: "a b"}, {Type: strings.Repeat("a", 33)},
		{Type: "cli", ID: "line\nbreak"}, {Type: "cli", ID: strings.Repeat("x", audit.MaxActorIDLen+1)}, {Type: "cli", ID: "\xff"}} {
		if err := a.Validate(); !errors.Is(err, audit.ErrInvalidActor) {
			t.Errorf("%+v: %v, want ErrInvalidActor", a, err)
		}
	}
	ctx := context.Background()
	if !audit.ActorFrom(ctx).IsZero() || audit.ActorFrom(ctx).String() != "unknown" {
		t.Error("a bare context has an actor")
	}
	a := audit.Actor{Type: audit.TypeService, ID: "billing"}
	if got := audit.ActorFrom(audit.WithActor(ctx, a)); got != a || got.String() != "service:billing" {
		t.Errorf("ActorFrom = %+v", got)
	}
}
