package scanrules

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/keyward/keyward/apikey"
)

// Gitleaks returns a gitleaks v8 configuration file (TOML) that finds the
// keys of formats, with two rules per format: "<product>-live-api-key",
// tagged "live", and "<product>-test-api-key", tagged "test", such as
// ck-live-api-key and ck-test-api-key for [apikey.Default]. Both are also
// tagged "keyward" and "api-key".
//
// The configuration extends gitleaks' default rules ([extend]
// useDefault = true), since a file given with --config replaces them: with
// it, gitleaks finds these keys and all it finds by default. Its comments
// say how to look for these keys only (--enable-rule) and how to take them
// into another configuration ([extend] path). Extending brings the default
// global allowlist too, whose regex (?i)^true|false|null$ skips any secret
// containing "false" or ending in "null", whatever their case: about 1
// generated key in 500,000, which a copy without [extend] finds.
//
// A rule's regex is RE2, as gitleaks, built with Go's regexp, reads it,
// such as
//
//	\b(ck_live_[0-9A-Za-z]{32})(?:\b|_)
//
// with the key in group 1 (secretGroup), so that gitleaks reports the key
// alone. \b before the key refuses a letter, digit or '_' there without
// consuming a character; (?:\b|_) after it refuses a letter or digit, and
// lets a key followed by '_' through. Neither consumes a character that
// could start the next key, so two keys one comma apart are both found.
// The keyword is the mode prefix, and the rule skips matches of a Shannon
// entropy of 3 bits per character or less: placeholders, not generated
// keys. gitleaks cannot check a checksummed format's CRC: a run of the
// checksummed length whose checksum is wrong is reported too.
//
// Gitleaks fails for no format, for the zero Format, and for two formats
// of one product prefix, whose rule IDs would collide. Its output depends
// on the formats alone.
func Gitleaks(formats ...apikey.Format) ([]byte, error) {
	rules, err := rulesOf(formats)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# gitleaks v8 configuration: finds API keys made with keyward.\n")
	var ids []string
	for i := 0; i < len(rules); i += len(modes) {
		r := rules[i]
		fmt.Fprintf(&b, "#   %s: %s_live_ or %s_test_ and %s\n", r.product, r.product, r.product, r.length())
	}
	for _, r := range rules {
		ids = append(ids, "--enable-rule "+r.id())
	}
	fmt.Fprintf(&b, `#
# Written by github.com/keyward/keyward/scanrules: do not edit. For your
# own product prefix:
#   go run github.com/keyward/keyward/scanrules/cmd/scanrules -product acme -out .
#
# It extends gitleaks' default rules, which --config would replace, so that
#   gitleaks git --config gitleaks.toml
# finds these keys and all gitleaks finds by default. To look for these
# keys only, add
#   %s
# Another configuration takes these rules in, with the default ones, with
#   [extend]
#   path = "gitleaks.toml"
# (a path from the directory gitleaks runs in).
#
# The default configuration brings its global allowlist too, whose regex
# (?i)^true|false|null$ skips every secret that contains "false" or ends
# in "null", in any case: about 1 key in 500,000. A copy of this file
# without [extend] finds those, and only these keys.
`, strings.Join(ids, " "))
	b.WriteString("\ntitle = \"keyward API keys\"\n\n[extend]\nuseDefault = true\n")
	for _, r := range rules {
		b.WriteString("\n")
		if r.checksummed {
			fmt.Fprintf(&b, "# The last %d characters of a %d-character key hold a CRC-32, which\n"+
				"# gitleaks cannot check: a key whose checksum is wrong is reported too.\n",
				apikey.ChecksumLen, len(r.prefix)+apikey.RandomLen+apikey.ChecksumLen)
		}
		b.WriteString("[[rules]]\n")
		fmt.Fprintf(&b, "id = %s\n", tomlString(r.id()))
		fmt.Fprintf(&b, "description = %s\n", tomlString(r.name()+" ("+r.shape()+"). "+r.what()))
		fmt.Fprintf(&b, "regex = '''%s'''\n", gitleaksRegex(r))
		b.WriteString("secretGroup = 1\n")
		fmt.Fprintf(&b, "entropy = %s\n", minEntropy)
		fmt.Fprintf(&b, "keywords = [%s]\n", tomlString(r.prefix))
		fmt.Fprintf(&b, "tags = [%s, %s, %s]\n", tomlString("keyward"), tomlString("api-key"), tomlString(r.mode.String()))
	}
	return b.Bytes(), nil
}

// gitleaksRegex is the rule's regex: the key in group 1, with boundaries
// that consume no character that could start another key.
func gitleaksRegex(r rule) string { return `\b(` + r.secret + `)(?:\b|_)` }

// tomlString quotes s as a TOML basic string. The strings it quotes are
// the package's own ASCII text and product prefixes.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
