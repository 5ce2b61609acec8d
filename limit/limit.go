package limit

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

// A Limiter decides whether a key may make one more request under its
// policy's rate limit and quota. Implementations: [Memory], for one
// process, and package redislimit, for instances that share one limit.
// Limiters are safe for concurrent use.
type Limiter interface {
	// Allow counts one request of the key id under p at time now, if both
	// p's rate limit and its quota allow it, and returns the decision. A
	// refused request is not counted against either: the check and the
	// count are one atomic step. The decision's statuses are those after
	// the request: a request allowed by a fresh rate limit of capacity 10
	// leaves 9 remaining. now is the time of the request, taken as truth
	// whatever the limiter's own clock says; only its instant matters, not
	// its location.
	//
	// A nil policy, or one without a rate limit or quota, allows everything
	// with zero statuses, and a Limiter need not be asked for it. A policy
	// that sets an invalid rate limit or quota (see [apikey.Policy.Validate])
	// is an error wrapping [apikey.ErrInvalidPolicy]. When a key's policy
	// changes, its usage carries over: the requests counted in the current
	// quota period count against the new quota, and the rate limit keeps
	// the time at which the key's bucket is full again, brought forward by
	// the first Allow under the new limit, allowed or not, to at most
	// Capacity intervals of it after now (a bucket is never emptier than
	// empty).
	//
	// An error means the limiter could not decide (its backend is down, it
	// has no room for the key, ctx ended: an error wrapping ctx.Err() if
	// ctx is done when Allow is called); nothing is counted, and the caller
	// chooses whether to let the request through.
	Allow(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (Decision, error)

	// Peek returns what Allow would decide at time now, without counting
	// anything: the usage a dashboard shows. Its Allowed and RetryAfter
	// are Allow's; its statuses are the state before the request, so a
	// fresh rate limit of capacity 10 shows 10 remaining. Errors are
	// Allow's, except that a limiter never runs out of room for a Peek.
	Peek(ctx context.Context, id uuid.UUID, p *apikey.Policy, now time.Time) (Decision, error)
}

// A Decision is a Limiter's answer, and what the rate-limit headers of a
// response say.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Rate is the state of the policy's rate limit, zero if it has none.
	Rate Status
	// Quota is the state of the policy's quota, zero if it has none.
	Quota Status
	// RetryAfter, when the request is refused, is how long until a request
	// would be allowed: for a rate limit, until one request's allowance
	// comes back; for a quota, until the period ends; when both refuse,
	// the later of the two. It is zero when the request is allowed.
	RetryAfter time.Duration
}

// The Status of one limit after a decision.
type Status struct {
	// Limit is the most requests at once (a rate limit's capacity) or per
	// period (a quota's requests).
	Limit int64
	// Remaining is how many more requests it would allow now, from 0 to
	// Limit: for a rate limit, the whole requests whose allowance is back.
	Remaining int64
	// Reset is how long until it allows Limit again: the bucket refilled
	// (zero if it is full), or the quota's period over.
	Reset time.Duration
}

// IsZero reports whether s is the status of no limit.
func (s Status) IsZero() bool { return s == Status{} }

// A FailureMode is what a layer that enforces limits (the HTTP
// middleware, the gRPC interceptors) does with a request of a key with
// limits when its Limiter returns an error: its backend is down, or it
// timed out. Either way the layer logs the outage: its first failure, one
// line every 10 seconds while it lasts with the count of failures, and
// the recovery, however many requests fail.
//
// LetThrough is the default because a limiter guards usage, not access:
// the key was verified, and its scopes and networks checked, before the
// limiter is asked, so authentication still fails closed; what an outage
// lets through is requests of valid keys beyond their limits, for as long
// as it lasts. Refuse would turn a limiter outage into an outage of the
// API for every key with a policy, which is what rate limits exist to
// prevent. Choose Refuse when a limit is a contract that must not be
// exceeded: quotas that are billed, or that protect a backend which must
// never see more.
type FailureMode uint8

// Failure modes.
const (
	// LetThrough lets the request through, unlimited: the default.
	LetThrough FailureMode = iota + 1
	// Refuse answers that the service is unavailable: HTTP 503 with
	// Retry-After: 5, gRPC Unavailable with a RetryInfo of 5 seconds.
	Refuse
)

// Valid reports whether f is LetThrough or Refuse.
func (f FailureMode) Valid() bool { return f == LetThrough || f == Refuse }
