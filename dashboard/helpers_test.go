package dashboard_test

import (
	"bytes"
	"log/slog"
	"sync"
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

// logBuffer is a concurrency-safe log destination, to read what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatalf("%q is not a key ID: %v", s, err)
	}
	return id
}
