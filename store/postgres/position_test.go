package postgres

import (
	"errors"
	"slices"
	"testing"

	"github.com/keyward/keyward/store"
)

// Snapshots in PostgreSQL's text form read back as they were written, and
// their positions decode to them.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, text := range []string{
		"1:1:",
		"748:748:",
		"740:750:740",
		"740:750:740,741,749",
		"18446744073709551614:18446744073709551615:18446744073709551614",
	} {
		s, err := parseSnapshot(text)
		if err != nil {
			t.Fatalf("parseSnapshot(%q): %v", text, err)
		}
		if got := s.String(); got != text {
			t.Errorf("parseSnapshot(%q).String() = %q", text, got)
		}
		back, err := parsePosition(s.position())
		if err != nil || back.xmin != s.xmin || back.xmax != s.xmax || !slices.Equal(back.xip, s.xip) {
			t.Errorf("the position of %q decodes to %v, %v", text, back, err)
		}
	}
	for _, text := range []string{
		"", "1:1", "1:1:1:", "0:1:", "2:1:", "1:5:5", "1:5:0", "1:5:3,2", "1:5:3,3", "1:5:,", "a:5:", "1:5: 3",
		"1:18446744073709551616:",
	} {
		if s, err := parseSnapshot(text); err == nil {
			t.Errorf("parseSnapshot(%q) = %v, want an error", text, s)
		}
	}
}

// Whatever it is given, parsePosition returns a valid snapshot, whose
// position decodes to it again, or ErrInvalidCursor; it never panics.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []snapshot{{xmin: 1, xmax: 1}, {xmin: 740, xmax: 750, xip: []uint64{740, 749}}} {
		f.Add(s.position())
	}
	f.Add("cAAYHfvZ3P0A")
	f.Add("x")
	f.Fuzz(func(t *testing.T, pos string) {
		s, err := parsePosition(pos)
		if err != nil {
			if !errors.Is(err, store.ErrInvalidCursor) {
				t.Fatalf("parsePosition(%q) = %v, want ErrInvalidCursor", pos, err)
			}
			return
		}
		if !s.valid() {
			t.Fatalf("parsePosition(%q) = %v, not a valid snapshot", pos, s)
		}
		back, err := parsePosition(s.position())
		if err != nil || back.xmin != s.xmin || back.xmax != s.xmax || !slices.Equal(back.xip, s.xip) {
			t.Fatalf("the position of %v decodes to %v, %v", s, back, err)
		}
		if _, err := parseSnapshot(s.String()); err != nil {
			t.Fatalf("the text of %v does not read back: %v", s, err)
		}
	})
}
