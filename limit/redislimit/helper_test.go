package redislimit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/redistest"
	"github.com/keyward/keyward/limit/redislimit"
)

// helperEnv, set in the environment of the test binary, makes it an
// application instance of TestTwoProcesses instead of running tests; its
// value is a helperJob in JSON.
const helperEnv = "REDISLIMIT_TEST_INSTANCE"

// A helperJob is what an instance does: workers goroutines each ask
// Allow attempts times, for one key at one instant.
type helperJob struct {
	Socket   string        `json:"socket"`
	Prefix   string        `json:"prefix"`
	ID       uuid.UUID     `json:"id"`
	Policy   apikey.Policy `json:"policy"`
	Now      time.Time     `json:"now"`
	Workers  int           `json:"workers"`
	Attempts int           `json:"attempts"`
}

// helperMode runs helperMain and exits if the binary was started as an
// instance, and returns false otherwise.
func helperMode() bool {
	job := os.Getenv(helperEnv)
	if job == "" {
		return false
	}
	if err := helperMain(job); err != nil {
		fmt.Fprintln(os.Stderr, "instance:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// helperMain connects, says "ready", waits for a line on its standard
// input (so that the instances start together), runs the job and writes
// "allowed N".
func helperMain(jobJSON string) error {
	var job helperJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		return err
	}
	client := redis.NewClient(&redis.Options{Network: "unix", Addr: job.Socket, PoolSize: job.Workers})
	defer client.Close()
	l, err := redislimit.New(client, redislimit.WithPrefix(job.Prefix))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return err
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start: %w", err)
	}
	var allowed atomic.Int64
	errs := make(chan error, job.Workers)
	var wg sync.WaitGroup
	for range job.Workers {
		wg.Go(func() {
			for range job.Attempts {
				d, err := l.Allow(ctx, job.ID, &job.Policy, job.Now)
				if err != nil {
					errs <- err
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Println("allowed", allowed.Load())
	return nil
}

// Two OS processes, each an application instance with its own client,
// racing on one key at one instant: between them they get exactly what
// the limits allow.
func TestTwoProcesses(t *testing.T) {
	srv := redistest.Shared(t)
	prefix := redistest.Prefix(t)
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	const instances, workers, attempts = 2, 8, 40 // 640 requests
	for _, tc := range sharedLimitCases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := json.Marshal(helperJob{
				Socket: srv.Socket(), Prefix: prefix, ID: uuid.New(), Policy: tc.p, Now: now,
				Workers: workers, Attempts: attempts,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			type instance struct {
				cmd   *exec.Cmd
				start *os.File // its standard input: a line starts it
				out   *bufio.Scanner
			}
			var all []instance
			for range instances {
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"="+string(job))
				cmd.Stderr = os.Stderr
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stdin = r
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				r.Close()
				defer w.Close()
				defer cmd.Wait()
				all = append(all, instance{cmd, w, bufio.NewScanner(stdout)})
			}
			for i, in := range all {
				if !in.out.Scan() || in.out.Text() != "ready" {
					t.Fatalf("instance %d did not get ready: %q %v", i, in.out.Text(), in.out.Err())
				}
			}
			for _, in := range all {
				in.start.WriteString("go\n")
			}
			var total int64
			for i, in := range all {
				var n int64
				if !in.out.Scan() {
					t.Fatalf("instance %d ended without a result: %v", i, in.out.Err())
				}
				if _, err := fmt.Sscanf(in.out.Text(), "allowed %d", &n); err != nil {
					t.Fatalf("instance %d wrote %q", i, in.out.Text())
				}
				t.Logf("instance %d: %d allowed", i, n)
				total += n
			}
			for i, in := range all {
				if err := in.cmd.Wait(); err != nil && !strings.Contains(err.Error(), "already") {
					t.Errorf("instance %d: %v", i, err)
				}
			}
			if total != tc.want {
				t.Errorf("%d requests from %d processes: %d allowed, want %d", instances*workers*attempts, instances, total, tc.want)
			}
		})
	}
}
