package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store/postgres"
)

var migrateCmd = &command{
	name:     "migrate",
	synopsis: "[-database URL] [-table NAME]",
	summary:  "create the keys table, or bring it up to date",
	details: `
Migrate applies keyward's migrations to the database (postgres.Migrate):
idempotent, and safe when several instances start at once. Run it as the
table's owner.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		return func(args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			db, err := c.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			if err := postgres.Migrate(c.ctx, db, postgres.WithTable(c.table)); err != nil {
				return fmt.Errorf("keyward: migrating %s: %w", c.table, err)
			}
			fmt.Fprintf(c.stdout, "migrated %s\n", c.table)
			return nil
		}
	},
}

var createCmd = &command{
	name: "create",
	synopsis: "-owner ID -name NAME -mode live|test -scopes a,b [-expires TIME|DURATION] " +
		"[-metadata k=v]... [-rate N/PERIOD[,burst=N]] [-quota N/day|month] [-network CIDR]... [-canary] [-idempotency-key K]",
	summary: "create a key; prints the raw key alone on stdout",
	details: `
Create makes a key of the owner and prints its raw key, alone, followed by
a newline, on standard output, so that KEY=$(keyward create ...) captures
it; the summary (ID, prefix, owner, mode, scopes, expiry) goes to standard
error. The raw key is never stored and cannot be shown again.

A repeat with the same -idempotency-key creates nothing, prints no key and
fails (exit 1) naming the key the first call created.

Keys are of the default format, ck_live_... and ck_test_..., unless
-product (or $KEYWARD_PRODUCT) names the application's product prefix and
-checksum (or $KEYWARD_CHECKSUM=1) makes them checksummed, as its
apikey.NewFormat does: give the same, or its keyward.Keys will not verify
the key. -max-lifetime caps the expiry, and gives one to a key created
without -expires; -require-expiry live (or test, or live,test) refuses a
key of those modes without -expires (exit 2), as the application's
keyward.WithMaxLifetime and keyward.WithRequiredExpiry do.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		name := fs.String("name", "", "the key's `name`, such as \"Backend server\" (required)")
		mode := fs.String("mode", "", "the key's `mode`: live or test (required)")
		scopes := fs.String("scopes", "", "the key's `scopes`, comma-separated, such as sessions:read,sessions:write (required)")
		expires := fs.String("expires", "", "when the key stops working: an RFC 3339 `time` or a duration from now, such as 720h or 90d")
		var metadata listFlag
		fs.Var(&metadata, "metadata", "a metadata pair `key=value`; repeat for more")
		pol := newPolicyFlags(fs, false)
		canary := fs.Bool("canary", false, "make the key a canary: a tripwire that never authorizes and records every use")
		idem := fs.String("idempotency-key", "", "makes the create safe to retry: a repeat with the same `key` creates nothing")
		return func(args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := needOwner(*owner); err != nil {
				return err
			}
			p := keyward.CreateParams{Name: *name, Scopes: parseScopes(*scopes), Canary: *canary, IdempotencyKey: *idem}
			var err error
			if *mode == "" {
				return usagef("-mode is required: live or test")
			}
			if p.Mode, err = apikey.ParseMode(*mode); err != nil {
				return usagef("invalid mode: %q: %v", *mode, err)
			}
			if *expires != "" {
				if p.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
					return err
				}
			}
			if p.ExpiresAt.IsZero() && c.requireExpiry.requires(p.Mode) {
				return usagef("-expires is required for %s keys (-require-expiry %s): give a time or a duration from now, such as 720h or 90d",
					p.Mode, c.requireExpiry.String())
			}
			if len(metadata) > 0 {
				if p.Metadata, err = parseMetadata(metadata); err != nil {
					return err
				}
			}
			if pol.given() {
				p.Policy = &apikey.Policy{}
				if err := pol.apply(p.Policy); err != nil {
					return err
				}
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			sec, rec, err := keys.Owner(*owner).Create(c.ctx, p)
			if errors.Is(err, keyward.ErrAlreadyCreated) {
				return fmt.Errorf("keyward: already created: this idempotency key created key %s (%s) before; its raw key is not shown again", rec.ID, rec.Prefix)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, sec.Reveal())
			fmt.Fprintf(c.stderr, "Created key %s; the raw key, on standard output, is shown only this once.\n", rec.ID)
			summary(c.stderr, rec, time.Now())
			return nil
		}
	},
}

