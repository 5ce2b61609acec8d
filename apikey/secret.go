package apikey

import (
	"fmt"
	"log/slog"
	"strings"
)

// Redacted is what a [Secret] prints in place of the raw key, after the
// display prefix.
const Redacted = "[REDACTED]"

// A Secret holds a raw key. It is returned once, when a key is created, and
// is the only value in keyward that ever holds a raw key.
//
// A Secret never prints itself: String, every fmt verb (including %v, %+v,
// %#v, %s, %q and %x), slog (through LogValue), JSON and text marshalling all
// show the display prefix followed by [Redacted], such as
// "ck_live_abc123[REDACTED]". Reading the raw key takes an explicit call to
// [Secret.Reveal], which is easy to grep for.
//
// The raw key is held only by a closure, which fmt and reflection print as
// an address: even a struct holding a Secret in an unexported field, printed
// with any verb, does not show it. The zero Secret holds no key.
type Secret struct {
	p *secret
}

type secret struct {
	raw     func() string
	mode    Mode
	display string
}

func newSecret(raw string, m Mode, f Format) Secret {
	return Secret{&secret{
		raw:  func() string { return raw },
		mode: m,
		// A copy: a slice of raw would keep the whole raw key reachable
		// from every record that stores the display prefix.
		display: strings.Clone(raw[:len(f.ModePrefix(m))+DisplayLen]),
	}}
}

// Reveal returns the raw key, to hand to its owner exactly once. Never log
// it, store it or put it in an error.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.raw()
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.p == nil }

// Mode returns the key's mode.
func (s Secret) Mode() Mode {
	if s.p == nil {
		return 0
	}
	return s.p.mode
}

// DisplayPrefix returns the part of the key that may be shown and stored in
// clear, such as "ck_live_abc123".
func (s Secret) DisplayPrefix() string {
	if s.p == nil {
		return ""
	}
	return s.p.display
}

// Hash returns the SHA-256 hash of the raw key, the only form of it a store
// keeps.
func (s Secret) Hash() Hash { return HashOf(s.Reveal()) }

// String returns the redacted form: the display prefix and [Redacted].
func (s Secret) String() string { return s.DisplayPrefix() + Redacted }

// GoString returns the redacted form, for %#v.
func (s Secret) GoString() string { return "apikey.Secret(" + s.String() + ")" }

// Format prints the redacted form for every verb, so that no fmt verb (%x
// included) can reach the raw key.
func (s Secret) Format(st fmt.State, verb rune) {
	if verb == 'v' && st.Flag('#') {
		fmt.Fprint(st, s.GoString())
		return
	}
	fmt.Fprint(st, s.String())
}

// LogValue returns the redacted form, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns the redacted form. A raw key cannot be serialized by
// accident; call [Secret.Reveal] to send it on purpose.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
