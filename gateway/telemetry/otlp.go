package telemetry

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Exporter is the gateway's OTLP span exporter. It sends through the
// official OTLP client (otlptracehttp or otlptracegrpc), which reads the
// endpoint, headers, TLS, compression, timeout and retry settings from the
// OTEL_EXPORTER_OTLP_* environment, exactly as the official exporter does;
// only the conversion of spans to OTLP protobuf is its own. The official
// exporter builds a protobuf object for every span, attribute and value
// and then marshals them by reflection: about 12 µs of CPU for one chat
// call's four spans, as much as recording them, with 66 allocations. This
// one writes the wire format of each batch straight into buffers reused
// from batch to batch, and hands it to the client as the raw content of
// the ResourceSpans messages, which protobuf marshals as it is. The output
// decodes to the official exporter's messages (checked in otlp_test.go).
type Exporter struct {
	client otlptrace.Client

	mu   sync.Mutex // one batch at a time: the buffers are reused
	enc  spanEncoder
	stop sync.Once
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// NewExporter starts client and returns an Exporter that sends through it.
func NewExporter(ctx context.Context, client otlptrace.Client) (*Exporter, error) {
	if err := client.Start(ctx); err != nil {
		return nil, err
	}
	return &Exporter{client: client}, nil
}

// ExportSpans sends one batch of the SDK's spans.
func (x *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	rss := x.enc.encode(spans)
	if len(rss) == 0 {
		return nil
	}
	return x.upload(ctx, rss)
}

// upload sends encoded ResourceSpans. The client marshals the request
// before UploadTraces returns, so the buffers may be reused for the next
// batch.
func (x *Exporter) upload(ctx context.Context, rss []*tracepb.ResourceSpans) error {
	if err := x.client.UploadTraces(ctx, rss); err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	return nil
}

// exportEncoded sends spans of one resource already encoded, by scope
// (scopeGroup.encoded): the Provider's batches.
func (x *Exporter) exportEncoded(ctx context.Context, res *resource.Resource, scopes []scopeGroup) error {
	if len(scopes) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e := &x.enc
	e.msgs = append(e.msgs[:0], e.message(0, &resourceGroup{res: res, scopes: scopes}))
	return x.upload(ctx, e.msgs)
}

// Shutdown stops the client; later calls do nothing.
func (x *Exporter) Shutdown(ctx context.Context) error {
	var err error
	x.stop.Do(func() { err = x.client.Stop(ctx) })
	return err
}

// spanEncoder writes spans in the OTLP protobuf wire format
// (opentelemetry/proto/trace/v1/trace.proto), grouped by resource and
// instrumentation scope in the order they first appear, as the official
// transform does. Everything it holds is reused from batch to batch.
type spanEncoder struct {
	groups []resourceGroup
	bufs   [][]byte // scratch per nesting depth
	out    [][]byte // one ResourceSpans per group
	msgs   []*tracepb.ResourceSpans
}

type resourceGroup struct {
	res    *resource.Resource
	key    attribute.Distinct
	scopes []scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []exportedSpan
	// encoded, when not nil, holds the scope's spans already encoded as
	// ScopeSpans.spans fields (appendSpan), in place of spans.
	encoded []byte
	// of is the scope a Provider's tracer holds, which spanQueue matches
	// by address rather than by value.
	of *instrumentation.Scope
}

// exportedSpan is what the encoder reads of a span: methods of
// sdktrace.ReadOnlySpan, which the Provider's spans have too.
type exportedSpan interface {
	Name() string
	SpanContext() trace.SpanContext
	Parent() trace.SpanContext
	SpanKind() trace.SpanKind
	StartTime() time.Time
	EndTime() time.Time
	Attributes() []attribute.KeyValue
	DroppedAttributes() int
	Events() []sdktrace.Event
	DroppedEvents() int
	Links() []sdktrace.Link
	DroppedLinks() int
	Status() sdktrace.Status
	Resource() *resource.Resource
	InstrumentationScope() instrumentation.Scope
}

// Field numbers of the OTLP messages written.
const (
	fResourceSpansResource   protowire.Number = 1
	fResourceSpansScopeSpans protowire.Number = 2
	fResourceSpansSchemaURL  protowire.Number = 3

	fResourceAttributes protowire.Number = 1

	fScopeSpansScope     protowire.Number = 1
	fScopeSpansSpans     protowire.Number = 2
	fScopeSpansSchemaURL protowire.Number = 3

	fScopeName       protowire.Number = 1
	fScopeVersion    protowire.Number = 2
	fScopeAttributes protowire.Number = 3

	fSpanTraceID           protowire.Number = 1
	fSpanSpanID            protowire.Number = 2
	fSpanTraceState        protowire.Number = 3
	fSpanParentSpanID      protowire.Number = 4
	fSpanName              protowire.Number = 5
	fSpanKind              protowire.Number = 6
	fSpanStart             protowire.Number = 7
	fSpanEnd               protowire.Number = 8
	fSpanAttributes        protowire.Number = 9
	fSpanDroppedAttributes protowire.Number = 10
	fSpanEvents            protowire.Number = 11
	fSpanDroppedEvents     protowire.Number = 12
	fSpanLinks             protowire.Number = 13
	fSpanDroppedLinks      protowire.Number = 14
	fSpanStatus            protowire.Number = 15
	fSpanFlags             protowire.Number = 16

	fEventTime              protowire.Number = 1
	fEventName              protowire.Number = 2
	fEventAttributes        protowire.Number = 3
	fEventDroppedAttributes protowire.Number = 4

	fLinkTraceID           protowire.Number = 1
	fLinkSpanID            protowire.Number = 2
	fLinkAttributes        protowire.Number = 4
	fLinkDroppedAttributes protowire.Number = 5
	fLinkFlags             protowire.Number = 6

	fStatusMessage protowire.Number = 2
	fStatusCode    protowire.Number = 3

	fKeyValueKey   protowire.Number = 1
	fKeyValueValue protowire.Number = 2

	fAnyString protowire.Number = 1
	fAnyBool   protowire.Number = 2
	fAnyInt    protowire.Number = 3
	fAnyDouble protowire.Number = 4
	fAnyArray  protowire.Number = 5
	fAnyKVList protowire.Number = 6
	fAnyBytes  protowire.Number = 7

	fListValues protowire.Number = 1 // ArrayValue.values, KeyValueList.values
)

// encode returns one ResourceSpans per resource, each holding its encoded
// content as raw fields. The messages and bytes are valid until the next
// call.
func (e *spanEncoder) encode(spans []sdktrace.ReadOnlySpan) []*tracepb.ResourceSpans {
	e.group(spans)
	e.msgs = e.msgs[:0]
	for i := range e.groups {
		g := &e.groups[i]
		e.msgs = append(e.msgs, e.message(i, g))
		for j := range g.scopes {
			clear(g.scopes[j].spans) // let the spans go
		}
		g.res = nil
	}
	return e.msgs
}

// message encodes g into output buffer i and returns it as a
// ResourceSpans holding it as raw fields.
func (e *spanEncoder) message(i int, g *resourceGroup) *tracepb.ResourceSpans {
	for len(e.out) <= i {
		e.out = append(e.out, nil)
	}
	e.out[i] = e.resourceSpans(e.out[i][:0], g)
	m := &tracepb.ResourceSpans{}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(e.out[i]))
	return m
}

