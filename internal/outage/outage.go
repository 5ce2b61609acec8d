// Package outage tells operators when something keyward depends on (the
// key store, a rate limiter) stops answering and when it answers again,
// without a log line per failed request.
package outage

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Every is the least time between two log lines of one outage that goes
// on.
const Every = 10 * time.Second

// A Log logs the outages of one dependency: the first failure, one line
// every [Every] with the count of failures however many requests fail,
// and the recovery. While the dependency answers, OK costs one atomic
// load. Set the exported fields before use; a Log is then safe for
// concurrent use.
type Log struct {
	Logger *slog.Logger
	// Now is a monotonic reading of the time.
	Now func() time.Duration
	// Down, Still and Up are the messages of the first failure, of the
	// reminders while the outage lasts, and of the recovery.
	Down, Still, Up string
	// Attrs are added to every line, first, as slog's arguments.
	Attrs []any

	down     atomic.Bool
	failures atomic.Int64 // since the outage began
	since    atomic.Int64 // Now when it began
	logged   atomic.Int64 // Now at its last log line
}

// Failed reports a failure; args are added to its log lines.
func (o *Log) Failed(err error, args ...any) {
	n := o.failures.Add(1)
	now := int64(o.Now())
	if o.down.CompareAndSwap(false, true) {
		o.since.Store(now)
		o.logged.Store(now)
		o.Logger.Error(o.Down, o.args(args, "err", err)...)
		return
	}
	last := o.logged.Load()
	if now-last < int64(Every) || !o.logged.CompareAndSwap(last, now) {
		return
	}
	o.Logger.Warn(o.Still, o.args(args, "failures", n, "for", time.Duration(now-o.since.Load()), "err", err)...)
}

// OK reports that the dependency answered.
func (o *Log) OK() {
	if !o.down.Load() || !o.down.CompareAndSwap(true, false) {
		return
	}
	n := o.failures.Swap(0)
	o.Logger.Info(o.Up, o.args(nil, "failures", n, "after", time.Duration(int64(o.Now())-o.since.Load()))...)
}

// args returns Attrs, then these, then extra.
func (o *Log) args(extra []any, these ...any) []any {
	all := make([]any, 0, len(o.Attrs)+len(these)+len(extra))
	all = append(append(append(all, o.Attrs...), these...), extra...)
	return all
}
