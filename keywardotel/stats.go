package keywardotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/store/cache"
)

// RegisterKeys reports the figures of keys's work in the background
// ([keyward.Keys.Stats]) at each collection of the metrics:
// keyward.usage.pending, the uses waiting to be written, and
// keyward.usage.flush.lag, how long the oldest has waited, in seconds. A
// lag that grows past the flush interval means that writes fail or are
// slow. Call Unregister on the result to stop, before keys is closed or
// when the Observer outlives it. Register one lifecycle per meter
// provider: the figures of two would add up.
func (o *Observer) RegisterKeys(keys *keyward.Keys) (metric.Registration, error) {
	if keys == nil {
		return nil, errors.New("keywardotel: RegisterKeys needs a *keyward.Keys")
	}
	return o.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		st := keys.Stats()
		ob.ObserveInt64(o.pending, int64(st.PendingUses))
		ob.ObserveFloat64(o.lag, st.FlushLag.Seconds())
		return nil
	}, o.pending, o.lag)
}

// RegisterCache reports the figures of a verification cache
// ([cache.Store.Stats]) at each collection of the metrics:
// keyward.cache.lookups, its lookups since it was created by result
// ("hit", "unknown_hit", "miss"), and keyward.cache.entries, the records
// and unknown hashes it holds. The cache counts its lookups itself, with
// atomic counters, so that a hit costs nothing more with metrics. Call
// Unregister on the result to stop. Register one cache per meter
// provider: the figures of two would add up.
func (o *Observer) RegisterCache(c *cache.Store) (metric.Registration, error) {
	if c == nil {
		return nil, errors.New("keywardotel: RegisterCache needs a *cache.Store")
	}
	return o.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		st := c.Stats()
		ob.ObserveInt64(o.cacheLookups, st.Hits, o.cacheResults[0]...)
		ob.ObserveInt64(o.cacheLookups, st.UnknownHits, o.cacheResults[1]...)
		ob.ObserveInt64(o.cacheLookups, st.Misses, o.cacheResults[2]...)
		ob.ObserveInt64(o.cacheEntries, int64(st.Known), o.cacheKinds[0]...)
		ob.ObserveInt64(o.cacheEntries, int64(st.Unknown), o.cacheKinds[1]...)
		return nil
	}, o.cacheLookups, o.cacheEntries)
}
