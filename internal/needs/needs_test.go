package needs

import (
	"errors"
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		name      string
		skip      string
		err       error
		ci        bool
		wantFatal bool
		wantMsg   string // a substring; "" for none
	}{
		{"available", "", nil, false, false, ""},
		{"available in CI", "", nil, true, false, ""},
		{"missing", "not found", nil, false, false, "x: not found"},
		{"missing in CI", "not found", nil, true, true, "CI=true"},
		{"start failed", "", errors.New("boom"), false, true, "x: boom"},
		{"start failed in CI", "", errors.New("boom"), true, true, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fatal, msg := Verdict("x", tc.skip, tc.err, tc.ci)
			if fatal != tc.wantFatal {
				t.Errorf("fatal = %v, want %v", fatal, tc.wantFatal)
			}
			if tc.wantMsg == "" && msg != "" || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("msg = %q, want it to contain %q", msg, tc.wantMsg)
			}
		})
	}
}
