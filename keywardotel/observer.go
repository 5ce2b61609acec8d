package keywardotel

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// import path of this package.
const ScopeName = "github.com/keyward/keyward/keywardotel"

// The names of the instruments, and of their attributes.
const (
	// MetricVerifications counts verifications ([keyward.Keys.Verify]) by
	// outcome: one of "ok", "unknown", "revoked", "expired", "malformed"
	// and "unavailable", in AttrOutcome.
	MetricVerifications = "keyward.verifications"
	// MetricVerificationDuration is the histogram of how long
	// verifications took, in seconds, by outcome: of a random sample of
	// one in 16.
	MetricVerificationDuration = "keyward.verification.duration"
	// MetricRefusals counts requests refused after their key was
	// verified ([keyward.Keys.CountRefusal]), by outcome:
	// "insufficient_scope", "wrong_mode", "limited" or "network_refused".
	// Each was counted before in MetricVerifications as "ok".
	MetricRefusals = "keyward.refusals"
	// MetricPendingUses is the number of uses waiting to be written
	// ([keyward.Stats.PendingUses]).
	MetricPendingUses = "keyward.usage.pending"
	// MetricFlushLag is how long the oldest pending use has waited, in
	// seconds ([keyward.Stats.FlushLag]).
	MetricFlushLag = "keyward.usage.flush.lag"
	// MetricCacheLookups counts the lookups of a verification cache
	// ([cache.Stats]) by result, in AttrCacheResult: "hit" (a cached
	// record), "unknown_hit" (a hash cached as unknown) or "miss".
	MetricCacheLookups = "keyward.cache.lookups"
	// MetricCacheEntries is the number of entries of a verification
	// cache, by kind, in AttrCacheKind: "known" (records) or "unknown"
	// (hashes of no key).
	MetricCacheEntries = "keyward.cache.entries"
	// MetricStoreErrors counts the failures of store calls made through
	// [Observer.WrapStore], by operation (AttrStoreOperation, the method,
	// such as "GetByHash") and error type (AttrErrorType).
	MetricStoreErrors = "keyward.store.errors"

	// AttrOutcome is the outcome of a verification or a refusal: the
	// name [keyward.Outcome.String] gives.
	AttrOutcome = attribute.Key("keyward.outcome")
	// AttrCacheResult is the result of a cache lookup.
	AttrCacheResult = attribute.Key("keyward.cache.result")
	// AttrCacheKind is the kind of a cache entry.
	AttrCacheKind = attribute.Key("keyward.cache.kind")
	// AttrStoreOperation is the store method called, such as "GetByHash".
	AttrStoreOperation = attribute.Key("keyward.store.operation")
	// AttrErrorType is the semantic conventions' error.type: "timeout"
	// (the context's deadline passed), "canceled" (the context was
	// canceled) or "_OTHER".
	AttrErrorType = attribute.Key("error.type")
)

// durationBounds are the bucket boundaries of the verification duration
// histogram, in seconds: from a microsecond, for answers from memory, to
// seconds, for a store that times out.
var durationBounds = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// maxOutcome bounds the outcomes an Observer knows: keyward's, and room
// for more.
const maxOutcome = 32

// An Observer reports keyward's verifications, refusals and background
// work to OpenTelemetry: it is a [keyward.Observer], to pass to
// [keyward.WithObserver], and it adds gauges of a lifecycle
// ([Observer.RegisterKeys]) and of a verification cache
// ([Observer.RegisterCache]), and spans and error counts of store calls
// ([Observer.WrapStore]). Create it with [New]; it is safe for concurrent
// use.
//
// Observing a verification or a refusal does not allocate: the
// attributes of each outcome are computed once, by New, and the counts
// are kept in atomic counters, which the meter reads at each collection.
// One Observer serves one lifecycle, or several: the counts of Observers
// on one meter provider add up.
type Observer struct {
	meter  metric.Meter
	tracer trace.Tracer

	verifications metric.Int64ObservableCounter
	duration      metric.Float64Histogram
	refusals      metric.Int64ObservableCounter
	storeErrors   metric.Int64Counter
	pending       metric.Int64ObservableUpDownCounter
	lag           metric.Float64ObservableGauge
	cacheLookups  metric.Int64ObservableCounter
	cacheEntries  metric.Int64ObservableUpDownCounter

	// The counts of each outcome, by keyward.Outcome, which the counters
	// report at each collection; and the options of each outcome, nil
	// for those that are not outcomes.
	counts      [maxOutcome]paddedCount
	recordOpts  [maxOutcome][]metric.RecordOption
	observeOpts [maxOutcome][]metric.ObserveOption

	cacheResults [3][]metric.ObserveOption // hit, unknown_hit, miss
	cacheKinds   [2][]metric.ObserveOption // known, unknown
}

var _ keyward.Observer = (*Observer)(nil)

// A paddedCount is a count alone on its cache line, so that the cores
// counting one outcome do not slow those counting another.
type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

// An Option configures [New].
type Option func(*config)

