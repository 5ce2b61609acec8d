package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store/postgres"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the database failed, the key was not found, ...
	exitUsage   = 2 // bad command line, as flag.ContinueOnError's convention
	// exitTampered is check-audit's answer when the trail does not hold:
	// apart from exitFailure, so that a monitor tells a security
	// incident from a database it could not reach.
	exitTampered = 3
)

// A command is one subcommand: its synopsis, and setup, which defines its
// flags on fs and returns what runs it with the positional arguments.
type command struct {
	name     string
	synopsis string // after "keyward <name> "
	summary  string // one line, for "keyward help"
	details  string // paragraphs after the synopsis, for "keyward help <name>"
	setup    func(c *cli, fs *flag.FlagSet) func(args []string) error
}

// commands are the subcommands, in the order help lists them.
var commands []*command

func init() {
	commands = []*command{
		migrateCmd, createCmd, listCmd, showCmd, updateCmd, rotateCmd,
		revokeCmd, revokeAllCmd, reportExposureCmd, tripsCmd,
		auditCmd, checkAuditCmd, usageCmd,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// cli is one run of the command: its environment and common flags.
type cli struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	database string    // -database
	table    string    // -table
	actor    actorFlag // -actor

	// The application's key format and lifetime rules, which the
	// lifecycle the command opens applies as the application's does.
	product       string        // -product
	checksum      boolFlag      // -checksum
	maxLifetime   time.Duration // -max-lifetime
	requireExpiry modesFlag     // -require-expiry

	// osUser returns the name of the user running the command, the
	// actor's ID by default: user.Current, unless a test says otherwise.
	osUser func() (string, error)
}

// An actorFlag is -actor: its value, and whether it was given at all, so
// that -actor "" names nobody rather than falling back to the defaults.
type actorFlag struct {
	id  string
	set bool
}

func (a *actorFlag) String() string { return a.id }
func (a *actorFlag) Set(s string) error {
	a.id, a.set = s, true
	return nil
}

// actorEnv is the environment variable holding the default -actor.
const actorEnv = "KEYWARD_ACTOR"

// The environment variables holding the defaults of -product and
// -checksum.
const (
	productEnv  = "KEYWARD_PRODUCT"
	checksumEnv = "KEYWARD_CHECKSUM"
)

// A boolFlag is a boolean flag that knows whether it was given, so that
// -checksum=false overrides $KEYWARD_CHECKSUM.
type boolFlag struct {
	on, set bool
}

func (b *boolFlag) IsBoolFlag() bool { return true }
func (b *boolFlag) String() string {
	if b != nil && b.on {
		return "true"
	}
	return "false"
}
func (b *boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	b.on, b.set = v, true
	return nil
}

// A modesFlag is -require-expiry: a comma-separated list of modes.
type modesFlag []apikey.Mode

func (m *modesFlag) String() string {
	if m == nil {
		return ""
	}
	names := make([]string, len(*m))
	for i, mode := range *m {
		names[i] = mode.String()
	}
	return strings.Join(names, ",")
}
func (m *modesFlag) Set(s string) error {
	var modes modesFlag
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		mode, err := apikey.ParseMode(f)
		if err != nil {
			return fmt.Errorf("%q is not a mode: want live, test or both, comma-separated", f)
		}
		if !slices.Contains(modes, mode) {
			modes = append(modes, mode)
		}
	}
	*m = modes
	return nil
}

// requires reports whether -require-expiry names mode.
func (m modesFlag) requires(mode apikey.Mode) bool { return slices.Contains(m, mode) }

// format returns the key format: -product (else $KEYWARD_PRODUCT, else
// "ck"), checksummed if -checksum (else $KEYWARD_CHECKSUM=1). An invalid
// product is a usage error.
func (c *cli) format() (apikey.Format, error) {
	product, from := c.product, "-product"
	if product == "" {
		product, from = c.getenv(productEnv), "$"+productEnv
	}
	if product == "" {
		product = apikey.DefaultProduct
	}
	checksum := c.checksum.on
	if !c.checksum.set {
		switch v := c.getenv(checksumEnv); v {
		case "", "0", "false":
		case "1", "true":
			checksum = true
		default:
			return apikey.Format{}, usagef("invalid checksum: $%s=%q: want 1 or 0", checksumEnv, v)
		}
	}
	var opts []apikey.FormatOption
	if checksum {
		opts = append(opts, apikey.WithChecksum())
	}
	f, err := apikey.NewFormat(product, opts...)
	if err != nil {
		return apikey.Format{}, usagef("invalid product: %s %.100q: %s", from, product, strings.TrimPrefix(err.Error(), "apikey: "))
	}
	return f, nil
}

