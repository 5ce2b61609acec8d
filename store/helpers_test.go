package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/store"
)

func TestTime(t *testing.T) {
	in := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("X", -7*3600))
	got := store.Time(in)
	want := time.Date(2026, 5, 1, 19, 0, 0, 123456000, time.UTC)
	if got != want {
		t.Errorf("Time = %v (%v), want %v", got, got.Location(), want)
	}
	if !store.Time(time.Time{}).IsZero() {
		t.Error("the zero time did not stay zero")
	}
	if withMono := time.Now(); store.Time(withMono) != store.Time(withMono.Round(0)) {
		t.Error("the monotonic reading survived")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	rec := apikey.Record{ID: uuid.New(), CreatedAt: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)}
	c := store.CursorAfter(rec)
	back, err := store.ParseCursor(c.String())
	if err != nil {
		t.Fatal(err)
	}
	if back != c || back.CreatedAt != store.Time(rec.CreatedAt) {
		t.Errorf("round trip = %+v, want %+v", back, c)
	}
	for _, bad := range []string{"", "x", c.String() + "A", c.String()[:len(c.String())-1], "!" + c.String()[1:],
		store.Cursor{CreatedAt: rec.CreatedAt}.String()} {
		if _, err := store.ParseCursor(bad); !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("ParseCursor(%q) = %v, want ErrInvalidCursor", bad, err)
		}
	}
}

func TestListOptionsCheck(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name      string
		opts      store.ListOptions
		wantLimit int
		wantErr   bool
	}{
		{"defaults", store.ListOptions{}, store.DefaultLimit, false},
		{"limit kept", store.ListOptions{Limit: 5}, 5, false},
		{"limit capped", store.ListOptions{Limit: store.MaxLimit + 1}, store.MaxLimit, false},
		{"negative limit", store.ListOptions{Limit: -1}, 0, true},
		{"bad mode", store.ListOptions{Mode: 3}, 0, true},
		{"bad status", store.ListOptions{Status: 4}, 0, true},
		{"active without now", store.ListOptions{Status: apikey.Active}, 0, true},
		{"revoked without now", store.ListOptions{Status: apikey.Revoked}, store.DefaultLimit, false},
		{"active with now", store.ListOptions{Status: apikey.Active, Now: now}, store.DefaultLimit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.Check()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got.Limit != tc.wantLimit {
				t.Errorf("Limit = %d, want %d", got.Limit, tc.wantLimit)
			}
		})
	}
}
