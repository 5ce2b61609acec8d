package redistest

import (
	"os"
	"path/filepath"
	"testing"
)

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
