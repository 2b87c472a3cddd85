package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/middleware"
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
	client := middleware.ClientOf(r.Context())
	if client.Unusable {
		// Apart from the proxy's own requests: the client that sent an unreadable header
		// spends only the count of requests like its own.
		return key{name: "ip-unusable:" + addressKey(client.Addr, l.s.IPv6Prefix), kind: KindIP, limit: l.s.Limit}
	}
	return key{name: "ip:" + addressKey(client.Addr, l.s.IPv6Prefix), kind: KindIP, limit: l.s.Limit}
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
