// Package keywardgrpc authenticates gRPC calls with keyward API keys: the
// gRPC counterpart of package [github.com/keyward/keyward/middleware].
//
// It is a module of its own, github.com/keyward/keyward/keywardgrpc, so
// that servers using net/http alone never download gRPC.
//
// Install both interceptors when creating the server; every method is
// then either public, or requires a valid key and the scopes declared for
// it:
//
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(keywardgrpc.UnaryServerInterceptor(keys, opts...)),
//		grpc.ChainStreamInterceptor(keywardgrpc.StreamServerInterceptor(keys, opts...)),
//	)
//
// where opts declares, by full method name, the scopes each method
// requires ([WithMethodScopes]) and the methods open to all
// ([WithPublicMethods]).
//
// The client sends its key in the "authorization" metadata, as
// "Bearer <key>" (the scheme is case-insensitive), exactly once:
//
//	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
//
// # Fail closed
//
// A method that is neither public nor declared with its scopes is refused
// with codes.PermissionDenied, even for a valid key: adding an RPC to a
// service without deciding who may call it never opens it to every key.
//
// # Status codes
//
// A refused call never reaches the handler, and is answered with:
//
//   - codes.Unauthenticated: no key, a malformed authorization value (another
//     scheme, several values, several credentials), or a malformed,
//     unknown, revoked or expired key. All of these get one and the same
//     message, so that a client never learns whether a key exists or was
//     revoked. A canary key (see [keyward.CreateParams.Canary]) gets it
//     too, and its trip records the peer's address, the user-agent
//     metadata and the full method name.
//   - codes.PermissionDenied: the key lacks a scope the method requires
//     (the message names the scopes), the method declares no requirement,
//     or the key's policy allows other networks than the peer's.
//   - codes.ResourceExhausted: the key is over its rate limit or quota
//     (see [WithLimiter]).
//   - codes.Unavailable: the key store could not answer, or the limiter
//     failed under [limit.Refuse]; the client may retry. It is never
//     Unauthenticated, so a client does not discard a good key during an
//     outage.
//   - codes.Internal: any other failure of verification.
//
// No message contains the key or the text of an internal error.
//
// A valid key refused for a missing scope, its networks or its limits is
// counted against it, as the HTTP middleware counts it: in the key's usage
// ([keyward.Owner.Usage]) and by the lifecycle's observer
// ([keyward.WithObserver]), through [keyward.Keys.CountRefusal].
//
// # Key policies
//
// The networks of a key's policy ([apikey.Policy].Networks) are checked
// against the peer's address, the direct TCP peer of the connection:
// there is no trusted-proxy setting here, so behind a proxy that
// terminates gRPC, the proxy's address is checked. A peer without an IP
// address (a Unix socket, an in-memory connection) is refused for a key
// with networks.
//
// Rate limits and quotas ([apikey.Policy].Rate and [apikey.Policy].Quota)
// are enforced by a limiter given with [WithLimiter], such as a
// [limit.Memory] for one instance, as the HTTP middleware enforces them:
// after the key's scopes and networks are checked, each call of a key
// whose policy sets one counts under the key's ID, and only such keys
// reach the limiter. When the limiter fails, calls are let through or
// refused, as [WithLimiterFailure] says, and the outage is logged once,
// then every 10 seconds while it lasts. Without a limiter, limits are not
// enforced over gRPC, and a warning is logged once, through
// [keyward.Keys.Logger], when a key with them is used.
//
// # Error details
//
// Some refusals carry standard error details
// (google.golang.org/genproto/googleapis/rpc/errdetails), which clients
// read with status.Convert(err).Details():
//
//   - codes.ResourceExhausted (a call over a limit): a RetryInfo, whose
//     RetryDelay is how long until a call would be allowed, and a
//     QuotaFailure with one violation per limit exceeded, of Subject
//     "rate" or "quota".
//   - codes.Unavailable because the limiter failed: a RetryInfo of 5
//     seconds.
//   - codes.PermissionDenied for a missing scope: an ErrorInfo of Reason
//     "INSUFFICIENT_SCOPE" and Domain "keyward", whose Metadata
//     "required_scopes" lists the scopes the method requires, separated by
//     spaces.
package keywardgrpc
