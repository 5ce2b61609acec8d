package scanrules

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/keyward/keyward/apikey"
)

// A GitHubPattern is a GitHub secret scanning custom pattern, field by
// field as GitHub's form takes it. Its JSON is an element of the patterns
// that GitHub's REST API creates (POST
// /orgs/{org}/secret-scanning/custom-patterns and
// /repos/{owner}/{repo}/secret-scanning/custom-patterns, with a body
// {"patterns": [...]}).
//
// The expressions keep to what GitHub's regular expression library,
// Hyperscan, accepts: literal characters, character classes, counted
// repetition, non-capturing groups, alternation, \A and \z. No \b,
// lookaround or backreference.
type GitHubPattern struct {
	// Name is the pattern name, which alerts show as the secret type,
	// such as "ck live-mode API key".
	Name string `json:"name"`
	// SecretFormat is the expression of the key itself, such as
	// ck_live_[0-9A-Za-z]{32}: the form's "Secret format".
	SecretFormat string `json:"pattern"`
	// BeforeSecret is what may come before the key: the start of the
	// text, or a character other than a letter, digit or '_'
	// (\A|[^0-9A-Za-z_]). GitHub's default lets '_' through, and so
	// would match inside my_ck_live_….
	BeforeSecret string `json:"start_delimiter"`
	// AfterSecret is what may come after the key: the end of the text, or
	// a character other than a letter or digit (\z|[^0-9A-Za-z], GitHub's
	// default).
	AfterSecret string `json:"end_delimiter"`
	// TestString is a line with an obviously fake key, which the pattern
	// matches, for the form's test string.
	TestString string `json:"-"`
}

// GitHubPatterns returns the custom patterns that find the keys of
// formats: for each format, one for live keys, then one for test keys, so
// that an alert says which leaked. The patterns have no additional match
// requirements. GitHub cannot check a checksummed format's CRC, so a run
// of the checksummed length whose checksum is wrong matches too.
//
// GitHubPatterns fails as [Gitleaks] does: for no format, the zero Format
// and two formats of one product prefix.
func GitHubPatterns(formats ...apikey.Format) ([]GitHubPattern, error) {
	rules, err := rulesOf(formats)
	if err != nil {
		return nil, err
	}
	patterns := make([]GitHubPattern, len(rules))
	for i, r := range rules {
		patterns[i] = GitHubPattern{
			Name:         r.name(),
			SecretFormat: r.secret,
			BeforeSecret: beforeSecret,
			AfterSecret:  afterSecret,
			TestString:   r.sample(),
		}
	}
	return patterns, nil
}

// GitHubMarkdown returns a Markdown page with the [GitHubPatterns] of
// formats, each field in a code block of its own, to paste into GitHub's
// form, then the same patterns as a REST API request body. It fails as
// GitHubPatterns does, and its output depends on the formats alone.
func GitHubMarkdown(formats ...apikey.Format) ([]byte, error) {
	rules, err := rulesOf(formats)
	if err != nil {
		return nil, err
	}
	patterns, err := GitHubPatterns(formats...)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`# GitHub custom patterns for keyward API keys

<!-- Written by github.com/keyward/keyward/scanrules: do not edit. -->

These custom patterns make GitHub secret scanning alert on the API keys
below wherever it scans an organization's repositories, and, with push
protection, refuse the pushes that hold one. Live and test keys have a
pattern each, so that an alert says which leaked: a live key acts on real
data.

For an organization, open its **Settings**, **Advanced Security**,
**Global settings**, then **New pattern** under **Custom patterns**; for
one repository, its **Settings**, **Advanced Security**, then **New
pattern** under **Custom patterns**. Fill in each field below (**More
options** shows those after the secret format), **Save and dry run**,
review the matches, **Publish pattern**, then enable push protection for
it.
`)
	for i, p := range patterns {
		r := rules[i]
		fmt.Fprintf(&b, "\n## %s\n\n", p.Name)
		fmt.Fprintf(&b, "Keys made of %s. %s\n", r.shape(), r.what())
		field(&b, "Pattern name", p.Name)
		field(&b, "Secret format", p.SecretFormat)
		field(&b, "Before secret: the start of the text, or a character other than a letter, digit or `_`", p.BeforeSecret)
		field(&b, "After secret: the end of the text, or a character other than a letter or digit (GitHub's default)", p.AfterSecret)
		b.WriteString("\nAdditional secret match requirements: none.\n")
		field(&b, "Sample test string (the key is fake)", p.TestString)
		if r.checksummed {
			fmt.Fprintf(&b, "\nThe last %d characters of a %d-character key hold a CRC-32, which\n"+
				"GitHub cannot check: a key whose checksum is wrong raises an alert too.\n",
				apikey.ChecksumLen, len(r.prefix)+apikey.RandomLen+apikey.ChecksumLen)
		}
	}
	body, err := restBody(patterns)
	if err != nil {
		return nil, err
	}
	b.WriteString(`
## With the REST API

GitHub's REST API creates the same patterns, unpublished: dry run and
publish them in the form afterwards. Save this body as ` + "`patterns.json`" + `:

` + "```json\n")
	b.Write(body)
	b.WriteString("```\n\n" + `and send it with the GitHub CLI, replacing ORG, or OWNER and REPO:

` + "```sh\n" + `gh api --method POST /orgs/ORG/secret-scanning/custom-patterns --input patterns.json
gh api --method POST /repos/OWNER/REPO/secret-scanning/custom-patterns --input patterns.json
` + "```\n")
	return b.Bytes(), nil
}

// field writes a labelled code block.
func field(b *bytes.Buffer, label, value string) {
	fmt.Fprintf(b, "\n%s:\n\n```text\n%s\n```\n", label, value)
}

// restBody is the REST API's request body for patterns, indented.
func restBody(patterns []GitHubPattern) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Patterns []GitHubPattern `json:"patterns"`
	}{patterns}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
