package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/pgtest"
)

// The PostgreSQL tests run on a throwaway cluster (see internal/pgtest);
// without PostgreSQL they skip, except under CI=true where they fail.
func TestMain(m *testing.M) { pgtest.Main(m) }

// withParam returns dsn, a URL or key=value pairs, with one more parameter.
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// connections returns the number of server connections of an application.
func connections(t *testing.T, db *sql.DB, app string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgres runs the example twice on one database, as two instances of
// a service: keys printed by either work on both, and a revocation through
// one is refused by the other on its next request.
func TestPostgres(t *testing.T) {
	db := pgtest.DB(t)
	schema := pgtest.Schema(t, db)
	app := "checkout_" + strings.ToLower(rand.Text()[:10]) // to find the instances' connections
	dsn := withParam(pgtest.SearchPath(pgtest.DSN(t), schema), "application_name", app)
	const password = "operators' password, for the test"

	first := startInstance(t, config{addr: "127.0.0.1:0", postgres: dsn, dashboardPassword: password})
	second := startInstance(t, config{addr: "127.0.0.1:0", postgres: dsn, dashboardPassword: password})
	for _, in := range []*instance{first, second} {
		if !strings.Contains(in.banner, "its keys in PostgreSQL") || strings.Contains(in.banner, "gone when the server stops") {
			t.Errorf("the banner does not say the keys are in PostgreSQL:\n%s", in.banner)
		}
		if strings.Contains(in.banner, dsn) {
			t.Errorf("the banner prints the connection string:\n%s", in.banner)
		}
	}
	var rows int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+schema+".api_keys").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 4 {
		t.Errorf("%d rows in %s.api_keys, want the 4 demo keys of both runs", rows, schema)
	}

	t.Run("keys work on both", func(t *testing.T) {
		for _, printer := range []*instance{first, second} {
			for _, k := range printer.keys {
				for _, in := range []*instance{first, second} {
					r := runCurlLine(t, strings.Replace(k.curl, printer.url, in.url, 1))
					if r.status != http.StatusOK && r.status != http.StatusCreated {
						t.Errorf("a key printed by %s, on %s: %d %v", printer.url, in.url, r.status, r.body)
					}
				}
			}
		}
	})

	t.Run("revoked through one, refused by the other", func(t *testing.T) {
		raw := first.keys[0].raw
		if r := call(t, "GET", second.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
			t.Fatalf("before revocation, on the second: %d", r.status)
		}
		r := dashCall(t, "POST", first.dash.url+"keys/"+first.keyID(t, 0)+"/revoke", "ada", password, "")
		if r.status != http.StatusOK {
			t.Fatalf("revoking through the first's dashboard: %d %s", r.status, r.raw)
		}
		r = call(t, "GET", second.url+"/api/v1/links", raw, "")
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the second's next request: %d %q", r.status, r.challenge)
		}
		// The second's dashboard shows it revoked, from the database.
		r = dashCall(t, "GET", second.dash.url+"keys/"+first.keyID(t, 0), "grace", password, "")
		if r.status != http.StatusOK || r.body["status"] != "revoked" {
			t.Errorf("the key on the second's dashboard: %d %s", r.status, r.raw)
		}
	})

	t.Run("shutdown writes last use, then closes the pool", func(t *testing.T) {
		used := second.keys[0]
		id := findKey(t, second.srv.keys, used.raw).ID
		before := time.Now().UTC().Add(-time.Second)
		if r := call(t, "GET", first.url+"/api/v1/customers", used.raw, ""); r.status != http.StatusOK {
			t.Fatalf("GET customers: %d", r.status)
		}
		if n := connections(t, db, app); n == 0 {
			t.Fatal("no connection of the instances in pg_stat_activity; the test cannot see them")
		}
		first.stop(t)
		second.stop(t)
		var lastUsed sql.NullTime
		err := db.QueryRowContext(t.Context(), "SELECT last_used_at FROM "+schema+".api_keys WHERE id = $1", id).Scan(&lastUsed)
		if err != nil {
			t.Fatal(err)
		}
		if !lastUsed.Valid || lastUsed.Time.Before(before) {
			t.Errorf("last_used_at = %v after shutdown, want the request's time", lastUsed)
		}
		// A server connection ends shortly after its client closes it.
		deadline := time.Now().Add(10 * time.Second)
		for connections(t, db, app) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still open 10s after shutdown", connections(t, db, app))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestPostgresUnavailable checks that start fails, clearly and without
// printing the connection string, when PostgreSQL cannot be used.
func TestPostgresUnavailable(t *testing.T) {
	// A port on which nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	const secret = "pg-password-never-shown"

	for _, tc := range []struct {
		name, dsn string
		want      []string
	}{
		{"unreachable URL", "postgres://checkout:" + secret + "@127.0.0.1:" + port + "/checkout?sslmode=disable",
			[]string{"connecting to PostgreSQL", "connection refused"}},
		{"unreachable key=value", "host=127.0.0.1 port=" + port + " user=checkout password=" + secret + " dbname=checkout sslmode=disable",
			[]string{"connecting to PostgreSQL", "connection refused"}},
		{"unparsable", "postgres://checkout:" + secret + "@127.0.0.1:port/checkout",
			[]string{"connection string (-postgres or DATABASE_URL) cannot be parsed"}},
		{"unknown parameter value", "host=127.0.0.1 password=" + secret + " sslmode=sometimes",
			[]string{"cannot be parsed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			srv, err := start(ctx, config{addr: "127.0.0.1:0", postgres: tc.dsn}, &out, slog.New(slog.DiscardHandler))
			if err == nil {
				srv.shutdown(&out)
				t.Fatal("start succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %q", err)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q before failing", out.String())
			}
		})
	}
}
