package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keywardotel"
	"github.com/keyward/keyward/store"
)

// telemetry is the example's metrics: keyward's, through OpenTelemetry,
// exported in the Prometheus text format at GET /metrics.
type telemetry struct {
	obs     *keywardotel.Observer
	meters  *sdkmetric.MeterProvider
	handler http.Handler // serves the metrics to a Prometheus scrape
	stats   metric.Registration
}

// newTelemetry returns the metrics of one server: an OpenTelemetry meter
// provider whose reader is the Prometheus exporter, and keyward's adapter
// on it. Each server has its own Prometheus registry, so that several
// servers in one process (as in the tests) do not collide.
func newTelemetry() (*telemetry, error) {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := keywardotel.New(keywardotel.WithMeterProvider(meters))
	if err != nil {
		return nil, errors.Join(err, meters.Shutdown(context.Background()))
	}
	return &telemetry{
		obs:     obs,
		meters:  meters,
		handler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
	}, nil
}

// newKeys returns the lifecycle over st with the adapter attached: spans
// and error counts around the store's calls, the observer of
// verifications and refusals, and the gauges of pending uses.
func (tel *telemetry) newKeys(st store.Store, opts ...keyward.Option) (*keyward.Keys, error) {
	keys, err := keyward.New(tel.obs.WrapStore(st), append(opts, keyward.WithObserver(tel.obs))...)
	if err != nil {
		return nil, err
	}
	tel.stats, err = tel.obs.RegisterKeys(keys)
	if err != nil {
		return nil, errors.Join(err, keys.Close())
	}
	return keys, nil
}

// close stops the gauges and the meter provider.
func (tel *telemetry) close() error {
	var err error
	if tel.stats != nil {
		err = tel.stats.Unregister()
	}
	return errors.Join(err, tel.meters.Shutdown(context.Background()))
}

// withMetrics serves GET /metrics from tel, and everything else from h.
// Like /healthz, /metrics needs no key: it holds counts, never a key nor
// an owner; behind a public address, serve it on an internal port.
func withMetrics(h http.Handler, tel *telemetry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.handler)
	mux.Handle("/", h)
	return mux
}
