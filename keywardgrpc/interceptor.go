package keywardgrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/outage"
	"github.com/keyward/keyward/limit"
	"github.com/keyward/keyward/scope"
)

// MaxAuthorizationLen is the longest authorization metadata value
// accepted, in bytes. Keys are under 50 bytes; a longer value is refused
// as a missing key, before anything else is done with it.
const MaxAuthorizationLen = 1024

// The messages of refused calls. The one for a missing or invalid key is
// the same for every cause.
const (
	msgUnauthenticated = `missing or invalid API key: send a valid key in the "authorization" metadata as "Bearer <key>"`
	msgUnavailable     = "API keys cannot be checked right now; retry later"
	msgInternal        = "the call could not be authenticated"
	msgNetwork         = "this API key is not allowed from this network"
)

// An Option configures [UnaryServerInterceptor] and
// [StreamServerInterceptor].
type Option func(*config)

type config struct {
	keys    *keyward.Keys
	methods map[string][]scope.Scope // full method name -> required scopes
	public  map[string]bool          // full method names
	err     error                    // the first invalid option

	limiter limit.Limiter     // nil: limits are not enforced
	failure limit.FailureMode // what to do when the limiter fails

	limiterHealth   outage.Log
	unlimitedWarned atomic.Bool // a key with limits was seen without a limiter
}

func (c *config) setErr(err error) {
	if c.err == nil {
		c.err = err
	}
}

// WithMethodScopes declares the scopes each method requires, by full
// method name ("/package.Service/Method", as in [grpc.UnaryServerInfo]):
// a call is let through only if its key holds every one of them. A method
// mapped to no scopes (nil or an empty list) accepts any valid key.
//
//	keywardgrpc.WithMethodScopes(map[string][]scope.Scope{
//		"/checkout.v1.Sessions/Create": {scope.SessionsWrite},
//		"/checkout.v1.Sessions/List":   {scope.SessionsRead},
//	})
//
// A method that neither this option nor [WithPublicMethods] names is
// refused, whatever the key (see the package documentation, "Fail
// closed"). The option may be given several times; naming a method twice,
// a malformed method name or a malformed scope makes the interceptor
// constructors panic.
func WithMethodScopes(methods map[string][]scope.Scope) Option {
	return func(c *config) {
		for m, scopes := range methods {
			if !validMethod(m) {
				c.setErr(fmt.Errorf("keywardgrpc: WithMethodScopes: malformed full method name %q: want \"/package.Service/Method\"", m))
				return
			}
			for _, s := range scopes {
				if !s.Valid() {
					c.setErr(fmt.Errorf("keywardgrpc: WithMethodScopes: malformed scope %q for %s", s, m))
					return
				}
			}
			if _, dup := c.methods[m]; dup || c.public[m] {
				c.setErr(fmt.Errorf("keywardgrpc: method %s is declared twice", m))
				return
			}
			if c.methods == nil {
				c.methods = make(map[string][]scope.Scope)
			}
			c.methods[m] = slices.Clone(scopes)
		}
	}
}

// WithPublicMethods lets calls of the named methods (full method names,
// such as "/grpc.health.v1.Health/Check") through without a key: they are
// not authenticated at all, and [KeyFrom] finds no key in their context.
// Naming a method twice, or also in [WithMethodScopes], or a malformed
// method name makes the interceptor constructors panic.
func WithPublicMethods(methods ...string) Option {
	return func(c *config) {
		for _, m := range methods {
			if !validMethod(m) {
				c.setErr(fmt.Errorf("keywardgrpc: WithPublicMethods: malformed full method name %q: want \"/package.Service/Method\"", m))
				return
			}
			if _, dup := c.methods[m]; dup || c.public[m] {
				c.setErr(fmt.Errorf("keywardgrpc: method %s is declared twice", m))
				return
			}
			if c.public == nil {
				c.public = make(map[string]bool)
			}
			c.public[m] = true
		}
	}
}

// validMethod reports whether m is a full method name: "/service/method",
// both parts non-empty and without further slashes.
func validMethod(m string) bool {
	rest, ok := strings.CutPrefix(m, "/")
	if !ok {
		return false
	}
	svc, method, ok := strings.Cut(rest, "/")
	return ok && svc != "" && method != "" && !strings.Contains(method, "/")
}

func newConfig(name string, keys *keyward.Keys, opts []Option) *config {
	if keys == nil {
		panic("keywardgrpc: " + name + " needs a *keyward.Keys")
	}
	c := &config{keys: keys, failure: limit.LetThrough}
	for _, opt := range opts {
		if opt == nil {
			c.setErr(errors.New("keywardgrpc: " + name + ": nil Option"))
			continue
		}
		opt(c)
	}
	if c.err == nil && c.failure != limit.LetThrough && c.limiter == nil {
		c.err = errors.New("keywardgrpc: Withlimit.FailureMode needs WithLimiter")
	}
	if c.err != nil {
		panic(c.err)
	}
	c.limiterHealth = limiterOutage(keys.Logger(), c.failure)
	return c
}

