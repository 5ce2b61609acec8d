package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A proc is a redis-server process run by this test binary, and what it
// needs to be started again.
type proc struct {
	bin  string
	dir  string // temporary directory: socket, log and working directory
	port int
	// cluster runs the server in cluster mode, a one-node cluster serving
	// every slot.
	cluster bool
	cmd     *exec.Cmd     // the process last started
	done    chan struct{} // closed when that process has exited
}

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 15 * time.Second

// startProc starts redis-server in a new temporary directory, on a free
// TCP port, trying another port if the one chosen was taken meanwhile.
func startProc(bin string, cluster bool) (*proc, error) {
	dir, err := os.MkdirTemp("", "keyward-redistest-")
	if err != nil {
		return nil, err
	}
	p := &proc{bin: bin, dir: dir, cluster: cluster}
	for attempt := 0; ; attempt++ {
		if p.port, err = freePort(); err != nil {
			break
		}
		if err = p.start(); err == nil {
			return p, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// freePort returns a TCP port of 127.0.0.1 that nothing listened on a
// moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *proc) addr() string   { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }
func (p *proc) socket() string { return filepath.Join(p.dir, "redis.sock") }

// start runs the server and waits until it answers PING. The server
// appends to redis.log in its directory.
func (p *proc) start() error {
	logPath := filepath.Join(p.dir, "redis.log")
	args := []string{
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--unixsocket", p.socket(),
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--dir", p.dir,
		"--logfile", logPath,
		"--loglevel", "warning",
		"--daemonize", "no",
	}
	if p.cluster {
		// The cluster's configuration is kept across restarts, unlike the
		// data.
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(p.dir, "nodes.conf"))
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() { cmd.Wait(); close(done) }()

	err := p.waitReady(startTimeout)
	if err == nil && p.cluster {
		err = p.serveAllSlots(startTimeout)
	}
	if err != nil {
		p.shutdown()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return nil
}

// waitReady waits until the server answers PING on its Unix socket.
func (p *proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ping(p.socket(), deadline)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("the server exited at start-up: %v", p.cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not answer PING within %v: %w", timeout, err)
		}
	}
}

// serveAllSlots has a server in cluster mode serve every slot, if it does
// not yet, and waits until the cluster's state is ok.
func (p *proc) serveAllSlots(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	info, err := command(p.socket(), deadline, "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		if _, err := command(p.socket(), deadline, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %w", err)
		}
	}
	for {
		if strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster's state is not ok after %v:\n%s", timeout, info)
		}
		time.Sleep(10 * time.Millisecond)
		if info, err = command(p.socket(), deadline, "CLUSTER", "INFO"); err != nil {
			return err
		}
	}
}

// ping sends PING to the server and checks the answer, by the deadline.
// A server still loading answers -LOADING.
func ping(socket string, deadline time.Time) error {
	got, err := command(socket, deadline, "PING")
	if err == nil && got != "PONG" {
		err = fmt.Errorf("PING answered %q", got)
	}
	return err
}

// command sends one command on a new connection to the Unix socket and
// returns its answer, a simple string or a bulk string, by the deadline.
// An error reply is returned as an error. It is enough to start a server
// without depending on a client's handshake.
func command(socket string, deadline time.Time, args ...string) (string, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected answer %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unexpected answer %q", line)
}

// shutdown sends SIGTERM and waits for the process to exit; one that has
// not exited within 10 s is killed.
func (p *proc) shutdown() error {
	if err := p.cmd.Process.Signal(sigTerm); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.cmd.Process.Kill()
		<-p.done
		return errors.New("the server did not stop within 10s and was killed")
	}
}

// signal sends sig to the running process.
func (p *proc) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }
