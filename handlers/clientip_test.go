package handlers_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/logging"
)

// Every format a proxy writes names the same client: with a limit of one, the second request
// of each group is the one refused, whichever notation it came in.
func TestClientAddressInEveryForwardedFormat(t *testing.T) {
	cases := []struct {
		header string
		values []string
	}{
		{"X-Forwarded-For", []string{"198.51.100.7", "198.51.100.7:4711"}},
		{"X-Forwarded-For", []string{"[2001:db8:5::1]:443", "2001:db8:5::1"}},
		{"X-Forwarded-For", []string{"192.0.2.200, 198.51.100.8:80", "198.51.100.8"}}, // the rightmost untrusted hop
		{"X-Real-IP", []string{"198.51.100.9:1234", "198.51.100.9"}},
		{"Forwarded", []string{`for=198.51.100.10;proto=https`, `for="198.51.100.10:8080"`}},
		{"Forwarded", []string{`for="[2001:db8:6::1]:4711";proto=http;by=203.0.113.43`, `For="[2001:db8:6::1]"`}},
		{"Forwarded", []string{`for=192.0.2.43, for=198.51.100.11`, `for=198.51.100.11;host=example.com`}},
	}
	for _, c := range cases {
		srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "TRUSTED_PROXIES=127.0.0.0/8", "CLIENT_IP_HEADER="+c.header,
			"RATE_LIMIT_IPV6_PREFIX=128")
		got := statuses(t, srv, "/token", joinBody, []string{c.header + ": " + c.values[0]}, []string{c.header + ": " + c.values[1]})
		if fmt.Sprint(got) != want(200, 429) {
			t.Errorf("%s: %q then %q: %v, want one client", c.header, c.values[0], c.values[1], got)
		}
	}

	// With Forwarded, a proxy's own hop in the list is skipped; X-Forwarded-For is not read.
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=1", "TRUSTED_PROXIES=127.0.0.0/8,10.0.0.0/8", "CLIENT_IP_HEADER=Forwarded")
	got := statuses(t, srv, "/token", joinBody,
		[]string{"Forwarded: for=198.51.100.12, for=10.1.2.3", "X-Forwarded-For: 192.0.2.1"},
		[]string{"Forwarded: for=198.51.100.13, for=10.1.2.3", "X-Forwarded-For: 192.0.2.1"},
		[]string{"Forwarded: for=198.51.100.12"})
	if fmt.Sprint(got) != want(200, 200, 429) {
		t.Errorf("Forwarded through two proxies: %v", got)
	}
}

// A header from a trusted proxy that names no readable address is counted in a metric and keyed
// apart from the proxy's own address: whoever sends one cannot spend the proxy's count.
func TestUnusableForwardedHeaderIsKeyedApart(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=2", "TRUSTED_PROXIES=127.0.0.0/8", "METRICS_ENABLED=true")
	for _, v := range []string{"unknown", "_hidden", "not an address", "198.51.100.1, nonsense"} {
		srv.post(t, "/token", joinBody, "X-Forwarded-For: "+v)
	}
	if got := srv.post(t, "/token", joinBody, "X-Forwarded-For: garbage").status; got != http.StatusTooManyRequests {
		t.Errorf("unreadable headers share one count of their own: the fifth got %d", got)
	}
	// The proxy's own requests (health checks, its own calls) carry no header: another count.
	if got := srv.post(t, "/token", joinBody).status; got != http.StatusOK {
		t.Errorf("the proxy's own request after unreadable ones: %d", got)
	}
	if n := value(scrape(t, srv), "token_service_client_ip_header_unusable_total", nil); n != 5 {
		t.Errorf("client_ip_header_unusable_total = %v, want 5", n)
	}
}

// A flood of 300,000 distinct clients through the real router neither lets every new client
// through nor forgets the clients that keep asking, and leaves no memory behind: the counters
// are allocated at start and never grow.
func TestAFloodOfClientsThroughTheRouter(t *testing.T) {
	const limit = 3
	cfg, err := config.Load([]string{"APP_ENV=development", "LIVEKIT_API_KEY=" + testKey, "LIVEKIT_API_SECRET=" + testSecret,
		"LIVEKIT_WS_URL=" + testWSURL, "RATE_LIMIT_MAX_REQUESTS=3", "RATE_LIMIT_WINDOW_MS=3600000", "TRUSTED_PROXIES=192.0.2.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	log := logging.New(io.Discard, zerolog.InfoLevel, false) // the access log is written, and not kept
	deps, closeDeps, err := app.New(t.Context(), cfg, "test", log, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeDeps() })
	router := handlers.NewRouter(deps)
	send := func(client string) int {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(`{}`)) // 400 once counted: cheap
		req.RemoteAddr = "192.0.2.1:4711"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		w := httptest.NewRecorder()
		router.ServeHTTP(w, req)
		_, _ = io.Copy(io.Discard, w.Body)
		return w.Code
	}
	steady := make([]string, 50)
	for i := range steady {
		steady[i] = fmt.Sprintf("203.0.113.%d", i+1)
		for range limit {
			if code := send(steady[i]); code == http.StatusTooManyRequests {
				t.Fatalf("%s refused before its limit", steady[i])
			}
		}
	}
	before := heapInUse()
	for i := range 300_000 {
		if code := send(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)); code == http.StatusTooManyRequests {
			t.Fatalf("flood client %d refused on its first request", i)
		}
		if i%1000 == 0 { // the clients seen before the flood keep asking, and stay limited
			if code := send(steady[(i/1000)%len(steady)]); code != http.StatusTooManyRequests {
				t.Fatalf("after %d flood clients, a client over its limit got %d", i, code)
			}
		}
	}
	for range limit { // a newcomer after the flood is counted, not waved through
		send("198.51.100.99")
	}
	if code := send("198.51.100.99"); code != http.StatusTooManyRequests {
		t.Errorf("a newcomer after the flood, over its limit: %d", code)
	}
	if grew := heapInUse() - before; grew > 4<<20 {
		t.Errorf("the heap grew by %d KiB over the flood", grew>>10)
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
