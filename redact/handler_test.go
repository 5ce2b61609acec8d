package redact_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/redact"
)

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type valuer struct{ v slog.Value }

func (v valuer) LogValue() slog.Value { return v.v }

type config struct{ Key string }

// holder prints its pointer as an address with "%+v"; JSON follows it.
type holder struct{ Cfg *config }

// textKey hides its key from fmt and shows it in MarshalText.
type textKey struct{ key string }

func (k textKey) String() string               { return "textKey" }
func (k textKey) MarshalText() ([]byte, error) { return []byte(k.key), nil }

// textOnlyKey shows its key in MarshalText alone: JSON uses MarshalJSON.
type textOnlyKey struct{ textKey }

func (k textOnlyKey) MarshalJSON() ([]byte, error) { return []byte(`"textOnlyKey"`), nil }

// jsonKey hides its key from fmt and shows it in MarshalJSON.
type jsonKey struct{ key string }

func (k jsonKey) String() string               { return "jsonKey" }
func (k jsonKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.key) }

// detailedError shows its detail with "%+v" only.
type detailedError struct{ detail string }

func (e detailedError) Error() string { return "failed" }

func (e detailedError) Format(s fmt.State, verb rune) {
	io.WriteString(s, "failed")
	if s.Flag('+') {
		io.WriteString(s, ": "+e.detail)
	}
}

// quietError shows its detail in Error alone: fmt uses Format.
type quietError struct{ detail string }

func (e quietError) Error() string                 { return "failed: " + e.detail }
func (e quietError) Format(s fmt.State, verb rune) { io.WriteString(s, "failed") }

// jsonError shows its detail in JSON only.
type jsonError struct{ detail string }

func (e jsonError) Error() string                { return "failed" }
func (e jsonError) MarshalJSON() ([]byte, error) { return json.Marshal(e.detail) }

type token string

type tokenBytes []byte