// group sorts spans into e.groups, keeping the groups' slices.
func (e *spanEncoder) group(spans []sdktrace.ReadOnlySpan) {
	e.groups = e.groups[:0]
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		key := res.Equivalent()
		var g *resourceGroup
		var fresh bool
		e.groups, g, fresh = slot(e.groups, func(g *resourceGroup) bool { return g.key == key })
		if fresh {
			g.res, g.key, g.scopes = res, key, g.scopes[:0]
		}
		scope := s.InstrumentationScope()
		var sg *scopeGroup
		g.scopes, sg, fresh = slot(g.scopes, func(sg *scopeGroup) bool { return sg.scope == scope })
		if fresh {
			sg.scope, sg.spans = scope, sg.spans[:0]
		}
		sg.spans = append(sg.spans, s)
	}
}

// slot returns the element of s that match accepts or, reporting it new,
// one added at the end: the slot past the end, with the slices it kept
// from an earlier batch, when there is one.
func slot[T any](s []T, match func(*T) bool) ([]T, *T, bool) {
	for i := range s {
		if match(&s[i]) {
			return s, &s[i], false
		}
	}
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[len(s)-1], true
}

// buf returns the scratch buffer of depth d, emptied.
func (e *spanEncoder) buf(d int) []byte {
	for len(e.bufs) <= d {
		e.bufs = append(e.bufs, make([]byte, 0, 256))
	}
	return e.bufs[d][:0]
}

