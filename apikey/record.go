package apikey

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/keyward/scope"
)

// MaxNameLen is the longest key name accepted, in bytes.
const MaxNameLen = 200

// A Record describes one key: everything keyward keeps about it. It never
// holds the raw key, only its [Hash] and its display prefix.
//
// Absent times are zero: a key never used has a zero LastUsedAt, an active
// key a zero RevokedAt, and a key without expiry a zero ExpiresAt; absent
// links are the zero UUID. JSON leaves zero times and links out and never
// includes the hash.
type Record struct {
	// ID identifies the key in the API and the dashboard.
	ID uuid.UUID `json:"id"`
	// Owner is the application's ID of the account the key belongs to,
	// such as "acct_123" (see [ValidOwner]). It is set when the key is
	// created and never changes: a key identifies its owner.
	Owner string `json:"owner"`
	// Name is the label given at creation, such as "Production server".
	Name string `json:"name"`
	// Prefix is the display prefix, such as "ck_live_abc123": the only part
	// of the key kept in clear.
	Prefix string `json:"prefix"`
	// Mode is Live or Test.
	Mode Mode `json:"mode"`
	// Canary marks a tripwire: a key made to be planted where a thief
	// would look, which never authorizes anything and whose every use is
	// recorded as a [Trip]. (It sits beside Mode, in what would be
	// padding.)
	Canary bool `json:"canary,omitempty"`
	// Scopes are the permissions granted to the key.
	Scopes scope.Set `json:"scopes"`
	// Metadata is the application's own key-value pairs on the key.
	Metadata Metadata `json:"metadata"`
	// Hash is the SHA-256 hash of the raw key.
	Hash Hash `json:"-"`
	// CreatedAt is when the key was generated.
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is the time of the most recent successful authentication.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// RevokedAt is when the key was revoked. Revocation is final.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// ExpiresAt is when the key stops working, if it has an expiry; rotation
	// sets it on the key being replaced.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Replaces is the ID of the key this one was rotated from, if any.
	Replaces uuid.UUID `json:"replaces,omitzero"`
	// ReplacedBy is the ID of the key this one was rotated to, if any: the
	// key works until its ExpiresAt, the end of the rotation's overlap.
	ReplacedBy uuid.UUID `json:"replaced_by,omitzero"`
	// RevokedReason says why the key was revoked: the revoker's words, or
	// [ReasonExposed]. Empty if the key is active or no reason was given.
	RevokedReason string `json:"revoked_reason,omitempty"`
	// Exposure, if not nil, says where the key was found exposed. It is set
	// once, by the first report, and never changes; treat it as read-only.
	Exposure *Exposure `json:"exposure,omitempty"`
	// Policy, if not nil, limits the key's rate, quota and client
	// networks. It is read-only: records share it.
	Policy *Policy `json:"policy,omitempty"`
}

// Revoked reports whether the key has been revoked.
func (r Record) Revoked() bool { return !r.RevokedAt.IsZero() }

// Expired reports whether the key has an expiry at or before now.
func (r Record) Expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// Status returns the key's status at time now. Revocation wins over expiry.
func (r Record) Status(now time.Time) Status {
	switch {
	case r.Revoked():
		return Revoked
	case r.Expired(now):
		return Expired
	}
	return Active
}

// LogValue logs the record's identity (ID, owner, name, display prefix,
// mode), never its hash nor its metadata, which may be personal data.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", r.ID.String()),
		slog.String("owner", r.Owner),
		slog.String("name", r.Name),
		slog.String("prefix", r.Prefix),
		slog.String("mode", r.Mode.String()),
	)
}

// ErrInvalidRecord is wrapped by the errors of [Record.Validate].
var ErrInvalidRecord = errors.New("apikey: invalid record")

