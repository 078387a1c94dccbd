package telemetry

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/regate/gateway/gateway/telemetry/spanattr"
)

// Provider is the gateway's OpenTelemetry tracer provider. It implements
// the OpenTelemetry trace API (go.opentelemetry.io/otel/trace) and takes
// the SDK's samplers, span limits and exporters, but records spans itself.
// The SDK's span machinery (a span object, then a snapshot of it for the
// processors, attribute slices grown per call, a channel send and a
// goroutine wake-up per ended span, the spans read again on another CPU
// to export them) cost 15–25% of the gateway's own CPU per chat call,
// against a budget of 10% (BENCHMARKS.md, docs/DECISIONS.md). Here a span
// is one allocation; attributes handed over in a spanattr buffer are
// kept, not copied; and an ended span's data is copied into a batch that
// one goroutine encodes to OTLP and exports (spanQueue) when the exporter
// is an *Exporter.
//
// Spans follow the SDK's rules (TestProviderMatchesSDK compares the OTLP
// output of both): parent and sampling decisions, trace state, flags,
// attribute, event and link limits (the last value of a repeated
// attribute key wins), status precedence, end timestamps. Left out: End
// does not record a panic in flight as an exception event; attribute
// values of the generic SLICE and MAP types are neither truncated nor
// normalised; Parent has no trace state; no child count is kept.
type Provider struct {
	embedded.TracerProvider

	res     *resource.Resource
	sampler sdktrace.Sampler
	limits  sdktrace.SpanLimits
	ids     sdktrace.IDGenerator // nil: random ids (newIDs)

	exporter sdktrace.SpanExporter
	queue    *spanQueue // when the exporter is an *Exporter

	mu      sync.Mutex
	tracers map[instrumentation.Scope]*tracer

	stopped atomic.Bool
}

var _ trace.TracerProvider = (*Provider)(nil)

// ProviderConfig configures NewProvider.
type ProviderConfig struct {
	// Exporter receives the spans. An *Exporter gets them in batches,
	// encoded batch by batch (spanQueue). Any other exporter, for example
	// tracetest's in-memory one, gets each span as it ends, in the ending
	// goroutine, as an SDK read-only span (the SDK's WithSyncer).
	Exporter sdktrace.SpanExporter
	// Resource describes the process; nil means an empty resource.
	Resource *resource.Resource
	// Sampler decides which spans are recorded and exported; nil means
	// ParentBased(AlwaysSample()), the OpenTelemetry default.
	Sampler sdktrace.Sampler
	// Limits bound attributes, events and links per span; nil means
	// sdktrace.NewSpanLimits(), the OTEL_*_LIMIT environment.
	Limits *sdktrace.SpanLimits
	// IDGenerator makes trace and span ids; nil means random ones.
	IDGenerator sdktrace.IDGenerator
	// Batch are the batching settings of an *Exporter; zero fields take
	// the defaults.
	Batch BatchOptions
}

// defaultTracerName names a tracer asked for with an empty name, as the
// SDK does.
const defaultTracerName = "go.opentelemetry.io/otel/sdk/tracer"

// NewProvider returns a provider recording spans for cfg.Exporter.
// Shutdown flushes and stops it.
func NewProvider(cfg ProviderConfig) *Provider {
	p := &Provider{
		res:      cfg.Resource,
		sampler:  cfg.Sampler,
		ids:      cfg.IDGenerator,
		exporter: cfg.Exporter,
		tracers:  make(map[instrumentation.Scope]*tracer),
	}
	if p.res == nil {
		p.res = resource.Empty()
	}
	if p.sampler == nil {
		p.sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	if cfg.Limits != nil {
		p.limits = *cfg.Limits
	} else {
		p.limits = sdktrace.NewSpanLimits()
	}
	if x, ok := cfg.Exporter.(*Exporter); ok {
		p.queue = newSpanQueue(cfg.Batch, x, p.res)
	}
	return p
}

// Tracer returns the tracer of an instrumentation scope.
func (p *Provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if name == "" {
		name = defaultTracerName
	}
	c := trace.NewTracerConfig(opts...)
	scope := instrumentation.Scope{
		Name:       name,
		Version:    c.InstrumentationVersion(),
		SchemaURL:  c.SchemaURL(),
		Attributes: c.InstrumentationAttributes(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tracers[scope]
	if !ok {
		t = &tracer{p: p, scope: scope}
		p.tracers[scope] = t
	}
	return t
}

// ForceFlush exports every span ended before the call.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.queue == nil {
		return ctx.Err()
	}
	return p.queue.forceFlush(ctx)
}

// Shutdown exports what is queued and shuts the exporter down; spans
// ending later are dropped. Later calls do nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.stopped.Swap(true) {
		return nil
	}
	var err error
	if p.queue != nil {
		err = p.queue.shutdown(ctx)
	}
	if p.exporter != nil {
		err = errors.Join(err, p.exporter.Shutdown(ctx))
	}
	return err
}

