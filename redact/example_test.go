package redact_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/redact"
)

func ExampleNewHandler() {
	// The text handler, without the time, so that the output is the same
	// on every run.
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	logger := slog.New(redact.NewHandler(text))

	// A key that ends up where it should not: in a header, an error, a URL.
	const key = "ck_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh"
	header := http.Header{"Authorization": {"Bearer " + key}}
	err := fmt.Errorf("verify: %w", errors.New("unknown key "+key))

	logger.With("client", "10.0.0.7").Warn("request refused",
		"header", header, "err", err, "url", "/v1/sessions?key="+key)
	// Output:
	// level=WARN msg="request refused" client=10.0.0.7 header="map[Authorization:[Bearer ck_live_4eC39H[REDACTED]]]" err="verify: unknown key ck_live_4eC39H[REDACTED]" url="/v1/sessions?key=ck_live_4eC39H[REDACTED]"
}

func ExampleNewHandler_formats() {
	acme, err := apikey.NewFormat("acme")
	if err != nil {
		panic(err)
	}
	// Keys of both products are redacted; the display prefix stays.
	logger := slog.New(redact.NewHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}), apikey.Default, acme))
	logger.Info("keys", "checkout", "ck_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh",
		"acme", map[string]string{"key": "acme_live_9fQ1lX0bZrPq7TmN2cVd8sKe4wHyJuAo"})
	// Output:
	// {"level":"INFO","msg":"keys","checkout":"ck_test_4eC39H[REDACTED]","acme":{"key":"acme_live_9fQ1lX[REDACTED]"}}
}
