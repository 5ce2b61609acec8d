// Package needs decides what a test does when something it needs from the
// machine (a server's binaries, a browser, a tool) is missing or fails to
// start: it is skipped with a message that says how to install it, except
// under CI=true, where it fails, so that a test never passes in CI by not
// running.
package needs

import (
	"fmt"
	"os"
	"testing"
)

// Verdict says what becomes of a test of who (such as "pgtest") when what
// it needs is missing (skip says why) or failed to start (err), under CI
// if ci: it fails if fatal, is skipped with msg otherwise, and goes on if
// msg is empty. A failure to start is always fatal: the machine has what
// the test needs, and it does not work.
func Verdict(who, skip string, err error, ci bool) (fatal bool, msg string) {
	switch {
	case err != nil:
		return true, fmt.Sprintf("%s: %v", who, err)
	case skip != "" && ci:
		return true, fmt.Sprintf("%s: %s (CI=true: these tests must run)", who, skip)
	case skip != "":
		return false, who + ": " + skip
	}
	return false, ""
}

// Check applies [Verdict] to tb, with CI from the environment.
func Check(tb testing.TB, who, skip string, err error) {
	tb.Helper()
	switch fatal, msg := Verdict(who, skip, err, os.Getenv("CI") == "true"); {
	case fatal:
		tb.Fatal(msg)
	case msg != "":
		tb.Skip(msg)
	}
}
