package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// WithTrustedProxies names the reverse proxies and load balancers in front
// of the server, by their networks, such as 10.0.0.0/8 or the published
// ranges of a CDN. The client's address, which the networks of a key's
// policy ([apikey.Policy.Networks]) are checked against, is then read from
// the forwarding headers these proxies add; without this option it is
// always the address of [http.Request.RemoteAddr], and forwarding headers
// are ignored, since any client can send them.
//
// The address is found by walking the request's path back from the
// server: first the peer (RemoteAddr); if it is a trusted proxy, the hop
// it forwarded for, the last one listed in the Forwarded header (RFC
// 7239, its for= parameters) or in X-Forwarded-For (every header line,
// comma-separated); and so on, right to left, skipping only hops in a
// trusted network. The first hop outside them is the client. Entries to
// its left were written by the client or its own proxies, and are never
// read: a client cannot choose its address by sending a header. If every
// hop is trusted, the request came from inside, and the client is the
// leftmost hop. A request with both headers is walked in both, and they
// must name the same client: a proxy that writes only one of them passes
// the client's copy of the other on untouched.
//
// It fails closed: a key that lists networks is refused with 403
// ([ErrClientAddrUnknown]) when a hop that must be read is malformed, is
// "unknown" or an obfuscated identifier (such as "_hidden"), or is a
// Forwarded element without for=; when the two headers disagree; and when
// a Forwarded field is malformed anywhere, as its elements cannot be told
// apart then. A malformed hop is never replaced by the proxy's own
// address. Forwarded values are read as RFC 7239 writes them: IPv6
// addresses in brackets within quotes, ports allowed, as in
// for="[2001:db8::1]:4711". In X-Forwarded-For, an entry is an IP address,
// optionally with a port, as in 192.0.2.1:4711 or [2001:db8::1]:4711.
//
// List only the proxies' own networks, never networks where clients live:
// a client inside a trusted network can name any address. Behind several
// layers (a CDN, then a load balancer), list all of them. IPv4 networks
// are written as IPv4, and IPv4-mapped IPv6 addresses count as IPv4.
//
// [ClientAddrFrom] returns the address found, for handlers and logs, and
// a canary key's trip records it rather than RemoteAddr.
func WithTrustedProxies(proxies ...netip.Prefix) Option {
	return func(c *config) {
		if len(proxies) == 0 {
			c.setErr(errors.New("middleware: WithTrustedProxies needs at least one network"))
			return
		}
		for _, p := range proxies {
			switch {
			case !p.IsValid():
				c.setErr(errors.New("middleware: WithTrustedProxies: invalid network"))
				return
			case p.Addr().Is4In6():
				c.setErr(fmt.Errorf("middleware: WithTrustedProxies: network %s: write IPv4 networks as IPv4", p))
				return
			case p.Addr().Zone() != "":
				c.setErr(fmt.Errorf("middleware: WithTrustedProxies: network %s has a zone", p))
				return
			case p.Masked() != p:
				c.setErr(fmt.Errorf("middleware: WithTrustedProxies: network %s has bits set past its length; did you mean %s?", p, p.Masked()))
				return
			}
		}
		c.trusted = append(c.trusted, proxies...)
	}
}

// ClientAddrFrom returns the address of the client that made the request
// whose context is ctx, as [Authenticate] determined it: the address of
// RemoteAddr, or, with [WithTrustedProxies], the one read from the
// forwarding headers. IPv4-mapped IPv6 addresses are returned as IPv4, and
// zones are dropped. It is false when the address is unknown (a RemoteAddr
// that is not an IP address, or malformed forwarding headers), when the
// request did not pass Authenticate, and for a context made by
// [NewContext].
//
// Use it, rather than RemoteAddr or a header, for logs and per-client
// decisions: it is the address the key's networks were checked against.
func ClientAddrFrom(ctx context.Context) (netip.Addr, bool) {
	kc, ok := fromContext(ctx)
	if !ok {
		return netip.Addr{}, false
	}
	return parseAddrFrom(kc.addrText, kc.addrFrom)
}

