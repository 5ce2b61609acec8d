package secretscanning

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/clock"
)

// DefaultKeysURL is where GitHub publishes the public keys of its secret
// scanning partner program.
const DefaultKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Defaults of [GitHubKeys].
const (
	// DefaultRefreshInterval is the least time between two fetches of
	// GitHub's keys, whatever identifiers requests name.
	DefaultRefreshInterval = time.Minute
	// DefaultMaxKeyAge is how long fetched keys are used before they are
	// fetched again.
	DefaultMaxKeyAge = time.Hour
	// FetchTimeout bounds one fetch of GitHub's keys, whatever the HTTP
	// client's own timeout.
	FetchTimeout = 10 * time.Second
)

// maxKeysDocument bounds the size of GitHub's keys document: it is about
// 1 KB today.
const maxKeysDocument = 1 << 20

// GitHubKeys is the [KeySource] that fetches GitHub's public keys from its
// meta endpoint ([DefaultKeysURL]) and caches them. It is safe for
// concurrent use.
//
// Keys are fetched when a request needs one: on the first request, when a
// request names an identifier missing from the cache (GitHub rotated its
// keys), and when the cached keys are older than the maximum age
// ([WithMaxKeyAge]). Identifiers come from unauthenticated requests, so
// fetches are bounded: at most one per refresh interval
// ([WithRefreshInterval], default one minute), however many identifiers
// requests name, and concurrent lookups share one fetch. An identifier
// still unknown after the latest fetch is answered with [ErrUnknownKeyID]
// without fetching again; so a key GitHub starts using is picked up by the
// first request that names it once the interval since the previous fetch
// has passed.
//
// A fetch replaces the whole key set, so a key GitHub withdraws stops
// verifying. A failed fetch keeps the keys fetched before, if any, and is
// not retried before the interval passes; meanwhile a lookup of an
// unknown identifier returns the fetch's error (the handler answers 503,
// so that the alert may come again), not [ErrUnknownKeyID]. Fetches are
// conditional (If-None-Match), as GitHub recommends against its rate
// limits, and may carry a token ([WithKeysToken]).
type GitHubKeys struct {
	client   *http.Client
	url      string
	token    string
	interval time.Duration
	maxAge   time.Duration
	mono     func() int64 // clock.Mono; tests replace it

	mu        sync.Mutex
	keys      map[string]PublicKey // the last key set fetched; nil before
	etag      string               // its ETag, for conditional fetches
	fetchedAt int64                // mono time of the last successful fetch
	triedAt   int64                // mono time of the last fetch started
	tried     bool                 // whether any fetch was started
	lastErr   error                // the last fetch's error; nil if it succeeded
	inflight  chan struct{}        // closed when the fetch in flight ends; nil if none
}

var _ KeySource = (*GitHubKeys)(nil)

// A GitHubOption configures [NewGitHubKeys].
type GitHubOption func(*GitHubKeys) error

// WithKeysURL sets the URL the keys are fetched from, instead of
// [DefaultKeysURL]: a test server, a proxy, or GitHub Enterprise's
// endpoint. The document there must have the shape [ParsePublicKeys]
// reads.
func WithKeysURL(url string) GitHubOption {
	return func(g *GitHubKeys) error {
		if url == "" {
			return errors.New("secretscanning: WithKeysURL needs a URL")
		}
		g.url = url
		return nil
	}
}

// WithKeysToken makes fetches carry "Authorization: Bearer <token>": a
// GitHub token with no scopes, which GitHub recommends to avoid the rate
// limit of anonymous calls (60 an hour per IP address). The token is never
// logged.
func WithKeysToken(token string) GitHubOption {
	return func(g *GitHubKeys) error {
		if token == "" {
			return errors.New("secretscanning: WithKeysToken needs a token")
		}
		g.token = token
		return nil
	}
}

// WithRefreshInterval sets the least time between two fetches, instead of
// [DefaultRefreshInterval]. It must be positive.
func WithRefreshInterval(d time.Duration) GitHubOption {
	return func(g *GitHubKeys) error {
		if d <= 0 {
			return errors.New("secretscanning: the refresh interval must be positive")
		}
		g.interval = d
		return nil
	}
}

