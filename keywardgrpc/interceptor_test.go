package keywardgrpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardgrpc"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/scope"
)

// scoped requires sessions:write for both methods under test.
func scoped() keywardgrpc.Option {
	return keywardgrpc.WithMethodScopes(map[string][]scope.Scope{
		methodCheck: {scope.SessionsWrite},
		methodWatch: {scope.SessionsWrite},
	})
}

// checkNoKey fails the test if err's text holds any raw key of e or the
// store's internal error.
func checkNoKey(t *testing.T, e *env, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, raw := range e.raws() {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("the error %q holds a raw key", err)
		}
	}
	if strings.Contains(err.Error(), internalText) {
		t.Errorf("the error %q holds the store's internal error", err)
	}
}

func TestValidKeyReachesTheHandler(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, scoped())
	for _, k := range kinds {
		for _, tc := range []struct {
			name  string
			value string
			key   keywardtest.Key
		}{
			{"Bearer", "Bearer " + e.all.Raw, e.all},
			{"lower-case scheme", "bearer " + e.all.Raw, e.all},
			{"upper-case scheme", "BEARER " + e.all.Raw, e.all},
			{"several spaces", "Bearer   " + e.all.Raw, e.all},
			{"allowed network", "Bearer " + e.loopback.Raw, e.loopback},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				got, err := k.call(authorized(withTimeout(t), tc.value), s.client)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if want := tc.key.Record.ID.String(); got != want {
					t.Errorf("KeyFrom in the handler: key %q, want %q", got, want)
				}
			})
		}
	}
}

func TestInvalidKeysAreUnauthenticated(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, scoped())
	var want string // the one message of every case
	for _, k := range kinds {
		for _, tc := range []struct {
			name   string
			values []string
		}{
			{"no metadata", nil},
			{"empty", []string{""}},
			{"wrong scheme", []string{"Basic " + e.all.Raw}},
			{"no scheme", []string{e.all.Raw}},
			{"two values", []string{"Bearer " + e.all.Raw, "Bearer " + e.all.Raw}},
			{"Bearer without a key", []string{"Bearer "}},
			{"two credentials", []string{"Bearer " + e.all.Raw + " " + e.all.Raw}},
			{"too long", []string{"Bearer " + e.all.Raw + strings.Repeat("A", keywardgrpc.MaxAuthorizationLen)}},
			{"malformed", []string{"Bearer ck_test_nope"}},
			{"unknown", []string{"Bearer " + e.unknown}},
			{"revoked", []string{"Bearer " + e.revoked.Raw}},
			{"expired", []string{"Bearer " + e.expired.Raw}},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				before := s.health.calls.Load()
				_, err := k.call(authorized(withTimeout(t), tc.values...), s.client)
				if got := status.Code(err); got != codes.Unauthenticated {
					t.Fatalf("code = %v (%v), want Unauthenticated", got, err)
				}
				msg := status.Convert(err).Message()
				if want == "" {
					want = msg
				}
				if msg != want {
					t.Errorf("message = %q, want the same for every case: %q", msg, want)
				}
				if s.health.calls.Load() != before {
					t.Error("the handler was called")
				}
				checkNoKey(t, e, err)
			})
		}
	}
}

func TestMissingScopeIsPermissionDenied(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, scoped())
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			_, err := k.call(authorized(withTimeout(t), "Bearer "+e.links.Raw), s.client)
			if got := status.Code(err); got != codes.PermissionDenied {
				t.Fatalf("code = %v (%v), want PermissionDenied", got, err)
			}
			if got, want := status.Convert(err).Message(), "this API key lacks the scope sessions:write"; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
			checkNoKey(t, e, err)
		})
	}
	if n := s.health.calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times", n)
	}
}

func TestSeveralMissingScopesAreNamed(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, keywardgrpc.WithMethodScopes(map[string][]scope.Scope{
		methodCheck: {scope.SessionsWrite, scope.LinksRead, scope.SessionsRead},
	}))
	_, err := kinds[0].call(authorized(withTimeout(t), "Bearer "+e.links.Raw), s.client)
	if got, want := status.Convert(err).Message(), "this API key lacks the scopes sessions:write, sessions:read"; status.Code(err) != codes.PermissionDenied || got != want {
		t.Errorf("got %v, want PermissionDenied %q", err, want)
	}
}

func TestMethodWithoutScopesAcceptsAnyKey(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, keywardgrpc.WithMethodScopes(map[string][]scope.Scope{methodCheck: nil, methodWatch: {}}))
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			got, err := k.call(authorized(withTimeout(t), "Bearer "+e.links.Raw), s.client)
			if err != nil || got != e.links.Record.ID.String() {
				t.Errorf("got key %q, %v; want %q", got, err, e.links.Record.ID)
			}
			_, err = k.call(withTimeout(t), s.client)
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("without a key: %v, want Unauthenticated", err)
			}
		})
	}
}

