package keyward

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/clock"
)

// outageLogEvery is the least time between two log lines of one outage
// that goes on.
const outageLogEvery = 10 * time.Second

// An outage tells operators when the store stops answering and when it
// answers again: the first failure of an outage and the recovery are
// logged, and between them one line every outageLogEvery with the count of
// failures, however many requests fail. While the store answers, ok costs
// one atomic load.
type outage struct {
	logger *slog.Logger
	clock  *clock.Clock
	what   string // "verifying keys", "writing last-used times"

	down     atomic.Bool
	failures atomic.Int64 // since the outage began
	since    atomic.Int64 // Unix microseconds when it began
	logged   atomic.Int64 // Unix microseconds of its last log line
}

// failed reports a failure of the store; args are added to its log lines,
// as slog's are.
func (o *outage) failed(err error, args ...any) {
	n := o.failures.Add(1)
	now := o.clock.Micros()
	if o.down.CompareAndSwap(false, true) {
		o.since.Store(now)
		o.logged.Store(now)
		o.logger.Error("keyward: the key store is unavailable: requests get 503 until it answers again",
			append([]any{"while", o.what, "err", err}, args...)...)
		return
	}
	last := o.logged.Load()
	if now-last < outageLogEvery.Microseconds() || !o.logged.CompareAndSwap(last, now) {
		return
	}
	o.logger.Warn("keyward: the key store is still unavailable",
		append([]any{"while", o.what, "failures", n, "for", time.Duration(now-o.since.Load()) * time.Microsecond, "err", err}, args...)...)
}

// ok reports that the store answered.
func (o *outage) ok() {
	if !o.down.Load() || !o.down.CompareAndSwap(true, false) {
		return
	}
	n := o.failures.Swap(0)
	o.logger.Info("keyward: the key store answers again",
		"while", o.what, "failures", n, "after", time.Duration(o.clock.Micros()-o.since.Load())*time.Microsecond)
}