var listCmd = &command{
	name:     "list",
	synopsis: "-owner ID [-mode live|test] [-status active|revoked|expired] [-limit N] [-json | -q]",
	summary:  "list an owner's keys, newest first",
	details: `
List prints the owner's keys, newest first, as a table, as JSON (-json:
an array of the records as the library writes them, each with its status),
or as IDs only, one a line (-q).`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		mode := fs.String("mode", "", "list only keys of this `mode`: live or test")
		status := fs.String("status", "", "list only keys with this `status`: active, revoked or expired")
		limit := fs.Int("limit", 100, "list at most `N` keys; 0 lists every key")
		asJSON := fs.Bool("json", false, "print JSON")
		quiet := fs.Bool("q", false, "print only the key IDs")
		return func(args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := needOwner(*owner); err != nil {
				return err
			}
			if *limit < 0 {
				return usagef("invalid limit: must not be negative")
			}
			if *asJSON && *quiet {
				return usagef("-json and -q exclude each other")
			}
			var opts keyward.ListOptions
			var err error
			if *mode != "" {
				if opts.Mode, err = apikey.ParseMode(*mode); err != nil {
					return usagef("invalid mode: %q: %v", *mode, err)
				}
			}
			if *status != "" {
				if opts.Status, err = apikey.ParseStatus(*status); err != nil {
					return usagef("invalid status: %q: %v", *status, err)
				}
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			var recs []apikey.Record
			more := false
			for {
				opts.Limit = 1000
				if *limit > 0 {
					opts.Limit = min(*limit-len(recs), 1000)
				}
				page, err := acct.List(c.ctx, opts)
				if err != nil {
					return err
				}
				recs = append(recs, page.Keys...)
				if page.Next == "" {
					break
				}
				if *limit > 0 && len(recs) >= *limit {
					more = true
					break
				}
				opts.Cursor = page.Next
			}
			now := keys.Now()
			switch {
			case *asJSON:
				out := make([]apikey.RecordAt, len(recs))
				for i, r := range recs {
					out[i] = r.At(now)
				}
				if err := writeJSON(c.stdout, out); err != nil {
					return err
				}
			case *quiet:
				for _, r := range recs {
					fmt.Fprintln(c.stdout, r.ID)
				}
			default:
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tMODE\tSTATUS\tLAST USED\tCREATED")
				for _, r := range recs {
					st := r.Status(now).String()
					if r.Canary {
						st += " (canary)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Prefix, r.Mode, st,
						timeOr(r.LastUsedAt, "never"), timeOr(r.CreatedAt, "-"))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if more {
				fmt.Fprintf(c.stderr, "keyward: more than %d keys; raise -limit, or -limit 0 for all\n", *limit)
			}
			return nil
		}
	},
}

var showCmd = &command{
	name:     "show",
	synopsis: "-owner ID [-json] KEY_ID",
	summary:  "show every field of a key",
	details: `
Show prints every field of the key: status, scopes, metadata, expiry,
rotation links, revocation and its reason, exposure, policy, canary.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		asJSON := fs.Bool("json", false, "print JSON: the record as the library writes it, with its status")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			rec, err := keys.Owner(*owner).Get(c.ctx, id)
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			if *asJSON {
				return writeJSON(c.stdout, rec.At(keys.Now()))
			}
			return details(c.stdout, rec, keys.Now())
		}
	},
}

var updateCmd = &command{
	name: "update",
	synopsis: "-owner ID [-name NAME] [-scopes a,b] [-metadata k=v]... [-no-metadata] [-expires TIME|DURATION] " +
		"[-rate ...] [-quota ...] [-network CIDR]... [-no-policy] KEY_ID",
	summary: "rename a key, narrow its scopes, change its metadata, expiry or policy",
	details: `
Update changes a key, all at once or not at all, and prints it as show
does. Scopes only narrow and an expiry only moves earlier: a key never
gains power; create a new key to grant more. -metadata replaces every
pair. -rate, -quota and -network change those parts of the key's policy
and keep the others; -no-policy removes the policy.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		name := fs.String("name", "", "the new `name`")
		scopes := fs.String("scopes", "", "the new `scopes`, comma-separated: some of those the key holds")
		expires := fs.String("expires", "", "an earlier expiry: an RFC 3339 `time` or a duration from now, such as 24h")
		var metadata listFlag
		fs.Var(&metadata, "metadata", "a metadata pair `key=value`, repeatable; together they replace the key's metadata")
		noMetadata := fs.Bool("no-metadata", false, "remove every metadata pair")
		pol := newPolicyFlags(fs, true)
		noPolicy := fs.Bool("no-policy", false, "remove the key's policy: no rate limit, quota or networks")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			var p keyward.UpdateParams
			if isSet(fs, "name") {
				if strings.TrimSpace(*name) == "" {
					return usagef("invalid name: must not be empty")
				}
				p.Name = *name
			}
			if isSet(fs, "scopes") {
				if p.Scopes = parseScopes(*scopes); p.Scopes.IsEmpty() {
					return usagef("invalid scopes: at least one scope is required")
				}
			}
			if *expires != "" {
				if p.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
					return err
				}
			}
			switch {
			case *noMetadata && len(metadata) > 0:
				return usagef("-metadata and -no-metadata exclude each other")
			case *noMetadata:
				p.Metadata = map[string]string{}
			case len(metadata) > 0:
				if p.Metadata, err = parseMetadata(metadata); err != nil {
					return err
				}
			}
			if *noPolicy && pol.given() {
				return usagef("-no-policy excludes -rate, -quota and -network")
			}
			if p.Name == "" && p.Scopes.IsEmpty() && p.Metadata == nil && p.ExpiresAt.IsZero() && !*noPolicy && !pol.given() {
				return usagef("nothing to update: give -name, -scopes, -metadata, -no-metadata, -expires, -rate, -quota, -network or -no-policy")
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			switch {
			case *noPolicy:
				p.Policy = &apikey.Policy{}
			case pol.given():
				cur, err := acct.Get(c.ctx, id)
				if err != nil {
					return &keyError{*owner, id.String(), err}
				}
				next := cur.Policy.Clone()
				if next == nil {
					next = &apikey.Policy{}
				}
				if err := pol.apply(next); err != nil {
					return err
				}
				p.Policy = next
			}
			rec, err := acct.Update(c.ctx, id, p)
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			fmt.Fprintf(c.stderr, "Updated key %s.\n", rec.ID)
			return details(c.stdout, rec, keys.Now())
		}
	},
}

