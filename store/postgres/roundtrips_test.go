package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/pgtest"
)

// A tripCounter counts what a pool sends the server: every statement, and
// every BEGIN, COMMIT and ROLLBACK. Once the driver has prepared a
// statement, which it does on its first use and then caches per
// connection, each is one round trip.
type tripCounter struct {
	n atomic.Int64

	mu  sync.Mutex
	log []string // the statements, when logging
	on  bool
}

// Load returns the count so far.
func (c *tripCounter) Load() int64 { return c.n.Load() }

// record counts one round trip, and logs it if asked.
func (c *tripCounter) record(what string) {
	c.n.Add(1)
	c.mu.Lock()
	if c.on {
		c.log = append(c.log, what)
	}
	c.mu.Unlock()
}

// logging starts keeping the statements sent, and returns a function that
// stops and returns them.
func (c *tripCounter) logging() func() []string {
	c.mu.Lock()
	c.on, c.log = true, nil
	c.mu.Unlock()
	return func() []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.on = false
		return c.log
	}
}

// countingPool returns a new pool to the test server, closed when tb ends,
// that counts what it sends.
func countingPool(tb testing.TB) (*sql.DB, *tripCounter) {
	tb.Helper()
	cfg, err := pgx.ParseConfig(pgtest.DSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := new(tripCounter)
	db := sql.OpenDB(countingConnector{stdlib.GetConnector(*cfg), c})
	tb.Cleanup(func() { db.Close() })
	return db, c
}

type countingConnector struct {
	driver.Connector
	c *tripCounter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn.(*stdlib.Conn), cc.c}, nil
}

// countingConn is pgx's connection, with every method database/sql looks
// for (pgx's own, promoted), counting the ones that reach the server.
type countingConn struct {
	*stdlib.Conn
	c *tripCounter
}

func (cc *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cc.c.record(firstLine(query))
	return cc.Conn.ExecContext(ctx, query, args)
}

func (cc *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cc.c.record(firstLine(query))
	return cc.Conn.QueryContext(ctx, query, args)
}

func (cc *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	cc.c.record("BEGIN")
	tx, err := cc.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{tx, cc.c}, nil
}

type countingTx struct {
	driver.Tx
	c *tripCounter
}

func (t countingTx) Commit() error {
	t.c.record("COMMIT")
	return t.Tx.Commit()
}

func (t countingTx) Rollback() error {
	t.c.record("ROLLBACK")
	return t.Tx.Rollback()
}

// firstLine is the first line of a statement, for logs.
func firstLine(query string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(query), "\n")
	return line
}