// UnaryServerInterceptor returns an interceptor that lets a unary call
// through only if its method is public ([WithPublicMethods]), or if the
// call carries a valid key ([keyward.Keys.VerifyFrom]) that holds the
// scopes declared for the method ([WithMethodScopes]), from an allowed
// network, and within its rate limit and quota if a limiter is given
// ([WithLimiter]). The handler then
// finds the key's record in its context with [KeyFrom]. Refused calls get
// the status codes listed in the package documentation.
//
// It panics if keys is nil or an option is invalid: both are mistakes in
// the program, found at start-up.
func UnaryServerInterceptor(keys *keyward.Keys, opts ...Option) grpc.UnaryServerInterceptor {
	c := newConfig("UnaryServerInterceptor", keys, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if c.public[info.FullMethod] {
			return handler(ctx, req)
		}
		key, err := c.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(&keyContext{Context: ctx, key: key}, req)
	}
}

// StreamServerInterceptor is [UnaryServerInterceptor] for streaming
// calls: the stream's Context carries the key's record, for [KeyFrom].
func StreamServerInterceptor(keys *keyward.Keys, opts ...Option) grpc.StreamServerInterceptor {
	c := newConfig("StreamServerInterceptor", keys, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if c.public[info.FullMethod] {
			return handler(srv, ss)
		}
		key, err := c.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &serverStream{ServerStream: ss, ctx: &keyContext{Context: ss.Context(), key: key}})
	}
}

// serverStream is a grpc.ServerStream whose Context carries the key.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context with the key's record.
func (s *serverStream) Context() context.Context { return s.ctx }

// authorize returns the call's key, or the status error
// that refuses the call. The key is verified before the method's
// declaration is looked at, so that a canary used on any method trips,
// and a client without a valid key learns nothing of the methods. A
// verified key refused for its scopes, its networks or its limits is
// counted against it ([keyward.Keys.CountRefusal]); a method that
// declares no scopes is the server's mistake, not the key's, and is not.
func (c *config) authorize(ctx context.Context, method string) (keyward.Verified, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	raw, ok := bearer(md.Get("authorization"))
	if !ok {
		return keyward.Verified{}, status.Error(codes.Unauthenticated, msgUnauthenticated)
	}
	var addr netip.Addr
	cl := keyward.Caller{Path: method}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		cl.Addr = p.Addr.String()
		addr = ipOf(p.Addr)
	}
	if ua := md.Get("user-agent"); len(ua) > 0 {
		cl.UserAgent = ua[0]
	}
	key, err := c.keys.VerifyFrom(ctx, raw, cl)
	switch {
	case err == nil:
	case errors.Is(err, keyward.ErrInvalidKey):
		return keyward.Verified{}, status.Error(codes.Unauthenticated, msgUnauthenticated)
	case errors.Is(err, keyward.ErrStoreUnavailable):
		return keyward.Verified{}, status.Error(codes.Unavailable, msgUnavailable)
	default:
		return keyward.Verified{}, status.Error(codes.Internal, msgInternal)
	}
	required, declared := c.methods[method]
	if !declared {
		return keyward.Verified{}, status.Errorf(codes.PermissionDenied,
			"method %s declares no required scopes, so it is refused to every key; declare it with keywardgrpc.WithMethodScopes or WithPublicMethods", method)
	}
	if missing := key.Scopes().Missing(required...); len(missing) > 0 {
		c.keys.CountRefusal(ctx, key.ID(), keyward.OutcomeInsufficientScope)
		return keyward.Verified{}, withDetails(codes.PermissionDenied, scopeMessage(missing), scopeInfo(required))
	}
	if p := key.Policy(); p != nil {
		if len(p.Networks) > 0 && !p.AllowsAddr(addr) {
			c.keys.CountRefusal(ctx, key.ID(), keyward.OutcomeNetworkRefused)
			return keyward.Verified{}, status.Error(codes.PermissionDenied, msgNetwork)
		}
		if p.Limited() {
			if err := c.enforceLimits(ctx, key.ID(), p); err != nil {
				return keyward.Verified{}, err
			}
		}
	}
	return key, nil
}

// scopeMessage names the scopes a key lacks.
func scopeMessage(missing []scope.Scope) string {
	names := make([]string, len(missing))
	for i, s := range missing {
		names[i] = string(s)
	}
	if len(names) == 1 {
		return "this API key lacks the scope " + names[0]
	}
	return "this API key lacks the scopes " + strings.Join(names, ", ")
}

// scopeInfo is the ErrorInfo of a refusal for missing scopes: the
// reason INSUFFICIENT_SCOPE, and under "required_scopes" all the scopes
// the method requires, separated by spaces, as the HTTP middleware's
// members and challenge give them.
func scopeInfo(required []scope.Scope) *errdetails.ErrorInfo {
	names := make([]string, len(required))
	for i, s := range required {
		names[i] = string(s)
	}
	return &errdetails.ErrorInfo{
		Reason:   "INSUFFICIENT_SCOPE",
		Domain:   "keyward",
		Metadata: map[string]string{"required_scopes": strings.Join(names, " ")},
	}
}

// bearer returns the key of the authorization metadata values: exactly
// one value, "Bearer" (case-insensitive), one or more spaces and one
// token.
func bearer(values []string) (string, bool) {
	if len(values) != 1 || len(values[0]) > MaxAuthorizationLen {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// ipOf returns the IP address of a peer, or the zero Addr, which no
// network contains, if it has none.
func ipOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