var rotateCmd = &command{
	name:     "rotate",
	synopsis: "-owner ID [-overlap DURATION] [-expires TIME|DURATION] KEY_ID",
	summary:  "replace a key; prints the new raw key alone on stdout",
	details: `
Rotate creates the key's replacement (same name, mode, scopes, metadata
and policy) and prints its raw key, alone, followed by a newline, on
standard output; the summary goes to standard error. The old key keeps
working for the overlap, then expires. Revoke it early with "keyward
revoke" once its users have switched.

The replacement is of the format of -product and -checksum, and under the
rules of -max-lifetime and -require-expiry (see "keyward help create").`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		overlap := fs.Duration("overlap", 24*time.Hour, "how long the old key keeps working; 0 ends it now")
		expires := fs.String("expires", "", "the new key's expiry, an RFC 3339 `time` or a duration from now; default the old key's")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			p := keyward.RotateParams{Overlap: *overlap}
			if *expires != "" {
				if p.ExpiresAt, err = parseExpiry(*expires, time.Now()); err != nil {
					return err
				}
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			sec, rec, err := acct.Rotate(c.ctx, id, p)
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			fmt.Fprintln(c.stdout, sec.Reveal())
			until := "now"
			if old, err := acct.Get(c.ctx, id); err == nil && !old.ExpiresAt.IsZero() {
				until = "until " + timeOr(old.ExpiresAt, "")
			}
			fmt.Fprintf(c.stderr, "Rotated key %s to %s; the old key works %s. The new raw key, on standard output, is shown only this once.\n", id, rec.ID, until)
			summary(c.stderr, rec, keys.Now())
			return nil
		}
	},
}

