package redistest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestShared(t *testing.T) {
	srv := redistest.Shared(t)
	if srv != redistest.Shared(t) {
		t.Fatal("Shared returned two servers")
	}
	ctx := context.Background()
	for _, opts := range []*redis.Options{srv.Options(), srv.TCPOptions()} {
		c := srv.Client(t, opts)
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING over %s: %v", opts.Network, err)
		}
	}
	// No persistence.
	cfg, err := srv.Client(t, nil).ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["save"] != "" || cfg["appendonly"] != "no" {
		t.Errorf("save = %q, appendonly = %q; want \"\" and \"no\"", cfg["save"], cfg["appendonly"])
	}
	for name, f := range map[string]func() error{"Stop": srv.Stop, "Start": srv.Start, "Pause": srv.Pause, "Resume": srv.Resume} {
		if err := f(); err == nil {
			t.Errorf("%s of the shared server succeeded, want an error", name)
		}
	}
}

func TestPrefix(t *testing.T) {
	if a, b := redistest.Prefix(t), redistest.Prefix(t); a == b {
		t.Errorf("two prefixes are %q", a)
	}
}

// A Server stops for real (its socket goes, its connections close),
// starts again, empty, and pauses.
func TestServerStopStartPause(t *testing.T) {
	srv := redistest.NewServer(t)
	c := srv.Client(t, &redis.Options{MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop of a stopped server: %v", err)
	}
	if _, err := os.Stat(srv.Socket()); !os.IsNotExist(err) {
		t.Errorf("the socket %s is still there after Stop (stat: %v)", srv.Socket(), err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("the server answers after Stop")
	}

	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("after Start: GET = %v, want redis.Nil (nothing persisted)", err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("a paused server answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("PING of a paused server took %v with a read timeout of 200ms", d)
	}
	if err := srv.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("after Resume: %v", err)
	}
}

// A cluster node serves every slot, refuses keys of different slots in
// one script, keeps its slots across a restart, and takes a ClusterClient.
func TestClusterNode(t *testing.T) {
	srv := redistest.NewClusterNode(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const script = "return redis.call('SET', KEYS[1], ARGV[1])"
	if err := c.Eval(ctx, script, []string{"{a}x", "{a}y"}, 1).Err(); err != nil {
		t.Fatalf("a script with two keys of one slot: %v", err)
	}
	direct := srv.Client(t, nil)
	if err := direct.Eval(ctx, script, []string{"a", "b"}, 1).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("a script with keys of two slots: %v, want CROSSSLOT", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}
