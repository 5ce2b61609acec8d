package keyward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/keyward/keyward/audit"
)

// A Subscriber receives the lifecycle's events: every change made through
// [Keys] (a key created, updated, rotated, revoked, revoked with all its
// owner's keys, reported exposed) and every stored use of a canary key,
// each with its actor (see [audit.WithActor]), owner, key, time and what
// changed. Add subscribers with [WithSubscriber].
//
// Notify is called after the change is stored (and with it its entry in
// the audit trail, the durable record), in the goroutine of the call that
// made it, with that call's context; a canary's trip is notified from the
// background writer of trips. A subscriber cannot veto nor undo a change:
// what must not happen is refused before it is made. It must not block
// for long, since the call waits for it; one that panics is logged and
// the call goes on, so a created key's raw value is always returned.
type Subscriber interface {
	Notify(ctx context.Context, e audit.Event)
}

// SubscriberFunc makes a function a [Subscriber].
type SubscriberFunc func(ctx context.Context, e audit.Event)

// Notify calls f.
func (f SubscriberFunc) Notify(ctx context.Context, e audit.Event) { f(ctx, e) }

// WithSubscriber adds a subscriber to the lifecycle's events; it may be
// given several times. Whatever the subscribers, every change is also
// logged, at level Info (an exposure at Warn), by the logger of
// [WithLogger]: actor, owner, key ID and display prefix, kind, reason and
// changed fields, never a secret, a hash or metadata values.
func WithSubscriber(s Subscriber) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("keyward: WithSubscriber needs a subscriber")
		}
		c.subscribers = append(c.subscribers, s)
		return nil
	}
}

// checkActor refuses a call whose context names an invalid actor, before
// anything is changed.
func checkActor(ctx context.Context) error {
	if err := audit.ActorFrom(ctx).Validate(); err != nil {
		return &InputError{Field: "actor", Err: err}
	}
	return nil
}

// emit logs the events of a change and notifies the subscribers.
func (k *Keys) emit(ctx context.Context, events ...audit.Event) {
	for _, e := range events {
		level := slog.LevelInfo
		if e.Kind == audit.Exposed {
			level = slog.LevelWarn
		}
		k.logger.LogAttrs(ctx, level, "keyward: "+string(e.Kind), eventAttrs(e)...)
		k.notify(ctx, e)
	}
}

// notify passes e to every subscriber, recovering a panic of each.
func (k *Keys) notify(ctx context.Context, e audit.Event) {
	for _, s := range k.subscribers {
		k.callHook("subscriber", func() { s.Notify(ctx, e) })
	}
}

// eventAttrs are what the log keeps of an event.
func eventAttrs(e audit.Event) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("actor", e.Actor.String()),
		slog.String("owner", e.Owner),
		slog.String("key_id", e.KeyID.String()),
		slog.String("prefix", e.Prefix),
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	for _, c := range e.Changes {
		v := c.To
		switch {
		case c.From == "" && c.To == "":
			v = "changed" // a field logged without its values
		case c.From != "":
			v = fmt.Sprintf("%s -> %s", c.From, c.To)
		}
		attrs = append(attrs, slog.String(c.Field, v))
	}
	return attrs
}
