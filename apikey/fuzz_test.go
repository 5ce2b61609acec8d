package apikey_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// FuzzParse checks Parse against the reference grammar: it never panics,
// accepts exactly the keys matching ^<product>_(live|test)_[0-9A-Za-z]{32}$
// with the right mode, rejects everything else with an error matching
// ErrMalformed, and round-trips what Generate makes. It runs for the
// default product "ck" and for a custom one.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"ck_live_" + valid32,
		"ck_test_" + valid32,
		"acme_live_" + valid32,
		"ck_live_" + valid32[:31],
		"ck_live_" + valid32 + "x",
		"ck_prod_" + valid32,
		"ck_live_" + valid32[:31] + "é",
		"",
		"ck_",
		"Bearer ck_test_" + valid32,
	} {
		f.Add(seed)
	}
	custom, err := apikey.NewFormat("acme")
	if err != nil {
		f.Fatal(err)
	}
	formats := []struct {
		format  apikey.Format
		pattern *regexp.Regexp
	}{
		{apikey.Default, regexp.MustCompile(`^ck_(live|test)_[0-9A-Za-z]{32}$`)},
		{custom, regexp.MustCompile(`^acme_(live|test)_[0-9A-Za-z]{32}$`)},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, ff := range formats {
			mode, err := ff.format.Parse(raw)
			match := ff.pattern.FindStringSubmatch(raw)
			if match == nil {
				if err == nil {
					t.Fatalf("%s: Parse(%q) accepted a key outside the grammar", ff.format.Product(), raw)
				}
				if !errors.Is(err, apikey.ErrMalformed) {
					t.Fatalf("Parse(%q) error %v does not match ErrMalformed", raw, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: Parse(%q) = %v, want accepted", ff.format.Product(), raw, err)
			}
			if mode.String() != match[1] {
				t.Fatalf("Parse(%q) mode = %v, want %s", raw, mode, match[1])
			}
		}
		// Round trip: whatever the input, a generated key parses back.
		for _, ff := range formats {
			for _, m := range []apikey.Mode{apikey.Live, apikey.Test} {
				sec, err := ff.format.Generate(m)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := ff.format.Parse(sec.Reveal()); err != nil || got != m {
					t.Fatalf("Parse(Generate(%v)) = %v, %v", m, got, err)
				}
				if !ff.pattern.MatchString(sec.Reveal()) {
					t.Fatalf("generated key outside the grammar")
				}
			}
		}
	})
}

// FuzzFind checks Find and Redact on arbitrary text, for the plain and the
// checksummed format: every candidate parses and lies on token
// boundaries, a key alone redacts to its display prefix, and redacted text
// holds no candidate.
func FuzzFind(f *testing.F) {
	for _, seed := range []string{
		"Bearer ck_live_" + valid32,
		"ck_live_" + valid32 + "ck_test_" + valid32,
		withChecksum("ck_live_"+valid32) + " x",
		"xck_live_" + valid32,
		"ck_ck_live_ck_test_",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, format := range []apikey.Format{apikey.Default, checksummed} {
			for _, c := range format.Find(text) {
				key := text[c.Start:c.End]
				if m, err := format.Parse(key); err != nil || m != c.Mode {
					t.Fatalf("candidate %q: Parse = %v, %v; mode %v", key, m, err, c.Mode)
				}
				if c.Start > 0 && (isAlnum(text[c.Start-1]) || text[c.Start-1] == '_') || c.End < len(text) && isAlnum(text[c.End]) {
					t.Fatalf("candidate %q is not on a token boundary", key)
				}
				if red := format.Redact(key); red != key[:len(format.ModePrefix(c.Mode))+apikey.DisplayLen]+apikey.Redacted {
					t.Fatalf("Redact(%q) = %q", key, red)
				}
			}
			if found := format.Find(format.Redact(text)); found != nil {
				t.Fatalf("redacted text still holds %d candidates", len(found))
			}
		}
	})
}

func isAlnum(c byte) bool { return strings.IndexByte(alnum, c) >= 0 }
