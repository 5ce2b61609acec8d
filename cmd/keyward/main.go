// Command keyward manages the API keys kept in a PostgreSQL database by
// package [github.com/keyward/keyward/store/postgres]: it migrates the
// table, creates, lists, shows, updates, rotates and revokes keys, reports
// a leaked key, lists a canary's trips, lists and checks the audit trail
// of an owner's keys, and reports a key's usage.
//
//	go install github.com/keyward/keyward/cmd/keyward@latest
//	export DATABASE_URL=postgres://keyward@localhost/app
//	keyward migrate
//	KEY=$(keyward create -owner acct_123 -name "Backend server" -mode live -scopes sessions:write)
//
// The database is DATABASE_URL, or the -database flag of any command,
// which wins; -table names another table than api_keys (as
// [postgres.WithTable]). Run "keyward help" for the commands and
// "keyward help <command>" for one command's flags.
//
// A raw key is printed once, alone on standard output, by create and
// rotate, and never anywhere else; the summary goes to standard error. A
// command that takes a raw key (report-exposure) reads it from standard
// input, never from the command line, which ends up in shell history and
// in ps.
//
// Every change names who made it in the audit trail: the actor
// {Type: "cli", ID: -actor}, whose ID defaults to $KEYWARD_ACTOR, else the
// OS user's name.
//
// Exit codes: 0 success; 1 a runtime failure (the database, a key not
// found, a key already revoked); 2 a usage error: unknown command, bad
// flags or arguments, or a value the library refuses; 3 an audit trail
// that was tampered with (check-audit).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
