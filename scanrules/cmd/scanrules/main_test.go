package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWritesThePublishedFiles runs the command with its defaults: it
// writes the files the repository publishes, byte for byte.
func TestWritesThePublishedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{gitleaksFile, githubFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "secret-scanning", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the published one", name)
		}
	}
}

func TestProductAndChecksum(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-product", "acme", "-checksum", "-out", dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	toml, err := os.ReadFile(filepath.Join(dir, gitleaksFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id = "acme-live-api-key"`, `\b(acme_test_[0-9A-Za-z]{32}(?:[0-9A-Za-z]{6})?)(?:\b|_)`} {
		if !strings.Contains(string(toml), want) {
			t.Errorf("%s lacks %s", gitleaksFile, want)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, githubFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "\n## acme live-mode API key\n") {
		t.Errorf("%s has no section for acme's live keys", githubFile)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-product", "Acme"},
		{"-product", ""},
		{"-nosuchflag"},
		{"-out", t.TempDir(), "extra"},
		{"-out", filepath.Join(t.TempDir(), "missing", "dir")},
	} {
		var stderr bytes.Buffer
		if err := run(args, &stderr); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}
