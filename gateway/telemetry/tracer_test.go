package telemetry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/regate/gateway/gateway/telemetry/spanattr"
)

var scenarioResource = resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
	attribute.String("service.name", "gw"), attribute.Int("pid", 7))

// scenarioLimits drop events, links and their attributes over one.
var scenarioLimits = sdktrace.SpanLimits{AttributeCountLimit: 40, EventCountLimit: 1, LinkCountLimit: 1,
	AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 1, AttributeValueLengthLimit: -1}

// tightLimits also cap the attributes and truncate their values.
var tightLimits = sdktrace.SpanLimits{AttributeCountLimit: 3, EventCountLimit: 2, LinkCountLimit: 1,
	AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 0, AttributeValueLengthLimit: 4}

// scenario records spans with tp exercising every field and attribute type
// and the rules a provider applies: two scopes (one with a version, schema
// and attributes), a root and children, remote parents sampled and not, a
// new root, events and links over their limits, repeated and invalid
// attributes, attributes over the count limit and long values, attributes
// handed over in a spanattr buffer, status precedence, renaming, errors,
// every kind, and calls after End. Every time is explicit, so that two
// providers with the same ids record the same spans. It returns how many
// spans are sampled.
func scenario(tp trace.TracerProvider) int {
	a := tp.Tracer("github.com/regate/gateway/a")
	b := tp.Tracer("github.com/regate/gateway/b", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithSchemaURL("https://example.com/schema"), trace.WithInstrumentationAttributes(attribute.Bool("scoped", true)))
	start := time.Date(2026, 12, 4, 10, 0, 0, 123, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	n := 0

	ctx, root := a.Start(context.Background(), "POST", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("at.start", "yes")))
	root.SetName("POST /v1/chat/completions")
	root.SetAttributes(
		attribute.String("s", "v"), attribute.String("empty", ""), attribute.Bool("b", false), attribute.Bool("t", true),
		attribute.Int64("i", -42), attribute.Int64("zero", 0), attribute.Float64("f", 3.25), attribute.Float64("fz", 0),
		attribute.StringSlice("ss", []string{"a", "", "c"}), attribute.BoolSlice("bs", []bool{true, false}),
		attribute.Int64Slice("is", []int64{1, -2, 0}), attribute.Float64Slice("fs", []float64{0.5, -1}),
		attribute.StringSlice("none", nil), attribute.String("s", "again"), attribute.String("", "invalid key"),
		attribute.String("long", "héllo wörld"), attribute.StringSlice("longs", []string{"abcdefgh", "ü"}),
	)
	root.AddEvent("first byte", trace.WithTimestamp(at(1)), trace.WithAttributes(attribute.Int("n", 1), attribute.Int("dropped", 2)))
	root.AddEvent("evicted", trace.WithTimestamp(at(1)))
	root.AddEvent("kept", trace.WithTimestamp(at(2)))
	root.RecordError(errors.New("upstream broke"), trace.WithTimestamp(at(2)))
	root.RecordError(nil)
	root.SetStatus(codes.Error, "upstream failed")
	root.SetStatus(codes.Unset, "ignored")

	_, child := b.Start(ctx, "policy.decision", trace.WithTimestamp(at(2)),
		trace.WithLinks(
			trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true}),
				Attributes: []attribute.KeyValue{attribute.String("k", "v"), attribute.String("over", "limit")}},
			trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}})},
		))
	child.AddLink(trace.Link{}) // empty: ignored
	child.SetStatus(codes.Ok, "")
	child.SetStatus(codes.Error, "too late: ok is final")
	buf := spanattr.Get()
	spanattr.Set(child, buf, append(buf[:0], attribute.String("gateway.decision", "allow"), attribute.String("gateway.model.requested", "fast"),
		attribute.String("gateway.model.resolved", "gpt-4o"), attribute.String("gateway.route", "inference")))
	child.SetAttributes(attribute.String("gateway.decision", "deny"), attribute.Int("later", 1))
	child.End(trace.WithTimestamp(at(3)))
	child.End(trace.WithTimestamp(at(9))) // a second End does nothing
	child.SetAttributes(attribute.String("after", "end"))
	child.SetName("renamed after end")
	n++

	_, auth := a.Start(ctx, "authenticate", trace.WithTimestamp(at(1)))
	buf = spanattr.Get()
	spanattr.Set(auth, buf, append(buf[:0], attribute.String("gateway.auth.result", "ok"), attribute.String("gateway.key_alias", "alice")))
	auth.End(trace.WithTimestamp(at(2)))
	n++

	sampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{9, 9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	ts, _ := trace.ParseTraceState("vendor=x")
	sampled = trace.ContextWithRemoteSpanContext(sampled, trace.SpanContextFromContext(sampled).WithTraceState(ts))
	for _, kind := range []trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindInternal, trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer} {
		_, s := b.Start(sampled, "upstream chat.completions", trace.WithSpanKind(kind), trace.WithTimestamp(at(4)))
		s.End(trace.WithTimestamp(at(5)))
		n++
	}
	_, fresh := b.Start(sampled, "new root", trace.WithNewRoot(), trace.WithTimestamp(at(4)))
	fresh.End(trace.WithTimestamp(at(5)))
	n++

	// A remote parent that was not sampled: ParentBased drops the span and
	// its child, whose context still carries the trace.
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{7}, SpanID: trace.SpanID{6}, Remote: true,
	}))
	uctx, dropped := a.Start(unsampled, "dropped", trace.WithTimestamp(at(4)))
	_, dchild := a.Start(uctx, "dropped child", trace.WithTimestamp(at(4)))
	dchild.SetAttributes(attribute.String("x", "y"))
	dchild.End(trace.WithTimestamp(at(5)))
	dropped.End(trace.WithTimestamp(at(5)))

	root.End(trace.WithTimestamp(at(5)))
	n++
	return n
}

