package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/scope"
	"github.com/keyward/keyward/store/memory"
)

// The networks of the tests: a key allowed only from office (and its IPv6
// range), clients elsewhere, and proxies.
var (
	office   = netip.MustParsePrefix("203.0.113.0/24")
	office6  = netip.MustParsePrefix("2001:db8::/32")
	proxies  = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	typeNet  = "https://pkg.go.dev/github.com/keyward/keyward/middleware#ErrNetworkNotAllowed"
	netTitle = "Network not allowed"
	netText  = "This API key is not allowed from this network."
)

// netKeys issues, in a new lifecycle, a key allowed only from office and
// office6, and a key without a policy.
func netKeys(t testing.TB) (keys *keyward.Keys, limited, free keywardtest.Key) {
	t.Helper()
	keys = keywardtest.NewKeys(t)
	acct := keys.Owner("acct_net")
	limited = keywardtest.Issue(t, acct, keyward.CreateParams{
		Scopes: scope.NewSet(scope.SessionsRead),
		Policy: &apikey.Policy{Networks: []netip.Prefix{office, office6}},
	})
	free = keywardtest.Issue(t, acct, keyward.CreateParams{Scopes: scope.NewSet(scope.SessionsRead)})
	return keys, limited, free
}

// addrCase is a request's path through the network and the client address
// the middleware must find; "" means unknown.
type addrCase struct {
	name    string
	trusted bool // WithTrustedProxies(proxies...)
	remote  string
	xff     []string
	fwd     []string
	want    string
}

