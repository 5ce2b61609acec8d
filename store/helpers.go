package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
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
