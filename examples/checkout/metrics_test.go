package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A series is one line of the Prometheus text format: a metric's name,
// its labels and its value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape fetches the server's /metrics, without a key, and parses the
// Prometheus text format's samples; it returns them and the text.
func scrape(t *testing.T, in *instance) ([]series, string) {
	t.Helper()
	resp, err := http.Get(in.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []series
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("malformed sample %q", l)
		}
		s := series{name: l[:i], labels: map[string]string{}, value: v}
		if name, labels, ok := strings.Cut(l[:i], "{"); ok {
			s.name = name
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out, string(body)
}

// value returns the value of the series named name whose label key is
// value, and whether there is one.
func value(all []series, name, key, value string) (float64, bool) {
	for _, s := range all {
		if s.name == name && s.labels[key] == value {
			return s.value, true
		}
	}
	return 0, false
}

// TestMetrics sends requests of each kind (valid keys, an unknown key, a
// key without the route's scope), then scrapes /metrics and checks
// keyward's counters, histogram and gauges in the Prometheus text format.
func TestMetrics(t *testing.T) {
	in := startInstance(t, config{addr: "127.0.0.1:0"})
	all := key(t, in.keys, "acme", "all scopes").raw
	sessions := key(t, in.keys, "globex", "sessions:write").raw
	unknown := all[:len(all)-4] + "AAAA" // well formed, never issued
	if unknown == all {
		unknown = all[:len(all)-4] + "BBBB"
	}
	for _, req := range []struct {
		raw  string
		want int
	}{
		{all, http.StatusOK},
		{all, http.StatusOK},
		{unknown, http.StatusUnauthorized},
		{sessions, http.StatusForbidden}, // GET /api/v1/links needs links:read
	} {
		if resp := get(t, in, "/api/v1/links", req.raw); resp.StatusCode != req.want {
			t.Fatalf("GET /api/v1/links: %d, want %d", resp.StatusCode, req.want)
		}
	}

	// The latency histogram holds a random sample of one verification
	// in 16: with 400 more (straight through the lifecycle, below the
	// key's rate limit), it holds some; all are left out once in 10^11
	// runs.
	for range 400 {
		if _, err := in.srv.keys.Verify(t.Context(), all); err != nil {
			t.Fatal(err)
		}
	}

	samples, text := scrape(t, in)
	for _, c := range []struct {
		name, key, label string
		want             float64
	}{
		// 403 verified: 402 let through, one refused for its scope.
		{"keyward_verifications_total", "keyward_outcome", "ok", 403},
		{"keyward_verifications_total", "keyward_outcome", "unknown", 1},
		{"keyward_verifications_total", "keyward_outcome", "revoked", 0},
		{"keyward_verifications_total", "keyward_outcome", "malformed", 0},
		{"keyward_verifications_total", "keyward_outcome", "unavailable", 0},
		{"keyward_refusals_total", "keyward_outcome", "insufficient_scope", 1},
		{"keyward_refusals_total", "keyward_outcome", "limited", 0},
		{"keyward_verification_duration_seconds_count", "keyward_outcome", "ok", -1}, // present; checked below
		{"keyward_verification_duration_seconds_bucket", "le", "+Inf", -1},           // present
		{"keyward_usage_pending", "", "", -1},
		{"keyward_usage_flush_lag_seconds", "", "", -1},
	} {
		got, ok := value(samples, c.name, c.key, c.label)
		switch {
		case !ok:
			t.Errorf("no %s{%s=%q} in:\n%s", c.name, c.key, c.label, text)
		case c.want >= 0 && got != c.want:
			t.Errorf("%s{%s=%q} = %g, want %g", c.name, c.key, c.label, got, c.want)
		}
	}
	for _, typ := range []string{
		"# TYPE keyward_verifications_total counter",
		"# TYPE keyward_refusals_total counter",
		"# TYPE keyward_verification_duration_seconds histogram",
		"# TYPE keyward_usage_pending gauge",
	} {
		if !strings.Contains(text, typ+"\n") {
			t.Errorf("no %q in:\n%s", typ, text)
		}
	}
	// A sample, and in seconds: a few dozen verifications from memory
	// take well under one.
	if n, _ := value(samples, "keyward_verification_duration_seconds_count", "keyward_outcome", "ok"); n < 1 || n > 200 {
		t.Errorf("keyward_verification_duration_seconds_count{ok} = %g of 403 verifications, want a sample of about one in 16", n)
	}
	if sum, _ := value(samples, "keyward_verification_duration_seconds_sum", "keyward_outcome", "ok"); sum <= 0 || sum >= 1 {
		t.Errorf("keyward_verification_duration_seconds_sum{ok} = %g s", sum)
	}
	// Nothing of a key is exported.
	for _, raw := range []string{all, sessions, unknown} {
		if strings.Contains(text, raw) || strings.Contains(text, raw[:14]) {
			t.Error("a key, or its prefix, is in the metrics")
		}
	}
	if strings.Contains(text, "acme") || strings.Contains(text, "globex") {
		t.Error("an owner is in the metrics")
	}
}
