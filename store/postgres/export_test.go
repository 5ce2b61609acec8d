package postgres

// LockKey is the advisory lock key Migrate takes for a table.
func LockKey(name string) int64 {
	t, err := parseTable(name)
	if err != nil {
		panic(err)
	}
	return t.lockKey()
}