// seqIDs hands out trace and span ids in sequence, so that two providers
// running the same scenario give their spans the same ids.
type seqIDs struct {
	mu sync.Mutex
	n  byte
}

func (g *seqIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return trace.TraceID{0xaa, g.n}, trace.SpanID{0xbb, g.n}
}

func (g *seqIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	return trace.SpanID{0xcc, g.n}
}

// TestProviderMatchesSDK runs the scenario on the OpenTelemetry SDK
// (exported by the official OTLP exporter) and on the Provider (its spans
// queued as they end, encoded and exported in a batch) and checks that the two send the
// same OTLP messages, under loose and tight span limits.
func TestProviderMatchesSDK(t *testing.T) {
	for name, limits := range map[string]sdktrace.SpanLimits{"loose": scenarioLimits, "tight": tightLimits} {
		t.Run(name, func(t *testing.T) {
			var sdkSpans []sdktrace.ReadOnlySpan
			sdk := sdktrace.NewTracerProvider(
				sdktrace.WithSpanProcessor(&captureProcessor{f: func(s sdktrace.ReadOnlySpan) { sdkSpans = append(sdkSpans, s) }}),
				sdktrace.WithResource(scenarioResource), sdktrace.WithSpanLimits(limits), sdktrace.WithIDGenerator(&seqIDs{}))
			n := scenario(sdk)
			if len(sdkSpans) != n {
				t.Fatalf("the SDK recorded %d spans, want %d", len(sdkSpans), n)
			}
			official := officialExport(t, sdkSpans)

			ours := &captureClient{}
			exp, err := NewExporter(t.Context(), ours)
			if err != nil {
				t.Fatal(err)
			}
			tp := NewProvider(ProviderConfig{Exporter: exp, Resource: scenarioResource, Limits: &limits, IDGenerator: &seqIDs{},
				Batch: BatchOptions{ScheduleDelay: time.Hour}})
			defer tp.Shutdown(context.Background())
			scenario(tp)
			if err := tp.ForceFlush(t.Context()); err != nil {
				t.Fatal(err)
			}
			want, got := official.decoded(t), ours.decoded(t)
			if len(want) != 1 || len(got) != 1 {
				t.Fatalf("%d official ResourceSpans, %d of ours; want one each", len(want), len(got))
			}
			if !proto.Equal(want[0], got[0]) {
				t.Errorf("the Provider's spans differ from the SDK's:\nSDK:      %s\nProvider: %s", prototext.Format(want[0]), prototext.Format(got[0]))
			}
			if spans := spanCount(got[0]); spans != n {
				t.Errorf("exported %d spans, want %d", spans, n)
			}
		})
	}
}

