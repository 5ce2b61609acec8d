package scanrules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/keyward/keyward/apikey"
)

// The boundaries of a key, as [apikey.Format.Find] applies them, in
// GitHub's "Before secret" and "After secret" syntax: a key is not preceded
// by a letter, digit or '_', nor followed by a letter or digit.
const (
	beforeSecret = `\A|[^0-9A-Za-z_]`
	afterSecret  = `\z|[^0-9A-Za-z]`
)

// minEntropy is the Shannon entropy, in bits per character of the whole
// key, that a gitleaks match must exceed. Placeholders fall below it
// (ck_test_ and 32 'x' has 1.3); generated keys stay far above it (the
// lowest of 200,000 had 4.16): to fall this low, their 32 random
// characters would have to come from 5 of the 62 characters or fewer, or
// repeat one most of the time, a chance far below 1 in 10^20.
const minEntropy = "3.0"

// A rule is what every scanner is told about the keys of one mode of one
// format.
type rule struct {
	product     string
	mode        apikey.Mode
	prefix      string // the mode prefix, such as "ck_live_"
	secret      string // the key alone, without boundaries
	checksummed bool
}

// modes are the modes of every format, live first: a leaked live key
// matters more.
var modes = [...]apikey.Mode{apikey.Live, apikey.Test}

// rulesOf returns the rules of formats, in order, two per format. It
// refuses no format, the zero Format, and two formats of one product
// prefix, whose rules would share their IDs.
func rulesOf(formats []apikey.Format) ([]rule, error) {
	if len(formats) == 0 {
		return nil, errors.New("scanrules: no format")
	}
	seen := make(map[string]bool, len(formats))
	var rules []rule
	for _, f := range formats {
		p := f.Product()
		if p == "" {
			return nil, errors.New("scanrules: zero Format; use apikey.Default or apikey.NewFormat")
		}
		if seen[p] {
			return nil, fmt.Errorf("scanrules: two formats with the product prefix %q", p)
		}
		seen[p] = true
		for _, m := range modes {
			prefix := f.ModePrefix(m)
			secret := regexp.QuoteMeta(prefix) + "[0-9A-Za-z]{" + strconv.Itoa(apikey.RandomLen) + "}"
			if f.Checksummed() {
				secret += "(?:[0-9A-Za-z]{" + strconv.Itoa(apikey.ChecksumLen) + "})?"
			}
			rules = append(rules, rule{product: p, mode: m, prefix: prefix, secret: secret, checksummed: f.Checksummed()})
		}
	}
	return rules, nil
}

// id is the gitleaks rule ID, such as "ck-live-api-key".
func (r rule) id() string { return r.product + "-" + r.mode.String() + "-api-key" }

// name is the GitHub pattern name, such as "ck live-mode API key".
func (r rule) name() string { return r.product + " " + r.mode.String() + "-mode API key" }

// what says what a leaked key gives access to.
func (r rule) what() string {
	if r.mode == apikey.Live {
		return "A live key acts on real data: revoke it and issue a new one at once."
	}
	return "A test key acts on test data only; revoke it too."
}

// shape describes the key in words, such as "ck_live_ and 32 base-62
// characters".
func (r rule) shape() string { return r.prefix + " and " + r.length() }

// length describes what follows the mode prefix, such as "32 base-62
// characters".
func (r rule) length() string {
	s := strconv.Itoa(apikey.RandomLen) + " base-62 characters"
	if r.checksummed {
		s += ", or " + strconv.Itoa(apikey.RandomLen+apikey.ChecksumLen) + " with a checksum"
	}
	return s
}

// sample is a line holding a key of the rule's shape for GitHub's "Test
// string" field. Its key is all zeros: obviously fake, and, with an entropy
// far below minEntropy, not reported by the gitleaks rules when they scan
// the published page.
func (r rule) sample() string {
	return "API_KEY=" + r.prefix + strings.Repeat("0", apikey.RandomLen)
}
