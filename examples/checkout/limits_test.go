package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/redistest"
)

// get sends GET path with the key and returns the response, body closed.
func get(t *testing.T, in *instance, path, raw string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", in.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// hitLimit sends the all-scopes demo key of acme until it is refused, and
// checks that the tenth request passes and the eleventh is a 429 with its
// headers: the demo key allows 10 at once.
func hitLimit(t *testing.T, in *instance) {
	t.Helper()
	raw := key(t, in.keys, "acme", "all scopes").raw
	for i := 1; i <= 10; i++ {
		resp := get(t, in, "/api/v1/links", raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d, want 200", i, resp.StatusCode)
		}
		if got := resp.Header.Get("RateLimit"); !strings.HasPrefix(got, `"rate";r=`) {
			t.Errorf("request %d: RateLimit %q", i, got)
		}
	}
	resp := get(t, in, "/api/v1/links", raw)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request 11: %d, want 429", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("RateLimit-Policy"), `"rate";q=60;w=60`) ||
		!strings.HasPrefix(resp.Header.Get("RateLimit"), `"rate";r=0;`) {
		t.Errorf("429 headers: Retry-After %q, RateLimit-Policy %q, RateLimit %q",
			resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	}
	// Another key of the merchant is not limited by this one.
	if resp := get(t, in, "/api/v1/links", key(t, in.keys, "globex", "all scopes").raw); resp.StatusCode != http.StatusOK {
		t.Errorf("globex's key after acme's was limited: %d", resp.StatusCode)
	}
}

func TestDemoKeyRateLimit(t *testing.T) {
	hitLimit(t, startInstance(t, config{addr: "127.0.0.1:0"}))
}

func TestRedisLimiter(t *testing.T) {
	srv := redistest.NewServer(t)
	url := "redis://" + srv.Addr()
	in := startInstance(t, config{addr: "127.0.0.1:0", redis: url})
	hitLimit(t, in)
	// The limit lives in Redis, where every instance reads it.
	client := srv.Client(t, nil)
	keys, err := client.Keys(context.Background(), "keyward:limit:*:rate").Result()
	if err != nil || len(keys) != 2 {
		t.Errorf("Redis holds rate keys %v (%v); want acme's and globex's", keys, err)
	}
}

func TestRedisUnreachable(t *testing.T) {
	_, err := start(t.Context(), config{addr: "127.0.0.1:0", redis: "redis://127.0.0.1:1/0"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "connecting to Redis") {
		t.Fatalf("start with an unreachable Redis = %v, want a clear error", err)
	}
	if _, err := start(t.Context(), config{addr: "127.0.0.1:0", redis: "mysql://x"}, nil, nil); err == nil || !strings.Contains(err.Error(), "-redis") {
		t.Errorf("start with a bad URL = %v", err)
	}
}