var revokeCmd = &command{
	name:     "revoke",
	synopsis: "-owner ID [-reason TEXT] KEY_ID",
	summary:  "revoke a key, at once and for good",
	details: `
Revoke ends the key at once; revocation is final. The key stays listed,
with the reason, for audit.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		reason := fs.String("reason", "", "why, kept with the key, such as \"rotated out\" (`text`)")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			rec, err := keys.Owner(*owner).Revoke(c.ctx, id, keyward.RevokeParams{Reason: *reason})
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			fmt.Fprintf(c.stdout, "revoked %s %s%s\n", rec.ID, rec.Prefix, because(rec.RevokedReason))
			return nil
		}
	},
}

var revokeAllCmd = &command{
	name:     "revoke-all",
	synopsis: "-owner ID [-reason TEXT] -yes",
	summary:  "revoke every active key of an owner",
	details: `
Revoke-all revokes every active key of the owner in one step, for an
account closed or compromised. It needs -yes, always: there is no undo.
It prints each key it revoked.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		reason := fs.String("reason", "", "why, kept with every key, such as \"account closed\"")
		yes := fs.Bool("yes", false, "confirm: revoke every active key of the owner")
		return func(args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := needOwner(*owner); err != nil {
				return err
			}
			if !*yes {
				return usagef("revoke-all revokes every active key of owner %s, for good; run it again with -yes to confirm", *owner)
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			recs, err := keys.Owner(*owner).RevokeAll(c.ctx, keyward.RevokeParams{Reason: *reason})
			if err != nil {
				return err
			}
			for _, r := range recs {
				fmt.Fprintf(c.stdout, "revoked %s %s%s\n", r.ID, r.Prefix, because(r.RevokedReason))
			}
			fmt.Fprintf(c.stderr, "Revoked %d keys of owner %s.\n", len(recs), *owner)
			return nil
		}
	},
}

var reportExposureCmd = &command{
	name:     "report-exposure",
	synopsis: "-source SOURCE [-url URL] < key",
	summary:  "report a leaked key, read from stdin",
	details: `
Report-exposure reads a raw key, one line, from standard input (never from
the command line: shell history and ps would keep it) and reports it found
exposed: if it is one of the database's keys, it is marked exposed with the
source and URL and revoked with the reason "exposed" (a canary is marked
and stays armed). Text that is not one of the keys changes nothing and is
no error. Reports are idempotent.

	printf '%s\n' "$KEY" | keyward report-exposure -source support`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		source := fs.String("source", "", "who found the key, such as github or support (required)")
		url := fs.String("url", "", "where the key was found")
		return func(args []string) error {
			if len(args) > 0 {
				// Never echo it: it may be the key.
				return usagef("report-exposure takes no arguments: pipe the raw key into it on standard input, never on the command line")
			}
			if *source == "" {
				return usagef("-source is required: who found the key, such as github or support")
			}
			raw, err := c.readKey()
			if err != nil {
				return err
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			rep, err := keys.ReportExposure(c.ctx, raw, keyward.Exposure{Source: *source, URL: *url})
			if err != nil {
				return err
			}
			rec := rep.Record
			switch {
			case !rep.Known:
				fmt.Fprintln(c.stdout, "not one of our keys: nothing changed")
			case !rep.First:
				fmt.Fprintf(c.stdout, "key %s %s of owner %s was reported exposed before", rec.ID, rec.Prefix, rec.Owner)
				if e := rec.Exposure; e != nil {
					fmt.Fprintf(c.stdout, " (%s, by %s)", timeOr(e.At, "-"), e.Source)
				}
				fmt.Fprintln(c.stdout, ": nothing changed")
			case rec.Revoked():
				fmt.Fprintf(c.stdout, "key %s %s of owner %s: marked exposed and revoked%s\n", rec.ID, rec.Prefix, rec.Owner, because(rec.RevokedReason))
			default:
				what := "marked exposed, not revoked"
				if rec.Canary {
					what = "a canary: marked exposed, and stays armed"
				}
				fmt.Fprintf(c.stdout, "key %s %s of owner %s: %s\n", rec.ID, rec.Prefix, rec.Owner, what)
			}
			return nil
		}
	},
}

