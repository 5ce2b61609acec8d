package secretscanning_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/secretscanning"
)

// A signer stands in for GitHub: an ECDSA P-256 key and its identifier.
type signer struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{id: id, priv: priv}
}

// public returns the key as GitHub lists it.
func (s signer) public() secretscanning.PublicKey {
	return secretscanning.PublicKey{ID: s.id, Key: &s.priv.PublicKey, Current: true}
}

// sign returns the Github-Public-Key-Signature of body.
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// request returns GitHub's POST of body, signed by s.
func (s signer) request(t testing.TB, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/github/secret-scanning", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(secretscanning.HeaderKeyID, s.id)
	r.Header.Set(secretscanning.HeaderSignature, s.sign(t, []byte(body)))
	return r
}

// A report is one call of ReportExposure.
type report struct {
	Raw      string
	Exposure keyward.Exposure
}

// fakeReporter is the Reporter of the tests: it knows a set of tokens,
// follows keyward's contract (idempotent reports, Known false for the
// rest) and records its calls.
type fakeReporter struct {
	mu      sync.Mutex
	known   map[string]bool  // the tokens that are keys
	fail    map[string]error // tokens whose report fails, with the error
	exposed map[string]bool  // tokens reported so far
	calls   []report
}

func newFakeReporter(known ...string) *fakeReporter {
	f := &fakeReporter{known: map[string]bool{}, fail: map[string]error{}, exposed: map[string]bool{}}
	for _, k := range known {
		f.known[k] = true
	}
	return f
}

func (f *fakeReporter) ReportExposure(ctx context.Context, raw string, e keyward.Exposure) (keyward.ExposureReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, report{raw, e})
	if err := f.fail[raw]; err != nil {
		return keyward.ExposureReport{}, err
	}
	if !f.known[raw] {
		return keyward.ExposureReport{}, nil
	}
	first := !f.exposed[raw]
	f.exposed[raw] = true
	return keyward.ExposureReport{Known: true, First: first}, nil
}

func (f *fakeReporter) reports() []report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]report(nil), f.calls...)
}

// storeDown is what a Reporter returns when its store fails.
var storeDown = &keyward.StoreError{Op: "report exposure", Err: errors.New("connection refused")}

// newHandler returns a handler over r that trusts the signers' keys, and
// the buffer its log goes to.
func newHandler(t testing.TB, r secretscanning.Reporter, signers []signer, opts ...secretscanning.Option) (*secretscanning.Handler, *syncbuf.Buffer) {
	t.Helper()
	keys := make([]secretscanning.PublicKey, len(signers))
	for i, s := range signers {
		keys[i] = s.public()
	}
	logs := new(syncbuf.Buffer)
	opts = append([]secretscanning.Option{
		secretscanning.WithKeySource(secretscanning.StaticKeys(keys...)),
		secretscanning.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}, opts...)
	h, err := secretscanning.NewHandler(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h, logs
}

// serve runs one request through h.
func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// checkProblem checks that rec is a problem+json response of status.
func checkProblem(t testing.TB, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if bytes.Contains(rec.Body.Bytes(), []byte("token_hash")) {
		t.Errorf("an error response carries feedback: %s", rec.Body)
	}
}

// checkNoToken fails if any of the tokens appears in the response or the
// log.
func checkNoToken(t testing.TB, rec *httptest.ResponseRecorder, logs *syncbuf.Buffer, tokens ...string) {
	t.Helper()
	var all strings.Builder
	all.Write(rec.Body.Bytes())
	for name, vs := range rec.Header() {
		all.WriteString(name + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, tok := range tokens {
		if strings.Contains(all.String(), tok) {
			t.Errorf("the response carries the raw token %q", tok)
		}
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log carries the raw token %q", tok)
		}
	}
}
