package keywardotel

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/store"
)

// The store operations, in the order of opNames.
type op uint8

const (
	opCreate op = iota
	opGet
	opGetByHash
	opList
	opUpdate
	opRotate
	opRevoke
	opRevokeAll
	opExpose
	opRecordTrip
	opTrips
	opRecordUses
	opAudit
	opAuditChain
	opUsage
	opPruneUsage
	opChanges
	numOps
)

var opNames = [numOps]string{
	"Create", "Get", "GetByHash", "List", "Update", "Rotate", "Revoke", "RevokeAll", "Expose",
	"RecordTrip", "Trips", "RecordUses", "Audit", "AuditChain", "Usage", "PruneUsage", "Changes",
}

// The error types of failed store calls, in the order of errorTypes.
const (
	errTimeout = iota
	errCanceled
	errOther
	numErrorTypes
)

var errorTypes = [numErrorTypes]string{"timeout", "canceled", "_OTHER"}

// spanNames are the names of the spans, by op.
var spanNames = func() (names [numOps]string) {
	for i, op := range opNames {
		names[i] = SpanPrefix + op
	}
	return names
}()

// SpanPrefix begins the name of each span of [Observer.WrapStore]: the
// span of GetByHash is "keyward.store.GetByHash".
const SpanPrefix = "keyward.store."

// WrapStore returns st with a span around each call, named
// "keyward.store." and the method, such as "keyward.store.GetByHash", of
// kind internal, with the attribute keyward.store.operation; and with
// each failed call counted in keyward.store.errors, by operation and
// error.type. A failure is any error but the store's answers (the
// sentinel errors of package store, such as [store.ErrNotFound] for an
// unknown key, and the refusals of invalid input, [apikey.ErrInvalidRecord]
// and [audit.ErrInvalidActor]): one that means the store could not answer
// (see [store.Store]). A failed call's span gets the status Error, with
// the error's text, and error.type.
//
// The result implements [store.LocalLookup] if st does, and answers
// GetByHashLocal from st without a span or a measurement: answers from
// memory stay as cheap as they were, so wrap the memory store, or a
// cache, and its verifications from memory cost nothing more. It
// implements [store.ChangeFeed] if st does; as a cache polls Changes
// twice a second, its calls get a span only within a traced operation
// (a context that carries a span), while its failures are always
// counted.
//
// Wrap the store before [keyward.New], which looks for these interfaces.
// To trace the lookups a cache misses, wrap the store under the cache:
// cache.New(obs.WrapStore(pg)).
func (o *Observer) WrapStore(st store.Store) store.Store {
	t := &tracedStore{next: st, o: o}
	for i := range numOps {
		name := opNames[i]
		t.start[i] = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(AttrStoreOperation.String(name)),
		}
		for e := range numErrorTypes {
			t.errOpts[i][e] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				AttrStoreOperation.String(name), AttrErrorType.String(errorTypes[e])))}
		}
	}
	local, isLocal := st.(store.LocalLookup)
	feed, isFeed := st.(store.ChangeFeed)
	switch {
	case isLocal && isFeed:
		return &localFeedStore{tracedStore: t, local: local, feed: feed}
	case isLocal:
		return &localStore{tracedStore: t, local: local}
	case isFeed:
		return &feedStore{tracedStore: t, feed: feed}
	}
	return t
}

// tracedStore is the store of WrapStore: every method of store.Store.
type tracedStore struct {
	next    store.Store
	o       *Observer
	start   [numOps][]trace.SpanStartOption
	errOpts [numOps][numErrorTypes][]metric.AddOption
}

// localStore, feedStore and localFeedStore add what the wrapped store
// implements of LocalLookup and ChangeFeed.
type (
	localStore struct {
		*tracedStore
		local store.LocalLookup
	}
	feedStore struct {
		*tracedStore
		feed store.ChangeFeed
	}
	localFeedStore struct {
		*tracedStore
		local store.LocalLookup
		feed  store.ChangeFeed
	}
)

