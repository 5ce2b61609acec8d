package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

var auditCmd = &command{
	name:     "audit",
	synopsis: "-owner ID [-key KEY_ID] [-limit N] [-cursor CURSOR] [-json] [KEY_ID]",
	summary:  "list the audit trail of an owner's keys, or of one key, newest first",
	details: `
Audit lists the changes made to the owner's keys, newest first: the
entry's number in the owner's trail (SEQ), when, what (key.created,
key.updated, key.rotated, key.revoked, key.revoked_all, key.exposed), to
which key, by whom (cli:NAME for this command, see -actor; unknown when
nobody was named), and the reason and fields changed, with their values
before and after (metadata values are never kept). -key, or a KEY_ID
argument, lists the entries of that key only.

It prints one page of at most -limit entries; when there are more, it
says so on standard error, with the -cursor that prints the next page.
-json prints {"entries": [...], "next_cursor": "..."}: each entry's
event as the library writes it, with its seq, and the hex of the hashes
that chain it to the entry before (prev) and seal it (hash).`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		keyFlag := fs.String("key", "", "list only the entries of the key with this `ID` (or give it as the argument)")
		limit := fs.Int("limit", store.DefaultLimit, fmt.Sprintf("list at most `N` entries, 1 to %d: a page", store.MaxLimit))
		cursor := fs.String("cursor", "", "print the page this `cursor` starts, as the previous page printed it")
		asJSON := fs.Bool("json", false, "print JSON")
		return func(args []string) error {
			if err := needOwner(*owner); err != nil {
				return err
			}
			opts := keyward.AuditOptions{Limit: *limit, Cursor: *cursor}
			var err error
			switch {
			case len(args) > 1:
				return usagef("unexpected arguments after KEY_ID: %q", args[1:])
			case len(args) == 1 && *keyFlag != "":
				return usagef("give the key as -key or as the KEY_ID argument, not both")
			case len(args) == 1:
				opts.KeyID, err = keyward.ParseID(args[0])
			case *keyFlag != "":
				opts.KeyID, err = keyward.ParseID(*keyFlag)
			}
			if err != nil {
				return err
			}
			if *limit < 1 || *limit > store.MaxLimit {
				return usagef("invalid limit: must be 1 to %d", store.MaxLimit)
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			page, err := acct.Audit(c.ctx, opts)
			if err != nil {
				return err
			}
			if len(page.Entries) == 0 && opts.KeyID != uuid.Nil && opts.Cursor == "" {
				// No entries: say so if it is because the key is not the
				// owner's, as the other commands do.
				if _, err := acct.Get(c.ctx, opts.KeyID); err != nil {
					return &keyError{*owner, opts.KeyID.String(), err}
				}
			}
			if *asJSON {
				out := auditPageJSON{Entries: make([]auditEntryJSON, len(page.Entries)), Next: page.Next}
				for i, e := range page.Entries {
					out.Entries[i] = auditEntryJSON{Entry: e, Prev: hashText(e.Prev), Hash: hashText(e.Hash)}
				}
				return writeJSON(c.stdout, out)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tKIND\tKEY\tACTOR\tDETAILS")
			for _, e := range page.Entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, timeOr(e.At, "-"), e.Kind, e.KeyID,
					quoteIf(e.Actor.String()), eventDetails(e.Event))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(c.stderr, "keyward: more entries: run again with -cursor %s for the next page\n", page.Next)
			}
			return nil
		}
	},
}

// auditPageJSON is what audit -json prints: an AuditPage whose entries
// show their hashes.
type auditPageJSON struct {
	Entries []auditEntryJSON `json:"entries"`
	Next    string           `json:"next_cursor,omitempty"`
}

