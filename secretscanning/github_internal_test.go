package secretscanning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// ghKey is a key GitHub signs with, in the internal tests.
type ghKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newGHKey(t *testing.T, id string) ghKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ghKey{id, priv}
}

func (k ghKey) entry(t *testing.T, current bool) map[string]any {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"key_identifier": k.id,
		"key":            string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"is_current":     current,
	}
}

func (k ghKey) request(t *testing.T, body string) *http.Request {
	t.Helper()
	digest := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set(HeaderKeyID, k.id)
	r.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return r
}

// fakeMeta is GitHub's meta endpoint, with ETags: it counts fetches, and
// answers 304 to a request naming the current document's ETag.
type fakeMeta struct {
	srv         *httptest.Server
	fetches     atomic.Int64
	notModified atomic.Int64
	mu          sync.Mutex
	doc         []byte
	etag        string
	version     int
	status      int
}

func newFakeMeta(t *testing.T) *fakeMeta {
	m := &fakeMeta{status: http.StatusOK}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.fetches.Add(1)
		m.mu.Lock()
		doc, etag, status := m.doc, m.etag, m.status
		m.mu.Unlock()
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		if r.Header.Get("If-None-Match") == etag {
			m.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(doc)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// publish serves keys from now on, with a new ETag.
func (m *fakeMeta) publish(t *testing.T, entries ...map[string]any) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{"public_keys": entries})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc = doc
	m.version++
	m.etag = `"v` + strconv.Itoa(m.version) + `"`
	m.status = http.StatusOK
}

func (m *fakeMeta) fail(status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = status
}

// fakeClock is the monotonic clock of GitHubKeys, moved by the test.
type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) mono() int64             { return c.now.Load() }
func (c *fakeClock) advance(d time.Duration) { c.now.Add(int64(d)) }

