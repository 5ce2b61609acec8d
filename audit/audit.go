// Package audit describes changes to API keys: who made them (an [Actor],
// carried in the context), what changed (an [Event]), and how a store keeps
// them as a tamper-evident trail (an [Entry] in each owner's hash chain,
// checked by [Check]).
//
// The lifecycle in package keyward produces the events, and every store
// writes the entry of a change atomically with the change itself: there is
// never a change without its entry, nor an entry without its change.
package audit

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// An Actor is who made a change: an operator in the dashboard, a user of
// the command line, a service calling the library, or an outside reporter
// such as GitHub's secret scanning. The caller puts it in the context of
// the call that makes the change, with [WithActor].
type Actor struct {
	// Type says what kind of actor it is. The library's own are
	// [TypeOperator], [TypeCLI], [TypeService] and [TypeReporter];
	// applications may use others. 1 to 32 characters among a-z, 0-9,
	// '.', '_' and '-'.
	Type string `json:"type"`
	// ID names the actor within its type, such as an operator's e-mail
	// address or a service's name: printable UTF-8, at most
	// [MaxActorIDLen] bytes; empty if unknown.
	ID string `json:"id,omitempty"`
}

// Actor types the library sets or documents.
const (
	TypeOperator = "operator" // a person, through the dashboard
	TypeCLI      = "cli"      // a person, through the keyward command
	TypeService  = "service"  // the application's own code
	TypeReporter = "reporter" // an outside party reporting a leaked key, such as GitHub
)

// MaxActorIDLen is the longest Actor.ID, in bytes.
const MaxActorIDLen = 256

// ErrInvalidActor is returned, wrapped, for an Actor that [Actor.Validate]
// refuses.
var ErrInvalidActor = errors.New("audit: invalid actor")

// IsZero reports whether a is the zero Actor: nobody said who acted.
func (a Actor) IsZero() bool { return a == Actor{} }

// Validate checks a; the zero Actor is valid (an unattributed change).
func (a Actor) Validate() error {
	if a.IsZero() {
		return nil
	}
	if a.Type == "" || len(a.Type) > 32 {
		return fmt.Errorf("%w: the type must be 1 to 32 characters", ErrInvalidActor)
	}
	for i := 0; i < len(a.Type); i++ {
		c := a.Type[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: the type %q may hold only a-z, 0-9, '.', '_' and '-'", ErrInvalidActor, a.Type)
		}
	}
	if len(a.ID) > MaxActorIDLen {
		return fmt.Errorf("%w: the ID is longer than %d bytes", ErrInvalidActor, MaxActorIDLen)
	}
	if !utf8.ValidString(a.ID) {
		return fmt.Errorf("%w: the ID is not valid UTF-8", ErrInvalidActor)
	}
	for _, r := range a.ID {
		if r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0 {
			return fmt.Errorf("%w: the ID holds control characters", ErrInvalidActor)
		}
	}
	return nil
}

// String returns "type:id", "type" without an ID, or "unknown" for the
// zero Actor.
func (a Actor) String() string {
	switch {
	case a.IsZero():
		return "unknown"
	case a.ID == "":
		return a.Type
	}
	return a.Type + ":" + a.ID
}

type actorKey struct{}

// WithActor returns a copy of ctx that names a as the actor of the changes
// made with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor [WithActor] put in ctx, or the zero Actor.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// A Kind is what happened to a key.
type Kind string

// The kinds of events. All but CanaryTripped are changes of a key's
// record, kept in the audit trail; a canary's trips are kept apart
// (see keyward.Owner.Trips) and only reach subscribers.
const (
	Created       Kind = "key.created"        // a key was created, by Create or as a rotation's replacement
	Updated       Kind = "key.updated"        // a key's name, scopes, metadata, expiry or policy changed
	Rotated       Kind = "key.rotated"        // a key was replaced; its entry names the replacement
	Revoked       Kind = "key.revoked"        // a key was revoked
	RevokedAll    Kind = "key.revoked_all"    // a key was revoked by a revocation of all the owner's keys
	Exposed       Kind = "key.exposed"        // a key was reported leaked
	CanaryTripped Kind = "key.canary_tripped" // a canary key was used; never in the trail
)

