package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/pgtest"
)

// A Server stops for real (its socket goes, its sessions end) and starts
// again on the same data.
func TestServerStopStart(t *testing.T) {
	srv := pgtest.NewServer(t)
	db, err := sql.Open("pgx", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx) // a session in progress across the stop
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop of a stopped server: %v", err)
	}
	if _, err := os.Stat(srv.Socket()); !os.IsNotExist(err) {
		t.Errorf("the socket %s is still there after Stop (stat: %v)", srv.Socket(), err)
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("a session begun before Stop still answers")
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	err = db.PingContext(short)
	cancelShort()
	if err == nil {
		t.Error("the server answers after Stop")
	}

	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var x int
	if err := db.QueryRowContext(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after Start: SELECT = %d, %v; want the data kept, 42", x, err)
	}
}
