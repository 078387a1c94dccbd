package tests

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/telemetry"
)

// traced is a gateway whose spans land in an in-memory exporter.
type traced struct {
	*gw
	up  *upstream
	exp *tracetest.InMemoryExporter
}

func startTraced(tb testing.TB, opts app.Options) *traced {
	tb.Helper()
	exp := tracetest.NewInMemoryExporter()
	// The gateway's own tracer provider, as in production; it hands each
	// span to an exporter other than its OTLP one as the span ends.
	tp := telemetry.NewProvider(telemetry.ProviderConfig{Exporter: exp})
	tb.Cleanup(func() { _ = tp.Shutdown(tb.Context()) })
	opts.TracerProvider = tp
	up := startUpstream(tb)
	return &traced{gw: startGatewayWith(tb, opsConfig, up, opts), up: up, exp: exp}
}

// trace waits for the server span of the trace with id, then returns every
// span of that trace. The server span ends after the client has its
// answer, so it is polled for.
func (tr *traced) trace(tb testing.TB, id trace.TraceID) (server tracetest.SpanStub, spans []tracetest.SpanStub) {
	tb.Helper()
	eventually(tb, "the server span of trace "+id.String(), func() bool {
		spans = spans[:0]
		found := false
		for _, s := range tr.exp.GetSpans() {
			if s.SpanContext.TraceID() != id {
				continue
			}
			spans = append(spans, s)
			if s.SpanKind == trace.SpanKindServer {
				server, found = s, true
			}
		}
		return found
	})
	return server, spans
}

// traceOf returns the trace id the upstream saw in traceparent of its last
// call, and the parent span id it names.
func traceparentOf(tb testing.TB, h http.Header) (trace.TraceID, trace.SpanID) {
	tb.Helper()
	parts := strings.Split(h.Get("Traceparent"), "-")
	if len(parts) != 4 {
		tb.Fatalf("upstream traceparent = %q, want a W3C traceparent", h.Get("Traceparent"))
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil {
		tb.Fatalf("upstream traceparent = %q: %v %v", h.Get("Traceparent"), err1, err2)
	}
	return tid, sid
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(s.Attributes))
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// childNamed returns the child of parent named name.
func childNamed(tb testing.TB, spans []tracetest.SpanStub, parent tracetest.SpanStub, name string) tracetest.SpanStub {
	tb.Helper()
	var names []string
	for _, s := range spans {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			if s.Name == name {
				return s
			}
			names = append(names, s.Name)
		}
	}
	tb.Fatalf("span %q has no child %q; its children: %v", parent.Name, name, names)
	return tracetest.SpanStub{}
}

// noSecrets fails when any attribute or event attribute of spans holds a
// key, its hash or the prompt.
func noSecrets(tb testing.TB, spans []tracetest.SpanStub) {
	tb.Helper()
	forbidden := []string{opsKey, gateway.HashKey(opsKey), opsUpstreamKey, opsMasterKey, "purple-elephant"}
	check := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			v := kv.Value.Emit()
			for _, f := range forbidden {
				if strings.Contains(v, f) {
					tb.Errorf("%s attribute %s = %q holds a secret or the prompt", where, kv.Key, v)
				}
			}
		}
	}
	for _, s := range spans {
		check(s.Name, s.Attributes)
		for _, e := range s.Events {
			check(s.Name+"/"+e.Name, e.Attributes)
		}
	}
}

func TestOpsTraceChat(t *testing.T) {
	tr := startTraced(t, app.Options{})
	// The client continues a trace of its own.
	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	status, h, body := opsCall(t, tr.gw, http.MethodPost, "/v1/chat/completions", opsKey, opsChatBody("fast", false),
		map[string]string{"Traceparent": "00-" + parentTrace + "-" + parentSpan + "-01", "X-Request-Id": "ops-trace-1"})
	if status != http.StatusOK {
		t.Fatalf("chat status = %d, want 200: %s", status, body)
	}
	if got := h.Get("X-Request-Id"); got != "ops-trace-1" {
		t.Errorf("x-request-id = %q, want the client's ops-trace-1", got)
	}
	tid, _ := trace.TraceIDFromHex(parentTrace)
	server, spans := tr.trace(t, tid)

	if server.Name != "POST /v1/chat/completions" {
		t.Errorf("server span name = %q, want POST /v1/chat/completions (the route template)", server.Name)
	}
	if got := server.Parent.SpanID().String(); got != parentSpan || !server.Parent.IsRemote() {
		t.Errorf("server span parent = %s (remote %v), want the client's span %s", got, server.Parent.IsRemote(), parentSpan)
	}
	if got := attrs(server)["gateway.request_id"].AsString(); got != "ops-trace-1" {
		t.Errorf("server span gateway.request_id = %q, want ops-trace-1", got)
	}

	auth := childNamed(t, spans, server, "authenticate")
	if a := attrs(auth); a["gateway.auth.result"].AsString() != "ok" || a["gateway.key_alias"].AsString() != "alice-ops" || a["gateway.team_id"].AsString() != "research" {
		t.Errorf("authenticate attributes = %v, want result ok, alias alice-ops, team research", auth.Attributes)
	}

	pol := childNamed(t, spans, server, "policy.decision")
	pa := attrs(pol)
	for k, want := range map[attribute.Key]string{
		"gateway.policy.decision": "allow",
		"gateway.policy.revision": tr.Engine.Revision(),
		"gateway.model.requested": "fast",
		"gateway.model.resolved":  "gpt-4o-mini",
		"gateway.route":           gateway.RouteInference,
	} {
		if got := pa[k].AsString(); got != want {
			t.Errorf("policy span %s = %q, want %q", k, got, want)
		}
	}

	upSpan := childNamed(t, spans, server, "upstream chat.completions")
	if upSpan.SpanKind != trace.SpanKindClient {
		t.Errorf("upstream span kind = %v, want client", upSpan.SpanKind)
	}
	ua := attrs(upSpan)
	if ua["gateway.provider"].AsString() != "openai" || ua["gateway.model_group"].AsString() != "gpt-4o-mini" || ua["http.response.status_code"].AsInt64() != 200 {
		t.Errorf("upstream span attributes = %v, want provider openai, group gpt-4o-mini, status 200", upSpan.Attributes)
	}
	gotTrace, gotParent := traceparentOf(t, tr.up.last(t).Header)
	if gotTrace != tid || gotParent != upSpan.SpanContext.SpanID() {
		t.Errorf("upstream traceparent = %s/%s, want trace %s and the upstream span %s", gotTrace, gotParent, tid, upSpan.SpanContext.SpanID())
	}
	noSecrets(t, spans)
}