// keep stores b, grown, as the scratch buffer of depth d, and returns it.
func (e *spanEncoder) keep(d int, b []byte) []byte {
	e.bufs[d] = b
	return b
}

// tag and uvarint append a field tag and a varint as protowire does, with
// a short path for one byte, which nearly every tag and length in a span
// takes; uvarint is small enough to be inlined.
func tag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return uvarint(b, uint64(num)<<3|uint64(typ&7))
}

func uvarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	return appendBytes(tag(b, num, protowire.BytesType), body)
}

// appendBytes appends a length-delimited value: a length and x.
func appendBytes(b, x []byte) []byte {
	return append(uvarint(b, uint64(len(x))), x...)
}

// appendString appends a string field unless it is empty (proto3).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = tag(b, num, protowire.BytesType)
	return append(uvarint(b, uint64(len(s))), s...)
}

// appendVarint appends a varint field unless it is zero (proto3).
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return uvarint(tag(b, num, protowire.VarintType), v)
}

// openMessage starts field num, a message whose length is not known yet:
// it appends the tag and two bytes for the length, and returns where they
// are for closeMessage.
func openMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = tag(b, num, protowire.BytesType)
	return append(b, 0, 0), len(b)
}

// closeMessage writes the length of the message opened at at (everything
// after the two bytes openMessage kept), moving the message when its
// length takes other than two bytes.
func closeMessage(b []byte, at int) []byte {
	n := uint64(len(b) - at - 2)
	switch size := protowire.SizeVarint(n); {
	case size == 1:
		b[at] = byte(n)
		copy(b[at+1:], b[at+2:])
		return b[:len(b)-1]
	case size > 2:
		b = append(b, make([]byte, size-2)...)
		copy(b[at+size:], b[at+2:])
	}
	protowire.AppendVarint(b[at:at], n) // in place
	return b
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = tag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func (e *spanEncoder) resourceSpans(b []byte, g *resourceGroup) []byte {
	if g.res != nil {
		r := e.buf(0)
		for it := g.res.Iter(); it.Next(); {
			r = e.keyValue(r, 1, fResourceAttributes, it.Attribute())
		}
		b = appendMessage(b, fResourceSpansResource, e.keep(0, r))
	}
	for i := range g.scopes {
		b = appendMessage(b, fResourceSpansScopeSpans, e.scopeSpans(&g.scopes[i]))
	}
	if g.res != nil {
		b = appendString(b, fResourceSpansSchemaURL, g.res.SchemaURL())
	}
	return b
}

// scopeSpans encodes one ScopeSpans into the depth-0 buffer.
func (e *spanEncoder) scopeSpans(sg *scopeGroup) []byte {
	b := e.buf(0)
	if sg.scope != (instrumentation.Scope{}) {
		s := e.buf(1)
		s = appendString(s, fScopeName, sg.scope.Name)
		s = appendString(s, fScopeVersion, sg.scope.Version)
		for it := sg.scope.Attributes.Iter(); it.Next(); {
			s = e.keyValue(s, 2, fScopeAttributes, it.Attribute())
		}
		b = appendMessage(b, fScopeSpansScope, e.keep(1, s))
	}
	if sg.encoded != nil {
		b = append(b, sg.encoded...)
	}
	for _, sp := range sg.spans {
		b = e.appendSpan(b, sp)
	}
	b = appendString(b, fScopeSpansSchemaURL, sg.scope.SchemaURL)
	return e.keep(0, b)
}

// appendSpan appends sd to b as a ScopeSpans.spans field.
func (e *spanEncoder) appendSpan(b []byte, sd exportedSpan) []byte {
	b, at := openMessage(b, fScopeSpansSpans)
	sc := sd.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = tag(b, fSpanTraceID, protowire.BytesType)
	b = appendBytes(b, tid[:])
	b = tag(b, fSpanSpanID, protowire.BytesType)
	b = appendBytes(b, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := sd.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = tag(b, fSpanParentSpanID, protowire.BytesType)
		b = appendBytes(b, psid[:])
	}
	b = appendString(b, fSpanName, sd.Name())
	b = appendVarint(b, fSpanKind, uint64(spanKind(sd.SpanKind())))
	b = appendFixed64(b, fSpanStart, unixNano(sd.StartTime().UnixNano()))
	b = appendFixed64(b, fSpanEnd, unixNano(sd.EndTime().UnixNano()))
	for _, kv := range sd.Attributes() {
		b = e.keyValue(b, 2, fSpanAttributes, kv)
	}
	b = appendVarint(b, fSpanDroppedAttributes, uint64(clampUint32(sd.DroppedAttributes())))
	for _, ev := range sd.Events() {
		m := e.buf(2)
		m = appendFixed64(m, fEventTime, unixNano(ev.Time.UnixNano()))
		m = appendString(m, fEventName, ev.Name)
		for _, kv := range ev.Attributes {
			m = e.keyValue(m, 3, fEventAttributes, kv)
		}
		m = appendVarint(m, fEventDroppedAttributes, uint64(clampUint32(ev.DroppedAttributeCount)))
		b = appendMessage(b, fSpanEvents, e.keep(2, m))
	}
	b = appendVarint(b, fSpanDroppedEvents, uint64(clampUint32(sd.DroppedEvents())))
	for _, l := range sd.Links() {
		m := e.buf(2)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		m = tag(m, fLinkTraceID, protowire.BytesType)
		m = appendBytes(m, ltid[:])
		m = tag(m, fLinkSpanID, protowire.BytesType)
		m = appendBytes(m, lsid[:])
		for _, kv := range l.Attributes {
			m = e.keyValue(m, 3, fLinkAttributes, kv)
		}
		m = appendVarint(m, fLinkDroppedAttributes, uint64(clampUint32(l.DroppedAttributeCount)))
		m = tag(m, fLinkFlags, protowire.Fixed32Type)
		m = protowire.AppendFixed32(m, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		b = appendMessage(b, fSpanLinks, e.keep(2, m))
	}
	b = appendVarint(b, fSpanDroppedLinks, uint64(clampUint32(sd.DroppedLinks())))
	st := sd.Status()
	b, st0 := openMessage(b, fSpanStatus) // always present, as in the official transform
	b = appendString(b, fStatusMessage, st.Description)
	b = appendVarint(b, fStatusCode, uint64(statusCode(st.Code)))
	b = closeMessage(b, st0)
	b = tag(b, fSpanFlags, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, spanFlags(sc.TraceFlags(), parent))
	return closeMessage(b, at)
}

// keyValue appends kv as field num of a message being written, using the
// scratch buffers from depth d.
func (e *spanEncoder) keyValue(b []byte, d int, num protowire.Number, kv attribute.KeyValue) []byte {
	if out, ok := scalarKeyValue(b, num, kv); ok {
		return out
	}
	m := e.buf(d)
	m = appendString(m, fKeyValueKey, string(kv.Key))
	m = appendMessage(m, fKeyValueValue, e.anyValue(d+1, kv.Value))
	return appendMessage(b, num, e.keep(d, m))
}

// scalarKeyValue appends kv as field num straight to b, its lengths
// computed rather than found by encoding into scratch buffers first, when
// its value is a scalar: most attributes. The bytes are those keyValue
// writes.
func scalarKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) ([]byte, bool) {
	v, ok := scalarOf(kv.Value)
	if !ok {
		return b, false
	}
	anyLen := v.size()
	kvLen := protowire.SizeTag(fKeyValueValue) + protowire.SizeBytes(anyLen)
	if kv.Key != "" {
		kvLen += protowire.SizeTag(fKeyValueKey) + protowire.SizeBytes(len(kv.Key))
	}
	b = tag(b, num, protowire.BytesType)
	b = uvarint(b, uint64(kvLen))
	b = appendString(b, fKeyValueKey, string(kv.Key))
	b = tag(b, fKeyValueValue, protowire.BytesType)
	b = uvarint(b, uint64(anyLen))
	return v.appendTo(b), true
}

// scalar is an attribute value that an AnyValue holds as one scalar field:
// a string, an integer, a float or a bool.
type scalar struct {
	num protowire.Number
	typ protowire.Type
	u   uint64 // the varint or fixed64 payload
	s   string // the bytes payload
}

// scalarOf reports v as a scalar, if it is one.
func scalarOf(v attribute.Value) (scalar, bool) {
	switch v.Type() {
	case attribute.STRING:
		return scalar{num: fAnyString, typ: protowire.BytesType, s: v.AsString()}, true
	case attribute.INT64:
		return scalar{num: fAnyInt, typ: protowire.VarintType, u: uint64(v.AsInt64())}, true
	case attribute.FLOAT64:
		return scalar{num: fAnyDouble, typ: protowire.Fixed64Type, u: math.Float64bits(v.AsFloat64())}, true
	case attribute.BOOL:
		return scalar{num: fAnyBool, typ: protowire.VarintType, u: protowire.EncodeBool(v.AsBool())}, true
	}
	return scalar{}, false
}

// size is the length of the field appendTo writes.
func (v scalar) size() int {
	n := protowire.SizeTag(v.num)
	switch v.typ {
	case protowire.BytesType:
		return n + protowire.SizeBytes(len(v.s))
	case protowire.Fixed64Type:
		return n + protowire.SizeFixed64()
	default:
		return n + protowire.SizeVarint(v.u)
	}
}

// appendTo appends the field, written even when zero (a oneof member).
func (v scalar) appendTo(b []byte) []byte {
	b = tag(b, v.num, v.typ)
	switch v.typ {
	case protowire.BytesType:
		return append(uvarint(b, uint64(len(v.s))), v.s...)
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(b, v.u)
	default:
		return uvarint(b, v.u)
	}
}

// anyValue encodes an AnyValue into the depth-d buffer. Oneof members are
// written even when zero, as protobuf does.
func (e *spanEncoder) anyValue(d int, v attribute.Value) []byte {
	m := e.buf(d)
	if sv, ok := scalarOf(v); ok {
		return e.keep(d, sv.appendTo(m))
	}
	switch v.Type() {
	case attribute.BYTESLICE:
		m = tag(m, fAnyBytes, protowire.BytesType)
		m = appendBytes(m, v.AsByteSlice())
	case attribute.BOOLSLICE:
		m = array(e, m, d, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		m = array(e, m, d, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		m = array(e, m, d, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		m = array(e, m, d, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		m = array(e, m, d, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		l := e.buf(d + 1)
		for _, kv := range v.AsMap() {
			l = e.keyValue(l, d+2, fListValues, kv)
		}
		m = appendMessage(m, fAnyKVList, e.keep(d+1, l))
	case attribute.EMPTY:
	default:
		m = appendString(m, fAnyString, "INVALID")
	}
	return e.keep(d, m)
}

// array appends an ArrayValue of vals to m (an AnyValue at depth d).
func array[T any](e *spanEncoder, m []byte, d int, vals []T, value func(T) attribute.Value) []byte {
	l := e.buf(d + 1)
	for _, x := range vals {
		l = appendMessage(l, fListValues, e.anyValue(d+2, value(x)))
	}
	return appendMessage(m, fAnyArray, e.keep(d+1, l))
}

func unixNano(ns int64) uint64 { return uint64(max(0, ns)) }

func clampUint32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if int64(v) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	flags := uint32(tf) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if parent.IsRemote() {
		flags |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return flags
}

func spanKind(k trace.SpanKind) tracepb.Span_SpanKind {
	switch k {
	case trace.SpanKindInternal:
		return tracepb.Span_SPAN_KIND_INTERNAL
	case trace.SpanKindClient:
		return tracepb.Span_SPAN_KIND_CLIENT
	case trace.SpanKindServer:
		return tracepb.Span_SPAN_KIND_SERVER
	case trace.SpanKindProducer:
		return tracepb.Span_SPAN_KIND_PRODUCER
	case trace.SpanKindConsumer:
		return tracepb.Span_SPAN_KIND_CONSUMER
	default:
		return tracepb.Span_SPAN_KIND_UNSPECIFIED
	}
}

func statusCode(c codes.Code) tracepb.Status_StatusCode {
	switch c {
	case codes.Ok:
		return tracepb.Status_STATUS_CODE_OK
	case codes.Error:
		return tracepb.Status_STATUS_CODE_ERROR
	default:
		return tracepb.Status_STATUS_CODE_UNSET
	}
}
