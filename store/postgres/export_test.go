package postgres

import (
	"context"

	"github.com/keyward/keyward/store"
)

// LockKey is the advisory lock key Migrate takes for a table.
func LockKey(name string) int64 {
	t, err := parseTable(name)
	if err != nil {
		panic(err)
	}
	return t.lockKey()
}

// ListQuery returns the SQL and the arguments of the query that
// s.List(ctx, owner, opts) runs.
func ListQuery(s *Store, owner string, opts store.ListOptions) (string, []any, error) {
	query, args, _, err := s.listQuery(owner, opts)
	return query, args, err
}

// PositionAhead returns the change-feed position pos with its snapshot
// moved n transactions later, as a position taken on a database whose
// transaction IDs had gone further would be.
func PositionAhead(pos string, n uint64) string {
	s, err := parsePosition(pos)
	if err != nil {
		panic(err)
	}
	s.xmin += n
	s.xmax += n
	for i := range s.xip {
		s.xip[i] += n
	}
	return s.position()
}

// ChangesQuery returns the SQL of a poll of s's change feed, and
// PositionSnapshot the argument it takes for the position pos.
func ChangesQuery(s *Store) string { return s.q.changes }

// PositionSnapshot returns the snapshot of the change-feed position pos,
// in PostgreSQL's text form: the argument of [ChangesQuery].
func PositionSnapshot(pos string) string {
	snap, err := parsePosition(pos)
	if err != nil {
		panic(err)
	}
	return snap.String()
}

// TripsSlack is how many trips of a key beyond store.MaxTrips RecordTrip
// lets accumulate before it deletes them.
const TripsSlack = tripsSlack

// WithBeforeAppend returns a store like s that runs f in each change's
// transaction, between the statements of the change and that of its audit
// entry: an error f returns fails the change there.
func WithBeforeAppend(s *Store, f func(ctx context.Context, tx DB, op string) error) *Store {
	c := *s
	c.beforeAppend = f
	return &c
}

// AuditQueries returns the SQL of the queries of s's Audit (of an owner's
// trail, of a key's), AuditChain, Usage and PruneUsage.
func AuditQueries(s *Store) (page, keyPage, chain, usage, prune string) {
	return s.q.auditPage, s.q.auditKeyPage, s.q.auditChain, s.q.usage, s.q.pruneUsage
}
