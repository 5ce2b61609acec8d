package heapcheck_test

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/heapcheck"
)

func TestWithin(t *testing.T) {
	raw := strings.Repeat("k", 40)
	for _, tc := range []struct {
		name string
		s    string
		want bool
	}{
		{"a slice at the start", raw[:14], true},
		{"a slice at the end", raw[39:], true},
		{"a copy", strings.Clone(raw[:14]), false},
		{"empty", raw[:0], false},
		{"another string", "ck_live_abc123", false},
	} {
		if got := heapcheck.Within(tc.s, raw); got != tc.want {
			t.Errorf("%s: Within = %v, want %v", tc.name, got, tc.want)
		}
	}
}
