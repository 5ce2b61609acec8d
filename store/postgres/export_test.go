package postgres

import "github.com/keyward/keyward/store"

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