// currentUser returns the OS user's name.
func currentUser() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// resolveActor returns who runs the command, the actor of the changes it
// makes: a cli actor whose ID is -actor, else $KEYWARD_ACTOR, else the
// OS user's name, else empty. An invalid -actor or $KEYWARD_ACTOR is a
// usage error; an OS user name the trail cannot keep is left out.
func (c *cli) resolveActor() (audit.Actor, error) {
	a := audit.Actor{Type: audit.TypeCLI}
	from := "-actor"
	switch {
	case c.actor.set:
		a.ID = c.actor.id
	case c.getenv(actorEnv) != "":
		a.ID, from = c.getenv(actorEnv), "$"+actorEnv
	default:
		if name, err := c.osUser(); err == nil {
			if a.ID = name; a.Validate() != nil {
				a.ID = ""
			}
		}
		return a, nil
	}
	if err := a.Validate(); err != nil {
		why := strings.TrimPrefix(err.Error(), audit.ErrInvalidActor.Error()+": ")
		return audit.Actor{}, usagef("invalid actor: %s %.300q: %s", from, a.ID, why)
	}
	return a, nil
}

// A usageError is a wrong command line: exit code 2. Its text is printed
// as is.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf("keyward: "+format, args...)}
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, osUser: currentUser}

	// A raw key on the command line is in the shell's history and in ps
	// already: refuse it, without echoing it, so that the habit dies.
	for _, a := range args {
		if len(apikey.Default.Find(a)) > 0 {
			fmt.Fprintln(stderr, "keyward: an API key was given on the command line, where shell history and ps keep it; "+
				"commands read raw keys from standard input only: pipe the key into keyward report-exposure")
			return exitUsage
		}
	}

	// Common flags may come before the command too.
	top := flag.NewFlagSet("keyward", flag.ContinueOnError)
	top.SetOutput(stderr)
	top.Usage = func() {}
	c.commonFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help(stdout)
			return exitOK
		}
		fmt.Fprintln(stderr, `Run "keyward help" for usage.`)
		return exitUsage
	}
	args = top.Args()
	if len(args) == 0 {
		c.help(stderr)
		return exitUsage
	}
	name, args := args[0], args[1:]
	if name == "help" {
		return c.helpCommand(args)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "keyward: unknown command %q\nRun \"keyward help\" for usage.\n", name)
		return exitUsage
	}

	fs := c.flagSet(cmd)
	action := cmd.setup(c, fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandHelp(stdout, cmd)
			return exitOK
		}
		// flag has printed what is wrong.
		fmt.Fprintf(stderr, "usage: keyward %s %s\nRun \"keyward help %s\" for details.\n", cmd.name, cmd.synopsis, cmd.name)
		return exitUsage
	}
	// A key of the application's own format on the command line is refused
	// as the default format's is, above: checksummed or not, whatever
	// -checksum says, since a checksummed format finds both.
	format, err := c.format()
	if err == nil {
		scan, _ := apikey.NewFormat(format.Product(), apikey.WithChecksum()) // a valid product
		for _, a := range args {
			if len(scan.Find(a)) > 0 {
				fmt.Fprintln(stderr, "keyward: an API key was given on the command line, where shell history and ps keep it; "+
					"commands read raw keys from standard input only: pipe the key into keyward report-exposure")
				return exitUsage
			}
		}
	}
	var actor audit.Actor
	if err == nil {
		actor, err = c.resolveActor()
	}
	if err == nil {
		c.ctx = audit.WithActor(c.ctx, actor)
		err = action(pos)
	}
	if err == nil {
		return exitOK
	}
	msg, code := describe(err)
	fmt.Fprintln(stderr, msg)
	return code
}

