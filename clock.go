package keyward

import (
	"sync/atomic"
	"time"
)

// monoClock is the default clock. time.Now reads two clocks (wall and
// monotonic); this one reads only the monotonic clock and adds it to a
// wall-clock reading taken at the last rebase, which halves the cost of the
// one clock read on the verification path. The background writer rebases
// it every flush interval, so it follows steps of the wall clock within one
// interval, and drifts from it only by the slew applied meanwhile (at most
// 0.5 ms per second under NTP).
type monoClock struct {
	base atomic.Pointer[time.Time] // a time.Now reading, with its monotonic part
}

func newMonoClock() *monoClock {
	c := new(monoClock)
	c.rebase()
	return c
}

func (c *monoClock) rebase() {
	now := time.Now()
	c.base.Store(&now)
}

// Now returns the current time, without a monotonic reading.
func (c *monoClock) Now() time.Time {
	b := c.base.Load()
	return b.Round(0).Add(time.Since(*b))
}