func spanCount(rs *tracepb.ResourceSpans) int {
	n := 0
	for _, ss := range rs.GetScopeSpans() {
		n += len(ss.GetSpans())
	}
	return n
}

// TestProviderOtherExporter checks that an exporter other than *Exporter,
// here tracetest's in-memory one, gets each span as it ends, with what the
// SDK would have given it (but the parent's trace state and the child
// count, which the Provider does not keep).
func TestProviderOtherExporter(t *testing.T) {
	sdkExp := tracetest.NewInMemoryExporter()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(sdkExp), sdktrace.WithResource(scenarioResource),
		sdktrace.WithSpanLimits(tightLimits), sdktrace.WithIDGenerator(&seqIDs{}))
	scenario(sdk)
	ourExp := tracetest.NewInMemoryExporter()
	limits := tightLimits
	tp := NewProvider(ProviderConfig{Exporter: ourExp, Resource: scenarioResource, Limits: &limits, IDGenerator: &seqIDs{}})
	scenario(tp)
	want, got := sdkExp.GetSpans(), ourExp.GetSpans()
	if len(got) != len(want) {
		t.Fatalf("%d spans exported, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := stubFields(want[i]), stubFields(got[i])
		if fmt.Sprint(w) != fmt.Sprint(g) {
			t.Errorf("span %d:\nSDK:      %v\nProvider: %v", i, w, g)
		}
	}
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if spans := ourExp.GetSpans(); len(spans) != 0 {
		t.Errorf("Shutdown left %d spans in the in-memory exporter, want it reset as the SDK's shutdown does", len(spans))
	}
}

// stubFields is what TestProviderOtherExporter compares of a span stub:
// everything but the child count and the parent's trace state, with times
// as instants.
func stubFields(s tracetest.SpanStub) []any {
	events := make([]any, len(s.Events))
	for i, e := range s.Events {
		events[i] = []any{e.Name, e.Attributes, e.DroppedAttributeCount, e.Time.UnixNano()}
	}
	parent := s.Parent
	return []any{s.Name, s.SpanContext, parent.TraceID(), parent.SpanID(), parent.TraceFlags(), parent.IsRemote(), s.SpanKind,
		s.StartTime.UnixNano(), s.EndTime.UnixNano(), s.Attributes, events, s.Links, s.Status, s.DroppedAttributes, s.DroppedEvents,
		s.DroppedLinks, s.Resource.Equivalent(), s.InstrumentationScope}
}

// blockingClient is an OTLP client whose uploads wait for release, and
// which counts the spans it was given.
type blockingClient struct {
	release chan struct{}
	mu      sync.Mutex
	uploads []int // spans per upload
	stopped int
}

func (c *blockingClient) Start(context.Context) error { return nil }
func (c *blockingClient) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped++
	return nil
}
func (c *blockingClient) UploadTraces(ctx context.Context, rss []*tracepb.ResourceSpans) error {
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n := 0
	for _, rs := range rss {
		b, err := proto.Marshal(rs)
		if err != nil {
			return err
		}
		var got tracepb.ResourceSpans
		if err := proto.Unmarshal(b, &got); err != nil {
			return err
		}
		n += spanCount(&got)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uploads = append(c.uploads, n)
	return nil
}

func (c *blockingClient) got() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.uploads)
}

