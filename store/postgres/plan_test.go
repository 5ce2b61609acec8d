package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/postgres"
)

// One owner's first page, in a table of a million keys of 10,000 owners,
// is read by the store's List query as one scan of the owner index that
// stops at the page: no Sort and no Seq Scan, whether PostgreSQL plans the
// query for the values at hand or, as it does for a statement the driver
// prepared once it has run five times, for any values. So is the next
// page, through its cursor, and a page of filtered keys.
//
// When a page may hold every key of the owner (the default page of 100
// here, for owners of 100 keys), a plan for the values at hand may instead
// read the owner's keys through a bitmap scan of the same index and sort
// them: its cost is bounded by the owner's keys, which fit in the page.
// That page is checked for reading the owner index alone; its plan is
// logged.
func TestListOwnerPagePlan(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million keys")
	}
	start := time.Now()
	db := benchDB(t) // seeds the table once per process, and analyzes it
	t.Logf("table of %d keys ready in %v", benchKeys, time.Since(start).Round(time.Millisecond))
	s, err := postgres.New(db, postgres.WithTable(benchTable))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	owner := benchkeys.PostgresOwner(4242)
	const perOwner = benchKeys / benchkeys.PostgresOwners

	// The store's pages of 25: all of the owner's keys, newest first, once.
	const limit = 25
	var (
		all   []apikey.Record
		pages []store.Page
	)
	for opts := (store.ListOptions{Limit: limit}); ; {
		page, err := s.List(ctx, owner, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page)
		all = append(all, page.Records...)
		if page.Next == "" || len(pages) > perOwner/limit {
			break
		}
		opts.Cursor = page.Next
	}
	if len(pages) != perOwner/limit || len(all) != perOwner {
		t.Fatalf("%d pages of %d keys in all, want %d pages of %d", len(pages), len(all), perOwner/limit, limit)
	}
	for i, rec := range all {
		if rec.Owner != owner {
			t.Fatalf("List(%s) returned a key of %s", owner, rec.Owner)
		}
		if i > 0 && !rec.CreatedAt.Before(all[i-1].CreatedAt) {
			t.Fatalf("List(%s) is not newest first at %d", owner, i)
		}
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const index = "api_keys_owner_created_idx"
	for _, page := range []struct {
		name     string
		opts     store.ListOptions
		holdsAll bool // the page may hold every key of the owner
	}{
		{"first page", store.ListOptions{Limit: limit}, false},
		{"next page", store.ListOptions{Limit: limit, Cursor: pages[0].Next}, false},
		{"first page of active live keys", store.ListOptions{Limit: 20, Mode: apikey.Live, Status: apikey.Active, Now: time.Now()}, false},
		{"default page", store.ListOptions{}, true},
	} {
		query, args, err := postgres.ListQuery(s, owner, page.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(page.name+"/"+mode, func(t *testing.T) {
				plan := explain(t, conn, query, args, mode)
				strict := planProblems(plan, index, false)
				if page.holdsAll && len(strict) > 0 {
					t.Logf("a page that may hold all the owner's keys, planned %s: %s", mode, strings.Join(strict, "; "))
					strict = planProblems(plan, index, true)
				}
				if len(strict) > 0 {
					t.Errorf("plan of\n%s\n%s:\n\t%s\n%s", query, mode, strings.Join(strict, "\n\t"), plan)
				}
			})
		}
	}

	// The check is not vacuous: a query that must sort and one that reads
	// every owner's keys are caught, and so is a bitmap scan of the owner
	// index, allowed only for a page that may hold all the owner's keys.
	query, args, _ := postgres.ListQuery(s, owner, store.ListOptions{Limit: limit})
	for name, bad := range map[string]string{
		"sort":     strings.Replace(query, "ORDER BY created_at DESC, id DESC", "ORDER BY name", 1),
		"no owner": strings.Replace(query, "WHERE owner = $1", "WHERE owner <> $1", 1),
	} {
		if bad == query {
			t.Fatalf("%s: the list query changed shape:\n%s", name, query)
		}
		if problems := planProblems(explain(t, conn, bad, args, "force_custom_plan"), index, false); len(problems) == 0 {
			t.Errorf("the plan check found nothing wrong with a query that should %s", name)
		}
	}
	if _, err := conn.ExecContext(ctx, "SET enable_indexscan = off"); err != nil {
		t.Fatal(err)
	}
	bitmap := explain(t, conn, query, args, "force_custom_plan")
	if _, err := conn.ExecContext(ctx, "RESET enable_indexscan"); err != nil {
		t.Fatal(err)
	}
	if len(planProblems(bitmap, index, false)) == 0 || len(planProblems(bitmap, index, true)) != 0 {
		t.Errorf("the plan check does not tell a bitmap scan of the owner index:\n%s", bitmap)
	}
}

