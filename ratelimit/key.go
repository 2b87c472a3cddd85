package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/token-service/token-service/authn"
)

// key is what one request is counted against.
type key struct {
	name  string // unique per client, bounded in length, never a secret or a raw identity
	kind  string
	limit int
}

// keyOf names the client behind r: a service key by its ID, a signed-in user by a digest of
// its identity (so one user cannot spread over addresses, and an office behind one NAT is not
// one user), else the client address. Credentials that did not verify count by address.
func (l *Limiter) keyOf(r *http.Request) key {
	caller, err := authn.CallerOf(r)
	switch {
	case err != nil:
	case caller.Service:
		return key{name: "s:" + caller.ServiceKeyID, kind: KindService, limit: l.s.ServiceLimit}
	case caller.User != nil:
		digest := sha256.Sum256([]byte(caller.User.Identity))
		return key{name: "u:" + hex.EncodeToString(digest[:12]), kind: KindUser, limit: l.s.Limit}
	}
	return key{name: "ip:" + addressKey(chimw.GetClientIPAddr(r.Context()), l.s.IPv6Prefix), kind: KindIP, limit: l.s.Limit}
}

// addressKey is an IPv4 address whole (IPv4-mapped IPv6 counts as IPv4), or an IPv6 address's
// prefix: one host is handed a whole /64, and rotating within it must not buy a new limit.
func addressKey(addr netip.Addr, ipv6Prefix int) string {
	addr = addr.Unmap()
	if !addr.Is6() {
		return addr.String() // an unknown address is one shared key, "invalid IP"
	}
	prefix, err := addr.WithZone("").Prefix(ipv6Prefix)
	if err != nil {
		return addr.String()
	}
	return prefix.String()
}

// ClientIP decides who the client is, for the rate limit and the access log: the TCP peer, or,
// only when the peer is in trusted, the address in the one header the operator named
// (X-Forwarded-For is read right to left, skipping trusted hops). No other header is read, so a
// client behind a proxy that sets only X-Real-IP cannot choose its key with X-Forwarded-For.
func ClientIP(header string, proxies []netip.Prefix) []func(http.Handler) http.Handler {
	steps := []func(http.Handler) http.Handler{chimw.ClientIPFromRemoteAddr}
	trusted := make([]string, len(proxies))
	for i, p := range proxies {
		trusted[i] = p.String()
	}
	switch {
	case len(trusted) == 0:
	case http.CanonicalHeaderKey(header) == "X-Forwarded-For":
		steps = append(steps, chimw.ClientIPFromXFF(trusted...))
	default:
		steps = append(steps, chimw.ClientIPFromHeader(header, trusted...))
	}
	return steps
}
