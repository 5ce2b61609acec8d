package scanrules_test

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scanrules"
)

// A gitleaksRule is a [[rules]] table of a configuration from
// scanrules.Gitleaks.
type gitleaksRule struct {
	ID, Description string
	Regex           *regexp.Regexp
	SecretGroup     int
	Entropy         float64
	Keywords, Tags  []string
}

// parseGitleaks reads the TOML that scanrules.Gitleaks writes: comments,
// tables, and one key = value a line, with literal strings (between three
// single quotes), basic strings (between double quotes), arrays of basic
// strings on one line, numbers and booleans. It fails on anything else,
// so that a change to the output shows here. The gitleaks binary, in
// TestGitleaksBinary, reads the same file for real.
func parseGitleaks(t *testing.T, toml []byte) (rules []gitleaksRule, useDefault bool) {
	t.Helper()
	table := ""
	for n, line := range strings.Split(string(toml), "\n") {
		n++
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			table = line
			if table == "[[rules]]" {
				rules = append(rules, gitleaksRule{})
			} else if table != "[extend]" {
				t.Fatalf("line %d: unknown table %s", n, line)
			}
			continue
		}
		key, value, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("line %d: not key = value: %q", n, line)
		}
		str := func() string {
			t.Helper()
			if v, ok := strings.CutPrefix(value, "'''"); ok && strings.HasSuffix(v, "'''") {
				return strings.TrimSuffix(v, "'''")
			}
			s, err := strconv.Unquote(value)
			if err != nil || !strings.HasPrefix(value, `"`) {
				t.Fatalf("line %d: not a string: %s", n, value)
			}
			return s
		}
		list := func() []string {
			t.Helper()
			v, ok := strings.CutPrefix(value, "[")
			if v, ok = strings.CutSuffix(v, "]"); !ok {
				t.Fatalf("line %d: not an array: %s", n, value)
			}
			var out []string
			for _, e := range strings.Split(v, ", ") {
				s, err := strconv.Unquote(e)
				if err != nil {
					t.Fatalf("line %d: %s: %v", n, e, err)
				}
				out = append(out, s)
			}
			return out
		}
		var err error
		switch table + " " + key {
		case " title":
			str()
		case "[extend] useDefault":
			useDefault, err = strconv.ParseBool(value)
		case "[[rules]] id":
			rules[len(rules)-1].ID = str()
		case "[[rules]] description":
			rules[len(rules)-1].Description = str()
		case "[[rules]] regex":
			rules[len(rules)-1].Regex, err = regexp.Compile(str())
		case "[[rules]] secretGroup":
			rules[len(rules)-1].SecretGroup, err = strconv.Atoi(value)
		case "[[rules]] entropy":
			rules[len(rules)-1].Entropy, err = strconv.ParseFloat(value, 64)
		case "[[rules]] keywords":
			rules[len(rules)-1].Keywords = list()
		case "[[rules]] tags":
			rules[len(rules)-1].Tags = list()
		default:
			t.Fatalf("line %d: unknown key %q in table %q", n, key, table)
		}
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
	}
	return rules, useDefault
}

// scanGitleaks does what gitleaks does with rules on one file, but
// decoding: the keyword prefilter (any keyword, in any case), the regex,
// the secret group and the entropy threshold (a secret at or below it is
// skipped).
func scanGitleaks(rules []gitleaksRule, file, text string) []finding {
	var found []finding
	lower := strings.ToLower(text)
	for _, r := range rules {
		if !slices.ContainsFunc(r.Keywords, func(k string) bool { return strings.Contains(lower, strings.ToLower(k)) }) {
			continue
		}
		for _, m := range r.Regex.FindAllStringSubmatchIndex(text, -1) {
			secret := text[m[2*r.SecretGroup]:m[2*r.SecretGroup+1]]
			if shannon(secret) <= r.Entropy {
				continue
			}
			found = append(found, finding{file, lineOf(text, m[0]), r.ID, secret})
		}
	}
	return found
}

// shannon is the Shannon entropy of s in bits per byte, as gitleaks
// computes it.
func shannon(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	e := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			e -= p * math.Log2(p)
		}
	}
	return e
}

