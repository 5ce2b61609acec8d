package outage

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/syncbuf"
)

func TestLog(t *testing.T) {
	var now time.Duration
	buf := new(syncbuf.Buffer)
	o := &Log{
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})),
		Now:  func() time.Duration { return now },
		Down: "down", Still: "still", Up: "up",
		Attrs: []any{"while", "testing"},
	}
	o.OK() // answering: nothing to say
	boom := errors.New("boom")
	for range 100 { // one outage: one line, however many failures
		o.Failed(boom, "extra", 1)
	}
	now += Every - 1
	o.Failed(boom)
	now += 1
	o.Failed(boom) // a reminder, with the count
	now += time.Second
	o.OK()
	o.OK()
	want := []string{
		`level=ERROR msg=down while=testing err=boom extra=1`,
		`level=WARN msg=still while=testing failures=102 for=10s err=boom`,
		`level=INFO msg=up while=testing failures=102 after=11s`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
