package cache_test

// The cache against a real PostgreSQL server: two app instances on one
// database, a flood of random keys, and a connection that drops and comes
// back.

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/cache"
	"github.com/keyward/keyward/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// pgTable migrates a fresh table and returns its qualified name.
func pgTable(t *testing.T) string {
	t.Helper()
	db := pgtest.DB(t)
	table := pgtest.Schema(t, db) + ".api_keys"
	if err := postgres.Migrate(context.Background(), db, postgres.WithTable(table)); err != nil {
		t.Fatal(err)
	}
	return table
}

// countingStore counts the verification lookups that reach PostgreSQL.
type countingStore struct {
	*postgres.Store
	lookups atomic.Int64
}

func (s *countingStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	s.lookups.Add(1)
	return s.Store.GetByHash(ctx, h)
}

// instance is one app instance: its own pool, cached store and lifecycle.
type instance struct {
	pg    *countingStore
	cache *cache.Store
	keys  *keyward.Keys
}

func newInstance(t *testing.T, db *sql.DB, table string, opts ...cache.Option) *instance {
	t.Helper()
	return newInstanceOf(t, db, []postgres.Option{postgres.WithTable(table)}, opts...)
}

// newInstanceOf is newInstance with the options of its PostgreSQL store.
func newInstanceOf(t *testing.T, db *sql.DB, pgOpts []postgres.Option, opts ...cache.Option) *instance {
	t.Helper()
	st, err := postgres.New(db, pgOpts...)
	if err != nil {
		t.Fatal(err)
	}
	pg := &countingStore{Store: st}
	c := newCache(t, pg, opts...)
	k, err := keyward.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return &instance{pg: pg, cache: c, keys: k}
}

