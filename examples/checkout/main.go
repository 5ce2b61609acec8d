// Command checkout is a small checkout API whose /api/v1 routes are guarded
// by keyward API keys, the way the product documentation describes them:
// payment links, checkout sessions, webhook endpoints, events and customers,
// each route requiring its scope (GET needs :read, writes need :write). It
// also serves the API Keys dashboard at /dashboard/, behind a demo operator
// sign-in, and keyward's metrics at /metrics, in the Prometheus text
// format, through OpenTelemetry (see package
// github.com/keyward/keyward/keywardotel).
//
// It serves two demo merchants, acme and globex. Each has its own data and
// its own keys: every object belongs to the merchant (the key's owner) and
// the mode of the key that created it, and a key of one merchant never sees
// or touches another's objects, which answer 404 as unknown IDs do.
//
// Its data is kept in memory. Its keys are too, unless -postgres (or the
// environment variable DATABASE_URL) names a PostgreSQL database, which it
// migrates at start-up. With PostgreSQL, keys are verified through a
// verification cache (package github.com/keyward/keyward/store/cache), so
// that a key seen recently costs no query: a key revoked through this
// instance stops working at once, one revoked through another instance
// sharing the database within the cache's bound, one second, which the
// start-up banner states. -cache=false turns the cache off: every request
// then reads the database. At start-up it creates two test keys for each
// merchant, one with every scope and one with only sessions:write, and
// prints each once, on a line that names its merchant, with ready-to-paste
// curl commands; it then revokes the demo keys of earlier starts, so that
// restarts on one database do not pile them up. The all-scopes keys are
// rate limited (60 a minute, 10 at once), counted in memory, or in Redis
// with -redis (or REDIS_URL), shared by every instance:
//
//	go run ./examples/checkout [-addr 127.0.0.1:8080] [-postgres DSN [-cache=false]] [-redis URL] [-dashboard-password PASSWORD]
//
// The dashboard asks for HTTP Basic credentials: a demo user name, which
// says whose keys the operator manages and with which role (ada, admin of
// acme; bob, developer at acme; carol, viewer at acme; grace, admin of
// globex; dan, viewer at globex), and the password of -dashboard-password
// (or CHECKOUT_DASHBOARD_PASSWORD). Without one, a random password is
// generated and printed once at start-up.
//
// POST /github/secret-scanning is the endpoint of GitHub's secret-scanning
// partner program: GitHub posts the keys it finds in public repositories,
// signed, and each one of ours is revoked at once as exposed.
//
// It stops gracefully on SIGINT or SIGTERM: in-flight requests finish, the
// keys' last-used times are written, then the database is closed.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/limit/redislimit"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/redact"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/secretscanning"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
	"github.com/keyward/keyward/store/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := append(envArgs(os.Getenv), os.Args[1:]...)
	if err := run(ctx, args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "checkout:", err)
		os.Exit(1)
	}
}

// The environment variables that set a flag's value unless the flag is
// given.
const (
	envPostgres          = "DATABASE_URL"                // -postgres
	envRedis             = "REDIS_URL"                   // -redis
	envDashboardPassword = "CHECKOUT_DASHBOARD_PASSWORD" // -dashboard-password
)

// envArgs turns the environment variables that stand for flags into
// leading arguments, so that a flag given on the command line, parsed
// later, wins, and run reads nothing but its arguments. Empty variables are
// ignored.
func envArgs(getenv func(string) string) []string {
	var args []string
	for _, e := range []struct{ env, flag string }{
		{envPostgres, "-postgres"},
		{envRedis, "-redis"},
		{envDashboardPassword, "-dashboard-password"},
	} {
		if v := getenv(e.env); v != "" {
			args = append(args, e.flag, v)
		}
	}
	return args
}