// newTestGitHubKeys returns GitHubKeys over m with a one-minute interval,
// a one-hour maximum age, and the clock c.
func newTestGitHubKeys(t *testing.T, m *fakeMeta, c *fakeClock) *GitHubKeys {
	t.Helper()
	g, err := NewGitHubKeys(m.srv.Client(), WithKeysURL(m.srv.URL),
		WithRefreshInterval(time.Minute), WithMaxKeyAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c.now.Store(int64(24 * time.Hour)) // any start
	g.mono = c.mono
	return g
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGitHubKeysRefresh(t *testing.T) {
	a, b := newGHKey(t, "key-a"), newGHKey(t, "key-b")
	meta := newFakeMeta(t)
	meta.publish(t, a.entry(t, true))
	var clk fakeClock
	g := newTestGitHubKeys(t, meta, &clk)
	ctx := testContext(t)

	lookup := func(id string, wantErr error, wantFetches int64) {
		t.Helper()
		k, err := g.Key(ctx, id)
		switch {
		case wantErr == nil && (err != nil || k.ID != id):
			t.Errorf("Key(%q) = %v, %v; want the key", id, k.ID, err)
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("Key(%q) error = %v, want %v", id, err, wantErr)
		}
		if n := meta.fetches.Load(); n != wantFetches {
			t.Errorf("after Key(%q): %d fetches, want %d", id, n, wantFetches)
		}
	}

	lookup("key-a", nil, 1) // the first lookup fetches
	lookup("key-a", nil, 1) // then the cache answers
	lookup("key-x", ErrUnknownKeyID, 1)

	// Past the interval, an unknown identifier fetches once, then is
	// refused; the next unknown one waits for the next interval.
	clk.advance(time.Minute)
	lookup("key-x", ErrUnknownKeyID, 2)
	lookup("key-y", ErrUnknownKeyID, 2)
	clk.advance(59 * time.Second)
	lookup("key-z", ErrUnknownKeyID, 2)

	// GitHub rotates: key-b appears. It is picked up by the first lookup
	// once the interval has passed.
	meta.publish(t, a.entry(t, false), b.entry(t, true))
	clk.advance(time.Second)
	lookup("key-b", nil, 3)
	if k, _ := g.Key(ctx, "key-a"); k.Current {
		t.Error("key-a is still current after the rotation")
	}

	// Keys older than the maximum age are fetched again, conditionally:
	// GitHub answers 304 and the keys stay.
	clk.advance(time.Hour)
	lookup("key-b", nil, 4)
	if n := meta.notModified.Load(); n != 2 { // this one and the refresh for key-x
		t.Errorf("%d conditional fetches answered 304, want 2", n)
	}

	// A failed fetch keeps the keys fetched before; an unknown identifier
	// then gets the fetch's error, so that GitHub retries, and no fetch
	// happens before the interval passes.
	meta.fail(http.StatusServiceUnavailable)
	clk.advance(time.Hour)
	lookup("key-b", nil, 5)
	k, err := g.Key(ctx, "key-c")
	if err == nil || errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Key(key-c) after a failed fetch = %v, %v; want the fetch's error", k.ID, err)
	}
	if n := meta.fetches.Load(); n != 5 {
		t.Errorf("%d fetches, want 5", n)
	}

	// GitHub withdraws key-a: once fetched, it no longer verifies.
	meta.publish(t, b.entry(t, true))
	clk.advance(time.Minute)
	lookup("key-a", ErrUnknownKeyID, 6)
	lookup("key-b", nil, 6)
}

// TestHandlerKeyRotation runs the refresh rules through the handler, as
// GitHub's requests meet them.
func TestHandlerKeyRotation(t *testing.T) {
	a, b, forger := newGHKey(t, "key-a"), newGHKey(t, "key-b"), newGHKey(t, "key-f")
	meta := newFakeMeta(t)
	meta.publish(t, a.entry(t, true))
	var clk fakeClock
	g := newTestGitHubKeys(t, meta, &clk)
	rep := &countingReporter{}
	h, err := NewHandler(rep, WithKeySource(g), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	body := `[{"token":"ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh","type":"keyward_api_key","url":"","source":"content"}]`
	post := func(k ghKey, wantStatus int, wantFetches int64) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, k.request(t, body))
		if rec.Code != wantStatus {
			t.Errorf("signed by %s: status %d, want %d; body %s", k.id, rec.Code, wantStatus, rec.Body)
		}
		if n := meta.fetches.Load(); n != wantFetches {
			t.Errorf("signed by %s: %d fetches, want %d", k.id, n, wantFetches)
		}
	}

	post(a, http.StatusOK, 1)
	// An unknown identifier: one refresh, then 401.
	clk.advance(time.Minute)
	post(forger, http.StatusUnauthorized, 2)
	// Many more within the interval: no fetch at all.
	for range 100 {
		post(forger, http.StatusUnauthorized, 2)
	}
	// The rotation: key-b is published and GitHub signs with it.
	meta.publish(t, a.entry(t, false), b.entry(t, true))
	clk.advance(time.Minute)
	post(b, http.StatusOK, 3)
	post(a, http.StatusOK, 3) // the old key still verifies what it signed
	if n := rep.calls.Load(); n != 3 {
		t.Errorf("%d reports, want 3: one per accepted alert", n)
	}
}

type countingReporter struct{ calls atomic.Int64 }

func (r *countingReporter) ReportExposure(context.Context, string, keyward.Exposure) (keyward.ExposureReport, error) {
	r.calls.Add(1)
	return keyward.ExposureReport{Known: true}, nil
}

// TestGitHubKeysWaitEnds checks that a lookup waiting for a slow fetch
// gives up when its context ends, while the fetch goes on for the others.
func TestGitHubKeysWaitEnds(t *testing.T) {
	a := newGHKey(t, "key-a")
	release := make(chan struct{})
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		doc, _ := json.Marshal(map[string]any{"public_keys": []any{a.entry(t, true)}})
		w.Write(doc)
	}))
	defer srv.Close()
	g, err := NewGitHubKeys(srv.Client(), WithKeysURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Key(ctx, "key-a"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Key with an ended context: error %v, want context.Canceled", err)
	}
	close(release)
	k, err := g.Key(testContext(t), "key-a") // joins the fetch the first lookup started
	if err != nil || k.ID != "key-a" {
		t.Errorf("Key = %v, %v; want key-a", k.ID, err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
}
