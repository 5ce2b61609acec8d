package scanrules_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scanrules"
)

var update = flag.Bool("update", false, "rewrite the generated files of docs/secret-scanning")

// publishedDir holds the rules the repository publishes, for
// apikey.Default.
var publishedDir = filepath.Join("..", "docs", "secret-scanning")

// TestPublished checks that the published files are what the package
// writes for apikey.Default today, byte for byte. With -update, it
// rewrites them first.
func TestPublished(t *testing.T) {
	for _, tc := range []struct {
		file  string
		write func(...apikey.Format) ([]byte, error)
	}{
		{"gitleaks.toml", scanrules.Gitleaks},
		{"github-custom-pattern.md", scanrules.GitHubMarkdown},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := tc.write(apikey.Default)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(publishedDir, tc.file)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is not what scanrules writes for apikey.Default (%s); "+
					"to publish the new rules: go test ./scanrules -run TestPublished -update", path, firstDiff(got, want))
			}
		})
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ": " + strconv.Quote(gl) + ", want " + strconv.Quote(wl)
		}
	}
	return "same lines, different bytes"
}

// TestPublishedFilesHoldNoKey runs the published gitleaks rules over the
// published directory: its documents show no key that they would report,
// so that a repository scanning itself with them raises no alert. The
// GitHub test strings are fake keys of too little entropy.
func TestPublishedFilesHoldNoKey(t *testing.T) {
	toml, err := os.ReadFile(filepath.Join(publishedDir, "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := parseGitleaks(t, toml)
	entries, err := os.ReadDir(publishedDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(publishedDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, f := range scanGitleaks(rules, e.Name(), string(b)) {
			t.Errorf("the published rules report %v", f)
		}
	}
	if n < 3 {
		t.Errorf("%d files in %s, want gitleaks.toml, github-custom-pattern.md and README.md", n, publishedDir)
	}
}

// TestPublishedReadmeLinks checks that the relative links of the published
// README lead to files.
func TestPublishedReadmeLinks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(publishedDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\]\(([^)\s#]+)[^)]*\)`).FindAllStringSubmatch(string(b), -1)
	n := 0
	for _, l := range links {
		if strings.Contains(l[1], "://") {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(publishedDir, filepath.FromSlash(l[1]))); err != nil {
			t.Errorf("link %q: %v", l[1], err)
		}
	}
	if n == 0 {
		t.Error("no relative links found")
	}
}