// config is what the command line sets.
type config struct {
	addr              string // the address to listen on
	postgres          string // PostgreSQL connection string; empty for the memory store
	noCache           bool   // with postgres, verify every key from the database (-cache=false)
	redis             string // Redis URL for the rate limiter; empty for the in-memory one
	dashboardPassword string // the operators' password; empty to generate one
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("checkout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
	fs.StringVar(&c.postgres, "postgres", "",
		"keep keys in the PostgreSQL database of this connection string (URL or key=value `DSN`; default $"+envPostgres+", else in memory)")
	useCache := fs.Bool("cache", true,
		"with -postgres, verify keys seen recently from memory: a key revoked through another instance stops working here within "+
			clock.ShortDuration(cacheBound)+"; -cache=false reads the database on every request")
	fs.StringVar(&c.redis, "redis", "",
		"keep rate limits in the Redis server of this `URL`, shared by every instance (such as redis://localhost:6379/0; default $"+envRedis+", else in memory)")
	fs.StringVar(&c.dashboardPassword, "dashboard-password", "",
		"the dashboard's operator `password` (default $"+envDashboardPassword+", else a random one, printed once)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.noCache = !*useCache
	return c, nil
}

// run serves the API until ctx is done, then shuts down gracefully. The
// keys and the dashboard's sign-in password are printed on stdout; the log
// (the dashboard's audit trail, failures) goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// The log redacts anything shaped like a key, should a handler ever
	// log one by mistake.
	srv, err := start(ctx, cfg, stdout, slog.New(redact.NewHandler(slog.NewTextHandler(stderr, nil))))
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-srv.served: // the listener failed
		srv.served <- err
	}
	return srv.shutdown(stdout)
}

// server is a running checkout API.
type server struct {
	keys         *keyward.Keys
	cache        *cache.Store // the verification cache; nil without PostgreSQL or with -cache=false
	tel          *telemetry   // the metrics served at /metrics
	closeStore   func() error // closes the store's database, after keys.Close
	closeLimiter func() error // closes the rate limiter's Redis client, if any
	url          string       // http://host:port
	demo         []demoKey
	http         *http.Server
	served       chan error // the result of Serve
}

// poolSize is the most connections an instance opens to PostgreSQL, and
// the number it keeps open.
const poolSize = 16

// cacheBound is the verification cache's bound: the longest a key revoked
// through another instance keeps working here.
const cacheBound = cache.DefaultBound

// openStore returns the key store the configuration names, and the
// function that closes it: the memory store by default, else PostgreSQL,
// migrated, behind a verification cache unless cfg.noCache. Failed polls of
// the cache's change feed are logged to logger.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (store.Store, func() error, error) {
	if cfg.postgres == "" {
		return memory.New(), func() error { return nil }, nil
	}
	pgcfg, err := pgx.ParseConfig(cfg.postgres)
	if err != nil {
		// The parser's message quotes the connection string, whose
		// password it masks on a best-effort basis only: say less.
		return nil, nil, errors.New("the PostgreSQL connection string (-postgres or " + envPostgres + ") cannot be parsed; " +
			"use a URL such as postgres://user:password@localhost:5432/checkout, or key=value pairs")
	}
	// A request whose client goes away cancels its query. pgx's default is
	// then to close the connection, which the pool reopens: a new
	// PostgreSQL process for every client that gave up mid-query. Ask the
	// server to cancel the query instead, and keep the connection.
	pgcfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	db := stdlib.OpenDB(*pgcfg)
	// A bounded pool that keeps its connections: at most 16 to PostgreSQL
	// per instance, all kept idle rather than reopened (the two are sized
	// together: fewer idle than open closes and reopens connections under
	// load). keyward sends at most 10 verification lookups at once
	// (keyward.DefaultMaxLookups), leaving the rest for management,
	// last-used writes and the cache's feed. Keep instances x 16 within the
	// server's max_connections, less superuser_reserved_connections and
	// every other client. Connections are never closed for age or
	// idleness (the defaults of SetConnMaxLifetime and
	// SetConnMaxIdleTime).
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)

	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.PingContext(mctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	if err := postgres.Migrate(mctx, db); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrating the key table in PostgreSQL: %w", err)
	}
	st, err := postgres.New(db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if cfg.noCache {
		return st, db.Close, nil
	}
	cached, err := cache.New(st, cache.WithBound(cacheBound), cache.WithLogger(logger))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	// The cache stops polling before the pool closes.
	return cached, func() error { return errors.Join(cached.Close(), db.Close()) }, nil
}