// Where a client address was found.
const (
	addrNone      uint8 = iota // not looked for
	addrRemote                 // in RemoteAddr
	addrXFF                    // in an X-Forwarded-For entry
	addrForwarded              // in a Forwarded for= value
	addrUnknown                // nowhere: unknown
)

// parseAddrFrom parses the text of an address found in from.
func parseAddrFrom(text string, from uint8) (netip.Addr, bool) {
	switch from {
	case addrRemote:
		return parseRemoteAddr(text)
	case addrXFF:
		return parseXFFEntry(text)
	case addrForwarded:
		return parseNode(text)
	}
	return netip.Addr{}, false
}

// A client is what the middleware knows of a request's client address.
type client struct {
	addr netip.Addr
	raw  string // the address as written where it was found
	from uint8  // where: addrNone until resolved
}

// resolve computes the client address of r into cl.
func (c *config) resolve(r *http.Request, cl *client) {
	cl.addr, cl.raw, cl.from = c.clientAddr(r)
}

// clientAddr returns the client address of r, its text and where it was
// found, or addrUnknown.
func (c *config) clientAddr(r *http.Request) (netip.Addr, string, uint8) {
	peer, ok := parseRemoteAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, "", addrUnknown
	}
	if !c.trusts(peer) {
		return peer, r.RemoteAddr, addrRemote
	}
	fwd, xff := r.Header["Forwarded"], r.Header["X-Forwarded-For"]
	switch {
	case len(fwd) == 0 && len(xff) == 0:
		// A trusted proxy's own request.
		return peer, r.RemoteAddr, addrRemote
	case len(xff) == 0:
		return c.fromForwarded(fwd)
	case len(fwd) == 0:
		return c.fromXFF(xff)
	}
	// Both: a proxy may write one and pass the client's copy of the other
	// on untouched. Only an answer both agree on is safe.
	a, raw, from := c.fromForwarded(fwd)
	b, _, fromb := c.fromXFF(xff)
	if from == addrUnknown || fromb == addrUnknown || a != b {
		return netip.Addr{}, "", addrUnknown
	}
	return a, raw, from
}

