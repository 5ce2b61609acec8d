package keywardotel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardotel"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/memory"
)

// TestVerificationsByOutcome verifies keys of every outcome and checks the
// counter and the histogram of each.
func TestVerificationsByOutcome(t *testing.T) {
	tm := newTelemetry(t)
	clk := newSettable()
	st := &failingStore{Store: memory.New()}
	keys, err := keyward.New(st, keyward.WithObserver(tm.obs), keyward.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	acct := keys.Owner("acct_otel")
	read := scope.NewSet(scope.SessionsRead)
	good := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: read})
	revoked := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: read})
	if _, err := acct.Revoke(t.Context(), revoked.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	expired := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: read, ExpiresAt: clk.Now().Add(time.Minute)})
	clk.advance(time.Hour)
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	verify := func(raw string, n int) {
		for range n {
			keys.Verify(ctx, raw)
		}
	}
	verify(good.Raw, 3)
	verify(sec.Reveal(), 2)
	verify(revoked.Raw, 1)
	verify(expired.Raw, 1)
	verify("ck_test_short", 4)
	st.down.Store(true)
	verify(good.Raw, 2)
	st.down.Store(false)

	want := map[string]int64{"ok": 3, "unknown": 2, "revoked": 1, "expired": 1, "malformed": 4, "unavailable": 2}
	m := tm.collect(t)
	v, ok := m[keywardotel.MetricVerifications]
	if !ok {
		t.Fatalf("no %s among %v", keywardotel.MetricVerifications, slices.Collect(maps.Keys(m)))
	}
	if got := sums(t, v, keywardotel.AttrOutcome); !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", v.Name, got, want)
	}
	if s := v.Data.(metricdata.Sum[int64]); !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("%s is not a monotonic cumulative sum", v.Name)
	}
	if v.Unit != "{verification}" {
		t.Errorf("%s has unit %q", v.Name, v.Unit)
	}
	// The histogram holds a random sample of one verification in 16:
	// never more than were made, and, for the 400 verifications below,
	// some (all 400 are left out once in 10^11 runs).
	verify(good.Raw, 400)
	m = tm.collect(t)
	d, ok := m[keywardotel.MetricVerificationDuration]
	if !ok || d.Unit != "s" {
		t.Fatalf("%s: present %v, unit %q, want s", keywardotel.MetricVerificationDuration, ok, d.Unit)
	}
	n, sum := counts(t, d, keywardotel.AttrOutcome)
	want["ok"] += 400
	for outcome, w := range want {
		if n[outcome] > uint64(w) {
			t.Errorf("%s{%s} counts %d, more than the %d verifications", d.Name, outcome, n[outcome], w)
		}
		// Seconds, not nanoseconds: a verification from memory takes
		// well under a second.
		if sum[outcome] < 0 || sum[outcome] > float64(n[outcome]) {
			t.Errorf("%s{%s} sums %g s for %d verifications", d.Name, outcome, sum[outcome], n[outcome])
		}
	}
	if n["ok"] == 0 || sum["ok"] <= 0 || n["ok"] > 200 {
		t.Errorf("%s{ok} counts %d (%g s) of 403 verifications, want a sample of about one in 16", d.Name, n["ok"], sum["ok"])
	}
	if h := d.Data.(metricdata.Histogram[float64]); len(h.DataPoints) > 0 && h.DataPoints[0].Bounds[0] != 1e-6 {
		t.Errorf("%s's first bucket ends at %g, want 1e-6 (a microsecond)", d.Name, h.DataPoints[0].Bounds[0])
	}
	// Every outcome is reported from the start, so that each series
	// exists before its first count.
	zeros := map[string]int64{"insufficient_scope": 0, "wrong_mode": 0, "limited": 0, "network_refused": 0}
	if got := sums(t, m[keywardotel.MetricRefusals], keywardotel.AttrOutcome); !maps.Equal(got, zeros) {
		t.Errorf("%s = %v, want %v", keywardotel.MetricRefusals, got, zeros)
	}
}

