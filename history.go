package keyward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

// DefaultUsageRetention is how long usage counts are kept by default.
const DefaultUsageRetention = 90 * 24 * time.Hour

// pruneEvery is how often the background writer deletes usage counts past
// their retention.
const pruneEvery = time.Hour

// WithUsageRetention sets how long the counts of [Owner.Usage] are kept:
// the background writer deletes older ones every hour (every instance
// does; the deletes are idempotent). The default is
// [DefaultUsageRetention], 90 days; d must be at least a day.
func WithUsageRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < 24*time.Hour {
			return errors.New("keyward: usage must be kept at least a day")
		}
		c.retention = d
		return nil
	}
}

// pruneUsage deletes usage counts past their retention, at most every
// pruneEvery. Only flushLoop calls it.
func (k *Keys) pruneUsage(ctx context.Context) {
	now := k.clock.Micros()
	if k.pruned != 0 && now-k.pruned < pruneEvery.Microseconds() {
		return
	}
	k.pruned = now
	before := time.UnixMicro(now).Add(-k.retention)
	if err := k.store.PruneUsage(ctx, before); err != nil {
		k.logger.Error("keyward: deleting usage counts past their retention failed; tried again in an hour", "err", err)
	}
}

// AuditOptions selects and pages the entries [Owner.Audit] returns. The
// zero value lists the newest [store.DefaultLimit] entries of the owner.
type AuditOptions struct {
	// KeyID, if not zero, lists only the entries of that key.
	KeyID uuid.UUID
	// Limit is the page size: 0 means 100, more than 1000 means 1000.
	Limit int
	// Cursor is AuditPage.Next of the previous page, or empty for the
	// first page.
	Cursor string
}

// An AuditPage is one page of an owner's audit trail, newest first.
type AuditPage struct {
	Entries []audit.Entry `json:"entries"`
	// Next, passed as AuditOptions.Cursor, returns the following page; it
	// is empty on the last page.
	Next string `json:"next_cursor,omitempty"`
}

