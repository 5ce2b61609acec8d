package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/needs"
)

// A Server is a throwaway PostgreSQL cluster that one test owns, and may
// stop and start again to see what an outage does: a real server going
// away, its sessions ended, its socket gone, then coming back on the same
// data. Create it with [NewServer].
//
// Unlike [DSN], a Server is never the server named by KEYWARD_TEST_DSN: a
// test that stops a server needs one of its own, so NewServer needs the
// PostgreSQL binaries even when that variable is set.
//
// A Server is safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	c       *cluster
	running bool
	removed bool
}

// NewServer creates a throwaway cluster in a temporary directory and starts
// it, for tb alone; it is stopped and removed when tb ends. If no
// PostgreSQL is found it skips tb, or fails it when CI is "true", as [DSN]
// does; if the server fails to start, it fails tb. It takes a second or
// two (initdb).
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	var (
		skip string
		err  error
		c    *cluster
	)
	bin, ferr := findBinaries()
	if ferr != nil {
		skip = fmt.Sprintf("no PostgreSQL for the tests: %v; install PostgreSQL (Debian: apt-get install postgresql)", ferr)
	} else if c, err = startCluster(bin); err != nil {
		err = fmt.Errorf("starting a throwaway PostgreSQL cluster with %s: %w", bin, err)
	}
	needs.Check(tb, "pgtest", skip, err)
	s := &Server{c: c, running: true}
	tb.Cleanup(func() {
		if err := s.remove(); err != nil {
			tb.Errorf("pgtest: stopping the test's PostgreSQL server: %v", err)
		}
	})
	return s
}

// DSN returns the server's connection string (key=value pairs: host is
// the socket's directory), valid across stops and starts.
func (s *Server) DSN() string { return s.c.dsn }

// Socket returns the path of the server's Unix socket, for a proxy to
// dial ("unix" network). It exists only while the server runs.
func (s *Server) Socket() string { return s.c.socket() }

// Stop shuts the server down as an operator would (a "fast" shutdown:
// sessions in progress are ended, their clients told so) and waits for it
// to exit. Its data is kept for [Server.Start]. Stopping a stopped server
// does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	return s.c.shutdown()
}

// Start starts a stopped server again, on the same data and socket, and
// waits until it accepts connections. Starting a running server does
// nothing.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.removed:
		return errors.New("pgtest: the server was removed when its test ended")
	case s.running:
		return nil
	}
	if err := s.c.start(); err != nil {
		return err
	}
	s.running = true
	return nil
}

// remove stops the server if it runs and deletes its directory.
func (s *Server) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil
	}
	s.removed = true
	defer os.RemoveAll(s.c.dir)
	if !s.running {
		return nil
	}
	s.running = false
	return s.c.shutdown()
}
