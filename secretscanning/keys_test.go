package secretscanning_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/secretscanning"
)

// GitHub's partner program documentation: the sample request, and the
// keys its meta endpoint published, bcb53661… being the one that signed
// the sample.
const (
	githubSamplePayload   = `[{"source":"commit","token":"some_token","type":"some_type","url":"https://example.com/base-repo-url/"}]`
	githubSampleKeyID     = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
	githubSampleSignature = "MEQCIQDaMKqrGnE27S0kgMrEK0eYBmyG0LeZismAEz/BgZyt7AIfXt9fErtRS4XaeSt/AO1RtBY66YcAdjxji410VQV4xg=="
	githubKeysDocument    = `{
  "public_keys": [
    {
      "key_identifier": "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
      "key": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n",
      "is_current": false
    },
    {
      "key_identifier": "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c",
      "key": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\nAjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n-----END PUBLIC KEY-----\n",
      "is_current": true
    }
  ]
}`
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestParsePublicKeys(t *testing.T) {
	keys, err := secretscanning.ParsePublicKeys([]byte(githubKeysDocument))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2", len(keys))
	}
	for i, want := range []struct {
		id      string
		current bool
	}{
		{"90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a", false},
		{githubSampleKeyID, true},
	} {
		k := keys[i]
		if k.ID != want.id || k.Current != want.current || k.Key == nil || k.Key.Curve != elliptic.P256() {
			t.Errorf("key %d = %s current=%v, want %s current=%v on P-256", i, k.ID, k.Current, want.id, want.current)
		}
	}
}

func pemOf(t *testing.T, typ string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// keysDoc writes a document of GitHub's shape listing keys.
func keysDoc(t *testing.T, keys ...secretscanning.PublicKey) string {
	t.Helper()
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	doc := struct {
		PublicKeys []entry `json:"public_keys"`
	}{PublicKeys: []entry{}}
	for _, k := range keys {
		doc.PublicKeys = append(doc.PublicKeys, entry{k.ID, pemOf(t, "PUBLIC KEY", k.Key), k.Current})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParsePublicKeysErrors(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256 := newSigner(t, "x").priv
	entry := func(id, key string) string {
		b, _ := json.Marshal(map[string]any{"public_keys": []any{map[string]any{"key_identifier": id, "key": key, "is_current": true}}})
		return string(b)
	}
	good := pemOf(t, "PUBLIC KEY", &p256.PublicKey)
	if _, err := secretscanning.ParsePublicKeys([]byte(entry("k", good))); err != nil {
		t.Fatalf("a good document: %v", err)
	}
	for name, doc := range map[string]string{
		"not JSON":             `<html>rate limited</html>`,
		"no keys":              `{"public_keys":[]}`,
		"no public_keys":       `{"keys":[]}`,
		"no identifier":        entry("", good),
		"not PEM":              entry("k", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"),
		"another PEM type":     entry("k", pemOf(t, "CERTIFICATE", &p256.PublicKey)),
		"text after the block": entry("k", good+"garbage"),
		"P-384 key":            entry("k", pemOf(t, "PUBLIC KEY", &p384.PublicKey)),
		"RSA key":              entry("k", pemOf(t, "PUBLIC KEY", &rsaKey.PublicKey)),
		"bad DER":              entry("k", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))),
	} {
		t.Run(name, func(t *testing.T) {
			if keys, err := secretscanning.ParsePublicKeys([]byte(doc)); err == nil {
				t.Errorf("ParsePublicKeys = %d keys, want an error", len(keys))
			}
		})
	}
}

func TestStaticKeys(t *testing.T) {
	a, b := newSigner(t, "a"), newSigner(t, "b")
	ks := secretscanning.StaticKeys(a.public(), b.public())
	for _, s := range []signer{a, b} {
		k, err := ks.Key(context.Background(), s.id)
		if err != nil || k.ID != s.id || !k.Key.Equal(&s.priv.PublicKey) {
			t.Errorf("Key(%q) = %v, %v", s.id, k, err)
		}
	}
	if _, err := ks.Key(context.Background(), "c"); !errors.Is(err, secretscanning.ErrUnknownKeyID) {
		t.Errorf("Key(unknown) error = %v, want ErrUnknownKeyID", err)
	}
}

// metaServer is GitHub's meta endpoint: it serves a key document that the
// test can change, and counts the fetches.
type metaServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	doc     string
	status  int
	headers []http.Header // of every request
}

func newMetaServer(t *testing.T, doc string) *metaServer {
	m := &metaServer{doc: doc, status: http.StatusOK}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.fetches.Add(1)
		m.mu.Lock()
		doc, status := m.doc, m.status
		m.headers = append(m.headers, r.Header.Clone())
		m.mu.Unlock()
		if r.URL.Path != "/meta/public_keys/secret_scanning" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(doc))
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metaServer) url() string { return m.URL + "/meta/public_keys/secret_scanning" }

func (m *metaServer) set(doc string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc, m.status = doc, status
}

