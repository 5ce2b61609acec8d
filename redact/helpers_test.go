package redact_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/apikey"
)

// newKey returns a new raw key of format f and mode m.
func newKey(t testing.TB, f apikey.Format, m apikey.Mode) string {
	t.Helper()
	sec, err := f.Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}

// secretOf returns the part of raw, a key of format f, that must never be
// logged: all but its display prefix.
func secretOf(f apikey.Format, raw string) string {
	return raw[len(f.ModePrefix(apikey.Live))+apikey.DisplayLen:]
}

// redactedOf returns what raw, a key of format f, is logged as.
func redactedOf(f apikey.Format, raw string) string {
	return raw[:len(f.ModePrefix(apikey.Live))+apikey.DisplayLen] + apikey.Redacted
}

// noTime removes the time from the output of the standard handlers.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// output runs log against a logger writing to a handler made by
// newHandler, wrapped by wrap, and returns what was written.
func output(newHandler func(*bytes.Buffer) slog.Handler, wrap func(slog.Handler) slog.Handler, log func(*slog.Logger)) string {
	var buf bytes.Buffer
	log(slog.New(wrap(newHandler(&buf))))
	return buf.String()
}

func jsonHandler(buf *bytes.Buffer) slog.Handler {
	return slog.NewJSONHandler(buf, &slog.HandlerOptions{ReplaceAttr: noTime})
}

func textHandler(buf *bytes.Buffer) slog.Handler {
	return slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: noTime})
}

// handlers are the standard handlers the tests write through.
var handlers = []struct {
	name string
	new  func(*bytes.Buffer) slog.Handler
}{
	{"json", jsonHandler},
	{"text", textHandler},
}

func unwrapped(h slog.Handler) slog.Handler { return h }

// checkNoSecret fails t if out contains a secret of secrets.
func checkNoSecret(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output reveals the secret %q:\n%s", s, out)
		}
	}
}

// A recorder is a handler that keeps what it is given: records, and the
// attributes and groups of WithAttrs and WithGroup, in order.
type recorder struct {
	mu      *sync.Mutex
	records *[]slog.Record
	with    *[]slog.Attr // WithAttrs calls, all handlers derived
	groups  []string
	level   slog.Level
}

func newRecorder() *recorder {
	return &recorder{mu: new(sync.Mutex), records: new([]slog.Record), with: new([]slog.Attr)}
}

func (h *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r.Clone())
	return nil
}

func (h *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.with = append(*h.with, as...)
	return h
}

func (h *recorder) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

// last returns the last record handled.
func (h *recorder) last(t *testing.T) slog.Record {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(*h.records) == 0 {
		t.Fatal("no record handled")
	}
	return (*h.records)[len(*h.records)-1]
}

// attrs returns the attributes of r.
func attrs(r slog.Record) []slog.Attr {
	var as []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		as = append(as, a)
		return true
	})
	return as
}