// TestRedacts logs a key in each place a record can hold one, through the
// JSON and the text handler, and checks that the secret part of the key
// is nowhere in the output, and that the redacted key is. Each case is
// first checked to leak without the wrapper.
func TestRedacts(t *testing.T) {
	f := apikey.Default
	raw := newKey(t, f, apikey.Live)
	rawTest := newKey(t, f, apikey.Test)
	sec, err := f.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse("https://api.example.com/v1/sessions?key=" + raw + "&page=2")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		log  func(*slog.Logger)
		// hidden: the value is replaced by a text without the key, so
		// the redacted key does not appear.
		hidden bool
		// safe: the unwrapped handlers do not leak either.
		safe bool
		// key is the key logged, if not raw.
		key string
	}{
		{name: "message", log: func(l *slog.Logger) { l.Info("verifying " + raw) }},
		{name: "string", log: func(l *slog.Logger) { l.Info("m", "auth", "Bearer "+raw) }},
		{name: "two keys in a string", log: func(l *slog.Logger) { l.Info("m", "keys", raw+","+raw) }},
		{name: "attribute key", log: func(l *slog.Logger) { l.Info("m", raw, 1) }},
		{name: "With", log: func(l *slog.Logger) { l.With("auth", raw).Info("m") }},
		{name: "With key", log: func(l *slog.Logger) { l.With(raw, true).Info("m") }},
		{name: "With group", log: func(l *slog.Logger) { l.With(slog.Group("req", "auth", raw)).Info("m") }},
		{name: "WithGroup name", log: func(l *slog.Logger) { l.WithGroup(raw).Info("m", "n", 1) }},
		{name: "WithGroup attrs", log: func(l *slog.Logger) {
			l.WithGroup("req").With("auth", raw).WithGroup("inner").Info("m", "again", raw)
		}},
		{name: "group", log: func(l *slog.Logger) { l.Info("m", slog.Group("req", "auth", raw)) }},
		{name: "group name", log: func(l *slog.Logger) { l.Info("m", slog.Group(raw, "n", 1)) }},
		{name: "nested groups", log: func(l *slog.Logger) {
			l.Info("m", slog.Group("a", "n", 1, slog.Group("b", slog.Group("c", "auth", raw))))
		}},
		{name: "error", log: func(l *slog.Logger) { l.Info("m", "err", errors.New("bad key "+raw)) }},
		{name: "wrapped error", log: func(l *slog.Logger) {
			l.Info("m", "err", fmt.Errorf("verify: %w", errors.New("bad key "+raw)))
		}},
		{name: "error in group", log: func(l *slog.Logger) {
			l.Info("m", slog.Group("req", slog.Any("err", errors.New("bad key "+raw))))
		}},
		{name: "error shows more with %+v", log: func(l *slog.Logger) { l.Info("m", "err", detailedError{raw}) }, hidden: true},
		{name: "error shows more in Error than with %+v", log: func(l *slog.Logger) { l.Info("m", "err", quietError{raw}) }},
		{name: "error shows more in JSON", log: func(l *slog.Logger) { l.Info("m", "err", jsonError{raw}) }, hidden: true},
		{name: "LogValuer", log: func(l *slog.Logger) { l.Info("m", "v", valuer{slog.StringValue(raw)}) }},
		{name: "LogValuer of a LogValuer", log: func(l *slog.Logger) {
			l.Info("m", "v", valuer{slog.AnyValue(valuer{slog.StringValue(raw)})})
		}},
		{name: "LogValuer of a group", log: func(l *slog.Logger) {
			l.Info("m", "v", valuer{slog.GroupValue(slog.Int("n", 1), slog.String("auth", raw))})
		}},
		{name: "LogValuer of a group of LogValuers", log: func(l *slog.Logger) {
			l.Info("m", "v", valuer{slog.GroupValue(slog.Any("inner", valuer{slog.StringValue(raw)}))})
		}},
		{name: "LogValuer in a group", log: func(l *slog.Logger) {
			l.Info("m", slog.Group("g", "v", valuer{slog.StringValue(raw)}))
		}},
		{name: "LogValuer With", log: func(l *slog.Logger) { l.With("v", valuer{slog.StringValue(raw)}).Info("m") }},
		{name: "LogValuer of an error", log: func(l *slog.Logger) {
			l.Info("m", "v", valuer{slog.AnyValue(errors.New("bad key " + raw))})
		}},
		{name: "Stringer", log: func(l *slog.Logger) { l.Info("m", "s", stringer{"key " + raw}) }},
		{name: "pointer Stringer", log: func(l *slog.Logger) { l.Info("m", "s", &stringer{"key " + raw}) }},
		{name: "http.Header", log: func(l *slog.Logger) {
			l.Info("m", "header", http.Header{"Authorization": {"Bearer " + raw}, "Accept": {"*/*"}})
		}},
		{name: "http.Header key", log: func(l *slog.Logger) { l.Info("m", "header", http.Header{raw: {"x"}}) }},
		{name: "url.Values", log: func(l *slog.Logger) { l.Info("m", "query", url.Values{"key": {raw}}) }},
		{name: "map[string][]string", log: func(l *slog.Logger) {
			l.Info("m", "m", map[string][]string{"key": {"a", raw}})
		}},
		{name: "map[string]string", log: func(l *slog.Logger) { l.Info("m", "m", map[string]string{"key": raw}) }},
		{name: "map[string]any", log: func(l *slog.Logger) { l.Info("m", "m", map[string]any{"key": raw, "n": 1}) }},
		{name: "[]string", log: func(l *slog.Logger) { l.Info("m", "args", []string{"-key", raw}) }},
		{name: "[]any", log: func(l *slog.Logger) { l.Info("m", "args", []any{1, raw}) }},
		{name: "*url.URL", log: func(l *slog.Logger) { l.Info("m", "url", u) }},
		{name: "url.URL", log: func(l *slog.Logger) { l.Info("m", "url", *u) }},
		{name: "URL password", log: func(l *slog.Logger) {
			l.Info("m", "url", &url.URL{Scheme: "https", Host: "h", User: url.UserPassword("u", raw)})
		}},
		{name: "*http.Request", log: func(l *slog.Logger) {
			req := httptest.NewRequest("GET", "/v1/sessions", nil)
			req.Header.Set("Authorization", "Bearer "+raw)
			l.Info("m", "req", req)
		}},
		{name: "struct", log: func(l *slog.Logger) { l.Info("m", "cfg", config{raw}) }},
		{name: "pointer to struct", log: func(l *slog.Logger) { l.Info("m", "cfg", &config{raw}) }},
		{name: "pointer in struct", log: func(l *slog.Logger) { l.Info("m", "h", holder{&config{raw}}) }, hidden: true},
		{name: "pointer in map", log: func(l *slog.Logger) { l.Info("m", "m", map[string]*config{"c": {raw}}) }, hidden: true},
		{name: "JSON escape before key", log: func(l *slog.Logger) {
			l.Info("m", "h", holder{&config{"line\n" + raw}})
		}, hidden: true},
		{name: "[]byte", log: func(l *slog.Logger) { l.Info("m", "body", []byte("Bearer "+raw)) }},
		{name: "named []byte", log: func(l *slog.Logger) { l.Info("m", "body", tokenBytes(raw)) }},
		{name: "json.RawMessage", log: func(l *slog.Logger) {
			l.Info("m", "body", json.RawMessage(`{"key":"`+raw+`"}`))
		}},
		{name: "json.RawMessage not JSON", log: func(l *slog.Logger) {
			l.Info("m", "body", json.RawMessage("key="+raw))
		}},
		{name: "named string", log: func(l *slog.Logger) { l.Info("m", "t", token(raw)) }},
		{name: "TextMarshaler", log: func(l *slog.Logger) { l.Info("m", "k", textKey{raw}) }},
		{name: "TextMarshaler alone", log: func(l *slog.Logger) { l.Info("m", "k", textOnlyKey{textKey{raw}}) }},
		{name: "json.Marshaler", log: func(l *slog.Logger) { l.Info("m", "k", jsonKey{raw}) }, hidden: true},
		{name: "test mode", log: func(l *slog.Logger) { l.Info("m", "auth", "Bearer "+rawTest) }, key: rawTest},
		{name: "Secret", log: func(l *slog.Logger) { l.Info("m", "key", sec) }, hidden: true, safe: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := raw
			if tt.key != "" {
				key = tt.key
			}
			secret, want := secretOf(f, key), redactedOf(f, key)
			if !tt.safe {
				leaked := false
				for _, h := range handlers {
					leaked = leaked || strings.Contains(output(h.new, unwrapped, tt.log), secret)
				}
				if !leaked {
					t.Fatal("the case does not leak without the wrapper: it tests nothing")
				}
			}
			for _, h := range handlers {
				out := output(h.new, func(next slog.Handler) slog.Handler { return redact.NewHandler(next) }, tt.log)
				checkNoSecret(t, out, secret, secretOf(f, sec.Reveal()))
				if !tt.hidden && !strings.Contains(out, want) {
					t.Errorf("%s: output does not show %q:\n%s", h.name, want, out)
				}
				if h.name == "json" && !json.Valid([]byte(out)) {
					t.Errorf("invalid JSON:\n%s", out)
				}
			}
		})
	}
}

