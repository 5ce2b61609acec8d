// Package postgres is a [store.Store] that keeps API keys in PostgreSQL,
// through database/sql.
package postgres
