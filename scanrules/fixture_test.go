package scanrules_test

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// The fixture: files of sample lines, each with what every scanner must
// report in it. Its keys are fake but well-formed, and built when the
// tests run, so that no scanner finds a key in this source file.

// A sample is one line of a fixture file.
type sample struct {
	name string
	text string
	// find is what apikey.Format.Find returns in the line: the keys, in
	// order. It is the truth the scanners are held to.
	find []string
	// gitleaks and github are what the gitleaks rules and the GitHub
	// patterns report in the line, where that differs from find: nil
	// means the same as find, none means nothing.
	gitleaks, github []string
	// decoded are the keys that gitleaks finds in the line only once it
	// has decoded it (base64, percent-encoding): a regular expression
	// alone does not.
	decoded []string
	// allowlisted is set when gitleaks' default global allowlist, which
	// the published configuration extends, drops the line's findings.
	allowlisted bool
}

// none is an explicit "nothing", unlike nil.
var none = []string{}

// A fixtureFile is a file of the fixture, one sample a line.
type fixtureFile struct {
	name    string
	samples []sample
	crlf    bool // lines end with "\r\n"
	noEOL   bool // the last line has no line ending
}

// content is the file's text.
func (f fixtureFile) content() string {
	eol := "\n"
	if f.crlf {
		eol = "\r\n"
	}
	var b strings.Builder
	for i, s := range f.samples {
		b.WriteString(s.text)
		if i < len(f.samples)-1 || !f.noEOL {
			b.WriteString(eol)
		}
	}
	return b.String()
}

// Random parts of fake keys: obviously not random, but of a Shannon
// entropy like a real key's. None holds the 26 letters in order, which
// gitleaks' default stopwords would drop, nor "false" or "null".
const (
	fake1 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
	fake2 = "NotARealKey0123456789ABCDEFGHIJK"
	fake3 = "VUTSRQPONMLKJIHGFEDCBA9876543210"
	fake4 = "0123456789abcdefghijklmnopqrstuv"
)