// explain returns the JSON plan of query with args, planned for these
// values (plan_cache_mode force_custom_plan) or for any
// (force_generic_plan), as PostgreSQL plans a prepared statement.
func explain(t *testing.T, conn *sql.Conn, query string, args []any, planCacheMode string) string {
	t.Helper()
	ctx := context.Background()
	name := "kwtest_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	literals := make([]string, len(args))
	for i, a := range args {
		literals[i] = literal(t, a)
	}
	var plan string
	for _, q := range []string{
		"SET plan_cache_mode = " + planCacheMode,
		"PREPARE " + name + " AS " + query,
		"EXPLAIN (FORMAT JSON) EXECUTE " + name + "(" + strings.Join(literals, ", ") + ")",
		"DEALLOCATE " + name,
		"RESET plan_cache_mode",
	} {
		var err error
		if strings.HasPrefix(q, "EXPLAIN") {
			err = conn.QueryRowContext(ctx, q).Scan(&plan)
		} else {
			_, err = conn.ExecContext(ctx, q)
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return plan
}

// literal writes a query argument of the list query as SQL.
func literal(t *testing.T, v any) string {
	switch v := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case int:
		return fmt.Sprint(v)
	case time.Time:
		return "'" + v.UTC().Format(time.RFC3339Nano) + "'"
	case uuid.UUID:
		return "'" + v.String() + "'"
	}
	t.Fatalf("no SQL literal for %T", v)
	return ""
}

// A planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Plans     []planNode `json:"Plans"`
}