// waitServing waits until the instance answers raw from its cache: two
// verifications in a row without a lookup reaching PostgreSQL.
func (in *instance) waitServing(t *testing.T, raw string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		before := in.pg.lookups.Load()
		_, err1 := in.keys.Verify(context.Background(), raw)
		_, err2 := in.keys.Verify(context.Background(), raw)
		if err1 == nil && err2 == nil && in.pg.lookups.Load()-before <= 1 {
			if in.pg.lookups.Load() == before+1 {
				continue // the first filled the cache; check a clean pair
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance never served from its cache (last errors %v, %v)", err1, err2)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPollAfterNow waits until a poll of the instance's change feed that
// began after the call has succeeded: the second successful poll to end
// from now on (the first may have begun before). Only an event is waited
// for, however late polls are on a loaded machine: from then on, the
// instance must see every change committed before the call.
func (in *instance) waitPollAfterNow(t *testing.T) {
	t.Helper()
	target := in.cache.Stats().Polls + 2
	deadline := time.Now().Add(20 * time.Second)
	for in.cache.Stats().Polls < target {
		if time.Now().After(deadline) {
			t.Fatalf("%d successful polls of the change feed in 20s, waited for %d", in.cache.Stats().Polls, target)
		}
		time.Sleep(time.Millisecond)
	}
}

// pgOwner owns the keys createKey makes.
const pgOwner = "acct_cached"

func createKey(t *testing.T, k *keyward.Keys) (string, apikey.Record) {
	t.Helper()
	return createKeyOf(t, k, pgOwner, scope.SessionsWrite)
}

func createKeyOf(t *testing.T, k *keyward.Keys, owner string, scopes ...scope.Scope) (string, apikey.Record) {
	t.Helper()
	sec, rec, err := k.Owner(owner).Create(context.Background(), keyward.CreateParams{
		Name: "pg cached", Mode: apikey.Live, Scopes: scope.NewSet(scopes...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal(), rec
}

// TestPostgresRevocationAcrossInstances: A and B share one database, each
// with its own pool and cache. A revocation through A is refused by A on
// its very next request, and by B within the bound, while B made no
// query per request before it.
func TestPostgresRevocationAcrossInstances(t *testing.T) {
	table := pgTable(t)
	const bound = 300 * time.Millisecond
	a := newInstance(t, pgtest.DB(t), table, cache.WithBound(bound))
	b := newInstance(t, pgtest.Open(t), table, cache.WithBound(bound))
	ctx := context.Background()

	raw, rec := createKey(t, a.keys)
	a.waitServing(t, raw)
	b.cachedFor(t, raw, 500)

	if _, err := a.keys.Owner(pgOwner).Revoke(ctx, rec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("A's next request after its own revocation: %v, want ErrRevoked", err)
	}
	// B learns from its first poll that begins after the revocation: one
	// begins every half bound, and B serves from its cache only while the
	// last successful one began less than a bound ago.
	b.waitPollAfterNow(t)
	if _, err := b.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("B, after a poll that began after the revocation through A: %v, want ErrRevoked", err)
	}
}

// TestPostgresDelayedCommitAcrossInstances: B revokes a key and narrows
// another in a transaction of its own that stays open while A's cache
// polls the feed several times, then commits. Until the COMMIT, A serves
// both as they were (nothing is committed); from A's first poll that
// begins after it, A refuses the one and sees the other narrowed. A's
// store is given the smallest change margin there was: the feed ordered
// by the UPDATE's clock, which that margin limited, missed such a late
// commit, and A went on accepting the key until its cache's max age; the
// margin now has no effect.
func TestPostgresDelayedCommitAcrossInstances(t *testing.T) {
	table := pgTable(t)
	const bound = 300 * time.Millisecond
	//lint:ignore SA1019 the deprecated margin must no longer matter
	tiny := postgres.WithChangeMargin(time.Microsecond)
	a := newInstanceOf(t, pgtest.DB(t), []postgres.Option{postgres.WithTable(table), tiny}, cache.WithBound(bound))
	dbB := pgtest.Open(t)
	b := newInstance(t, dbB, table, cache.WithBound(bound))
	ctx := context.Background()

	revokedRaw, revokedRec := createKeyOf(t, b.keys, pgOwner, scope.SessionsWrite)
	narrowedRaw, narrowedRec := createKeyOf(t, b.keys, pgOwner, scope.SessionsWrite, scope.LinksRead)
	a.cachedFor(t, revokedRaw, 10)
	a.cachedFor(t, narrowedRaw, 10)

	tx, err := dbB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	inTx := b.pg.Store.WithTx(tx)
	if _, err := inTx.Revoke(ctx, pgOwner, revokedRec.ID, store.Revocation{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx.Update(ctx, pgOwner, narrowedRec.ID, store.Update{Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
		t.Fatal(err)
	}
	// Several of A's polls begin and end while the transaction is open.
	for range 3 {
		a.waitPollAfterNow(t)
	}
	if _, err := a.keys.Verify(ctx, revokedRaw); err != nil {
		t.Errorf("A, before the COMMIT: %v, want the key as committed, active", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	a.waitPollAfterNow(t)
	if _, err := a.keys.Verify(ctx, revokedRaw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("A, after a poll that began after the COMMIT: %v, want ErrRevoked", err)
	}
	got, err := a.keys.Verify(ctx, narrowedRaw)
	if err != nil || !got.Scopes.Equal(scope.NewSet(scope.LinksRead)) {
		t.Errorf("A, after a poll that began after the COMMIT: scopes %v, %v; want links:read alone", got.Scopes, err)
	}
}

// cachedFor waits until in serves raw from its cache, then until n
// verifications in a row make no query; it returns the record they gave.
// On a loaded machine a poll may end more than a bound after the one
// before: the cache then stops serving records until it does, as it must,
// and the n verifications are tried again.
func (in *instance) cachedFor(t *testing.T, raw string, n int) apikey.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		in.waitServing(t, raw)
		before := in.pg.lookups.Load()
		var rec apikey.Record
		for range n {
			var err error
			if rec, err = in.keys.Verify(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
		}
		q := in.pg.lookups.Load() - before
		if q == 0 {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queries for %d cached verifications, and never none in 20s", q, n)
		}
	}
}

// TestPostgresUpdateAcrossInstances: scopes narrowed through A are the
// key's scopes at A's next request, and at B's within the bound, although
// B served the key from its cache until then.
func TestPostgresUpdateAcrossInstances(t *testing.T) {
	table := pgTable(t)
	const bound = 300 * time.Millisecond
	a := newInstance(t, pgtest.DB(t), table, cache.WithBound(bound))
	b := newInstance(t, pgtest.Open(t), table, cache.WithBound(bound))
	ctx := context.Background()

	raw, rec := createKeyOf(t, a.keys, pgOwner, scope.SessionsWrite, scope.LinksRead)
	a.cachedFor(t, raw, 100)
	if got := b.cachedFor(t, raw, 100); !got.Scopes.Has(scope.SessionsWrite) {
		t.Fatalf("B's cached key has scopes %v, want sessions:write among them", got.Scopes)
	}

	if _, err := a.keys.Owner(pgOwner).Update(ctx, rec.ID, keyward.UpdateParams{Scopes: scope.NewSet(scope.LinksRead)}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.keys.Verify(ctx, raw); err != nil || got.Scopes.Has(scope.SessionsWrite) {
		t.Errorf("A's next request after its own update: scopes %v, %v; want links:read alone", got.Scopes, err)
	}
	// B learns from its first poll that begins after the update.
	b.waitPollAfterNow(t)
	got, err := b.keys.Verify(ctx, raw)
	if err != nil || !got.Scopes.Equal(scope.NewSet(scope.LinksRead)) {
		t.Errorf("B, after a poll that began after the update through A: scopes %v, %v; want links:read alone", got.Scopes, err)
	}
}

// TestPostgresRevokeAllAcrossInstances: an account's keys revoked all at
// once through A are refused by A at once and by B within the bound,
// although B served them from its cache until then; another account's
// key still works.
func TestPostgresRevokeAllAcrossInstances(t *testing.T) {
	table := pgTable(t)
	const bound = 300 * time.Millisecond
	a := newInstance(t, pgtest.DB(t), table, cache.WithBound(bound))
	b := newInstance(t, pgtest.Open(t), table, cache.WithBound(bound))
	ctx := context.Background()

	var raws []string
	for range 5 {
		raw, _ := createKey(t, a.keys)
		raws = append(raws, raw)
	}
	theirs, _ := createKeyOf(t, a.keys, "acct_other", scope.SessionsWrite)
	for _, raw := range append(raws, theirs) {
		a.cachedFor(t, raw, 10)
		b.cachedFor(t, raw, 10)
	}

	revoked, err := a.keys.Owner(pgOwner).RevokeAll(ctx, keyward.RevokeParams{})
	if err != nil || len(revoked) != len(raws) {
		t.Fatalf("RevokeAll = %d keys, %v; want %d", len(revoked), err, len(raws))
	}
	for _, raw := range raws {
		if _, err := a.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("A's next request after its own RevokeAll: %v, want ErrRevoked", err)
		}
	}
	// B learns from its first poll that begins after RevokeAll: from then
	// on, B must refuse every key of the account.
	b.waitPollAfterNow(t)
	for _, raw := range raws {
		if _, err := b.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrRevoked) {
			t.Errorf("B, after a poll that began after RevokeAll through A: %v, want ErrRevoked", err)
		}
	}
	if _, err := b.keys.Verify(ctx, theirs); err != nil {
		t.Errorf("B: another account's key after RevokeAll: %v", err)
	}
}

// TestPostgresExpiryFromCache: rotation through A sets the old key's
// expiry; both instances honour it from their caches, to the second.
func TestPostgresExpiryFromCache(t *testing.T) {
	table := pgTable(t)
	a := newInstance(t, pgtest.DB(t), table, cache.WithBound(200*time.Millisecond))
	ctx := context.Background()
	raw, rec := createKey(t, a.keys)
	a.waitServing(t, raw)
	newSec, _, err := a.keys.Owner(pgOwner).Rotate(ctx, rec.ID, keyward.RotateParams{Overlap: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	old, err := a.keys.Owner(pgOwner).Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	// During the overlap the old key works: it may be refused only if the
	// machine stalled until its expiry.
	if _, err := a.keys.Verify(ctx, raw); err != nil && !(errors.Is(err, keyward.ErrExpired) && !time.Now().Before(old.ExpiresAt)) {
		t.Fatalf("during the overlap, the old key: %v", err)
	}
	a.waitServing(t, newSec.Reveal())
	time.Sleep(time.Until(old.ExpiresAt)) // the event is the expiry, a time
	if _, err := a.keys.Verify(ctx, raw); !errors.Is(err, keyward.ErrExpired) {
		t.Errorf("after the overlap, the old key: %v, want ErrExpired", err)
	}
	if _, err := a.keys.Verify(ctx, newSec.Reveal()); err != nil {
		t.Errorf("after the overlap, the new key: %v", err)
	}
}

// TestPostgresRandomKeyFlood: a client replaying random keys reaches the
// database once per distinct key, then never again; and a flood of
// distinct keys leaves the cache within its bound.
func TestPostgresRandomKeyFlood(t *testing.T) {
	table := pgTable(t)
	const maxUnknown = 64 * 64
	a := newInstance(t, pgtest.DB(t), table, cache.WithMaxUnknown(maxUnknown))
	ctx := context.Background()
	raw, _ := createKey(t, a.keys)
	a.waitServing(t, raw)

	bogus := make([]string, 500)
	for i := range bogus {
		sec, _ := apikey.Generate(apikey.Live)
		bogus[i] = sec.Reveal()
	}
	flood := func() {
		for _, k := range bogus {
			if _, err := a.keys.Verify(ctx, k); !errors.Is(err, keyward.ErrUnknownKey) {
				t.Fatalf("a random key: %v, want ErrUnknownKey", err)
			}
		}
	}
	before := a.pg.lookups.Load()
	flood()
	if n := a.pg.lookups.Load() - before; n != int64(len(bogus)) {
		t.Errorf("the first pass of %d random keys made %d queries", len(bogus), n)
	}
	before = a.pg.lookups.Load()
	for range 5 {
		flood()
	}
	if n := a.pg.lookups.Load() - before; n != 0 {
		t.Errorf("replaying the flood 5 times made %d queries, want 0", n)
	}

	for range 4 * maxUnknown {
		sec, _ := apikey.Generate(apikey.Test)
		_, _ = a.keys.Verify(ctx, sec.Reveal())
	}
	if st := a.cache.Stats(); st.Unknown > maxUnknown {
		t.Errorf("%d unknown hashes cached after a flood, bound %d", st.Unknown, maxUnknown)
	}
	// The real key still works through all this.
	if _, err := a.keys.Verify(ctx, raw); err != nil {
		t.Errorf("the real key after the flood: %v", err)
	}
}

// faultyNet dials PostgreSQL for one pool and can cut it off: close every
// connection and refuse new ones, as a network partition would.
type faultyNet struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func (f *faultyNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("faultyNet: network is down")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		f.conns = append(f.conns, c)
	}
	return c, err
}

func (f *faultyNet) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *faultyNet) restore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

// TestPostgresDroppedConnectionHeals: A's connections drop and it cannot
// reconnect. Within the bound, A stops answering from its cache and
// reports the store unavailable (never an invalid key, never a key revoked
// meanwhile through B). When the network is back, A heals by itself: it
// refuses the key revoked during the outage and serves from its cache
// again.
func TestPostgresDroppedConnectionHeals(t *testing.T) {
	table := pgTable(t)
	cfg, err := pgx.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	netA := new(faultyNet)
	cfg.DialFunc = netA.dial
	dbA := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { dbA.Close() })

	const bound = 300 * time.Millisecond
	a := newInstance(t, dbA, table, cache.WithBound(bound))
	b := newInstance(t, pgtest.Open(t), table, cache.WithBound(bound))
	ctx := context.Background()
	revokedRaw, revokedRec := createKey(t, b.keys)
	keptRaw, _ := createKey(t, b.keys)
	a.waitServing(t, revokedRaw)
	a.waitServing(t, keptRaw)

	netA.cut()
	cut := time.Now()
	if _, err := b.keys.Owner(pgOwner).Revoke(ctx, revokedRec.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	// The event is the bound running out: no poll can succeed from the
	// cut on, the last one that did began before it, and A serves
	// records only until one bound after that start, however loaded the
	// machine.
	time.Sleep(time.Until(cut.Add(bound)))
	for _, raw := range []string{revokedRaw, keptRaw} {
		vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := a.keys.Verify(vctx, raw)
		cancel()
		if !errors.Is(err, keyward.ErrStoreUnavailable) || errors.Is(err, keyward.ErrInvalidKey) {
			t.Errorf("during the outage, A answers %v; want ErrStoreUnavailable", err)
		}
	}

	netA.restore()
	a.waitServing(t, keptRaw)
	if _, err := a.keys.Verify(ctx, revokedRaw); !errors.Is(err, keyward.ErrRevoked) {
		t.Errorf("after healing, the key revoked during the outage: %v, want ErrRevoked", err)
	}
	a.cachedFor(t, keptRaw, 100) // after healing, from the cache again
}
