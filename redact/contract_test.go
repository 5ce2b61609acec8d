package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/slogtest"
	"time"
	"weak"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/syncbuf"
	"github.com/keyward/keyward/redact"
)

// TestSlogtest checks that the wrapper keeps the handler contract, around
// the JSON handler, with slog's own conformance suite.
func TestSlogtest(t *testing.T) {
	acme, err := apikey.NewFormat("acme")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return redact.NewHandler(slog.NewJSONHandler(&buf, nil), apikey.Default, acme)
	}, func(t *testing.T) map[string]any {
		m := map[string]any{}
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, buf.Bytes())
		}
		return m
	})
}

// TestTestHandler runs slogtest.TestHandler, which logs every case
// through one handler.
func TestTestHandler(t *testing.T) {
	var buf bytes.Buffer
	h := redact.NewHandler(slog.NewJSONHandler(&buf, nil))
	results := func() []map[string]any {
		var ms []map[string]any
		for line := range bytes.Lines(buf.Bytes()) {
			m := map[string]any{}
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}

// TestRecordNotModified checks that the record a handler is given, shared
// by value with other handlers, still holds what it held, and that a
// handler after the wrapper in a MultiHandler sees the original values.
func TestRecordNotModified(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	var pcs [1]uintptr
	runtime.Callers(1, pcs[:])
	now := time.Now()
	r := slog.NewRecord(now, slog.LevelWarn, "msg "+raw, pcs[0])
	// More attributes than a Record holds inline, so that some live in
	// the slice that copies of the record share.
	for i := range 8 {
		r.AddAttrs(slog.String(fmt.Sprint("k", i), raw))
	}
	before := attrs(r)

	inner := newRecorder()
	h := redact.NewHandler(inner)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got := attrs(r); !reflect.DeepEqual(got, before) || r.Message != "msg "+raw {
		t.Errorf("record changed:\n%v\nwant\n%v", got, before)
	}
	got := inner.last(t)
	if !got.Time.Equal(now) || got.Level != slog.LevelWarn || got.PC != pcs[0] {
		t.Errorf("time, level or PC changed: %v %v %v", got.Time, got.Level, got.PC)
	}
	if got.Message != "msg "+redactedOf(apikey.Default, raw) {
		t.Errorf("message %q", got.Message)
	}
	if got.NumAttrs() != 8 {
		t.Errorf("got %d attributes, want 8", got.NumAttrs())
	}
	for _, a := range attrs(got) {
		if a.Value.String() != redactedOf(apikey.Default, raw) {
			t.Errorf("%s = %q", a.Key, a.Value)
		}
	}
	// Adding to the original after Handle does not reach the record
	// handed on, nor the other way round.
	r.AddAttrs(slog.String("late", "x"))
	if got := inner.last(t); got.NumAttrs() != 8 {
		t.Errorf("record handed on changed: %d attributes", got.NumAttrs())
	}

	// Before and after another handler, given the same record by value.
	rawSeen := newRecorder()
	redacted := newRecorder()
	for _, multi := range []slog.Handler{
		tee{redact.NewHandler(redacted), rawSeen},
		tee{rawSeen, redact.NewHandler(redacted)},
	} {
		slog.New(multi).Info("m", "k1", raw, "k2", raw, "k3", raw, "k4", raw, "k5", raw, "k6", raw, "k7", raw)
		for _, a := range attrs(rawSeen.last(t)) {
			if a.Value.String() != raw {
				t.Errorf("other handler sees %s = %q, want the raw key", a.Key, a.Value)
			}
		}
		for _, a := range attrs(redacted.last(t)) {
			if a.Value.String() != redactedOf(apikey.Default, raw) {
				t.Errorf("wrapped handler sees %s = %q", a.Key, a.Value)
			}
		}
	}
}

// tee hands each record to both its handlers, by value and without
// cloning it: a handler that modified its record would show in the other.
type tee [2]slog.Handler

func (t tee) Enabled(context.Context, slog.Level) bool { return true }

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	return errors.Join(t[0].Handle(ctx, r), t[1].Handle(ctx, r))
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{t[0].WithAttrs(slices.Clone(as)), t[1].WithAttrs(slices.Clone(as))}
}

func (t tee) WithGroup(name string) slog.Handler {
	return tee{t[0].WithGroup(name), t[1].WithGroup(name)}
}

// counter counts its LogValue calls.
type counter struct {
	n   *atomic.Int64
	raw string
}

func (c counter) LogValue() slog.Value {
	c.n.Add(1)
	return slog.StringValue(c.raw)
}

// TestWithAttrsOnce checks that attributes added with With are resolved
// and redacted once, when added, and reach the next handler redacted.
func TestWithAttrsOnce(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	n := new(atomic.Int64)
	var buf bytes.Buffer
	l := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, nil))).With("v", counter{n, raw})
	for range 3 {
		l.Info("m")
	}
	if got := n.Load(); got != 1 {
		t.Errorf("LogValue called %d times, want 1", got)
	}
	checkNoSecret(t, buf.String(), secretOf(apikey.Default, raw))
	if got := strings.Count(buf.String(), redactedOf(apikey.Default, raw)); got != 3 {
		t.Errorf("redacted key written %d times, want 3:\n%s", got, buf.String())
	}

	// What the next handler receives.
	rec := newRecorder()
	as := []slog.Attr{slog.String("clean", "x"), slog.String("auth", raw), slog.Any("v", counter{n, raw})}
	orig := append([]slog.Attr(nil), as...)
	redact.NewHandler(rec).WithAttrs(as)
	want := []slog.Attr{
		slog.String("clean", "x"),
		slog.String("auth", redactedOf(apikey.Default, raw)),
		slog.String("v", redactedOf(apikey.Default, raw)),
	}
	if !attrsEqual(*rec.with, want) {
		t.Errorf("next.WithAttrs got %v, want %v", *rec.with, want)
	}
	if !attrsEqual(as, orig) {
		t.Errorf("WithAttrs changed the caller's slice: %v", as)
	}

	// Nothing to add: the same handler.
	h := redact.NewHandler(rec)
	if h.WithAttrs(nil) != h || h.WithGroup("") != h {
		t.Error("WithAttrs(nil) or WithGroup(\"\") returned a new handler")
	}
}

