package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// A cluster is a throwaway PostgreSQL server run by this process.
type cluster struct {
	dir  string      // temporary directory: data, socket and log
	bin  string      // the directory of initdb and postgres
	cred *credential // the user the server runs as; nil for this process's
	dsn  string
	cmd  *exec.Cmd     // the server process last started
	done chan struct{} // closed when that process has exited
}

// versionedBinaries is where Debian and Ubuntu install each PostgreSQL
// version.
var versionedBinaries = "/usr/lib/postgresql/*/bin"

// findBinaries returns the directory holding initdb and postgres: the one
// of initdb on PATH, or the newest /usr/lib/postgresql/<version>/bin.
func findBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(versionedBinaries)
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return -cmpFloat(version(a), version(b)) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("initdb and postgres not found on PATH nor under /usr/lib/postgresql/*/bin")
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// startCluster creates a cluster in a new temporary directory and starts
// it, listening on a Unix socket only.
func startCluster(bin string) (*cluster, error) {
	c, err := initCluster(bin)
	if err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	return c, nil
}

// initCluster creates a cluster's data directory with initdb, in a new
// temporary directory, without starting its server.
func initCluster(bin string) (_ *cluster, err error) {
	// As root, the server runs as "postgres": initdb refuses root.
	var cred *credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and no user \"postgres\" to run the server as: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred = &credential{uid: uint32(uid), gid: uint32(gid)}
	}

	dir, err := os.MkdirTemp("", "keyward-pgtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.uid), int(cred.gid)); err != nil {
			return nil, err
		}
	}

	var out bytes.Buffer
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"--pgdata", filepath.Join(dir, "data"), "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.Stdout, initdb.Stderr = &out, &out
	initdb.SysProcAttr = sysProcAttr(cred)
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.Bytes())
	}
	return &cluster{
		dir:  dir,
		bin:  bin,
		cred: cred,
		dsn:  fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", dir, port),
	}, nil
}

// port only names the socket file: the server has no TCP listener.
const port = "5432"

// socket returns the path of the server's Unix socket.
func (c *cluster) socket() string { return filepath.Join(c.dir, ".s.PGSQL."+port) }

// start runs the cluster's server and waits until it accepts connections.
// The server appends to postgres.log in the cluster's directory.
func (c *cluster) start() error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(filepath.Join(c.bin, "postgres"),
		"-D", filepath.Join(c.dir, "data"),
		"-k", c.dir, // the Unix socket's directory
		"-p", port,
		"-c", "listen_addresses=",
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr(c.cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	done := make(chan struct{})
	c.cmd, c.done = cmd, done
	go func() { cmd.Wait(); close(done) }()

	if err := c.waitReady(30 * time.Second); err != nil {
		c.shutdown()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return nil
}

// waitReady waits until the server accepts connections.
func (c *cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		db, err := open(c.dsn)
		if err == nil {
			db.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("the server exited at start-up: %v", c.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not accept connections within %v: %w", timeout, err)
		}
	}
}

// stop shuts the server down and removes its directory.
func (c *cluster) stop() error {
	defer os.RemoveAll(c.dir)
	return c.shutdown()
}

// shutdown stops the server (a "fast" shutdown: SIGINT, which ends the
// sessions in progress) and waits for it to exit, keeping its data. A
// server that has not exited within 30 s is killed.
func (c *cluster) shutdown() error {
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("the server did not stop within 30s and was killed")
	}
}

// credential is the user the server runs as, when not the current one.
type credential struct{ uid, gid uint32 }
