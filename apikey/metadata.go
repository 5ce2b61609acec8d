package apikey

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Metadata limits, the ones Stripe sets on its own metadata.
const (
	MaxMetadataPairs    = 50  // keys per record
	MaxMetadataKeyLen   = 40  // characters (Unicode code points) in a key
	MaxMetadataValueLen = 500 // characters (Unicode code points) in a value
)

// ErrInvalidMetadata is wrapped by every error that refuses metadata.
var ErrInvalidMetadata = errors.New("apikey: invalid metadata")

// Metadata is the application's own string key-value pairs on a key, such
// as {"integration": "woocommerce", "order_source": "web"}: at most
// [MaxMetadataPairs] keys, each key 1 to [MaxMetadataKeyLen] characters and
// each value at most [MaxMetadataValueLen] characters (see [NewMetadata]
// for the characters allowed).
//
// Metadata is immutable: its pairs are fixed when it is made, so a
// [Record] that carries it is copied by copying one pointer, and a handler
// handed a record cannot change what another sees. The zero Metadata is
// empty and ready to use. JSON carries it as an object of strings.
type Metadata struct {
	p *metadataPairs // nil when empty
}

type metadataPairs struct {
	pairs []metadataPair // sorted by key, keys unique
}

type metadataPair struct{ key, value string }

// NewMetadata returns the metadata holding the pairs of m, or an error
// wrapping [ErrInvalidMetadata] that says which key is at fault. Beyond the
// limits of [Metadata], keys and values must be valid UTF-8 without
// control characters, nor the invisible and bidirectional formatting
// characters that can disguise text (see [ValidName]); keys must not start
// or end with a space, nor hold '[' or ']', which form encodings use.
// A nil or empty m gives empty metadata.
func NewMetadata(m map[string]string) (Metadata, error) {
	if len(m) == 0 {
		return Metadata{}, nil
	}
	if len(m) > MaxMetadataPairs {
		return Metadata{}, fmt.Errorf("%w: %d keys, at most %d are allowed", ErrInvalidMetadata, len(m), MaxMetadataPairs)
	}
	pairs := make([]metadataPair, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if err := validMetadataKey(k); err != nil {
			return Metadata{}, err
		}
		if err := validMetadataValue(k, v); err != nil {
			return Metadata{}, err
		}
		pairs = append(pairs, metadataPair{key: k, value: v})
	}
	return Metadata{&metadataPairs{pairs: pairs}}, nil
}

// MustMetadata is [NewMetadata] for literals in programs and tests: it
// panics if m is invalid.
func MustMetadata(m map[string]string) Metadata {
	md, err := NewMetadata(m)
	if err != nil {
		panic(err)
	}
	return md
}

func validMetadataKey(k string) error {
	fail := func(reason string) error {
		return fmt.Errorf("%w: key %s %s", ErrInvalidMetadata, quoteShort(k, MaxMetadataKeyLen), reason)
	}
	switch n := utf8.RuneCountInString(k); {
	case k == "":
		return fmt.Errorf("%w: a key is empty", ErrInvalidMetadata)
	case !utf8.ValidString(k):
		return fail("is not valid UTF-8")
	case n > MaxMetadataKeyLen:
		return fail(fmt.Sprintf("has %d characters, at most %d are allowed", n, MaxMetadataKeyLen))
	case strings.TrimSpace(k) != k:
		return fail("starts or ends with a space")
	case strings.ContainsAny(k, "[]"):
		return fail("holds '[' or ']'")
	case strings.ContainsFunc(k, unicode.IsControl):
		return fail("holds control characters")
	case strings.ContainsFunc(k, isFormatting):
		return fail("holds invisible or bidirectional formatting characters")
	}
	return nil
}

func validMetadataValue(k, v string) error {
	fail := func(reason string) error {
		return fmt.Errorf("%w: the value of key %q %s", ErrInvalidMetadata, k, reason)
	}
	switch n := utf8.RuneCountInString(v); {
	case !utf8.ValidString(v):
		return fail("is not valid UTF-8")
	case n > MaxMetadataValueLen:
		return fail(fmt.Sprintf("has %d characters, at most %d are allowed", n, MaxMetadataValueLen))
	case strings.ContainsFunc(v, unicode.IsControl):
		return fail("holds control characters")
	case strings.ContainsFunc(v, isFormatting):
		return fail("holds invisible or bidirectional formatting characters")
	}
	return nil
}

// quoteShort quotes s for an error message if it has at most max
// characters; a longer text is described by its length only.
func quoteShort(s string, max int) string {
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("of %d characters", n)
	}
	return fmt.Sprintf("%q", s)
}

// Len returns the number of keys.
func (md Metadata) Len() int {
	if md.p == nil {
		return 0
	}
	return len(md.p.pairs)
}

// IsEmpty reports whether md holds no key.
func (md Metadata) IsEmpty() bool { return md.Len() == 0 }

// Get returns the value of key, and whether md holds it. It does not
// allocate.
func (md Metadata) Get(key string) (string, bool) {
	if md.p == nil {
		return "", false
	}
	i, ok := slices.BinarySearchFunc(md.p.pairs, key, func(p metadataPair, k string) int {
		return strings.Compare(p.key, k)
	})
	if !ok {
		return "", false
	}
	return md.p.pairs[i].value, true
}

// All returns the pairs in order of their keys.
func (md Metadata) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		if md.p == nil {
			return
		}
		for _, p := range md.p.pairs {
			if !yield(p.key, p.value) {
				return
			}
		}
	}
}

// Map returns the pairs as a new map, which the caller owns. Empty
// metadata gives an empty map, never nil.
func (md Metadata) Map() map[string]string {
	m := make(map[string]string, md.Len())
	for k, v := range md.All() {
		m[k] = v
	}
	return m
}

// Equal reports whether md and other hold the same pairs.
func (md Metadata) Equal(other Metadata) bool {
	if md.Len() != other.Len() {
		return false
	}
	if md.Len() == 0 || md.p == other.p {
		return true
	}
	return slices.Equal(md.p.pairs, other.p.pairs)
}

// String returns the JSON object of the pairs, such as
// {"integration":"woocommerce"}.
func (md Metadata) String() string {
	b, _ := md.MarshalJSON()
	return string(b)
}

// MarshalJSON encodes the pairs as a JSON object, keys in order; empty
// metadata is {}.
func (md Metadata) MarshalJSON() ([]byte, error) {
	return json.Marshal(md.Map()) // encoding/json sorts map keys
}

// UnmarshalJSON decodes a JSON object of strings (null is empty
// metadata) and checks it as [NewMetadata] does.
func (md *Metadata) UnmarshalJSON(data []byte) error {
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%w: want a JSON object of strings", ErrInvalidMetadata)
	}
	v, err := NewMetadata(m)
	if err != nil {
		return err
	}
	*md = v
	return nil
}

// isFormatting reports whether r is one of the invisible or bidirectional
// formatting characters that make text display as something else (the
// "Trojan Source" characters, zero-width spaces, line and paragraph
// separators and the byte order mark): U+200B-U+200F, U+202A-U+202E,
// U+2066-U+2069, U+2028, U+2029 and U+FEFF.
func isFormatting(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return r == 0x2028 || r == 0x2029 || r == 0xFEFF
}
