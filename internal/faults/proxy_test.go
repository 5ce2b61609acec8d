package faults

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echoServer is the upstream of the proxy's tests: it echoes what it reads
// and counts the bytes.
type echoServer struct {
	ln       net.Listener
	received atomic.Int64
}

func newEchoServer(t *testing.T, network string) *echoServer {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "echo.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					e.received.Add(int64(n))
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return e
}

func newProxy(t *testing.T, network, address string) *Proxy {
	t.Helper()
	p, err := NewProxy(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads as many bytes back, within wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	return readN(c, len(msg), wait)
}

// readN reads n bytes within wait.
func readN(c net.Conn, n int, wait time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// stalled reports whether a read on c times out: nothing arrives.
func stalled(t *testing.T, c net.Conn, wait time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	var b [1]byte
	n, err := c.Read(b[:])
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v; want nothing until the deadline", n, err)
	}
}

func TestPass(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			e := newEchoServer(t, network)
			p := newProxy(t, network, e.ln.Addr().String())
			c := dial(t, p)
			for _, msg := range []string{"hello", string(bytes.Repeat([]byte("x"), 100_000))} {
				if got, err := roundTrip(c, msg, 5*time.Second); err != nil || got != msg {
					t.Fatalf("round trip of %d bytes: %d bytes, %v", len(msg), len(got), err)
				}
			}
			if s := p.Stats(); s.Accepted != 1 || s.Open != 1 || s.Reset != 0 {
				t.Errorf("Stats = %+v, want one accepted and open", s)
			}
		})
	}
}

// Latency delays each chunk, each way: a round trip takes at least twice
// the delay.
func TestLatency(t *testing.T) {
	e := newEchoServer(t, "unix")
	p := newProxy(t, "unix", e.ln.Addr().String())
	c := dial(t, p)
	const delay = 100 * time.Millisecond
	p.Set(Latency, delay)
	start := time.Now()
	if got, err := roundTrip(c, "ping", 10*time.Second); err != nil || got != "ping" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if took := time.Since(start); took < 2*delay {
		t.Errorf("a round trip took %v, want at least 2 × %v", took, delay)
	}
	p.Set(Pass, 0)
	if got, err := roundTrip(c, "pong", 5*time.Second); err != nil || got != "pong" {
		t.Fatalf("round trip after the latency: %q, %v", got, err)
	}
}

// A blackhole stalls connections, old and new, without forwarding a byte,
// and what they sent arrives once it ends.
func TestBlackhole(t *testing.T) {
	e := newEchoServer(t, "unix")
	p := newProxy(t, "unix", e.ln.Addr().String())
	old := dial(t, p)
	if got, err := roundTrip(old, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("round trip before the blackhole: %q, %v", got, err)
	}
	before := e.received.Load()

	p.Set(Blackhole, 0)
	if _, err := old.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	stalled(t, old, 300*time.Millisecond)
	fresh := dial(t, p) // accepted: the client cannot tell
	if _, err := fresh.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	stalled(t, fresh, 300*time.Millisecond)
	if got := e.received.Load(); got != before {
		t.Fatalf("the server received %d bytes during the blackhole", got-before)
	}
	if s := p.Stats(); s.Accepted != 2 || s.Reset != 0 {
		t.Errorf("Stats = %+v, want 2 accepted, none reset", s)
	}

	p.Set(Pass, 0)
	if got, err := readN(old, 1, 5*time.Second); err != nil || got != "b" {
		t.Errorf("after the blackhole, the old connection read %q, %v; want b", got, err)
	}
	if got, err := readN(fresh, 1, 5*time.Second); err != nil || got != "c" {
		t.Errorf("after the blackhole, the new connection read %q, %v; want c", got, err)
	}
}

// isReset reports whether err is a TCP reset.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// Reset resets open connections and every new one, until the mode changes.
func TestReset(t *testing.T) {
	e := newEchoServer(t, "tcp")
	p := newProxy(t, "tcp", e.ln.Addr().String())
	old := dial(t, p)
	if got, err := roundTrip(old, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("round trip before the reset: %q, %v", got, err)
	}

	p.Set(Reset, 0)
	if _, err := readN(old, 1, 5*time.Second); !isReset(err) {
		t.Errorf("read on an open connection: %v, want a reset", err)
	}
	if s := p.Stats(); s.Open != 0 {
		// Set returns after the reset; forget runs in the link's goroutine.
		deadline := time.Now().Add(5 * time.Second)
		for p.Stats().Open != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if s := p.Stats(); s.Open != 0 {
			t.Errorf("Stats = %+v after the reset, want none open", s)
		}
	}
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err == nil {
		defer c.Close()
		_, err = readN(c, 1, 5*time.Second)
	}
	if !isReset(err) {
		t.Errorf("a new connection: %v, want a reset", err)
	}

	p.Set(Pass, 0)
	if got, err := roundTrip(dial(t, p), "b", 5*time.Second); err != nil || got != "b" {
		t.Fatalf("round trip after the reset: %q, %v", got, err)
	}
	if s := p.Stats(); s.Reset != 2 || s.Accepted != 3 {
		t.Errorf("Stats = %+v, want 3 accepted, 2 reset", s)
	}
}

// A server that cannot be reached closes the client's connection, as a
// stopped server would.
func TestServerDown(t *testing.T) {
	p := newProxy(t, "unix", filepath.Join(t.TempDir(), "none.sock"))
	c := dial(t, p)
	if _, err := readN(c, 1, 5*time.Second); err != io.EOF {
		t.Errorf("read = %v, want the end of the stream", err)
	}
}

// Close ends stalled connections and returns; the port is then closed.
func TestClose(t *testing.T) {
	e := newEchoServer(t, "unix")
	p, err := NewProxy("unix", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if got, err := roundTrip(c, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	p.Set(Blackhole, 0)
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s with a stalled connection")
	}
	if _, err := readN(c, 1, 5*time.Second); !isReset(err) {
		t.Errorf("read after Close: %v, want a reset", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts connections after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