var tripsCmd = &command{
	name:     "trips",
	synopsis: "-owner ID [-limit N] [-json] KEY_ID",
	summary:  "list a canary key's trips, newest first",
	details: `
Trips lists the uses of a canary key, newest first: when, from which
address, with which User-Agent, on which route.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		limit := fs.Int("limit", 100, "list at most `N` trips")
		asJSON := fs.Bool("json", false, "print JSON")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			if *limit < 0 {
				return usagef("invalid limit: must not be negative")
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			rec, err := acct.Get(c.ctx, id)
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			if !rec.Canary {
				fmt.Fprintf(c.stderr, "keyward: key %s is not a canary; it has no trips\n", id)
			}
			trips, err := acct.Trips(c.ctx, id, *limit)
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			if *asJSON {
				if trips == nil {
					trips = []apikey.Trip{}
				}
				return writeJSON(c.stdout, trips)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tADDR\tUSER AGENT\tROUTE")
			for _, t := range trips {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", timeOr(t.At, "-"), dash(t.Addr), dash(t.UserAgent), dash(t.Route))
			}
			return tw.Flush()
		}
	},
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeOr formats t in UTC, RFC 3339, or returns none if t is zero.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return fmt.Sprintf(" (reason: %s)", reason)
}

// summary writes what create and rotate tell on standard error: never
// the key.
func summary(w io.Writer, r apikey.Record, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "  id:\t%s\n", r.ID)
	fmt.Fprintf(tw, "  prefix:\t%s\n", r.Prefix)
	fmt.Fprintf(tw, "  owner:\t%s\n", r.Owner)
	fmt.Fprintf(tw, "  name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "  mode:\t%s\n", r.Mode)
	fmt.Fprintf(tw, "  scopes:\t%s\n", r.Scopes)
	fmt.Fprintf(tw, "  expires:\t%s\n", timeOr(r.ExpiresAt, "never"))
	if r.Canary {
		fmt.Fprintf(tw, "  canary:\tyes\n")
	}
	if !r.Policy.IsZero() {
		fmt.Fprintf(tw, "  policy:\t%s\n", policyText(r.Policy))
	}
	tw.Flush()
}

// details writes every field of r, for show and update.
func details(w io.Writer, r apikey.Record, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("ID", r.ID.String())
	row("Owner", r.Owner)
	row("Name", r.Name)
	row("Prefix", r.Prefix)
	row("Mode", r.Mode.String())
	row("Status", r.Status(now).String())
	row("Canary", yesNo(r.Canary))
	row("Scopes", r.Scopes.String())
	if r.Metadata.IsEmpty() {
		row("Metadata", "none")
	}
	for k, v := range r.Metadata.All() {
		row("Metadata", k+"="+v)
	}
	row("Created", timeOr(r.CreatedAt, "-"))
	row("Last used", timeOr(r.LastUsedAt, "never"))
	row("Expires", timeOr(r.ExpiresAt, "never"))
	if r.Replaces != uuid.Nil {
		row("Replaces", r.Replaces.String())
	}
	if r.ReplacedBy != uuid.Nil {
		row("Replaced by", r.ReplacedBy.String())
	}
	row("Revoked", timeOr(r.RevokedAt, "no"))
	if r.Revoked() {
		row("Revoked reason", dash(r.RevokedReason))
	}
	if e := r.Exposure; e != nil {
		exp := fmt.Sprintf("%s, by %s", timeOr(e.At, "-"), e.Source)
		if e.URL != "" {
			exp += ", at " + e.URL
		}
		row("Exposed", exp)
	} else {
		row("Exposed", "no")
	}
	row("Policy", policyText(r.Policy))
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// policyText writes a policy as the flags read it.
func policyText(p *apikey.Policy) string {
	if p.IsZero() {
		return "none"
	}
	var parts []string
	if r := p.Rate; !r.IsZero() {
		s := fmt.Sprintf("rate %d/%s", r.Requests, r.Period)
		if r.Burst != 0 {
			s += fmt.Sprintf(",burst=%d", r.Burst)
		}
		parts = append(parts, s)
	}
	if q := p.Quota; !q.IsZero() {
		parts = append(parts, fmt.Sprintf("quota %d/%s", q.Requests, q.Per))
	}
	if len(p.Networks) > 0 {
		nets := make([]string, len(p.Networks))
		for i, n := range p.Networks {
			nets[i] = n.String()
		}
		parts = append(parts, "networks "+strings.Join(nets, ","))
	}
	return strings.Join(parts, "; ")
}