// Dropped is the number of ended spans dropped because the queue was full
// or the provider shut down.
func (p *Provider) Dropped() uint64 {
	if p.queue == nil {
		return 0
	}
	return p.queue.droppedCount()
}

// ended takes a span that ended sampled: the queue copies it, or the
// exporter gets it at once. Either way its attributes are done with.
func (p *Provider) ended(s *span) {
	switch {
	case p.queue != nil:
		p.queue.add(s)
	case p.exporter != nil:
		ro := []sdktrace.ReadOnlySpan{s.stub().Snapshot()}
		if err := p.exporter.ExportSpans(context.Background(), ro); err != nil {
			otel.Handle(err)
		}
	}
	s.release()
}

// release gives the span's attribute buffer back to the pool. Nothing
// reads or writes the attributes once the span has been queued (a copy)
// or exported.
func (s *span) release() {
	if s.buf != nil {
		spanattr.Put(s.buf)
		s.buf = nil
	}
	s.kv = nil
}

// tracer starts spans of one instrumentation scope.
type tracer struct {
	embedded.Tracer
	p     *Provider
	scope instrumentation.Scope
}

// Start starts a span, a child of the span in ctx unless
// trace.WithNewRoot is given, and returns a context holding it.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	var cfg trace.SpanConfig
	if len(opts) > 0 {
		cfg = trace.NewSpanStartConfig(opts...)
	}
	sampleCtx := ctx
	var psc trace.SpanContext
	if cfg.NewRoot() {
		sampleCtx = trace.ContextWithSpanContext(ctx, psc)
	} else {
		psc = trace.SpanContextFromContext(ctx)
	}
	tid, sid := t.p.newIDs(ctx, psc)
	res := t.p.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: sampleCtx,
		TraceID:       tid,
		Name:          name,
		Kind:          cfg.SpanKind(),
		Attributes:    cfg.Attributes(),
		Links:         cfg.Links(),
	})
	flags := psc.TraceFlags() &^ trace.FlagsSampled
	if res.Decision == sdktrace.RecordAndSample {
		flags |= trace.FlagsSampled
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: res.Tracestate})
	if res.Decision == sdktrace.Drop {
		u := &unrecorded{sc: sc, p: t.p}
		return trace.ContextWithSpan(ctx, u), u
	}
	start := cfg.Timestamp()
	if start.IsZero() {
		start = time.Now()
	}
	s := &span{spanData: spanData{tracer: t, sc: sc, kind: uint8(trace.ValidateSpanKind(cfg.SpanKind())), name: name, start: start}}
	if psc.SpanID().IsValid() {
		s.parentID, s.parentFlags, s.parentRemote = psc.SpanID(), psc.TraceFlags(), psc.IsRemote()
	}
	for _, l := range cfg.Links() {
		s.addLink(l)
	}
	s.setAttributes(res.Attributes)
	s.setAttributes(cfg.Attributes())
	return trace.ContextWithSpan(ctx, s), s
}