// WithMaxKeyAge sets how long fetched keys are used before a lookup
// fetches them again, instead of [DefaultMaxKeyAge]. It must be positive;
// a maximum age below the refresh interval acts as the interval.
func WithMaxKeyAge(d time.Duration) GitHubOption {
	return func(g *GitHubKeys) error {
		if d <= 0 {
			return errors.New("secretscanning: the maximum key age must be positive")
		}
		g.maxAge = d
		return nil
	}
}

// NewGitHubKeys returns a [KeySource] that fetches GitHub's keys with
// client; a nil client means [http.DefaultClient]. Each fetch ends after
// [FetchTimeout] at most. Nothing is fetched until a lookup needs it.
func NewGitHubKeys(client *http.Client, opts ...GitHubOption) (*GitHubKeys, error) {
	if client == nil {
		client = http.DefaultClient
	}
	g := &GitHubKeys{
		client:   client,
		url:      DefaultKeysURL,
		interval: DefaultRefreshInterval,
		maxAge:   DefaultMaxKeyAge,
		mono:     clock.Mono,
	}
	for _, opt := range opts {
		if err := opt(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Key returns GitHub's key with identifier id, fetching the keys if the
// cache does not hold it and the refresh interval allows (see
// [GitHubKeys]). It waits for a fetch at most until ctx ends.
func (g *GitHubKeys) Key(ctx context.Context, id string) (PublicKey, error) {
	g.mu.Lock()
	k, ok := g.keys[id]
	now := g.mono()
	fresh := g.keys != nil && now-g.fetchedAt < int64(g.maxAge)
	if ok && fresh {
		g.mu.Unlock()
		return k, nil
	}
	done := g.inflight
	if done == nil && (!g.tried || now-g.triedAt >= int64(g.interval)) {
		done = make(chan struct{})
		g.inflight = done
		g.tried, g.triedAt = true, now
		// The fetch outlives the request that started it: the lookups
		// joining it must not fail because the first one gave up.
		go g.fetch(context.WithoutCancel(ctx), g.etag, done)
	}
	g.mu.Unlock()

	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return PublicKey{}, fmt.Errorf("secretscanning: waiting for GitHub's public keys: %w", ctx.Err())
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if k, ok := g.keys[id]; ok {
		return k, nil // after a failed fetch, the keys fetched before
	}
	if g.lastErr != nil {
		return PublicKey{}, g.lastErr
	}
	return PublicKey{}, ErrUnknownKeyID
}

// fetch fetches the keys, stores the outcome and closes done. etag is the
// ETag of the cached keys, if any.
func (g *GitHubKeys) fetch(ctx context.Context, etag string, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	keys, newETag, err := g.get(ctx, etag)
	cancel()

	g.mu.Lock()
	defer g.mu.Unlock()
	defer close(done)
	g.inflight = nil
	if err != nil {
		g.lastErr = err
		return
	}
	g.lastErr = nil
	g.fetchedAt = g.mono()
	if keys == nil { // 304 Not Modified: the cached keys are current
		return
	}
	m := make(map[string]PublicKey, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	g.keys, g.etag = m, newETag
}

// get fetches and parses the keys document, conditionally if etag is
// set. It returns nil keys, and no error, when the server answers 304 Not
// Modified.
func (g *GitHubKeys) get(ctx context.Context, etag string) ([]PublicKey, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("secretscanning: fetching GitHub's public keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyward-secretscanning")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("secretscanning: fetching GitHub's public keys: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, etag, nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("secretscanning: fetching GitHub's public keys: status %d", resp.StatusCode)
	}
	doc, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysDocument+1))
	if err != nil {
		return nil, "", fmt.Errorf("secretscanning: fetching GitHub's public keys: %w", err)
	}
	if len(doc) > maxKeysDocument {
		return nil, "", errors.New("secretscanning: fetching GitHub's public keys: document over 1 MiB")
	}
	keys, err := ParsePublicKeys(doc)
	if err != nil {
		return nil, "", err
	}
	return keys, resp.Header.Get("ETag"), nil
}