func newTestProvider(t *testing.T, c *blockingClient, opts BatchOptions) *Provider {
	t.Helper()
	exp, err := NewExporter(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	tp := NewProvider(ProviderConfig{Exporter: exp, Batch: opts})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func endSpans(tp trace.TracerProvider, n int) {
	tr := tp.Tracer("t")
	for range n {
		_, s := tr.Start(context.Background(), "s")
		s.SetAttributes(attribute.Int("i", 1))
		s.End()
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestProviderBatches checks a full batch goes out at once, without
// waiting for the schedule delay, and a flush sends the rest.
func TestProviderBatches(t *testing.T) {
	c := &blockingClient{}
	tp := newTestProvider(t, c, BatchOptions{MaxExportBatchSize: 4, MaxQueueSize: 8, ScheduleDelay: time.Hour})
	endSpans(tp, 6)
	waitFor(t, "the full batch", func() bool { return len(c.got()) == 1 })
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.got(); !slices.Equal(got, []int{4, 2}) {
		t.Errorf("uploads of %v spans, want [4 2]", got)
	}
}

// TestProviderScheduleDelay checks a span waits no longer than the
// schedule delay.
func TestProviderScheduleDelay(t *testing.T) {
	c := &blockingClient{}
	tp := newTestProvider(t, c, BatchOptions{ScheduleDelay: 20 * time.Millisecond})
	endSpans(tp, 1)
	waitFor(t, "the delayed export", func() bool { return slices.Equal(c.got(), []int{1}) })
}

// TestProviderQueueFull checks spans are dropped, and counted, while the
// queue is full, and that Shutdown exports what was queued and stops the
// client.
func TestProviderQueueFull(t *testing.T) {
	c := &blockingClient{release: make(chan struct{})}
	tp := newTestProvider(t, c, BatchOptions{MaxExportBatchSize: 2, MaxQueueSize: 4, ScheduleDelay: time.Hour})
	endSpans(tp, 2) // a full batch: the exporter takes it and blocks
	waitFor(t, "the exporter to take the first batch", func() bool {
		tp.queue.mu.Lock()
		defer tp.queue.mu.Unlock()
		return tp.queue.queued == 0
	})
	endSpans(tp, 5) // four fit, the fifth is dropped
	if d := tp.Dropped(); d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
	close(c.release)
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.got(); !slices.Equal(got, []int{2, 2, 2}) {
		t.Errorf("uploads of %v spans, want [2 2 2]", got)
	}
	if c.stopped != 1 {
		t.Errorf("client stopped %d times, want once", c.stopped)
	}
	endSpans(tp, 1) // after Shutdown: nothing is exported
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Errorf("ForceFlush after Shutdown = %v, want nil", err)
	}
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Errorf("a second Shutdown = %v, want nil", err)
	}
	if got := c.got(); len(got) != 3 {
		t.Errorf("uploads after Shutdown: %v", got)
	}
}

// TestProviderConcurrent records spans from many goroutines at once, with
// flushes in between (run it with -race).
func TestProviderConcurrent(t *testing.T) {
	c := &blockingClient{}
	tp := newTestProvider(t, c, BatchOptions{MaxExportBatchSize: 16, MaxQueueSize: 4096, ScheduleDelay: time.Millisecond})
	tr := tp.Tracer("t")
	ctx, parent := tr.Start(context.Background(), "parent")
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, s := tr.Start(ctx, "child")
				buf := spanattr.Get()
				spanattr.Set(s, buf, append(buf[:0], attribute.Int("worker", w), attribute.Int("i", i)))
				s.AddEvent("e")
				parent.SetAttributes(attribute.Int("last", i)) // the shared parent, concurrently
				parent.AddEvent("child")
				s.End()
				if i%25 == 0 {
					_ = tp.ForceFlush(context.Background())
				}
			}
		})
	}
	wg.Wait()
	parent.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range c.got() {
		total += n
	}
	if want := workers*each + 1; total != want || tp.Dropped() != 0 {
		t.Errorf("exported %d spans (%d dropped), want %d", total, tp.Dropped(), want)
	}
}

