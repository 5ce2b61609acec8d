package middleware

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddr sends arbitrary RemoteAddr, X-Forwarded-For and
// Forwarded values ("\n" separates header lines) to the client address
// parser, and checks that nothing panics and that:
//
//   - without trusted proxies, the headers change nothing;
//   - a known address is valid, unzoned, unmapped, and written in
//     RemoteAddr or a header, as the text returned for it;
//   - a client cannot choose its address: when the walk stops at an
//     untrusted hop, prepending a forged entry to the header the walk
//     read leaves the answer unchanged.
func FuzzClientAddr(f *testing.F) {
	for _, s := range [][3]string{
		{"10.0.0.1:1", "203.0.113.7", ""},
		{"10.0.0.1:1", "203.0.113.7, 10.0.0.2", ""},
		{"10.0.0.1:1", "garbage, 198.51.100.7", ""},
		{"10.0.0.1:1", "[2001:db8::1]:80,::ffff:203.0.113.7", ""},
		{"10.0.0.1:1", "203.0.113.7:4711\n10.0.0.3", ""},
		{"10.0.0.1:1", "", "for=203.0.113.7"},
		{"10.0.0.1:1", "", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2`},
		{"10.0.0.1:1", "", `for=unknown, for="_hidden", for=198.51.100.7;by="[fd00::1]"`},
		{"10.0.0.1:1", "", `for="203.0.113.7:_p";x="a,\"b", for=10.0.0.2`},
		{"10.0.0.1:1", "203.0.113.7", "for=203.0.113.7"},
		{"[fd00::1]:443", "", "For=192.0.2.60 ; proto=http;by=203.0.113.43\nfor=10.9.9.9"},
		{"[::ffff:10.0.0.1]:1", "10.0.0.4", ""},
		{"198.51.100.7:1", "203.0.113.7", "for=203.0.113.7"},
		{"pipe", "203.0.113.7", ""},
		{"[fe80::1%eth0]:1", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	trusting := &config{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}
	plain := &config{}
	request := func(remote, xff, fwd string) *http.Request {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		if xff != "" {
			r.Header["X-Forwarded-For"] = strings.Split(xff, "\n")
		}
		if fwd != "" {
			r.Header["Forwarded"] = strings.Split(fwd, "\n")
		}
		return r
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := request(remote, xff, fwd)

		want, wantOK := parseRemoteAddr(remote)
		if got, _, from := plain.clientAddr(r); got != want || (from != addrUnknown) != wantOK {
			t.Fatalf("without trusted proxies: %v, %v; RemoteAddr alone says %v, %v", got, from, want, wantOK)
		}

		got, raw, from := trusting.clientAddr(r)
		if from == addrUnknown {
			return
		}
		if again, ok := parseAddrFrom(raw, from); !ok || again != got {
			t.Fatalf("the text %q of address %v parses as %v, %v", raw, got, again, ok)
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("address %v: invalid, zoned or mapped", got)
		}
		if raw == "" || !strings.Contains(remote, raw) && !strings.Contains(xff, raw) && !strings.Contains(fwd, raw) {
			t.Fatalf("address text %q is in no header", raw)
		}
		if trusting.trusts(got) {
			return // every hop trusted: the leftmost, which a prefix would change
		}
		peer, _ := parseRemoteAddr(remote)
		if !trusting.trusts(peer) {
			return // the headers were not read
		}
		// Forge an entry in front of the header that was read (both are,
		// if both are present).
		fx, ff := xff, fwd
		if xff != "" {
			fx = "203.0.113.66, " + xff
		}
		if fwd != "" {
			ff = "for=203.0.113.66, " + fwd
		}
		if again, _, from := trusting.clientAddr(request(remote, fx, ff)); from == addrUnknown || again != got {
			t.Fatalf("a forged entry changed the client from %v to %v (%d)", got, again, from)
		}
	})
}

// TestScanForwardedRing checks that a walk past the elements kept fails
// closed, and that within them it finds the client.
func TestScanForwardedRing(t *testing.T) {
	c := &config{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	hops := func(n int) string {
		return strings.Repeat("for=10.0.0.2, ", n-1) + "for=10.0.0.2"
	}
	for _, tc := range []struct {
		name string
		fwd  string
		want string
	}{
		{"client within the ring", "for=203.0.113.7, " + hops(maxForwardedHops-1), "203.0.113.7"},
		{"client past the ring", "for=203.0.113.7, " + hops(maxForwardedHops), ""},
		{"all trusted, within the ring", hops(maxForwardedHops), "10.0.0.2"},
		{"all trusted, past the ring", hops(maxForwardedHops + 1), ""},
		{"many forged elements left of the client", strings.Repeat("for=198.51.100.1, ", 100) + "for=203.0.113.7, for=10.0.0.2", "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, from := c.fromForwarded([]string{tc.fwd})
			ok := from != addrUnknown
			if tc.want == "" {
				if ok {
					t.Errorf("got %v, want unknown", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tc.want) {
				t.Errorf("got %v, %v; want %s", got, ok, tc.want)
			}
		})
	}
}
