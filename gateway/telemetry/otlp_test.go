package telemetry

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// captureClient is an otlptrace.Client that keeps the wire bytes of what
// it is asked to upload, as the real clients marshal them.
type captureClient struct {
	uploads [][]byte // marshaled ExportTraceServiceRequest bodies, one per ResourceSpans
	err     error
	started bool
	stopped int
}

func (c *captureClient) Start(context.Context) error { c.started = true; return nil }
func (c *captureClient) Stop(context.Context) error  { c.stopped++; return nil }
func (c *captureClient) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	for _, rs := range rss {
		b, err := proto.Marshal(rs)
		if err != nil {
			return err
		}
		c.uploads = append(c.uploads, b)
	}
	return c.err
}

// decoded unmarshals what c received.
func (c *captureClient) decoded(t *testing.T) []*tracepb.ResourceSpans {
	t.Helper()
	var out []*tracepb.ResourceSpans
	for _, b := range c.uploads {
		rs := &tracepb.ResourceSpans{}
		if err := proto.Unmarshal(b, rs); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		out = append(out, rs)
	}
	return out
}

// testSpans records the spans of scenario with the SDK.
func testSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	var got []sdktrace.ReadOnlySpan
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(&captureProcessor{f: func(s sdktrace.ReadOnlySpan) { got = append(got, s) }}),
		sdktrace.WithResource(scenarioResource),
		sdktrace.WithSpanLimits(scenarioLimits),
	)
	if n := scenario(tp); len(got) != n {
		t.Fatalf("recorded %d spans, want %d", len(got), n)
	}
	return got
}

// TestExporterMatchesOfficial checks that Exporter's wire output decodes to
// exactly the messages the official OTLP exporter sends for the same spans.
func TestExporterMatchesOfficial(t *testing.T) {
	spans := testSpans(t)
	official := officialExport(t, spans)

	ours := &captureClient{}
	exp, err := NewExporter(t.Context(), ours)
	if err != nil {
		t.Fatal(err)
	}
	if !ours.started {
		t.Fatal("NewExporter did not start the client")
	}
	// Twice: the second batch reuses the first one's buffers.
	for range 2 {
		if err := exp.ExportSpans(t.Context(), spans); err != nil {
			t.Fatal(err)
		}
	}
	want, got := official.decoded(t), ours.decoded(t)
	if len(want) != 1 || len(got) != 2 {
		t.Fatalf("%d official ResourceSpans, %d of ours; want 1 and 2", len(want), len(got))
	}
	for i := range got {
		if !proto.Equal(want[0], got[i]) {
			t.Errorf("batch %d differs from the official exporter's:\nofficial: %s\nours:     %s", i, prototext.Format(want[0]), prototext.Format(got[i]))
		}
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	_ = exp.Shutdown(t.Context())
	if ours.stopped != 1 {
		t.Errorf("client stopped %d times, want once", ours.stopped)
	}
}

// TestExporterGroupsResources checks spans of two resources go out as two
// ResourceSpans, each with its spans, in the order they first appear.
func TestExporterGroupsResources(t *testing.T) {
	var spans []sdktrace.ReadOnlySpan
	for _, name := range []string{"one", "two", "one"} {
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithSpanProcessor(&captureProcessor{f: func(s sdktrace.ReadOnlySpan) { spans = append(spans, s) }}),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		)
		_, s := tp.Tracer("t").Start(context.Background(), name)
		s.End()
	}
	c := &captureClient{}
	exp, err := NewExporter(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	got := c.decoded(t)
	if len(got) != 2 {
		t.Fatalf("%d ResourceSpans, want 2", len(got))
	}
	for i, want := range []struct {
		service string
		spans   int
	}{{"one", 2}, {"two", 1}} {
		rs := got[i]
		if s := rs.GetResource().GetAttributes()[0].GetValue().GetStringValue(); s != want.service {
			t.Errorf("ResourceSpans %d is for %q, want %q", i, s, want.service)
		}
		if n := len(rs.GetScopeSpans()[0].GetSpans()); n != want.spans {
			t.Errorf("ResourceSpans %d has %d spans, want %d", i, n, want.spans)
		}
	}
}

func TestExporterErrors(t *testing.T) {
	c := &captureClient{err: errors.New("collector down")}
	exp, err := NewExporter(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(t.Context(), testSpans(t)); err == nil || !errors.Is(err, c.err) {
		t.Errorf("ExportSpans = %v, want the client's error", err)
	}
	if err := exp.ExportSpans(t.Context(), nil); err != nil || len(c.uploads) != 1 {
		t.Errorf("an empty batch: %v, %d uploads; want nothing sent", err, len(c.uploads))
	}
}

// officialExport exports spans with the official OTLP exporter and returns
// what its client received.
func officialExport(t *testing.T, spans []sdktrace.ReadOnlySpan) *captureClient {
	t.Helper()
	c := &captureClient{}
	exp, err := otlptrace.New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	return c
}

// captureProcessor hands every ended span to f.
type captureProcessor struct{ f func(sdktrace.ReadOnlySpan) }

func (c *captureProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *captureProcessor) OnEnd(s sdktrace.ReadOnlySpan)                   { c.f(s) }
func (c *captureProcessor) Shutdown(context.Context) error                  { return nil }
func (c *captureProcessor) ForceFlush(context.Context) error                { return nil }

// chatSpans records the four spans of n chat calls (chatCall) with the SDK.
func chatSpans(tb testing.TB, n int) []sdktrace.ReadOnlySpan {
	tb.Helper()
	var got []sdktrace.ReadOnlySpan
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(&captureProcessor{f: func(s sdktrace.ReadOnlySpan) { got = append(got, s) }}))
	server, policy, upstream := tp.Tracer("github.com/regate/gateway/gateway/httpapi"), tp.Tracer("github.com/regate/gateway/gateway/telemetry"), tp.Tracer("github.com/regate/gateway/gateway/proxy")
	for range n {
		chatCall(server, policy, upstream)
	}
	return got
}

// BenchmarkExport is one batch of 512 spans (128 chat calls) through the
// official OTLP exporter and through the gateway's, each with a client that
// marshals the request as the HTTP and gRPC clients do: per-call is the
// export cost of one chat call's spans.
func BenchmarkExport(b *testing.B) {
	spans := chatSpans(b, 128)
	for _, bc := range []struct {
		name string
		exp  func(otlptrace.Client) (sdktrace.SpanExporter, error)
	}{
		{"official", func(c otlptrace.Client) (sdktrace.SpanExporter, error) { return otlptrace.New(b.Context(), c) }},
		{"gateway", func(c otlptrace.Client) (sdktrace.SpanExporter, error) { return NewExporter(b.Context(), c) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			exp, err := bc.exp(marshalClient{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := exp.ExportSpans(b.Context(), spans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/128, "ns/call")
		})
	}
}

// marshalClient marshals what it is given and drops it.
type marshalClient struct{}

func (marshalClient) Start(context.Context) error { return nil }
func (marshalClient) Stop(context.Context) error  { return nil }
func (marshalClient) UploadTraces(_ context.Context, rss []*tracepb.ResourceSpans) error {
	_, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rss})
	return err
}
