package keywardotel_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardotel"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// Attach the adapter to a lifecycle: the observer, the lifecycle's gauges
// and spans around the store's calls. A reader of the meter provider, here
// a manual one, collects the metrics; in a server, an exporter does, such
// as go.opentelemetry.io/otel/exporters/prometheus on each scrape.
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer meters.Shutdown(context.Background())

	obs, err := keywardotel.New(keywardotel.WithMeterProvider(meters))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := keyward.New(obs.WrapStore(memory.New()), keyward.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	stats, err := obs.RegisterKeys(keys)
	if err != nil {
		log.Fatal(err)
	}
	defer stats.Unregister()

	ctx := context.Background()
	sec, rec, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Reporting", Mode: apikey.Test, Scopes: scope.NewSet(scope.SessionsRead),
	})
	if err != nil {
		log.Fatal(err)
	}
	keys.Verify(ctx, sec.Reveal())
	keys.Verify(ctx, sec.Reveal())
	keys.Verify(ctx, "ck_test_not_a_key")
	// The middleware counts a refusal of a verified key, such as a
	// missing scope; so may an application that checks keys itself.
	keys.CountRefusal(ctx, rec.ID, keyward.OutcomeInsufficientScope)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && (m.Name == keywardotel.MetricVerifications || m.Name == keywardotel.MetricRefusals) {
			for _, p := range sum.DataPoints {
				if outcome, _ := p.Attributes.Value(keywardotel.AttrOutcome); p.Value > 0 {
					fmt.Printf("%s{%s} %d\n", m.Name, outcome.AsString(), p.Value)
				}
			}
		}
	}
	// Unordered output:
	// keyward.verifications{ok} 2
	// keyward.verifications{malformed} 1
	// keyward.refusals{insufficient_scope} 1
}

// Spans around store calls: a call that reaches the store has its span, a
// child of the request's; a verification the memory store answers from
// memory has none.
func ExampleObserver_WrapStore() {
	spans := tracetest.NewSpanRecorder()
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tracers.Shutdown(context.Background())

	obs, err := keywardotel.New(keywardotel.WithTracerProvider(tracers))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := keyward.New(obs.WrapStore(memory.New()), keyward.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	ctx, request := tracers.Tracer("checkout").Start(context.Background(), "POST /api/v1/keys")
	sec, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Reporting", Mode: apikey.Test, Scopes: scope.NewSet(scope.SessionsRead),
	})
	if err != nil {
		log.Fatal(err)
	}
	request.End()
	keys.Verify(context.Background(), sec.Reveal()) // from memory: no span

	for _, s := range spans.Ended() {
		op := attribute.NewSet(s.Attributes()...)
		name, _ := op.Value(keywardotel.AttrStoreOperation)
		fmt.Printf("%s (operation %q), child of the request: %t\n", s.Name(), name.AsString(), s.Parent().SpanID() == request.SpanContext().SpanID())
	}
	// Output:
	// keyward.store.Create (operation "Create"), child of the request: true
	// POST /api/v1/keys (operation ""), child of the request: false
}

// The figures of a verification cache: its lookups by result and its
// entries. Wrap the store under the cache, so that only the lookups the
// cache misses reach the wrapped store, each within a span.
func ExampleObserver_RegisterCache() {
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer meters.Shutdown(context.Background())
	obs, err := keywardotel.New(keywardotel.WithMeterProvider(meters))
	if err != nil {
		log.Fatal(err)
	}

	cached, err := cache.New(obs.WrapStore(memory.New()))
	if err != nil {
		log.Fatal(err)
	}
	defer cached.Close()
	if _, err := obs.RegisterCache(cached); err != nil {
		log.Fatal(err)
	}
	keys, err := keyward.New(cached, keyward.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	ctx := context.Background()
	sec, _, err := keys.Owner("acct_123").Create(ctx, keyward.CreateParams{
		Name: "Reporting", Mode: apikey.Test, Scopes: scope.NewSet(scope.SessionsRead),
	})
	if err != nil {
		log.Fatal(err)
	}
	// Records are served once the change feed was read.
	for deadline := time.Now().Add(10 * time.Second); cached.Stats().Polls == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatal("the cache never polled its change feed")
		}
	}
	for range 3 {
		keys.Verify(ctx, sec.Reveal())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != keywardotel.MetricCacheLookups {
			continue
		}
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			result, _ := p.Attributes.Value(keywardotel.AttrCacheResult)
			fmt.Printf("%s{%s} %d\n", m.Name, result.AsString(), p.Value)
		}
	}
	// Unordered output:
	// keyward.cache.lookups{hit} 2
	// keyward.cache.lookups{unknown_hit} 0
	// keyward.cache.lookups{miss} 1
}
