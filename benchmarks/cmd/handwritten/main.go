// Command handwritten is the API-key check that keyward replaces, written
// by hand the way a team first writes it, for scripts/load to measure
// beside the example: on every request, SHA-256 the bearer key, SELECT its
// row by hash from keyward's own table, check that it is neither revoked
// nor expired and holds the route's scope, UPDATE its last_used_at, then
// serve the route.
//
// It uses database/sql and pgx's driver, with the pool the example uses
// (16 connections, all kept idle), and serves one route:
//
//	GET /api/v1/links    needs links:read; answers a small JSON list
//
// It prints "Listening on http://host:port" once it serves, and stops on
// SIGINT or SIGTERM:
//
//	go run ./benchmarks/cmd/handwritten -postgres DSN [-addr 127.0.0.1:0] [-table api_keys]
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "`address` to listen on")
	dsn := flag.String("postgres", "", "the PostgreSQL connection string (URL or key=value `DSN`)")
	table := flag.String("table", "api_keys", "the keys' `table`, keyward's schema")
	flag.Parse()
	if *dsn == "" {
		log.Fatal("handwritten: -postgres is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dsn, *table); err != nil {
		log.Fatal("handwritten: ", err)
	}
}

func run(ctx context.Context, addr, dsn, table string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(16) // as examples/checkout
	db.SetMaxIdleConns(16)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		return err
	}

	a := &auth{
		db:      db,
		selectQ: `SELECT id, owner, mode, array_to_string(scopes, ' '), revoked_at, expires_at FROM ` + table + ` WHERE hash = $1`,
		updateQ: `UPDATE ` + table + ` SET last_used_at = now() WHERE id = $1`,
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/links", a.require("links:read", http.HandlerFunc(listLinks)))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("Listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// auth checks the request's key against the table.
type auth struct {
	db               *sql.DB
	selectQ, updateQ string
}

type ctxKey struct{}

// account is what the check puts in the request's context.
type account struct {
	keyID, owner, mode string
}

// require serves next only for a request whose bearer key is active and
// holds scope.
func (a *auth) require(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			http.Error(w, "missing API key", http.StatusUnauthorized)
			return
		}
		sum := sha256.Sum256([]byte(raw))
		var (
			acc              account
			scopes           string
			revoked, expires sql.NullTime
		)
		err := a.db.QueryRowContext(r.Context(), a.selectQ, sum[:]).Scan(&acc.keyID, &acc.owner, &acc.mode, &scopes, &revoked, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			http.Error(w, "invalid API key", http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, "database error", http.StatusServiceUnavailable)
			return
		case revoked.Valid || expires.Valid && !expires.Time.After(time.Now()):
			http.Error(w, "invalid API key", http.StatusUnauthorized)
			return
		case !slices.Contains(strings.Fields(scopes), scope):
			http.Error(w, "missing scope "+scope, http.StatusForbidden)
			return
		}
		if _, err := a.db.ExecContext(r.Context(), a.updateQ, acc.keyID); err != nil {
			http.Error(w, "database error", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, acc)))
	})
}

// A link is a payment link, as the example lists them.
type link struct {
	ID      string    `json:"id"`
	Object  string    `json:"object"`
	Name    string    `json:"name"`
	Amount  amount    `json:"amount"`
	URL     string    `json:"url"`
	Created time.Time `json:"created"`
}

type amount struct {
	Value    string `json:"value"`
	Currency string `json:"currency"`
}

var created = time.Now().UTC().Truncate(time.Second)

// listLinks answers the account's payment links: one, as acme's test data
// in the example.
func listLinks(w http.ResponseWriter, r *http.Request) {
	acc := r.Context().Value(ctxKey{}).(account)
	body := struct {
		Object string `json:"object"`
		Data   []link `json:"data"`
	}{"list", []link{{
		ID: "plink_" + acc.mode + "_0001", Object: "payment_link", Name: "T-shirt",
		Amount: amount{"25.00", "USD"}, URL: "https://pay.example.com/" + acc.owner + "/plink_0001", Created: created,
	}}}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}
