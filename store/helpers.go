package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// The helpers below are for Store implementations, so that every store
// agrees on time precision, option checking and cursors.

// Time returns t as stores keep it: in UTC, truncated to the microsecond,
// without a monotonic clock reading. The zero time stays zero.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Normalize returns rec with every time in store precision ([Time]). It
// copies nothing else: scope sets, metadata and strings are immutable and
// may be shared.
func Normalize(rec apikey.Record) apikey.Record {
	if rec.Policy.IsZero() {
		rec.Policy = nil // one way to say "no policy"
	} else {
		rec.Policy = rec.Policy.Clone() // the caller may change its own
	}
	rec.CreatedAt = Time(rec.CreatedAt)
	rec.LastUsedAt = Time(rec.LastUsedAt)
	rec.RevokedAt = Time(rec.RevokedAt)
	rec.ExpiresAt = Time(rec.ExpiresAt)
	return rec
}

// Check validates the options and returns them with Limit resolved to a
// page size between 1 and MaxLimit and Now in store precision.
func (o ListOptions) Check() (ListOptions, error) {
	switch {
	case o.Limit < 0:
		return o, errors.New("store: negative list limit")
	case o.Limit == 0:
		o.Limit = DefaultLimit
	case o.Limit > MaxLimit:
		o.Limit = MaxLimit
	}
	if o.Mode != 0 && !o.Mode.Valid() {
		return o, apikey.ErrInvalidMode
	}
	if o.Status != 0 && !o.Status.Valid() {
		return o, apikey.ErrInvalidStatus
	}
	if (o.Status == apikey.Active || o.Status == apikey.Expired) && o.Now.IsZero() {
		return o, errors.New("store: listing by status active or expired needs ListOptions.Now")
	}
	o.Now = Time(o.Now)
	return o, nil
}

// Matches reports whether rec passes the mode and status filters of o.
func (o ListOptions) Matches(rec apikey.Record) bool {
	return (o.Mode == 0 || rec.Mode == o.Mode) &&
		(o.Status == 0 || rec.Status(o.Now) == o.Status)
}

// A Cursor is a position in the newest-first order of [Store.List]: the
// creation time and ID of the last record of a page. The next page holds
// the records strictly after it in that order.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// CursorAfter returns the cursor positioned after rec.
func CursorAfter(rec apikey.Record) Cursor {
	return Cursor{CreatedAt: Time(rec.CreatedAt), ID: rec.ID}
}

