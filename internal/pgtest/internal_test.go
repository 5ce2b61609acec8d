package pgtest

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
		{"no PostgreSQL", "not found", nil, false, false, "not found"},
		{"no PostgreSQL in CI", "not found", nil, true, true, "CI=true"},
		{"start failed", "", errors.New("initdb: boom"), false, true, "boom"},
		{"start failed in CI", "", errors.New("initdb: boom"), true, true, "boom"},
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

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string, names ...string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(filepath.Join(root, "9.6", "bin"), "initdb", "postgres")
	mk(filepath.Join(root, "15", "bin"), "initdb", "postgres")
	mk(filepath.Join(root, "17", "bin"), "initdb") // incomplete: skipped
	defer func(old string) { versionedBinaries = old }(versionedBinaries)
	versionedBinaries = filepath.Join(root, "*", "bin")
	t.Setenv("PATH", t.TempDir()) // no initdb on PATH

	got, err := findBinaries()
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Errorf("findBinaries() = %q, %v; want the newest complete version, %q", got, err, want)
	}

	onPath := filepath.Join(root, "path")
	mk(onPath, "initdb", "postgres")
	t.Setenv("PATH", onPath)
	if got, err := findBinaries(); err != nil || got != onPath {
		t.Errorf("findBinaries() = %q, %v; want PATH first, %q", got, err, onPath)
	}

	versionedBinaries = filepath.Join(root, "none", "*", "bin")
	t.Setenv("PATH", t.TempDir())
	if _, err := findBinaries(); err == nil {
		t.Error("findBinaries() found binaries where there are none")
	}
}