func attrsEqual(a, b []slog.Attr) bool {
	return slices.EqualFunc(a, b, slog.Attr.Equal)
}

// keyError is an error holding a key, allocated on its own so that a weak
// pointer can tell when it is unreachable.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// TestErrorReplaced checks that an error holding a key reaches the next
// handler as its redacted text, and is no longer reachable from the
// records that handler keeps.
func TestErrorReplaced(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	rec := newRecorder()
	l := slog.New(redact.NewHandler(rec))

	e := &keyError{"verify: bad key " + raw}
	wp := weak.Make(e)
	l.Info("m", "err", e, slog.Group("g", "err", e))
	e = nil

	r := rec.last(t)
	as := attrs(r)
	if v := as[0].Value; v.Kind() != slog.KindString || v.String() != "verify: bad key "+redactedOf(apikey.Default, raw) {
		t.Errorf("err = %v (%v), want the redacted text", v, v.Kind())
	}
	if v := as[1].Value.Group()[0].Value; v.Kind() != slog.KindString {
		t.Errorf("err in group = %v (%v), want a string", v, v.Kind())
	}
	runtime.GC()
	runtime.GC()
	if wp.Value() != nil {
		t.Error("the error is still reachable")
	}
	runtime.KeepAlive(rec)
}

// TestCleanValuesUnchanged checks that values with nothing to redact
// reach the next handler as they were, and LogValuers resolved.
func TestCleanValuesUnchanged(t *testing.T) {
	rec := newRecorder()
	l := slog.New(redact.NewHandler(rec))
	header := http.Header{"Accept": {"*/*"}}
	m := map[string]string{"a": "b"}
	err := errors.New("not found")
	cfg := &config{"none"}
	u := &url.URL{Scheme: "https", Host: "h", RawQuery: "key=ck_live_abc123"}
	l.Info("m", "header", header, "map", m, "err", err, "cfg", cfg, "v", valuer{slog.IntValue(7)},
		"display", "ck_live_abc123", // a display prefix is not a key
		"url", u)
	as := attrs(rec.last(t))
	if got := as[0].Value.Any().(http.Header); reflect.ValueOf(got).Pointer() != reflect.ValueOf(header).Pointer() {
		t.Error("clean header replaced")
	}
	if got := as[1].Value.Any().(map[string]string); reflect.ValueOf(got).Pointer() != reflect.ValueOf(m).Pointer() {
		t.Error("clean map replaced")
	}
	if got := as[2].Value.Any(); got != err {
		t.Errorf("clean error replaced by %v", got)
	}
	if got := as[3].Value.Any(); got != cfg {
		t.Errorf("clean struct replaced by %v", got)
	}
	if got := as[4].Value; got.Kind() != slog.KindInt64 || got.Int64() != 7 {
		t.Errorf("LogValuer = %v (%v), want 7 resolved", got, got.Kind())
	}
	if got := as[5].Value.String(); got != "ck_live_abc123" {
		t.Errorf("display prefix = %q", got)
	}
	if got := as[6].Value.Any(); got != u {
		t.Errorf("clean URL replaced by %v", got)
	}
}

