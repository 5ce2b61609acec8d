package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// A fact is one object that a migration creates and no earlier migration
// does, by which adopt tells, tool-agnostically, that the migration was
// applied. Objects a migration creates with IF NOT EXISTS, which the
// table's owner may make beforehand (0004's and 0005's indexes, 0005's
// column), are not facts: their presence says nothing of the migration.
type fact struct {
	what  string // as an error reports it, such as `column "canary"`
	query string // a SELECT of one boolean
	args  []any
}

// facts returns the facts of migration version, for table t; none for a
// version it does not know, which adopt then refuses to guess about.
func (t table) facts(version int) []fact {
	column := func(name string) fact {
		return fact{"column " + quote(name), `SELECT EXISTS (SELECT 1 FROM pg_attribute
			WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)`,
			[]any{t.qualified, name}}
	}
	index := func(suffix string) fact {
		return fact{"index " + t.qualifiedObject(suffix), `SELECT EXISTS (SELECT 1 FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1) AND c.relname = $2)`,
			[]any{t.qualified, t.name + "_" + suffix}}
	}
	trigger := func(suffix string) fact {
		return fact{"trigger " + t.object(suffix), `SELECT EXISTS (SELECT 1 FROM pg_trigger
			WHERE tgrelid = to_regclass($1) AND tgname = $2)`, []any{t.qualified, t.name + "_" + suffix}}
	}
	constraint := func(suffix string) fact {
		return fact{"constraint " + t.object(suffix), `SELECT EXISTS (SELECT 1 FROM pg_constraint
			WHERE conrelid = to_regclass($1) AND conname = $2)`, []any{t.qualified, t.name + "_" + suffix}}
	}
	function := func(suffix string) fact {
		return fact{"function " + t.qualifiedObject(suffix) + "()", `SELECT to_regprocedure($1) IS NOT NULL`,
			[]any{t.qualifiedObject(suffix) + "()"}}
	}
	// mentioning: the function's body, as a later CREATE OR REPLACE left
	// it, names word.
	mentioning := func(suffix, word string) fact {
		return fact{"function " + t.qualifiedObject(suffix) + "() setting " + word, `SELECT coalesce(
			(SELECT strpos(prosrc, $2) > 0 FROM pg_proc WHERE oid = to_regprocedure($1)), false)`,
			[]any{t.qualifiedObject(suffix) + "()", word}}
	}
	// procedure: a function taking arguments, by its signature.
	procedure := func(suffix, args string) fact {
		sig := t.qualifiedObject(suffix) + "(" + args + ")"
		return fact{"function " + sig, `SELECT to_regprocedure($1) IS NOT NULL`, []any{sig}}
	}
	// indexOn and triggerOn: an index or a trigger of another table of the
	// store, <table>_<on>.
	indexOn := func(on, suffix string) fact {
		return fact{"index " + t.qualifiedObject(suffix), `SELECT EXISTS (SELECT 1 FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1) AND c.relname = $2)`,
			[]any{t.qualifiedObject(on), t.name + "_" + suffix}}
	}
	triggerOn := func(on, suffix string) fact {
		return fact{"trigger " + t.object(suffix) + " on " + t.qualifiedObject(on), `SELECT EXISTS (SELECT 1 FROM pg_trigger
			WHERE tgrelid = to_regclass($1) AND tgname = $2)`, []any{t.qualifiedObject(on), t.name + "_" + suffix}}
	}
	relation := func(suffix string) fact {
		return fact{"table " + t.qualifiedObject(suffix), `SELECT to_regclass($1) IS NOT NULL`,
			[]any{t.qualifiedObject(suffix)}}
	}
	columns := func(names ...string) []fact {
		var fs []fact
		for _, n := range names {
			fs = append(fs, column(n))
		}
		return fs
	}
	switch version {
	case 1:
		return append(columns("id", "hash", "prefix", "name", "mode", "scopes", "created_at",
			"last_used_at", "revoked_at", "expires_at"), index("hash_key"))
	case 2:
		return []fact{function("guard"), trigger("guard"), trigger("guard_delete"), trigger("guard_truncate")}
	case 3:
		return []fact{column("changed_at"), index("changed_at_idx"), function("stamp_change"),
			trigger("stamp_change"), trigger("stamp_insert")}
	case 4:
		return append(columns("owner", "metadata", "replaces", "replaced_by", "idempotency_key", "idempotency_request"),
			constraint("owner_check"), constraint("idempotency_check"), index("idempotency_key"))
	case 5:
		return []fact{mentioning("stamp_change", "changed_xid")}
	case 6:
		return append(columns("revoked_reason", "exposed_at", "exposed_source", "exposed_url", "canary"),
			constraint("reason_check"), constraint("exposure_check"), relation("trips"))
	case 7:
		return []fact{column("policy"), constraint("policy_check")}
	case 8:
		return []fact{relation("audit"), relation("audit_heads"), indexOn("audit", "audit_key_idx"),
			function("audit_refuse"), triggerOn("audit", "audit_append_only"), procedure("audit_append", "text, text[]"),
			relation("usage"), indexOn("usage", "usage_hour_idx")}
	}
	return nil
}

