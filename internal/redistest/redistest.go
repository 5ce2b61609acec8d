// Package redistest gives tests a real Redis server: a throwaway
// redis-server that it starts in a temporary directory, with no
// persistence, and stops when the tests end.
//
// A package whose tests share one server runs them through [Main]:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// and each test asks for what it needs:
//
//	srv := redistest.Shared(t)    // the server shared by the test binary
//	client := srv.Client(t)      // a client of its own, closed after the test
//	prefix := redistest.Prefix(t) // key names no other test uses
//
// A test that stops the server, to see what an outage does, starts one of
// its own with [NewServer], which it may stop, start, pause and resume.
// [NewClusterNode] starts a one-node Redis Cluster, which checks, as a
// cluster of many nodes would, that the keys of each command or script
// share a hash slot.
//
// # The throwaway server
//
// redis-server is looked up on PATH, then in /usr/bin, /usr/sbin and
// /usr/local/bin (Debian's package redis-server installs /usr/bin/redis-server).
// The server listens on a Unix socket in its temporary directory and on a
// free TCP port of 127.0.0.1, keeps nothing on disk (save "", appendonly
// no), and is ready when it answers PING. Started as a child of the test
// binary, it is sent SIGTERM if the binary dies without stopping it (on
// Linux).
//
// If no redis-server is found, tests that need it are skipped with a
// message saying so, except when the environment variable CI is "true":
// then they fail, so that CI never passes without having run them. A
// server that is found but fails to start always fails the tests.
package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/needs"
)

var shared struct {
	inMain bool
	once   sync.Once
	srv    *Server
	skip   string // why there is no server, if there is none
	err    error  // why the server did not start
}

// Main runs the tests of a package (m.Run), then stops the shared server
// if one was started, and exits with the tests' exit code. Call it from
// TestMain. The server is started on first use, so a run whose selected
// tests need no Redis starts none.
func Main(m *testing.M) {
	shared.inMain = true
	code := m.Run()
	if s := shared.srv; s != nil {
		if err := s.remove(); err != nil {
			fmt.Fprintf(os.Stderr, "redistest: stopping the shared redis-server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Shared returns the server shared by every test of the binary, starting
// it on first use; [Main] stops it. Tests must not stop or pause it
// (its Stop, Start, Pause and Resume return an error), and should keep to
// key names of their own ([Prefix]) rather than flush it. If no
// redis-server is available it skips tb, or fails it when CI is "true";
// if the server fails to start, it fails tb.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if !shared.inMain {
		tb.Fatal("redistest: call redistest.Main(m) from TestMain, so that the shared server is stopped after the tests")
	}
	shared.once.Do(func() {
		bin, err := findBinary()
		if err != nil {
			shared.skip = skipMessage(err)
			return
		}
		p, err := startProc(bin, false)
		if err != nil {
			shared.err = fmt.Errorf("starting a throwaway redis-server (%s): %w", bin, err)
			return
		}
		shared.srv = &Server{p: p, running: true, shared: true}
	})
	check(tb, shared.skip, shared.err)
	return shared.srv
}

// Prefix returns a key prefix that no other test uses, "kwtest:<random>:",
// so that tests sharing a server keep out of each other's keys.
func Prefix(tb testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "kwtest:" + hex.EncodeToString(b[:]) + ":"
}

// check skips or fails tb when there is no server (skip says why) or it
// failed to start (err).
func check(tb testing.TB, skip string, err error) {
	tb.Helper()
	needs.Check(tb, "redistest", skip, err)
}

func skipMessage(err error) string {
	return fmt.Sprintf("no Redis for the tests: %v; install it (Debian: apt-get install redis-server)", err)
}

// binaryDirs are searched for redis-server after PATH.
var binaryDirs = []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"}

// findBinary returns the path of redis-server: on PATH, or in binaryDirs.
func findBinary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, dir := range binaryDirs {
		p := filepath.Join(dir, "redis-server")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("redis-server not found on PATH nor in " + fmt.Sprint(binaryDirs))
}