// CompareIDs orders IDs bytewise, the order PostgreSQL gives uuid columns.
func CompareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// String encodes the cursor as opaque URL-safe text, for Page.Next.
func (c Cursor) String() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.CreatedAt.UnixMicro()))
	copy(b[8:], c.ID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseCursor decodes a cursor made by [Cursor.String]. Anything else
// returns [ErrInvalidCursor].
func ParseCursor(s string) (Cursor, error) {
	var b [24]byte
	if base64.RawURLEncoding.DecodedLen(len(s)) != len(b) {
		return Cursor{}, ErrInvalidCursor
	}
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	var c Cursor
	c.CreatedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC()
	copy(c.ID[:], b[8:])
	if c.ID == uuid.Nil {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

// Check validates the values u sets, as every store must before applying
// it: a valid name, well-formed scopes. It returns u with its expiry in
// store precision. An invalid value returns an error wrapping
// [apikey.ErrInvalidRecord].
func (u Update) Check() (Update, error) {
	if u.Name != "" {
		if err := apikey.ValidName(u.Name); err != nil {
			return u, fmt.Errorf("%w: %v", apikey.ErrInvalidRecord, err)
		}
	}
	for _, s := range u.Scopes.Scopes() {
		if !s.Valid() {
			return u, fmt.Errorf("%w: malformed scope %q", apikey.ErrInvalidRecord, s)
		}
	}
	if err := u.Policy.Validate(); err != nil {
		return u, fmt.Errorf("%w: %v", apikey.ErrInvalidRecord, err)
	}
	u.Policy = u.Policy.Clone()
	u.ExpiresAt = Time(u.ExpiresAt)
	return u, nil
}

// Apply applies u, checked by [Update.Check], to rec by the rules of
// [Store.Update]: it refuses a revoked key and scopes that are not a subset
// of rec's, and moves the expiry only earlier. Stores call it on the
// current record, under whatever lock makes the change atomic.
func (u Update) Apply(rec *apikey.Record) error {
	if rec.Revoked() {
		return ErrAlreadyRevoked
	}
	if !u.Scopes.IsEmpty() && !u.Scopes.SubsetOf(rec.Scopes) {
		return ErrWidening
	}
	if u.Name != "" {
		rec.Name = u.Name
	}
	if !u.Scopes.IsEmpty() {
		rec.Scopes = u.Scopes
	}
	if u.Metadata != nil {
		rec.Metadata = *u.Metadata
	}
	if u.Policy != nil {
		rec.Policy = u.Policy
		if u.Policy.IsZero() {
			rec.Policy = nil
		}
	}
	rec.ExpiresAt = EarlierExpiry(rec.ExpiresAt, u.ExpiresAt)
	return nil
}

// EarlierExpiry returns the earlier of two expiries, in store precision,
// where a zero time means "never".
func EarlierExpiry(a, b time.Time) time.Time {
	a, b = Time(a), Time(b)
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// CheckRotation validates next, the replacement of the key with the given
// ID and owner, for [Store.Rotate], before anything is stored: next must be
// a valid new record of the owner that names the key in Replaces. It
// returns next in store precision ([Normalize]).
func CheckRotation(owner string, id uuid.UUID, next apikey.Record) (apikey.Record, error) {
	if err := next.Validate(); err != nil {
		return next, err
	}
	switch {
	case next.Owner != owner:
		return next, fmt.Errorf("%w: the replacement belongs to another owner", apikey.ErrInvalidRecord)
	case next.Replaces != id:
		return next, fmt.Errorf("%w: the replacement does not name the key it replaces", apikey.ErrInvalidRecord)
	}
	return Normalize(next), nil
}

// Rotation applies a rotation to old, the current record of the key being
// replaced, by the rules of [Store.Rotate]: replacement is the current
// record of the key old.ReplacedBy names (the zero Record if old has no
// replacement, or if it was not found, which refuses the rotation).
// It refuses a key that is not active at next.CreatedAt or that is
// replaced by a key that is not revoked, and scopes in next that old
// lacks. It returns old and next as they must be stored. Stores call it
// under whatever lock makes the rotation atomic.
func Rotation(old, replacement, next apikey.Record, overlapEnd time.Time) (apikey.Record, apikey.Record, error) {
	switch {
	case old.Revoked():
		return old, next, ErrAlreadyRevoked
	case old.Expired(next.CreatedAt):
		return old, next, ErrKeyExpired
	case old.ReplacedBy != uuid.Nil && !replacement.Revoked():
		return old, next, ErrReplaced
	case next.Mode != old.Mode:
		return old, next, fmt.Errorf("%w: the replacement has another mode", apikey.ErrInvalidRecord)
	case !next.Scopes.SubsetOf(old.Scopes):
		return old, next, ErrWidening
	}
	if next.ExpiresAt.IsZero() {
		next.ExpiresAt = old.ExpiresAt
	}
	old.ExpiresAt = EarlierExpiry(old.ExpiresAt, overlapEnd)
	old.ReplacedBy = next.ID
	return old, next, nil
}

// IsAnswer reports whether err is one of the answers of the [Store]
// contract (a sentinel error of this package, or an error wrapping
// [apikey.ErrInvalidRecord]), by which a store refuses a call and changes
// nothing, rather than a failure, after which the store may or may not have
// done what was asked.
func IsAnswer(err error) bool {
	for _, answer := range answers {
		if errors.Is(err, answer) {
			return true
		}
	}
	return false
}

var answers = []error{
	ErrNotFound, ErrDuplicate, ErrAlreadyRevoked, ErrKeyExpired, ErrReplaced, ErrWidening,
	ErrAlreadyCreated, ErrIdempotencyConflict, ErrInvalidCursor, ErrAlreadyExposed, apikey.ErrInvalidRecord,
}

// Check validates a revocation and returns it with its time in store
// precision: a time is required, and the reason must pass
// [apikey.ValidReason] (an error wrapping [apikey.ErrInvalidRecord]).
func (r Revocation) Check() (Revocation, error) {
	if r.At.IsZero() {
		return r, errors.New("store: a revocation needs a time")
	}
	if err := apikey.ValidReason(r.Reason); err != nil {
		return r, fmt.Errorf("%w: %v", apikey.ErrInvalidRecord, err)
	}
	r.At = Time(r.At)
	return r, nil
}

// Revoke revokes rec by r, checked: [ErrAlreadyRevoked] if it is revoked.
func (r Revocation) Revoke(rec *apikey.Record) error {
	if rec.Revoked() {
		return ErrAlreadyRevoked
	}
	rec.RevokedAt, rec.RevokedReason = r.At, r.Reason
	return nil
}

// CheckExposure validates an exposure for [Store.Expose] (an error
// wrapping [apikey.ErrInvalidRecord]) and returns it with its time in
// store precision.
func CheckExposure(e apikey.Exposure) (apikey.Exposure, error) {
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %v", apikey.ErrInvalidRecord, err)
	}
	e.At = Time(e.At)
	return e, nil
}

// Expose applies [Store.Expose] to rec, with e checked by
// [CheckExposure]: it returns [ErrAlreadyExposed] if nothing changes.
func Expose(rec *apikey.Record, e apikey.Exposure, revoke bool) error {
	changed := false
	if rec.Exposure == nil {
		rec.Exposure = &e
		changed = true
	}
	if revoke && !rec.Revoked() {
		rec.RevokedAt, rec.RevokedReason = e.At, apikey.ReasonExposed
		changed = true
	}
	if !changed {
		return ErrAlreadyExposed
	}
	return nil
}

// CheckTrip validates a trip for [Store.RecordTrip] and returns it with
// its time in store precision.
func CheckTrip(t apikey.Trip) (apikey.Trip, error) {
	switch {
	case t.At.IsZero():
		return t, errors.New("store: a trip needs a time")
	case t.KeyID == uuid.Nil:
		return t, errors.New("store: a trip needs a key ID")
	}
	t.At = Time(t.At)
	return t, nil
}

// TripsLimit resolves the limit of [Store.Trips]: 0, or more than
// [MaxTrips], means MaxTrips.
func TripsLimit(limit int) int {
	if limit <= 0 || limit > MaxTrips {
		return MaxTrips
	}
	return limit
}
