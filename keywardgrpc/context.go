package keywardgrpc

import (
	"context"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// ctxKey is the context key of the authenticated key.
type ctxKey struct{}

// keyContext is a call's context after authentication: its parent plus
// the verified key, in one allocation. It forwards everything else to its
// parent, so cancellation, deadlines, metadata and the peer work as
// before. It holds the key as a [keyward.Verified], a read-only view of
// the store's record, rather than a copy of the record, to stay small.
type keyContext struct {
	context.Context
	key   keyward.Verified
	fixed *apikey.Record // the record NewContext was given; nil after the interceptors
}

// Value returns the record for ctxKey and asks the parent for any other
// key.
func (c *keyContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// String names the context without printing the record.
func (c *keyContext) String() string { return "keywardgrpc.keyContext" }

// NewContext returns a copy of ctx that carries rec as the authenticated
// key, as the interceptors do after verifying a key. It is meant for unit
// tests of handlers, which then need no key and no server.
func NewContext(ctx context.Context, rec apikey.Record) context.Context {
	return &keyContext{Context: ctx, fixed: &rec}
}

// KeyFrom returns the record of the key that authenticated the call whose
// context is ctx (for a stream, its Context), and whether there is one.
// Behind the interceptors there always is, except in public methods (see
// [WithPublicMethods]). Its Owner is the account the key belongs to: scope
// everything the handler reads or changes to it.
func KeyFrom(ctx context.Context) (apikey.Record, bool) {
	c, ok := ctx.Value(ctxKey{}).(*keyContext)
	if !ok {
		return apikey.Record{}, false
	}
	if c.fixed != nil {
		return *c.fixed, true
	}
	return c.key.Record(), true
}