// scanGitHub finds p's matches in text as GitHub's definition of a custom
// pattern reads: every text[i:j] that the secret format matches whole,
// with text[:i] ending in what Before secret matches and text[j:] starting
// with what After secret matches. It tries every such split, so that it
// holds the patterns to the loosest reading of the definition.
func scanGitHub(t *testing.T, p scanrules.GitHubPattern, file, text string) []finding {
	t.Helper()
	before := regexp.MustCompile(`(?:` + p.BeforeSecret + `)$`)
	starts := regexp.MustCompile(`^(?:` + p.SecretFormat + `)`)
	secret := regexp.MustCompile(`^(?:` + p.SecretFormat + `)$`)
	after := regexp.MustCompile(`^(?:` + p.AfterSecret + `)`)
	var found []finding
	for i := 0; i <= len(text); i++ {
		if !starts.MatchString(text[i:]) || !before.MatchString(text[:i]) {
			continue
		}
		for j := i + 1; j <= len(text); j++ {
			if secret.MatchString(text[i:j]) && after.MatchString(text[j:]) {
				found = append(found, finding{file, lineOf(text, i), p.Name, text[i:j]})
			}
		}
	}
	return found
}

// scanFind reports the keys f.Find returns, under their mode.
func scanFind(f apikey.Format, file, text string) []finding {
	var found []finding
	for _, c := range f.Find(text) {
		found = append(found, finding{file, lineOf(text, c.Start), c.Mode.String(), text[c.Start:c.End]})
	}
	return found
}

// compare reports the findings missing from got and those it has in
// excess.
func compare(t *testing.T, what string, got, want []finding) {
	t.Helper()
	sortFindings(got)
	for _, w := range want {
		if i := slices.Index(got, w); i >= 0 {
			got = slices.Delete(got, i, i+1)
		} else {
			t.Errorf("%s: missing %v", what, w)
		}
	}
	for _, g := range got {
		t.Errorf("%s: unexpected %v", what, g)
	}
}

// fixtures are the formats the tests run against, with their fixtures.
func fixtures(t *testing.T) []struct {
	name   string
	format apikey.Format
	files  []fixtureFile
} {
	sum, sumFiles := checksumFixture(t)
	return []struct {
		name   string
		format apikey.Format
		files  []fixtureFile
	}{
		{"plain", apikey.Default, plainFixture(t)},
		{"checksummed", sum, sumFiles},
	}
}

// TestFixtureIsFindsTruth checks the fixture's find lists against
// apikey.Format.Find, which the scanners are then held to, and its
// allowlisted marks against gitleaks' default allowlist.
func TestFixtureIsFindsTruth(t *testing.T) {
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			var got []finding
			for _, file := range fx.files {
				got = append(got, scanFind(fx.format, file.name, file.content())...)
			}
			compare(t, "Find", got, expected(fx.format, fx.files, byFind))
			// The samples that gitleaks' default allowlist drops are
			// those that say so.
			for _, file := range fx.files {
				for _, s := range file.samples {
					if got := slices.ContainsFunc(s.find, defaultAllowlist.MatchString); got != s.allowlisted {
						t.Errorf("%s: %q: allowlisted is %v, but the default allowlist matches: %v", file.name, s.name, s.allowlisted, got)
					}
				}
			}
		})
	}
}

