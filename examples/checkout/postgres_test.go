package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
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
// a service: the second's start revokes the demo keys the first printed,
// which the first then refuses too; keys printed by the second work on
// both; and a revocation through one is refused by the other on its next
// request.
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
	if !strings.Contains(second.banner, "This start revoked 4 demo keys of earlier starts") {
		t.Errorf("the second banner does not say it revoked the first's 4 demo keys:\n%s", second.banner)
	}
	var rows, active int
	err := db.QueryRowContext(t.Context(), "SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL) FROM "+schema+".api_keys").Scan(&rows, &active)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 8 || active != 4 {
		t.Errorf("%d rows in %s.api_keys, %d not revoked; want the 8 demo keys of both runs, the second's 4 active", rows, schema, active)
	}

	t.Run("the second's keys work on both, the first's on neither", func(t *testing.T) {
		for _, printer := range []*instance{first, second} {
			for _, k := range printer.keys {
				for _, in := range []*instance{first, second} {
					r := runCurlLine(t, strings.Replace(k.curl, printer.url, in.url, 1))
					works := r.status == http.StatusOK || r.status == http.StatusCreated
					if want := printer == second; works != want || !works && r.status != http.StatusUnauthorized {
						t.Errorf("%s's %s key printed by %s, on %s: %d %v", k.merchant, k.label, printer.url, in.url, r.status, r.body)
					}
				}
			}
		}
	})

	t.Run("revoked through one, refused by the other", func(t *testing.T) {
		raw := key(t, second.keys, "acme", "all scopes").raw
		id := second.keyID(t, "acme", "all scopes")
		if r := call(t, "GET", second.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
			t.Fatalf("before revocation, on the second: %d", r.status)
		}
		r := dashCall(t, "POST", first.dash.url+"keys/"+id+"/revoke", "ada", password, "")
		if r.status != http.StatusOK {
			t.Fatalf("revoking through the first's dashboard: %d %s", r.status, r.raw)
		}
		r = call(t, "GET", second.url+"/api/v1/links", raw, "")
		if r.status != http.StatusUnauthorized || r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the second's next request: %d %q", r.status, r.challenge)
		}
		// The second's dashboard shows it revoked, from the database.
		r = dashCall(t, "GET", second.dash.url+"keys/"+id, "carol", password, "")
		if r.status != http.StatusOK || r.body["status"] != "revoked" {
			t.Errorf("the key on the second's dashboard: %d %s", r.status, r.raw)
		}
	})

	t.Run("shutdown writes last use, then closes the pool", func(t *testing.T) {
		used := key(t, second.keys, "globex", "all scopes")
		id := findKey(t, second.srv.keys, "globex", used.raw).ID
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

// activeKeys returns, from the database, the active keys of each merchant
// by their demo mark ("" for keys without one).
func activeKeys(t *testing.T, dsn string) map[string]map[string][]apikey.Record {
	t.Helper()
	st, closeStore, err := openStore(t.Context(), config{postgres: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	keys, err := keyward.New(st)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	out := map[string]map[string][]apikey.Record{}
	for _, m := range merchants {
		out[m.id] = map[string][]apikey.Record{}
		opts := keyward.ListOptions{Status: apikey.Active}
		for {
			page, err := keys.Owner(m.id).List(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range page.Keys {
				tag, _ := rec.Metadata.Get(demoMetadataKey)
				out[m.id][tag] = append(out[m.id][tag], rec)
			}
			if page.Next == "" {
				break
			}
			opts.Cursor = page.Next
		}
	}
	return out
}

// TestPostgresRestart starts, stops and starts the example again on one
// database: after every start, each merchant has exactly its two active
// demo keys, the ones that start printed, the demo keys of earlier starts
// are refused, and the merchants' own keys are untouched.
func TestPostgresRestart(t *testing.T) {
	dsn := pgtest.SearchPath(pgtest.DSN(t), pgtest.Schema(t, pgtest.DB(t)))
	const password = "operators' password, for the test"
	cfg := config{addr: "127.0.0.1:0", postgres: dsn, dashboardPassword: password}

	// A start that cannot listen creates no keys.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if srv, err := start(t.Context(), config{addr: busy.Addr().String(), postgres: dsn}, io.Discard, slog.New(slog.DiscardHandler)); err == nil {
		srv.shutdown(io.Discard)
		t.Fatal("start succeeded on a busy address")
	}
	for merchant, byTag := range activeKeys(t, dsn) {
		if len(byTag) != 0 {
			t.Errorf("%s has keys after a start that could not listen: %v", merchant, byTag)
		}
	}

	// The operators' own keys, one per merchant, made on the first run: a
	// test key, as the demo keys are, with metadata of its own, and a live
	// key without any.
	own := map[string]string{} // merchant -> raw key
	var earlier []printedKey   // demo keys printed by earlier starts
	const starts = 3
	for run := 1; run <= starts; run++ {
		in := startInstance(t, cfg)
		if run == 1 {
			for merchant, p := range map[string]keyward.CreateParams{
				"acme": {Name: "WooCommerce plugin", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead),
					Metadata: map[string]string{"integration": "woocommerce"}},
				"globex": {Name: "Backend", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)},
			} {
				sec, _, err := in.srv.keys.Owner(merchant).Create(t.Context(), p)
				if err != nil {
					t.Fatal(err)
				}
				own[merchant] = sec.Reveal()
			}
		}
		if said := strings.Contains(in.banner, "This start revoked 4 demo keys of earlier starts"); said != (run > 1) {
			t.Errorf("start %d: the banner says it revoked 4 keys: %v:\n%s", run, said, in.banner)
		}

		active := activeKeys(t, dsn)
		for _, m := range merchants {
			for _, spec := range demoKeySpecs {
				recs := active[m.id][spec.tag]
				printed := key(t, in.keys, m.id, spec.label)
				if len(recs) != 1 || recs[0].Prefix != apikey.Default.DisplayPrefix(printed.raw) {
					t.Errorf("start %d: %s has %d active %s demo keys, want one, the printed %s",
						run, m.id, len(recs), spec.label, apikey.Default.DisplayPrefix(printed.raw))
				}
			}
			if got := len(active[m.id][""]); got != 1 {
				t.Errorf("start %d: %s has %d active keys of its own, want the 1 made at the first start", run, m.id, got)
			}
			if n := len(active[m.id]); n != len(demoKeySpecs)+1 {
				t.Errorf("start %d: %s's active keys have %d demo marks, want %d and none", run, m.id, n, len(demoKeySpecs))
			}
		}
		for merchant, raw := range own {
			if r := call(t, "GET", in.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
				t.Errorf("start %d: %s's own key is refused", run, merchant)
			}
		}
		for _, k := range earlier {
			if r := call(t, "GET", in.url+"/api/v1/links", k.raw, ""); r.status != http.StatusUnauthorized {
				t.Errorf("start %d: %s's %s key of an earlier start: %d, want 401", run, k.merchant, k.label, r.status)
			}
		}
		for _, k := range in.keys {
			if r := runCurlLine(t, k.curl); r.status != http.StatusOK && r.status != http.StatusCreated {
				t.Errorf("start %d: %s's %s key: %d", run, k.merchant, k.label, r.status)
			}
		}
		earlier = append(earlier, in.keys...)
		in.stop(t)
	}
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
