package keyward

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/store"
)

// usage coalesces last-used times in memory between flushes: per key, only
// the latest time is kept, so a key verified 10,000 times in an interval
// costs one entry and one row written. Its size is bounded by the number of
// distinct keys that verified successfully since the last flush.
type usage struct {
	shards [16]usageShard
}

type usageShard struct {
	mu    sync.Mutex
	m     map[uuid.UUID]time.Time // filled by record
	spare map[uuid.UUID]time.Time // emptied by drain, swapped in next
	_     [40]byte                // keep shards on separate cache lines
}

func newUsage() *usage {
	u := new(usage)
	for i := range u.shards {
		u.shards[i].m = make(map[uuid.UUID]time.Time)
		u.shards[i].spare = make(map[uuid.UUID]time.Time)
	}
	return u
}

// record notes that key id authenticated at time at. It allocates only when
// a shard's map grows past any size it had before.
func (u *usage) record(id uuid.UUID, at time.Time) {
	sh := &u.shards[id[15]%uint8(len(u.shards))]
	sh.mu.Lock()
	if prev, ok := sh.m[id]; !ok || at.After(prev) {
		sh.m[id] = at
	}
	sh.mu.Unlock()
}

// drain appends every pending use to dst, empties the pending set, and
// returns dst.
func (u *usage) drain(dst []store.Use) []store.Use {
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		full := sh.m
		sh.m, sh.spare = sh.spare, nil
		sh.mu.Unlock()

		for id, at := range full {
			dst = append(dst, store.Use{ID: id, At: at})
		}
		clear(full) // keeps its buckets, so the next round does not allocate

		sh.mu.Lock()
		sh.spare = full
		sh.mu.Unlock()
	}
	return dst
}

// restore puts back uses that could not be written, so they are retried.
func (u *usage) restore(uses []store.Use) {
	for _, use := range uses {
		u.record(use.ID, use.At)
	}
}

func (u *usage) pending() int {
	n := 0
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (k *Keys) flushLoop() {
	defer close(k.stopped)
	t := time.NewTicker(k.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			if err := k.Flush(ctx); err != nil {
				k.logger.Warn("keyward: writing last-used times failed; will retry",
					"pending_keys", k.uses.pending(), "err", err)
			}
			cancel()
		case <-k.stop:
			return
		}
	}
}

// Flush writes the pending last-used times to the store now, in one call to
// [store.Store.RecordUses]. The background writer calls it every flush
// interval; call it yourself to make the times visible at once, as tests do.
//
// Accuracy: a successful verification at time t is visible in the store's
// LastUsedAt by t + the flush interval + the time of one write, and the time
// written is t itself (to the microsecond), not the time of the write. If a
// write fails, the uses are kept and retried at the next flush. If the
// process dies without [Keys.Close], at most the uses of the last interval
// are lost: LastUsedAt then shows an earlier use.
func (k *Keys) Flush(ctx context.Context) error {
	k.flushMu.Lock()
	defer k.flushMu.Unlock()
	uses := k.uses.drain(nil)
	if len(uses) == 0 {
		return nil
	}
	if err := k.store.RecordUses(ctx, uses); err != nil {
		k.uses.restore(uses)
		return &StoreError{Op: "record uses", Err: err}
	}
	return nil
}

// Close stops the background writer and writes the pending last-used
// times. Call it after the HTTP server has shut down, so the last requests'
// uses are included. Close is idempotent and returns the error of the final
// write. Verify still works after Close, but its uses are only written by
// later calls to [Keys.Flush].
func (k *Keys) Close() error {
	k.closeOnce.Do(func() {
		close(k.stop)
		<-k.stopped
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		k.closeErr = k.Flush(ctx)
	})
	return k.closeErr
}
