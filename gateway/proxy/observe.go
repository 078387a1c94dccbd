package proxy

import (
	"context"
	"encoding/hex"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/telemetry/spanattr"
)

// Failure kinds of Attempt.Kind.
const (
	// FailUnavailable: no connection could be made.
	FailUnavailable = "unavailable"
	// FailTimeout: no response headers in time.
	FailTimeout = "timeout"
	// FailStatus: the upstream answered with an error status (Attempt.Status).
	FailStatus = "status"
	// FailStream: the response body broke after it started.
	FailStream = "stream"
)

// Attempt is one failure of an upstream call: a failed attempt that was
// failed over from, an upstream 4xx passed to the client, or a body that
// broke after it started.
type Attempt struct {
	// Deployment is the deployment that failed.
	Deployment *gateway.Deployment
	// Kind is FailUnavailable, FailTimeout, FailStatus or FailStream.
	Kind string
	// Status is the upstream status for FailStatus, else 0.
	Status int
}

// Outcome is what Serve learned about one upstream call, for logs, metrics
// and traces. It never holds credentials or bodies.
type Outcome struct {
	// Operation and Stream are copied from the Request.
	Operation string
	Stream    bool
	// Deployment served the answer, or is the last one tried when every
	// attempt failed; nil when none was tried.
	Deployment *gateway.Deployment
	// Attempts is the number of deployments tried.
	Attempts int
	// Status is the upstream status of the answer passed on or of the last
	// failure; 0 when no upstream answered.
	Status int
	// Failures lists what went wrong, in order; empty for a clean call.
	Failures []Attempt
	// TTFB is the time from the start of Serve to the first response body
	// byte from the upstream (for a stream, its first event); 0 when none
	// arrived.
	TTFB time.Duration
	// Duration is the time Serve took: for a stream, until its end.
	Duration time.Duration
	// ClientGone is true when the client went away before the end.
	ClientGone bool
	// Usage is what the upstream reported the call used (DESIGN §11);
	// Usage.Reported is false when it reported nothing.
	Usage gateway.Usage
}

const tracerName = "github.com/regate/gateway/gateway/proxy"

// startSpan starts the upstream call's client span when tracing is on.
func (p *Proxy) startSpan(ctx context.Context, req *Request) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, nil
	}
	ctx, span := p.tracer.Start(ctx, p.spanName(req.Operation), clientSpan...)
	if !span.IsRecording() {
		// Not sampled: the context still carries the trace upstream.
		span.End()
		return ctx, nil
	}
	return ctx, span
}

// clientSpan are the options of every upstream span, built once: a
// variadic slice passed through an interface escapes to the heap on every
// call.
var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// spanName is "upstream <operation>", joined once per operation rather than
// per call. Operations come from the route table, so the cache is small.
func (p *Proxy) spanName(operation string) string {
	if name, ok := p.spanNames.Load(operation); ok {
		return name.(string)
	}
	name := "upstream " + operation
	p.spanNames.Store(operation, name)
	return name
}

// setTraceContext sends sc to the upstream as W3C trace context, as
// propagation.TraceContext's Inject does, but from the span context the
// call already holds rather than looked up in the request's context, and
// with the headers set under their canonical names (Header.Set would
// canonicalise them on every call). An invalid sc sets nothing.
func setTraceContext(h http.Header, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	if ts := sc.TraceState().String(); ts != "" {
		h["Tracestate"] = []string{ts}
	}
	var b [55]byte // 00-<trace id>-<span id>-<flags>
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2], b[35], b[52] = '0', '0', '-', '-', '-'
	hex.Encode(b[3:35], tid[:])
	hex.Encode(b[36:52], sid[:])
	hex.Encode(b[53:], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	h["Traceparent"] = []string{string(b[:])}
}

// firstByte records the arrival of the first response body byte.
func (c *call) firstByte() {
	if !c.first.IsZero() {
		return
	}
	c.first = time.Now()
	if c.span != nil && c.req.Stream {
		c.span.AddEvent("first byte", trace.WithTimestamp(c.first))
	}
}

// fail records a failure of deployment d.
func (c *call) fail(d *gateway.Deployment, kind string, status int) {
	c.failures = append(c.failures, Attempt{Deployment: d, Kind: kind, Status: status})
	if c.span != nil {
		attrs := []attribute.KeyValue{
			attribute.String("gateway.deployment", d.ID),
			attribute.String("gateway.provider", d.Provider),
			attribute.String("gateway.failure", kind),
		}
		if status != 0 {
			attrs = append(attrs, attribute.Int("http.response.status_code", status))
		}
		c.span.AddEvent("upstream failure", trace.WithAttributes(attrs...))
	}
}

// finish completes the outcome, ends the span and reports to the observer
// and the router.
func (p *Proxy) finish(c *call, req *Request) {
	if d := c.served; d != nil {
		if !c.first.IsZero() {
			p.router.FirstByte(d, c.first.Sub(c.attemptStart))
		}
		p.router.End(d, c.usage.Total())
	}
	o := req.Outcome
	if o == nil && p.observe == nil && c.span == nil {
		return
	}
	if o == nil {
		o = new(Outcome)
	}
	*o = Outcome{
		Operation:  req.Operation,
		Stream:     req.Stream,
		Deployment: c.last,
		Attempts:   c.attempts,
		Status:     c.status,
		Failures:   c.failures,
		Duration:   time.Since(c.start),
		ClientGone: c.clientCtx.Err() != nil,
		Usage:      c.usage,
	}
	if !c.first.IsZero() {
		o.TTFB = c.first.Sub(c.start)
	}
	if span := c.span; span != nil {
		// Few attributes: each costs CPU on every call. The operation is
		// in the span name; a stream's total time is the span's duration
		// and also an attribute, next to its time to first byte.
		buf := spanattr.Get()
		attrs := append(buf[:0], attribute.Int("gateway.attempts", o.Attempts))
		if d := o.Deployment; d != nil {
			attrs = append(attrs,
				attribute.String("gateway.provider", d.Provider),
				attribute.String("gateway.model_group", d.ModelName),
				attribute.String("gateway.deployment", d.ID))
		}
		if o.Status != 0 {
			attrs = append(attrs, attribute.Int("http.response.status_code", o.Status))
		}
		if o.TTFB > 0 {
			attrs = append(attrs, attribute.Float64("gateway.upstream.ttfb_ms", ms(o.TTFB)))
		}
		if o.Stream {
			attrs = append(attrs, attribute.Bool("gateway.stream", true),
				attribute.Float64("gateway.upstream.duration_ms", ms(o.Duration)))
		}
		spanattr.Set(span, buf, attrs)
		switch {
		case o.ClientGone:
			span.SetStatus(codes.Error, "client went away")
		case c.err != nil || o.Status >= 500:
			span.SetStatus(codes.Error, "upstream call failed")
		case len(o.Failures) > 0 && o.Failures[len(o.Failures)-1].Kind == FailStream:
			span.SetStatus(codes.Error, "upstream stream failed")
		}
		span.End()
	}
	if p.observe != nil {
		p.observe(o)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