func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGitHubKeysThroughTheHandler(t *testing.T) {
	gh := newSigner(t, "key-1")
	meta := newMetaServer(t, keysDoc(t, gh.public()))
	ks, err := secretscanning.NewGitHubKeys(meta.Client(),
		secretscanning.WithKeysURL(meta.url()),
		secretscanning.WithKeysToken("ghp_test_token"))
	if err != nil {
		t.Fatal(err)
	}
	rep := newFakeReporter(liveKey)
	h, logs := newHandler(t, rep, nil, secretscanning.WithKeySource(ks))
	body := `[{"token":"` + liveKey + `","type":"keyward_api_key","url":"","source":"content"}]`

	// The first alert fetches the keys.
	if rec := serve(h, gh.request(t, body)); rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if n := meta.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	meta.mu.Lock()
	hdr := meta.headers[0]
	meta.mu.Unlock()
	if got := hdr.Get("Authorization"); got != "Bearer ghp_test_token" {
		t.Errorf("Authorization = %q, want the token", got)
	}
	if got := hdr.Get("User-Agent"); got == "" || strings.HasPrefix(got, "Go-http-client") {
		t.Errorf("User-Agent = %q, want keyward's own", got)
	}
	if strings.Contains(logs.String(), "ghp_test_token") {
		t.Error("the log carries the GitHub token")
	}

	// Alerts that follow use the cache.
	for range 5 {
		serve(h, gh.request(t, body))
	}
	// Unknown identifiers, however many, fetch nothing within the refresh
	// interval (a minute): an attacker cannot make the handler hammer
	// GitHub.
	reqs := make([]*http.Request, 50)
	for i := range reqs {
		reqs[i] = gh.request(t, body)
		reqs[i].Header.Set(secretscanning.HeaderKeyID, fmt.Sprintf("random-%d", i))
	}
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() {
			if rec := serve(h, r); rec.Code != http.StatusUnauthorized {
				t.Errorf("unknown identifier: status %d, want 401", rec.Code)
			}
		})
	}
	wg.Wait()
	if n := meta.fetches.Load(); n != 1 {
		t.Errorf("%d fetches after 50 unknown identifiers, want still 1", n)
	}
	if calls := rep.reports(); len(calls) != 6 {
		t.Errorf("%d reports, want 6: one per signed alert", len(calls))
	}
}

func TestGitHubKeysConcurrentFirstFetch(t *testing.T) {
	gh := newSigner(t, "key-1")
	meta := newMetaServer(t, keysDoc(t, gh.public()))
	ks, err := secretscanning.NewGitHubKeys(meta.Client(), secretscanning.WithKeysURL(meta.url()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := deadline(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := gh.id
			if i%2 == 1 {
				id = "unknown"
			}
			k, err := ks.Key(ctx, id)
			switch {
			case id == gh.id && (err != nil || !k.Key.Equal(&gh.priv.PublicKey)):
				t.Errorf("Key(%q) = %v, %v", id, k, err)
			case id != gh.id && !errors.Is(err, secretscanning.ErrUnknownKeyID):
				t.Errorf("Key(%q) error = %v, want ErrUnknownKeyID", id, err)
			}
		})
	}
	wg.Wait()
	if n := meta.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 20 concurrent lookups, want 1", n)
	}
}

func TestGitHubKeysFetchFailure(t *testing.T) {
	gh := newSigner(t, "key-1")
	for name, tc := range map[string]struct {
		doc    string
		status int
	}{
		"rate limited":  {`{"message":"API rate limit exceeded"}`, http.StatusForbidden},
		"server error":  {``, http.StatusBadGateway},
		"not JSON":      {`<html></html>`, http.StatusOK},
		"no usable key": {`{"public_keys":[]}`, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			meta := newMetaServer(t, tc.doc)
			meta.set(tc.doc, tc.status)
			ks, err := secretscanning.NewGitHubKeys(meta.Client(), secretscanning.WithKeysURL(meta.url()))
			if err != nil {
				t.Fatal(err)
			}
			rep := newFakeReporter(liveKey)
			h, _ := newHandler(t, rep, nil, secretscanning.WithKeySource(ks))
			rec := serve(h, gh.request(t, `[{"token":"`+liveKey+`","type":"keyward_api_key"}]`))
			checkProblem(t, rec, http.StatusServiceUnavailable)
			if calls := rep.reports(); len(calls) != 0 {
				t.Errorf("the reporter was called %d times", len(calls))
			}
			// Not retried within the interval: the same failure, no fetch.
			if _, err := ks.Key(deadline(t), gh.id); err == nil || errors.Is(err, secretscanning.ErrUnknownKeyID) {
				t.Errorf("Key after a failed fetch: error %v, want the fetch's", err)
			}
			if n := meta.fetches.Load(); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
		})
	}
}

func TestNewGitHubKeysErrors(t *testing.T) {
	for name, opt := range map[string]secretscanning.GitHubOption{
		"empty URL":         secretscanning.WithKeysURL(""),
		"empty token":       secretscanning.WithKeysToken(""),
		"zero interval":     secretscanning.WithRefreshInterval(0),
		"negative interval": secretscanning.WithRefreshInterval(-time.Second),
		"zero max age":      secretscanning.WithMaxKeyAge(0),
	} {
		t.Run(name, func(t *testing.T) {
			if ks, err := secretscanning.NewGitHubKeys(nil, opt); err == nil || ks != nil {
				t.Errorf("NewGitHubKeys = %v, %v; want an error", ks, err)
			}
		})
	}
}
