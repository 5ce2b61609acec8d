package keyward_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// heldStore answers lookups only when released, and reports the context
// each lookup had when it answered. It embeds the interface, so that the
// memory store's answers from memory are hidden: every lookup reaches
// GetByHash.
type heldStore struct {
	store.Store
	started chan struct{}
	release chan struct{}
	seen    chan lookupSeen
}

// lookupSeen is a lookup's context as the store saw it when answering.
type lookupSeen struct {
	err      error
	deadline time.Time
	ok       bool // whether it had a deadline
}

func (s *heldStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	d, ok := ctx.Deadline()
	s.seen <- lookupSeen{ctx.Err(), d, ok}
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	return s.Store.GetByHash(ctx, h)
}

// TestLookupOutlivesItsCaller: a lookup sent to the store is not
// cancelled with its caller's context (a client that disconnects must not
// make the driver drop a database connection), keeps the caller's
// deadline when it is the earlier, and is not sent at all for a caller
// that already gave up.
func TestLookupOutlivesItsCaller(t *testing.T) {
	st := &heldStore{Store: memory.New(), started: make(chan struct{}, 1), release: make(chan struct{}), seen: make(chan lookupSeen, 1)}
	keys, err := keyward.New(st, keyward.WithLookupTimeout(time.Minute), keyward.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	sec, _, err := keys.Owner("acct_1").Create(context.Background(), keyward.CreateParams{Name: "k", Mode: apikey.Live, Scopes: scope.NewSet(scope.LinksRead)})
	if err != nil {
		t.Fatal(err)
	}
	raw := sec.Reveal()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s within 30s", what)
		}
	}

	// The caller goes away while its lookup is in the store.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := keys.Verify(ctx, raw)
		done <- err
	}()
	wait("lookup", st.started)
	cancel()
	st.release <- struct{}{}
	select {
	case got := <-st.seen:
		if got.err != nil {
			t.Errorf("the store's lookup was cancelled with its caller: %v", got.err)
		}
		if !got.ok || time.Until(got.deadline) < 30*time.Second {
			t.Errorf("the lookup's deadline is %v (%v), want the lookup timeout, a minute away", got.deadline, got.ok)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lookup did not end within 30s")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Verify whose caller went away mid-lookup = %v, want the lookup's answer", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Verify did not return within 30s")
	}

	// The caller's deadline, earlier than the timeout, is the lookup's.
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	want, _ := dctx.Deadline()
	go func() {
		_, err := keys.Verify(dctx, raw)
		done <- err
	}()
	wait("lookup", st.started)
	st.release <- struct{}{}
	if got := <-st.seen; !got.ok || !got.deadline.Equal(want) {
		t.Errorf("the lookup's deadline is %v, want the caller's %v", got.deadline, want)
	}
	<-done

	// A caller that already gave up sends no query.
	gone, goneCancel := context.WithCancel(context.Background())
	goneCancel()
	if _, err := keys.Verify(gone, raw); !errors.Is(err, keyward.ErrStoreUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with an ended context = %v, want a store error wrapping context.Canceled", err)
	}
	select {
	case <-st.started:
		t.Error("a lookup was sent for a caller that had already gone")
	default:
	}
}
