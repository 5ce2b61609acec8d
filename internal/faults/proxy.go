// Package faults injects network faults between a client and a server, for
// the fault suite: a TCP proxy on the loopback interface that forwards to
// the server (over TCP or a Unix socket) and, switched at run time, adds
// latency, blackholes the link, or resets every connection.
//
// The package's tests are the fault suite of the Reliability issue: they
// drive the middleware over the PostgreSQL store, with and without the
// verification cache, through each fault (the key table locked, latency
// above the lookup deadline, a blackholed link, reset connections, the
// server stopped and started), and check that a valid key is never
// refused (401), that a revoked or unknown key is never let through, that
// every 503 comes within the lookup deadline, that service comes back
// within seconds of the fault's end, and that no last-used time is lost.
// Run them with
//
//	go test ./internal/faults -run TestFaults -v
//
// to see the table they print.
package faults

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A Mode is what a [Proxy] does with the bytes it reads.
type Mode int

const (
	// Pass forwards every byte at once.
	Pass Mode = iota
	// Latency forwards every chunk read, in each direction, after the
	// proxy's delay.
	Latency
	// Blackhole accepts connections and reads, but forwards nothing and
	// answers nothing: every connection, old or new, stalls, as behind a
	// dead link that drops packets. What was read is kept, and forwarded
	// when the mode changes back, as TCP would retransmit it.
	Blackhole
	// Reset closes every connection with a TCP reset (RST), and resets
	// every new one as soon as it is accepted.
	Reset
)

// String returns the mode's name, such as "blackhole".
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Latency:
		return "latency"
	case Blackhole:
		return "blackhole"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// dialTimeout bounds the proxy's connection to the server.
const dialTimeout = 5 * time.Second

// A Proxy listens on a loopback TCP port and forwards each connection to a
// server, through the fault of its current mode. Create it with
// [NewProxy]; change its mode with [Proxy.Set] at any time; stop it with
// [Proxy.Close].
//
// A Proxy is safe for concurrent use.
type Proxy struct {
	ln               net.Listener
	network, address string // the server's

	mu      sync.Mutex
	mode    Mode
	delay   time.Duration
	changed chan struct{} // closed, and replaced, at every change of mode
	links   map[*link]struct{}
	closed  bool

	wg       sync.WaitGroup // the accept loop and every link's goroutines
	accepted atomic.Int64
	resets   atomic.Int64
}

// A link is one proxied connection: the client's and the server's ends.
type link struct {
	client net.Conn
	server net.Conn // nil until dialled
	done   chan struct{}
	once   sync.Once
}

// NewProxy listens on 127.0.0.1 (a free port) and forwards to the server at
// address on network ("tcp" or "unix"), in mode [Pass].
func NewProxy(network, address string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:      ln,
		network: network,
		address: address,
		changed: make(chan struct{}),
		links:   make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients connect to, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Host returns the host part of [Proxy.Addr], "127.0.0.1", for
// connection strings.
func (p *Proxy) Host() string { return p.ln.Addr().(*net.TCPAddr).IP.String() }

// Port returns the port part of [Proxy.Addr], for connection strings.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Set switches the proxy to mode m; delay is the added latency per chunk
// in mode [Latency], and ignored otherwise. Connections stalled by a
// blackhole resume (or are reset) at once. Switching to [Reset] resets
// every open connection before Set returns.
func (p *Proxy) Set(m Mode, delay time.Duration) {
	p.mu.Lock()
	p.mode, p.delay = m, delay
	close(p.changed)
	p.changed = make(chan struct{})
	var reset []*link
	if m == Reset {
		for l := range p.links {
			reset = append(reset, l)
		}
	}
	p.mu.Unlock()
	for _, l := range reset {
		p.reset(l)
	}
}

// Mode returns the proxy's mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Stats counts the connections the proxy accepted, those it reset, and
// those open now.
type Stats struct {
	Accepted, Reset, Open int
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.links)
	p.mu.Unlock()
	return Stats{Accepted: int(p.accepted.Load()), Reset: int(p.resets.Load()), Open: open}
}

// Close stops listening, resets every open connection, and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		p.reset(l)
	}
	p.wg.Wait()
	return err
}

// accept runs until the listener is closed.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		p.accepted.Add(1)
		l := &link{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed || p.mode == Reset {
			p.mu.Unlock()
			p.resets.Add(1)
			rst(c)
			continue
		}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// serve dials the server for l and pumps bytes both ways until either end
// closes or l is reset. If the server cannot be reached, the client's
// connection is closed, as a dead server's would be.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer p.forget(l)
	server, err := net.DialTimeout(p.network, p.address, dialTimeout)
	if err != nil {
		l.close()
		return
	}
	p.mu.Lock()
	select {
	case <-l.done: // reset while dialling
		p.mu.Unlock()
		server.Close()
		return
	default:
	}
	l.server = server
	p.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, l.client, server) }()
	go func() { defer pumps.Done(); p.pump(l, server, l.client) }()
	pumps.Wait()
}

// pump copies src to dst through the proxy's fault until either fails or
// l ends, then ends l.
func (p *Proxy) pump(l *link, src io.Reader, dst io.Writer) {
	defer l.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold delays a chunk read on l as the mode says: not at all, by the delay,
// or for as long as the blackhole lasts. It reports false if l ended
// meanwhile or is to be reset.
func (p *Proxy) hold(l *link) bool {
	for {
		p.mu.Lock()
		mode, delay, changed := p.mode, p.delay, p.changed
		p.mu.Unlock()
		switch mode {
		case Pass:
			return true
		case Latency:
			t := time.NewTimer(delay)
			select {
			case <-t.C:
				return true
			case <-l.done:
				t.Stop()
				return false
			}
		case Blackhole:
			select {
			case <-changed:
			case <-l.done:
				return false
			}
		default: // Reset
			p.reset(l)
			return false
		}
	}
}

// reset ends l with a TCP reset to the client.
func (p *Proxy) reset(l *link) {
	l.once.Do(func() {
		p.resets.Add(1)
		close(l.done)
		rst(l.client)
		p.mu.Lock()
		server := l.server
		p.mu.Unlock()
		if server != nil {
			server.Close()
		}
	})
}

// forget removes l from the open links.
func (p *Proxy) forget(l *link) {
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// close ends l with an ordinary close of both ends.
func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		if l.server != nil {
			l.server.Close()
		}
	})
}

// rst closes c so that the peer gets a reset (RST) rather than an orderly
// end of stream.
func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
