package keywardgrpc_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardgrpc"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store"
	"github.com/keyward/keyward/store/memory"
)

// The full method names of the health service, the RPCs under test.
const (
	methodCheck = "/grpc.health.v1.Health/Check" // unary
	methodWatch = "/grpc.health.v1.Health/Watch" // server streaming
	methodList  = "/grpc.health.v1.Health/List"  // unary, never declared
)

// internalText is the text of the store's failure; it must never reach a
// client.
const internalText = "dial tcp 10.0.0.7:5432: connection refused"

// userAgent is the clients' user agent; grpc-go appends its own.
const userAgent = "keyward-test/1.0"

// flakyStore is a memory store whose verification lookup can be made to
// fail, as a database does when it is down.
type flakyStore struct {
	*memory.Store
	down atomic.Bool
}

func (s *flakyStore) GetByHash(ctx context.Context, h apikey.Hash) (apikey.Record, error) {
	if s.down.Load() {
		return apikey.Record{}, errors.New(internalText)
	}
	return s.Store.GetByHash(ctx, h)
}

// GetByHashLocal hides the memory store's answers from memory while the
// store is down, so that lookups reach GetByHash and fail.
func (s *flakyStore) GetByHashLocal(h apikey.Hash) (*apikey.Record, error) {
	if s.down.Load() {
		return nil, store.ErrWouldBlock
	}
	return s.Store.GetByHashLocal(h)
}

// clock is a settable clock for keyward.WithClock.
type clock struct{ now atomic.Pointer[time.Time] }

func (c *clock) Now() time.Time  { return *c.now.Load() }
func (c *clock) set(t time.Time) { c.now.Store(&t) }

// env is a lifecycle over a flaky store, with one key of each kind.
type env struct {
	keys  *keyward.Keys
	store *flakyStore
	trips chan apikey.Trip

	all       keywardtest.Key // every scope
	links     keywardtest.Key // links:read only
	revoked   keywardtest.Key
	expired   keywardtest.Key
	canary    keywardtest.Key
	elsewhere keywardtest.Key // every scope, allowed from 10.0.0.0/8 only
	loopback  keywardtest.Key // every scope, allowed from 127.0.0.0/8 and ::1
	unknown   string          // well formed, never issued
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clk := new(clock)
	clk.set(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	e := &env{store: &flakyStore{Store: memory.New()}, trips: make(chan apikey.Trip, 16)}
	keys, err := keyward.New(e.store, keyward.WithClock(clk.Now),
		keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { e.trips <- tr }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	e.keys = keys
	every := scope.NewSet(scope.Default.Scopes()...)
	acct := keys.Owner("acct_grpc")
	e.all = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every})
	e.links = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.LinksRead)})
	e.revoked = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every})
	if _, err := acct.Revoke(context.Background(), e.revoked.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	e.expired = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, ExpiresAt: clk.Now().Add(time.Hour)})
	e.canary = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Canary: true})
	e.elsewhere = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Policy: &apikey.Policy{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}})
	e.loopback = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: every, Policy: &apikey.Policy{
		Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	}})
	clk.set(clk.Now().Add(2 * time.Hour))
	sec, err := apikey.Generate(apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	e.unknown = sec.Reveal()
	return e
}

// raws returns every raw key of e, none of which may appear in an error.
func (e *env) raws() []string {
	return []string{e.all.Raw, e.links.Raw, e.revoked.Raw, e.expired.Raw, e.canary.Raw, e.elsewhere.Raw, e.loopback.Raw, e.unknown}
}

// keyIDHeader is the response header in which the health server below
// names the key it found in its context, or "none".
const keyIDHeader = "key-id"

// testHealth answers Check, List and Watch with SERVING, after sending
// the ID of the key in its context in the header.
type testHealth struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
}

func keyID(ctx context.Context) string {
	if rec, ok := keywardgrpc.KeyFrom(ctx); ok {
		return rec.ID.String()
	}
	return "none"
}

func (h *testHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.calls.Add(1)
	if err := grpc.SetHeader(ctx, metadata.Pairs(keyIDHeader, keyID(ctx))); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *testHealth) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.calls.Add(1)
	return &healthpb.HealthListResponse{}, nil
}

func (h *testHealth) Watch(_ *healthpb.HealthCheckRequest, ss healthpb.Health_WatchServer) error {
	h.calls.Add(1)
	if err := ss.SetHeader(metadata.Pairs(keyIDHeader, keyID(ss.Context()))); err != nil {
		return err
	}
	return ss.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// server is a gRPC server on a loopback TCP listener, with both
// interceptors configured by opts, and a client of it.
type server struct {
	health *testHealth
	client healthpb.HealthClient
}

func newServer(t testing.TB, keys *keyward.Keys, opts ...keywardgrpc.Option) *server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(keywardgrpc.UnaryServerInterceptor(keys, opts...)),
		grpc.ChainStreamInterceptor(keywardgrpc.StreamServerInterceptor(keys, opts...)),
	)
	s := &server{health: new(testHealth)}
	healthpb.RegisterHealthServer(srv, s.health)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(userAgent))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	s.client = healthpb.NewHealthClient(conn)
	return s
}

// A kind of call: unary (Check) or server streaming (Watch).
type kind struct {
	name   string
	method string
	// call makes the call with md as its metadata and returns the key ID
	// the handler found, or the call's error.
	call func(ctx context.Context, c healthpb.HealthClient) (string, error)
}

var kinds = []kind{
	{"unary", methodCheck, func(ctx context.Context, c healthpb.HealthClient) (string, error) {
		var header metadata.MD
		if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
			return "", err
		}
		return first(header, keyIDHeader), nil
	}},
	{"stream", methodWatch, func(ctx context.Context, c healthpb.HealthClient) (string, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return "", err
		}
		if _, err := stream.Recv(); err != nil {
			return "", err
		}
		header, err := stream.Header()
		if err != nil {
			return "", err
		}
		return first(header, keyIDHeader), nil
	}},
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// withTimeout returns a context that ends the call if the server hangs.
func withTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// authorized returns ctx with the authorization metadata values.
func authorized(ctx context.Context, values ...string) context.Context {
	for _, v := range values {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	return ctx
}
