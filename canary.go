package keyward

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
)

// A Caller is what a server knows of the client presenting a key, for
// [Keys.VerifyFrom]. It is read only when the key is a canary, to record
// the trip; every field is optional. Values are cleaned and cut before
// they are stored (see [apikey.Trip.Clean]).
type Caller struct {
	Addr      string // the client's address, such as r.RemoteAddr
	UserAgent string // the client's User-Agent
	Method    string // the HTTP method, if any, such as "GET"
	Path      string // the path or gRPC method called, such as "/v1/links"
}

// tripQueueLen bounds the trips waiting to be written. A flood of uses of
// one canary cannot grow memory: past it, trips are counted and dropped.
const tripQueueLen = 256

// WithCanaryHook sets a function called for every use of a canary key
// (see [CreateParams.Canary]), with the trip, after it is stored. It runs
// in a background goroutine, one trip at a time and in order, never in
// the request: the client gets its 401 without waiting. A panic in it is
// recovered and logged.
func WithCanaryHook(hook func(ctx context.Context, t apikey.Trip)) Option {
	return func(c *config) error {
		if hook == nil {
			return errors.New("keyward: WithCanaryHook needs a function")
		}
		c.canaryHook = hook
		return nil
	}
}

// canaries records the trips of canary keys, off the request path.
type canaries struct {
	queue   chan pendingTrip
	dropped atomic.Int64
	done    chan struct{} // closed when the writer has stopped
}

// A pendingTrip is a trip as the request saw it; the writer joins the
// method to the route, so that the request path does not allocate.
type pendingTrip struct {
	apikey.Trip
	method string
}

// trip queues a use of canary rec by c at now, without blocking.
func (k *Keys) trip(rec *apikey.Record, c Caller, now time.Time) {
	p := pendingTrip{
		Trip:   apikey.Trip{KeyID: rec.ID, Owner: rec.Owner, At: now, Addr: c.Addr, UserAgent: c.UserAgent, Route: c.Path},
		method: c.Method,
	}
	select {
	case k.canaries.queue <- p:
	default:
		k.canaries.dropped.Add(1)
	}
}

// tripLoop writes queued trips and calls the hook, until stop is closed
// and the queue is empty.
func (k *Keys) tripLoop() {
	defer close(k.canaries.done)
	for {
		select {
		case t := <-k.canaries.queue:
			k.recordTrip(t)
		case <-k.stop:
			for {
				select {
				case t := <-k.canaries.queue:
					k.recordTrip(t)
				default:
					return
				}
			}
		}
	}
}

// recordTrip stores one trip and tells the hook.
func (k *Keys) recordTrip(p pendingTrip) {
	t := p.Trip
	if p.method != "" {
		t.Route = p.method + " " + t.Route
	}
	t = t.Clean()
	ctx, cancel := k.storeContext(context.Background())
	defer cancel()
	args := []any{"key_id", t.KeyID, "owner", t.Owner, "addr", t.Addr, "user_agent", t.UserAgent, "route", t.Route}
	if n := k.canaries.dropped.Swap(0); n > 0 {
		args = append(args, "dropped_trips", n)
	}
	if err := k.store.RecordTrip(ctx, t); err != nil {
		k.logger.Error("keyward: a canary key was used, and its trip could not be stored", append(args, "err", err)...)
	} else {
		k.logger.Warn("keyward: a canary key was used", args...)
		k.notify(ctx, audit.Event{Kind: audit.CanaryTripped, Owner: t.Owner, KeyID: t.KeyID, At: t.At, Trip: &t})
	}
	if k.canaryHook != nil {
		k.callHook("canary", func() { k.canaryHook(ctx, t) })
	}
}
