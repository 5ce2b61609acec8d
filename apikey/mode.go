package apikey

import (
	"errors"
	"fmt"
)

// A Mode separates real traffic from development traffic. Every key belongs
// to exactly one mode, which is written into the key itself ("ck_live_...",
// "ck_test_...") and never changes.
//
// The zero Mode is not a valid mode. Mode implements [encoding.TextMarshaler]
// and [encoding.TextUnmarshaler] (so JSON carries "live" or "test") and
// [flag.Value].
type Mode uint8

// The two modes.
const (
	Live Mode = iota + 1 // Live mode: real payments, real funds.
	Test                 // Test mode: development and staging.
)

// ErrInvalidMode is returned when text names no mode.
var ErrInvalidMode = errors.New(`apikey: mode must be "live" or "test"`)

// ParseMode returns the mode written "live" or "test".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "live":
		return Live, nil
	case "test":
		return Test, nil
	}
	return 0, ErrInvalidMode
}

// Valid reports whether m is [Live] or [Test].
func (m Mode) Valid() bool { return m == Live || m == Test }

// String returns "live" or "test", "unknown" for the zero Mode, and
// "Mode(n)" for any other value.
func (m Mode) String() string {
	switch m {
	case Live:
		return "live"
	case Test:
		return "test"
	case 0:
		return "unknown"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// MarshalText returns "live" or "test". It fails for an invalid mode.
func (m Mode) MarshalText() ([]byte, error) {
	if !m.Valid() {
		return nil, ErrInvalidMode
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses "live" or "test".
func (m *Mode) UnmarshalText(text []byte) error {
	v, err := ParseMode(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Set parses "live" or "test", so that a Mode can be a command-line flag.
func (m *Mode) Set(s string) error { return m.UnmarshalText([]byte(s)) }