func TestGitleaksRules(t *testing.T) {
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			toml, err := scanrules.Gitleaks(fx.format)
			if err != nil {
				t.Fatal(err)
			}
			rules, useDefault := parseGitleaks(t, toml)
			if !useDefault {
				t.Error("the configuration does not extend gitleaks' default rules")
			}
			var ids []string
			for _, r := range rules {
				ids = append(ids, r.ID)
				m := apikey.Live
				if strings.HasSuffix(r.ID, "-test-api-key") {
					m = apikey.Test
				}
				if want := []string{"keyward", "api-key", m.String()}; !reflect.DeepEqual(r.Tags, want) {
					t.Errorf("%s: tags %q, want %q", r.ID, r.Tags, want)
				}
				if want := []string{fx.format.ModePrefix(m)}; !reflect.DeepEqual(r.Keywords, want) {
					t.Errorf("%s: keywords %q, want %q", r.ID, r.Keywords, want)
				}
				if !strings.Contains(r.Description, fx.format.ModePrefix(m)) {
					t.Errorf("%s: the description %q does not show the keys' prefix", r.ID, r.Description)
				}
			}
			if want := []string{"ck-live-api-key", "ck-test-api-key"}; !reflect.DeepEqual(ids, want) {
				t.Fatalf("rule IDs %q, want %q", ids, want)
			}
			var got []finding
			for _, file := range fx.files {
				got = append(got, scanGitleaks(rules, file.name, file.content())...)
			}
			compare(t, "gitleaks rules", got, expected(fx.format, fx.files, byGitleaksRegex))
		})
	}
}

func TestGitHubPatterns(t *testing.T) {
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			patterns, err := scanrules.GitHubPatterns(fx.format)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			var got []finding
			for _, p := range patterns {
				names = append(names, p.Name)
				for _, file := range fx.files {
					got = append(got, scanGitHub(t, p, file.name, file.content())...)
				}
			}
			if want := []string{"ck live-mode API key", "ck test-mode API key"}; !reflect.DeepEqual(names, want) {
				t.Fatalf("pattern names %q, want %q", names, want)
			}
			compare(t, "GitHub patterns", got, expected(fx.format, fx.files, byGitHub))
		})
	}
}

// TestGitHubSyntax checks that every expression of the GitHub patterns
// keeps to a subset of what Hyperscan, GitHub's library, accepts.
func TestGitHubSyntax(t *testing.T) {
	patterns, err := scanrules.GitHubPatterns(apikey.Default, mustFormat(t, "acme", apikey.WithChecksum()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patterns {
		for _, expr := range []string{p.SecretFormat, p.BeforeSecret, p.AfterSecret} {
			if err := hyperscanSubset(expr); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		}
		if regexp.MustCompile(p.SecretFormat).MatchString("") {
			t.Errorf("%s: the secret format matches the empty string, which Hyperscan refuses", p.Name)
		}
		if got := scanGitHub(t, p, "sample", p.TestString); len(got) != 1 || !strings.HasSuffix(p.TestString, got[0].Secret) {
			t.Errorf("%s: the test string %q matches as %v", p.Name, p.TestString, got)
		}
	}
	// The check refuses what Hyperscan or GitHub would not take.
	for _, bad := range []string{`\bck_live_`, `(?i)ck_live_`, `ck_live_\w+`, `(ck)_live_`, `ck_live_.*`, `ck_live_(?:x{2,})`} {
		if hyperscanSubset(bad) == nil {
			t.Errorf("%q passes the check", bad)
		}
	}
}

// hyperscanSubset returns an error unless expr keeps to literals without
// case folding, character classes, repetition with a small upper bound,
// optional parts, non-capturing groups, alternation, \A and \z: a subset
// of what Hyperscan accepts. No \b, no lookaround (which Go does not
// parse either), no backreference, no flag, no capture.
func hyperscanSubset(expr string) error {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return err
	}
	var check func(*syntax.Regexp) error
	check = func(r *syntax.Regexp) error {
		switch r.Op {
		case syntax.OpLiteral:
			if r.Flags&syntax.FoldCase != 0 {
				return fmt.Errorf("%q folds case", expr)
			}
		case syntax.OpCharClass, syntax.OpConcat, syntax.OpAlternate, syntax.OpQuest,
			syntax.OpBeginText, syntax.OpEndText:
		case syntax.OpRepeat:
			if r.Max < 0 || r.Max > 64 {
				return fmt.Errorf("%q repeats without a small bound", expr)
			}
		default:
			return fmt.Errorf("%q uses %v", expr, r.Op)
		}
		for _, s := range r.Sub {
			if err := check(s); err != nil {
				return err
			}
		}
		return nil
	}
	return check(re)
}

// TestGeneratedKeysAreFound runs the gitleaks rules and the GitHub
// patterns over keys that formats generate: each is found whole, under its
// mode's rule, however its random characters fall, so the entropy
// threshold never drops one.
func TestGeneratedKeysAreFound(t *testing.T) {
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			toml, err := scanrules.Gitleaks(fx.format)
			if err != nil {
				t.Fatal(err)
			}
			rules, _ := parseGitleaks(t, toml)
			patterns, err := scanrules.GitHubPatterns(fx.format)
			if err != nil {
				t.Fatal(err)
			}
			lowest := math.Inf(1)
			for i := range 4000 {
				m := []apikey.Mode{apikey.Live, apikey.Test}[i%2]
				key := generate(t, fx.format, m)
				lowest = min(lowest, shannon(key))
				text := "KEY=" + key + "\n"
				want := []finding{{"f", 1, ruleName(fx.format, m, byGitleaksRegex), key}}
				if got := scanGitleaks(rules, "f", text); !reflect.DeepEqual(got, want) {
					t.Fatalf("gitleaks rules: %v, want %v", got, want)
				}
				var got []finding
				for _, p := range patterns {
					got = append(got, scanGitHub(t, p, "f", text)...)
				}
				if want := []finding{{"f", 1, ruleName(fx.format, m, byGitHub), key}}; !reflect.DeepEqual(got, want) {
					t.Fatalf("GitHub patterns: %v, want %v", got, want)
				}
			}
			// The threshold is 3; keys stay well above it.
			if lowest <= 3.5 {
				t.Errorf("a generated key has an entropy of %.2f, close to the threshold", lowest)
			}
			t.Logf("lowest entropy of 4000 keys: %.2f", lowest)
		})
	}
}