// adopt is Migrate's answer to a table that exists while the version table
// records no migration: the table was made by another tool, goose or
// golang-migrate, from the files of [Migrations]. It finds which
// migrations are applied by looking for the objects each creates, and
// records them in the version table, so that Migrate applies only the
// others. The applied ones must be 1 to k, each whole; otherwise adopt
// changes nothing and fails with an error naming what it found and what
// is missing. It returns the versions it recorded.
func adopt(ctx context.Context, tx *sql.Tx, t table, ms []migration, versions string) (map[int]bool, error) {
	type state struct {
		m              migration
		found, missing []string
	}
	states := make([]state, len(ms))
	for i, m := range ms {
		fs := t.facts(m.version)
		if len(fs) == 0 {
			return nil, fmt.Errorf("postgres: migrate: the table %s exists but %s records no migration, and this version of keyward cannot tell whether %s is applied; nothing was changed",
				t.qualified, versions, m.name)
		}
		states[i].m = m
		for _, f := range fs {
			var ok bool
			if err := tx.QueryRowContext(ctx, f.query, f.args...).Scan(&ok); err != nil {
				return nil, failed(ctx, "migrate: inspecting the schema of "+t.qualified, err)
			}
			if ok {
				states[i].found = append(states[i].found, f.what)
			} else {
				states[i].missing = append(states[i].missing, f.what)
			}
		}
	}
	refuse := func(detail string) error {
		return fmt.Errorf("postgres: migrate: the table %s exists but %s records no migration, and Migrate cannot adopt it as keyward's migrations 1 to k, applied by another tool: %s; nothing was changed",
			t.qualified, versions, detail)
	}
	k := 0 // the migrations applied are 1 to k
	for i, s := range states {
		switch {
		case len(s.found) > 0 && len(s.missing) > 0:
			return nil, refuse(fmt.Sprintf("%s is partly applied (found %s; missing %s)",
				s.m.name, strings.Join(s.found, ", "), strings.Join(s.missing, ", ")))
		case len(s.missing) == 0 && k < i:
			gap := states[k]
			return nil, refuse(fmt.Sprintf("%s is applied (found %s) but %s is not (missing %s)",
				s.m.name, strings.Join(s.found, ", "), gap.m.name, strings.Join(gap.missing, ", ")))
		case len(s.missing) == 0:
			k = i + 1
		}
	}
	if k == 0 {
		return nil, refuse(fmt.Sprintf("%s is not applied (missing %s)",
			states[0].m.name, strings.Join(states[0].missing, ", ")))
	}
	applied := map[int]bool{}
	for _, s := range states[:k] {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+versions+" (version, name) VALUES ($1, $2)",
			s.m.version, s.m.name); err != nil {
			return nil, failed(ctx, "migrate: recording "+s.m.name+", applied by another tool", err)
		}
		applied[s.m.version] = true
	}
	return applied, nil
}