// start opens the store, starts listening, creates the demo keys (and
// revokes those of earlier starts), prints the keys and how to sign in to
// the dashboard, and serves in the background.
func start(ctx context.Context, cfg config, stdout io.Writer, logger *slog.Logger) (*server, error) {
	st, closeStore, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	limiter, closeLimiter, err := openLimiter(ctx, cfg)
	if err != nil {
		return nil, errors.Join(err, closeStore())
	}
	tel, err := newTelemetry()
	if err != nil {
		return nil, errors.Join(err, closeLimiter(), closeStore())
	}
	keys, err := tel.newKeys(st, keyward.WithLogger(logger))
	if err != nil {
		return nil, errors.Join(err, tel.close(), closeLimiter(), closeStore())
	}
	fail := func(err error) (*server, error) {
		return nil, errors.Join(err, keys.Close(), tel.close(), closeLimiter(), closeStore())
	}
	// Listen before creating the demo keys: a start that cannot serve
	// leaves no keys that nobody was shown.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fail(err)
	}
	failListening := func(err error) (*server, error) {
		return fail(errors.Join(err, ln.Close()))
	}
	password, generated := cfg.dashboardPassword, false
	if password == "" {
		password, generated = rand.Text(), true
	}
	dash, err := newDashboard(keys, password, demoUsers, logger, limiter)
	if err != nil {
		return failListening(err)
	}
	// GitHub's secret scanning posts keys it finds in public repositories
	// here; the handler fetches GitHub's signing keys when the first alert
	// arrives.
	scanning, err := secretscanning.NewHandler(keys, secretscanning.WithLogger(logger))
	if err != nil {
		return failListening(err)
	}
	demo, retired, err := createDemoKeys(ctx, keys, merchants)
	if err != nil {
		return failListening(err)
	}
	cached, _ := st.(*cache.Store)
	s := &server{
		keys:         keys,
		cache:        cached,
		tel:          tel,
		closeStore:   closeStore,
		closeLimiter: closeLimiter,
		url:          "http://" + ln.Addr().String(),
		demo:         demo,
		http: &http.Server{
			Handler:           withMetrics(newHandler(keys, newData(keys.Now, merchants), dash, scanning, limiter), tel),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
	}
	b := banner{url: s.url, demo: demo, retired: retired, users: demoUsers, postgres: cfg.postgres != ""}
	if cached != nil {
		b.cacheBound = cacheBound
	}
	if generated {
		b.password = password
	}
	b.print(stdout)
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

// shutdown stops accepting requests, lets those in flight finish, writes
// the keys' last-used times, then closes the store's database.
func (s *server) shutdown(stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if cerr := s.keys.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("writing last-used times: %w", cerr))
	} else {
		fmt.Fprintln(stdout, "Stopped; last-used times written.")
	}
	if cerr := s.tel.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("stopping the metrics: %w", cerr))
	}
	if cerr := s.closeStore(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the key store: %w", cerr))
	}
	if cerr := s.closeLimiter(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the rate limiter: %w", cerr))
	}
	return err
}

// openLimiter returns the rate limiter the configuration names, and the
// function that closes it: in memory by default, else on Redis, shared by
// every instance, checked with a PING so that a wrong URL fails the start.
// Its client fails fast: if Redis stops answering, requests of limited
// keys go through unlimited (the middleware's default) rather than wait.
func openLimiter(ctx context.Context, cfg config) (limit.Limiter, func() error, error) {
	if cfg.redis == "" {
		return limit.NewMemory(), func() error { return nil }, nil
	}
	opts, err := redis.ParseURL(cfg.redis)
	if err != nil {
		return nil, nil, fmt.Errorf("-redis: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	opts.MaxRetries, opts.ContextTimeoutEnabled = -1, true
	client := redis.NewClient(opts)
	ping, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(ping).Err(); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("connecting to Redis: %w", err), client.Close())
	}
	lim, err := redislimit.New(client)
	if err != nil {
		return nil, nil, errors.Join(err, client.Close())
	}
	return lim, client.Close, nil
}

