package scanrules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/needs"
	"github.com/keyward/keyward/scanrules"
)

// gitleaksModule is the gitleaks that .ci/run installs.
const gitleaksModule = "github.com/zricethezav/gitleaks/v8@v8.30.1"

// gitleaksBinary returns the path of the gitleaks binary. Without one, the
// test skips, but under CI=true, where .ci/run has installed it, it fails.
func gitleaksBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("gitleaks")
	if err != nil {
		needs.Check(t, "scanrules", "gitleaks not installed; .ci/run installs it with go install "+gitleaksModule, nil)
	}
	return bin
}

// A reported finding is one of a gitleaks JSON report.
type reported struct {
	RuleID    string
	File      string
	StartLine int
	Secret    string
	Tags      []string
}

// runGitleaks scans dir with gitleaks dir and the configuration at config,
// and returns its report.
func runGitleaks(t *testing.T, bin, config, dir string, args ...string) []reported {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	report := filepath.Join(t.TempDir(), "report.json")
	args = append([]string{"dir", "--config", config, "--report-format", "json", "--report-path", report,
		"--exit-code", "0", "--no-banner", "--no-color", "--log-level", "warn"}, args...)
	args = append(args, dir)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir() // away from any .gitleaksignore
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gitleaks %s: %v (gitleaks dir needs v8.19 or later)\n%s", strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("gitleaks wrote no report: %v\n%s", err, out)
	}
	var found []reported
	if err := json.Unmarshal(b, &found); err != nil {
		t.Fatalf("gitleaks report: %v\n%s", err, b)
	}
	return found
}

// writeFixture writes files into a new directory, which it returns.
func writeFixture(t *testing.T, files []fixtureFile) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// findings returns the findings of report under the rules of format f,
// with their files relative to dir. It checks their tags on the way: the
// rule's three, then gitleaks' own, such as decoded:base64.
func findings(t *testing.T, f apikey.Format, report []reported, dir string) []finding {
	t.Helper()
	var out []finding
	for _, r := range report {
		var m apikey.Mode
		switch r.RuleID {
		case ruleName(f, apikey.Live, byGitleaks):
			m = apikey.Live
		case ruleName(f, apikey.Test, byGitleaks):
			m = apikey.Test
		default:
			continue
		}
		if want := []string{"keyward", "api-key", m.String()}; len(r.Tags) < 3 || !reflect.DeepEqual(r.Tags[:3], want) {
			t.Errorf("%s:%d: tags %q, want %q first", r.File, r.StartLine, r.Tags, want)
		}
		file := r.File
		if rel, err := filepath.Rel(dir, r.File); err == nil {
			file = filepath.ToSlash(rel)
		}
		out = append(out, finding{file, r.StartLine, r.RuleID, r.Secret})
	}
	return out
}

// TestGitleaksBinary runs gitleaks on the fixture with the published
// configuration, and with a checksummed format's, and checks that it
// reports exactly the expected keys, under the right rules, at the right
// lines: what the regexes find, what gitleaks finds by decoding on top,
// and nothing its default allowlist drops.
func TestGitleaksBinary(t *testing.T) {
	bin := gitleaksBinary(t)
	published, err := filepath.Abs(filepath.Join(publishedDir, "gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	onlyKeys := func(f apikey.Format) []string {
		return []string{"--enable-rule", ruleName(f, apikey.Live, byGitleaks), "--enable-rule", ruleName(f, apikey.Test, byGitleaks)}
	}
	files := plainFixture(t)
	dir := writeFixture(t, files)
	want := expected(apikey.Default, files, byGitleaks)

	t.Run("published rules only", func(t *testing.T) {
		report := runGitleaks(t, bin, published, dir, onlyKeys(apikey.Default)...)
		got := findings(t, apikey.Default, report, dir)
		if len(got) != len(report) {
			t.Errorf("%d findings of other rules: %v", len(report)-len(got), report)
		}
		compare(t, "gitleaks", got, want)
	})

	t.Run("published, with the default rules", func(t *testing.T) {
		report := runGitleaks(t, bin, published, dir)
		compare(t, "gitleaks", findings(t, apikey.Default, report, dir), want)
		// The default rules run too: Stripe's finds the sk_live_ key.
		if !slices.ContainsFunc(report, func(r reported) bool {
			return r.RuleID == "stripe-access-token" && strings.HasSuffix(r.File, "config.json") && r.StartLine == 3
		}) {
			t.Errorf("no stripe-access-token finding at config.json:3: [extend] useDefault took no effect\n%v", report)
		}
	})

	t.Run("taken in with [extend] path", func(t *testing.T) {
		config := filepath.Join(t.TempDir(), "team.toml")
		if err := os.WriteFile(config, fmt.Appendf(nil, "[extend]\npath = %q\n", published), 0o644); err != nil {
			t.Fatal(err)
		}
		report := runGitleaks(t, bin, config, dir, onlyKeys(apikey.Default)...)
		compare(t, "gitleaks", findings(t, apikey.Default, report, dir), want)
	})

	t.Run("checksummed format", func(t *testing.T) {
		f, files := checksumFixture(t)
		toml, err := scanrules.Gitleaks(f)
		if err != nil {
			t.Fatal(err)
		}
		config := filepath.Join(t.TempDir(), "gitleaks.toml")
		if err := os.WriteFile(config, toml, 0o644); err != nil {
			t.Fatal(err)
		}
		dir := writeFixture(t, files)
		report := runGitleaks(t, bin, config, dir, onlyKeys(f)...)
		compare(t, "gitleaks", findings(t, f, report, dir), expected(f, files, byGitleaks))
	})
}
