package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/proxy"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestNewTracerProviderOff(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"nothing set", nil},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{"only a service name", map[string]string{"OTEL_SERVICE_NAME": "gw"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := NewTracerProvider(t.Context(), TracingConfig{Env: env(tc.env)})
			if err != nil || tp != nil {
				t.Errorf("NewTracerProvider(%v) = %v, %v; want nil, nil (no exporter)", tc.env, tp, err)
			}
		})
	}
}

func TestNewTracerProviderErrors(t *testing.T) {
	tests := []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	}
	for _, e := range tests {
		if tp, err := NewTracerProvider(t.Context(), TracingConfig{Env: env(e)}); !errors.Is(err, ErrUnsupportedExporter) {
			t.Errorf("NewTracerProvider(%v) = %v, %v; want ErrUnsupportedExporter", e, tp, err)
		}
	}
	bad := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"}
	if tp, err := NewTracerProvider(t.Context(), TracingConfig{Env: env(bad)}); !errors.Is(err, ErrBadSampler) {
		t.Errorf("NewTracerProvider(%v) = %v, %v; want ErrBadSampler", bad, tp, err)
	}
}

// TestNewTracerProviderExports checks that an OTLP endpoint in the
// environment turns on the exporter, which posts spans to it.
func TestNewTracerProviderExports(t *testing.T) {
	var posts atomic.Int32
	var path, ctype, got atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		ctype.Store(r.Header.Get("Content-Type"))
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err == nil {
			got.Store(req)
		}
		posts.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "gw-test")
	tp, err := NewTracerProvider(t.Context(), TracingConfig{})
	if err != nil || tp == nil {
		t.Fatalf("NewTracerProvider with an endpoint = %v, %v; want a provider", tp, err)
	}
	_, span := tp.Tracer("test").Start(t.Context(), "hello")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if posts.Load() == 0 || path.Load() != "/v1/traces" || ctype.Load() != "application/x-protobuf" {
		t.Errorf("collector got %d posts to %v (%v), want OTLP/HTTP protobuf to /v1/traces", posts.Load(), path.Load(), ctype.Load())
	}
	req, _ := got.Load().(*coltracepb.ExportTraceServiceRequest)
	rss := req.GetResourceSpans()
	if len(rss) != 1 || len(rss[0].GetScopeSpans()) != 1 || len(rss[0].GetScopeSpans()[0].GetSpans()) != 1 {
		t.Fatalf("collector got %v, want one span", req)
	}
	if name := rss[0].GetScopeSpans()[0].GetSpans()[0].GetName(); name != "hello" {
		t.Errorf("span %q, want hello", name)
	}
	service := ""
	for _, kv := range rss[0].GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			service = kv.GetValue().GetStringValue()
		}
	}
	if service != "gw-test" {
		t.Errorf("service.name %q, want gw-test", service)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format, level string
		wantErr       bool
		wantOut       string // substring after logging "hello" at info and "dbg" at debug
		wantNot       string
	}{
		{"", "", false, `"msg":"hello"`, "dbg"},
		{"json", "debug", false, `"msg":"dbg"`, ""},
		{"text", "info", false, "msg=hello", "dbg"},
		{"text", "warn", false, "", "hello"},
		{"yaml", "info", true, "", ""},
		{"json", "loud", true, "", ""},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, tc.format, tc.level)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewLogger(%q, %q) error = %v, want error %v", tc.format, tc.level, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		log.Info("hello")
		log.Debug("dbg")
		if out := buf.String(); !strings.Contains(out, tc.wantOut) || (tc.wantNot != "" && strings.Contains(out, tc.wantNot)) {
			t.Errorf("NewLogger(%q, %q) wrote %q, want %q and not %q", tc.format, tc.level, out, tc.wantOut, tc.wantNot)
		}
	}
}

func TestMetricsBoundedLabels(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{ModelGroups: []string{"gpt-4o", "openai/*"}})
	if err != nil {
		t.Fatal(err)
	}
	known := &gateway.Deployment{ModelName: "gpt-4o", Provider: "openai"}
	unknown := &gateway.Deployment{ModelName: "made-up-by-a-client", Provider: "openai"}
	m.ObserveUpstream(&proxy.Outcome{Deployment: known, Duration: time.Second, TTFB: time.Millisecond,
		Failures: []proxy.Attempt{{Deployment: unknown, Kind: proxy.FailStatus, Status: 429}, {Deployment: known, Kind: proxy.FailTimeout}}})
	m.ObserveRequest("", "BREW", 418, time.Millisecond)

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"429 of an unconfigured group", "gateway_upstream_errors_total", map[string]string{"provider": "openai", "model_group": OtherLabel, "kind": "status_429"}, 1},
		{"timeout", "gateway_upstream_errors_total", map[string]string{"provider": "openai", "model_group": "gpt-4o", "kind": "timeout"}, 1},
		{"unknown method and route", "gateway_requests_total", map[string]string{"route": OtherLabel, "method": OtherLabel, "status": "418"}, 1},
	}
	fams := gather(t, m)
	for _, tc := range tests {
		if got := counter(fams[tc.metric], tc.labels); got != tc.want {
			t.Errorf("%s: %s%v = %v, want %v", tc.name, tc.metric, tc.labels, got, tc.want)
		}
	}
	if n := len(fams["gateway_upstream_errors_total"].GetMetric()); n != 2 {
		t.Errorf("upstream error series = %d, want 2 (no series for the client's model name)", n)
	}
}

func gather(tb testing.TB, m *Metrics) map[string]*dto.MetricFamily {
	tb.Helper()
	fs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(fs))
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// counter returns the value of the series of f with exactly labels.
func counter(f *dto.MetricFamily, labels map[string]string) float64 {
	for _, m := range f.GetMetric() {
		match := len(m.GetLabel()) == len(labels)
		for _, lp := range m.GetLabel() {
			match = match && labels[lp.GetName()] == lp.GetValue()
		}
		if match {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func TestMetricsFuncs(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{
		PrincipalCache:     func() (uint64, uint64, uint64) { return 7, 3, 1 },
		BundleReloads:      func() (uint64, uint64) { return 4, 2 },
		DecisionLogDropped: func() uint64 { return 9 },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"gateway_principal_cache_hits_total":   7,
		"gateway_principal_cache_misses_total": 3,
		"gateway_principal_cache_stale_total":  1,
		"gateway_bundle_reloads_total":         4,
		"gateway_bundle_reload_failures_total": 2,
		"gateway_decision_log_dropped_total":   9,
	}
	fams := gather(t, m)
	for k, v := range want {
		if got := counter(fams[k], nil); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}
