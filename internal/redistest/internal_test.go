package redistest

import (
	"errors"
	"os"
	"path/filepath"
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
		{"server available", "", nil, false, false, ""},
		{"server available in CI", "", nil, true, false, ""},
		{"no redis-server", "not found", nil, false, false, "not found"},
		{"no redis-server in CI", "not found", nil, true, true, "CI=true"},
		{"start failed", "", errors.New("boom"), false, true, "boom"},
		{"start failed in CI", "", errors.New("boom"), true, true, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fatal, msg := verdict(tc.skip, tc.err, tc.ci)
			if fatal != tc.wantFatal {
				t.Errorf("fatal = %v, want %v", fatal, tc.wantFatal)
			}
			if tc.wantMsg == "" && msg != "" || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("msg = %q, want it to contain %q", msg, tc.wantMsg)
			}
		})
	}
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	defer func(old []string) { binaryDirs = old }(binaryDirs)
	binaryDirs = []string{filepath.Join(dir, "missing"), dir}
	t.Setenv("PATH", t.TempDir()) // no redis-server on PATH

	if _, err := findBinary(); err == nil {
		t.Fatal("findBinary found a redis-server in empty directories")
	}
	want := filepath.Join(dir, "redis-server")
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findBinary(); err != nil || got != want {
		t.Errorf("findBinary() = %q, %v; want %q", got, err, want)
	}
}
