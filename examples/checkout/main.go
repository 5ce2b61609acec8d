// Command checkout is a small checkout API whose /api/v1 routes are guarded
// by keyward API keys, the way the product documentation describes them:
// payment links, checkout sessions, webhook endpoints, events and customers,
// each route requiring its scope (GET needs :read, writes need :write).
//
// It keeps everything in memory. At start-up it creates two test keys, one
// with every scope and one with only sessions:write, and prints each once
// with a ready-to-paste curl command:
//
//	go run ./examples/checkout [-addr 127.0.0.1:8080]
//
// It stops gracefully on SIGINT or SIGTERM: in-flight requests finish and
// the keys' last-used times are written before it exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "checkout:", err)
		os.Exit(1)
	}
}

// config is what the command line sets.
type config struct {
	addr string // the address to listen on
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("checkout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
}

// run serves the API until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	srv, err := start(ctx, cfg, stdout)
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
	keys   *keyward.Keys
	url    string // http://host:port
	demo   []demoKey
	http   *http.Server
	served chan error // the result of Serve
}

// openStore returns the key store the configuration names: the memory
// store, for now.
func openStore(context.Context, config) (store.Store, error) {
	return memory.New(), nil
}

// start opens the store, creates the demo keys, starts listening, prints
// the keys and serves in the background.
func start(ctx context.Context, cfg config, stdout io.Writer) (*server, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, err := keyward.New(st)
	if err != nil {
		return nil, err
	}
	demo, err := createDemoKeys(ctx, keys)
	if err != nil {
		keys.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		keys.Close()
		return nil, err
	}
	s := &server{
		keys: keys,
		url:  "http://" + ln.Addr().String(),
		demo: demo,
		http: &http.Server{
			Handler:           newHandler(keys, newData(time.Now())),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		},
		served: make(chan error, 1),
	}
	printBanner(stdout, s.url, demo)
	go func() { s.served <- s.http.Serve(ln) }()
	return s, nil
}

// shutdown stops accepting requests, lets those in flight finish, then
// writes the keys' last-used times.
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
	return err
}

// newHandler returns the whole server: public routes, and the API behind
// keyward's middleware.
func newHandler(keys *keyward.Keys, d *data) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/api/v1/", middleware.Authenticate(keys, middleware.WithRealm("checkout"))(d.routes()))
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

// printBanner prints each key once, on its own line, with its scopes and a
// curl command that uses it.
func printBanner(w io.Writer, url string, demo []demoKey) {
	fmt.Fprintln(w, "keyward checkout example: an in-memory checkout API.")
	fmt.Fprintln(w, "Two test keys, shown once; they are gone when the server stops.")
	for _, k := range demo {
		raw := k.secret.Reveal()
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s key, scopes: %s\n", k.label, k.record.Scopes)
		fmt.Fprintln(w, raw)
		if k.record.Scopes.Has(scope.SessionsWrite) && k.record.Scopes.Len() == 1 {
			fmt.Fprintf(w, "curl %s/api/v1/sessions -H \"Authorization: Bearer %s\" -H \"Content-Type: application/json\" -d '%s'\n", url, raw, sessionBody)
		} else {
			fmt.Fprintf(w, "curl %s/api/v1/links -H \"Authorization: Bearer %s\"\n", url, raw)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Listening on %s (Ctrl-C to stop)\n", url)
}