// newIDs returns the new span's trace id (its parent's, when valid) and
// span id.
func (p *Provider) newIDs(ctx context.Context, parent trace.SpanContext) (trace.TraceID, trace.SpanID) {
	if p.ids != nil {
		if parent.TraceID().IsValid() {
			return parent.TraceID(), p.ids.NewSpanID(ctx, parent.TraceID())
		}
		return p.ids.NewIDs(ctx)
	}
	tid := parent.TraceID()
	for !tid.IsValid() {
		putUint64(tid[:8], rand.Uint64())
		putUint64(tid[8:], rand.Uint64())
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		putUint64(sid[:], rand.Uint64())
	}
	return tid, sid
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// span is a recording span. Its identity (tracer, contexts, kind, start)
// never changes; the rest is guarded by mu until the span ends, after
// which only the exporter reads it.
type span struct {
	embedded.Span

	mu    sync.Mutex
	ended atomic.Bool
	dirty bool          // kv may repeat a key
	buf   *spanattr.Buf // holds kv while it fits; pooled, back to the pool once the span is queued or exported

	spanData
}

// spanData is what a span records: the span while it runs, and what the
// span queue keeps of it once it has ended (its attributes copied out of
// the span's buffer) until the batch is encoded.
type spanData struct {
	tracer *tracer
	sc     trace.SpanContext
	start  time.Time

	// The parent, when there is one (its trace state is not kept).
	parentID     trace.SpanID
	parentFlags  trace.TraceFlags
	parentRemote bool
	kind         uint8 // trace.SpanKind

	statusCode   codes.Code // with statusDesc, the sdktrace.Status
	droppedAttrs int32
	name         string
	dur          time.Duration // start to end, once ended
	kv           []attribute.KeyValue
	statusDesc   string
	more         *spanEvents // events and links, rare
}

// spanEvents are a span's events and links.
type spanEvents struct {
	events        []sdktrace.Event
	droppedEvents int
	links         []sdktrace.Link
	droppedLinks  int
}

var _ trace.Span = (*span)(nil)

// End ends the span, at the given timestamp or now, and hands it to the
// exporter when sampled. Later calls do nothing.
func (s *span) End(opts ...trace.SpanEndOption) {
	d := time.Since(s.start) // monotonic
	s.mu.Lock()
	if s.ended.Load() {
		s.mu.Unlock()
		return
	}
	if len(opts) > 0 {
		c := trace.NewSpanEndConfig(opts...)
		if ts := c.Timestamp(); !ts.IsZero() {
			d = ts.Sub(s.start)
		}
	}
	s.dur = d
	s.ended.Store(true)
	if s.dirty {
		s.kv = dedup(s.kv)
		s.dirty = false
	}
	s.mu.Unlock()
	if s.sc.IsSampled() && !s.tracer.p.stopped.Load() {
		s.tracer.p.ended(s)
	} else {
		s.release()
	}
}

// IsRecording reports whether the span has not ended.
func (s *span) IsRecording() bool { return !s.ended.Load() }

// TracerProvider returns the Provider.
func (s *span) TracerProvider() trace.TracerProvider { return s.tracer.p }

// SetName renames the span.
func (s *span) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended.Load() {
		s.name = name
	}
}

// SetStatus sets the status: Error's description is kept, Ok is final,
// Unset never overrides.
func (s *span) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended.Load() || s.statusCode > code {
		return
	}
	s.statusCode, s.statusDesc = code, ""
	if code == codes.Error {
		s.statusDesc = description
	}
}

// SetAttributes adds attributes; a repeated key's last value wins.
func (s *span) SetAttributes(kvs ...attribute.KeyValue) {
	if len(kvs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended.Load() {
		s.setAttributes(kvs)
	}
}

// setAttributes adds kvs within the attribute count limit: over it, a key
// already present is updated and a new one dropped. Invalid attributes are
// dropped. s.mu is held, or s is not shared yet.
func (s *span) setAttributes(kvs []attribute.KeyValue) {
	if len(kvs) == 0 {
		return
	}
	limit := s.tracer.p.limits.AttributeCountLimit
	if limit == 0 {
		s.droppedAttrs += int32(len(kvs))
		return
	}
	if s.buf == nil && s.kv == nil {
		s.buf = spanattr.Get()
		s.kv = s.buf[:0]
	}
	if limit > 0 && len(s.kv)+len(kvs) > limit {
		s.kv = dedup(s.kv)
		s.dirty = false
	}
	vlimit := s.tracer.p.limits.AttributeValueLengthLimit
	for _, kv := range kvs {
		if !kv.Valid() {
			s.droppedAttrs++
			continue
		}
		if vlimit >= 0 {
			kv = truncate(vlimit, kv)
		}
		if limit > 0 && len(s.kv) >= limit {
			if i := slices.IndexFunc(s.kv, func(a attribute.KeyValue) bool { return a.Key == kv.Key }); i >= 0 {
				s.kv[i] = kv
			} else {
				s.droppedAttrs++
			}
			continue
		}
		s.kv = append(s.kv, kv)
		s.dirty = true
	}
}

// KeepAttributes takes buf and the attributes built in it as the span's
// own, without copying (spanattr.Set), when the span has no attributes
// yet and no limit applies to these; otherwise it leaves them to
// SetAttributes.
func (s *span) KeepAttributes(buf *spanattr.Buf, kvs []attribute.KeyValue) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.tracer.p.limits
	if s.ended.Load() || s.kv != nil || s.buf != nil ||
		(l.AttributeCountLimit >= 0 && len(kvs) > l.AttributeCountLimit) || l.AttributeValueLengthLimit >= 0 {
		return false
	}
	for _, kv := range kvs {
		if !kv.Valid() {
			return false
		}
	}
	s.buf, s.kv, s.dirty = buf, kvs, len(kvs) > 1
	return true
}