// commonFlags defines the flags every command takes.
func (c *cli) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.database, "database", c.database, "the PostgreSQL `URL` (default $DATABASE_URL)")
	if c.table == "" {
		c.table = "api_keys"
	}
	fs.StringVar(&c.table, "table", c.table, "the keys `table`, optionally schema-qualified, as given to postgres.WithTable")
	fs.Var(&c.actor, "actor", "who is acting, kept as the cli actor of every change in the audit trail (`NAME`; default $KEYWARD_ACTOR, else the OS user's name)")
	fs.StringVar(&c.product, "product", c.product, "the key format's product prefix, as given to apikey.NewFormat: keys look like `NAME`_live_... (default $KEYWARD_PRODUCT, else ck)")
	fs.Var(&c.checksum, "checksum", "create checksummed keys, as apikey.WithChecksum (default true if $KEYWARD_CHECKSUM=1)")
	fs.Func("max-lifetime", "the longest life of a new key, as keyward.WithMaxLifetime: a key created or rotated without an expiry gets one this `DURATION` from now, a later expiry is refused (such as 2160h or 90d; default no limit)", func(s string) error {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a positive duration, such as 2160h or 90d")
		}
		c.maxLifetime = d
		return nil
	})
	fs.Var(&c.requireExpiry, "require-expiry", "the `MODES` whose new keys must have an expiry, as keyward.WithRequiredExpiry: live, test or live,test")
}

// flagSet returns the flag set of cmd, with the common flags.
func (c *cli) flagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("keyward "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {} // run prints the usage line itself
	c.commonFlags(fs)
	return fs
}

// parseInterspersed parses flags and positional arguments in any order,
// as the go command does: "show -owner acct KEY_ID" and
// "show KEY_ID -owner acct" are the same. After "--", everything is an
// argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// help writes the overall usage.
func (c *cli) help(w io.Writer) {
	fmt.Fprint(w, `keyward manages the API keys kept in PostgreSQL by keyward's store/postgres.

Usage:

	keyward <command> [flags] [arguments]

Commands:

`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "\t%-16s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\t%-16s %s\n", "help", "show the help of a command")
	fmt.Fprint(w, `
Every command takes:

	-database URL    the PostgreSQL URL; default $DATABASE_URL
	-table NAME      the keys table, optionally schema-qualified; default api_keys
	-actor NAME      who is acting, recorded with every change in the audit
	                 trail; default $KEYWARD_ACTOR, else the OS user's name

and, to create keys as the application does, its key format and lifetime
rules (give the same as its keyward.New options):

	-product NAME    the key format's product prefix (apikey.NewFormat):
	                 keys look like NAME_live_...; default $KEYWARD_PRODUCT,
	                 else ck
	-checksum        create checksummed keys (apikey.WithChecksum); default
	                 on if $KEYWARD_CHECKSUM=1
	-max-lifetime DURATION
	                 the longest life of a new key (keyward.WithMaxLifetime):
	                 a key created or rotated without an expiry gets one
	                 DURATION from now, a later expiry is refused
	-require-expiry MODES
	                 the modes, live and/or test, comma-separated, whose new
	                 keys need an expiry (keyward.WithRequiredExpiry)

Raw keys are printed once, alone on standard output (create, rotate), and
read from standard input only (report-exposure), never from arguments.

Exit status: 0 success; 1 failure (database, key not found, already
revoked); 2 usage error (bad command, flags, arguments or values); 3 the
audit trail was tampered with (check-audit).

Run "keyward help <command>" for the flags of a command.
`)
}

