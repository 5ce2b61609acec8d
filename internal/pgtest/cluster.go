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
	dir  string // temporary directory: data, socket and log
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	dsn  string
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
func startCluster(bin string) (_ *cluster, err error) {
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
	data := filepath.Join(dir, "data")

	var out bytes.Buffer
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"--pgdata", data, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.Stdout, initdb.Stderr = &out, &out
	initdb.SysProcAttr = sysProcAttr(cred)
	if err := initdb.Run(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out.Bytes())
	}

	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	const port = "5432"   // only names the socket file: no TCP listener
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-k", dir, // the Unix socket's directory
		"-p", port,
		"-c", "listen_addresses=",
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr(cred)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	c := &cluster{
		dir:  dir,
		cmd:  cmd,
		done: make(chan struct{}),
		dsn:  fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", dir, port),
	}
	go func() { cmd.Wait(); close(c.done) }()

	if err := c.waitReady(30 * time.Second); err != nil {
		c.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w; server log:\n%s", err, log)
	}
	return c, nil
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

// stop shuts the server down (a "fast" shutdown: SIGINT) and removes its
// directory.
func (c *cluster) stop() error {
	defer os.RemoveAll(c.dir)
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
