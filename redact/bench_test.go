package redact_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/redact"
)

// BenchmarkHandle measures one record through slog's JSON handler writing
// to io.Discard, alone (handler=json) and wrapped (handler=redact), for
// each kind of line:
//
//	clean       a request log line of 6 attributes, nothing to redact
//	key         the same line with a key in the path's query
//	header      the clean line with an http.Header of 4 headers
//	header-key  the same with a key in its Authorization header
//
// Compare the two handlers with
//
//	go test ./redact -run '^$' -bench Handle -count 6 > bench.txt
//	benchstat -col /handler bench.txt
func BenchmarkHandle(b *testing.B) {
	raw := newKey(b, apikey.Default, apikey.Live)
	line := func(path string, extra ...slog.Attr) slog.Record {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "request served", 0)
		r.AddAttrs(
			slog.String("method", "GET"),
			slog.String("path", path),
			slog.Int("status", 200),
			slog.Duration("duration", 1234*time.Microsecond),
			slog.String("remote", "203.0.113.7:51234"),
			slog.String("key", "ck_live_4eC39H"), // a display prefix, as keyward logs them
		)
		r.AddAttrs(extra...)
		return r
	}
	header := func(auth string) slog.Attr {
		return slog.Any("header", http.Header{
			"Accept":        {"application/json"},
			"User-Agent":    {"checkout-go/1.4.2"},
			"X-Request-Id":  {"req_8f14e45fceea167a"},
			"Authorization": {auth},
		})
	}
	lines := []struct {
		name string
		r    slog.Record
	}{
		{"clean", line("/v1/sessions?page=2")},
		{"key", line("/v1/sessions?page=2&key=" + raw)},
		{"header", line("/v1/sessions?page=2", header("Bearer ck_live_4eC39H"))},
		{"header-key", line("/v1/sessions?page=2", header("Bearer "+raw))},
	}
	handlers := []struct {
		name string
		h    slog.Handler
	}{
		{"json", slog.NewJSONHandler(io.Discard, nil)},
		{"redact", redact.NewHandler(slog.NewJSONHandler(io.Discard, nil))},
	}
	ctx := context.Background()
	for _, l := range lines {
		for _, h := range handlers {
			b.Run("line="+l.name+"/handler="+h.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := h.h.Handle(ctx, l.r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
