package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(tb testing.TB, g *gw) map[string]*dto.MetricFamily {
	tb.Helper()
	status, h, body := opsCall(tb, g, http.MethodGet, "/metrics", "", nil, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET /metrics = %d: %s", status, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Errorf("GET /metrics Content-Type = %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value sums the counter, or the histogram's sample count, of the series
// of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestOpsMetrics(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, opsConfig, up)
	before := scrape(t, g)

	// The scripted calls: allowed, denied, upstream error, stream, and
	// routes whose raw paths must not become labels.
	calls := []struct {
		name, method, path string
		body               []byte
		header             map[string]string
		want               int
	}{
		{"allowed", http.MethodPost, "/v1/chat/completions", opsChatBody("fast", false), nil, 200},
		{"denied", http.MethodPost, "/v1/chat/completions", opsChatBody("gpt-4o-mini", false), nil, 404},
		{"upstream error", http.MethodPost, "/v1/chat/completions", opsChatBody("gpt-4o", false), map[string]string{"X-Mock-Status": "503"}, 503},
		{"stream", http.MethodPost, "/v1/chat/completions", opsChatBody("gpt-4o", true), nil, 200},
		{"retrieve with slash", http.MethodGet, "/v1/models/openai%2Fgpt-4.1-ops-raw-path", nil, nil, 404},
		{"unknown route", http.MethodGet, "/v1/no-such-route-ops", nil, nil, 404},
	}
	for _, c := range calls {
		if status, _, body := opsCall(t, g, c.method, c.path, opsKey, c.body, c.header); status != c.want {
			t.Fatalf("%s: status %d, want %d: %s", c.name, status, c.want, body)
		}
	}
	after := scrape(t, g)

	delta := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gateway_requests_total", map[string]string{"route": "inference", "method": "POST", "status": "200"}, 2},
		{"gateway_requests_total", map[string]string{"route": "inference", "method": "POST", "status": "404"}, 1},
		{"gateway_requests_total", map[string]string{"route": "inference", "method": "POST", "status": "503"}, 1},
		{"gateway_requests_total", map[string]string{"route": "models.get", "method": "GET", "status": "404"}, 1},
		{"gateway_requests_total", map[string]string{"route": "other", "method": "GET", "status": "404"}, 1},
		{"gateway_request_duration_seconds", map[string]string{"route": "inference", "method": "POST"}, 4},
		{"gateway_policy_decisions_total", map[string]string{"route": "inference", "result": "allow"}, 3},
		{"gateway_policy_decisions_total", map[string]string{"route": "inference", "result": "deny"}, 1},
		{"gateway_policy_decisions_total", map[string]string{"route": "models.get", "result": "deny"}, 1},
		{"gateway_policy_evaluation_duration_seconds", map[string]string{"query": "decision"}, 5},
		{"gateway_upstream_duration_seconds", map[string]string{"provider": "openai", "model_group": "gpt-4o-mini"}, 1},
		{"gateway_upstream_duration_seconds", map[string]string{"provider": "openai", "model_group": "gpt-4o"}, 2},
		// The 503 sent no body: no first byte.
		{"gateway_upstream_ttfb_seconds", map[string]string{"provider": "openai", "model_group": "gpt-4o"}, 1},
		{"gateway_upstream_ttfb_seconds", map[string]string{"provider": "openai", "model_group": "gpt-4o-mini"}, 1},
		{"gateway_upstream_errors_total", map[string]string{"provider": "openai", "model_group": "gpt-4o", "kind": "status_5xx"}, 1},
		{"gateway_upstream_errors_total", nil, 1},
		// Five calls authenticated with the key: the first is a miss.
		{"gateway_principal_cache_misses_total", nil, 1},
		{"gateway_principal_cache_hits_total", nil, 4},
	}
	for _, c := range checks {
		if got := delta(c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"gateway_bundle_reloads_total", "gateway_bundle_reload_failures_total", "gateway_decision_log_dropped_total", "go_goroutines"} {
		if _, ok := after[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if got := value(after, "gateway_build_info", nil); got != 1 {
		t.Errorf("gateway_build_info = %v, want 1", got)
	}

	// Bounded labels: no key, key id, raw path or unconfigured model.
	groups := map[string]bool{"gpt-4o": true, "gpt-4o-mini": true, "openai/*": true, "other": true}
	forbidden := []string{opsKey, gateway.HashKey(opsKey), "/v1/", "%2F", "ops-raw-path", "no-such-route", "purple-elephant", "alice"}
	var names []string
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, m := range after[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, f := range forbidden {
					if strings.Contains(lp.GetValue(), f) {
						t.Errorf("%s label %s=%q holds %q", name, lp.GetName(), lp.GetValue(), f)
					}
				}
				if lp.GetName() == "model_group" && !groups[lp.GetValue()] {
					t.Errorf("%s model_group=%q is not a configured model group", name, lp.GetValue())
				}
			}
		}
	}
}

// TestMetricsFlagOff runs the command line with GATEWAY_METRICS=false:
// the gateway serves, and GET /metrics is not found.
func TestMetricsFlagOff(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- app.Main(ctx, []string{"serve", "--listen", addr}, io.Discard, &stderr,
			mapEnv(map[string]string{"GATEWAY_METRICS": "false", "GATEWAY_MASTER_KEY": "sk-master-demo"}))
	}()
	waitReady(t, "http://"+addr)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics with GATEWAY_METRICS=false = %d, want 404", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit status %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not stop")
	}
}
