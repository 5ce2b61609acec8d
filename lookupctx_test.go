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
type lookupSeen struct{ err error }

func (s *heldStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	s.seen <- lookupSeen{err: ctx.Err()}
	if err := ctx.Err(); err != nil {
		return apikey.Record{}, err
	}
	return s.Store.GetByHash(ctx, h)
}

// TestLookupEndsWithItsCaller: a lookup in the store ends when its
// caller's context does, with the caller's error (the reliability
// contract: a store call returns promptly once its context is done), and
// a caller that already gave up sends no query at all.
func TestLookupEndsWithItsCaller(t *testing.T) {
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

	// The caller goes away while its lookup is in the store.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := keys.Verify(ctx, raw)
		done <- err
	}()
	select {
	case <-st.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no lookup within 30s")
	}
	cancel()
	select {
	case got := <-st.seen:
		if !errors.Is(got.err, context.Canceled) {
			t.Errorf("the store's lookup ended with %v, want the caller's context.Canceled", got.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lookup did not end within 30s of its caller's cancellation")
	}
	select {
	case err := <-done:
		if !errors.Is(err, keyward.ErrStoreUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("Verify whose caller went away = %v, want a store error wrapping context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Verify did not return within 30s")
	}

	// A caller that already gave up sends no query.
	if _, err := keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrStoreUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with an ended context = %v, want a store error wrapping context.Canceled", err)
	}
	select {
	case <-st.started:
		t.Error("a lookup was sent for a caller that had already gone")
	default:
	}
}
