// Package redislimit is a [limit.Limiter] whose state lives in Redis, for
// application instances that share one limit: a key's rate limit and
// quota hold across all of them, exactly, as if one process decided. It
// passes the same conformance suite as [limit.Memory] (package
// limit/limittest), against a real Redis and through a Redis Cluster
// client.
//
// Hand it a go-redis client, which it uses as it is (its pool, its
// timeouts):
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ...})
//	limiter, err := redislimit.New(rdb)
//	...
//	d, err := limiter.Allow(ctx, rec.ID, rec.Policy, now)
//
// New does no I/O.
//
// # One round trip
//
// Each [Limiter.Allow] and [Limiter.Peek] is one command: EVALSHA of one
// Lua script (check.lua, embedded), which reads the key's state, decides,
// and writes, atomically, as Redis runs a script alone. Only the first
// check after Redis lost its script cache (a restart, SCRIPT FLUSH, a
// failover to a replica that never ran it) costs a second: the server
// answers NOSCRIPT and the limiter sends the script itself (EVAL), which
// caches it again. A policy without a rate limit or quota costs nothing:
// it is allowed without I/O.
//
// # The script
//
// The rate limit is the generic cell rate algorithm. A key id's rate key
// holds its theoretical arrival time (TAT): when its bucket will be full
// again, in Unix nanoseconds. With the emission interval T = Period /
// Requests and the burst tolerance τ = (Capacity - 1) × T, a request at
// now is allowed if TAT - now ≤ τ, and then moves the TAT to max(TAT, now)
// + T. A TAT further ahead than a bucket of the policy can be (the policy
// became faster or smaller) is brought back to now + Capacity × T, as
// [limit.Memory] does. The key expires when the bucket is full again, so
// idle keys vanish.
//
// The quota is a counter per key id and calendar period (UTC day or
// month), a key that expires when the period ends: a new period counts
// under a new key, from zero.
//
// The script reads both keys (one MGET), decides on both, and counts the
// request only if both allow it: the TAT moved on and the counter
// incremented, or neither (Allow writes a TAT brought back, whatever it
// decides; Peek writes nothing). It replies with the
// decision and the state it read; the limiter computes the [limit.Decision]
// from them in Go, with the arithmetic of [limit.Memory].
//
// Lua numbers are doubles, exact to 2^53. The script keeps times as Unix
// seconds and nanoseconds apart, and computes in nanoseconds only TAT -
// now, exact up to 104 days: every decision is exact to the nanosecond,
// as in [limit.Memory], for any valid policy short of buckets that take
// over 104 days to fill, whose decisions are then exact to 2^-53.
//
// # Keys
//
// With the default prefix, "keyward:limit:" ([WithPrefix]):
//
//	keyward:limit:{<key id>}:rate               the TAT, as a decimal string
//	keyward:limit:{<key id>}:quota:2026-03-14   the count of a daily quota
//	keyward:limit:{<key id>}:quota:2026-03      the count of a monthly quota
//
// Each key lives [KeyMargin] (a minute) longer than it matters: an expired
// key and a kept one decide alike, and the margin absorbs clock skew (see
// below). Changing a key's policy keeps its usage: the bucket as it was,
// the count of the period so far (a quota changed from daily to monthly,
// or back, counts under the other key, from zero).
//
// # Redis Cluster
//
// The key id is a hash tag ({...}): a cluster puts all the keys of one
// key id in one slot, as a script needs, and spreads the key ids over the
// slots. The prefix may not contain braces ([WithPrefix] refuses them),
// which would put every key in one slot. Pass a [*redis.ClusterClient]
// (or any [redis.UniversalClient]) to New.
//
// Redis replicates asynchronously: a failover loses the counts that had
// not reached the replica, letting those requests through again, as any
// Redis-based limiter would.
//
// # Which clock
//
// By default the limiter takes the now given to Allow and Peek as the
// truth, as the [limit.Limiter] contract says and the conformance suite
// checks: the middleware passes its clock, and tests pass times of their
// own. Instances sharing a limit then decide with their own clocks, and
// skew between them shifts decisions by that much: an instance ahead by
// δ sees a bucket fuller by δ / T requests than one on time does (with
// NTP, δ is milliseconds), and near midnight an instance may still count
// under yesterday's quota while another counts under today's (where
// [limit.Memory], one process, keeps counting under the later period).
// Keys expire
// by their time left, not at absolute times, and [KeyMargin] later, so
// that skew never expires a key early.
//
// [WithServerTime] reads Redis's clock instead (TIME, in the script): all
// instances agree exactly, and the now given is ignored, so tests cannot
// set the time. The quota period is then the server's; when it differs
// from the caller's (the caller's clock on one side of midnight, the
// server's on the other) the check takes a second round trip. All the
// instances sharing a limit must use the same clock.
//
// # Errors
//
// The limiter does not decide what an outage means: Allow and Peek return
// an error that wraps the client's (and ctx.Err() if ctx is done), and the
// caller chooses whether to let the request through, as the middleware
// does. A done ctx fails before any I/O.
//
// An error can come after the script ran: a timeout while waiting for the
// reply leaves a request that may or may not have been counted.
//
// How long a check takes to fail is the client's to bound. go-redis by
// default retries a command 3 times, dials 5 times 100 ms apart, waits 5 s
// to connect and 3 s for a reply, and ignores ctx deadlines; for a limiter
// that fails promptly, set them, for example:
//
//	redis.NewClient(&redis.Options{
//		Addr:                  addr,
//		DialTimeout:           250 * time.Millisecond,
//		ReadTimeout:           250 * time.Millisecond,
//		WriteTimeout:          250 * time.Millisecond,
//		MaxRetries:            -1, // no retries
//		DialerRetries:         1,  // one dial
//		ContextTimeoutEnabled: true,
//	})
//
// With these, a check of a stopped server fails within a dial, and one of
// a server that stopped answering within the read timeout or the ctx's
// deadline, whichever comes first.
//
// # Cost
//
// Next to a pipeline of INCR and PEXPIRE, the cheapest way to count a
// request in Redis, a check costs one more script call on the server (a
// few microseconds: the script's three commands, MGET, SET and INCR, and
// the interpreter) and about twice the allocations in the client. Over a
// network, the round trip dominates both; see bench_test.go.
package redislimit
