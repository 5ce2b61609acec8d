package keywardgrpc

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/clock"
	"github.com/keyward/keyward/internal/outage"
	"github.com/keyward/keyward/limit"
)

// The names of the two limits of a policy in a QuotaFailure's
// violations: the names the HTTP middleware uses.
const (
	policyRate  = "rate"
	policyQuota = "quota"
)

// The messages of calls refused by the limiter.
const (
	msgRateLimited        = "this API key is over its rate limit or quota; retry later"
	msgLimiterUnavailable = "the rate limits of this API key cannot be checked right now; retry later"
)

// limiterRetry is the retry delay of a call refused because the limiter
// failed: the Retry-After of the HTTP middleware's 503.
const limiterRetry = 5 * time.Second

// WithLimiter enforces the rate limits and quotas of key policies
// ([apikey.Policy.Rate], [apikey.Policy.Quota]) with l, such as a
// [limit.Memory] for a single instance. Only keys whose policy sets a rate
// limit or a quota reach it: a key without one costs nothing more.
//
// For such a key, after the key is verified, its scopes and its networks
// checked, l.Allow counts the call under the key's ID at the lifecycle's
// time ([keyward.Keys.Now]). A call over a limit is refused with
// codes.ResourceExhausted, whose status carries two error details
// (google.golang.org/genproto/googleapis/rpc/errdetails): a RetryInfo
// whose RetryDelay is the limiter's wait ([limit.Decision.RetryAfter]),
// and a QuotaFailure with one violation per limit exceeded, whose Subject
// is "rate" or "quota", the names the HTTP middleware uses. What happens
// when l fails is [WithLimiterFailure]'s choice.
//
// Without WithLimiter, rate limits and quotas are not enforced over gRPC
// (networks always are), and the first key that has one is logged as a
// warning.
func WithLimiter(l limit.Limiter) Option {
	return func(c *config) {
		if l == nil {
			c.setErr(errors.New("keywardgrpc: WithLimiter needs a limiter"))
			return
		}
		c.limiter = l
	}
}

// WithLimiterFailure sets what happens to a call when the limiter of
// [WithLimiter] returns an error: it is let through ([limit.LetThrough],
// the default) or refused with codes.Unavailable and a RetryInfo of 5
// seconds ([limit.Refuse]). See [limit.FailureMode] for why the default
// lets calls through, and when to refuse. Either way the outage is logged,
// through [keyward.Keys.Logger].
//
// WithLimiterFailure without [WithLimiter] makes the interceptor
// constructors panic.
func WithLimiterFailure(f limit.FailureMode) Option {
	return func(c *config) {
		if !f.Valid() {
			c.setErr(errors.New("keywardgrpc: WithLimiterFailure needs limit.LetThrough or limit.Refuse"))
			return
		}
		c.failure = f
	}
}

// enforceLimits asks the limiter about a call of the key with ID id, whose
// policy p sets a rate limit or a quota, and returns the status error
// that refuses it, if any.
func (c *config) enforceLimits(ctx context.Context, id uuid.UUID, p *apikey.Policy) error {
	if c.limiter == nil {
		if c.unlimitedWarned.CompareAndSwap(false, true) {
			c.keys.Logger().Warn("keywardgrpc: key policies set rate limits or quotas, but the interceptor has no limiter (WithLimiter): they are not enforced",
				"key_id", id)
		}
		return nil
	}
	d, err := c.limiter.Allow(ctx, id, p, c.keys.Now())
	if err != nil {
		c.limiterHealth.Failed(err)
		if c.failure == limit.Refuse {
			return withDetails(codes.Unavailable, msgLimiterUnavailable,
				&errdetails.RetryInfo{RetryDelay: durationpb.New(limiterRetry)})
		}
		return nil
	}
	c.limiterHealth.OK()
	if d.Allowed {
		return nil
	}
	qf := new(errdetails.QuotaFailure)
	if !p.Rate.IsZero() && d.Rate.Remaining <= 0 {
		qf.Violations = append(qf.Violations, &errdetails.QuotaFailure_Violation{
			Subject:     policyRate,
			Description: "rate limit of " + rateText(p.Rate) + " exceeded",
		})
	}
	if !p.Quota.IsZero() && d.Quota.Remaining <= 0 {
		qf.Violations = append(qf.Violations, &errdetails.QuotaFailure_Violation{
			Subject:     policyQuota,
			Description: "quota of " + strconv.FormatInt(p.Quota.Requests, 10) + " requests per " + p.Quota.Per.String() + " exceeded",
		})
	}
	c.keys.CountRefusal(ctx, id, keyward.OutcomeLimited)
	return withDetails(codes.ResourceExhausted, msgRateLimited,
		&errdetails.RetryInfo{RetryDelay: durationpb.New(d.RetryAfter)}, qf)
}

// rateText describes a rate limit: "100 requests per 1m0s", with its
// burst if it differs.
func rateText(r apikey.RateLimit) string {
	s := strconv.Itoa(r.Requests) + " requests per " + r.Period.String()
	if r.Burst != 0 && r.Burst != r.Requests {
		s += " (burst " + strconv.Itoa(r.Burst) + ")"
	}
	return s
}

// withDetails returns the status error of code and msg with details; if
// they cannot be attached (never, for these messages), without them.
func withDetails(code codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st.Err()
}

// limiterOutage returns the log of the limiter's outages: the first
// failure, a line every outage.Every while it lasts, and the recovery, in
// the lifecycle's log.
func limiterOutage(logger *slog.Logger, f limit.FailureMode) outage.Log {
	down := "keywardgrpc: the rate limiter is unavailable: calls of keys with rate limits or quotas are let through, unlimited, until it answers again"
	if f == limit.Refuse {
		down = "keywardgrpc: the rate limiter is unavailable: calls of keys with rate limits or quotas get Unavailable until it answers again"
	}
	return outage.Log{
		Logger: logger,
		Now:    func() time.Duration { return time.Duration(clock.Mono()) },
		Down:   down,
		Still:  "keywardgrpc: the rate limiter is still unavailable",
		Up:     "keywardgrpc: the rate limiter answers again",
	}
}