// Validate checks what every new record must satisfy before a store accepts
// it: an ID, a valid owner ([ValidOwner]), a valid name ([ValidName]), a
// display prefix, a valid mode, at least one well-formed scope, a hash, a
// creation time, no revocation, no exposure, and no replacement yet.
func (r Record) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRecord}, args...)...)
	}
	switch {
	case r.ID == uuid.Nil:
		return fail("missing ID")
	case !r.Mode.Valid():
		return fail("invalid mode")
	case r.Prefix == "":
		return fail("missing display prefix")
	case r.Hash.IsZero():
		return fail("missing hash")
	case r.Scopes.IsEmpty():
		return fail("no scopes")
	case r.CreatedAt.IsZero():
		return fail("missing creation time")
	case r.Revoked():
		return fail("a new key cannot be revoked")
	case r.ReplacedBy != uuid.Nil:
		return fail("a new key cannot be replaced yet")
	case r.Replaces == r.ID:
		return fail("a key cannot replace itself")
	case r.RevokedReason != "":
		return fail("a new key cannot have a revocation reason")
	case r.Exposure != nil:
		return fail("a new key cannot be exposed yet")
	}
	if err := ValidOwner(r.Owner); err != nil {
		return fail("%v", err)
	}
	if err := ValidName(r.Name); err != nil {
		return fail("%v", err)
	}
	for _, s := range r.Scopes.Scopes() {
		if !s.Valid() {
			return fail("malformed scope %q", s)
		}
	}
	if err := r.Policy.Validate(); err != nil {
		return fail("%v", err)
	}
	return nil
}

// ValidName checks a key name: not empty, no surrounding spaces, at most
// [MaxNameLen] bytes of valid UTF-8 without control characters, and without
// the invisible and bidirectional formatting characters that can make a
// name display as another in a list or a log (U+200B-U+200F,
// U+202A-U+202E, U+2066-U+2069, U+2028, U+2029, U+FEFF).
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("name is required")
	case strings.TrimSpace(name) != name:
		return errors.New("name has surrounding spaces")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name is longer than %d bytes", MaxNameLen)
	case !utf8.ValidString(name):
		return errors.New("name is not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("name contains control characters")
	case strings.ContainsFunc(name, isFormatting):
		return errors.New("name contains invisible or bidirectional formatting characters")
	}
	return nil
}

// A Status is a key's state: Active, Revoked or Expired. The zero Status is
// not a status; store filters use it to mean "any".
type Status uint8

// Key statuses.
const (
	Active  Status = iota + 1 // The key authenticates requests.
	Revoked                   // The key was revoked; it never works again.
	Expired                   // The key's expiry has passed.
)

// ErrInvalidStatus is returned when text names no status.
var ErrInvalidStatus = errors.New(`apikey: status must be "active", "revoked" or "expired"`)

// ParseStatus returns the status written "active", "revoked" or "expired".
func ParseStatus(s string) (Status, error) {
	switch s {
	case "active":
		return Active, nil
	case "revoked":
		return Revoked, nil
	case "expired":
		return Expired, nil
	}
	return 0, ErrInvalidStatus
}

// Valid reports whether s is Active, Revoked or Expired.
func (s Status) Valid() bool { return s >= Active && s <= Expired }

// String returns "active", "revoked" or "expired", and "unknown" otherwise.
func (s Status) String() string {
	switch s {
	case Active:
		return "active"
	case Revoked:
		return "revoked"
	case Expired:
		return "expired"
	}
	return "unknown"
}

// MarshalText returns the status's name. It fails for an invalid status.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, ErrInvalidStatus
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a status's name.
func (s *Status) UnmarshalText(text []byte) error {
	v, err := ParseStatus(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// A RecordAt is a record with its status at a given time: what a JSON API
// shows a client, since a record's own JSON cannot say whether it has
// expired by now. Its JSON is the record's, with "status" added.
type RecordAt struct {
	Record
	// Status is the record's status at the time given to [Record.At].
	Status Status `json:"status"`
}

// At returns the record with its status at now, such as the lifecycle's
// Keys.Now, for a JSON response.
func (r Record) At(now time.Time) RecordAt { return RecordAt{Record: r, Status: r.Status(now)} }
