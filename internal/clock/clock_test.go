package clock

import (
	"testing"
	"time"
)

func TestNewFollowsTheWallClock(t *testing.T) {
	c := New()
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
		c.Rebase()
	}
	a, b := c.Now(), c.Now()
	if b.Before(a) {
		t.Errorf("the clock went backwards: %v then %v", a, b)
	}
}

func TestFunc(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.FixedZone("UTC+1", 3600))
	c := Func(func() time.Time { return at })
	c.Rebase() // does nothing to a Func clock
	if got, want := c.Now(), time.Date(2026, 12, 1, 8, 30, 0, 123456000, time.UTC); got != want {
		t.Errorf("Now = %v, want %v", got, want)
	}
	if got, want := c.Micros(), at.UnixMicro(); got != want {
		t.Errorf("Micros = %d, want %d", got, want)
	}
}

func TestMonoNeverGoesBack(t *testing.T) {
	prev := Mono()
	for range 1000 {
		now := Mono()
		if now < prev {
			t.Fatalf("Mono went back from %d to %d", prev, now)
		}
		prev = now
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour:                  "168h",
		90 * time.Minute:                 "1h30m",
		90 * time.Second:                 "1m30s",
		time.Hour + 30*time.Second:       "1h0m30s",
		10 * time.Second:                 "10s",
		0:                                "0s",
		1500 * time.Millisecond:          "1.5s",
		2*time.Hour + 3*time.Millisecond: "2h0m0.003s",
	} {
		got := ShortDuration(d)
		if got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, d)
		}
	}
}
