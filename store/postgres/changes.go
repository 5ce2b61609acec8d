package postgres

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

// Changes reports the keys whose record changed, but for its last use, since
// a position: revoked, given an earlier expiry, renamed, narrowed, given
// other metadata, rotated, reported exposed, given a policy or had it
// changed or removed, or given another owner by the table's owner. A
// canary's trips are not part of its record. See [store.ChangeFeed.Changes].
//
// The feed is ordered by commit, not by any clock. A position is the
// snapshot that the query of the call that returned it read
// (pg_current_snapshot()): which transactions had committed when it ran.
// The next call reports every key whose last change was made by a
// transaction that this snapshot did not see as committed, and that the
// call's own snapshot does: each change is reported by the first call that
// begins after its transaction commits, however long after its UPDATE that
// is, and not again (a key changed again is reported again). Changes not
// yet committed are not reported: the call that sees them commit does. One
// call is one query, one scan of the index on changed_xid from the
// position's oldest transaction still running; see "Change feed" in the
// package documentation for what a long-running transaction costs.
//
// A call begins, for the feed, when its query takes its snapshot. A
// position is valid with any Store on the same database. Positions of the
// time-based format of earlier versions, positions not made by this store,
// and positions later than the database's current snapshot (the database
// was restored into another cluster, or failed over to a standby that
// lacks commits the position saw) return [store.ErrInvalidCursor]: a
// verification cache then starts again from an empty cache.
//
// Call it on a *sql.DB or a *sql.Conn, outside any transaction: in a
// transaction at REPEATABLE READ or SERIALIZABLE, every call would read the
// transaction's first snapshot.
func (s *Store) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if since == "" {
		var text string
		if err := s.db.QueryRowContext(ctx, s.q.changesPosition).Scan(&text); err != nil {
			return nil, "", failed(ctx, "changes", err)
		}
		now, err := parseSnapshot(text)
		if err != nil {
			return nil, "", failed(ctx, "changes", err)
		}
		return nil, now.position(), nil
	}
	from, err := parsePosition(since)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.QueryContext(ctx, s.q.changes, from.String())
	if err != nil {
		return nil, "", failed(ctx, "changes", err)
	}
	defer rows.Close()
	var (
		text    string
		changed []apikey.Hash
	)
	for rows.Next() {
		var hash []byte
		if err := rows.Scan(&text, &hash); err != nil {
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
	if text == "" {
		return nil, "", failed(ctx, "changes", errNoPosition)
	}
	now, err := parseSnapshot(text)
	if err != nil {
		return nil, "", failed(ctx, "changes", err)
	}
	if now.xmax < from.xmax {
		// Transaction IDs only grow: this position was not taken on this
		// database as it is now, and what it saw says nothing of it.
		return nil, "", fmt.Errorf("postgres: changes: %w: the position is later than the database's current snapshot %s", store.ErrInvalidCursor, text)
	}
	return changed, now.position(), nil
}

var (
	errBadHash    = errors.New("a stored hash is not 32 bytes")
	errNoPosition = errors.New("the database returned no snapshot")
)

// A snapshot is a PostgreSQL snapshot (pg_snapshot): every transaction
// below xmin had ended when it was taken, every one from xmax on had not
// begun, and xip lists those in between still in progress. It sees as
// committed the transactions below xmax that are not in xip.
type snapshot struct {
	xmin, xmax uint64
	xip        []uint64 // ascending, each in [xmin, xmax)
}

// valid reports whether s is a snapshot PostgreSQL accepts.
func (s snapshot) valid() bool {
	if s.xmin == 0 || s.xmax < s.xmin {
		return false
	}
	for i, x := range s.xip {
		if x < s.xmin || x >= s.xmax || i > 0 && x <= s.xip[i-1] {
			return false
		}
	}
	return true
}

// String returns the snapshot in PostgreSQL's text form, "xmin:xmax:xip,...".
func (s snapshot) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(s.xmin, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(s.xmax, 10))
	b.WriteByte(':')
	for i, x := range s.xip {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	return b.String()
}

// parseSnapshot reads PostgreSQL's text form of a snapshot.
func parseSnapshot(text string) (snapshot, error) {
	bad := fmt.Errorf("the database returned a snapshot %q that is not xmin:xmax:xip,...", text)
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return snapshot{}, bad
	}
	var (
		s   snapshot
		err error
	)
	if s.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return snapshot{}, bad
	}
	if s.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return snapshot{}, bad
	}
	if parts[2] != "" {
		for f := range strings.SplitSeq(parts[2], ",") {
			x, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return snapshot{}, bad
			}
			s.xip = append(s.xip, x)
		}
	}
	if !s.valid() {
		return snapshot{}, bad
	}
	return s, nil
}

// A position is "x" and the base64url encoding of the snapshot as
// unsigned varints: xmin, xmax - xmin, then each transaction of xip as its
// distance from the one before (from xmin for the first). A position of
// earlier versions began with "c": the time of the poll.
const positionTag = 'x'

func (s snapshot) position() string {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(s.xip)*3)
	b = binary.AppendUvarint(b, s.xmin)
	b = binary.AppendUvarint(b, s.xmax-s.xmin)
	prev := s.xmin
	for _, x := range s.xip {
		b = binary.AppendUvarint(b, x-prev)
		prev = x
	}
	return string(positionTag) + base64.RawURLEncoding.EncodeToString(b)
}

// parsePosition decodes a position, or returns [store.ErrInvalidCursor].
func parsePosition(pos string) (snapshot, error) {
	if len(pos) < 2 || pos[0] != positionTag {
		return snapshot{}, store.ErrInvalidCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(pos[1:])
	if err != nil {
		return snapshot{}, store.ErrInvalidCursor
	}
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var s snapshot
	xmin, ok1 := next()
	span, ok2 := next()
	if !ok1 || !ok2 || span > ^uint64(0)-xmin {
		return snapshot{}, store.ErrInvalidCursor
	}
	s.xmin, s.xmax = xmin, xmin+span
	prev := s.xmin
	for len(b) > 0 {
		d, ok := next()
		if !ok || d >= s.xmax-prev || len(s.xip) > 0 && d == 0 {
			return snapshot{}, store.ErrInvalidCursor
		}
		prev += d
		s.xip = append(s.xip, prev)
	}
	if !s.valid() {
		return snapshot{}, store.ErrInvalidCursor
	}
	return s, nil
}