// plainFixture is the fixture for apikey.Default, the format of the
// published rules.
func plainFixture(t *testing.T) []fixtureFile {
	f := apikey.Default
	live, test := f.ModePrefix(apikey.Live), f.ModePrefix(apikey.Test)
	live1, live2 := live+fake1, live+fake2
	test1, test2 := test+fake3, test+fake4
	genLive, genTest := fixtureKey(t, f, apikey.Live), fixtureKey(t, f, apikey.Test)
	placeholder := live + strings.Repeat("x", apikey.RandomLen)
	withFalse := live + "0123456789ABfalseCDEFGHIJKLMNOPQ"
	endsNull := test + "0123456789ABCDEFGHIJKLMNOPQRNuLL"
	return []fixtureFile{
		{name: ".env", samples: []sample{
			{name: "assignment", text: "CK_API_KEY=" + live1, find: ks(live1)},
			{name: "exported, in double quotes", text: `export CK_TEST_KEY="` + test1 + `"`, find: ks(test1)},
			{name: "in single quotes, with a comment", text: "CK_KEY='" + live2 + "' # rotated in May", find: ks(live2)},
			{name: "generated live key", text: "CK_LIVE_KEY=" + genLive, find: ks(genLive)},
			{name: "generated test key", text: "CK_TEST_KEY=" + genTest, find: ks(genTest)},
			{name: "placeholder: too little entropy for gitleaks", text: "CK_API_KEY=" + placeholder, find: ks(placeholder), gitleaks: none},
			{name: "a run too short", text: "CK_API_KEY=" + live1[:len(live1)-1], find: none},
			{name: "a run too long", text: "CK_API_KEY=" + live1 + "W", find: none},
			{name: "empty value", text: "CK_API_KEY=", find: none},
		}},
		{name: "config.json", samples: []sample{
			{name: "two keys in JSON", text: `{"live_key": "` + live1 + `", "test_key": "` + test2 + `"}`, find: ks(live1, test2)},
			{name: "before an escaped newline", text: `{"key": "` + live2 + `\n"}`, find: ks(live2)},
			{name: "another product", text: `{"stripe_key": "sk_live_` + fake1 + `"}`, find: none},
			{name: "another mode", text: `{"key": "` + f.Product() + "_prod_" + fake1 + `"}`, find: none},
		}},
		{name: "config.yaml", samples: []sample{
			{name: "YAML value", text: "api_key: " + test1, find: ks(test1)},
			{name: "YAML value in quotes", text: `  live_key: "` + live2 + `"`, find: ks(live2)},
			{name: "display prefix", text: "  display_prefix: " + f.DisplayPrefix(live1) + "  # as the dashboard lists it", find: none},
			{name: "redacted key", text: "  logged: " + f.Redact(live1), find: none},
			{name: "base64 in a Kubernetes Secret", text: "  CK_API_KEY: " + base64.StdEncoding.EncodeToString([]byte(live1)), find: none, decoded: ks(live1)},
		}},
		{name: "deploy.sh", samples: []sample{
			{name: "curl basic auth", text: "curl https://api.example.com/v1/sessions -u " + test1 + ":", find: ks(test1)},
			{name: "curl bearer header", text: `curl -H "Authorization: Bearer ` + live1 + `" https://api.example.com/v1/sessions`, find: ks(live1)},
			{name: "query string", text: "open 'https://api.example.com/v1/sessions?api_key=" + live2 + "&limit=10'", find: ks(live2)},
			{name: "percent-encoded in a URL", text: "open 'https://app.example.com/login?next=%2Fv1%3Fkey%3D" + test2 + "'", find: none, decoded: ks(test2)},
		}},
		{name: "request.http", samples: []sample{
			{name: "Authorization header", text: "Authorization: Bearer " + test2, find: ks(test2)},
			{name: "followed by an underscore", text: "X-Backup-Key: " + live1 + "_old", find: ks(live1)},
		}},
		{name: "boundaries.txt", noEOL: true, samples: []sample{
			{name: "alone on its line", text: live1, find: ks(live1)},
			{name: "two keys a comma apart", text: "keys=" + live1 + "," + test1, find: ks(live1, test1)},
			{name: "inside a longer word", text: "x" + live1, find: none},
			{name: "after an underscore", text: "my_" + live1, find: none},
			{name: "after a digit", text: "9" + test1, find: none},
			{name: "the product twice", text: f.Product() + "_" + live1, find: none},
			{name: "upper case", text: strings.ToUpper(live1), find: none},
			{name: "mode prefix only", text: "prefix " + live + " and more", find: none},
			{name: "a checksummed length in a plain format", text: live1 + "WXYZ01", find: none},
			{name: "after a non-ASCII letter", text: "clé=" + test1, find: ks(test1)},
			{name: "contains false: gitleaks' default allowlist drops it", text: "k=" + withFalse, find: ks(withFalse), allowlisted: true},
			{name: "ends in null: gitleaks' default allowlist drops it", text: "k=" + endsNull, find: ks(endsNull), allowlisted: true},
			{name: "last line, no line ending", text: "last: " + test2, find: ks(test2)},
		}},
		{name: "windows.env", crlf: true, samples: []sample{
			{name: "CRLF line", text: "CK_API_KEY=" + live2, find: ks(live2)},
			{name: "CRLF line, test mode", text: "CK_TEST_KEY=" + test1, find: ks(test1)},
		}},
	}
}

// checksumFixture is the fixture for a checksummed format of product
// "ck", and that format.
func checksumFixture(t *testing.T) (apikey.Format, []fixtureFile) {
	f, err := apikey.NewFormat(apikey.DefaultProduct, apikey.WithChecksum())
	if err != nil {
		t.Fatal(err)
	}
	live, test := f.ModePrefix(apikey.Live), f.ModePrefix(apikey.Test)
	sumLive := withChecksum(t, f, live+fake1)
	sumTest := withChecksum(t, f, test+fake3)
	other := "0" // a last checksum digit other than the right one
	if strings.HasSuffix(sumLive, other) {
		other = "1"
	}
	wrong := sumLive[:len(sumLive)-1] + other
	if _, err := f.Parse(wrong); err == nil {
		t.Fatalf("%s: the checksum should fail", wrong)
	}
	genLive, genTest := fixtureKey(t, f, apikey.Live), fixtureKey(t, f, apikey.Test)
	plain := live + fake2
	return f, []fixtureFile{
		{name: "checksummed.env", samples: []sample{
			{name: "checksummed live key", text: "CK_API_KEY=" + sumLive, find: ks(sumLive)},
			{name: "checksummed test key", text: `CK_TEST_KEY="` + sumTest + `"`, find: ks(sumTest)},
			{name: "generated live key", text: "CK_LIVE_KEY=" + genLive, find: ks(genLive)},
			{name: "generated test key", text: "CK_TEST_KEY=" + genTest, find: ks(genTest)},
			{name: "wrong checksum: scanners cannot tell", text: "CK_API_KEY=" + wrong, find: none, gitleaks: ks(wrong), github: ks(wrong)},
			{name: "a key without a checksum", text: "CK_OLD_KEY=" + plain, find: ks(plain)},
			{name: "a run one too long", text: "CK_API_KEY=" + sumLive + "0", find: none},
			{name: "between the two lengths", text: "CK_API_KEY=" + plain + "ABC", find: none},
			{name: "followed by an underscore", text: "CK_API_KEY=" + sumTest + "_old", find: ks(sumTest)},
			{name: "two keys a space apart", text: sumLive + " " + plain, find: ks(sumLive, plain)},
		}},
	}
}