// TestUndeclaredMethodIsRefused checks that the interceptors fail closed:
// a method that declares no scopes is refused even to a key holding every
// scope.
func TestUndeclaredMethodIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		opts []keywardgrpc.Option
	}{
		{"no options", nil},
		{"other methods declared", []keywardgrpc.Option{
			keywardgrpc.WithMethodScopes(map[string][]scope.Scope{"/checkout.v1.Sessions/Create": {scope.SessionsWrite}}),
			keywardgrpc.WithPublicMethods("/checkout.v1.Sessions/Ping"),
		}},
	} {
		s := newServer(t, e.keys, tc.opts...)
		for _, k := range kinds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				_, err := k.call(authorized(withTimeout(t), "Bearer "+e.all.Raw), s.client)
				if got := status.Code(err); got != codes.PermissionDenied {
					t.Fatalf("code = %v (%v), want PermissionDenied", got, err)
				}
				if msg := status.Convert(err).Message(); !strings.Contains(msg, k.method) || !strings.Contains(msg, "declares no required scopes") {
					t.Errorf("message = %q, want it to name %s and say it declares no scopes", msg, k.method)
				}
				checkNoKey(t, e, err)
				// Without a key, the method is not even named.
				_, err = k.call(withTimeout(t), s.client)
				if got := status.Code(err); got != codes.Unauthenticated {
					t.Errorf("without a key: code = %v (%v), want Unauthenticated", got, err)
				}
			})
		}
		if n := s.health.calls.Load(); n != 0 {
			t.Errorf("the handler was called %d times", n)
		}
	}
	// A method of the same service left out of a declaration is refused.
	s := newServer(t, e.keys, scoped())
	_, err := s.client.List(authorized(withTimeout(t), "Bearer "+e.all.Raw), nil)
	if got := status.Code(err); got != codes.PermissionDenied {
		t.Errorf("List: code = %v (%v), want PermissionDenied", got, err)
	}
}

func TestPublicMethodsNeedNoKey(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, keywardgrpc.WithPublicMethods(methodCheck, methodWatch))
	for _, k := range kinds {
		for _, tc := range []struct {
			name   string
			values []string
		}{
			{"no key", nil},
			{"revoked key", []string{"Bearer " + e.revoked.Raw}},
			{"garbage", []string{"Basic xyz", "Bearer a b"}},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				got, err := k.call(authorized(withTimeout(t), tc.values...), s.client)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if got != "none" {
					t.Errorf("KeyFrom found key %q in a public method", got)
				}
			})
		}
	}
	// A valid key is not verified either: nothing is in the context.
	got, err := kinds[0].call(authorized(withTimeout(t), "Bearer "+e.all.Raw), s.client)
	if err != nil || got != "none" {
		t.Errorf("got %q, %v; want none", got, err)
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, scoped())
	e.store.down.Store(true)
	for _, k := range kinds {
		for _, raw := range []string{e.all.Raw, e.unknown} {
			_, err := k.call(authorized(withTimeout(t), "Bearer "+raw), s.client)
			if got := status.Code(err); got != codes.Unavailable {
				t.Errorf("%s: code = %v (%v), want Unavailable", k.name, got, err)
			}
			checkNoKey(t, e, err)
		}
	}
	e.store.down.Store(false)
	if _, err := kinds[0].call(authorized(withTimeout(t), "Bearer "+e.all.Raw), s.client); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

func TestNetworkOutsideThePolicyIsRefused(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys, scoped())
	for _, k := range kinds {
		_, err := k.call(authorized(withTimeout(t), "Bearer "+e.elsewhere.Raw), s.client)
		if got, want := status.Convert(err).Message(), "this API key is not allowed from this network"; status.Code(err) != codes.PermissionDenied || got != want {
			t.Errorf("%s: got %v, want PermissionDenied %q", k.name, err, want)
		}
	}
	if n := s.health.calls.Load(); n != 0 {
		t.Errorf("the handler was called %d times", n)
	}
}