// TestRedactsEagerly checks that mistyped, truncated and over-long keys
// are redacted, as Format.Redact does.
func TestRedactsEagerly(t *testing.T) {
	raw := newKey(t, apikey.Default, apikey.Live)
	for _, s := range []string{raw[:len(raw)-3], raw + "ABC", raw[:20] + "!" + raw[21:]} {
		for _, h := range handlers {
			out := output(h.new, func(next slog.Handler) slog.Handler { return redact.NewHandler(next) },
				func(l *slog.Logger) { l.Info("m", "auth", s) })
			checkNoSecret(t, out, s[len("ck_live_")+apikey.DisplayLen:20])
			if !strings.Contains(out, s[:len("ck_live_")+apikey.DisplayLen]+apikey.Redacted) {
				t.Errorf("%s: %q not redacted:\n%s", h.name, s, out)
			}
		}
	}
}

// TestFormats checks a handler redacting keys of several formats, one of
// them checksummed, and that a handler leaves keys of other formats alone.
func TestFormats(t *testing.T) {
	acme, err := apikey.NewFormat("acme")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := apikey.NewFormat("sum", apikey.WithChecksum())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[apikey.Format]string{
		apikey.Default: newKey(t, apikey.Default, apikey.Live),
		acme:           newKey(t, acme, apikey.Test),
		sum:            newKey(t, sum, apikey.Live),
	}
	if got := len(keys[sum]); got != sum.KeyLen() || !sum.Checksummed() {
		t.Fatalf("checksummed key of %d characters", got)
	}
	log := func(l *slog.Logger) {
		for _, raw := range keys {
			l.Info("key "+raw, "auth", "Bearer "+raw, "header", http.Header{"X-Key": {raw}}, "err", errors.New(raw))
		}
	}
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			out := output(h.new, func(next slog.Handler) slog.Handler {
				return redact.NewHandler(next, apikey.Default, acme, sum)
			}, log)
			for f, raw := range keys {
				checkNoSecret(t, out, secretOf(f, raw))
				if got, want := strings.Count(out, redactedOf(f, raw)), 4; got != want {
					t.Errorf("%s key redacted %d times, want %d:\n%s", f.Product(), got, want, out)
				}
			}

			// A handler of the default format leaves the others alone.
			out = output(h.new, func(next slog.Handler) slog.Handler { return redact.NewHandler(next) }, log)
			checkNoSecret(t, out, secretOf(apikey.Default, keys[apikey.Default]))
			if !strings.Contains(out, keys[acme]) || !strings.Contains(out, keys[sum]) {
				t.Errorf("keys of other formats changed:\n%s", out)
			}
		})
	}
}