type auditEntryJSON struct {
	audit.Entry
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// hashText returns h in hex.
func hashText(h [32]byte) string { return hex.EncodeToString(h[:]) }

// eventDetails writes an event's reason and changes, for the table:
// "reason=...; field=to; field: from -> to".
func eventDetails(e audit.Event) string {
	var parts []string
	if e.Reason != "" {
		parts = append(parts, "reason="+quoteIf(e.Reason))
	}
	for _, ch := range e.Changes {
		switch {
		case ch.From == "" && ch.To == "" && e.Kind == audit.Created:
			parts = append(parts, ch.Field) // metadata: named, never shown
		case ch.From == "" && ch.To == "":
			parts = append(parts, ch.Field+" changed")
		case ch.From == "":
			parts = append(parts, ch.Field+"="+quoteIf(ch.To))
		case ch.To == "":
			parts = append(parts, ch.Field+": "+quoteIf(ch.From)+" -> none")
		default:
			parts = append(parts, ch.Field+": "+quoteIf(ch.From)+" -> "+quoteIf(ch.To))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// quoteIf quotes s, Go-style, if it is empty or holds spaces, ';' or
// characters a terminal should not be sent as they are.
func quoteIf(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r == ';' || unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

var checkAuditCmd = &command{
	name:     "check-audit",
	synopsis: "-owner ID [-expect SEQ:HASH] [-json]",
	summary:  "check that an owner's audit trail was not tampered with",
	details: `
Check-audit walks the owner's whole audit trail, oldest entry first, and
checks its hash chain: each entry must follow the one before, link to its
hash and match its own. If the trail holds, it prints its newest entry,
the head, as SEQ:HASH (the entry's number, and its hash in hex).

A chain alone cannot show that its newest entries were removed, or that
someone able to recompute the hashes rewrote it all: keep the head where
the database's users cannot write, and pass it to a later check with
-expect, which then also fails unless the trail still reaches that entry
with that hash.

If the trail does not hold, it names the first entry that was edited,
removed or reordered on standard error, and exits with status 3, apart
from the status 1 of a check that could not be made (the database), so
that a monitor tells one from the other.`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		expect := fs.String("expect", "", "a head that an earlier check printed, `SEQ:HASH`, that the trail must still hold")
		asJSON := fs.Bool("json", false, `print JSON: {"owner", "seq", "hash"}`)
		return func(args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if err := needOwner(*owner); err != nil {
				return err
			}
			var want auditHead
			if *expect != "" {
				var err error
				if want, err = parseHead(*expect); err != nil {
					return err
				}
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			head, err := acct.CheckAudit(c.ctx)
			if err != nil {
				return err
			}
			if want.seq != 0 {
				if err := checkHead(c, acct, *owner, head, want); err != nil {
					return err
				}
			}
			if *asJSON {
				out := struct {
					Owner string `json:"owner"`
					Seq   int64  `json:"seq"`
					Hash  string `json:"hash,omitempty"`
				}{Owner: *owner, Seq: head.Seq}
				if head.Seq != 0 {
					out.Hash = hashText(head.Hash)
				}
				return writeJSON(c.stdout, out)
			}
			if head.Seq == 0 {
				fmt.Fprintf(c.stdout, "the audit trail of owner %s is empty\n", *owner)
				return nil
			}
			fmt.Fprintf(c.stdout, "the audit trail of owner %s holds: head %d:%s\n", *owner, head.Seq, hashText(head.Hash))
			return nil
		}
	},
}

// An auditHead is a -expect: an entry's number and hash.
type auditHead struct {
	seq  int64
	hash [32]byte
}

// parseHead reads "SEQ:HASH".
func parseHead(s string) (auditHead, error) {
	bad := func() (auditHead, error) {
		return auditHead{}, usagef("invalid expect: %q; want SEQ:HASH as check-audit printed it, such as 12:%s", s, strings.Repeat("0f", 32))
	}
	n, h, ok := strings.Cut(s, ":")
	if !ok {
		return bad()
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	if err != nil || seq < 1 {
		return bad()
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return bad()
	}
	head := auditHead{seq: seq}
	copy(head.hash[:], b)
	return head, nil
}

// checkHead checks that the trail, which holds up to head, still holds
// the entry want that an earlier check printed: it returns an
// [*audit.TamperError] if the trail ends before it, or has another entry
// in its place.
func checkHead(c *cli, acct keyward.Owner, owner string, head keyward.AuditHead, want auditHead) error {
	if head.Seq < want.seq {
		return &audit.TamperError{Owner: owner, Seq: head.Seq + 1, Problem: fmt.Sprintf(
			"the trail ends at entry %d, before the entry %d that -expect names: its newest entries were removed", head.Seq, want.seq)}
	}
	got := head.Hash
	if head.Seq > want.seq {
		// The page before the cursor of entry want.seq+1 starts with
		// entry want.seq.
		page, err := acct.Audit(c.ctx, keyward.AuditOptions{Limit: 1, Cursor: store.AuditCursor(want.seq + 1)})
		if err != nil {
			return err
		}
		if len(page.Entries) != 1 || page.Entries[0].Seq != want.seq {
			return fmt.Errorf("keyward: reading entry %d of the audit trail of owner %s: the store returned another entry", want.seq, owner)
		}
		got = page.Entries[0].Hash
	}
	if got != want.hash {
		return &audit.TamperError{Owner: owner, Seq: want.seq, Problem: fmt.Sprintf(
			"its hash is %s, not the %s that -expect names: the trail was rewritten", hashText(got), hashText(want.hash))}
	}
	return nil
}

var usageCmd = &command{
	name:     "usage",
	synopsis: "-owner ID [-days N | -hours N] [-json] KEY_ID",
	summary:  "show a key's use per day or per hour",
	details: `
Usage prints how much the key was used, per UTC day over the last -days
(30 by default, today included) or per UTC hour over the last -hours
(this hour included): its successful verifications, and the requests
refused after verification, in all (REFUSED) and by why: a scope the
route needs is missing (SCOPE), a key of the other mode (MODE), its rate
limit or quota (LIMITED), a client outside its networks (NETWORK). The
last line totals the span.

-json prints {"key_id", "per" ("day" or "hour"), "from", "to", "total",
"buckets": [{"start", "counts"}]}, every day or hour of the span, oldest
first; counts that are zero are left out, but for verified.

The applications that verify keys write their counts with last-used
times, every flush interval (a second by default), and keep them 90 days
by default (keyward.WithUsageRetention).`,
	setup: func(c *cli, fs *flag.FlagSet) func([]string) error {
		owner := ownerFlag(fs)
		days := fs.Int("days", 30, fmt.Sprintf("report the last `N` days, per UTC day, 1 to %d", keyward.MaxUsageDays))
		hours := fs.Int("hours", 0, fmt.Sprintf("report the last `N` hours, per hour, 1 to %d, instead of days", keyward.MaxUsageDays*24))
		asJSON := fs.Bool("json", false, "print JSON")
		return func(args []string) error {
			id, err := ownedID(*owner, args)
			if err != nil {
				return err
			}
			per, n := 24*time.Hour, *days
			switch {
			case isSet(fs, "hours") && isSet(fs, "days"):
				return usagef("-days and -hours exclude each other")
			case isSet(fs, "hours"):
				per, n = time.Hour, *hours
				if n < 1 || n > keyward.MaxUsageDays*24 {
					return usagef("invalid hours: must be 1 to %d", keyward.MaxUsageDays*24)
				}
			case n < 1 || n > keyward.MaxUsageDays:
				return usagef("invalid days: must be 1 to %d", keyward.MaxUsageDays)
			}
			keys, done, err := c.openKeys()
			if err != nil {
				return err
			}
			defer done()
			acct := keys.Owner(*owner)
			if _, err := acct.Get(c.ctx, id); err != nil {
				return &keyError{*owner, id.String(), err}
			}
			now := keys.Now()
			from := now.Add(-time.Duration(n-1) * per)
			us, err := acct.Usage(c.ctx, keyward.UsageQuery{Keys: []uuid.UUID{id}, From: from, To: now, Per: per})
			if err != nil {
				return &keyError{*owner, id.String(), err}
			}
			u := us[0]
			if *asJSON {
				out := usageJSON{KeyID: u.KeyID, Per: "day", Total: u.Total, Buckets: u.Buckets}
				if per == time.Hour {
					out.Per = "hour"
				}
				if len(u.Buckets) > 0 {
					out.From, out.To = u.Buckets[0].Start, u.Buckets[len(u.Buckets)-1].Start.Add(per)
				}
				return writeJSON(c.stdout, out)
			}
			layout, head := time.DateOnly, "DAY"
			if per == time.Hour {
				layout, head = "2006-01-02T15:04Z", "HOUR"
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "%s\tVERIFIED\tREFUSED\tSCOPE\tMODE\tLIMITED\tNETWORK\n", head)
			row := func(label string, c store.Counts) {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", label, c.Verified, c.Refused(), c.Scope, c.Mode, c.Limited, c.Network)
			}
			for _, b := range u.Buckets {
				row(b.Start.UTC().Format(layout), b.Counts)
			}
			row("total", u.Total)
			return tw.Flush()
		}
	},
}

// usageJSON is what usage -json prints.
type usageJSON struct {
	KeyID   uuid.UUID             `json:"key_id"`
	Per     string                `json:"per"` // "day" or "hour"
	From    time.Time             `json:"from"`
	To      time.Time             `json:"to"`
	Total   store.Counts          `json:"total"`
	Buckets []keyward.UsageBucket `json:"buckets"`
}