// TestRefusalsByOutcome counts refusals of each outcome, and checks that
// other outcomes are ignored.
func TestRefusalsByOutcome(t *testing.T) {
	tm := newTelemetry(t)
	keys := keywardtest.NewKeys(t, keyward.WithObserver(tm.obs))
	key := keywardtest.Issue(t, keys.Owner("acct_otel"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	rec, err := keys.Verify(t.Context(), key.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for o, n := range map[keyward.Outcome]int{
		keyward.OutcomeInsufficientScope: 3,
		keyward.OutcomeWrongMode:         1,
		keyward.OutcomeLimited:           2,
		keyward.OutcomeNetworkRefused:    1,
		keyward.OutcomeOK:                5, // not a refusal: ignored
	} {
		for range n {
			keys.CountRefusal(t.Context(), rec.ID, o)
		}
	}
	// Not outcomes, or not of the method: ignored.
	tm.obs.ObserveRefusal(t.Context(), keyward.Outcome(200))
	tm.obs.ObserveRefusal(t.Context(), keyward.OutcomeOK)
	tm.obs.ObserveVerify(t.Context(), keyward.Outcome(0), time.Second)
	tm.obs.ObserveVerify(t.Context(), keyward.OutcomeLimited, time.Second)
	m := tm.collect(t)
	want := map[string]int64{"insufficient_scope": 3, "wrong_mode": 1, "limited": 2, "network_refused": 1}
	if got := sums(t, m[keywardotel.MetricRefusals], keywardotel.AttrOutcome); !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", keywardotel.MetricRefusals, got, want)
	}
	wantVerify := map[string]int64{"ok": 1, "unknown": 0, "revoked": 0, "expired": 0, "malformed": 0, "unavailable": 0}
	if got := sums(t, m[keywardotel.MetricVerifications], keywardotel.AttrOutcome); !maps.Equal(got, wantVerify) {
		t.Errorf("%s = %v, want %v", keywardotel.MetricVerifications, got, wantVerify)
	}
}

// TestKeysStats checks the gauges of the lifecycle's pending uses: none,
// then uses that a failing store keeps pending, and their lag by the
// lifecycle's clock; and that Unregister stops them.
func TestKeysStats(t *testing.T) {
	tm := newTelemetry(t)
	clk := newSettable()
	st := &failingStore{Store: memory.New()}
	keys, err := keyward.New(tm.obs.WrapStore(st), keyward.WithObserver(tm.obs), keyward.WithClock(clk.Now),
		keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	reg, err := tm.obs.RegisterKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	gauges := func() (pending int64, lag float64) {
		t.Helper()
		m := tm.collect(t)
		p := sums(t, m[keywardotel.MetricPendingUses], "")[""]
		g, ok := m[keywardotel.MetricFlushLag].Data.(metricdata.Gauge[float64])
		if !ok || len(g.DataPoints) != 1 {
			t.Fatalf("%s: %+v", keywardotel.MetricFlushLag, m[keywardotel.MetricFlushLag].Data)
		}
		return p, g.DataPoints[0].Value
	}
	if p, lag := gauges(); p != 0 || lag != 0 {
		t.Errorf("before any use: pending %d, lag %g; want 0, 0", p, lag)
	}
	key := keywardtest.Issue(t, keys.Owner("acct_otel"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	if _, err := keys.Verify(t.Context(), key.Raw); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	if err := keys.Flush(t.Context()); err == nil {
		t.Fatal("Flush succeeded with the store down")
	}
	clk.advance(7 * time.Second)
	p, lag := gauges()
	if p < 1 || lag != 7 {
		t.Errorf("with a failed write: pending %d, lag %g s; want at least 1 and 7 s", p, lag)
	}
	if got := sums(t, tm.collect(t)[keywardotel.MetricStoreErrors], keywardotel.AttrStoreOperation); got["RecordUses"] != 1 {
		t.Errorf("%s = %v, want one RecordUses", keywardotel.MetricStoreErrors, got)
	}
	st.down.Store(false)
	if err := keys.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p, lag := gauges(); p != 0 || lag != 0 {
		t.Errorf("after a write: pending %d, lag %g; want 0, 0", p, lag)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := tm.collect(t)[keywardotel.MetricPendingUses]; ok {
		t.Errorf("%s still reported after Unregister", keywardotel.MetricPendingUses)
	}
}

// TestCacheStats checks the cache's lookups by result and its entries.
func TestCacheStats(t *testing.T) {
	tm := newTelemetry(t)
	c, err := cache.New(tm.obs.WrapStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := keyward.New(c, keyward.WithObserver(tm.obs))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if _, err := tm.obs.RegisterCache(c); err != nil {
		t.Fatal(err)
	}
	key := keywardtest.Issue(t, keys.Owner("acct_otel"), keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	// The cache serves records once its first poll of the feed succeeded.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Polls == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cache never polled its change feed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, raw := range []string{key.Raw, key.Raw, key.Raw, sec.Reveal(), sec.Reveal()} {
		keys.Verify(t.Context(), raw)
	}
	m := tm.collect(t)
	want := map[string]int64{"hit": 2, "unknown_hit": 1, "miss": 2}
	if got := sums(t, m[keywardotel.MetricCacheLookups], keywardotel.AttrCacheResult); !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", keywardotel.MetricCacheLookups, got, want)
	}
	if s := m[keywardotel.MetricCacheLookups].Data.(metricdata.Sum[int64]); !s.IsMonotonic {
		t.Errorf("%s is not monotonic", keywardotel.MetricCacheLookups)
	}
	if got, want := sums(t, m[keywardotel.MetricCacheEntries], keywardotel.AttrCacheKind), map[string]int64{"known": 1, "unknown": 1}; !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", keywardotel.MetricCacheEntries, got, want)
	}
	// The misses reached the wrapped store, within spans.
	n := 0
	for _, s := range tm.spans.Ended() {
		if s.Name() == "keyward.store.GetByHash" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d spans of GetByHash under the cache, want 2 (its misses)", n)
	}
}

func TestRegisterNil(t *testing.T) {
	tm := newTelemetry(t)
	if _, err := tm.obs.RegisterKeys(nil); err == nil {
		t.Error("RegisterKeys(nil) succeeded")
	}
	if _, err := tm.obs.RegisterCache(nil); err == nil {
		t.Error("RegisterCache(nil) succeeded")
	}
}

// TestGlobalProviders checks that New without options uses the global
// providers, which are no-ops until set.
func TestGlobalProviders(t *testing.T) {
	obs, err := keywardotel.New()
	if err != nil {
		t.Fatal(err)
	}
	obs.ObserveVerify(t.Context(), keyward.OutcomeOK, time.Millisecond)
	obs2, err := keywardotel.New(keywardotel.WithMeterProvider(noop.NewMeterProvider()), keywardotel.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	obs2.ObserveRefusal(t.Context(), keyward.OutcomeLimited)
}

// TestStoreSpans checks the spans and error counts of a wrapped store:
// one span per call, named by method, with its operation; an error status
// and a count for failures only; none for answers from memory.
func TestStoreSpans(t *testing.T) {
	tm := newTelemetry(t)
	st := &failingStore{Store: memory.New()}
	wrapped := tm.obs.WrapStore(st)
	keys, err := keyward.New(wrapped, keyward.WithObserver(tm.obs))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	acct := keys.Owner("acct_otel")
	key := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	tm.spans.Reset()

	ctx, parent := tm.tracer.Tracer("test").Start(t.Context(), "request")
	if _, err := keys.Verify(ctx, key.Raw); err != nil { // from memory: no span
		t.Fatal(err)
	}
	if _, err := acct.Get(ctx, uuid.New()); !errors.Is(err, keyward.ErrNotFound) { // an answer, not a failure
		t.Fatalf("Get of an unknown ID: %v", err)
	}
	st.down.Store(true)
	if _, err := keys.Verify(ctx, key.Raw); !errors.Is(err, keyward.ErrStoreUnavailable) {
		t.Fatalf("Verify with the store down: %v", err)
	}
	st.down.Store(false)
	parent.End()

	spans := tm.spans.Ended()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	if len(spans) != 3 || names[0] != "keyward.store.Get" || names[1] != "keyward.store.GetByHash" || names[2] != "request" {
		t.Fatalf("spans %v, want keyward.store.Get, keyward.store.GetByHash, request", names)
	}
	get, lookup := spans[0], spans[1]
	if get.Parent().SpanID() != parent.SpanContext().SpanID() || lookup.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("the store's spans are not children of the request's")
	}
	if get.Status().Code != codes.Unset {
		t.Errorf("Get of an unknown ID: status %v, want unset: not found is an answer", get.Status())
	}
	if op := attrOf(get.Attributes(), keywardotel.AttrStoreOperation); op != "Get" {
		t.Errorf("Get's span has operation %q", op)
	}
	if lookup.Status().Code != codes.Error || lookup.Status().Description != errDown.Error() {
		t.Errorf("failed GetByHash: status %+v, want Error with the store's error", lookup.Status())
	}
	if et := attrOf(lookup.Attributes(), keywardotel.AttrErrorType); et != "timeout" && et != "_OTHER" {
		t.Errorf("failed GetByHash: error.type %q", et)
	}
	m := tm.collect(t)
	errs := m[keywardotel.MetricStoreErrors].Data.(metricdata.Sum[int64])
	if len(errs.DataPoints) != 1 || errs.DataPoints[0].Value != 1 {
		t.Fatalf("%s: %+v, want one point of 1", keywardotel.MetricStoreErrors, errs.DataPoints)
	}
	p := errs.DataPoints[0]
	if op, _ := p.Attributes.Value(keywardotel.AttrStoreOperation); op.AsString() != "GetByHash" {
		t.Errorf("the error counted for %q, want GetByHash", op.AsString())
	}
	if et, _ := p.Attributes.Value(keywardotel.AttrErrorType); et.AsString() != "_OTHER" {
		t.Errorf("the error's type %q, want _OTHER", et.AsString())
	}
}

func attrOf(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestErrorTypes checks error.type: timeout and canceled by the context's
// error, _OTHER otherwise.
func TestErrorTypes(t *testing.T) {
	tm := newTelemetry(t)
	wrapped := tm.obs.WrapStore(memory.New())
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	wrapped.Get(canceled, "acct", uuid.New())
	wrapped.List(expired, "acct", store.ListOptions{})
	got := map[string]string{}
	for _, p := range tm.collect(t)[keywardotel.MetricStoreErrors].Data.(metricdata.Sum[int64]).DataPoints {
		op, _ := p.Attributes.Value(keywardotel.AttrStoreOperation)
		et, _ := p.Attributes.Value(keywardotel.AttrErrorType)
		got[op.AsString()] = et.AsString()
	}
	if want := map[string]string{"Get": "canceled", "List": "timeout"}; !maps.Equal(got, want) {
		t.Errorf("error types %v, want %v", got, want)
	}
}

// plainStore is a store that implements neither LocalLookup nor
// ChangeFeed.
type plainStore struct{ store.Store }

// feedOnly is a store that implements ChangeFeed and not LocalLookup.
type feedOnly struct {
	store.Store
	store.ChangeFeed
}

// localOnly is a store that implements LocalLookup and not ChangeFeed.
type localOnly struct {
	store.Store
	store.LocalLookup
}

// TestWrapStoreKeepsInterfaces checks that the wrapper implements
// LocalLookup and ChangeFeed exactly when the wrapped store does.
func TestWrapStoreKeepsInterfaces(t *testing.T) {
	tm := newTelemetry(t)
	mem := memory.New()
	for _, tc := range []struct {
		name        string
		st          store.Store
		local, feed bool
	}{
		{"memory", mem, true, true},
		{"plain", plainStore{mem}, false, false},
		{"feed only", feedOnly{mem, mem}, false, true},
		{"local only", localOnly{mem, mem}, true, false},
	} {
		w := tm.obs.WrapStore(tc.st)
		if _, ok := w.(store.LocalLookup); ok != tc.local {
			t.Errorf("%s: LocalLookup %t, want %t", tc.name, ok, tc.local)
		}
		if _, ok := w.(store.ChangeFeed); ok != tc.feed {
			t.Errorf("%s: ChangeFeed %t, want %t", tc.name, ok, tc.feed)
		}
	}
}

// TestChangesSpans checks that Changes, which a cache polls, gets a span
// only within a traced operation.
func TestChangesSpans(t *testing.T) {
	tm := newTelemetry(t)
	feed := tm.obs.WrapStore(memory.New()).(store.ChangeFeed)
	if _, _, err := feed.Changes(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if n := len(tm.spans.Ended()); n != 0 {
		t.Errorf("%d spans for a poll outside a trace, want none", n)
	}
	ctx, parent := tm.tracer.Tracer("test").Start(t.Context(), "request")
	if _, _, err := feed.Changes(ctx, ""); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if spans := tm.spans.Ended(); len(spans) != 2 || spans[0].Name() != "keyward.store.Changes" {
		t.Errorf("spans %d, want keyward.store.Changes and request", len(spans))
	}
}

// TestWrapStoreMethods calls every method of store.Store through the
// wrapper and checks that each reaches the wrapped store, within a span of
// its name.
func TestWrapStoreMethods(t *testing.T) {
	tm := newTelemetry(t)
	wrapped := tm.obs.WrapStore(memory.New())
	keys, err := keyward.New(wrapped, keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	acct := keys.Owner("acct_otel")
	ctx := t.Context()
	read := scope.NewSet(scope.SessionsRead)
	key := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.Default.Scopes()...)})
	canary := keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: read, Canary: true})
	steps := []func() error{
		func() error { _, err := keys.Verify(ctx, key.Raw); return err },
		func() error { return keys.Flush(ctx) },
		func() error { return wrapped.PruneUsage(ctx, time.Now().Add(-48*time.Hour)) }, // what the writer does hourly
		func() error { _, err := acct.Get(ctx, key.Record.ID); return err },
		func() error { _, err := acct.List(ctx, keyward.ListOptions{}); return err },
		func() error {
			_, err := acct.Update(ctx, key.Record.ID, keyward.UpdateParams{Name: "renamed"})
			return err
		},
		func() error { _, _, err := acct.Rotate(ctx, key.Record.ID, keyward.RotateParams{}); return err },
		func() error { _, err := acct.Revoke(ctx, key.Record.ID, keyward.RevokeParams{}); return err },
		func() error {
			_, err := keys.Verify(ctx, canary.Raw) // a trip, written in the background
			if !errors.Is(err, keyward.ErrUnknownKey) {
				return fmt.Errorf("a canary verified: %v", err)
			}
			return nil
		},
		func() error {
			_, err := keys.ReportExposure(ctx, key.Raw, keyward.Exposure{Source: "support"})
			return err
		},
		func() error { _, err := acct.RevokeAll(ctx, keyward.RevokeParams{}); return err },
		func() error { _, err := acct.Trips(ctx, canary.Record.ID, 0); return err },
		func() error { _, err := acct.Audit(ctx, keyward.AuditOptions{}); return err },
		func() error { _, err := acct.CheckAudit(ctx); return err },
		func() error {
			_, err := acct.Usage(ctx, keyward.UsageQuery{Keys: []uuid.UUID{key.Record.ID}, From: time.Now().Add(-time.Hour)})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := keys.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range tm.spans.Ended() {
		seen[s.Name()] = true
	}
	for _, name := range []string{"Create", "Get", "GetByHash", "List", "Update", "Rotate", "Revoke", "RevokeAll", "Expose", "RecordTrip", "Trips",
		"RecordUses", "Audit", "AuditChain", "Usage", "PruneUsage"} {
		if !seen[keywardotel.SpanPrefix+name] {
			t.Errorf("no span %s%s among %v", keywardotel.SpanPrefix, name, slices.Collect(maps.Keys(seen)))
		}
	}
}
