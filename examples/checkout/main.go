// Command checkout is a small checkout API whose /api/v1 routes are guarded
// by keyward API keys, the way the product documentation describes them:
// payment links, checkout sessions, webhook endpoints, events and customers,
// each route requiring its scope (GET needs :read, writes need :write). It
// also serves the API Keys dashboard at /dashboard/, behind a demo operator
// sign-in.
//
// Its data is kept in memory. Its keys are too, unless -postgres (or the
// environment variable DATABASE_URL) names a PostgreSQL database, which it
// migrates at start-up. At start-up it creates two test keys, one with
// every scope and one with only sessions:write, and prints each once with a
// ready-to-paste curl command:
//
//	go run ./examples/checkout [-addr 127.0.0.1:8080] [-postgres DSN] [-dashboard-password PASSWORD]
//
// The dashboard asks for HTTP Basic credentials: any user name, which the
// audit log records as the operator, and the password of -dashboard-password
// (or CHECKOUT_DASHBOARD_PASSWORD). Without one, a random password is
// generated and printed once at start-up.
//
// It stops gracefully on SIGINT or SIGTERM: in-flight requests finish, the
// keys' last-used times are written, then the database is closed.
package main

import (
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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
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
	dashboardPassword string // the operators' password; empty to generate one
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("checkout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
	fs.StringVar(&c.postgres, "postgres", "",
		"keep keys in the PostgreSQL database of this connection string (URL or key=value `DSN`; default $"+envPostgres+", else in memory)")
	fs.StringVar(&c.dashboardPassword, "dashboard-password", "",
		"the dashboard's operator `password` (default $"+envDashboardPassword+", else a random one, printed once)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
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
	srv, err := start(ctx, cfg, stdout, slog.New(slog.NewTextHandler(stderr, nil)))
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
	keys       *keyward.Keys
	closeStore func() error // closes the store's database, after keys.Close
	url        string       // http://host:port
	demo       []demoKey
	http       *http.Server
	served     chan error // the result of Serve
}

// openStore returns the key store the configuration names, and the
// function that closes it: the memory store by default, else PostgreSQL,
// migrated.
func openStore(ctx context.Context, cfg config) (store.Store, func() error, error) {
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
	db := stdlib.OpenDB(*pgcfg)
	db.SetMaxIdleConns(16) // as many as verifications in flight

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
	return st, db.Close, nil
}

// start opens the store, creates the demo keys, starts listening, prints
// the keys and how to sign in to the dashboard, and serves in the
// background.
func start(ctx context.Context, cfg config, stdout io.Writer, logger *slog.Logger) (*server, error) {
	st, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, err := keyward.New(st, keyward.WithLogger(logger))
	if err != nil {
		return nil, errors.Join(err, closeStore())
	}
	fail := func(err error) (*server, error) {
		return nil, errors.Join(err, keys.Close(), closeStore())
	}
	demo, err := createDemoKeys(ctx, keys)
	if err != nil {
		return fail(err)
	}
	password, generated := cfg.dashboardPassword, false
	if password == "" {
		password, generated = rand.Text(), true
	}
	dash, err := newDashboard(keys, password, logger)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fail(err)
	}
	s := &server{
		keys:       keys,
		closeStore: closeStore,
		url:        "http://" + ln.Addr().String(),
		demo:       demo,
		http: &http.Server{
			Handler:           newHandler(keys, newData(time.Now()), dash),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		served: make(chan error, 1),
	}
	b := banner{url: s.url, demo: demo, postgres: cfg.postgres != ""}
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
	if cerr := s.closeStore(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the key store: %w", cerr))
	}
	return err
}

// newHandler returns the whole server: public routes, the API behind
// keyward's middleware, and the dashboard behind its own sign-in.
func newHandler(keys *keyward.Keys, d *data, dash http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/api/v1/", middleware.Authenticate(keys, middleware.WithRealm("checkout"))(d.routes()))
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", dash))
	return mux
}

// A demoKey is a key created at start-up, shown once.
type demoKey struct {
	label  string
	secret apikey.Secret
	record apikey.Record
}

// createDemoKeys creates the two test keys of the example.
func createDemoKeys(ctx context.Context, keys *keyward.Keys) ([]demoKey, error) {
	specs := []struct {
		label  string
		scopes []scope.Scope
	}{
		{"All scopes", keys.Catalog().Scopes()},
		{"Session creator", []scope.Scope{scope.SessionsWrite}},
	}
	var demo []demoKey
	for _, s := range specs {
		sec, rec, err := keys.Create(ctx, keyward.CreateParams{Name: s.label, Mode: apikey.Test, Scopes: s.scopes})
		if err != nil {
			return nil, fmt.Errorf("creating the %q key: %w", s.label, err)
		}
		demo = append(demo, demoKey{label: s.label, secret: sec, record: rec})
	}
	return demo, nil
}

// sessionBody is the body of the example request, as the TypeScript SDK of
// the product documentation sends it.
const sessionBody = `{"amount":{"value":"49.99","currency":"USD"},"successUrl":"https://your-store.com/thank-you","metadata":{"orderId":"order_789"}}`

// banner is what start prints.
type banner struct {
	url      string
	demo     []demoKey
	postgres bool   // the keys are in PostgreSQL
	password string // the dashboard's generated password; empty if given
}

// print prints each key once, on its own line, with its scopes and a curl
// command that uses it, then how to sign in to the dashboard.
func (b banner) print(w io.Writer) {
	if b.postgres {
		fmt.Fprintln(w, "keyward checkout example: a checkout API, its data in memory and its keys in PostgreSQL.")
		fmt.Fprintln(w, "Two new test keys, shown once; they stay in the database until revoked.")
	} else {
		fmt.Fprintln(w, "keyward checkout example: a checkout API, its data and its keys in memory.")
		fmt.Fprintln(w, "Two test keys, shown once; they are gone when the server stops.")
	}
	for _, k := range b.demo {
		raw := k.secret.Reveal()
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s key, scopes: %s\n", k.label, k.record.Scopes)
		fmt.Fprintln(w, raw)
		if k.record.Scopes.Has(scope.SessionsWrite) && k.record.Scopes.Len() == 1 {
			fmt.Fprintf(w, "curl %s/api/v1/sessions -H \"Authorization: Bearer %s\" -H \"Content-Type: application/json\" -d '%s'\n", b.url, raw, sessionBody)
		} else {
			fmt.Fprintf(w, "curl %s/api/v1/links -H \"Authorization: Bearer %s\"\n", b.url, raw)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Dashboard: %s/dashboard/\n", b.url)
	if b.password != "" {
		fmt.Fprintln(w, "Sign in with any user name and this password, generated for this run and shown once:")
		fmt.Fprintln(w, b.password)
	} else {
		fmt.Fprintln(w, "Sign in with any user name and the password set by -dashboard-password or "+envDashboardPassword+".")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Listening on %s (Ctrl-C to stop)\n", b.url)
}
