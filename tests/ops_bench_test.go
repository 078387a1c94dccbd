package tests

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway/telemetry"
)

// benchOpsConfig serves gpt-4o from the in-process mock, so a benchmark
// loop measures the gateway's own work (edge, auth, policy, proxy, mock)
// without a network.
const benchOpsConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: mock/gpt-4o}
router_settings:
  model_group_alias:
    fast: gpt-4o
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [fast]}
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, team_id: research}
`

// discardClient is an OTLP client that marshals each batch, as the HTTP and
// gRPC clients do before sending, and drops it.
type discardClient struct{}

func (discardClient) Start(context.Context) error { return nil }
func (discardClient) Stop(context.Context) error  { return nil }
func (discardClient) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	_, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rss})
	return err
}

// benchTracerProvider is the gateway's Provider as NewTracerProvider sets
// it up (batching to the gateway's OTLP exporter), with sampler s and a
// client that drops the batches.
func benchTracerProvider(b *testing.B, s sdktrace.Sampler) *telemetry.Provider {
	tp := telemetry.NewProvider(telemetry.ProviderConfig{Exporter: discardExporter(b), Sampler: s})
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// benchSDKProvider is the OpenTelemetry SDK's tracer provider with its
// batch span processor and the gateway's OTLP exporter, always sampling:
// what the gateway used before it had its own Provider.
func benchSDKProvider(b *testing.B) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter(b)))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// discardExporter is the gateway's OTLP exporter with a client that drops
// the batches.
func discardExporter(b *testing.B) *telemetry.Exporter {
	exp, err := telemetry.NewExporter(b.Context(), discardClient{})
	if err != nil {
		b.Fatal(err)
	}
	return exp
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpsTelemetry measures a chat call (through the alias, policy
// and in-process mock) with telemetry off, metrics only, metrics with a
// no-op tracer, metrics with the gateway's tracer (the Provider, always
// sampling, batching to the gateway's OTLP exporter, whose client marshals
// each batch and drops it), the same sampling 10% of traces, and, for
// reference, the OpenTelemetry SDK's tracer provider always sampling into
// the same exporter. The six gateways run in alternating blocks of
// requests, so that drift on a shared machine hits every configuration
// alike; for each it reports the process CPU per
// request (<config>-cpu-ns/op, background goroutines such as the span
// batcher included) and its overhead against "off" measured in the same
// rounds (<config>-overhead-%). The machine must be otherwise idle: CPU
// contention moves these figures by several percent.
func BenchmarkOpsTelemetry(b *testing.B) {
	always := benchTracerProvider(b, sdktrace.AlwaysSample())
	sampled := benchTracerProvider(b, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)))
	configs := []struct {
		name string
		opts app.Options
	}{
		{"off", app.Options{DisableMetrics: true}},
		{"metrics", app.Options{}},
		{"noop-tracer", app.Options{TracerProvider: nooptrace.NewTracerProvider()}},
		{"tracer", app.Options{TracerProvider: always}},
		{"tracer-10pct", app.Options{TracerProvider: sampled}},
		{"sdk-tracer", app.Options{TracerProvider: trace.TracerProvider(benchSDKProvider(b))}},
	}
	handlers := make([]http.Handler, len(configs))
	for i, c := range configs {
		handlers[i] = startGatewayWith(b, benchOpsConfig, nil, c.opts).Handler
	}
	body := opsChatBody("fast", false)
	call := func(h http.Handler) {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+opsKey)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	for _, h := range handlers { // warm caches and pools
		for range 200 {
			call(h)
		}
	}
	const block = 50
	cpu := make([]time.Duration, len(configs))
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		// A new order each round, so that work one configuration leaves
		// behind (span batching, garbage) lands on every other alike.
		for _, i := range rand.Perm(len(handlers)) {
			t0 := cpuTime(b)
			for range block {
				call(handlers[i])
			}
			cpu[i] += cpuTime(b) - t0
		}
		n += block
	}
	base := float64(cpu[0]) / float64(n)
	for i, c := range configs {
		perOp := float64(cpu[i]) / float64(n)
		b.ReportMetric(perOp, c.name+"-cpu-ns/op")
		if i > 0 {
			b.ReportMetric(100*(perOp-base)/base, c.name+"-overhead-%")
		}
	}
}