func addrCases() []addrCase {
	const proxy = "10.0.0.1:52000"
	return []addrCase{
		// RemoteAddr alone.
		{name: "remote in office", remote: "203.0.113.7:4711", want: "203.0.113.7"},
		{name: "remote elsewhere", remote: "198.51.100.7:4711", want: "198.51.100.7"},
		{name: "remote without port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "remote IPv6", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "remote IPv4-mapped", remote: "[::ffff:203.0.113.7]:4711", want: "203.0.113.7"},
		{name: "remote IPv6 with zone", remote: "[fe80::1%eth0]:4711", want: "fe80::1"},
		{name: "remote not an address", remote: "pipe", want: ""},
		{name: "remote empty", remote: "", want: ""},

		// Without trusted proxies, forwarding headers change nothing.
		{name: "forged XFF, no proxies", remote: "198.51.100.7:4711", xff: []string{"203.0.113.7"}, want: "198.51.100.7"},
		{name: "forged Forwarded, no proxies", remote: "198.51.100.7:4711", fwd: []string{"for=203.0.113.7"}, want: "198.51.100.7"},
		{name: "forged both, no proxies", remote: "198.51.100.7:4711", xff: []string{"203.0.113.7"}, fwd: []string{`for="[2001:db8::1]"`}, want: "198.51.100.7"},
		{name: "forged XFF from a would-be proxy, no proxies", remote: proxy, xff: []string{"203.0.113.7"}, want: "10.0.0.1"},
		{name: "malformed XFF, no proxies", remote: "203.0.113.7:4711", xff: []string{"???"}, want: "203.0.113.7"},

		// Trusted proxies: X-Forwarded-For.
		{name: "XFF", trusted: true, remote: proxy, xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "XFF elsewhere", trusted: true, remote: proxy, xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "XFF, client prepends a forged entry", trusted: true, remote: proxy, xff: []string{"203.0.113.7, 198.51.100.7"}, want: "198.51.100.7"},
		{name: "XFF, forged entry in an earlier line", trusted: true, remote: proxy, xff: []string{"203.0.113.7", "198.51.100.7"}, want: "198.51.100.7"},
		{name: "XFF, two proxies", trusted: true, remote: proxy, xff: []string{"198.51.100.7, 10.0.0.2"}, want: "198.51.100.7"},
		{name: "XFF, two proxies, in office", trusted: true, remote: proxy, xff: []string{"203.0.113.7,10.0.0.2"}, want: "203.0.113.7"},
		{name: "XFF, garbage left of the client is not read", trusted: true, remote: proxy, xff: []string{"garbage, unknown, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "XFF, untrusted peer: headers ignored", trusted: true, remote: "198.51.100.7:4711", xff: []string{"203.0.113.7"}, want: "198.51.100.7"},
		{name: "XFF, IPv4 with port", trusted: true, remote: proxy, xff: []string{"203.0.113.7:4711"}, want: "203.0.113.7"},
		{name: "XFF, IPv6", trusted: true, remote: proxy, xff: []string{"2001:db8::5"}, want: "2001:db8::5"},
		{name: "XFF, IPv6 in brackets with port", trusted: true, remote: proxy, xff: []string{"[2001:db8::5]:80"}, want: "2001:db8::5"},
		{name: "XFF, IPv4-mapped", trusted: true, remote: proxy, xff: []string{"::ffff:203.0.113.7"}, want: "203.0.113.7"},
		{name: "XFF, IPv6 proxy", trusted: true, remote: "[fd00::1]:443", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "XFF, IPv4-mapped proxy", trusted: true, remote: "[::ffff:10.0.0.1]:443", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "XFF, every hop trusted", trusted: true, remote: proxy, xff: []string{"10.0.0.5, 10.0.0.2"}, want: "10.0.0.5"},
		{name: "trusted peer, no header", trusted: true, remote: proxy, want: "10.0.0.1"},
		{name: "XFF empty", trusted: true, remote: proxy, xff: []string{""}, want: ""},
		{name: "XFF unknown", trusted: true, remote: proxy, xff: []string{"unknown"}, want: ""},
		{name: "XFF empty entry", trusted: true, remote: proxy, xff: []string{"203.0.113.7,,10.0.0.2"}, want: ""},
		{name: "XFF trailing comma", trusted: true, remote: proxy, xff: []string{"203.0.113.7,"}, want: ""},
		{name: "XFF not an address", trusted: true, remote: proxy, xff: []string{"203.0.113.7.5"}, want: ""},
		{name: "XFF with zone", trusted: true, remote: proxy, xff: []string{"fe80::1%eth0"}, want: ""},
		{name: "XFF bad port", trusted: true, remote: proxy, xff: []string{"203.0.113.7:http"}, want: ""},
		{name: "XFF IPv4 in brackets", trusted: true, remote: proxy, xff: []string{"[203.0.113.7]"}, want: ""},
		{name: "XFF hostname", trusted: true, remote: proxy, xff: []string{"office.example.com"}, want: ""},
		{name: "XFF malformed behind the client's proxy", trusted: true, remote: proxy, xff: []string{"203.0.113.7, nope, 10.0.0.2"}, want: ""},
		{name: "trusted proxies, remote not an address", trusted: true, remote: "pipe", xff: []string{"203.0.113.7"}, want: ""},

		// Trusted proxies: Forwarded.
		{name: "Forwarded", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7"}, want: "203.0.113.7"},
		{name: "Forwarded, name in capitals", trusted: true, remote: proxy, fwd: []string{"For=203.0.113.7"}, want: "203.0.113.7"},
		{name: "Forwarded, quoted with port", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.7:4711"`}, want: "203.0.113.7"},
		{name: "Forwarded, IPv6", trusted: true, remote: proxy, fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, IPv6 without port", trusted: true, remote: proxy, fwd: []string{`for="[2001:db8::1]"`}, want: "2001:db8::1"},
		{name: "Forwarded, obfuscated port", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.7:_p1"`}, want: "203.0.113.7"},
		{name: "Forwarded, other parameters", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7;proto=https;by=10.0.0.1"}, want: "203.0.113.7"},
		{name: "Forwarded, spaces around semicolons", trusted: true, remote: proxy, fwd: []string{"proto=https ; for=203.0.113.7"}, want: "203.0.113.7"},
		{name: "Forwarded, comma in a quoted value", trusted: true, remote: proxy, fwd: []string{`for=203.0.113.7;host="a,b", for=10.0.0.2`}, want: "203.0.113.7"},
		{name: "Forwarded, escaped quote elsewhere", trusted: true, remote: proxy, fwd: []string{`for=203.0.113.7;x="a\"b"`}, want: "203.0.113.7"},
		{name: "Forwarded, two proxies", trusted: true, remote: proxy, fwd: []string{"for=198.51.100.7, for=10.0.0.2"}, want: "198.51.100.7"},
		{name: "Forwarded, client prepends a forged element", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7, for=198.51.100.7"}, want: "198.51.100.7"},
		{name: "Forwarded, forged element in an earlier line", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7", "for=198.51.100.7"}, want: "198.51.100.7"},
		{name: "Forwarded, unknown left of the client is not read", trusted: true, remote: proxy, fwd: []string{"for=unknown, for=_x, for=203.0.113.7"}, want: "203.0.113.7"},
		{name: "Forwarded, IPv4-mapped", trusted: true, remote: proxy, fwd: []string{`for="[::ffff:203.0.113.7]"`}, want: "203.0.113.7"},
		{name: "Forwarded, every hop trusted", trusted: true, remote: proxy, fwd: []string{"for=10.0.0.9"}, want: "10.0.0.9"},
		{name: "Forwarded unknown", trusted: true, remote: proxy, fwd: []string{"for=unknown"}, want: ""},
		{name: "Forwarded UNKNOWN", trusted: true, remote: proxy, fwd: []string{"for=UNKNOWN"}, want: ""},
		{name: "Forwarded obfuscated", trusted: true, remote: proxy, fwd: []string{"for=_hidden"}, want: ""},
		{name: "Forwarded obfuscated, quoted", trusted: true, remote: proxy, fwd: []string{`for="_gazonk"`}, want: ""},
		{name: "Forwarded without for", trusted: true, remote: proxy, fwd: []string{"proto=https;host=api.example.com"}, want: ""},
		{name: "Forwarded empty", trusted: true, remote: proxy, fwd: []string{""}, want: ""},
		{name: "Forwarded for twice", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7;for=203.0.113.8"}, want: ""},
		{name: "Forwarded IPv6 unquoted", trusted: true, remote: proxy, fwd: []string{"for=2001:db8::1"}, want: ""},
		{name: "Forwarded IPv6 without brackets", trusted: true, remote: proxy, fwd: []string{`for="2001:db8::1"`}, want: ""},
		{name: "Forwarded IPv4 in brackets", trusted: true, remote: proxy, fwd: []string{`for="[203.0.113.7]"`}, want: ""},
		{name: "Forwarded port unquoted", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7:4711"}, want: ""},
		{name: "Forwarded unterminated bracket", trusted: true, remote: proxy, fwd: []string{`for="[2001:db8::1"`}, want: ""},
		{name: "Forwarded unterminated quote", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.7`}, want: ""},
		{name: "Forwarded bad port", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.7:123456"`}, want: ""},
		{name: "Forwarded escaped for", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.\7"`}, want: ""},
		{name: "Forwarded space around equals", trusted: true, remote: proxy, fwd: []string{"for = 203.0.113.7"}, want: ""},
		{name: "Forwarded malformed left of the client", trusted: true, remote: proxy, fwd: []string{`"oops", for=203.0.113.7`}, want: ""},
		{name: "Forwarded, untrusted peer: ignored", trusted: true, remote: "198.51.100.7:1", fwd: []string{"for=unknown"}, want: "198.51.100.7"},

		// Both headers.
		{name: "both agree", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7"}, xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "both agree, with ports", trusted: true, remote: proxy, fwd: []string{`for="203.0.113.7:1"`}, xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "forged Forwarded through an XFF-only proxy", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7"}, xff: []string{"198.51.100.7"}, want: ""},
		{name: "forged XFF through a Forwarded-only proxy", trusted: true, remote: proxy, fwd: []string{"for=198.51.100.7"}, xff: []string{"203.0.113.7"}, want: ""},
		{name: "both, one malformed", trusted: true, remote: proxy, fwd: []string{"for=203.0.113.7"}, xff: []string{"nope"}, want: ""},
	}
}

func (tc addrCase) request(key keywardtest.Key) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/sessions", nil)
	r.RemoteAddr = tc.remote
	if tc.xff != nil {
		r.Header["X-Forwarded-For"] = tc.xff
	}
	if tc.fwd != nil {
		r.Header["Forwarded"] = tc.fwd
	}
	key.Authorize(r)
	return r
}

func (tc addrCase) options() []middleware.Option {
	if tc.trusted {
		return []middleware.Option{middleware.WithTrustedProxies(proxies...)}
	}
	return nil
}

// TestClientAddr checks the address found for each path: through
// ClientAddrFrom for a key without a policy, and by the verdict on a key
// allowed only from the office networks.
func TestClientAddr(t *testing.T) {
	keys, limited, free := netKeys(t)
	for _, tc := range addrCases() {
		t.Run(tc.name, func(t *testing.T) {
			var got netip.Addr
			var gotOK bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, gotOK = middleware.ClientAddrFrom(r.Context())
			})
			var refusal error
			onError := middleware.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				refusal = err
				middleware.WriteError(w, r, err)
			})
			h := middleware.Authenticate(keys, append(tc.options(), onError)...)(next)

			// A key without a policy: the address is reported, never
			// enforced.
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, tc.request(free))
			if rr.Code != http.StatusOK {
				t.Fatalf("key without a policy: status %d, want 200; body %s", rr.Code, rr.Body)
			}
			switch {
			case tc.want == "" && gotOK:
				t.Errorf("ClientAddrFrom = %v, want unknown", got)
			case tc.want != "" && (!gotOK || got != netip.MustParseAddr(tc.want)):
				t.Errorf("ClientAddrFrom = %v, %v; want %s", got, gotOK, tc.want)
			}

			// The key allowed only from the office.
			gotOK = false
			rr = httptest.NewRecorder()
			h.ServeHTTP(rr, tc.request(limited))
			allowed := tc.want != "" && (office.Contains(netip.MustParseAddr(tc.want)) || office6.Contains(netip.MustParseAddr(tc.want)))
			if allowed {
				if rr.Code != http.StatusOK || !gotOK || got != netip.MustParseAddr(tc.want) {
					t.Fatalf("key of the office: status %d, address %v, %v; want 200 from %s; body %s", rr.Code, got, gotOK, tc.want, rr.Body)
				}
				return
			}
			if rr.Code != http.StatusForbidden {
				t.Fatalf("key of the office: status %d, want 403; body %s", rr.Code, rr.Body)
			}
			if gotOK {
				t.Fatal("a refused request reached the handler")
			}
			if !errors.Is(refusal, middleware.ErrNetworkNotAllowed) {
				t.Errorf("error %v, want ErrNetworkNotAllowed", refusal)
			}
			if got, want := errors.Is(refusal, middleware.ErrClientAddrUnknown), tc.want == ""; got != want {
				t.Errorf("errors.Is(%v, ErrClientAddrUnknown) = %v, want %v", refusal, got, want)
			}
			checkNetworkRefusal(t, rr, tc)
		})
	}
}

// checkNetworkRefusal checks the 403 of a key refused for its network: the
// reason named, no challenge, and no address or network in the response.
func checkNetworkRefusal(t *testing.T, rr *httptest.ResponseRecorder, tc addrCase) {
	t.Helper()
	if got := rr.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate = %q, want none", got)
	}
	p := decodeProblem(t, rr)
	if p.Type != typeNet || p.Title != netTitle || p.Detail != netText || p.Status != http.StatusForbidden {
		t.Errorf("body = %+v", p)
	}
	body := rr.Body.String()
	for _, s := range append(append([]string{"203.0.113", "2001:db8", "198.51.100", "10.0.0", "fd00", "/24", "/32", tc.remote}, tc.xff...), tc.fwd...) {
		if s != "" && strings.Contains(body, s) {
			t.Errorf("the body echoes %q: %s", s, body)
		}
	}
	for name, vs := range rr.Header() {
		for _, v := range vs {
			if strings.Contains(v, "203.0.113") || strings.Contains(v, "198.51.100") {
				t.Errorf("header %s echoes an address: %q", name, v)
			}
		}
	}
}

// TestNetworkOrder checks where the network check stands: after the mode
// check and verification, before scopes.
func TestNetworkOrder(t *testing.T) {
	keys, limited, _ := netKeys(t)
	from := func(r *http.Request) *http.Request { r.RemoteAddr = "198.51.100.7:1"; return r }

	// A key of the wrong mode is refused for its mode, whatever its network.
	rr := httptest.NewRecorder()
	middleware.Authenticate(keys, middleware.WithMode(apikey.Live))(new(reached)).ServeHTTP(rr, from(addrCase{}.request(limited)))
	if rr.Code != http.StatusUnauthorized {
		t.Errorf("wrong mode and network: status %d, want 401", rr.Code)
	}
	// A revoked key is invalid, whatever its network.
	if _, err := keys.Owner("acct_net").Revoke(t.Context(), limited.Record.ID, keyward.RevokeParams{}); err != nil {
		t.Fatal(err)
	}
	rr = httptest.NewRecorder()
	middleware.Authenticate(keys)(new(reached)).ServeHTTP(rr, from(addrCase{}.request(limited)))
	if rr.Code != http.StatusUnauthorized {
		t.Errorf("revoked, wrong network: status %d, want 401", rr.Code)
	}

	// The network is refused before the scopes are checked.
	keys, limited, _ = netKeys(t)
	rr = httptest.NewRecorder()
	h := middleware.Authenticate(keys)(middleware.RequireScopes(scope.SessionsWrite)(new(reached)))
	h.ServeHTTP(rr, from(addrCase{}.request(limited)))
	if p := decodeProblem(t, rr); rr.Code != http.StatusForbidden || p.Type != typeNet {
		t.Errorf("wrong network and scope: status %d, type %q; want the network's 403", rr.Code, p.Type)
	}
}

// TestClientAddrWithoutAuthenticate: no address outside Authenticate.
func TestClientAddrWithoutAuthenticate(t *testing.T) {
	if a, ok := middleware.ClientAddrFrom(context.Background()); ok {
		t.Errorf("ClientAddrFrom(Background) = %v, true", a)
	}
	ctx := middleware.NewContext(context.Background(), keywardtest.Record(scope.SessionsRead))
	if a, ok := middleware.ClientAddrFrom(ctx); ok {
		t.Errorf("ClientAddrFrom(NewContext) = %v, true", a)
	}
}

// TestCanaryTripAddrBehindProxies checks that a canary's trip records the
// client's address found behind trusted proxies, not the proxy's, and
// "unknown" when it cannot be found.
func TestCanaryTripAddrBehindProxies(t *testing.T) {
	trips := make(chan apikey.Trip, 2)
	keys, err := keyward.New(memory.New(), keyward.WithCanaryHook(func(_ context.Context, tr apikey.Trip) { trips <- tr }))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	canary := keywardtest.Issue(t, keys.Owner("acct_mw"), keyward.CreateParams{Scopes: scope.NewSet(scope.LinksRead), Canary: true})
	h := middleware.Authenticate(keys, middleware.WithTrustedProxies(proxies...))(new(reached))
	for _, tc := range []struct{ xff, want string }{
		{"198.51.100.23:40112, 10.0.0.2", "198.51.100.23:40112"},
		{"nope", "unknown"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/links", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header.Set("X-Forwarded-For", tc.xff)
		canary.Authorize(r)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		if rr.Code != http.StatusUnauthorized {
			t.Fatalf("canary: status %d, want 401", rr.Code)
		}
		select {
		case tr := <-trips:
			if tr.Addr != tc.want {
				t.Errorf("XFF %q: trip address %q, want %q", tc.xff, tr.Addr, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no trip recorded")
		}
	}
}

func TestWithTrustedProxiesPanics(t *testing.T) {
	keys := keywardtest.NewKeys(t)
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
	}{
		{"none", nil},
		{"invalid", []netip.Prefix{{}}},
		{"bits past the length", []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}},
		{"IPv4-mapped", []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			middleware.Authenticate(keys, middleware.WithTrustedProxies(tc.proxies...))
		})
	}
}