// trusts reports whether a is in a trusted proxy's network.
func (c *config) trusts(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseRemoteAddr parses RemoteAddr: "ip:port", "[ipv6]:port" or a bare
// address. The zone is dropped and IPv4-mapped addresses unmapped.
func parseRemoteAddr(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// fromXFF walks X-Forwarded-For lines right to left, the peer being
// trusted.
func (c *config) fromXFF(lines []string) (netip.Addr, string, uint8) {
	var last netip.Addr
	var lastRaw string
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			entry := trimOWS(line[j+1:])
			a, ok := parseXFFEntry(entry)
			if !ok {
				return netip.Addr{}, "", addrUnknown
			}
			if !c.trusts(a) {
				return a, entry, addrXFF
			}
			last, lastRaw = a, entry
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return last, lastRaw, addrXFF // every hop trusted: the leftmost
}

// parseXFFEntry parses an X-Forwarded-For entry: an IP address,
// "ipv4:port", "[ipv6]" or "[ipv6]:port". Zones are refused.
func parseXFFEntry(s string) (netip.Addr, bool) {
	var a netip.Addr
	var err error
	switch {
	case s == "":
		return netip.Addr{}, false
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !isPort(rest[1:])) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(s[1:end]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	case strings.Count(s, ":") == 1: // IPv4 and a port
		host, port, _ := strings.Cut(s, ":")
		if !isPort(port) {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(host); err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
	default:
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isPort reports whether s is a port: 1 to 5 digits.
func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxForwardedHops is the most Forwarded elements walked back from the
// server: no real path has so many trusted proxies, and the elements are
// kept on the stack.
const maxForwardedHops = 32

// fromForwarded walks the for= parameters of Forwarded lines right to
// left, the peer being trusted. The whole field must be well formed, as
// its elements cannot be told apart otherwise; the for= values are read
// only as far as the walk goes.
func (c *config) fromForwarded(lines []string) (netip.Addr, string, uint8) {
	var hops [maxForwardedHops]string // the last for= values, "" for none; a ring
	n := 0
	for _, line := range lines {
		if !scanForwarded(line, &hops, &n) {
			return netip.Addr{}, "", addrUnknown
		}
	}
	var last netip.Addr
	var lastRaw string
	for i := n - 1; i >= 0; i-- {
		if n-i > maxForwardedHops {
			return netip.Addr{}, "", addrUnknown
		}
		raw := hops[i%maxForwardedHops]
		a, ok := parseNode(raw)
		if !ok {
			return netip.Addr{}, "", addrUnknown
		}
		if !c.trusts(a) {
			return a, raw, addrForwarded
		}
		last, lastRaw = a, raw
	}
	return last, lastRaw, addrForwarded
}

// scanForwarded parses one Forwarded line (RFC 7239 section 4):
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// It records each element's for= value (the contents of a quoted string,
// unescaped only in that parseNode refuses a backslash) in hops, a ring
// indexed by *n, the count of elements. Spaces and tabs are allowed
// around commas and semicolons, as proxies write them. It returns false if
// the line is malformed or an element names for= twice.
func scanForwarded(s string, hops *[maxForwardedHops]string, n *int) bool {
	i := 0
	for {
		// One element.
		forVal, seenFor := "", false
		for {
			i = skipOWS(s, i)
			if i < len(s) && s[i] != ';' && s[i] != ',' {
				start := i
				for i < len(s) && isTchar(s[i]) {
					i++
				}
				name := s[start:i]
				if name == "" || i >= len(s) || s[i] != '=' {
					return false
				}
				i++
				var val string
				if i < len(s) && s[i] == '"' {
					end, ok := scanQuoted(s, i)
					if !ok {
						return false
					}
					val, i = s[i+1:end-1], end
				} else {
					start := i
					for i < len(s) && isTchar(s[i]) {
						i++
					}
					if i == start {
						return false
					}
					val = s[start:i]
				}
				if strings.EqualFold(name, "for") {
					if seenFor {
						return false
					}
					forVal, seenFor = val, true
				}
				i = skipOWS(s, i)
			}
			if i < len(s) && s[i] == ';' {
				i++
				continue
			}
			break
		}
		hops[*n%maxForwardedHops] = forVal
		*n++
		if i == len(s) {
			return true
		}
		if s[i] != ',' {
			return false
		}
		i++
	}
}

// scanQuoted returns the index just past the quoted string that starts at
// s[i], a '"'.
func scanQuoted(s string, i int) (int, bool) {
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i == len(s) || s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
				return 0, false
			}
		case c < 0x20 && c != '\t' || c == 0x7f:
			return 0, false
		}
	}
	return 0, false
}

// parseNode parses the value of a for= parameter (RFC 7239 section 6):
// an IPv4 address or a bracketed IPv6 address, optionally with a port
// (digits, or an obfuscated "_port"). "unknown", obfuscated identifiers
// ("_hidden") and anything else are refused: their client is unknown.
func parseNode(v string) (netip.Addr, bool) {
	if v == "" || v[0] == '_' || strings.EqualFold(v, "unknown") {
		return netip.Addr{}, false
	}
	var host, port string
	hasPort := false
	if v[0] == '[' {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = v[1:end]
		if rest := v[end+1:]; rest != "" {
			if rest[0] != ':' {
				return netip.Addr{}, false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(v, ":")
	}
	if hasPort && !isPort(port) && !isObfuscated(port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || (v[0] == '[') != a.Is6() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isObfuscated reports whether s is an RFC 7239 obfuscated identifier:
// "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ).
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }
