package middleware

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client is who sent a request, as the rate limit and the access log name it.
type Client struct {
	// Addr is the TCP peer, or the address a trusted proxy named in the configured header.
	Addr netip.Addr
	// Unusable is true when a trusted proxy sent the header but it named no address that could
	// be read; Addr is then the proxy's, and the rate limit keys the request apart from the
	// proxy's own requests, so that one client cannot spend the proxy's count for everyone.
	Unusable bool
}

type clientKey struct{}

// ClientOf is the client ClientIP established (the zero Client if it did not run).
func ClientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// ClientIP decides who the client is: the TCP peer, or, only when the peer is in proxies, the
// address in the one header the operator named. Every format a proxy writes is read: a bare
// address, address:port, [IPv6]:port, and RFC 7239's Forwarded: for= when the header is
// Forwarded. X-Forwarded-For and Forwarded are read right to left, skipping trusted hops; any
// other header's last value is taken. No other header is read, so a client behind a proxy that
// sets only X-Real-IP cannot choose its key with X-Forwarded-For. onUnusable hears each request
// whose header named no readable address.
func ClientIP(header string, proxies []netip.Prefix, onUnusable func()) func(http.Handler) http.Handler {
	header = http.CanonicalHeaderKey(header)
	read := lastValue
	switch header {
	case "X-Forwarded-For":
		read = forwardedFor
	case "Forwarded":
		read = forwardedElements
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer := peerAddr(r.RemoteAddr)
			c := Client{Addr: peer}
			if len(proxies) > 0 && trusted(peer, proxies) {
				if values := r.Header[header]; len(values) > 0 {
					if addr, ok := read(values, proxies); ok {
						c.Addr = addr
					} else {
						c.Unusable = true
						if onUnusable != nil {
							onUnusable()
						}
					}
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
		})
	}
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	addr, _ := parseAddr(remote)
	return addr
}

func trusted(addr netip.Addr, proxies []netip.Prefix) bool {
	addr = addr.Unmap()
	for _, p := range proxies {
		if p.Contains(addr) || addr.Is4() && p.Addr().Is4In6() && p.Contains(netip.AddrFrom16(addr.As16())) {
			return true
		}
	}
	return false
}

// parseAddr reads one address as proxies write it: 192.0.2.1, 192.0.2.1:4711, 2001:db8::1,
// [2001:db8::1], [2001:db8::1]:4711. Anything else (unknown, an obfuscated name, a host name,
// an address with a zone, which names a link on the proxy's host and could carry any text) is
// not an address.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return usable(ap.Addr())
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return usable(addr)
}

func usable(addr netip.Addr) (netip.Addr, bool) {
	if addr.Zone() != "" {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// lastValue is a header that carries one address: its last occurrence counts, since the
// trusted proxy appended or set it last.
func lastValue(values []string, _ []netip.Prefix) (netip.Addr, bool) {
	return parseAddr(values[len(values)-1])
}

// forwardedFor reads X-Forwarded-For right to left: the first hop that is not a trusted proxy
// is the client; if every hop is trusted, the leftmost is.
func forwardedFor(values []string, proxies []netip.Prefix) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	return rightmostUntrusted(hops, proxies, parseAddr)
}

// forwardedElements reads RFC 7239's Forwarded (for=192.0.2.60;proto=http, for="[2001:db8::17]:4711")
// as X-Forwarded-For is read, from each element's for= parameter.
func forwardedElements(values []string, proxies []netip.Prefix) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		for _, element := range splitQuoted(v, ',') {
			// An element without for=, or with two (RFC 7239 allows one), names no address.
			hop, fors := "", 0
			for _, pair := range splitQuoted(element, ';') {
				name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(name, "for") {
					hop, fors = strings.Trim(strings.TrimSpace(value), `"`), fors+1
				}
			}
			if fors != 1 {
				hop = ""
			}
			hops = append(hops, hop)
		}
	}
	return rightmostUntrusted(hops, proxies, parseAddr)
}

func rightmostUntrusted(hops []string, proxies []netip.Prefix, parse func(string) (netip.Addr, bool)) (netip.Addr, bool) {
	if len(hops) == 0 {
		return netip.Addr{}, false
	}
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parse(hops[i])
		if !ok {
			return netip.Addr{}, false // a hop no one can read ends the trail: it cannot be skipped
		}
		if i == 0 || !trusted(addr, proxies) {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// splitQuoted splits s at sep outside double quotes (RFC 7239 quotes IPv6 addresses with ports).
func splitQuoted(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '\\' && quoted:
			i++
		case s[i] == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