// Audit returns a page of the owner's audit trail, newest first: every
// change made to the owner's keys, with its actor, time, reason and the
// fields it changed, kept by the store with the change itself. Invalid
// options return an [*InputError] naming the option: "limit" or
// "cursor".
func (o Owner) Audit(ctx context.Context, opts AuditOptions) (AuditPage, error) {
	if err := o.check(); err != nil {
		return AuditPage{}, err
	}
	if opts.Limit < 0 {
		return AuditPage{}, &InputError{Field: "limit", Err: errors.New("must not be negative")}
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	page, err := o.k.store.Audit(ctx, o.id, store.AuditOptions{KeyID: opts.KeyID, Limit: opts.Limit, Cursor: opts.Cursor})
	if errors.Is(err, store.ErrInvalidCursor) {
		return AuditPage{}, &InputError{Field: "cursor", Err: errors.New("is not a cursor of this trail")}
	}
	if err != nil {
		return AuditPage{}, storeError("audit", err)
	}
	return AuditPage{Entries: page.Entries, Next: page.Next}, nil
}

// An AuditHead is the newest entry of a chain that [Owner.CheckAudit]
// checked: keep it where the database's users cannot write, and a later
// check that does not reach it, or finds another hash at its Seq, shows
// that the newest entries were removed or the chain rewritten.
type AuditHead struct {
	Seq  int64    `json:"seq"`
	Hash [32]byte `json:"-"`
}

// CheckAudit walks the owner's whole audit trail, oldest entry first, and
// checks its hash chain (see [audit.Checker]): it returns an error
// matching [audit.ErrTampered], an [*audit.TamperError] naming the first
// entry that was edited, removed or reordered, or nil and the newest
// entry. It reads the trail in pages of [store.MaxLimit] entries, each
// with its own deadline (see [WithStoreTimeout]).
func (o Owner) CheckAudit(ctx context.Context) (AuditHead, error) {
	if err := o.check(); err != nil {
		return AuditHead{}, err
	}
	c := audit.NewChecker(o.id)
	var after int64
	for {
		pageCtx, cancel := o.k.storeContext(ctx)
		entries, err := o.k.store.AuditChain(pageCtx, o.id, after, store.MaxLimit)
		cancel()
		if err != nil {
			return AuditHead{}, storeError("check audit", err)
		}
		for _, e := range entries {
			if err := c.Add(e); err != nil {
				return AuditHead{}, err
			}
		}
		if len(entries) < store.MaxLimit {
			seq, hash := c.Head()
			return AuditHead{Seq: seq, Hash: hash}, nil
		}
		after = entries[len(entries)-1].Seq
	}
}

// MaxUsageDays is the longest span [Owner.Usage] reports.
const MaxUsageDays = 400

// UsageQuery selects what [Owner.Usage] reports.
type UsageQuery struct {
	// Keys are the owner's keys to report, 1 to [store.MaxUsageKeys];
	// another owner's, or an unknown ID, reports zero counts.
	Keys []uuid.UUID
	// From and To bound the span, From included, To excluded; To zero
	// means now. Both are rounded down to Per (to the hour if Per is 0),
	// in UTC; To then moves one Per later, so that the current hour or
	// day is included. At most [MaxUsageDays].
	From, To time.Time
	// Per is the width of the buckets: time.Hour or 24*time.Hour (UTC
	// days); 0 reports totals only.
	Per time.Duration
}

// Usage is the use of one key over a span: its counts in total, and by
// bucket.
type Usage struct {
	KeyID uuid.UUID `json:"key_id"`
	// Total is the sum of the buckets.
	Total store.Counts `json:"total"`
	// Buckets are the span's hours or days, oldest first, every one of
	// them, zero counts included; nil when UsageQuery.Per is 0.
	Buckets []UsageBucket `json:"buckets,omitempty"`
}

// A UsageBucket is one hour or day of a key's use.
type UsageBucket struct {
	Start  time.Time    `json:"start"`
	Counts store.Counts `json:"counts"`
}

// Usage reports how much the owner's keys were used: successful
// verifications, and refusals after verification by why (see
// [store.Counts]), counted in memory and written with last-used times,
// so that it lags by up to the flush interval (see [Keys.Flush]), and
// loses no more than last-used times do if the process dies. It returns
// one Usage per key, in q.Keys order. Invalid queries return an
// [*InputError] naming the field: "keys", "from", "to" or "per".
func (o Owner) Usage(ctx context.Context, q UsageQuery) ([]Usage, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	step := q.Per
	switch step {
	case 0:
		step = time.Hour
	case time.Hour, 24 * time.Hour:
	default:
		return nil, &InputError{Field: "per", Err: errors.New("must be an hour, a day or 0")}
	}
	if len(q.Keys) == 0 || len(q.Keys) > store.MaxUsageKeys {
		return nil, &InputError{Field: "keys", Err: fmt.Errorf("must list 1 to %d keys", store.MaxUsageKeys)}
	}
	to := q.To
	if to.IsZero() {
		to = o.k.now()
	}
	from, to := q.From.UTC().Truncate(step), to.UTC().Truncate(step).Add(step)
	switch {
	case q.From.IsZero():
		return nil, &InputError{Field: "from", Err: errors.New("is required")}
	case !from.Before(to):
		return nil, &InputError{Field: "to", Err: errors.New("must be after from")}
	case to.Sub(from) > MaxUsageDays*24*time.Hour:
		return nil, &InputError{Field: "from", Err: fmt.Errorf("the span must be at most %d days", MaxUsageDays)}
	}
	ctx, cancel := o.k.storeContext(ctx)
	defer cancel()
	hours, err := o.k.store.Usage(ctx, o.id, store.UsageQuery{Keys: q.Keys, From: from, To: to})
	if err != nil {
		return nil, storeError("usage", err)
	}
	out := make([]Usage, len(q.Keys))
	index := make(map[uuid.UUID]int, len(q.Keys))
	n := int(to.Sub(from) / step)
	for i, id := range q.Keys {
		out[i].KeyID = id
		if _, dup := index[id]; !dup {
			index[id] = i
		}
		if q.Per != 0 {
			out[i].Buckets = make([]UsageBucket, n)
			for j := range n {
				out[i].Buckets[j].Start = from.Add(time.Duration(j) * step)
			}
		}
	}
	for _, h := range hours {
		i, ok := index[h.KeyID]
		if !ok || h.Hour.Before(from) || !h.Hour.Before(to) {
			continue
		}
		out[i].Total = out[i].Total.Add(h.Counts)
		if q.Per != 0 {
			j := int(h.Hour.Sub(from) / step)
			out[i].Buckets[j].Counts = out[i].Buckets[j].Counts.Add(h.Counts)
		}
	}
	for i, id := range q.Keys { // a key listed twice gets the same
		if j := index[id]; j != i {
			out[i] = out[j]
		}
	}
	return out, nil
}