var (
	_ store.Store       = (*tracedStore)(nil)
	_ store.LocalLookup = (*localStore)(nil)
	_ store.ChangeFeed  = (*feedStore)(nil)
	_ store.LocalLookup = (*localFeedStore)(nil)
	_ store.ChangeFeed  = (*localFeedStore)(nil)
)

// GetByHashLocal answers from the wrapped store, without a span.
func (s *localStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	return s.local.GetByHashLocal(h)
}

// GetByHashLocal answers from the wrapped store, without a span.
func (s *localFeedStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	return s.local.GetByHashLocal(h)
}

// Changes calls the wrapped store's, within a span if ctx carries one.
func (s *feedStore) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	return s.changes(ctx, s.feed, since)
}

// Changes calls the wrapped store's, within a span if ctx carries one.
func (s *localFeedStore) Changes(ctx context.Context, since string) ([]apikey.Hash, string, error) {
	return s.changes(ctx, s.feed, since)
}

func (s *tracedStore) changes(ctx context.Context, feed store.ChangeFeed, since string) ([]apikey.Hash, string, error) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		changed, next, err := feed.Changes(ctx, since)
		if err != nil && isFailure(err) {
			s.o.storeErrors.Add(ctx, 1, s.errOpts[opChanges][errorType(err)]...)
		}
		return changed, next, err
	}
	ctx, span := s.begin(ctx, opChanges)
	changed, next, err := feed.Changes(ctx, since)
	s.end(ctx, span, opChanges, err)
	return changed, next, err
}

// begin starts the span of a call of op.
func (s *tracedStore) begin(ctx context.Context, o op) (context.Context, trace.Span) {
	return s.o.tracer.Start(ctx, spanNames[o], s.start[o]...)
}

// end ends the span of a call of op that returned err, and counts a
// failure.
func (s *tracedStore) end(ctx context.Context, span trace.Span, o op, err error) {
	if err != nil && isFailure(err) {
		et := errorType(err)
		s.o.storeErrors.Add(ctx, 1, s.errOpts[o][et]...)
		span.SetAttributes(AttrErrorType.String(errorTypes[et]))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// answers are the errors by which a store answers rather than fails.
var answers = []error{
	store.ErrNotFound, store.ErrDuplicate, store.ErrAlreadyRevoked, store.ErrKeyExpired,
	store.ErrReplaced, store.ErrWidening, store.ErrAlreadyCreated, store.ErrIdempotencyConflict,
	store.ErrInvalidCursor, store.ErrWouldBlock, store.ErrAlreadyExposed,
	apikey.ErrInvalidRecord, audit.ErrInvalidActor,
}

// isFailure reports whether err, from a store, means that the store
// could not answer.
func isFailure(err error) bool {
	for _, a := range answers {
		if errors.Is(err, a) {
			return false
		}
	}
	return true
}

func errorType(err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	}
	return errOther
}

// Create calls the wrapped store's within a span.
func (s *tracedStore) Create(ctx context.Context, rec apikey.Record, idem store.Idempotency) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opCreate)
	r, err := s.next.Create(ctx, rec, idem)
	s.end(ctx, span, opCreate, err)
	return r, err
}

// Get calls the wrapped store's within a span.
func (s *tracedStore) Get(ctx context.Context, owner string, id uuid.UUID) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opGet)
	r, err := s.next.Get(ctx, owner, id)
	s.end(ctx, span, opGet, err)
	return r, err
}

// GetByHash calls the wrapped store's within a span.
func (s *tracedStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opGetByHash)
	r, err := s.next.GetByHash(ctx, h)
	s.end(ctx, span, opGetByHash, err)
	return r, err
}

// List calls the wrapped store's within a span.
func (s *tracedStore) List(ctx context.Context, owner string, opts store.ListOptions) (store.Page, error) {
	ctx, span := s.begin(ctx, opList)
	p, err := s.next.List(ctx, owner, opts)
	s.end(ctx, span, opList, err)
	return p, err
}

// Update calls the wrapped store's within a span.
func (s *tracedStore) Update(ctx context.Context, owner string, id uuid.UUID, u store.Update) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opUpdate)
	r, err := s.next.Update(ctx, owner, id, u)
	s.end(ctx, span, opUpdate, err)
	return r, err
}

