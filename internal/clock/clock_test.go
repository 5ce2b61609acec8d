package keyward

import (
	"testing"
	"time"
)

func TestMonoClockFollowsTheWallClock(t *testing.T) {
	c := newMonoClock()
	for range 3 {
		before := time.Now()
		got := c.Now()
		after := time.Now()
		// The clock reads the same instant as time.Now, give or take what
		// slew the wall clock received since the rebase: far under 1 ms.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
			t.Errorf("Now = %v, outside [%v, %v]", got, before, after)
		}
		if got != got.Round(0) || got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
			t.Error("Now is not a UTC time to the microsecond without a monotonic reading")
		}
		time.Sleep(2 * time.Millisecond)
		c.rebase()
	}
	a, b := c.Now(), c.Now()
	if b.Before(a) {
		t.Errorf("the clock went backwards: %v then %v", a, b)
	}
}