// TestRedactedHeaderKeepsType checks that an http.Header holding a key is
// replaced by a redacted copy, and the caller's header is left alone.
func TestRedactedHeaderKeepsType(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	rec := newRecorder()
	h := http.Header{"Authorization": {"Bearer " + raw}, "Accept": {"*/*"}}
	slog.New(redact.NewHandler(rec)).Info("m", "header", h)
	got, ok := attrs(rec.last(t))[0].Value.Any().(http.Header)
	if !ok {
		t.Fatalf("header replaced by %T", attrs(rec.last(t))[0].Value.Any())
	}
	want := http.Header{"Authorization": {"Bearer " + redactedOf(apikey.Default, raw)}, "Accept": {"*/*"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if h.Get("Authorization") != "Bearer "+raw {
		t.Error("the caller's header changed")
	}
}

// TestZeroAttrAndEmptyGroup checks that the zero Attr and empty groups
// stay ignored, as the handler rules ask, once keys around them are
// redacted.
func TestZeroAttrAndEmptyGroup(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	var buf bytes.Buffer
	l := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})))
	l.With(slog.Attr{}, slog.Group("empty")).Info("m", slog.Attr{}, "auth", raw, slog.Group("empty"),
		slog.Group("g", slog.Attr{}, slog.Group("none")), "v", valuer{slog.GroupValue()})
	want := `{"level":"INFO","msg":"m","auth":"` + redactedOf(apikey.Default, raw) + `"}` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestEnabled checks that Enabled asks the next handler, and that records
// it refuses do not reach it.
func TestEnabled(t *testing.T) {
	rec := newRecorder()
	rec.level = slog.LevelWarn
	h := redact.NewHandler(rec)
	ctx := context.Background()
	if h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelWarn) {
		t.Error("Enabled does not follow the next handler")
	}
	slog.New(h).Info("m")
	if len(*rec.records) != 0 {
		t.Error("a disabled record was handled")
	}
}

// nilStringer panics in String on a nil pointer, as careless types do.
type nilStringer struct{ s string }

func (p *nilStringer) String() string { return p.s }

type nilError struct{ s string }

func (p *nilError) Error() string { return p.s }

type nilText struct{ s string }

func (p *nilText) MarshalText() ([]byte, error) { return []byte(p.s), nil }

// selfGroup resolves to a group holding itself, endlessly.
type selfGroup struct{}

func (s selfGroup) LogValue() slog.Value { return slog.GroupValue(slog.Any("self", s)) }

// TestAwkwardValues checks that values whose methods panic on nil, and a
// LogValuer that never ends, are logged without a panic.
func TestAwkwardValues(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(redact.NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})))
	l.Info("m", "s", (*nilStringer)(nil), "e", (*nilError)(nil), "t", (*nilText)(nil))
	if got, want := buf.String(), "level=INFO msg=m s=<nil> e=<nil> t=<nil>\n"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	buf.Reset()
	l.Info("m", "v", selfGroup{})
	if !strings.Contains(buf.String(), "nested too deep") {
		t.Errorf("got %q", buf.String())
	}
}

// TestNewHandlerPanics checks that a handler that would redact nothing is
// refused.
func TestNewHandlerPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil handler": func() { redact.NewHandler(nil) },
		"zero format": func() { redact.NewHandler(slog.DiscardHandler, apikey.Default, apikey.Format{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// TestConcurrent logs keys from many goroutines through loggers sharing
// one wrapped handler; run with -race.
func TestConcurrent(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	var buf syncbuf.Buffer
	base := slog.New(redact.NewHandler(slog.NewJSONHandler(&buf, nil))).With("auth", raw)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			l := base.WithGroup(fmt.Sprint("g", g)).With("n", g)
			for i := range 50 {
				l.Info("m "+raw, "i", i, "header", http.Header{"Authorization": {raw}},
					"cfg", &config{raw}, "err", errors.New(raw))
			}
		})
	}
	wg.Wait()
	out := buf.String()
	checkNoSecret(t, out, secretOf(apikey.Default, raw))
	if got := strings.Count(out, "\n"); got != 400 {
		t.Errorf("%d lines, want 400", got)
	}
}

// discard is a handler that does nothing, to measure the wrapper alone.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return true }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

type port int

// TestCleanRecordDoesNotAllocate checks that a record with nothing to
// redact, of the value types the package promises, is checked without
// allocating.
func TestCleanRecordDoesNotAllocate(t *testing.T) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request served", 0)
	r.AddAttrs(
		slog.String("method", "GET"),
		slog.String("path", "/v1/sessions"),
		slog.Int("status", 200),
		slog.Duration("duration", time.Millisecond),
		slog.String("key", "ck_live_abc123"),
		slog.Any("err", errors.New("not found")),
		slog.Any("header", http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8.5.0"}}),
		slog.Any("query", map[string]string{"page": "2"}),
		slog.Any("args", []string{"a", "b"}),
		slog.Any("body", []byte("{}")),
		slog.Any("port", port(8080)),
		slog.Any("url", &url.URL{Scheme: "https", Host: "api.example.com", Path: "/v1/sessions", RawQuery: "page=2"}),
		slog.Group("g", slog.Bool("ok", true), slog.Time("at", time.Now())),
	)
	h := redact.NewHandler(discard{})
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { h.Handle(ctx, r) }); n != 0 {
		t.Errorf("%v allocations per clean record, want 0", n)
	}
}
