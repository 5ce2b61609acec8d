package middleware

import (
	"context"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
)

// ctxKey is the context key of the authenticated key.
type ctxKey struct{}

// keyContext is the request context after authentication: its parent plus
// the verified key. It is one allocation, where context.WithValue would
// take two (the context and the key boxed in an interface), and it
// forwards everything else to its parent, so cancellation and other values
// work as before. It holds the key as a [keyward.Verified], a read-only
// view of the store's record, so that it stays small (80 bytes, against
// 352 with a copy of the record): every byte allocated per request makes
// the garbage collector mark the store's records again sooner.
type keyContext struct {
	context.Context
	key   keyward.Verified
	fixed *apikey.Record // the record NewContext was given; nil after Authenticate
	cfg   *config        // the Authenticate that verified the key; nil from NewContext
	// The client's address as written where it was found (see
	// ClientAddrFrom), rather than parsed: without trusted proxies,
	// RemoteAddr is parsed only if asked for, and the context stays in
	// the allocation size it had before addresses were kept.
	addrText string
	addrFrom uint8 // addrNone (NewContext), addrRemote, addrXFF, addrForwarded or addrUnknown
}

// Value returns the keyContext itself for ctxKey and asks the parent for
// any other key.
func (c *keyContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// String names the context without printing the record.
func (c *keyContext) String() string { return "middleware.keyContext" }

func fromContext(ctx context.Context) (*keyContext, bool) {
	c, ok := ctx.Value(ctxKey{}).(*keyContext)
	return c, ok
}

// NewContext returns a copy of ctx that carries rec as the authenticated
// key, as [Authenticate] does after verifying a key. It is meant for unit
// tests of handlers, which then need no key at all:
//
//	req = req.WithContext(middleware.NewContext(req.Context(), rec))
//
// [RequireScopes] and [RequireAnyScope] check rec's scopes and answer with
// the default realm and error handler.
func NewContext(ctx context.Context, rec apikey.Record) context.Context {
	return &keyContext{Context: ctx, fixed: &rec}
}

// record returns a copy of the key's record.
func (c *keyContext) record() apikey.Record {
	if c.fixed != nil {
		return *c.fixed
	}
	return c.key.Record()
}

// scopes returns the key's scopes.
func (c *keyContext) scopes() scope.Set {
	if c.fixed != nil {
		return c.fixed.Scopes
	}
	return c.key.Scopes()
}

// KeyFrom returns the record of the key that authenticated the request
// whose context is ctx, and whether there is one. Behind [Authenticate],
// there always is. Its Owner is the account the key belongs to: scope
// everything the handler reads or changes to it. Its Metadata is the
// application's own pairs on the key, and its LastUsedAt the time of this
// request's verification.
func KeyFrom(ctx context.Context) (apikey.Record, bool) {
	c, ok := fromContext(ctx)
	if !ok {
		return apikey.Record{}, false
	}
	return c.record(), true
}

// ScopesFrom returns the scopes of the key in ctx, or the empty set if
// there is no key.
func ScopesFrom(ctx context.Context) scope.Set {
	c, ok := fromContext(ctx)
	if !ok {
		return scope.Set{}
	}
	return c.scopes()
}

// HasScope reports whether the key in ctx holds s. It is false if there is
// no key. Scopes are exact: sessions:write does not imply sessions:read.
func HasScope(ctx context.Context, s scope.Scope) bool {
	c, ok := fromContext(ctx)
	return ok && c.scopes().Has(s)
}
