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
	"sync"
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
// a service, each with its verification cache (the default): the second's
// start revokes the demo keys the first printed, which the first then
// refuses too; keys printed by the second work on both; and a revocation
// through one is refused by the other within the cache's bound.
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

	t.Run("revoked through one, refused by the other within the bound", func(t *testing.T) {
		raw := key(t, second.keys, "acme", "all scopes").raw
		id := second.keyID(t, "acme", "all scopes")
		if r := call(t, "GET", second.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
			t.Fatalf("before revocation, on the second: %d", r.status)
		}
		r := dashCall(t, "POST", first.dash.url+"keys/"+id+"/revoke", "ada", password, "")
		if r.status != http.StatusOK {
			t.Fatalf("revoking through the first's dashboard: %d %s", r.status, r.raw)
		}
		// The second has the key in its cache; its feed tells it of the
		// revocation within the bound.
		r = refusedWithin(t, second.url+"/api/v1/links", raw, time.Now(), cacheBound)
		if r.challenge != `Bearer realm="checkout", error="invalid_token"` {
			t.Fatalf("the second's refusal: %d %q", r.status, r.challenge)
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

// refusedWithin requests url with raw, a key whose revocation elsewhere
// committed before revoked, until it gets 401, and returns that response. It fails the test
// if a request that began more than bound after revoked was let through:
// the key was served from a cache that had not heard of the revocation
// within its bound. Requests that began before may be let through.
func refusedWithin(t *testing.T, url, raw string, revoked time.Time, bound time.Duration) response {
	t.Helper()
	deadline := revoked.Add(bound + 30*time.Second) // a generous end for a slow machine: the check is above
	for {
		began := time.Now()
		r := call(t, "GET", url, raw, "")
		switch {
		case r.status == http.StatusUnauthorized:
			t.Logf("refused %v after the revocation", began.Sub(revoked).Round(time.Millisecond))
			return r
		case r.status != http.StatusOK && r.status != http.StatusTooManyRequests:
			// 429: the key is still valid, over its rate limit.
			t.Fatalf("GET %s with the revoked key: %d %s", url, r.status, r.raw)
		case began.Sub(revoked) > bound:
			t.Fatalf("a request that began %v after the revocation was let through (bound %v)", began.Sub(revoked), bound)
		case time.Now().After(deadline):
			t.Fatal("the revoked key is still let through")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPostgresCache checks the example's verification cache: on by default
// with PostgreSQL, where the banner states its bound and verifications are
// answered from memory; off with -cache=false, where a key revoked through
// another instance is refused by the very next request; never with the
// memory store.
func TestPostgresCache(t *testing.T) {
	mem := startInstance(t, config{addr: "127.0.0.1:0"})
	if mem.srv.cache != nil || strings.Contains(mem.banner, "Verification cache") {
		t.Errorf("the memory store has a verification cache:\n%s", mem.banner)
	}

	dsn := pgtest.SearchPath(pgtest.DSN(t), pgtest.Schema(t, pgtest.DB(t)))
	const password = "operators' password, for the test"
	args := func(extra ...string) config {
		cfg, err := parseFlags(append([]string{"-addr", "127.0.0.1:0", "-postgres", dsn, "-dashboard-password", password}, extra...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	on, off := startInstance(t, args()), startInstance(t, args("-cache=false"))

	if on.srv.cache == nil {
		t.Fatal("no verification cache with -postgres")
	}
	if want := "Verification cache on: a key revoked through another instance stops working here within 1s, through this one at once (-cache=false to read the database on every request)."; !strings.Contains(on.banner, want+"\n") {
		t.Errorf("the banner does not say %q:\n%s", want, on.banner)
	}
	if off.srv.cache != nil {
		t.Fatal("a verification cache with -cache=false")
	}
	if want := "Verification cache off: every request reads the database, so a key revoked through any instance stops working here at once."; !strings.Contains(off.banner, want+"\n") {
		t.Errorf("the banner does not say %q:\n%s", want, off.banner)
	}

	newKey := func() string {
		sec, _, err := on.srv.keys.Owner("acme").Create(t.Context(), keyward.CreateParams{
			Name: "cache test", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Reveal()
	}
	// revoke revokes the key through in, and returns a time after the
	// revocation committed.
	revoke := func(in *instance, raw string) time.Time {
		t.Helper()
		rec := findKey(t, in.srv.keys, "acme", raw)
		if _, err := in.srv.keys.Owner("acme").Revoke(t.Context(), rec.ID, keyward.RevokeParams{}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	t.Run("on: answered from memory, revocations elsewhere seen within the bound", func(t *testing.T) {
		raw := newKey()
		// Cached records are served once the cache has read its change
		// feed, shortly after start.
		deadline := time.Now().Add(30 * time.Second)
		for on.srv.cache.Stats().Hits == 0 {
			if r := call(t, "GET", on.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
				t.Fatalf("GET links: %d %s", r.status, r.raw)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no verification answered from the cache: %+v", on.srv.cache.Stats())
			}
		}
		refusedWithin(t, on.url+"/api/v1/links", raw, revoke(off, raw), cacheBound)
	})

	t.Run("off: revocations elsewhere refused at once", func(t *testing.T) {
		raw := newKey()
		for range 3 {
			if r := call(t, "GET", off.url+"/api/v1/links", raw, ""); r.status != http.StatusOK {
				t.Fatalf("GET links: %d %s", r.status, r.raw)
			}
		}
		revoke(on, raw)
		if r := call(t, "GET", off.url+"/api/v1/links", raw, ""); r.status != http.StatusUnauthorized {
			t.Fatalf("the next request after a revocation through another instance: %d", r.status)
		}
	})
}

// withDatabase returns dsn, a URL or key=value pairs, naming another
// database.
func withDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// ownDatabase creates a database for the test alone, dropped at its end,
// and returns its name, which starts with prefix.
func ownDatabase(t *testing.T, admin *sql.DB, prefix string) string {
	t.Helper()
	name := prefix + strings.ToLower(rand.Text()[:10])
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		if strings.Contains(err.Error(), "permission denied") {
			t.Skipf("the test needs a database of its own, and the role of %s may not create one: %v", pgtest.EnvDSN, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return name
}

// TestPostgresCancelKeepsConnections: a request whose client goes away
// while its lookup waits in PostgreSQL ends, and its connection stays in
// the pool: the example has pgx send the server a cancel request rather
// than close the connection, pgx's default. The lookups wait on a lock the
// test holds on the key table; the clients then disconnect.
func TestPostgresCancelKeepsConnections(t *testing.T) {
	const waiting = 4 // under keyward's bound on lookups in flight
	admin := pgtest.DB(t)
	name := ownDatabase(t, admin, "kwtest_cancel_")
	const app = "kwtest_cancel"
	in := startInstance(t, config{addr: "127.0.0.1:0", postgres: withParam(withDatabase(pgtest.DSN(t), name), "application_name", app), noCache: true})
	sec, _, err := in.srv.keys.Owner("acme").Create(t.Context(), keyward.CreateParams{
		Name: "cancel test", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	count := func(query string) int {
		t.Helper()
		var n int
		if err := admin.QueryRowContext(t.Context(), query, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
		}
	}
	const (
		backends = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
		blocked  = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"
		busy     = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'"
	)

	// Hold the key table: lookups wait for the lock.
	lockDB, err := sql.Open("pgx", withDatabase(pgtest.DSN(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	tx, err := lockDB.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	ctx, disconnect := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range waiting {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "GET", in.url+"/api/v1/links", nil)
			if err != nil {
				panic(err)
			}
			req.Header.Set("Authorization", "Bearer "+sec.Reveal())
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				t.Errorf("a request answered %d while its lookup should wait on the lock", resp.StatusCode)
			}
		})
	}
	waitFor("the lookups waiting on the lock", func() bool { return count(blocked) == waiting })
	disconnect()
	wg.Wait()
	waitFor("the cancelled lookups ending", func() bool { return count(busy) == 0 })
	if n := count(backends); n < waiting {
		t.Errorf("%d of the %d connections of the cancelled lookups are left: the driver closed them", n, waiting)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", in.url+"/api/v1/links", sec.Reveal(), ""); r.status != http.StatusOK {
		t.Fatalf("a request after the lock: %d", r.status)
	}
}

// TestPostgresPool drives the example's server with 32 concurrent clients
// and checks on the server that its pool does not churn: over the
// instance's whole life, start-up and shutdown included, PostgreSQL counts
// no more sessions than the pool's size. The example runs on a database
// of its own, so that pg_stat_database's count of sessions is its alone;
// PostgreSQL adds a session to it when the session ends at the latest, so
// the test reads it once the instance has stopped and its sessions are
// gone. It runs without the cache, every request reading the database (the
// pool's worst case), and with it.
func TestPostgresPool(t *testing.T) {
	admin := pgtest.DB(t)
	var version int
	if err := admin.QueryRowContext(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 140000 {
		t.Skipf("PostgreSQL %d has no pg_stat_database.sessions (14 and later)", version)
	}
	const (
		clients = 32
		each    = 25 // requests per client
	)
	for _, tc := range []struct {
		name    string
		noCache bool
	}{{"cache off", true}, {"cache on", false}} {
		t.Run(tc.name, func(t *testing.T) {
			name := ownDatabase(t, admin, "kwtest_pool_")
			sessions := func() int64 {
				t.Helper()
				var n int64
				if err := admin.QueryRowContext(t.Context(), "SELECT sessions FROM pg_stat_database WHERE datname = $1", name).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			backends := func() int {
				t.Helper()
				var n int
				if err := admin.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := sessions()

			in := startInstance(t, config{addr: "127.0.0.1:0", postgres: withDatabase(pgtest.DSN(t), name), noCache: tc.noCache})
			sec, _, err := in.srv.keys.Owner("acme").Create(t.Context(), keyward.CreateParams{
				Name: "pool test", Mode: apikey.Test, Scopes: scope.NewSet(scope.LinksRead)})
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			defer client.CloseIdleConnections()
			statuses := make(chan int, clients*each)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for range each {
						req, err := http.NewRequestWithContext(t.Context(), "GET", in.url+"/api/v1/links", nil)
						if err != nil {
							panic(err)
						}
						req.Header.Set("Authorization", "Bearer "+sec.Reveal())
						resp, err := client.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						statuses <- resp.StatusCode
					}
				})
			}
			wg.Wait()
			close(statuses)
			counts := map[int]int{}
			for s := range statuses {
				counts[s]++
			}
			// 503 is keyward shedding lookups beyond its bound on a
			// starved machine; anything else is a failure.
			if counts[http.StatusOK] == 0 || counts[http.StatusOK]+counts[http.StatusServiceUnavailable] != clients*each {
				t.Fatalf("responses by status: %v, want %d times 200", counts, clients*each)
			}
			open := backends()
			in.stop(t)

			deadline := time.Now().Add(30 * time.Second)
			for backends() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d sessions still open on %s 30s after shutdown", backends(), name)
				}
				time.Sleep(10 * time.Millisecond)
			}
			opened := sessions() - before
			t.Logf("%d requests by %d clients (%v); %d sessions open at the end of the load, %d opened in all; pool size %d",
				clients*each, clients, counts, open, opened, poolSize)
			if opened == 0 {
				t.Fatal("pg_stat_database counted no session: the test cannot see the instance's")
			}
			if opened > poolSize {
				t.Errorf("the instance opened %d sessions for a pool of %d: it closes and reopens connections", opened, poolSize)
			}
		})
	}
}

// activeKeys returns, from the database, the active keys of each merchant
// by their demo mark ("" for keys without one).
func activeKeys(t *testing.T, dsn string) map[string]map[string][]apikey.Record {
	t.Helper()
	st, closeStore, err := openStore(t.Context(), config{postgres: dsn}, slog.New(slog.DiscardHandler))
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