// dedup keeps the last value of each key, at the key's first position.
func dedup(kvs []attribute.KeyValue) []attribute.KeyValue {
	out := kvs[:0]
	for _, kv := range kvs {
		if i := slices.IndexFunc(out, func(a attribute.KeyValue) bool { return a.Key == kv.Key }); i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	clear(kvs[len(out):])
	return out
}

// truncate shortens string values to limit (≥ 0) characters, keeping
// valid UTF-8, as the SDK does.
func truncate(limit int, kv attribute.KeyValue) attribute.KeyValue {
	switch kv.Value.Type() {
	case attribute.STRING:
		if v := kv.Value.AsString(); len(v) > limit {
			return kv.Key.String(truncateString(limit, v))
		}
	case attribute.STRINGSLICE:
		v := kv.Value.AsStringSlice()
		for i := range v {
			v[i] = truncateString(limit, v[i])
		}
		return kv.Key.StringSlice(v)
	case attribute.BYTESLICE:
		if v := kv.Value.AsString(); len(v) > limit {
			return kv.Key.ByteSlice([]byte(v[:limit]))
		}
	}
	return kv
}

// truncateString returns s cut to limit runes, invalid UTF-8 dropped.
func truncateString(limit int, s string) string {
	if len(s) <= limit {
		return s
	}
	if utf8.RuneCountInString(s) <= limit && utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, min(len(s), 4*limit))
	n := 0
	for i := 0; i < len(s) && n < limit; {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			out = append(out, s[i:i+size]...)
			n++
		}
		i += size
	}
	return string(out)
}

// AddEvent records an event; over the event limit the oldest goes.
func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended.Load() {
		s.addEvent(name, trace.NewEventConfig(opts...))
	}
}

// RecordError records err as an "exception" event, with its type and
// message (and stack when asked for).
func (s *span) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended.Load() {
		return
	}
	opts = append(opts, trace.WithAttributes(
		attribute.String("exception.type", typeName(err)),
		attribute.String("exception.message", err.Error())))
	c := trace.NewEventConfig(opts...)
	if c.StackTrace() {
		opts = append(opts, trace.WithAttributes(attribute.String("exception.stacktrace", stackTrace())))
		c = trace.NewEventConfig(opts...)
	}
	s.addEvent("exception", c)
}

func typeName(v any) string {
	t := reflect.TypeOf(v)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String() // a pointer, slice or other unnamed type
	}
	return t.PkgPath() + "." + t.Name()
}

func stackTrace() string {
	buf := make([]byte, 2048)
	return string(buf[:runtime.Stack(buf, false)])
}

func (s *span) addEvent(name string, c trace.EventConfig) {
	if s.more == nil {
		s.more = new(spanEvents)
	}
	e := sdktrace.Event{Name: name, Time: c.Timestamp()}
	e.Attributes, e.DroppedAttributeCount = capped(c.Attributes(), s.tracer.p.limits.AttributePerEventCountLimit)
	s.more.events, s.more.droppedEvents = evict(s.more.events, e, s.more.droppedEvents, s.tracer.p.limits.EventCountLimit)
}

// AddLink links the span to another; over the link limit the oldest goes.
func (s *span) AddLink(l trace.Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended.Load() {
		s.addLink(l)
	}
}

func (s *span) addLink(l trace.Link) {
	if !l.SpanContext.IsValid() && len(l.Attributes) == 0 && l.SpanContext.TraceState().Len() == 0 {
		return
	}
	if s.more == nil {
		s.more = new(spanEvents)
	}
	link := sdktrace.Link{SpanContext: l.SpanContext}
	link.Attributes, link.DroppedAttributeCount = capped(l.Attributes, s.tracer.p.limits.AttributePerLinkCountLimit)
	s.more.links, s.more.droppedLinks = evict(s.more.links, link, s.more.droppedLinks, s.tracer.p.limits.LinkCountLimit)
}

