package redistest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A Server is a throwaway redis-server. One made by [NewServer] belongs to
// one test, which may stop and start it again ([Server.Stop],
// [Server.Start]) to see what an outage does, or pause it
// ([Server.Pause]) to see what a server that no longer answers does. The
// one of [Shared] is shared by the test binary and refuses all four.
//
// A Server is safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	p       *proc
	running bool // started and not stopped
	paused  bool
	removed bool
	shared  bool
}

// errShared is returned by what the shared server refuses.
var errShared = errors.New("redistest: the shared server cannot be stopped or paused; use NewServer")

// NewServer starts a throwaway redis-server for tb alone; it is stopped
// and its directory removed when tb ends. If no redis-server is found it
// skips tb, or fails it when CI is "true", as [Shared] does; if the server
// fails to start, it fails tb. It takes a few milliseconds.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	return newServer(tb, false)
}

// NewClusterNode starts a throwaway redis-server in cluster mode for tb
// alone, serving all 16384 hash slots: a one-node Redis Cluster, for a
// [redis.ClusterClient] given [Server.Addr]. It refuses, as any cluster
// does, a command or script whose keys are in different slots (CROSSSLOT).
// It keeps its slots across [Server.Stop] and [Server.Start], and is
// otherwise as [NewServer]'s.
func NewClusterNode(tb testing.TB) *Server {
	tb.Helper()
	return newServer(tb, true)
}

func newServer(tb testing.TB, cluster bool) *Server {
	tb.Helper()
	var (
		skip string
		err  error
		p    *proc
	)
	bin, ferr := findBinary()
	if ferr != nil {
		skip = skipMessage(ferr)
	} else if p, err = startProc(bin, cluster); err != nil {
		err = fmt.Errorf("starting a throwaway redis-server (%s): %w", bin, err)
	}
	check(tb, skip, err)
	s := &Server{p: p, running: true}
	tb.Cleanup(func() {
		if err := s.remove(); err != nil {
			tb.Errorf("redistest: stopping the test's redis-server: %v", err)
		}
	})
	return s
}

// Addr returns the server's TCP address, "127.0.0.1:<port>", the same
// across stops and starts.
func (s *Server) Addr() string { return s.p.addr() }

// Socket returns the path of the server's Unix socket, the same across
// stops and starts. It exists only while the server runs.
func (s *Server) Socket() string { return s.p.socket() }

// Options returns client options for the server's Unix socket, with go-redis's
// defaults otherwise. Each call returns new options, for the caller to
// change.
func (s *Server) Options() *redis.Options {
	return &redis.Options{Network: "unix", Addr: s.Socket()}
}

// TCPOptions returns client options for the server's TCP address, with
// go-redis's defaults otherwise, as a client on another machine would
// connect.
func (s *Server) TCPOptions() *redis.Options {
	return &redis.Options{Network: "tcp", Addr: s.Addr()}
}

// Client returns a new client of the server, with a connection pool of its
// own, closed when tb ends: a second application instance, in effect.
// opts, if not nil, are used instead of [Server.Options] (their Network
// and Addr are set to the server's Unix socket if empty).
func (s *Server) Client(tb testing.TB, opts *redis.Options) *redis.Client {
	tb.Helper()
	if opts == nil {
		opts = s.Options()
	} else if opts.Addr == "" {
		o := *opts
		o.Network, o.Addr = "unix", s.Socket()
		opts = &o
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// Stop shuts the server down (SIGTERM, as an operator would) and waits
// for it to exit; its connections are closed, its socket removed, and its
// data, kept nowhere, is lost. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared {
		return errShared
	}
	if !s.running {
		return nil
	}
	s.running, s.paused = false, false
	return s.p.shutdown()
}

// Start starts a stopped server again, empty, on the same port and
// socket, and waits until it answers PING. Starting a running server does
// nothing.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shared:
		return errShared
	case s.removed:
		return errors.New("redistest: the server was removed when its test ended")
	case s.running:
		return nil
	}
	if err := s.p.start(); err != nil {
		return err
	}
	s.running = true
	return nil
}

// Pause freezes the server (SIGSTOP): it keeps its connections and
// accepts new ones, but answers nothing, as a server stuck or cut off by
// the network would, until [Server.Resume]. Pausing a paused or stopped
// server does nothing. Not supported on Windows.
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared {
		return errShared
	}
	if !s.running || s.paused {
		return nil
	}
	if err := s.p.signal(sigStop); err != nil {
		return err
	}
	s.paused = true
	return nil
}

// Resume lets a paused server go on (SIGCONT): it answers what it was
// sent meanwhile. Resuming a server that is not paused does nothing.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared {
		return errShared
	}
	if !s.paused {
		return nil
	}
	if err := s.p.signal(sigCont); err != nil {
		return err
	}
	s.paused = false
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
	defer os.RemoveAll(s.p.dir)
	if !s.running {
		return nil
	}
	if s.paused {
		s.p.signal(sigCont) // a stopped process does not handle SIGTERM
	}
	s.running, s.paused = false, false
	return s.p.shutdown()
}
