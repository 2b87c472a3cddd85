package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/token-service/token-service/internal/testenv"
)

const joinBody = `{"room":"r","identity":"a"}`

// statuses sends one request per header set and returns the statuses in order.
func statuses(t *testing.T, srv *testServer, path, body string, headerSets ...[]string) []int {
	t.Helper()
	var got []int
	for _, headers := range headerSets {
		got = append(got, srv.post(t, path, body, headers...).status)
	}
	return got
}

func want(codes ...int) string { return fmt.Sprint(codes) }

// Every address of one IPv6 /64 is one client, as one host is handed a whole /64.
func TestRateLimitGroupsIPv6ByPrefix(t *testing.T) {
	var sameSlash64, sameHost []string
	for i := 1; i <= 8; i++ {
		sameSlash64 = append(sameSlash64, fmt.Sprintf("X-Forwarded-For: 2001:db8:1:2::%x", i))
	}
	var sets [][]string
	for _, h := range sameSlash64 {
		sets = append(sets, []string{h})
	}
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=3", "TRUSTED_PROXIES=127.0.0.0/8")
	if got := fmt.Sprint(statuses(t, srv, "/token", joinBody, sets...)); got != want(200, 200, 200, 429, 429, 429, 429, 429) {
		t.Errorf("8 addresses of one /64: %s", got)
	}
	// Another /64 is another client.
	if got := srv.post(t, "/token", joinBody, "X-Forwarded-For: 2001:db8:1:3::1").status; got != 200 {
		t.Errorf("another /64: %d", got)
	}
	// IPv4-mapped IPv6 is the IPv4 address it maps.
	sameHost = []string{"X-Forwarded-For: 203.0.113.5", "X-Forwarded-For: ::ffff:203.0.113.5", "X-Forwarded-For: 203.0.113.5", "X-Forwarded-For: ::ffff:cb00:7105"}
	sets = nil
	for _, h := range sameHost {
		sets = append(sets, []string{h})
	}
	if got := fmt.Sprint(statuses(t, srv, "/token", joinBody, sets...)); got != want(200, 200, 200, 429) {
		t.Errorf("one IPv4 host in two notations: %s", got)
	}

	perAddress := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "TRUSTED_PROXIES=127.0.0.0/8", "RATE_LIMIT_IPV6_PREFIX=128")
	for _, h := range sameSlash64[:3] {
		if got := perAddress.post(t, "/token", joinBody, h).status; got != 200 {
			t.Errorf("RATE_LIMIT_IPV6_PREFIX=128, %s: %d", h, got)
		}
	}
}

// Behind a proxy that sets only X-Real-IP, a client cannot choose its key with X-Forwarded-For.
func TestRateLimitReadsOnlyTheConfiguredHeader(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=5", "TRUSTED_PROXIES=127.0.0.0/8", "CLIENT_IP_HEADER=X-Real-IP")
	var sets [][]string
	for i := range 8 {
		sets = append(sets, []string{"X-Real-IP: 198.51.100.20", fmt.Sprintf("X-Forwarded-For: 192.0.2.%d", i+1)})
	}
	if got := fmt.Sprint(statuses(t, srv, "/token", joinBody, sets...)); got != want(200, 200, 200, 200, 200, 429, 429, 429) {
		t.Errorf("constant X-Real-IP, varying X-Forwarded-For: %s", got)
	}
	if got := srv.post(t, "/token", joinBody, "X-Real-IP: 198.51.100.21").status; got != 200 {
		t.Errorf("another X-Real-IP: %d", got)
	}
}

// A signed-in user is one client wherever it comes from, and users behind one address are not
// one client.
func TestRateLimitKeysUsersByIdentity(t *testing.T) {
	secret := "user-jwt-shared-secret-0123456789abcdef"
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=2", "TRUSTED_PROXIES=127.0.0.0/8",
		"AUTH_JWT_SECRET="+secret, "AUTH_JWT_ISSUER=idp", "AUTH_JWT_AUDIENCE=app")
	userToken := func(sub string) string {
		return "Authorization: Bearer " + testenv.MintJWT(t, jwt.SigningMethodHS256, []byte(secret), "",
			jwt.MapClaims{"iss": "idp", "aud": "app", "sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	}
	alice, bob := userToken("alice"), userToken("bob")
	spread := [][]string{{alice, "X-Forwarded-For: 192.0.2.1"}, {alice, "X-Forwarded-For: 192.0.2.2"}, {alice, "X-Forwarded-For: 192.0.2.3"}}
	if got := fmt.Sprint(statuses(t, srv, "/token", `{"room":"r"}`, spread...)); got != want(200, 200, 429) {
		t.Errorf("one user over three addresses: %s", got)
	}
	office := [][]string{{bob, "X-Forwarded-For: 192.0.2.1"}, {bob, "X-Forwarded-For: 192.0.2.1"}}
	if got := fmt.Sprint(statuses(t, srv, "/token", `{"room":"r"}`, office...)); got != want(200, 200) {
		t.Errorf("another user at an address alice used: %s", got)
	}
	// Bad credentials are counted by address before they are refused.
	bad := [][]string{{"Authorization: Bearer not-a-jwt", "X-Forwarded-For: 192.0.2.9"}, {"Authorization: Bearer not-a-jwt", "X-Forwarded-For: 192.0.2.9"},
		{"Authorization: Bearer not-a-jwt", "X-Forwarded-For: 192.0.2.9"}}
	if got := fmt.Sprint(statuses(t, srv, "/token", `{"room":"r"}`, bad...)); got != want(401, 401, 429) {
		t.Errorf("bad credentials from one address: %s", got)
	}
}

// Service-key callers have a limit of their own, per key, and use none of their address's.
func TestRateLimitKeysServicesByKey(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "RATE_LIMIT_SERVICE_MAX_REQUESTS=2", "SERVICE_API_KEYS="+serviceKey1+","+serviceKey2)
	key1, key2 := []string{"Authorization: Bearer " + serviceKey1}, []string{"Authorization: Bearer " + serviceKey2}
	if got := fmt.Sprint(statuses(t, srv, "/token", joinBody, key1, key1, key1, key2, key2, nil, nil)); got != want(200, 200, 429, 200, 200, 200, 429) {
		t.Errorf("two keys, then anonymous from the same address: %s", got)
	}
	unlimited := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "SERVICE_API_KEYS="+serviceKey1)
	for i := range 5 {
		if r := unlimited.post(t, "/token", joinBody, key1...); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "" {
			t.Fatalf("RATE_LIMIT_SERVICE_MAX_REQUESTS=0, request %d: %d %v", i, r.status, r.header)
		}
	}
	// Decisions are counted by kind of key, never by key.
	metrics := srv.do(t, http.MethodGet, "/metrics", "").raw
	for _, series := range []string{
		`token_service_rate_limit_decisions_total{decision="allowed",key_kind="service"} 4`,
		`token_service_rate_limit_decisions_total{decision="limited",key_kind="service"} 1`,
		`token_service_rate_limit_decisions_total{decision="allowed",key_kind="ip"} 1`,
		`token_service_rate_limit_decisions_total{decision="limited",key_kind="ip"} 1`,
	} {
		if !strings.Contains(metrics, series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
