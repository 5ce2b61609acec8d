package apikey

// ErrMalformed is matched, through [errors.Is], by every error that reports
// a raw key which does not have the key format. Each specific error below
// also matches itself, so callers can tell the cases apart.
var ErrMalformed error = &formatError{"apikey: malformed key"}

// The ways a raw key can be malformed. None of them ever quotes the key.
var (
	// ErrPrefix: the key does not start with the product prefix and '_'.
	ErrPrefix error = &formatError{"apikey: malformed key: wrong product prefix"}
	// ErrMode: the product prefix is not followed by "live_" or "test_".
	ErrMode error = &formatError{"apikey: malformed key: unknown mode"}
	// ErrLength: the random part is not exactly RandomLen characters.
	ErrLength error = &formatError{"apikey: malformed key: wrong length"}
	// ErrAlphabet: the random part holds a character outside 0-9A-Za-z.
	ErrAlphabet error = &formatError{"apikey: malformed key: character outside the base-62 alphabet"}
	// ErrChecksum: in a checksummed format (see [WithChecksum]), the last
	// characters are not the checksum of the rest: the key was mistyped,
	// truncated and padded, or invented.
	ErrChecksum error = &formatError{"apikey: malformed key: checksum mismatch"}
)

// formatError is the type of the malformed-key sentinels: each is itself and
// also ErrMalformed for errors.Is. They are package-level values, so
// rejecting a key allocates nothing.
type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }

func (e *formatError) Is(target error) bool { return target == ErrMalformed }
