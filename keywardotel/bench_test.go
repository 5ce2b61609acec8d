package keywardotel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/benchkeys"
	"github.com/keyward/keyward/keywardotel"
)

// BenchmarkVerifyMemory is keyward's Verify on the memory store of a
// million keys (the population of the benchmarks module), side by side
// without an observer and with the adapter attached the way the README
// attaches it: the observer, over the wrapped store, with the lifecycle's
// gauges registered, to an SDK meter provider whose reader collects only
// when asked (as the Prometheus exporter does, on a scrape), and an SDK
// tracer provider that samples every span. In the steady state: every
// key is verified once before timing, as benchmarks/ does. Compare with
//
//	go test -run '^$' -bench VerifyMemory -benchmem -count 6 > out.txt
//	benchstat -col /observer out.txt
//
// A third column, "floor", has the least observer (an atomic add): the
// lifecycle reads the clock twice per verification for any observer, so
// the floor is the cost of observing at all; otel minus floor is the
// adapter's own.
func BenchmarkVerifyMemory(b *testing.B) {
	raws := benchkeys.Keys(b).Raws
	for _, observer := range []string{"none", "floor", "otel"} {
		b.Run("observer="+observer, func(b *testing.B) {
			keys := benchKeys(b, observer)
			ctx := context.Background()
			for _, raw := range raws {
				if _, err := keys.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
			benchkeys.Run(b, 1, func(i int) string { return raws[i] }, func(raw string) error {
				_, err := keys.Verify(ctx, raw)
				return err
			})
		})
	}
}

// benchKeys returns a lifecycle over the million keys' memory store:
// without an observer ("none"), with the least observer ("floor": an
// atomic add, so that the lifecycle reads the clock twice per
// verification, as it does for any observer), or with the adapter
// ("otel").
func benchKeys(b *testing.B, observer string) *keyward.Keys {
	st := benchkeys.Memory(b)
	if observer != "otel" {
		var opts []keyward.Option
		if observer == "floor" {
			opts = append(opts, keyward.WithObserver(new(floorObserver)))
		}
		keys, err := keyward.New(st, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { keys.Close() })
		return keys
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	obs, err := keywardotel.New(keywardotel.WithMeterProvider(mp), keywardotel.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := keyward.New(obs.WrapStore(st), keyward.WithObserver(obs))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := obs.RegisterKeys(keys)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		reg.Unregister()
		keys.Close()
		mp.Shutdown(context.Background())
		tp.Shutdown(context.Background())
	})
	return keys
}

// floorObserver is the least an observer can do: count.
type floorObserver struct{ n atomic.Int64 }

func (o *floorObserver) ObserveVerify(context.Context, keyward.Outcome, time.Duration) { o.n.Add(1) }
func (o *floorObserver) ObserveRefusal(context.Context, keyward.Outcome)               { o.n.Add(1) }

// BenchmarkObserveVerify is the adapter's own cost per verification: an
// atomic add and a histogram's Record on an SDK meter provider, without
// the lifecycle's two clock reads.
func BenchmarkObserveVerify(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { mp.Shutdown(context.Background()) })
	obs, err := keywardotel.New(keywardotel.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			obs.ObserveVerify(ctx, keyward.OutcomeOK, 300*time.Nanosecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				obs.ObserveVerify(ctx, keyward.OutcomeOK, 300*time.Nanosecond)
			}
		})
	})
}
