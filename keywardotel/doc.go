// Package keywardotel reports keyward's work to OpenTelemetry: metrics of
// verifications and refusals, of the lifecycle's background writes and of
// a verification cache, and spans around store calls.
//
// It is a module of its own, github.com/keyward/keyward/keywardotel, so
// that applications that do not use OpenTelemetry never download it:
// package keyward knows only its [keyward.Observer] interface.
//
//	obs, err := keywardotel.New(keywardotel.WithMeterProvider(mp), keywardotel.WithTracerProvider(tp))
//	if err != nil { ... }
//	keys, err := keyward.New(obs.WrapStore(st), keyward.WithObserver(obs))
//	if err != nil { ... }
//	reg, err := obs.RegisterKeys(keys)
//
// # Metrics
//
// The instruments, of the meter named [ScopeName]; the semantic
// conventions define none for API keys, so their names are in the
// keyward namespace, and follow the conventions' rules (units in UCUM,
// seconds for durations, a plural name for counts with the unit in
// braces):
//
//   - keyward.verifications, a counter of verifications by
//     keyward.outcome: "ok", "unknown", "revoked", "expired",
//     "malformed" (not a key of the format) or "unavailable" (the store
//     could not answer).
//   - keyward.verification.duration, a histogram of their durations, in
//     seconds, by keyward.outcome, with buckets from a microsecond to 5
//     seconds: of a random sample of one verification in 16 (see
//     [keyward.Observer]), so its count is about a sixteenth of
//     keyward.verifications; the counter has the totals.
//   - keyward.refusals, a counter of requests refused after their key
//     was verified, by keyward.outcome: "insufficient_scope",
//     "wrong_mode", "limited" or "network_refused". The middleware and
//     the gRPC interceptors report them through
//     [keyward.Keys.CountRefusal]. A refused request was counted as "ok"
//     in keyward.verifications first: refusals are a subset of the
//     successful verifications, as in [keyward.Owner.Usage].
//   - keyward.usage.pending and keyward.usage.flush.lag, the uses
//     waiting to be written and how long the oldest has waited, in
//     seconds, observed at each collection once [Observer.RegisterKeys]
//     registered the lifecycle.
//   - keyward.cache.lookups, by keyward.cache.result ("hit",
//     "unknown_hit", "miss"), and keyward.cache.entries, by
//     keyward.cache.kind ("known", "unknown"), of the cache that
//     [Observer.RegisterCache] registered.
//   - keyward.store.errors, the failed calls of the store that
//     [Observer.WrapStore] wraps, by keyward.store.operation and
//     error.type.
//
// Through the Prometheus exporter (go.opentelemetry.io/otel/exporters/prometheus),
// keyward.verifications is keyward_verifications_total, with the label
// keyward_outcome, and keyward.verification.duration is
// keyward_verification_duration_seconds.
//
// # Cost
//
// Observing a verification is an atomic add to its outcome's count, a
// histogram's Record, with the attributes of each outcome computed once
// by [New], and the clock read twice, by the lifecycle: it does not
// allocate, so that a verification from memory stays free of
// allocations. The two counters are observable counters that report
// those counts at each collection, every outcome from the start, zeros
// included, so that each series exists before its first count (rates and
// alerts on a series that appears late miss its first counts). The gauges cost nothing between
// collections. The spans of a wrapped store are only around calls that
// reach it: answers from memory ([store.LocalLookup]) have none.
package keywardotel
