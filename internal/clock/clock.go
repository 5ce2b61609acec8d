// Package clock is keyward's one notion of time. The lifecycle reads the
// current time from a [Clock]; the middleware and the dashboard read it
// from the lifecycle; caches age their entries with [Mono]. Nothing else in
// keyward calls time.Now.
//
// The default Clock is a performance trick, fenced here: [time.Now] reads
// two clocks (wall and monotonic), and time.Time arithmetic is costly next
// to the rest of a verification, so the default clock reads only the
// monotonic clock and adds it to a wall-clock base, in Unix microseconds,
// the precision stores keep. Its owner calls [Clock.Rebase] periodically
// (the lifecycle does, every flush interval), so it follows steps of the
// wall clock within one period and drifts from it only by the slew applied
// meanwhile (at most 0.5 ms per second under NTP).
package clock

import (
	"strings"
	"sync/atomic"
	"time"
)

// A Clock tells the current time. It is safe for concurrent use.
type Clock struct {
	now  func() time.Time // a clock given by Func; nil for the default
	base atomic.Pointer[base]
}

type base struct {
	wall int64     // Unix microseconds at the rebase
	mono time.Time // time.Now at the rebase, with its monotonic reading
}

// New returns the default clock: the wall clock read through the
// monotonic clock, rebased by [Clock.Rebase].
func New() *Clock {
	c := new(Clock)
	c.Rebase()
	return c
}

// Func returns a clock that reads now, for tests that set the time.
func Func(now func() time.Time) *Clock { return &Clock{now: now} }

// Rebase re-reads the wall clock. It does nothing for a clock made by Func.
func (c *Clock) Rebase() {
	if c.now != nil {
		return
	}
	now := time.Now()
	c.base.Store(&base{wall: now.UnixMicro(), mono: now})
}

// Micros returns the current time in Unix microseconds: the cheap form of
// Now, for the verification path.
func (c *Clock) Micros() int64 {
	if c.now != nil {
		return c.now().UnixMicro()
	}
	b := c.base.Load()
	return b.wall + int64(time.Since(b.mono)/time.Microsecond)
}

// Now returns the current time, in UTC, to the microsecond, without a
// monotonic clock reading.
func (c *Clock) Now() time.Time { return time.UnixMicro(c.Micros()).UTC() }

// start is the origin of Mono.
var start = time.Now()

// Mono returns the time on the monotonic clock, in nanoseconds since the
// process started: for measuring ages and deadlines, immune to steps of the
// wall clock, and cheaper than time.Now.
func Mono() int64 { return int64(time.Since(start)) }

// ShortDuration writes d as [time.ParseDuration] reads it, without zero
// units: "24h" rather than "24h0m0s", "1h30m" rather than "1h30m0s". Error
// messages and forms show durations this way.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