// Rotate calls the wrapped store's within a span.
func (s *tracedStore) Rotate(ctx context.Context, owner string, id uuid.UUID, next apikey.Record, overlapEnd time.Time) (old, created apikey.Record, err error) {
	ctx, span := s.begin(ctx, opRotate)
	old, created, err = s.next.Rotate(ctx, owner, id, next, overlapEnd)
	s.end(ctx, span, opRotate, err)
	return old, created, err
}

// Revoke calls the wrapped store's within a span.
func (s *tracedStore) Revoke(ctx context.Context, owner string, id uuid.UUID, r store.Revocation) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opRevoke)
	rec, err := s.next.Revoke(ctx, owner, id, r)
	s.end(ctx, span, opRevoke, err)
	return rec, err
}

// RevokeAll calls the wrapped store's within a span.
func (s *tracedStore) RevokeAll(ctx context.Context, owner string, r store.Revocation) ([]apikey.Record, error) {
	ctx, span := s.begin(ctx, opRevokeAll)
	recs, err := s.next.RevokeAll(ctx, owner, r)
	s.end(ctx, span, opRevokeAll, err)
	return recs, err
}

// Expose calls the wrapped store's within a span.
func (s *tracedStore) Expose(ctx context.Context, owner string, id uuid.UUID, e apikey.Exposure, revoke bool) (apikey.Record, error) {
	ctx, span := s.begin(ctx, opExpose)
	r, err := s.next.Expose(ctx, owner, id, e, revoke)
	s.end(ctx, span, opExpose, err)
	return r, err
}

// RecordTrip calls the wrapped store's within a span.
func (s *tracedStore) RecordTrip(ctx context.Context, t apikey.Trip) error {
	ctx, span := s.begin(ctx, opRecordTrip)
	err := s.next.RecordTrip(ctx, t)
	s.end(ctx, span, opRecordTrip, err)
	return err
}

// Trips calls the wrapped store's within a span.
func (s *tracedStore) Trips(ctx context.Context, owner string, id uuid.UUID, limit int) ([]apikey.Trip, error) {
	ctx, span := s.begin(ctx, opTrips)
	t, err := s.next.Trips(ctx, owner, id, limit)
	s.end(ctx, span, opTrips, err)
	return t, err
}

// RecordUses calls the wrapped store's within a span.
func (s *tracedStore) RecordUses(ctx context.Context, uses []store.Use) error {
	ctx, span := s.begin(ctx, opRecordUses)
	err := s.next.RecordUses(ctx, uses)
	s.end(ctx, span, opRecordUses, err)
	return err
}

// Audit calls the wrapped store's within a span.
func (s *tracedStore) Audit(ctx context.Context, owner string, opts store.AuditOptions) (store.AuditPage, error) {
	ctx, span := s.begin(ctx, opAudit)
	p, err := s.next.Audit(ctx, owner, opts)
	s.end(ctx, span, opAudit, err)
	return p, err
}

// AuditChain calls the wrapped store's within a span.
func (s *tracedStore) AuditChain(ctx context.Context, owner string, after int64, limit int) ([]audit.Entry, error) {
	ctx, span := s.begin(ctx, opAuditChain)
	e, err := s.next.AuditChain(ctx, owner, after, limit)
	s.end(ctx, span, opAuditChain, err)
	return e, err
}

// Usage calls the wrapped store's within a span.
func (s *tracedStore) Usage(ctx context.Context, owner string, q store.UsageQuery) ([]store.HourUsage, error) {
	ctx, span := s.begin(ctx, opUsage)
	u, err := s.next.Usage(ctx, owner, q)
	s.end(ctx, span, opUsage, err)
	return u, err
}

// PruneUsage calls the wrapped store's within a span.
func (s *tracedStore) PruneUsage(ctx context.Context, before time.Time) error {
	ctx, span := s.begin(ctx, opPruneUsage)
	err := s.next.PruneUsage(ctx, before)
	s.end(ctx, span, opPruneUsage, err)
	return err
}
