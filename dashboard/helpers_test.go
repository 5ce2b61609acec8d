package dashboard_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/store/memory"
)

// newKeys returns a lifecycle on an empty memory store, closed when the
// test ends.
func newKeys(t *testing.T, opts ...keyward.Option) *keyward.Keys {
	t.Helper()
	opts = append([]keyward.Option{keyward.WithLogger(testLogger(t)), keyward.WithFlushInterval(time.Hour)}, opts...)
	keys, err := keyward.New(memory.New(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	return keys
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatalf("%q is not a key ID: %v", s, err)
	}
	return id
}

// An httptestResponse is what a test keeps of a response.
type httptestResponse struct {
	code   int
	header http.Header
	body   string
}

func record(w *httptest.ResponseRecorder) *httptestResponse {
	return &httptestResponse{code: w.Code, header: w.Header(), body: w.Body.String()}
}

// decodeBody decodes a kept response's body into a value of type T.
func decodeBody[T any](t *testing.T, r *httptestResponse) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return v
}
