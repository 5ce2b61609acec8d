package apikey

import (
	"regexp"
	"strconv"
	"strings"
)

// Pattern returns a regular expression (RE2 syntax, as Go's regexp, GitHub
// and gitleaks read it) matching the keys of this format, such as
//
//	ck_(?:live|test)_[0-9A-Za-z]{32}
//
// or, for a checksummed format, ck_(?:live|test)_[0-9A-Za-z]{32}(?:[0-9A-Za-z]{6})?.
// It has no anchors: a scanner adds the boundaries its syntax offers (a key
// is neither preceded by a letter, digit or '_' nor followed by a letter or
// digit). [Format.Find] applies those boundaries and the checksum.
func (f Format) Pattern() string {
	p := regexp.QuoteMeta(f.product) + "_(?:live|test)_[0-9A-Za-z]{" + strconv.Itoa(RandomLen) + "}"
	if f.checksum {
		p += "(?:[0-9A-Za-z]{" + strconv.Itoa(ChecksumLen) + "})?"
	}
	return p
}

// Regexp returns [Format.Pattern] compiled.
func (f Format) Regexp() *regexp.Regexp { return regexp.MustCompile(f.Pattern()) }

// A Candidate is a key found in text by [Format.Find]: text[Start:End] has
// the format's shape, and, if it carries a checksum, the checksum matches.
// Whether it is a real key only a store can say.
type Candidate struct {
	Start, End int
	// Mode is the mode written in the key.
	Mode Mode
	// Checksummed reports whether the key carries a checksum, which then
	// matched: a candidate with one is a key of this format but for a
	// chance of 1 in 2^32.
	Checksummed bool
}

// Find returns the keys of this format in text, in order: every run that
// [Format.Parse] accepts, bounded by characters that cannot continue a key
// (a letter, digit or '_' before it, a letter or digit after it, make it
// part of a longer token, which is not a key). A run of a checksummed
// format's length whose checksum fails is noise and is not returned. Find
// returns nil, without allocating, when text holds no candidate.
func (f Format) Find(text string) []Candidate {
	var found []Candidate
	for from := 0; ; {
		c, ok := f.next(text, from, true)
		if !ok {
			return found
		}
		if _, err := f.Parse(text[c.Start:c.End]); err == nil {
			c.Checksummed = c.End-c.Start > len(f.live)+RandomLen
			found = append(found, c)
		}
		from = c.End
	}
}

// next returns the next run at or after from that starts with a mode
// prefix, at a token boundary if bounded, with the base-62 characters that
// follow it.
func (f Format) next(text string, from int, bounded bool) (Candidate, bool) {
	if f.product == "" {
		return Candidate{}, false
	}
	lead := f.live[:len(f.product)+1] // "<product>_"
	for from < len(text) {
		i := strings.Index(text[from:], lead)
		if i < 0 {
			return Candidate{}, false
		}
		start := from + i
		from = start + len(lead)
		if bounded && start > 0 && (isBase62(text[start-1]) || text[start-1] == '_') {
			continue
		}
		var m Mode
		switch rest := text[from:]; {
		case strings.HasPrefix(rest, "live_"):
			m = Live
		case strings.HasPrefix(rest, "test_"):
			m = Test
		default:
			continue
		}
		end := start + len(f.live)
		for end < len(text) && isBase62(text[end]) {
			end++
		}
		return Candidate{Start: start, End: end, Mode: m}, true
	}
	return Candidate{}, false
}

// Redact returns text with the secret part of everything shaped like a key
// of this format replaced by [Redacted]: the display prefix stays, so a log
// still says which key it was ("ck_live_abc123[REDACTED]"). It is more
// eager than [Format.Find]: a run that follows a mode prefix and is too
// short, too long or fails its checksum, as a mistyped or truncated key
// is, is redacted too, since most of it may still be secret; so is a key
// run into what precedes it, as in a percent-encoded "key%3Dck_live_…".
// Runs of fewer than [DisplayLen] characters are left alone. When there is nothing to
// redact, Redact returns text itself and does not allocate.
func (f Format) Redact(text string) string {
	var b strings.Builder
	done := 0
	for from := 0; ; {
		c, ok := f.next(text, from, false)
		if !ok {
			break
		}
		from = c.End
		keep := c.Start + len(f.live) + DisplayLen
		if keep >= c.End {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(text))
		}
		b.WriteString(text[done:keep])
		b.WriteString(Redacted)
		done = c.End
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}
