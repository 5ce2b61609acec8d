// Command scanrules writes the secret scanning rules for a product's API
// keys into a directory: gitleaks.toml, a gitleaks configuration, and
// github-custom-pattern.md, GitHub custom patterns to paste into GitHub's
// form (see package [github.com/keyward/keyward/scanrules]).
//
//	go run github.com/keyward/keyward/scanrules/cmd/scanrules -product acme -out .
//
// Flags:
//
//	-product  the product prefix of the keys (default "ck")
//	-checksum the keys are checksummed (apikey.WithChecksum)
//	-out      the directory to write into (default ".")
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scanrules"
)

// The files the command writes, as published in docs/secret-scanning.
const (
	gitleaksFile = "gitleaks.toml"
	githubFile   = "github-custom-pattern.md"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "scanrules:", err)
		}
		os.Exit(2)
	}
}

// run writes the files for the flags in args.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("scanrules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	product := fs.String("product", apikey.DefaultProduct, "the product prefix of the keys")
	checksum := fs.Bool("checksum", false, "the keys are checksummed (apikey.WithChecksum)")
	out := fs.String("out", ".", "the directory to write into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var opts []apikey.FormatOption
	if *checksum {
		opts = append(opts, apikey.WithChecksum())
	}
	f, err := apikey.NewFormat(*product, opts...)
	if err != nil {
		return err
	}
	gitleaks, err := scanrules.Gitleaks(f)
	if err != nil {
		return err
	}
	github, err := scanrules.GitHubMarkdown(f)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, gitleaksFile), gitleaks, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, githubFile), github, 0o644)
}