// TestCanaryTrips checks that a canary key gets the answer of an unknown
// key and that its trip records the peer, the user agent and the method.
func TestCanaryTrips(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t)
			s := newServer(t, e.keys, scoped())
			_, errUnknown := k.call(authorized(withTimeout(t), "Bearer "+e.unknown), s.client)
			_, err := k.call(authorized(withTimeout(t), "Bearer "+e.canary.Raw), s.client)
			if status.Code(err) != codes.Unauthenticated || status.Convert(err).Message() != status.Convert(errUnknown).Message() {
				t.Errorf("canary: %v\nunknown: %v\nwant the same Unauthenticated", err, errUnknown)
			}
			checkNoKey(t, e, err)
			deadline := time.NewTimer(10 * time.Second)
			defer deadline.Stop()
			select {
			case tr := <-e.trips:
				if tr.KeyID != e.canary.Record.ID || tr.Owner != "acct_grpc" || tr.At.IsZero() {
					t.Errorf("trip = %+v, want the canary's", tr)
				}
				if !strings.HasPrefix(tr.Addr, "127.0.0.1:") {
					t.Errorf("trip address = %q, want the peer's, 127.0.0.1:port", tr.Addr)
				}
				if !strings.HasPrefix(tr.UserAgent, userAgent) {
					t.Errorf("trip user agent = %q, want it to start with %q", tr.UserAgent, userAgent)
				}
				if tr.Route != k.method {
					t.Errorf("trip route = %q, want %q", tr.Route, k.method)
				}
			case <-deadline.C:
				t.Fatal("no trip recorded")
			}
		})
	}
}

// TestCanaryTripsOnUndeclaredMethods checks that the key is verified
// before the method's declaration is looked at.
func TestCanaryTripsOnUndeclaredMethods(t *testing.T) {
	e := newEnv(t)
	s := newServer(t, e.keys)
	_, err := s.client.List(authorized(withTimeout(t), "Bearer "+e.canary.Raw), nil)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("code = %v, want Unauthenticated", status.Code(err))
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	select {
	case tr := <-e.trips:
		if tr.Route != methodList {
			t.Errorf("trip route = %q, want %q", tr.Route, methodList)
		}
	case <-deadline.C:
		t.Fatal("no trip recorded")
	}
}

func TestKeyFromAndNewContext(t *testing.T) {
	if _, ok := keywardgrpc.KeyFrom(context.Background()); ok {
		t.Error("KeyFrom found a key in an empty context")
	}
	rec := keywardtest.Record(scope.SessionsRead)
	type other struct{}
	ctx := keywardgrpc.NewContext(context.WithValue(context.Background(), other{}, "v"), rec)
	got, ok := keywardgrpc.KeyFrom(ctx)
	if !ok || got.ID != rec.ID {
		t.Errorf("KeyFrom = %v, %v; want the record", got.ID, ok)
	}
	if ctx.Value(other{}) != "v" {
		t.Error("the parent's values are lost")
	}
}

func TestInvalidOptionsPanic(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	for _, tc := range []struct {
		name string
		keys *keyward.Keys
		opts []keywardgrpc.Option
	}{
		{"nil keys", nil, nil},
		{"nil option", keys, []keywardgrpc.Option{nil}},
		{"method without a slash", keys, []keywardgrpc.Option{keywardgrpc.WithPublicMethods("grpc.health.v1.Health/Check")}},
		{"method without a service", keys, []keywardgrpc.Option{keywardgrpc.WithPublicMethods("//Check")}},
		{"method with a wildcard path", keys, []keywardgrpc.Option{keywardgrpc.WithMethodScopes(map[string][]scope.Scope{"/a.B/C/D": nil})}},
		{"malformed scope", keys, []keywardgrpc.Option{keywardgrpc.WithMethodScopes(map[string][]scope.Scope{methodCheck: {"Sessions Write"}})}},
		{"public and scoped", keys, []keywardgrpc.Option{keywardgrpc.WithPublicMethods(methodCheck), scoped()}},
		{"declared twice", keys, []keywardgrpc.Option{scoped(), scoped()}},
		{"public twice", keys, []keywardgrpc.Option{keywardgrpc.WithPublicMethods(methodCheck, methodCheck)}},
	} {
		for _, ctor := range []struct {
			name string
			new  func()
		}{
			{"unary", func() { keywardgrpc.UnaryServerInterceptor(tc.keys, tc.opts...) }},
			{"stream", func() { keywardgrpc.StreamServerInterceptor(tc.keys, tc.opts...) }},
		} {
			t.Run(tc.name+"/"+ctor.name, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Error("no panic")
					}
				}()
				ctor.new()
			})
		}
	}
}

// TestRateLimitedKeysPass documents that without a limiter (WithLimiter)
// rate limits are not enforced over gRPC: a key with a policy of limits is
// let through.
func TestRateLimitedKeysPass(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	key := keywardtest.Issue(t, keys.Owner("acct_grpc"), keyward.CreateParams{
		Scopes: scope.NewSet(scope.SessionsWrite),
		Policy: &apikey.Policy{Rate: apikey.RateLimit{Requests: 1, Period: time.Minute}},
	})
	s := newServer(t, keys, scoped())
	for i := range 3 {
		if _, err := kinds[0].call(authorized(withTimeout(t), "Bearer "+key.Raw), s.client); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