type config struct {
	meters  metric.MeterProvider
	tracers trace.TracerProvider
}

// WithMeterProvider sets where the metrics go. The default is the global
// provider, [otel.GetMeterProvider].
func WithMeterProvider(p metric.MeterProvider) Option {
	return func(c *config) { c.meters = p }
}

// WithTracerProvider sets where the spans of [Observer.WrapStore] go. The
// default is the global provider, [otel.GetTracerProvider].
func WithTracerProvider(p trace.TracerProvider) Option {
	return func(c *config) { c.tracers = p }
}

// New returns an Observer whose instruments come from the meter provider
// of [WithMeterProvider], or the global one. It fails only if the
// provider refuses an instrument.
func New(opts ...Option) (*Observer, error) {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	if c.meters == nil {
		c.meters = otel.GetMeterProvider()
	}
	if c.tracers == nil {
		c.tracers = otel.GetTracerProvider()
	}
	o := &Observer{meter: c.meters.Meter(ScopeName), tracer: c.tracers.Tracer(ScopeName)}
	m := o.meter
	var err, e error
	o.verifications, e = m.Int64ObservableCounter(MetricVerifications, metric.WithUnit("{verification}"),
		metric.WithDescription("API key verifications, by outcome."))
	err = errors.Join(err, e)
	o.duration, e = m.Float64Histogram(MetricVerificationDuration, metric.WithUnit("s"),
		metric.WithDescription("How long API key verifications took, by outcome, for a random sample of one in 16."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	err = errors.Join(err, e)
	o.refusals, e = m.Int64ObservableCounter(MetricRefusals, metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused after their API key was verified, by outcome."))
	err = errors.Join(err, e)
	o.storeErrors, e = m.Int64Counter(MetricStoreErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls of the API key store, by operation and error type."))
	err = errors.Join(err, e)
	o.pending, e = m.Int64ObservableUpDownCounter(MetricPendingUses, metric.WithUnit("{use}"),
		metric.WithDescription("Uses of API keys (last-used times and counts) waiting to be written to the store."))
	err = errors.Join(err, e)
	o.lag, e = m.Float64ObservableGauge(MetricFlushLag, metric.WithUnit("s"),
		metric.WithDescription("How long the oldest use of an API key has waited to be written to the store."))
	err = errors.Join(err, e)
	o.cacheLookups, e = m.Int64ObservableCounter(MetricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups of the API key verification cache, by result."))
	err = errors.Join(err, e)
	o.cacheEntries, e = m.Int64ObservableUpDownCounter(MetricCacheEntries, metric.WithUnit("{entry}"),
		metric.WithDescription("Entries of the API key verification cache, by kind."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	for out := keyward.Outcome(1); out < maxOutcome; out++ {
		name := out.String()
		if name == "invalid" {
			continue
		}
		set := attribute.NewSet(AttrOutcome.String(name))
		o.recordOpts[out] = []metric.RecordOption{metric.WithAttributeSet(set)}
		o.observeOpts[out] = []metric.ObserveOption{metric.WithAttributeSet(set)}
	}
	if _, err := m.RegisterCallback(o.observeCounts, o.verifications, o.refusals); err != nil {
		return nil, err
	}
	for i, v := range []string{"hit", "unknown_hit", "miss"} {
		o.cacheResults[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(AttrCacheResult.String(v)))}
	}
	for i, v := range []string{"known", "unknown"} {
		o.cacheKinds[i] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(AttrCacheKind.String(v)))}
	}
	return o, nil
}

// ObserveVerify counts a verification and, if it was timed (d > 0),
// records its duration, under its outcome. It implements [keyward.Observer]; the lifecycle calls it.
func (o *Observer) ObserveVerify(ctx context.Context, out keyward.Outcome, d time.Duration) {
	if out >= maxOutcome || o.recordOpts[out] == nil || out.IsRefusal() {
		return
	}
	o.counts[out].n.Add(1)
	if d > 0 { // a sample: see keyward.Observer
		o.duration.Record(ctx, d.Seconds(), o.recordOpts[out]...)
	}
}

// ObserveRefusal counts a refusal of a verified key, under its outcome.
// It implements [keyward.Observer]; the lifecycle calls it, from
// [keyward.Keys.CountRefusal].
func (o *Observer) ObserveRefusal(_ context.Context, out keyward.Outcome) {
	if out >= maxOutcome || !out.IsRefusal() {
		return
	}
	o.counts[out].n.Add(1)
}

// observeCounts reports the counts of every outcome, zeros included, so
// that each series exists from the start: the verifications' outcomes in
// keyward.verifications, the refusals' in keyward.refusals.
func (o *Observer) observeCounts(_ context.Context, ob metric.Observer) error {
	for out := range keyward.Outcome(maxOutcome) {
		if o.observeOpts[out] == nil {
			continue
		}
		inst := o.verifications
		if out.IsRefusal() {
			inst = o.refusals
		}
		ob.ObserveInt64(inst, o.counts[out].n.Load(), o.observeOpts[out]...)
	}
	return nil
}
