package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics the way Prometheus does.
func scrape(t *testing.T, srv *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value returns the counter (or histogram count) of the sample whose labels include want.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	family, ok := families[name]
	if !ok {
		return 0
	}
	for _, m := range family.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range want {
			matches = matches && labels[k] == v
		}
		if !matches {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func TestMetricsCountRealTraffic(t *testing.T) {
	srv := newServer(t, "RATE_LIMIT_MAX_REQUESTS=6")
	before := scrape(t, srv)

	for range 3 {
		srv.post(t, "/token", `{"room":"r","identity":"a"}`)
	}
	agent := srv.post(t, "/token/agent", `{"room":"r","agent_id":"b"}`)
	srv.post(t, "/token/verify", fmt.Sprintf(`{"token":%q}`, agent.body["token"]))
	srv.post(t, "/token/verify", `{"token":"garbage"}`)
	srv.post(t, "/token", `{"room":"r"}`) // the 7th request: refused by the limiter before validation
	srv.post(t, "/token", `{"room":"r","identity":"a"}`)
	srv.do(t, http.MethodGet, "/nope", "")

	after := scrape(t, srv)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"token_service_http_requests_total", map[string]string{"route": "/token", "method": "POST", "status": "200"}, 3},
		{"token_service_http_requests_total", map[string]string{"route": "/token", "method": "POST", "status": "429"}, 2},
		{"token_service_http_requests_total", map[string]string{"route": "/token/agent", "method": "POST", "status": "200"}, 1},
		{"token_service_http_requests_total", map[string]string{"route": "/token/verify", "method": "POST", "status": "200"}, 2},
		{"token_service_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "status": "404"}, 1},
		{"token_service_http_request_duration_seconds", map[string]string{"route": "/token", "status": "200"}, 3},
		{"token_service_tokens_issued_total", map[string]string{"type": "participant"}, 3},
		{"token_service_tokens_issued_total", map[string]string{"type": "agent"}, 1},
		{"token_service_token_verifications_total", map[string]string{"result": "valid"}, 1},
		{"token_service_token_verifications_total", map[string]string{"result": "malformed"}, 1},
		{"token_service_rate_limited_requests_total", nil, 2},
		{"token_service_rate_limit_backend_errors_total", nil, 0},
	} {
		if got := value(after, tc.name, tc.labels) - value(before, tc.name, tc.labels); got != tc.delta {
			t.Errorf("%s%v moved by %v, want %v", tc.name, tc.labels, got, tc.delta)
		}
	}
	if value(after, "token_service_build_info", map[string]string{"version": "test"}) != 1 {
		t.Error("no build_info{version=\"test\"} 1")
	}
	for name := range after {
		if strings.Contains(name, "token_service_http") {
			for _, m := range after[name].Metric {
				for _, l := range m.Label {
					if l.GetName() == "route" && strings.Contains(l.GetValue(), "nope") {
						t.Errorf("a raw path became a label: %v", l)
					}
				}
			}
		}
	}
	// /metrics itself is never rate limited.
	for range 10 {
		scrape(t, srv)
	}
}
