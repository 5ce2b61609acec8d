// Package limit enforces the rate limits and quotas of key policies
// ([apikey.Policy]): the [Limiter] interface, [Memory], its in-process
// implementation, and the contract every implementation keeps, checked by
// package limittest. Package redislimit shares limits among instances.
//
// # Rate limits
//
// A rate limit ([apikey.RateLimit]) is the generic cell rate algorithm
// (GCRA): each key keeps one time, its theoretical arrival time, which
// every allowed request moves one interval T = Period/Requests past the
// later of itself and now, and a request is allowed while that time is at
// most (Capacity-1)·T ahead of now. It computes what a token bucket of
// Capacity tokens refilled one per T would, with one number per key and no
// refill to run.
//
// So a key may make Capacity requests at once, then one per T: over a
// Period it gets at most Capacity + Period/T requests, which is Requests +
// Capacity unless rounding T down to whole nanoseconds
// ([apikey.RateLimit.Interval]) adds one, and Requests on average.
//
// # Quotas
//
// A quota ([apikey.Quota]) counts a key's requests in the current UTC
// calendar day or month ([apikey.QuotaPeriod.Bounds]), and refuses
// requests beyond its Requests until the next period starts, at 00:00 UTC.
//
// # Decisions and headers
//
// A [Decision] holds what the rate-limit header fields of a response say
// (package middleware writes them): per limit, its Limit (the capacity,
// or the quota's requests), the Remaining requests (for a rate limit, the
// whole requests whose allowance is back) and the Reset, how long until
// the limit is whole again; for a refused request, RetryAfter, how long
// until one request would pass: one interval's allowance back, or the
// quota's period over, whichever is later. Headers count in whole seconds
// and should round durations up, so that a client that waits as told is
// not refused again. After a refusal, the limit with nothing Remaining is
// the one that refused.
//
// # Memory
//
// [Memory] keeps the state of each key in a table of 64 shards, each a
// mutex and a map: 16 bytes of state and a 16-byte ID per key, and 36 to
// 68 bytes of heap per key tracked with its share of the map, depending
// on where the maps are in their growth (36.5 bytes at 100,000 keys, 68 at
// 1,000,000). Allow of a tracked key allocates nothing and takes about
// 55 ns on one hot key and 130 ns on 100,000 keys chosen at random, most
// of it cache misses (see bench_test.go).
//
// Its memory is bounded: it tracks at most [WithMaxKeys] keys, a million
// by default (about 68 MB). Keys that hold no information, whose bucket is
// full and whose quota counts nothing in the current period, are dropped
// as requests come: each shard sweeps itself at most once per
// [WithSweepInterval] of the times it is given, and a full table sweeps
// every shard, one at a time, before it gives up. A new key that finds the
// table full of keys in use is refused with [ErrFull], and the caller
// chooses, as for any limiter error, whether to let it through; keys
// already tracked are never dropped while in use, since that would reset
// their limits. A Memory starts no goroutine; [Memory.Sweep] sweeps on
// demand.
package limit
