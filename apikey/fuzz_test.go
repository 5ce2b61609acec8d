package apikey_test

import (
	"errors"
	"regexp"
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
