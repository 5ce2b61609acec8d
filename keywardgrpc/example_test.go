package keywardgrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardgrpc"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// healthServer is an ordinary gRPC service; the key that called it is in
// the call's context, with the account it belongs to.
type healthServer struct {
	healthpb.UnimplementedHealthServer
}

func (healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	key, _ := keywardgrpc.KeyFrom(ctx) // always present behind the interceptors
	fmt.Printf("Check called by %s in %s mode\n", key.Owner, key.Mode)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// A gRPC server whose methods require API keys, called over an in-memory
// connection with and without a key.
func Example() {
	keys, err := keyward.New(memory.New())
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close() // after the server has stopped: writes last-used times
	secret, _, err := keys.Owner("acct_123").Create(context.Background(), keyward.CreateParams{
		Name:   "Backend server",
		Mode:   apikey.Test,
		Scopes: scope.NewSet(scope.SessionsRead),
	})
	if err != nil {
		log.Fatal(err)
	}

	// The scopes each method requires, and the methods open to all. Any
	// other method is refused, even to a valid key.
	auth := []keywardgrpc.Option{
		keywardgrpc.WithMethodScopes(map[string][]scope.Scope{
			"/grpc.health.v1.Health/Check": {scope.SessionsRead},
		}),
		keywardgrpc.WithPublicMethods("/grpc.health.v1.Health/Watch"),
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(keywardgrpc.UnaryServerInterceptor(keys, auth...)),
		grpc.ChainStreamInterceptor(keywardgrpc.StreamServerInterceptor(keys, auth...)),
	)
	healthpb.RegisterHealthServer(srv, healthServer{})

	lis := bufconn.Listen(1 << 20) // in memory, for the example; net.Listen in production
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), // use TLS in production: the key is a bearer token
	)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	// Without a key: refused before the handler.
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(status.Code(err))

	// With a key: clients send it in the "authorization" metadata.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+secret.Reveal())
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetStatus())
	// Output:
	// Unauthenticated
	// Check called by acct_123 in test mode
	// SERVING
}
