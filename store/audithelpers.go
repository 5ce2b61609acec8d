package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/audit"
)

// Actor returns the actor of the change made with ctx ([audit.ActorFrom]),
// checked: an invalid one returns an error wrapping [audit.ErrInvalidActor],
// which fails the change.
func Actor(ctx context.Context) (audit.Actor, error) {
	a := audit.ActorFrom(ctx)
	if err := a.Validate(); err != nil {
		return audit.Actor{}, err
	}
	return a, nil
}

// ChangeTime returns the time of an update for its audit entry: u.At, or
// now if it is zero, in store precision.
func (u Update) ChangeTime() time.Time {
	if u.At.IsZero() {
		return Time(time.Now())
	}
	return Time(u.At)
}

// Resolve validates the options and returns the page size, between 1 and
// MaxLimit, and the sequence number the page starts below: the cursor's,
// or math.MaxInt64 for the first page. A cursor not made by
// [AuditCursor] returns [ErrInvalidCursor].
func (o AuditOptions) Resolve() (limit int, before int64, err error) {
	if limit, err = pageLimit(o.Limit); err != nil {
		return 0, 0, err
	}
	if o.Cursor == "" {
		return limit, math.MaxInt64, nil
	}
	if before, err = ParseAuditCursor(o.Cursor); err != nil {
		return 0, 0, err
	}
	return limit, before, nil
}

// ChainLimit resolves the limit of [Store.AuditChain].
func ChainLimit(limit int) (int, error) { return pageLimit(limit) }

func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, errors.New("store: negative limit")
	case limit == 0:
		return DefaultLimit, nil
	case limit > MaxLimit:
		return MaxLimit, nil
	}
	return limit, nil
}

// AuditCursor returns the cursor of the audit page that follows the
// entry with sequence number seq: opaque text for AuditPage.Next.
func AuditCursor(seq int64) string {
	var b [9]byte
	b[0] = 'a' // not a List cursor, whose decoded length differs anyway
	binary.BigEndian.PutUint64(b[1:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseAuditCursor decodes a cursor made by [AuditCursor]: the sequence
// number of the last entry of the previous page, whose following page
// holds the entries with smaller numbers. Anything else returns
// [ErrInvalidCursor].
func ParseAuditCursor(s string) (int64, error) {
	var b [9]byte
	if base64.RawURLEncoding.DecodedLen(len(s)) != len(b) {
		return 0, ErrInvalidCursor
	}
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil || b[0] != 'a' {
		return 0, ErrInvalidCursor
	}
	seq := int64(binary.BigEndian.Uint64(b[1:]))
	if seq < 1 {
		return 0, ErrInvalidCursor
	}
	return seq, nil
}

// Hour returns the UTC hour t falls in, as stores keep usage.
func Hour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// Check validates the query and returns it with From on the hour and To in
// store precision.
func (q UsageQuery) Check() (UsageQuery, error) {
	if len(q.Keys) > MaxUsageKeys {
		return q, fmt.Errorf("store: usage of %d keys asked; at most %d", len(q.Keys), MaxUsageKeys)
	}
	if q.From.IsZero() || q.To.IsZero() {
		return q, errors.New("store: a usage query needs From and To")
	}
	q.From, q.To = Hour(q.From), Time(q.To)
	return q, nil
}

// Has reports whether the query asks for id.
func (q UsageQuery) Has(id uuid.UUID) bool {
	for _, k := range q.Keys {
		if k == id {
			return true
		}
	}
	return false
}
