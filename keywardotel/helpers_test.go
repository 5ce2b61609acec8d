package keywardotel_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardotel"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// telemetry is an Observer whose metrics are read by hand and whose spans
// are recorded.
type telemetry struct {
	obs    *keywardotel.Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tracer *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tm := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	tm.tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	t.Cleanup(func() {
		mp.Shutdown(context.Background())
		tm.tracer.Shutdown(context.Background())
	})
	obs, err := keywardotel.New(keywardotel.WithMeterProvider(mp), keywardotel.WithTracerProvider(tm.tracer))
	if err != nil {
		t.Fatal(err)
	}
	tm.obs = obs
	return tm
}

// collect returns the metrics of the scope of keywardotel, by name.
func (tm *telemetry) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != keywardotel.ScopeName {
			t.Errorf("metrics of the scope %q", sm.Scope.Name)
			continue
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	return got
}

// sums returns the points of a sum (a counter or an up-down counter), by
// the value of the attribute key.
func sums(t testing.TB, m metricdata.Metrics, key attribute.Key) map[string]int64 {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", m.Name, m.Data)
	}
	got := map[string]int64{}
	for _, p := range s.DataPoints {
		v, _ := p.Attributes.Value(key)
		got[v.Emit()] = p.Value
	}
	return got
}

// counts returns the counts of a histogram's points, by the value of the
// attribute key, and their sums.
func counts(t testing.TB, m metricdata.Metrics, key attribute.Key) (map[string]uint64, map[string]float64) {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, not a float64 histogram", m.Name, m.Data)
	}
	n, sum := map[string]uint64{}, map[string]float64{}
	for _, p := range h.DataPoints {
		v, _ := p.Attributes.Value(key)
		n[v.Emit()] = p.Count
		sum[v.Emit()] = p.Sum
	}
	return n, sum
}

// failingStore is a memory store whose lookups through GetByHash and
// writes of uses can be made to fail, as a database does when it is
// down; its answers from memory then go to GetByHash.
type failingStore struct {
	*memory.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp 10.0.0.7:5432: connection refused")

func (s *failingStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errDown
	}
	return s.Store.GetByHash(ctx, h)
}

func (s *failingStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	if s.down.Load() {
		return nil, store.ErrWouldBlock
	}
	return s.Store.GetByHashLocal(h)
}

func (s *failingStore) RecordUses(ctx context.Context, uses []store.Use) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.RecordUses(ctx, uses)
}

// settable is a clock for keyward.WithClock.
type settable struct{ now atomic.Pointer[time.Time] }

func newSettable() *settable {
	c := new(settable)
	c.set(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	return c
}

func (c *settable) Now() time.Time          { return *c.now.Load() }
func (c *settable) set(t time.Time)         { c.now.Store(&t) }
func (c *settable) advance(d time.Duration) { c.set(c.Now().Add(d)) }