// newHandler returns the whole server: public routes, the API behind
// keyward's middleware (which enforces the keys' rate limits with
// limiter), the dashboard behind its own sign-in, and the endpoint of
// GitHub's secret-scanning partner program, which checks GitHub's
// signature itself.
func newHandler(keys *keyward.Keys, d *data, dash, scanning http.Handler, limiter limit.Limiter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/api/v1/", apiAuth(keys, limiter)(d.routes()))
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	mux.Handle("/github/secret-scanning", scanning)
	return mux
}

// apiAuth returns the authentication of the API's routes: keyward's
// middleware, which enforces the keys' rate limits with limiter. It is a
// variable only so that scripts/load can build a ceiling of the server
// without authentication (the build tag keyward_loadceiling, see
// noauth_loadtest.go); no flag or setting of this command changes it.
var apiAuth = func(keys *keyward.Keys, limiter limit.Limiter) func(http.Handler) http.Handler {
	return middleware.Authenticate(keys,
		middleware.WithRealm("checkout"),
		middleware.WithLimiter(limiter),
	)
}

// A demoKey is a key created at start-up, shown once.
type demoKey struct {
	merchant string // its owner
	spec     demoKeySpec
	secret   apikey.Secret
	record   apikey.Record
}

// createDemoKeys creates the test keys of demoKeySpecs for each merchant,
// marked with demoMetadataKey, then revokes that merchant's demo keys of
// earlier starts, so that each merchant has exactly one active key of each
// spec however often the example restarts on one database. It returns the
// keys created and the number revoked.
func createDemoKeys(ctx context.Context, keys *keyward.Keys, ms []merchant) ([]demoKey, int, error) {
	var demo []demoKey
	retired := 0
	for _, m := range ms {
		owner := keys.Owner(m.id)
		created := map[string]apikey.Record{} // by tag
		for _, spec := range demoKeySpecs {
			sec, rec, err := owner.Create(ctx, keyward.CreateParams{
				Name:     spec.name,
				Mode:     apikey.Test,
				Scopes:   spec.scopes(keys.Catalog()),
				Metadata: map[string]string{demoMetadataKey: spec.tag},
				Policy:   spec.policy,
			})
			if err != nil {
				return nil, 0, fmt.Errorf("creating the %s key of %s: %w", spec.label, m.id, err)
			}
			created[spec.tag] = rec
			demo = append(demo, demoKey{merchant: m.id, spec: spec, secret: sec, record: rec})
		}
		n, err := retireDemoKeys(ctx, owner, created)
		retired += n
		if err != nil {
			return nil, 0, fmt.Errorf("revoking the demo keys of earlier starts of %s: %w", m.id, err)
		}
	}
	return demo, retired, nil
}

