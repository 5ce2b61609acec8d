package pgtest

import (
	"os"
	"path/filepath"
	"testing"
)

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