// capped cuts attrs to limit (limit < 0: no limit) and says how many it
// dropped: an event's or a link's attributes.
func capped(attrs []attribute.KeyValue, limit int) ([]attribute.KeyValue, int) {
	if limit >= 0 && len(attrs) > limit {
		return attrs[:limit], len(attrs) - limit
	}
	return attrs, 0
}

// evict appends x to q, first dropping the oldest element when q holds
// limit (limit < 0: no limit; 0: nothing is kept), and counts what it
// dropped.
func evict[T any](q []T, x T, dropped, limit int) ([]T, int) {
	switch {
	case limit == 0:
		return q, dropped + 1
	case limit > 0 && len(q) >= limit:
		copy(q, q[1:])
		q[len(q)-1] = x
		return q, dropped + 1
	}
	return append(q, x), dropped
}

// The read side, for the exporter once the span has ended
// (exportedSpan).

// SpanContext returns the span's identity.
func (s *spanData) SpanContext() trace.SpanContext { return s.sc }

func (s *spanData) Name() string             { return s.name }
func (s *spanData) SpanKind() trace.SpanKind { return trace.SpanKind(s.kind) }
func (s *spanData) StartTime() time.Time     { return s.start }
func (s *spanData) EndTime() time.Time       { return s.start.Add(s.dur) }
func (s *spanData) DroppedAttributes() int   { return int(s.droppedAttrs) }
func (s *spanData) Status() sdktrace.Status {
	return sdktrace.Status{Code: s.statusCode, Description: s.statusDesc}
}

// Parent is the parent's span context, without its trace state.
func (s *spanData) Parent() trace.SpanContext {
	if !s.parentID.IsValid() {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: s.sc.TraceID(), SpanID: s.parentID, TraceFlags: s.parentFlags, Remote: s.parentRemote,
	})
}
func (s *spanData) Resource() *resource.Resource                { return s.tracer.p.res }
func (s *spanData) InstrumentationScope() instrumentation.Scope { return s.tracer.scope }

func (s *spanData) Attributes() []attribute.KeyValue { return s.kv }

func (s *spanData) Events() []sdktrace.Event { return s.extras().events }
func (s *spanData) DroppedEvents() int       { return s.extras().droppedEvents }
func (s *spanData) Links() []sdktrace.Link   { return s.extras().links }
func (s *spanData) DroppedLinks() int        { return s.extras().droppedLinks }

// extras are the span's events and links, or none.
func (s *spanData) extras() *spanEvents {
	if s.more == nil {
		return &noEvents
	}
	return s.more
}

// noEvents is a span's extras when it has none; never written.
var noEvents spanEvents

// stub copies the ended span into the SDK's test stub, whose Snapshot is
// an sdktrace.ReadOnlySpan for exporters other than *Exporter.
func (s *span) stub() tracetest.SpanStub {
	return tracetest.SpanStub{
		Name:                 s.name,
		SpanContext:          s.sc,
		Parent:               s.Parent(),
		SpanKind:             s.SpanKind(),
		StartTime:            s.start,
		EndTime:              s.EndTime(),
		Attributes:           slices.Clone(s.Attributes()),
		Events:               slices.Clone(s.Events()),
		Links:                slices.Clone(s.Links()),
		Status:               s.Status(),
		DroppedAttributes:    s.DroppedAttributes(),
		DroppedEvents:        s.DroppedEvents(),
		DroppedLinks:         s.DroppedLinks(),
		Resource:             s.tracer.p.res,
		InstrumentationScope: s.tracer.scope,
	}
}

// unrecorded is a span the sampler dropped: it carries its context (and so
// the trace to the upstream) and records nothing.
type unrecorded struct {
	embedded.Span
	sc trace.SpanContext
	p  *Provider
}

func (u *unrecorded) End(...trace.SpanEndOption)              {}
func (u *unrecorded) AddEvent(string, ...trace.EventOption)   {}
func (u *unrecorded) AddLink(trace.Link)                      {}
func (u *unrecorded) IsRecording() bool                       { return false }
func (u *unrecorded) RecordError(error, ...trace.EventOption) {}
func (u *unrecorded) SpanContext() trace.SpanContext          { return u.sc }
func (u *unrecorded) SetStatus(codes.Code, string)            {}
func (u *unrecorded) SetName(string)                          {}
func (u *unrecorded) SetAttributes(...attribute.KeyValue)     {}
func (u *unrecorded) TracerProvider() trace.TracerProvider    { return u.p }
