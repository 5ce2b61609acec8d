package apikey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

// leaks fails if out contains the raw key or its random part.
func leaks(t *testing.T, what, out string, sec apikey.Secret) {
	t.Helper()
	raw := sec.Reveal()
	if raw == "" {
		t.Fatal("empty secret")
	}
	if strings.Contains(out, raw) || strings.Contains(out, raw[len(sec.DisplayPrefix()):]) {
		t.Errorf("%s reveals the key: %s", what, out)
	}
}

func newSecret(t *testing.T) apikey.Secret {
	t.Helper()
	sec, err := apikey.Generate(apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestSecretNeverPrints(t *testing.T) {
	sec := newSecret(t)
	type exported struct{ Key apikey.Secret }
	type unexported struct{ key apikey.Secret }
	values := map[string]any{
		"secret":                        sec,
		"pointer to secret":             &sec,
		"struct with exported field":    exported{sec},
		"struct with unexported field":  unexported{sec},
		"pointer to struct":             &exported{sec},
		"slice":                         []apikey.Secret{sec},
		"map":                           map[string]apikey.Secret{"k": sec},
		"pointer to unexported wrapper": &unexported{sec},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3s"}
	for name, v := range values {
		for _, verb := range verbs {
			leaks(t, name+" printed with "+verb, fmt.Sprintf(verb, v), sec)
		}
		leaks(t, name+" printed with Sprint", fmt.Sprint(v), sec)
		leaks(t, name+" printed with Sprintln", fmt.Sprintln(v), sec)
	}
	if got, want := sec.String(), sec.DisplayPrefix()+apikey.Redacted; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := fmt.Sprintf("%v", apikey.Secret{}); got != apikey.Redacted {
		t.Errorf("the zero Secret prints %q", got)
	}
}

func TestSecretNeverLogs(t *testing.T) {
	sec := newSecret(t)
	var buf bytes.Buffer
	handlers := map[string]slog.Handler{
		"json": slog.NewJSONHandler(&buf, nil),
		"text": slog.NewTextHandler(&buf, nil),
	}
	for name, h := range handlers {
		buf.Reset()
		logger := slog.New(h)
		logger.Info("created", "key", sec)
		logger.Info("created", slog.Any("key", sec), slog.Group("g", "key", sec))
		logger.With("key", sec).Info("with")
		logger.Info("struct", "value", struct{ Key apikey.Secret }{sec})
		logger.Info("pointer", "key", &sec)
		leaks(t, "slog "+name+" handler", buf.String(), sec)
		if !strings.Contains(buf.String(), sec.DisplayPrefix()) {
			t.Errorf("slog %s output lacks the display prefix: %s", name, buf.String())
		}
	}
	buf.Reset()
	l := log.New(&buf, "", 0)
	l.Printf("key %v %s", sec, sec)
	l.Print(sec)
	leaks(t, "log package", buf.String(), sec)
}

func TestSecretNeverMarshals(t *testing.T) {
	sec := newSecret(t)
	for name, v := range map[string]any{
		"secret":  sec,
		"struct":  struct{ Key apikey.Secret }{sec},
		"pointer": &sec,
	} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		leaks(t, "JSON of "+name, string(out), sec)
	}
	text, _ := sec.MarshalText()
	leaks(t, "MarshalText", string(text), sec)
}

func TestSecretNeverInErrorsOrPanics(t *testing.T) {
	sec := newSecret(t)
	err := fmt.Errorf("creating key %v: %w", sec, errors.New("boom"))
	leaks(t, "error text", err.Error(), sec)
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		panic(sec)
	}()
	leaks(t, "panic value", msg, sec)
}

func TestRecordHoldsNoRawKey(t *testing.T) {
	sec := newSecret(t)
	rec := apikey.Record{
		ID:        uuid.New(),
		Name:      "Production server",
		Prefix:    sec.DisplayPrefix(),
		Mode:      sec.Mode(),
		Scopes:    scope.NewSet(scope.SessionsWrite),
		Hash:      sec.Hash(),
		CreatedAt: time.Now(),
	}
	out, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	leaks(t, "record JSON", string(out), sec)
	if strings.Contains(string(out), rec.Hash.String()) {
		t.Errorf("record JSON carries the hash: %s", out)
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		leaks(t, "record "+verb, fmt.Sprintf(verb, rec), sec)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("key", "record", rec)
	leaks(t, "record slog", buf.String(), sec)
	if strings.Contains(buf.String(), rec.Hash.String()) {
		t.Errorf("record slog carries the hash: %s", buf.String())
	}
}
