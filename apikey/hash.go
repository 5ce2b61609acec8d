package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// A Hash is the SHA-256 hash of a raw key: what a store keeps and looks keys
// up by. Keys carry about 190 bits of randomness, so a fast unsalted hash is
// the right tool: nobody can guess a key from its hash, and lookups by hash
// need the hash to be deterministic.
type Hash [sha256.Size]byte

// HashOf returns the SHA-256 hash of the full raw key, prefix included. It
// does not allocate for keys up to 64 bytes.
func HashOf(raw string) Hash {
	// Copy into a stack buffer: converting the string to a []byte would
	// allocate on the verification path.
	var buf [64]byte
	if len(raw) <= len(buf) {
		n := copy(buf[:], raw)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(raw))
}

// IsZero reports whether h is all zeros, which no key hashes to in practice:
// it marks a missing hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// Equal reports whether h and other are the same hash, in constant time:
// it ORs the XOR of all four words, with no branch on their contents.
func (h Hash) Equal(other Hash) bool {
	var diff uint64
	for i := 0; i < len(h); i += 8 {
		diff |= binary.LittleEndian.Uint64(h[i:]) ^ binary.LittleEndian.Uint64(other[i:])
	}
	return subtle.ConstantTimeEq(int32(uint32(diff>>32)|uint32(diff)), 0) == 1
}

// String returns the hash in lowercase hexadecimal.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText returns the hash in lowercase hexadecimal.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses a hash written in hexadecimal.
func (h *Hash) UnmarshalText(text []byte) error {
	if hex.DecodedLen(len(text)) != len(h) {
		return errors.New("apikey: a hash is 64 hexadecimal digits")
	}
	var v Hash
	if _, err := hex.Decode(v[:], text); err != nil {
		return errors.New("apikey: a hash is 64 hexadecimal digits")
	}
	*h = v
	return nil
}
