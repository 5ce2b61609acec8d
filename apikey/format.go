package apikey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Key layout constants.
const (
	// RandomLen is the number of random base-62 characters after the mode
	// prefix: 32 characters carry about 190 bits of entropy.
	RandomLen = 32
	// DisplayLen is the number of random characters kept in clear, after the
	// mode prefix, in the display prefix ("ck_live_abc123").
	DisplayLen = 6
	// MaxProductLen is the longest product prefix [NewFormat] accepts.
	MaxProductLen = 8
	// DefaultProduct is the product prefix of the checkout API.
	DefaultProduct = "ck"
	// ChecksumLen is the number of base-62 characters a checksummed format
	// appends after the random part (see [WithChecksum]): a CRC-32 is below
	// 62^6, so six characters always hold it.
	ChecksumLen = 6
)

// alphabet is base 62 in ASCII order.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// rejectFrom is the smallest byte value that rejection sampling discards:
// 248 = 4*62, so a byte below it, taken modulo 62, is uniform over the
// alphabet. The 8 values 248-255 are drawn again (3.1% of draws).
const rejectFrom = 256 - 256%62

// A Format is a product's key format: "<product>_<mode>_" followed by
// [RandomLen] base-62 characters, and, if the format is checksummed (see
// [WithChecksum]), by [ChecksumLen] more. The zero Format is not usable;
// use [Default] or [NewFormat]. A Format is a small immutable value, safe
// for concurrent use.
//
// Entropy: the random part is 32 characters drawn uniformly from 62, so
// every key carries 32·log2(62) ≈ 190.5 bits of randomness, with or without
// a checksum. The checksum adds no secrecy: it lets anyone (a scanner, a
// log scrubber, Parse itself) tell a real key from a mistyped or invented
// one offline, with a false match once in 2^32.
type Format struct {
	product  string
	live     string // "<product>_live_"
	test     string // "<product>_test_"
	checksum bool
	liveCRC  uint32 // CRC-32 of live, the start of every live key's checksum
	testCRC  uint32 // CRC-32 of test
}

// A FormatOption changes a format built by [NewFormat].
type FormatOption func(*Format)

// WithChecksum makes the format checksummed, as GitHub's tokens are: new
// keys end with [ChecksumLen] base-62 characters holding the CRC-32 (IEEE)
// of everything before them, product and mode included, such as
// ck_live_<32 random><6 checksum>. [Format.Parse] refuses a key whose
// checksum does not match with [ErrChecksum], before any hash or store
// call, and scanners can check candidates without asking anyone.
//
// A checksummed format still accepts keys of the plain length, without a
// checksum, so that a product can turn checksums on without revoking the
// keys it already issued: both kinds verify side by side in one store.
func WithChecksum() FormatOption { return func(f *Format) { f.checksum = true } }

// Default is the format of the checkout API, with product prefix "ck":
// keys look like ck_live_… and ck_test_….
var Default = mustFormat(DefaultProduct)

// NewFormat returns the format for a product prefix: 1 to [MaxProductLen]
// lowercase ASCII letters or digits, starting with a letter.
func NewFormat(product string, opts ...FormatOption) (Format, error) {
	if len(product) == 0 || len(product) > MaxProductLen {
		return Format{}, fmt.Errorf("apikey: product prefix must be 1 to %d characters", MaxProductLen)
	}
	for i := 0; i < len(product); i++ {
		c := product[i]
		letter := 'a' <= c && c <= 'z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return Format{}, errors.New("apikey: product prefix must be lowercase letters and digits, starting with a letter")
		}
	}
	f := Format{product: product, live: product + "_live_", test: product + "_test_"}
	for _, opt := range opts {
		opt(&f)
	}
	f.liveCRC, f.testCRC = crc32IEEE(f.live), crc32IEEE(f.test)
	return f, nil
}

func mustFormat(product string) Format {
	f, err := NewFormat(product)
	if err != nil {
		panic(err)
	}
	return f
}

// Product returns the product prefix, such as "ck".
func (f Format) Product() string { return f.product }

// Checksummed reports whether the format generates checksummed keys (see
// [WithChecksum]).
func (f Format) Checksummed() bool { return f.checksum }

// KeyLen returns the length of the keys the format generates, such as 40
// for ck_live_… without a checksum and 46 with one.
func (f Format) KeyLen() int {
	if f.checksum {
		return len(f.live) + RandomLen + ChecksumLen
	}
	return len(f.live) + RandomLen
}

// ModePrefix returns the text every key of mode m starts with, such as
// "ck_live_", or "" for an invalid mode.
func (f Format) ModePrefix(m Mode) string {
	switch m {
	case Live:
		return f.live
	case Test:
		return f.test
	}
	return ""
}

// Generate returns a new key of mode m in the default format. See
// [Format.Generate].
func Generate(m Mode) (Secret, error) { return Default.Generate(m) }