func ks(keys ...string) []string { return keys }

// generate returns a new key of f, as a product would issue it.
func generate(t *testing.T, f apikey.Format, m apikey.Mode) string {
	t.Helper()
	sec, err := f.Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}

// fixtureKey returns a new key of f that gitleaks' default allowlist
// lets through: one generated key in about 500,000 holds "false" or ends
// in "null", and a fixture with one would fail TestGitleaksBinary.
func fixtureKey(t *testing.T, f apikey.Format, m apikey.Mode) string {
	t.Helper()
	for {
		if key := generate(t, f, m); !defaultAllowlist.MatchString(key) {
			return key
		}
	}
}

// defaultAllowlist is the regex of gitleaks' default global allowlist
// that generated keys can match.
var defaultAllowlist = regexp.MustCompile(`(?i)^true|false|null$`)

// withChecksum returns raw with its checksum, for a fake random part: the
// CRC-32 of raw in 6 base-62 digits. f.Parse must accept the result, so
// that this test computes what the format does.
func withChecksum(t *testing.T, f apikey.Format, raw string) string {
	t.Helper()
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	c := crc32.ChecksumIEEE([]byte(raw))
	var sum [apikey.ChecksumLen]byte
	for i := len(sum) - 1; i >= 0; i-- {
		sum[i] = digits[c%62]
		c /= 62
	}
	key := raw + string(sum[:])
	if _, err := f.Parse(key); err != nil {
		t.Fatalf("the fixture's checksum is not the format's: %v", err)
	}
	return key
}

// A finding is what a scanner reports: where, under which rule, which key.
type finding struct {
	File   string
	Line   int
	Rule   string
	Secret string
}

func (f finding) String() string {
	return fmt.Sprintf("%s:%d %s %s", f.File, f.Line, f.Rule, f.Secret)
}

func sortFindings(fs []finding) {
	slices.SortFunc(fs, func(a, b finding) int {
		return strings.Compare(fmt.Sprintf("%s\x00%08d\x00%s\x00%s", a.File, a.Line, a.Secret, a.Rule),
			fmt.Sprintf("%s\x00%08d\x00%s\x00%s", b.File, b.Line, b.Secret, b.Rule))
	})
}

// A scanner says which of the sample's lists it is held to, and how it
// names a rule.
type scanner int

const (
	byFind          scanner = iota // apikey.Format.Find
	byGitleaksRegex                // the gitleaks rules, evaluated with Go's regexp
	byGitleaks                     // the gitleaks binary, with the default allowlist
	byGitHub                       // the GitHub patterns, evaluated with Go's regexp
)

// expected returns what scanner s must report in files of format f.
func expected(f apikey.Format, files []fixtureFile, s scanner) []finding {
	var want []finding
	for _, file := range files {
		for i, smp := range file.samples {
			keys := smp.find
			switch s {
			case byGitleaksRegex, byGitleaks:
				if smp.gitleaks != nil {
					keys = smp.gitleaks
				}
			case byGitHub:
				if smp.github != nil {
					keys = smp.github
				}
			}
			if s == byGitleaks {
				if smp.allowlisted {
					keys = nil
				}
				keys = append(slices.Clone(keys), smp.decoded...)
			}
			for _, k := range keys {
				want = append(want, finding{file.name, i + 1, ruleName(f, modeOf(f, k), s), k})
			}
		}
	}
	sortFindings(want)
	return want
}

// ruleName is the name scanner s gives the rule of mode m: the documented
// gitleaks rule ID, the GitHub pattern name, and, for Find, the mode.
func ruleName(f apikey.Format, m apikey.Mode, s scanner) string {
	switch s {
	case byGitleaksRegex, byGitleaks:
		return f.Product() + "-" + m.String() + "-api-key"
	case byGitHub:
		return f.Product() + " " + m.String() + "-mode API key"
	}
	return m.String()
}

// modeOf is the mode written in key.
func modeOf(f apikey.Format, key string) apikey.Mode {
	if strings.HasPrefix(key, f.ModePrefix(apikey.Live)) {
		return apikey.Live
	}
	return apikey.Test
}

// lineOf returns the 1-based line of offset i in text.
func lineOf(text string, i int) int { return strings.Count(text[:i], "\n") + 1 }
