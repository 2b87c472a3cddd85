package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// Whatever a client or a proxy writes into the header, ClientIP neither panics nor names an
// address the header does not hold: the client is the TCP peer, or an address written in one of
// the header's hops (never a trusted proxy unless every hop is one), or the request is marked
// unusable and keeps the peer's address.
func FuzzClientIP(f *testing.F) {
	for _, seed := range []string{"198.51.100.7", "198.51.100.7:4711", "[2001:db8::1]:443", "2001:db8::1",
		"192.0.2.1, 10.0.0.1", `for=198.51.100.10;proto=https`, `for="[2001:db8:6::1]:4711", for=10.1.2.3`,
		"unknown", `for="_hidden"`, `for="\"`, ",,,", "fe80::1%eth0", "::ffff:203.0.113.5", "[::1]", "::%,000", `for="00::";for=10.0.0.0`} {
		f.Add(seed, 0)
		f.Add(seed, 1)
		f.Add(seed, 2)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	peer := netip.MustParseAddr("192.0.2.1")
	f.Fuzz(func(t *testing.T, value string, which int) {
		header := []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"}[uint(which)%3]
		var got Client
		unusable := 0
		h := ClientIP(header, proxies, func() { unusable++ })(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got = ClientOf(r.Context())
		}))
		req := httptest.NewRequest(http.MethodPost, "/token", nil)
		req.RemoteAddr = "192.0.2.1:4711"
		req.Header[http.CanonicalHeaderKey(header)] = []string{value} // as sent, unparsed
		h.ServeHTTP(httptest.NewRecorder(), req)
		switch {
		case got.Unusable:
			if got.Addr != peer || unusable != 1 {
				t.Fatalf("unusable %q: %v, counted %d times", value, got.Addr, unusable)
			}
		case !got.Addr.IsValid():
			t.Fatalf("%s: %q named no address and was not marked unusable", header, value)
		default:
			if unusable != 0 {
				t.Fatalf("%q counted unusable but used: %v", value, got.Addr)
			}
			if !mentions(header, value, got.Addr) {
				t.Fatalf("%s: %q gave %v, which it does not hold", header, value, got.Addr)
			}
			if header != "X-Real-IP" && trusted(got.Addr, proxies) && !allTrusted(header, value, proxies) {
				t.Fatalf("%s: %q gave the trusted proxy %v while an untrusted hop was there", header, value, got.Addr)
			}
		}
	})
}

// hops are the addresses a header's text names, as text: X-Forwarded-For's comma-separated
// parts, Forwarded's for= values, another header's whole value; trimmed of spaces and quotes.
func hops(header, value string) []string {
	trim := func(s string) string { return strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"`)) }
	switch header {
	case "X-Real-IP":
		return []string{trim(value)}
	case "X-Forwarded-For":
		var out []string
		for _, part := range strings.Split(value, ",") {
			out = append(out, trim(part))
		}
		return out
	}
	var out []string
	for _, element := range splitQuoted(value, ',') { // RFC 7239's quoting is the tokenizer's
		var fors []string
		for _, pair := range splitQuoted(element, ';') {
			if name, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(name, "for") {
				fors = append(fors, trim(v))
			}
		}
		if len(fors) == 1 {
			out = append(out, fors[0])
		}
	}
	return out
}

// mentions is whether the header's text names addr.
func mentions(header, value string, addr netip.Addr) bool {
	for _, h := range hops(header, value) {
		if a, ok := parseAddr(h); ok && a == addr {
			return true
		}
	}
	return false
}

func allTrusted(header, value string, proxies []netip.Prefix) bool {
	for _, h := range hops(header, value) {
		if a, ok := parseAddr(h); ok && !trusted(a, proxies) {
			return false
		}
	}
	return true
}
