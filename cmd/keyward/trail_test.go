package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/internal/pgtest"
)

// runWith runs the binary with vars added to its environment.
func (e *env) runWith(vars []string, args ...string) result {
	e.t.Helper()
	return e.runEnv(append(environ(e.dsn), vars...), "", e.bin, args...)
}

// trail returns the owner's audit trail, newest first, through the
// library.
func (e *env) trail(owner string) []audit.Entry {
	e.t.Helper()
	page, err := e.keys.Owner(owner).Audit(context.Background(), keyward.AuditOptions{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return page.Entries
}

// tamper runs query, in which %s is the audit table, as the table's owner
// (the test's role, which migrated it), with the trigger that keeps the
// trail append-only disabled: after checking that the trigger refuses it.
func (e *env) tamper(query string, args ...any) {
	e.t.Helper()
	table := e.schema + ".api_keys_audit"
	query = fmt.Sprintf(query, table)
	ctx := context.Background()
	db := pgtest.DB(e.t)
	if _, err := db.ExecContext(ctx, query, args...); err == nil || !strings.Contains(err.Error(), "append-only") {
		e.t.Fatalf("%s: %v; want the trail refusing it, append-only", query, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
	exec("ALTER TABLE " + table + " DISABLE TRIGGER USER")
	exec(query, args...)
	exec("ALTER TABLE " + table + " ENABLE TRIGGER USER")
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
}

// rows returns the fields of a table's lines after its header, which it
// checks.
func rows(t *testing.T, table, header string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != header {
		t.Fatalf("header = %q, want %q; table:\n%s", got, header, table)
	}
	var out [][]string
	for _, l := range lines[1:] {
		out = append(out, strings.Fields(l))
	}
	return out
}

func testActor(t *testing.T, e *env) {
	e.migrate()
	args := func(name string, more ...string) []string {
		return append([]string{"create", "-owner", "acct_1", "-name", name, "-mode", "test", "-scopes", "links:read"}, more...)
	}
	// -actor, after the command or before it, names the actor of create,
	// update and revoke.
	_, rec := e.create(args("Flag", "-actor", "alice@example.com")[1:]...)
	e.ok("", "-actor", "carol", "update", "-owner", "acct_1", "-name", "Renamed", rec.ID.String())
	e.ok("", "revoke", "-owner", "acct_1", "-reason", "done", "-actor", "bob", rec.ID.String())
	// $KEYWARD_ACTOR when there is no -actor, which wins over it.
	if r := e.runWith([]string{"KEYWARD_ACTOR=dave"}, args("Env")...); r.code != 0 {
		t.Fatalf("KEYWARD_ACTOR: exit %d, %s", r.code, r.stderr)
	}
	if r := e.runWith([]string{"KEYWARD_ACTOR=dave"}, args("Both", "-actor", "erin")...); r.code != 0 {
		t.Fatalf("KEYWARD_ACTOR and -actor: exit %d, %s", r.code, r.stderr)
	}
	// Neither: the OS user's name.
	e.ok("", args("OS user")...)
	// -actor "" names nobody: a cli actor without an ID.
	e.ok("", args("Nobody", "-actor", "")...)

	osUser := ""
	if u, err := user.Current(); err == nil && (audit.Actor{Type: audit.TypeCLI, ID: u.Username}).Validate() == nil {
		osUser = u.Username
	}
	want := []struct {
		kind audit.Kind
		name string // the key's name when created
		id   string
	}{
		{audit.Created, "Nobody", ""},
		{audit.Created, "OS user", osUser},
		{audit.Created, "Both", "erin"},
		{audit.Created, "Env", "dave"},
		{audit.Revoked, "", "bob"},
		{audit.Updated, "", "carol"},
		{audit.Created, "Flag", "alice@example.com"},
	}
	got := e.trail("acct_1")
	if len(got) != len(want) {
		t.Fatalf("trail has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.kind || g.Actor != (audit.Actor{Type: audit.TypeCLI, ID: w.id}) {
			t.Errorf("entry %d: %s by %+v, want %s by cli %q", g.Seq, g.Kind, g.Actor, w.kind, w.id)
		}
		if w.name != "" && (len(g.Changes) == 0 || g.Changes[0] != audit.Change{Field: audit.FieldName, To: w.name}) {
			t.Errorf("entry %d: changes %+v, want the key named %q", g.Seq, g.Changes, w.name)
		}
	}
	if got[0].Actor.String() != "cli" {
		t.Errorf(`-actor "": actor %q, want "cli"`, got[0].Actor)
	}

	// An invalid actor is a usage error, and changes nothing.
	e.fails(2, `keyward: invalid actor: -actor "bad\x01name": the ID holds control characters`, "", args("Bad", "-actor", "bad\x01name")...)
	r := e.runWith([]string{"KEYWARD_ACTOR=" + strings.Repeat("x", 300)}, args("Bad")...)
	if r.code != 2 || !strings.Contains(r.stderr, "keyward: invalid actor: $KEYWARD_ACTOR") || r.stdout != "" {
		t.Errorf("invalid $KEYWARD_ACTOR: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if n := len(e.trail("acct_1")); n != len(want) {
		t.Errorf("after refused commands, the trail has %d entries, want %d", n, len(want))
	}
}

func testAudit(t *testing.T, e *env) {
	e.migrate()
	_, a := e.create("-owner", "acct_1", "-name", "First key", "-mode", "live", "-scopes", "links:read,links:write",
		"-metadata", "team=secret-team", "-actor", "alice")
	_, b := e.create("-owner", "acct_1", "-name", "Second", "-mode", "test", "-scopes", "links:read", "-actor", "alice")
	_, other := e.create("-owner", "acct_2", "-name", "Theirs", "-mode", "test", "-scopes", "links:read")
	e.ok("", "update", "-owner", "acct_1", "-scopes", "links:read", "-actor", "bob", a.ID.String())
	e.ok("", "revoke", "-owner", "acct_1", "-reason", "laptop stolen", "-actor", "bob", a.ID.String())
	// acct_1's trail: 1 a created, 2 b created, 3 a updated, 4 a revoked.

	const header = "SEQ AT KIND KEY ACTOR DETAILS"
	r := e.ok("", "audit", "-owner", "acct_1")
	got := rows(t, r.stdout, header)
	if len(got) != 4 {
		t.Fatalf("audit =\n%s\nwant 4 entries", r.stdout)
	}
	lines := strings.Split(r.stdout, "\n")[1:]
	for i, w := range []struct {
		seq, kind, key, actor string
		details               []string
	}{
		{"4", "key.revoked", a.ID.String(), "cli:bob", []string{`reason="laptop stolen"`, "revoked_at=20"}},
		{"3", "key.updated", a.ID.String(), "cli:bob", []string{`scopes: "links:read links:write" -> links:read`}},
		{"2", "key.created", b.ID.String(), "cli:alice", []string{"name=Second; mode=test; scopes=links:read"}},
		{"1", "key.created", a.ID.String(), "cli:alice", []string{`name="First key"; mode=live; scopes="links:read links:write"; metadata`}},
	} {
		g := got[i]
		if g[0] != w.seq || g[2] != w.kind || g[3] != w.key || g[4] != w.actor {
			t.Errorf("row %d = %q, want seq %s, %s of %s by %s", i, lines[i], w.seq, w.kind, w.key, w.actor)
		}
		if _, err := time.Parse(time.RFC3339, g[1]); err != nil {
			t.Errorf("row %d: AT %q: %v", i, g[1], err)
		}
		contains(t, "row", lines[i], w.details...)
	}
	if strings.Contains(r.stdout, "secret-team") || strings.Contains(r.stdout, other.ID.String()) {
		t.Errorf("audit shows metadata values or another owner's key:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q on the last page", r.stderr)
	}

	// One key's entries: -key, or the argument.
	r = e.ok("", "audit", "-owner", "acct_1", "-key", b.ID.String())
	if got := rows(t, r.stdout, header); len(got) != 1 || got[0][0] != "2" {
		t.Errorf("audit -key =\n%s", r.stdout)
	}
	if r2 := e.ok("", "audit", "-owner", "acct_1", b.ID.String()); r2.stdout != r.stdout {
		t.Errorf("audit KEY_ID differs from audit -key:\n%s", r2.stdout)
	}
	r = e.ok("", "audit", "-owner", "acct_1", a.ID.String(), "-limit", "2")
	if got := rows(t, r.stdout, header); len(got) != 2 || got[0][0] != "4" || got[1][0] != "3" {
		t.Errorf("audit KEY_ID -limit 2 =\n%s", r.stdout)
	}

	// Pages: the next page's cursor goes to stderr.
	r = e.ok("", "audit", "-owner", "acct_1", "-limit", "3")
	got = rows(t, r.stdout, header)
	m := regexp.MustCompile(`-cursor (\S+) `).FindStringSubmatch(r.stderr)
	if len(got) != 3 || got[2][0] != "2" || m == nil {
		t.Fatalf("audit -limit 3: stdout\n%s\nstderr %q", r.stdout, r.stderr)
	}
	r = e.ok("", "audit", "-owner", "acct_1", "-limit", "3", "-cursor", m[1])
	if got := rows(t, r.stdout, header); len(got) != 1 || got[0][0] != "1" || r.stderr != "" {
		t.Errorf("the next page: stdout\n%s\nstderr %q", r.stdout, r.stderr)
	}

	// JSON: the entries, their hashes, and the next page's cursor.
	type entry struct {
		Seq     int64          `json:"seq"`
		Kind    audit.Kind     `json:"kind"`
		Owner   string         `json:"owner"`
		KeyID   uuid.UUID      `json:"key_id"`
		At      time.Time      `json:"at"`
		Actor   audit.Actor    `json:"actor"`
		Reason  string         `json:"reason"`
		Changes []audit.Change `json:"changes"`
		Prev    string         `json:"prev"`
		Hash    string         `json:"hash"`
	}
	type page struct {
		Entries []entry `json:"entries"`
		Next    *string `json:"next_cursor"`
	}
	decode := func(r result) page {
		t.Helper()
		var p page
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
			t.Fatalf("-json: %v\n%s", err, r.stdout)
		}
		return p
	}
	lib := e.trail("acct_1")
	p1 := decode(e.ok("", "audit", "-owner", "acct_1", "-json", "-limit", "2"))
	if p1.Next == nil || len(p1.Entries) != 2 {
		t.Fatalf("-json -limit 2 = %+v", p1)
	}
	p2 := decode(e.ok("", "audit", "-owner", "acct_1", "-json", "-limit", "2", "-cursor", *p1.Next))
	if p2.Next != nil || len(p2.Entries) != 2 {
		t.Fatalf("-json, next page = %+v", p2)
	}
	all := append(p1.Entries, p2.Entries...)
	for i, g := range all {
		l := lib[i]
		if g.Seq != l.Seq || g.Kind != l.Kind || g.Owner != "acct_1" || g.KeyID != l.KeyID || !g.At.Equal(l.At) ||
			g.Actor != l.Actor || g.Reason != l.Reason || len(g.Changes) != len(l.Changes) ||
			g.Hash != hex.EncodeToString(l.Hash[:]) || g.Prev != hex.EncodeToString(l.Prev[:]) {
			t.Errorf("-json entry %d = %+v, want %+v", i, g, l)
		}
		if i > 0 && all[i-1].Prev != g.Hash {
			t.Errorf("entry %d's prev %s is not entry %d's hash %s", all[i-1].Seq, all[i-1].Prev, g.Seq, g.Hash)
		}
	}
	if all[3].Prev != strings.Repeat("00", 32) || all[0].Reason != "laptop stolen" {
		t.Errorf("-json: the first entry's prev %s, the last entry's reason %q", all[3].Prev, all[0].Reason)
	}
	// An empty trail is an empty list.
	if r := e.ok("", "audit", "-owner", "acct_3", "-json"); strings.Join(strings.Fields(r.stdout), "") != `{"entries":[]}` {
		t.Errorf("-json of an empty trail = %q", r.stdout)
	}

	e.fails(2, "keyward: invalid cursor:", "", "audit", "-owner", "acct_1", "-cursor", "nope")
	e.fails(2, "keyward: invalid limit:", "", "audit", "-owner", "acct_1", "-limit", "0")
	// Another owner's key is not found, as by the other commands.
	e.fails(1, "keyward: key not found (owner acct_2, key "+a.ID.String()+")", "", "audit", "-owner", "acct_2", a.ID.String())
}

func testCheckAudit(t *testing.T, e *env) {
	e.migrate()
	r := e.ok("", "check-audit", "-owner", "acct_1")
	if r.stdout != "the audit trail of owner acct_1 is empty\n" {
		t.Errorf("empty trail: stdout %q", r.stdout)
	}
	_, a := e.create("-owner", "acct_1", "-name", "One", "-mode", "test", "-scopes", "links:read")
	_, b := e.create("-owner", "acct_1", "-name", "Two", "-mode", "test", "-scopes", "links:read")
	e.ok("", "revoke", "-owner", "acct_1", "-reason", "laptop stolen", a.ID.String())
	e.ok("", "update", "-owner", "acct_1", "-name", "Two, renamed", b.ID.String())
	// acct_1's trail: 1 a created, 2 b created, 3 a revoked, 4 b updated.
	ctx := context.Background()
	head, err := e.keys.Owner("acct_1").CheckAudit(ctx)
	if err != nil || head.Seq != 4 {
		t.Fatalf("CheckAudit = %+v, %v", head, err)
	}
	hash := func(h [32]byte) string { return hex.EncodeToString(h[:]) }
	headText := fmt.Sprintf("%d:%s", head.Seq, hash(head.Hash))
	r = e.ok("", "check-audit", "-owner", "acct_1")
	if r.stdout != "the audit trail of owner acct_1 holds: head "+headText+"\n" {
		t.Errorf("stdout = %q, want the head %s", r.stdout, headText)
	}
	r = e.ok("", "check-audit", "-owner", "acct_1", "-json")
	var j struct {
		Owner string `json:"owner"`
		Seq   int64  `json:"seq"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.Owner != "acct_1" || j.Seq != 4 || j.Hash != hash(head.Hash) {
		t.Errorf("-json = %+v, %v\n%s", j, err, r.stdout)
	}

	// -expect: the head, or an entry of the trail before it, holds.
	trail := e.trail("acct_1") // newest first
	e.ok("", "check-audit", "-owner", "acct_1", "-expect", headText)
	e.ok("", "check-audit", "-owner", "acct_1", "-expect", "2:"+hash(trail[2].Hash))
	// A head past the trail's end, or another hash: exit 3.
	r = e.fails(3, `keyward: audit: the trail of "acct_1" does not hold at entry 5: the trail ends at entry 4, before the entry 9`,
		"", "check-audit", "-owner", "acct_1", "-expect", "9:"+hash(head.Hash))
	if r.stdout != "" {
		t.Errorf("stdout = %q when the trail does not hold", r.stdout)
	}
	e.fails(3, "does not hold at entry 2: its hash is "+hash(trail[2].Hash), "", "check-audit", "-owner", "acct_1", "-expect", "2:"+hash(trail[1].Hash))

	// The trail is edited by the table's owner: entry 3's reason.
	e.tamper(`UPDATE %s SET body = replace(body, 'laptop stolen', 'routine') WHERE owner = $1 AND seq = 3`, "acct_1")
	r = e.fails(3, `keyward: audit: the trail of "acct_1" does not hold at entry 3: it was edited: its content does not match its hash`,
		"", "check-audit", "-owner", "acct_1")
	if r.stdout != "" {
		t.Errorf("stdout = %q when the trail does not hold", r.stdout)
	}
	// The listing still shows it: it is what check-audit is for.
	contains(t, "audit", e.ok("", "audit", "-owner", "acct_1").stdout, `reason=routine`)

	// Another owner's trail: an entry removed, then the newest entries,
	// which only -expect shows.
	for _, n := range []string{"One", "Two", "Three", "Four"} {
		e.create("-owner", "acct_2", "-name", n, "-mode", "test", "-scopes", "links:read")
	}
	r = e.ok("", "check-audit", "-owner", "acct_2", "-json")
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.Seq != 4 {
		t.Fatalf("-json = %+v, %v", j, err)
	}
	e.tamper(`DELETE FROM %s WHERE owner = $1 AND seq = 4`, "acct_2")
	e.ok("", "check-audit", "-owner", "acct_2")
	e.fails(3, "does not hold at entry 4: the trail ends at entry 3", "", "check-audit", "-owner", "acct_2", "-expect", fmt.Sprintf("4:%s", j.Hash))
	e.tamper(`DELETE FROM %s WHERE owner = $1 AND seq = 2`, "acct_2")
	e.fails(3, `the trail of "acct_2" does not hold at entry 2: entry 2 is missing (the next entry is 3)`, "", "check-audit", "-owner", "acct_2")

	// A database that cannot be reached is a failure, not tampering.
	r = e.runEnv(environ("postgres://nobody@127.0.0.1:1/none?connect_timeout=5"), "", e.bin, "check-audit", "-owner", "acct_1")
	if r.code != 1 {
		t.Errorf("no database: exit %d, want 1; stderr %q", r.code, r.stderr)
	}
}

func testUsage(t *testing.T, e *env) {
	e.migrate()
	key, rec := e.create("-owner", "acct_1", "-name", "Busy", "-mode", "live", "-scopes", "links:read") // one verification
	ctx := context.Background()
	// A key never verified, which e.create would.
	e.ok("", "create", "-owner", "acct_1", "-name", "Idle", "-mode", "live", "-scopes", "links:read")
	page, err := e.keys.Owner("acct_1").List(ctx, keyward.ListOptions{Limit: 1})
	if err != nil || len(page.Keys) != 1 || page.Keys[0].Name != "Idle" {
		t.Fatalf("List = %+v, %v", page.Keys, err)
	}
	idle := page.Keys[0]
	before := time.Now().UTC()
	for range 4 {
		if _, err := e.keys.Verify(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	e.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope)
	e.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope)
	e.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeLimited)
	e.keys.CountRefusal(ctx, rec.ID, keyward.OutcomeNetworkRefused)
	if err := e.keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	r := e.ok("", "usage", "-owner", "acct_1", "-days", "7", rec.ID.String())
	after := time.Now().UTC()
	got := rows(t, r.stdout, "DAY VERIFIED REFUSED SCOPE MODE LIMITED NETWORK")
	if len(got) != 8 {
		t.Fatalf("usage -days 7 =\n%s\nwant 7 days and the total", r.stdout)
	}
	if total := strings.Join(got[7], " "); total != "total 5 4 2 0 1 1" {
		t.Errorf("total row %q, want 5 verified, 4 refused: 2 scope, 1 limited, 1 network", total)
	}
	var sum [6]int
	for i, row := range got[:7] {
		day, err := time.Parse(time.DateOnly, row[0])
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if i == 6 && day.Format(time.DateOnly) != before.Format(time.DateOnly) && day.Format(time.DateOnly) != after.Format(time.DateOnly) {
			t.Errorf("the last day is %s, not today", row[0])
		}
		if i > 0 {
			if prev, _ := time.Parse(time.DateOnly, got[i-1][0]); day.Sub(prev) != 24*time.Hour {
				t.Errorf("row %d: %s does not follow %s", i, row[0], got[i-1][0])
			}
		}
		for k := range sum {
			var n int
			fmt.Sscan(row[k+1], &n)
			sum[k] += n
		}
	}
	if sum != [6]int{5, 4, 2, 0, 1, 1} {
		t.Errorf("the days add up to %v:\n%s", sum, r.stdout)
	}
	// Default: 30 days.
	if got := rows(t, e.ok("", "usage", "-owner", "acct_1", rec.ID.String()).stdout, "DAY VERIFIED REFUSED SCOPE MODE LIMITED NETWORK"); len(got) != 31 {
		t.Errorf("usage: %d rows, want 30 days and the total", len(got))
	}

	// Per hour, as JSON.
	r = e.ok("", "usage", "-owner", "acct_1", "-hours", "3", "-json", rec.ID.String())
	var u struct {
		KeyID uuid.UUID `json:"key_id"`
		Per   string    `json:"per"`
		From  time.Time `json:"from"`
		To    time.Time `json:"to"`
		Total struct {
			Verified, Scope, Mode, Limited, Network int64
		} `json:"total"`
		Buckets []struct {
			Start  time.Time `json:"start"`
			Counts struct {
				Verified, Scope, Limited, Network int64
			} `json:"counts"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		t.Fatalf("-json: %v\n%s", err, r.stdout)
	}
	if u.KeyID != rec.ID || u.Per != "hour" || len(u.Buckets) != 3 || u.To.Sub(u.From) != 3*time.Hour ||
		u.Total.Verified != 5 || u.Total.Scope != 2 || u.Total.Limited != 1 || u.Total.Network != 1 || u.Total.Mode != 0 {
		t.Fatalf("-hours 3 -json = %+v", u)
	}
	var verified int64
	for i, b := range u.Buckets {
		if !b.Start.Equal(u.From.Add(time.Duration(i) * time.Hour)) {
			t.Errorf("bucket %d starts at %v", i, b.Start)
		}
		verified += b.Counts.Verified
	}
	if verified != 5 || !u.To.After(before) {
		t.Errorf("-json: buckets add up to %d verified; span %v to %v", verified, u.From, u.To)
	}
	if !strings.Contains(r.stdout, `"per": "hour"`) {
		t.Errorf("-json:\n%s", r.stdout)
	}

	// A key never used: zeros. Another owner's key: not found.
	got = rows(t, e.ok("", "usage", "-owner", "acct_1", "-hours", "2", idle.ID.String()).stdout, "HOUR VERIFIED REFUSED SCOPE MODE LIMITED NETWORK")
	if len(got) != 3 || strings.Join(got[2], " ") != "total 0 0 0 0 0 0" || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:00Z$`).MatchString(got[0][0]) {
		t.Errorf("usage of an idle key: %q", got)
	}
	e.fails(1, "keyward: key not found (owner acct_2, key "+rec.ID.String()+")", "", "usage", "-owner", "acct_2", rec.ID.String())
}

// TestResolveActor checks where the actor's ID comes from: -actor, else
// $KEYWARD_ACTOR, else the OS user's name, else nothing.
func TestResolveActor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    *string
		env     string
		osUser  string
		osErr   error
		want    string
		wantErr string
	}{
		{name: "flag", flag: ptr("alice"), env: "bob", osUser: "carol", want: "alice"},
		{name: "empty flag", flag: ptr(""), env: "bob", osUser: "carol", want: ""},
		{name: "env", env: "bob", osUser: "carol", want: "bob"},
		{name: "os user", osUser: "carol", want: "carol"},
		{name: "no os user", osErr: errors.New("unknown userid"), want: ""},
		{name: "os user unfit", osUser: "bad\nname", want: ""},
		{name: "bad flag", flag: ptr("bad\nname"), wantErr: `keyward: invalid actor: -actor "bad\nname": the ID holds control characters`},
		{name: "bad env", env: strings.Repeat("é", 200), wantErr: "keyward: invalid actor: $KEYWARD_ACTOR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cli{
				getenv: func(k string) string {
					if k == actorEnv {
						return tc.env
					}
					return ""
				},
				osUser: func() (string, error) { return tc.osUser, tc.osErr },
			}
			if tc.flag != nil {
				c.actor.Set(*tc.flag)
			}
			got, err := c.resolveActor()
			if tc.wantErr != "" {
				if msg, code := describe(err); code != exitUsage || !strings.HasPrefix(msg, tc.wantErr) {
					t.Fatalf("resolveActor() error %q (exit %d), want exit 2 and %q", msg, code, tc.wantErr)
				}
				return
			}
			if err != nil || got != (audit.Actor{Type: audit.TypeCLI, ID: tc.want}) {
				t.Errorf("resolveActor() = %+v, %v; want cli %q", got, err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