// A Change is one field of a key that an event changed, with its values
// before and after as text ("" for none). Fields that may hold personal
// data (metadata) are named without their values.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// Fields of a Change.
const (
	FieldName       = "name"
	FieldMode       = "mode"
	FieldScopes     = "scopes"
	FieldMetadata   = "metadata"
	FieldExpiresAt  = "expires_at"
	FieldPolicy     = "policy"
	FieldCanary     = "canary"
	FieldReplaces   = "replaces"
	FieldReplacedBy = "replaced_by"
	FieldRevokedAt  = "revoked_at"
	FieldExposure   = "exposure"
)

// An Event is one change to a key, or one use of a canary key: what
// subscribers receive, and what an [Entry] of the trail keeps.
type Event struct {
	Kind  Kind      `json:"kind"`
	Owner string    `json:"owner"`
	KeyID uuid.UUID `json:"key_id"`
	// Prefix is the key's display prefix, to recognise it in a log.
	Prefix string    `json:"prefix,omitempty"`
	At     time.Time `json:"at"`
	Actor  Actor     `json:"actor"`
	// Reason is, for Revoked, RevokedAll and a revoking Exposed, the
	// revocation reason.
	Reason string `json:"reason,omitempty"`
	// Changes are the fields changed, in a fixed order; for Created, the
	// fields the key was created with.
	Changes []Change `json:"changes,omitempty"`
	// Trip is, for CanaryTripped only, the use of the canary.
	Trip *apikey.Trip `json:"trip,omitempty"`
}

// An Entry is an event as the audit trail keeps it: the Seq-th entry of
// its owner's chain, linked to the previous entry by Prev, and sealed by
// Hash, the SHA-256 of Prev, Seq and the event's canonical body (see
// [Event.Body] and [Seal]).
type Entry struct {
	Event
	Seq  int64    `json:"seq"`
	Prev [32]byte `json:"-"`
	Hash [32]byte `json:"-"`
}

// Body returns the event's canonical form, the bytes its entry's hash
// seals: JSON with the fields in a fixed order, the time in UTC to the
// microsecond, and no trip. A store keeps these bytes and reads the event
// back from them with [ParseBody].
func (e Event) Body() []byte {
	b := body{
		Kind:    e.Kind,
		Owner:   e.Owner,
		KeyID:   e.KeyID,
		Prefix:  e.Prefix,
		At:      e.At.UTC().Truncate(time.Microsecond).Format(timeFormat),
		Actor:   e.Actor,
		Reason:  e.Reason,
		Changes: e.Changes,
	}
	out, err := json.Marshal(b)
	if err != nil { // strings, a UUID and a struct of strings: cannot fail
		panic("audit: " + err.Error())
	}
	return out
}

// timeFormat is RFC 3339 with microseconds, always six digits.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

