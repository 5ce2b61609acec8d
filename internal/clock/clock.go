package keyward

import (
	"sync/atomic"
	"time"
)

// monoClock is the default clock. time.Now reads two clocks (wall and
// monotonic), and time.Time arithmetic is costly next to the rest of a
// verification; this clock reads only the monotonic clock and adds it to a
// wall-clock base, in Unix microseconds, the precision stores keep. The
// background writer rebases it every flush interval, so it follows steps of
// the wall clock within one interval, and drifts from it only by the slew
// applied meanwhile (at most 0.5 ms per second under NTP).
type monoClock struct {
	base atomic.Pointer[monoBase]
}

type monoBase struct {
	wall int64     // Unix microseconds at the rebase
	mono time.Time // time.Now at the rebase, with its monotonic reading
}

func newMonoClock() *monoClock {
	c := new(monoClock)
	c.rebase()
	return c
}

func (c *monoClock) rebase() {
	now := time.Now()
	c.base.Store(&monoBase{wall: now.UnixMicro(), mono: now})
}

// micros returns the current time in Unix microseconds.
func (c *monoClock) micros() int64 {
	b := c.base.Load()
	return b.wall + int64(time.Since(b.mono)/time.Microsecond)
}

// Now returns the current time, in UTC, to the microsecond.
func (c *monoClock) Now() time.Time { return time.UnixMicro(c.micros()).UTC() }