// helpCommand runs "keyward help [command]".
func (c *cli) helpCommand(args []string) int {
	switch {
	case len(args) == 0:
		c.help(c.stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintln(c.stderr, "usage: keyward help [command]")
		return exitUsage
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(c.stderr, "keyward: unknown command %q\nRun \"keyward help\" for usage.\n", args[0])
		return exitUsage
	}
	c.commandHelp(c.stdout, cmd)
	return exitOK
}

// commandHelp writes the help of cmd: synopsis, details, flags.
func (c *cli) commandHelp(w io.Writer, cmd *command) {
	fs := c.flagSet(cmd)
	cmd.setup(c, fs)
	fmt.Fprintf(w, "usage: keyward %s %s\n\n%s\n", cmd.name, cmd.synopsis, strings.TrimSpace(cmd.details))
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// describe returns the message and exit code of err.
func describe(err error) (string, int) {
	var (
		usage *usageError
		input *keyward.InputError
		st    *keyward.StoreError
	)
	switch {
	case errors.As(err, &usage):
		return usage.msg, exitUsage
	case errors.As(err, &input):
		return input.Error(), exitUsage // "keyward: invalid <field>: <reason>"
	case errors.Is(err, keyward.ErrNotFound):
		return "keyward: key not found" + detail(err), exitFailure
	case errors.Is(err, keyward.ErrAlreadyRevoked):
		return "keyward: key already revoked; revocation is final" + detail(err), exitFailure
	case errors.Is(err, keyward.ErrKeyExpired):
		return "keyward: key expired; an expired key cannot be rotated" + detail(err), exitFailure
	case errors.Is(err, audit.ErrTampered):
		return "keyward: " + err.Error(), exitTampered
	case errors.Is(err, keyward.ErrReplaced):
		return "keyward: key already being replaced by an active key; revoke its replacement to rotate it again" + detail(err), exitFailure
	case errors.As(err, &st):
		msg := st.Error()
		if pg := (*pgconn.PgError)(nil); errors.As(err, &pg) && (pg.Code == "42P01" || pg.Code == "3F000") {
			msg += "\nkeyward: the keys table is missing: run \"keyward migrate\" (with the same -table)"
		}
		return msg, exitFailure
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "keyward: ") {
		msg = "keyward: " + msg
	}
	return msg, exitFailure
}

// A keyError adds which key an answer is about to the library's error.
type keyError struct {
	owner, id string
	err       error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// detail returns ": owner X has no key Y"-like context for err, if any.
func detail(err error) string {
	var ke *keyError
	if !errors.As(err, &ke) {
		return ""
	}
	return fmt.Sprintf(" (owner %s, key %s)", ke.owner, ke.id)
}

// databaseURL returns the database's URL: -database, else DATABASE_URL.
func (c *cli) databaseURL() (string, error) {
	url := c.database
	if url == "" {
		url = c.getenv("DATABASE_URL")
	}
	if url == "" {
		return "", usagef("no database: set DATABASE_URL or pass -database URL")
	}
	return url, nil
}

// openDB opens the database; the caller closes it.
func (c *cli) openDB() (*sql.DB, error) {
	url, err := c.databaseURL()
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("keyward: opening the database: %w", err)
	}
	db.SetMaxOpenConns(4)
	return db, nil
}

// openKeys opens the lifecycle over the database; the caller calls the
// returned function when done, which writes what is pending and closes.
func (c *cli) openKeys() (*keyward.Keys, func(), error) {
	db, err := c.openDB()
	if err != nil {
		return nil, nil, err
	}
	st, err := postgres.New(db, postgres.WithTable(c.table))
	if err != nil {
		db.Close()
		return nil, nil, usagef("invalid table: %v", err)
	}
	// The library's warnings (a key reported exposed, ...) are what this
	// command prints itself; its errors go to standard error.
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	// The lifecycle deletes usage counts past its retention as it writes
	// last-used times: this command, which writes none, must not delete
	// counts that the applications, whose retention it does not know,
	// keep.
	format, err := c.format()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	opts := []keyward.Option{keyward.WithLogger(logger), keyward.WithUsageRetention(keepUsage), keyward.WithFormat(format)}
	if c.maxLifetime > 0 {
		opts = append(opts, keyward.WithMaxLifetime(c.maxLifetime))
	}
	if len(c.requireExpiry) > 0 {
		opts = append(opts, keyward.WithRequiredExpiry(c.requireExpiry...))
	}
	keys, err := keyward.New(st, opts...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return keys, func() { keys.Close(); db.Close() }, nil
}

// keepUsage is the retention of usage counts this command gives the
// lifecycle: a century, so that it never deletes any.
const keepUsage = 100 * 365 * 24 * time.Hour

// maxKeyLine bounds the line a raw key is read from.
const maxKeyLine = 4096

// readKey reads a raw key, one line, from standard input.
func (c *cli) readKey() (string, error) {
	r := bufio.NewReaderSize(io.LimitReader(c.stdin, maxKeyLine+1), maxKeyLine+1)
	line, err := r.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("keyward: reading the key from standard input: %w", err)
	}
	if len(line) > maxKeyLine {
		return "", usagef("the first line of standard input is longer than %d bytes; it is not a key", maxKeyLine)
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", usagef("no key on standard input: pipe the raw key, one line, into the command")
	}
	return key, nil
}