// TestSeveralFormats checks that the rules of several products each find
// their own keys only.
func TestSeveralFormats(t *testing.T) {
	acme := mustFormat(t, "acme", apikey.WithChecksum())
	toml, err := scanrules.Gitleaks(apikey.Default, acme)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := parseGitleaks(t, toml)
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	if want := []string{"ck-live-api-key", "ck-test-api-key", "acme-live-api-key", "acme-test-api-key"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("rule IDs %q, want %q", ids, want)
	}
	ck, acmeKey := generate(t, apikey.Default, apikey.Test), generate(t, acme, apikey.Live)
	text := "CK=" + ck + "\nACME=" + acmeKey + "\nACME_IN_CK_FORMAT=" + acme.ModePrefix(apikey.Test) + fake1[:apikey.RandomLen-4] + "\n"
	got := scanGitleaks(rules, "f", text)
	want := []finding{{"f", 1, "ck-test-api-key", ck}, {"f", 2, "acme-live-api-key", acmeKey}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	md, err := scanrules.GitHubMarkdown(apikey.Default, acme)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"## ck live-mode API key", "## ck test-mode API key", "## acme live-mode API key", "## acme test-mode API key"} {
		if !strings.Contains(string(md), "\n"+name+"\n") {
			t.Errorf("the Markdown has no section %q", name)
		}
	}
}

func TestRefusedFormats(t *testing.T) {
	tests := []struct {
		name    string
		formats []apikey.Format
	}{
		{"no format", nil},
		{"zero Format", []apikey.Format{{}}},
		{"one product twice", []apikey.Format{apikey.Default, mustFormat(t, apikey.DefaultProduct, apikey.WithChecksum())}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := scanrules.Gitleaks(tc.formats...); err == nil {
				t.Errorf("Gitleaks = %d bytes, want an error", len(b))
			}
			if p, err := scanrules.GitHubPatterns(tc.formats...); err == nil {
				t.Errorf("GitHubPatterns = %v, want an error", p)
			}
			if b, err := scanrules.GitHubMarkdown(tc.formats...); err == nil {
				t.Errorf("GitHubMarkdown = %d bytes, want an error", len(b))
			}
		})
	}
}

func mustFormat(t *testing.T, product string, opts ...apikey.FormatOption) apikey.Format {
	t.Helper()
	f, err := apikey.NewFormat(product, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
