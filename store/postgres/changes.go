package postgres

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// Changes reports the keys whose record changed, but for its last use, since
// a position: revoked, given an earlier expiry, renamed, narrowed, given
// other metadata, rotated, or given another owner by the table's owner. See
// [store.ChangeFeed.Changes].
//
// A position is the database's now() when the call that returned it ran, a
// time no later than the snapshot its query read. The next call reports
// every key whose changed_at, the database's clock_timestamp() when its row
// was changed, is later than that position less the change margin
// ([WithChangeMargin], one minute by default). A change whose transaction
// commits within the margin after it changed the row is therefore never
// missed; changes made within the margin before a position are reported
// again. One call is one indexed query.
func (s *Store) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if since == "" {
		var now time.Time
		if err := s.db.QueryRowContext(ctx, s.q.changesPosition).Scan(&now); err != nil {
			return nil, "", failed(ctx, "changes", err)
		}
		return nil, encodePosition(now), nil
	}
	from, err := parsePosition(since)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.QueryContext(ctx, s.q.changes, from.Add(-s.margin))
	if err != nil {
		return nil, "", failed(ctx, "changes", err)
	}
	defer rows.Close()
	var (
		now     time.Time
		changed []apikey.Hash
	)
	for rows.Next() {
		var hash []byte
		if err := rows.Scan(&now, &hash); err != nil {
			return nil, "", failed(ctx, "changes", err)
		}
		if hash == nil {
			continue // the LEFT JOIN's row when nothing changed
		}
		var h apikey.Hash
		if len(hash) != len(h) {
			return nil, "", failed(ctx, "changes", errBadHash)
		}
		copy(h[:], hash)
		changed = append(changed, h)
	}
	if err := rows.Err(); err != nil {
		return nil, "", failed(ctx, "changes", err)
	}
	if now.IsZero() {
		return nil, "", failed(ctx, "changes", errNoPosition)
	}
	return changed, encodePosition(now), nil
}

var (
	errBadHash    = errors.New("a stored hash is not 32 bytes")
	errNoPosition = errors.New("the database returned no time")
)

// A position is "c" and the base64url encoding of the big-endian Unix time
// in microseconds.
const positionTag = 'c'

func encodePosition(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMicro()))
	return string(positionTag) + base64.RawURLEncoding.EncodeToString(b[:])
}

func parsePosition(s string) (time.Time, error) {
	var b [8]byte
	if len(s) != 1+base64.RawURLEncoding.EncodedLen(len(b)) || s[0] != positionTag {
		return time.Time{}, store.ErrInvalidCursor
	}
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(s[1:])); err != nil || n != len(b) {
		return time.Time{}, store.ErrInvalidCursor
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b[:]))).UTC(), nil
}
