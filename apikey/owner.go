package apikey

import (
	"errors"
	"fmt"
)

// DefaultOwner is the owner of every key in an application with a single
// account, and of the keys a PostgreSQL table held before owners existed
// (its migration 0004 gives them this owner). It is an ordinary owner:
// keyward never mixes keys of different owners, this one included.
const DefaultOwner = "default"

// MaxOwnerLen is the longest owner accepted, in bytes.
const MaxOwnerLen = 128

// ErrInvalidOwner is wrapped by the errors of [ValidOwner].
var ErrInvalidOwner = errors.New("apikey: invalid owner")

// ValidOwner checks an owner: the application's opaque ID of the account a
// key belongs to, such as "acct_123" or "merchant-42". It must be 1 to
// [MaxOwnerLen] bytes, each a printable ASCII character other than space
// (U+0021 to U+007E), so that it shows the same in a URL, a log line, a
// terminal and a database, and cannot hide a character.
func ValidOwner(owner string) error {
	switch {
	case owner == "":
		return fmt.Errorf("%w: it is required", ErrInvalidOwner)
	case len(owner) > MaxOwnerLen:
		return fmt.Errorf("%w: it is longer than %d bytes", ErrInvalidOwner, MaxOwnerLen)
	}
	for i := 0; i < len(owner); i++ {
		if c := owner[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: it may hold only printable ASCII characters other than space", ErrInvalidOwner)
		}
	}
	return nil
}