// TestProviderNonRecording checks what a span the sampler drops still
// does: it carries its trace context and records nothing.
func TestProviderNonRecording(t *testing.T) {
	c := &blockingClient{}
	exp, err := NewExporter(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	tp := NewProvider(ProviderConfig{Exporter: exp, Sampler: sdktrace.NeverSample()})
	ctx, s := tp.Tracer("t").Start(context.Background(), "dropped")
	if s.IsRecording() || s.SpanContext().IsSampled() || !s.SpanContext().IsValid() {
		t.Errorf("a dropped span: recording %v, sampled %v, valid %v; want false, false, true", s.IsRecording(), s.SpanContext().IsSampled(), s.SpanContext().IsValid())
	}
	if trace.SpanFromContext(ctx) != s || s.TracerProvider() != tp {
		t.Error("the context does not hold the span, or the span does not name its provider")
	}
	s.SetAttributes(attribute.Int("x", 1))
	s.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.got(); len(got) != 0 {
		t.Errorf("uploads %v, want none", got)
	}
}

func TestSamplerFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // the sampler's description; "" for an error
	}{
		{nil, sdktrace.ParentBased(sdktrace.AlwaysSample()).Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, sdktrace.AlwaysSample().Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": " Always_Off "}, sdktrace.NeverSample().Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio"}, sdktrace.TraceIDRatioBased(1).Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, sdktrace.TraceIDRatioBased(0.25).Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, sdktrace.ParentBased(sdktrace.NeverSample()).Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
			sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)).Description()},
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, ""},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, ""},
		{map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, ""},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"}, ""},
	}
	for _, tc := range tests {
		s, err := SamplerFromEnv(env(tc.env))
		switch {
		case tc.want == "" && !errors.Is(err, ErrBadSampler):
			t.Errorf("SamplerFromEnv(%v) = %v, %v; want ErrBadSampler", tc.env, s, err)
		case tc.want != "" && (err != nil || s.Description() != tc.want):
			t.Errorf("SamplerFromEnv(%v) = %v, %v; want %s", tc.env, s, err, tc.want)
		}
	}
}

// chatCall records the four spans of a chat call with tp, with the
// attributes the gateway sets, handing them over in spanattr buffers as
// the gateway does.
func chatCall(server, policy, upstream trace.Tracer) {
	set := func(s trace.Span, kvs ...attribute.KeyValue) {
		buf := spanattr.Get()
		spanattr.Set(s, buf, append(buf[:0], kvs...))
	}
	ctx, s := server.Start(context.Background(), "POST /v1/chat/completions", trace.WithSpanKind(trace.SpanKindServer))
	_, a := server.Start(ctx, "authenticate")
	set(a, attribute.String("gateway.auth.result", "ok"), attribute.String("gateway.key_alias", "alice-ops"), attribute.String("gateway.team_id", "research"))
	a.End()
	_, p := policy.Start(ctx, "policy.decision")
	set(p, attribute.String("gateway.route", "inference"), attribute.String("gateway.policy.revision", "sha256:0123456789abcdef"),
		attribute.String("gateway.model.requested", "fast"), attribute.String("gateway.model.resolved", "gpt-4o"), attribute.String("gateway.decision", "allow"))
	p.End()
	_, u := upstream.Start(ctx, "upstream chat.completions", trace.WithSpanKind(trace.SpanKindClient))
	set(u, attribute.Int("gateway.attempts", 1), attribute.String("gateway.provider", "openai"), attribute.String("gateway.model_group", "gpt-4o"),
		attribute.String("gateway.deployment", "gpt-4o-0"), attribute.Int("http.response.status_code", 200))
	u.End()
	set(s, attribute.String("http.request.method", "POST"), attribute.String("url.scheme", "http"), attribute.String("url.path", "/v1/chat/completions"),
		attribute.String("http.route", "/v1/chat/completions"), attribute.Int("http.response.status_code", 200), attribute.String("client.address", "127.0.0.1"),
		attribute.String("gateway.request_id", "0123456789abcdef"))
	s.End()
}