// planProblems returns what keeps plan from being a Limit over one scan of
// index that reads only the owner's keys, in the index's order: any Seq
// Scan, a scan of another index, an index condition without the owner,
// and, unless sortOwner allows a bitmap scan of index and a Sort of its
// rows, any Sort or bitmap scan. A Result over one node is allowed: a
// projection, which computes the record's columns (the extras column of
// metadata and leaked keys is one expression) after a Sort, for the rows
// the Limit passes alone.
func planProblems(plan, index string, sortOwner bool) []string {
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		return []string{fmt.Sprintf("unreadable plan (%v)", err)}
	}
	var problems []string
	top := root[0].Plan
	if top.NodeType != "Limit" {
		problems = append(problems, "the top node is "+top.NodeType+", not Limit")
	}
	scans := 0
	var walk func(n planNode)
	walk = func(n planNode) {
		switch {
		case n.NodeType == "Index Scan" || sortOwner && n.NodeType == "Bitmap Index Scan":
			scans++
			if n.IndexName != index {
				problems = append(problems, "a scan of index "+n.IndexName)
			}
			if !strings.Contains(n.IndexCond, "owner =") {
				problems = append(problems, "an index condition without the owner: "+n.IndexCond)
			}
		case n.NodeType == "Limit":
		case n.NodeType == "Result" && len(n.Plans) == 1:
		case sortOwner && (n.NodeType == "Sort" || n.NodeType == "Bitmap Heap Scan"):
		default:
			problems = append(problems, "a node "+n.NodeType)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(top)
	if scans != 1 {
		problems = append(problems, fmt.Sprintf("%d scans of an index, want 1", scans))
	}
	return problems
}

// A poll of the change feed is one scan of the index on changed_xid, from
// the position's oldest transaction in progress, in a table of 100,000
// keys of which 20,000 changed, each owner's keys in a transaction of
// their own: no Seq Scan and no other index, whether PostgreSQL plans the
// query for the position at hand or for any.
func TestChangesPlan(t *testing.T) {
	db := pgtest.DB(t)
	table := migrated(t, db)
	ctx := context.Background()
	const keys, owners, changedOwners = 100_000, 1_000, 200
	if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (id, owner, hash, prefix, name, mode, scopes, created_at)
SELECT gen_random_uuid(), 'acct_' || (i % $2), sha256(convert_to('plan key ' || i, 'UTF8')), 'ck_live_plan00', 'plan key', 'live',
	'{sessions:write,links:read}', now() - i * interval '1 millisecond'
FROM generate_series(1, $1::int) AS i`, keys, owners); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(db, postgres.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	_, early, err := s.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range changedOwners {
		if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET name = 'renamed' WHERE owner = $1", fmt.Sprint("acct_", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE "+table); err != nil {
		t.Fatal(err)
	}
	_, now, err := s.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// The query reads what it should: from the early position, every
	// changed key; from the current one, none.
	for _, c := range []struct {
		name string
		pos  string
		want int
	}{{"early", early, keys / owners * changedOwners}, {"current", now, 0}} {
		changed, _, err := s.Changes(ctx, c.pos)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != c.want {
			t.Fatalf("from the %s position, %d keys reported, want %d", c.name, len(changed), c.want)
		}
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	query := postgres.ChangesQuery(s)
	args := []any{postgres.PositionSnapshot(now)}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		t.Run(mode, func(t *testing.T) {
			plan := explain(t, conn, query, args, mode)
			if problems := changesPlanProblems(plan); len(problems) > 0 {
				t.Errorf("plan of\n%s\n%s:\n\t%s\n%s", query, mode, strings.Join(problems, "\n\t"), plan)
			}
		})
	}
	// A position from before every change (a poll held back by a
	// transaction that long) reads a fifth of the table: logged only.
	t.Logf("from the early position: %s", planShape(explain(t, conn, query, []any{postgres.PositionSnapshot(early)}, "force_custom_plan")))

	// The check is not vacuous: it catches a sequential scan.
	for _, q := range []string{"SET enable_indexscan = off", "SET enable_bitmapscan = off"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	seq := explain(t, conn, query, args, "force_custom_plan")
	if _, err := conn.ExecContext(ctx, "RESET ALL"); err != nil {
		t.Fatal(err)
	}
	if len(changesPlanProblems(seq)) == 0 {
		t.Errorf("the plan check found nothing wrong with a sequential scan:\n%s", seq)
	}
}

// changesPlanProblems returns what keeps plan from being one scan of the
// index on changed_xid, plain or bitmap, on a range of changed_xid: a scan
// of the table or of another index, or more than one scan.
func changesPlanProblems(plan string) []string {
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		return []string{fmt.Sprintf("unreadable plan (%v)", err)}
	}
	var problems []string
	scans := 0
	var walk func(n planNode)
	walk = func(n planNode) {
		switch n.NodeType {
		case "Index Scan", "Bitmap Index Scan":
			scans++
			if n.IndexName != "api_keys_changed_xid_idx" {
				problems = append(problems, "a scan of index "+n.IndexName)
			}
			if !strings.Contains(n.IndexCond, "changed_xid >=") {
				problems = append(problems, "an index condition that is not a range of changed_xid: "+n.IndexCond)
			}
		case "Nested Loop", "Result", "Bitmap Heap Scan":
		default:
			problems = append(problems, "a node "+n.NodeType)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root[0].Plan)
	if scans != 1 {
		problems = append(problems, fmt.Sprintf("%d scans of an index, want 1", scans))
	}
	return problems
}

// planShape returns the nodes of a JSON plan, parents first, with the
// index each scans.
func planShape(plan string) string {
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		return fmt.Sprintf("unreadable plan (%v)", err)
	}
	var nodes []string
	var walk func(n planNode)
	walk = func(n planNode) {
		node := n.NodeType
		if n.IndexName != "" {
			node += " on " + n.IndexName
		}
		nodes = append(nodes, node)
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root[0].Plan)
	return strings.Join(nodes, " > ")
}

// planNodes returns every node of a JSON plan, depth first.
func planNodes(t *testing.T, plan string) []planNode {
	t.Helper()
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil || len(root) != 1 {
		t.Fatalf("unreadable plan (%v): %s", err, plan)
	}
	var nodes []planNode
	var walk func(n planNode)
	walk = func(n planNode) {
		nodes = append(nodes, n)
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(root[0].Plan)
	return nodes
}

// The queries of the trail and of usage read through their indexes, in
// tables of 100,000 entries and 100,000 hours of counts, whether planned
// for the values at hand or for any: a page of an owner's trail and a walk
// of the chain are one scan of the primary key in its order (no Sort); a
// key's page reads the key's index; the usage of keys probes the primary
// key for each; pruning reads the index on hour. None reads a table
// whole.
func TestAuditPlans(t *testing.T) {
	db := pgtest.DB(t)
	s, table := migratedStore(t, db)
	ctx := context.Background()
	// 200 owners of 25 keys each; each key has 20 entries and 20 hours.
	for _, q := range []string{
		`INSERT INTO ` + table + `_audit (owner, seq, key_id, at, kind, body, prev, hash)
SELECT 'acct_' || (i % 200), i / 200 + 1, ('00000000-0000-4000-8000-' || lpad((i % 5000)::text, 12, '0'))::uuid,
	now(), 'key.updated', '{}', decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex')
FROM generate_series(0, 99999) AS i`,
		`INSERT INTO ` + table + `_usage (key_id, owner, hour, verified)
SELECT ('00000000-0000-4000-8000-' || lpad((i % 5000)::text, 12, '0'))::uuid, 'acct_' || (i % 200),
	date_trunc('hour', now()) - (i / 5000) * interval '1 hour', 1
FROM generate_series(0, 99999) AS i`,
		`ANALYZE ` + table + `_audit`,
		`ANALYZE ` + table + `_usage`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	page, keyPage, chainQuery, usage, prune := postgres.AuditQueries(s)
	key := func(k int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", k) }
	now := time.Now()
	tests := []struct {
		name, query string
		args        []any
		index       string // the index the plan must read
		sort        bool   // a Sort is allowed (of the rows read)
	}{
		{"an owner's page", page, []any{"acct_42", 1 << 62, 101}, "_audit_pkey", false},
		{"an owner's next page", page, []any{"acct_42", 300, 101}, "_audit_pkey", false},
		// A key has few entries (its changes), which PostgreSQL may read
		// through a bitmap scan of the key's index and sort.
		{"a key's page", keyPage, []any{"acct_42", 1 << 62, 101, key(42)}, "_audit_key_idx", true},
		{"a walk of the chain", chainQuery, []any{"acct_42", 100, 100}, "_audit_pkey", false},
		{"the usage of keys", usage, []any{"acct_42", "{" + key(42) + "," + key(242) + "}", now.Add(-48 * time.Hour), now},
			"_usage_pkey", true},
		{"pruning", prune, []any{now.Add(-19 * time.Hour)}, "_usage_hour_idx", false},
	}
	for _, tc := range tests {
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				args := make([]any, len(tc.args))
				for i, a := range tc.args {
					if n, ok := a.(int); ok && n == 1<<62 {
						a = fmt.Sprint(n) // literal() writes ints of int size
					}
					args[i] = a
				}
				plan := explain(t, conn, tc.query, args, mode)
				read := false
				for _, n := range planNodes(t, plan) {
					switch {
					case n.NodeType == "Seq Scan":
						t.Errorf("a Seq Scan:\n%s", plan)
					case n.NodeType == "Sort" && !tc.sort:
						t.Errorf("a Sort:\n%s", plan)
					case strings.HasSuffix(n.IndexName, tc.index):
						read = true
					}
				}
				if !read {
					t.Errorf("no scan of <table>%s:\n%s", tc.index, plan)
				}
			})
		}
	}
}