// Parse checks a raw key against the default format. See [Format.Parse].
func Parse(raw string) (Mode, error) { return Default.Parse(raw) }

// Generate returns a new key of mode m: the mode prefix followed by
// [RandomLen] characters drawn uniformly from 0-9A-Za-z with crypto/rand,
// by rejection sampling (no modulo bias), and by the checksum if the format
// has one.
func (f Format) Generate(m Mode) (Secret, error) {
	return f.generate(m, rand.Reader)
}

func (f Format) generate(m Mode, random io.Reader) (Secret, error) {
	prefix := f.ModePrefix(m)
	if prefix == "" {
		if f.product == "" {
			return Secret{}, errors.New("apikey: zero Format; use apikey.Default or apikey.NewFormat")
		}
		return Secret{}, ErrInvalidMode
	}
	buf := make([]byte, f.KeyLen())
	copy(buf, prefix)
	out := buf[len(prefix) : len(prefix)+RandomLen]
	var pool [RandomLen + 8]byte // enough for one draw in 99.9% of keys
	n := 0
	for n < RandomLen {
		if _, err := io.ReadFull(random, pool[:]); err != nil {
			return Secret{}, fmt.Errorf("apikey: reading randomness: %w", err)
		}
		for _, b := range pool {
			if b >= rejectFrom {
				continue
			}
			out[n] = alphabet[b%62]
			if n++; n == RandomLen {
				break
			}
		}
	}
	clear(pool[:])
	if f.checksum {
		putChecksum(buf[len(prefix)+RandomLen:], crc32.ChecksumIEEE(buf[:len(prefix)+RandomLen]))
	}
	raw := string(buf)
	clear(buf)
	return newSecret(raw, m, f), nil
}

// Parse checks that raw is a key of this format and returns its mode. It
// looks at nothing but the text: no store is consulted, and it does not
// allocate. A malformed key returns one of [ErrPrefix], [ErrMode],
// [ErrLength], [ErrAlphabet] or, in a checksummed format, [ErrChecksum],
// all of which match [ErrMalformed]; the error never contains the key.
func (f Format) Parse(raw string) (Mode, error) {
	p := len(f.product)
	if p == 0 || len(raw) <= p || raw[p] != '_' {
		return 0, ErrPrefix
	}
	for i := 0; i < p; i++ { // at most 8 bytes: cheaper than a memequal call
		if raw[i] != f.product[i] {
			return 0, ErrPrefix
		}
	}
	var m Mode
	switch rest := raw[p+1:]; {
	case len(rest) >= 5 && rest[:5] == "live_":
		m = Live
	case len(rest) >= 5 && rest[:5] == "test_":
		m = Test
	default:
		return 0, ErrMode
	}
	random := raw[len(f.live):] // "live_" and "test_" have the same length
	switch {
	case len(random) == RandomLen:
		if !allBase62(random) {
			return 0, ErrAlphabet
		}
	case f.checksum && len(random) == RandomLen+ChecksumLen:
		sum, ok := decodeChecksum(random[RandomLen:])
		if !ok || !allBase62(random) {
			return 0, ErrAlphabet
		}
		crc := f.liveCRC
		if m == Test {
			crc = f.testCRC
		}
		if uint64(crc32Update(crc, random[:RandomLen])) != sum {
			return 0, ErrChecksum
		}
	default:
		return 0, ErrLength
	}
	return m, nil
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// allBase62 reports whether the RandomLen bytes of s are all in 0-9A-Za-z.
// It tests eight bytes at a time: this loop is most of Parse's work, and
// Parse runs on every request.
//
// For a byte b below 0x80, b + (0x80 - lo) has its high bit set exactly
// when b >= lo, and b + (0x7f - hi) exactly when b > hi; neither sum
// carries into the next byte. A byte is in the alphabet when one of the
// three ranges claims it.
func allBase62(s string) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	ge := func(w uint64, lo byte) uint64 { return w + ones*uint64(0x80-lo) }
	gt := func(w uint64, hi byte) uint64 { return w + ones*uint64(0x7f-hi) }
	for i := 0; i < RandomLen; i += 8 {
		b := s[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if w&high != 0 {
			return false // not ASCII
		}
		digit := ge(w, '0') &^ gt(w, '9')
		upper := ge(w, 'A') &^ gt(w, 'Z')
		lower := ge(w, 'a') &^ gt(w, 'z')
		if (digit|upper|lower)&high != high {
			return false
		}
	}
	return true
}

// DisplayPrefix returns the part of a well-formed raw key that may be kept
// in clear: the mode prefix and the first [DisplayLen] random characters,
// such as "ck_live_abc123". It returns "" if raw is not a key of this
// format. The result is a copy, which does not keep raw reachable.
func (f Format) DisplayPrefix(raw string) string {
	if _, err := f.Parse(raw); err != nil {
		return ""
	}
	return strings.Clone(raw[:len(f.live)+DisplayLen])
}