// BenchmarkProviderSpans records and exports a chat call's four spans
// (chatCall) with the OpenTelemetry SDK's tracer provider and batch span
// processor, and with the gateway's Provider, both exporting through the
// gateway's OTLP exporter to a client that marshals each batch as the real
// ones do. ns/op is the recording goroutine's time; cpu-ns/op is the
// process CPU per call, the batching goroutine, the export and garbage
// collection included.
func BenchmarkProviderSpans(b *testing.B) {
	for _, c := range []struct {
		name string
		tp   func(exp sdktrace.SpanExporter) (trace.TracerProvider, func(context.Context) error)
	}{
		{"sdk", func(exp sdktrace.SpanExporter) (trace.TracerProvider, func(context.Context) error) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
			return tp, tp.Shutdown
		}},
		{"gateway", func(exp sdktrace.SpanExporter) (trace.TracerProvider, func(context.Context) error) {
			tp := NewProvider(ProviderConfig{Exporter: exp})
			return tp, tp.Shutdown
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			exp, err := NewExporter(b.Context(), marshalClient{})
			if err != nil {
				b.Fatal(err)
			}
			tp, shutdown := c.tp(exp)
			server, policy, upstream := tp.Tracer("github.com/regate/gateway/gateway/httpapi"),
				tp.Tracer("github.com/regate/gateway/gateway/telemetry"), tp.Tracer("github.com/regate/gateway/gateway/proxy")
			// Warm up: the batches' buffers grow to their size once, in a
			// running gateway long before any measurement.
			for range 2 * sdktrace.DefaultMaxQueueSize {
				chatCall(server, policy, upstream)
			}
			if f, ok := tp.(interface{ ForceFlush(context.Context) error }); ok {
				if err := f.ForceFlush(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			start := processCPU(b)
			for b.Loop() {
				chatCall(server, policy, upstream)
			}
			if err := shutdown(context.Background()); err != nil { // the last batches count too
				b.Fatal(err)
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestProviderContext checks that the context Start returns holds the
// span for the trace API, passes other values and cancellation through,
// and parents the next span.
func TestProviderContext(t *testing.T) {
	tp := NewProvider(ProviderConfig{Sampler: sdktrace.AlwaysSample()})
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	ctx, s := tp.Tracer("t").Start(parent, "a")
	if got := trace.SpanFromContext(ctx); got != s {
		t.Fatalf("SpanFromContext = %v, want the started span", got)
	}
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value(key) = %v, want the parent's", got)
	}
	_, child := tp.Tracer("t").Start(ctx, "b")
	if got := child.(*span).parentID; got != s.SpanContext().SpanID() {
		t.Errorf("child's parent = %v, want %v", got, s.SpanContext().SpanID())
	}
	cancel()
	select {
	case <-ctx.Done():
	default:
		t.Error("the span's context was not cancelled with its parent")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err = %v", ctx.Err())
	}
	// Unsampled spans carry their context too.
	ctx, u := NewProvider(ProviderConfig{Sampler: sdktrace.NeverSample()}).Tracer("t").Start(parent, "c")
	if trace.SpanFromContext(ctx) != u || !trace.SpanContextFromContext(ctx).Equal(u.SpanContext()) {
		t.Error("an unsampled span is not its context's span")
	}
}
