package proxy

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// observed returns a Config observer and a way to wait for its next
// outcome; Serve reports after the response may already have reached the
// client.
func observed(tb testing.TB) (func(*Outcome), func() *Outcome) {
	ch := make(chan *Outcome, 16)
	return func(o *Outcome) { ch <- o }, func() *Outcome {
		tb.Helper()
		select {
		case o := <-ch:
			return o
		case <-time.After(5 * time.Second):
			tb.Fatal("no outcome reported")
			return nil
		}
	}
}

func TestOutcomeFailover(t *testing.T) {
	wantKind := map[string]Attempt{
		"connection refused":     {Kind: FailUnavailable},
		"503":                    {Kind: FailStatus, Status: 503},
		"500 html":               {Kind: FailStatus, Status: 500},
		"429":                    {Kind: FailStatus, Status: 429},
		"redirect":               {Kind: FailStatus, Status: 302},
		"timeout before headers": {Kind: FailTimeout},
	}
	for _, k := range failingFirsts {
		t.Run(k.name, func(t *testing.T) {
			first, _ := k.deployment(t)
			second := newUpstream(t, replying(200, "application/json", `{"from":"b"}`))
			obs, next := observed(t)
			gw, _ := newGateway(t, newProxy(t, Config{Observer: obs}), first, dep("b", second.URL))
			if res, _ := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil); res.StatusCode != 200 {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			o := next()
			want := wantKind[k.name]
			if o.Attempts != 2 || o.Deployment == nil || o.Deployment.ID != "b" || o.Status != 200 {
				t.Errorf("outcome = %d attempts, deployment %v, status %d; want 2, b, 200", o.Attempts, o.Deployment, o.Status)
			}
			if len(o.Failures) != 1 || o.Failures[0].Kind != want.Kind || o.Failures[0].Status != want.Status || o.Failures[0].Deployment.ID != "a" {
				t.Errorf("outcome failures = %+v, want one %+v of deployment a", o.Failures, want)
			}
			if o.TTFB <= 0 || o.Duration < o.TTFB {
				t.Errorf("outcome TTFB %v, duration %v; want 0 < TTFB <= duration", o.TTFB, o.Duration)
			}
		})
	}
}

func TestOutcomeClientError(t *testing.T) {
	up := newUpstream(t, replying(400, "application/json", `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`))
	obs, next := observed(t)
	gw, _ := newGateway(t, newProxy(t, Config{Observer: obs}), dep("a", up.URL))
	if res, _ := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil); res.StatusCode != 400 {
		t.Fatalf("status %d, want 400", res.StatusCode)
	}
	o := next()
	if o.Status != 400 || len(o.Failures) != 1 || o.Failures[0].Kind != FailStatus || o.Failures[0].Status != 400 {
		t.Errorf("outcome = status %d, failures %+v; want 400 with one status failure", o.Status, o.Failures)
	}
}

// TestUpstreamSpan checks the client span of a call with a failover: the
// trace context each attempt carries, the failure event and attributes.
func TestUpstreamSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	bad := newUpstream(t, replying(503, "application/json", `{}`))
	good := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range []string{`{"a":1}`, `{"a":2}`, `[DONE]`} {
			writeEvent(t, w, e)
			time.Sleep(5 * time.Millisecond)
		}
	})
	obs, next := observed(t)
	gw, _ := newGateway(t, newProxy(t, Config{TracerProvider: tp, Observer: obs}), dep("a", bad.URL), dep("b", good.URL))
	if res, _ := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m","stream":true}`, nil); res.StatusCode != 200 {
		t.Fatalf("status %d, want 200", res.StatusCode)
	}
	next() // the span has ended when the outcome is reported
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want the one upstream span", len(spans))
	}
	s := spans[0]
	if s.Name != "upstream test" || s.SpanKind != trace.SpanKindClient {
		t.Errorf("span = %q kind %v, want upstream test, client", s.Name, s.SpanKind)
	}
	for _, u := range []*upstream{bad, good} {
		tp := u.requests()[0].Header.Get("Traceparent")
		if want := s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String(); !strings.Contains(tp, want) {
			t.Errorf("attempt traceparent = %q, want trace and span %s", tp, want)
		}
	}
	var names []string
	for _, e := range s.Events {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "upstream failure,first byte" {
		t.Errorf("span events = %v, want [upstream failure, first byte]", names)
	}
	got := map[string]string{}
	for _, kv := range s.Attributes {
		got[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{"gateway.attempts": "2", "gateway.deployment": "b", "gateway.model_group": "group", "http.response.status_code": "200", "gateway.stream": "true"} {
		if got[k] != want {
			t.Errorf("span attribute %s = %q, want %q", k, got[k], want)
		}
	}
	for k, v := range got {
		if strings.Contains(v, "sk-provider-secret") {
			t.Errorf("span attribute %s holds the provider key", k)
		}
	}
}

// TestSetTraceContext checks that the upstream's trace context headers
// are what the OpenTelemetry propagator writes, under their canonical
// names, so Header.Get and the upstream find them.
func TestSetTraceContext(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	state, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags trace.TraceFlags
		state trace.TraceState
	}{
		{"sampled", trace.FlagsSampled, trace.TraceState{}},
		{"not sampled", 0, trace.TraceState{}},
		{"other flag bits", 0xff, trace.TraceState{}},
		{"trace state", trace.FlagsSampled, state},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: tc.flags, TraceState: tc.state})
			want := http.Header{}
			propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(t.Context(), sc), propagation.HeaderCarrier(want))
			got := http.Header{}
			setTraceContext(got, sc)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("headers = %v, want %v", got, want)
			}
			if got.Get("Traceparent") == "" {
				t.Error("no traceparent")
			}
		})
	}
	h := http.Header{}
	setTraceContext(h, trace.SpanContext{})
	if len(h) != 0 {
		t.Errorf("an invalid span context set %v", h)
	}
}