// retireDemoKeys revokes the owner's active test keys that carry the demo
// mark of a key in current and are older than it: the demo keys of earlier
// starts. Keys without the mark, such as those created on the dashboard,
// are never touched. Nor are newer demo keys: when two instances start at
// once on one database, the newer keys win, rather than each instance
// revoking the other's and leaving none. It returns the number of keys it
// revoked.
//
// It runs after the new keys are created: a start that fails before leaves
// the previous demo keys working.
func retireDemoKeys(ctx context.Context, owner keyward.Owner, current map[string]apikey.Record) (int, error) {
	var stale []apikey.Record
	opts := keyward.ListOptions{Mode: apikey.Test, Status: apikey.Active, Limit: 1000}
	for {
		page, err := owner.List(ctx, opts)
		if err != nil {
			return 0, err
		}
		for _, rec := range page.Keys {
			tag, ok := rec.Metadata.Get(demoMetadataKey)
			cur, isDemo := current[tag]
			if ok && isDemo && olderThan(rec, cur) {
				stale = append(stale, rec)
			}
		}
		if page.Next == "" {
			break
		}
		opts.Cursor = page.Next
	}
	n := 0
	for _, rec := range stale {
		_, err := owner.Revoke(ctx, rec.ID, keyward.RevokeParams{})
		switch {
		case errors.Is(err, keyward.ErrAlreadyRevoked):
			// Revoked meanwhile, by another instance starting.
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

// olderThan reports whether a comes before b in creation order: by
// creation time, then by ID, as Owner.List orders keys.
func olderThan(a, b apikey.Record) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// sessionBody is the body of the example request, as the TypeScript SDK of
// the product documentation sends it.
const sessionBody = `{"amount":{"value":"49.99","currency":"USD"},"successUrl":"https://your-store.com/thank-you","metadata":{"orderId":"order_789"}}`

// banner is what start prints.
type banner struct {
	url        string
	demo       []demoKey
	retired    int // demo keys of earlier starts revoked by this one
	users      []demoUser
	postgres   bool          // the keys are in PostgreSQL
	cacheBound time.Duration // the verification cache's bound; 0 without a cache
	password   string        // the dashboard's generated password; empty if given
}

// Column widths of the banner's tables.
const (
	merchantWidth = 8  // "globex" and two spaces
	labelWidth    = 17 // "sessions:write" and three spaces
	userWidth     = 7  // "carol" and two spaces
)

// print prints each demo key once, on a line that names its merchant; then
// curl commands that use them, grouped by merchant; then how to sign in to
// the dashboard, with its users.
func (b banner) print(w io.Writer) {
	var names []string
	for _, k := range b.demo {
		if !slices.Contains(names, k.merchant) {
			names = append(names, k.merchant)
		}
	}
	what := "keyward checkout example: a checkout API for the demo merchants " + strings.Join(names, " and ") + ","
	if b.postgres {
		fmt.Fprintln(w, what, "its data in memory and its keys in PostgreSQL.")
		fmt.Fprintln(w, "Test keys, shown once; they stay in the database until revoked, and the next start revokes them.")
		if b.retired > 0 {
			fmt.Fprintf(w, "This start revoked %d demo keys of earlier starts; other keys are kept.\n", b.retired)
		}
		if b.cacheBound > 0 {
			fmt.Fprintf(w, "Verification cache on: a key revoked through another instance stops working here within %s, through this one at once (-cache=false to read the database on every request).\n",
				clock.ShortDuration(b.cacheBound))
		} else {
			fmt.Fprintln(w, "Verification cache off: every request reads the database, so a key revoked through any instance stops working here at once.")
		}
	} else {
		fmt.Fprintln(w, what, "its data and its keys in memory.")
		fmt.Fprintln(w, "Test keys, shown once; they are gone when the server stops.")
	}
	fmt.Fprintln(w)
	for _, k := range b.demo {
		fmt.Fprintf(w, "%-*s%-*s%s\n", merchantWidth, k.merchant, labelWidth, k.spec.label, k.secret.Reveal())
	}
	if p := demoKeySpecs[0].policy; p != nil {
		fmt.Fprintf(w, "Keys with %s: %d requests per %s, %d at once; more get 429 with RateLimit headers.\n",
			demoKeySpecs[0].label, p.Rate.Requests, clock.ShortDuration(p.Rate.Period), p.Rate.Capacity())
	}
	merchant := ""
	for _, k := range b.demo {
		if k.merchant != merchant {
			merchant = k.merchant
			fmt.Fprintln(w)
			fmt.Fprintf(w, "Try %s's keys; each sees %s's data only:\n", merchant, merchant)
		}
		raw := k.secret.Reveal()
		if k.record.Scopes.Has(scope.SessionsWrite) && k.record.Scopes.Len() == 1 {
			fmt.Fprintf(w, "curl %s/api/v1/sessions -H \"Authorization: Bearer %s\" -H \"Content-Type: application/json\" -d '%s'\n", b.url, raw, sessionBody)
		} else {
			fmt.Fprintf(w, "curl %s/api/v1/links -H \"Authorization: Bearer %s\"\n", b.url, raw)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Dashboard: %s/dashboard/\n", b.url)
	if b.password != "" {
		fmt.Fprintln(w, "Sign in with a user name below and this password, generated for this run and shown once:")
		fmt.Fprintln(w, b.password)
	} else {
		fmt.Fprintln(w, "Sign in with a user name below and the password set by -dashboard-password or "+envDashboardPassword+".")
	}
	for _, u := range b.users {
		fmt.Fprintf(w, "%-*s%-*s%s\n", userWidth, u.name, merchantWidth, u.merchant, roleSummary(u.role))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Metrics, in the Prometheus text format: %s/metrics\n", b.url)
	fmt.Fprintf(w, "Listening on %s (Ctrl-C to stop)\n", b.url)
}