func TestOpsTraceDeny(t *testing.T) {
	tr := startTraced(t, app.Options{})
	before := tr.up.count()
	// gpt-4o-mini by its own name: the team allows only its alias.
	status, h, _ := opsCall(t, tr.gw, http.MethodPost, "/v1/chat/completions", opsKey, opsChatBody("gpt-4o-mini", false), nil)
	if status != http.StatusNotFound {
		t.Fatalf("denied chat status = %d, want 404", status)
	}
	if tr.up.count() != before {
		t.Error("a denied call reached the upstream")
	}
	tid := serverTraceFor(t, tr, h.Get("X-Request-Id"))
	server, spans := tr.trace(t, tid)
	pol := childNamed(t, spans, server, "policy.decision")
	pa := attrs(pol)
	if pa["gateway.policy.decision"].AsString() != "deny" || pa["gateway.policy.code"].AsString() != gateway.CodeModelNotFound {
		t.Errorf("policy span = %v, want decision deny with code model_not_found", pol.Attributes)
	}
	// A deny shows the chain the policy saw and its reasons.
	if chain := pa["gateway.model.chain"].AsStringSlice(); !slices.Equal(chain, []string{"gpt-4o-mini", "openai/gpt-4o-mini"}) {
		t.Errorf("deny policy span chain = %v, want [gpt-4o-mini openai/gpt-4o-mini]", chain)
	}
	if len(pa["gateway.policy.reasons"].AsStringSlice()) == 0 {
		t.Error("deny policy span has no reasons")
	}
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "upstream") {
			t.Errorf("denied call has an upstream span %q", s.Name)
		}
	}
	noSecrets(t, spans)
}

func TestOpsTraceStream(t *testing.T) {
	tr := startTraced(t, app.Options{})
	status, h, body := opsCall(t, tr.gw, http.MethodPost, "/v1/chat/completions", opsKey, opsChatBody("gpt-4o", true),
		map[string]string{"X-Mock-Chunks": "4", "X-Mock-Chunk-Delay": "20ms"})
	if status != http.StatusOK || !strings.Contains(string(body), "data: [DONE]") {
		t.Fatalf("stream status = %d, body %q; want 200 ending in [DONE]", status, body)
	}
	server, spans := tr.trace(t, serverTraceFor(t, tr, h.Get("X-Request-Id")))
	upSpan := childNamed(t, spans, server, "upstream chat.completions")
	ua := attrs(upSpan)
	ttfb, total := ua["gateway.upstream.ttfb_ms"].AsFloat64(), ua["gateway.upstream.duration_ms"].AsFloat64()
	if !ua["gateway.stream"].AsBool() || ttfb <= 0 || total < ttfb {
		t.Errorf("stream upstream span: stream %v, ttfb %v ms, duration %v ms; want a stream with 0 < ttfb <= duration",
			ua["gateway.stream"].AsBool(), ttfb, total)
	}
	// Three chunk delays separate the first event from the end. They are
	// long enough that a late first read under a busy test run (which
	// moves the first byte later) cannot eat them: with 5 ms delays the
	// whole suite once measured 6.9 ms here.
	if total-ttfb < 40 {
		t.Errorf("stream duration - ttfb = %v ms, want at least the chunk delays (60 ms)", total-ttfb)
	}
	if !slices.ContainsFunc(upSpan.Events, func(e sdktrace.Event) bool { return e.Name == "first byte" }) {
		t.Errorf("upstream span events = %v, want a first byte event", upSpan.Events)
	}
	noSecrets(t, spans)
}

// serverTraceFor finds the trace of the server span with request id.
func serverTraceFor(tb testing.TB, tr *traced, requestID string) trace.TraceID {
	tb.Helper()
	var id trace.TraceID
	eventually(tb, fmt.Sprintf("a server span for request %s", requestID), func() bool {
		for _, s := range tr.exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer && attrs(s)["gateway.request_id"].AsString() == requestID {
				id = s.SpanContext.TraceID()
				return true
			}
		}
		return false
	})
	return id
}

// TestOpsTraceKeyInQuery: LiteLLM's /key/info takes the key in the query;
// it must not reach a span.
func TestOpsTraceKeyInQuery(t *testing.T) {
	tr := startTraced(t, app.Options{})
	status, h, _ := opsCall(t, tr.gw, http.MethodGet, "/key/info?key="+opsKey, opsMasterKey, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/key/info status = %d, want 200", status)
	}
	server, spans := tr.trace(t, serverTraceFor(t, tr, h.Get("X-Request-Id")))
	if server.Name != "GET /key/info" {
		t.Errorf("server span name = %q, want GET /key/info", server.Name)
	}
	noSecrets(t, spans)
}