type body struct {
	Kind    Kind      `json:"kind"`
	Owner   string    `json:"owner"`
	KeyID   uuid.UUID `json:"key_id"`
	Prefix  string    `json:"prefix,omitempty"`
	At      string    `json:"at"`
	Actor   Actor     `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	Changes []Change  `json:"changes,omitempty"`
}

// ParseBody reads an event from the bytes [Event.Body] made.
func ParseBody(b []byte) (Event, error) {
	var x body
	if err := json.Unmarshal(b, &x); err != nil {
		return Event{}, fmt.Errorf("audit: reading an entry: %w", err)
	}
	at, err := time.Parse(timeFormat, x.At)
	if err != nil {
		return Event{}, fmt.Errorf("audit: reading an entry's time: %w", err)
	}
	return Event{Kind: x.Kind, Owner: x.Owner, KeyID: x.KeyID, Prefix: x.Prefix, At: at.UTC(),
		Actor: x.Actor, Reason: x.Reason, Changes: x.Changes}, nil
}

// sealDomain separates the hashes of audit entries from any other SHA-256.
const sealDomain = "keyward audit v1\x00"

// Seal returns the hash of the seq-th entry of a chain whose previous
// entry's hash is prev (zero for the first), with the given body:
// SHA-256 of "keyward audit v1", a zero byte, prev, seq as 8 big-endian
// bytes, and body. A store may compute it itself, as the PostgreSQL store
// does in SQL, as long as it computes exactly this.
func Seal(prev [32]byte, seq int64, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(sealDomain))
	h.Write(prev[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Next returns the entry that follows the entry last in its owner's chain
// (the zero Entry for an owner without entries): e with Seq, Prev and Hash
// set.
func Next(last Entry, e Event) Entry {
	seq := last.Seq + 1
	return Entry{Event: e, Seq: seq, Prev: last.Hash, Hash: Seal(last.Hash, seq, e.Body())}
}

// ErrTampered is matched, with [errors.Is], by the [*TamperError] that
// [Check] returns.
var ErrTampered = errors.New("audit: the trail was tampered with")

// A TamperError reports the first entry of a chain that does not hold: it
// was edited, or an entry before it was removed, or entries were reordered.
type TamperError struct {
	Owner string
	// Seq is the position in the chain where the trail stops holding: the
	// entry expected there is missing, or was changed.
	Seq int64
	// Problem says what is wrong, such as "entry 7 is missing".
	Problem string
}

// Error says which owner's trail stops holding, where, and why.
func (e *TamperError) Error() string {
	return fmt.Sprintf("audit: the trail of %q does not hold at entry %d: %s", e.Owner, e.Seq, e.Problem)
}

// Is reports whether target is ErrTampered.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// A Checker walks one owner's chain, oldest entry first, and finds the
// first entry that was edited, removed or reordered. Feed it every entry
// in order with [Checker.Add]. The zero Checker is not usable; use
// [NewChecker].
//
// What a chain cannot show alone: the removal of the newest entries, or
// the rewriting of the whole chain by someone able to recompute hashes.
// Keep the hash of the newest entry ([Checker.Head]) somewhere the
// database's users cannot write, and compare it later with [Checker.Head]
// of a new walk past that entry.
type Checker struct {
	owner string
	last  Entry
	err   error
}

// NewChecker returns a checker of owner's chain.
func NewChecker(owner string) *Checker { return &Checker{owner: owner} }

// Add checks the next entry of the chain, as a store returned it: its
// event must be one of the owner's, its Seq the next, its Prev the hash of
// the entry before, and its Hash must seal them. It returns the
// [*TamperError] of the first entry that does not hold, and the same error
// from every later call.
func (c *Checker) Add(e Entry) error {
	if c.err != nil {
		return c.err
	}
	want := c.last.Seq + 1
	fail := func(problem string, args ...any) error {
		c.err = &TamperError{Owner: c.owner, Seq: want, Problem: fmt.Sprintf(problem, args...)}
		return c.err
	}
	switch {
	case e.Seq > want:
		return fail("entry %d is missing (the next entry is %d)", want, e.Seq)
	case e.Seq < want:
		return fail("entry %d comes after entry %d: entries were reordered or repeated", e.Seq, c.last.Seq)
	case e.Owner != c.owner:
		return fail("the entry belongs to another owner")
	case subtle.ConstantTimeCompare(e.Prev[:], c.last.Hash[:]) != 1:
		return fail("it does not link to entry %d: an entry before it was changed or removed", c.last.Seq)
	}
	if sum := Seal(c.last.Hash, e.Seq, e.Body()); subtle.ConstantTimeCompare(sum[:], e.Hash[:]) != 1 {
		return fail("it was edited: its content does not match its hash")
	}
	c.last = e
	return nil
}

// Head returns the sequence number and hash of the last entry checked,
// zero before any.
func (c *Checker) Head() (seq int64, hash [32]byte) { return c.last.Seq, c.last.Hash }

// Check checks a whole chain, oldest entry first, and returns the
// [*TamperError] of its first entry that does not hold, or nil.
func Check(owner string, entries []Entry) error {
	c := NewChecker(owner)
	for _, e := range entries {
		if err := c.Add(e); err != nil {
			return err
		}
	}
	return nil
}
