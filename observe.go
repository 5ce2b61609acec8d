package keyward

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/keyward/keyward/store"
)

// An Outcome is how a request's key fared: what [Keys.Verify] answered,
// or, for a verified key, why the request was refused after all.
type Outcome uint8

// The outcomes. The first six are Verify's; the others are refusals of
// a verified key, reported with [Keys.CountRefusal] by the middleware (or
// by an application that checks keys itself).
const (
	OutcomeOK                Outcome = iota + 1 // verified
	OutcomeUnknown                              // no such key (a canary's use too)
	OutcomeRevoked                              // revoked
	OutcomeExpired                              // expired
	OutcomeMalformed                            // not a key of the format
	OutcomeUnavailable                          // the store could not answer
	OutcomeInsufficientScope                    // refused: a scope the route needs is missing
	OutcomeWrongMode                            // refused: a key of the other mode
	OutcomeLimited                              // refused: the key's rate limit or quota
	OutcomeNetworkRefused                       // refused: a client outside the key's networks
)

var outcomeNames = [...]string{
	OutcomeOK:                "ok",
	OutcomeUnknown:           "unknown",
	OutcomeRevoked:           "revoked",
	OutcomeExpired:           "expired",
	OutcomeMalformed:         "malformed",
	OutcomeUnavailable:       "unavailable",
	OutcomeInsufficientScope: "insufficient_scope",
	OutcomeWrongMode:         "wrong_mode",
	OutcomeLimited:           "limited",
	OutcomeNetworkRefused:    "network_refused",
}

// String returns the outcome's name, such as "ok" or "insufficient_scope",
// as metrics label it.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "invalid"
}

// IsRefusal reports whether o is the refusal of a verified key, which
// [Keys.CountRefusal] takes.
func (o Outcome) IsRefusal() bool { return o >= OutcomeInsufficientScope && o <= OutcomeNetworkRefused }

// outcome returns the outcome of an error of verify.
func outcome(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeOK
	case err == ErrUnknownKey:
		return OutcomeUnknown
	case err == ErrRevoked:
		return OutcomeRevoked
	case err == ErrExpired:
		return OutcomeExpired
	case errors.Is(err, ErrMalformedKey):
		return OutcomeMalformed
	}
	return OutcomeUnavailable
}

// An Observer watches verifications, for metrics: package
// github.com/keyward/keyward/keywardotel is one, for OpenTelemetry. Set it
// with [WithObserver]. Its methods are called on every request, in the
// request's goroutine: they must be fast and safe for concurrent use, and
// must not keep the context.
type Observer interface {
	// ObserveVerify is called after each verification with its outcome
	// (one of the first six) and, for one verification in 16 chosen at
	// random, how long it took; d is 0 for the others. Count every call;
	// record d in a latency histogram only when it is not 0: a sample
	// spares most requests two reads of the clock, and describes the
	// latency as well.
	ObserveVerify(ctx context.Context, o Outcome, d time.Duration)
	// ObserveRefusal is called for each refusal of a verified key that
	// [Keys.CountRefusal] counts, with its outcome. The verification
	// was observed before as OutcomeOK: a request refused after
	// verification is observed twice.
	ObserveRefusal(ctx context.Context, o Outcome)
}

// WithObserver sets the observer of verifications. Without one, Verify
// does not read the clock for it, nor draw the random number that picks
// the verifications it times.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("keyward: WithObserver needs an observer")
		}
		c.observer = o
		return nil
	}
}

// CountRefusal counts a request refused after its key was verified, with
// o one of the refusal outcomes ([Outcome.IsRefusal]): the usage of the
// key with ID id counts it (see [Owner.Usage]), written with the next
// write of last-used times, and the observer sees it. The middleware
// calls it; call it yourself when your own code refuses a verified key
// for one of these reasons. Other outcomes are ignored.
func (k *Keys) CountRefusal(ctx context.Context, id uuid.UUID, o Outcome) {
	var add store.Counts
	switch o {
	case OutcomeInsufficientScope:
		add.Scope = 1
	case OutcomeWrongMode:
		add.Mode = 1
	case OutcomeLimited:
		add.Limited = 1
	case OutcomeNetworkRefused:
		add.Network = 1
	default:
		return
	}
	k.uses.refuse(id, k.clock.Micros(), add)
	if k.observer != nil {
		k.observer.ObserveRefusal(ctx, o)
	}
}

// Stats are figures of the lifecycle's work in the background, for
// metrics.
type Stats struct {
	// PendingUses is the number of keys whose uses (a newer last-used
	// time, counts) wait for the next write.
	PendingUses int
	// FlushLag is how long the oldest pending use has waited; 0 when none
	// waits. Past the flush interval, writes are failing or slow.
	FlushLag time.Duration
	// LastFlush is when uses were last written successfully; zero if
	// never.
	LastFlush time.Time
}

// Stats returns the lifecycle's current figures.
func (k *Keys) Stats() Stats {
	n, since := k.uses.pendingStats()
	now := k.clock.Micros()
	st := Stats{PendingUses: n}
	if since > 0 && now > since {
		st.FlushLag = time.Duration(now-since) * time.Microsecond
	}
	if t := k.lastFlush.Load(); t > 0 {
		st.LastFlush = time.UnixMicro(t).UTC()
	}
	return st
}
