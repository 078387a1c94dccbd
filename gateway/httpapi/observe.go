package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/telemetry/spanattr"
)

// RequestObserver records request metrics. *telemetry.Metrics implements
// it.
type RequestObserver interface {
	// ObserveRequest records one request: its route class (empty when no
	// route matched), method, status and duration.
	ObserveRequest(class, method string, status int, d time.Duration)
}

const tracerName = "github.com/regate/gateway/gateway/httpapi"

// startServerSpan starts the request's server span when tracing is on:
// W3C trace context from the client continues, the span is named from the
// route template once the router matched (never the raw path, whose model
// ids would explode the number of span names), and health checks and
// metric scrapes are not traced. Attributes follow the OpenTelemetry HTTP
// conventions and are set once, at the end (observe); the edge's
// statusWriter supplies the status. The span is nil when not recorded.
func (s *Server) startServerSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	if s.tracer == nil {
		return ctx, nil
	}
	if p := r.URL.Path; p == "/metrics" || strings.HasPrefix(p, "/health/") {
		return ctx, nil
	}
	// Header.Get canonicalises its key on every call; most requests carry
	// no trace context, so look for it by its canonical name first.
	if _, ok := r.Header["Traceparent"]; ok {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := s.tracer.Start(ctx, r.Method, serverSpan...)
	if !span.IsRecording() {
		span.End()
		return ctx, nil
	}
	return ctx, span
}

// serverSpan are the options of every server span, built once: a variadic
// slice passed through an interface escapes to the heap on every call.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// spanName is the server span's name for a route: its method and template,
// joined once when the route table is built rather than per request.
func spanName(method, template string) string { return method + " " + template }

// nameSpan names the recorded server span of rc after the matched route;
// name is spanName(method, template) for the route's method.
func nameSpan(r *http.Request, rc *reqCtx, method, name, template string) {
	if rc.span == nil {
		return
	}
	if r.Method != method { // not expected: routes match one method
		name = spanName(r.Method, template)
	}
	rc.span.SetName(name)
}

// observe records the finished request: metrics, and the request id, route
// class and status on the server span (5xx is an error, as the HTTP
// conventions say for servers).
func (s *Server) observe(r *http.Request, rc *reqCtx, status int, d time.Duration) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveRequest(rc.class, r.Method, status, d)
	}
	span := rc.span
	if span == nil {
		return
	}
	// All at once, at the end, and few: every attribute costs CPU on
	// every request (BenchmarkOpsTelemetry).
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	buf := spanattr.Get()
	spanattr.Set(span, buf, append(buf[:0],
		attribute.String("http.request.method", r.Method),
		attribute.String("url.scheme", scheme),
		attribute.String("url.path", r.URL.EscapedPath()),
		attribute.String("http.route", rc.template),
		attribute.Int("http.response.status_code", status),
		attribute.String("client.address", client),
		attribute.String("gateway.request_id", rc.id),
	))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// startAuthSpan starts the authentication span; end records its outcome.
// Without tracing both are free.
func (s *Server) startAuthSpan(ctx context.Context) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	ctx, span := s.tracer.Start(ctx, "authenticate")
	if !span.IsRecording() {
		span.End()
		return ctx, nil
	}
	return ctx, span
}

// endAuthSpan records who authenticated (alias and team, never the key)
// or why not.
func endAuthSpan(span trace.Span, p *gateway.Principal, err error) {
	if span == nil {
		return
	}
	switch {
	case err != nil:
		result := authFailure(err)
		span.SetAttributes(attribute.String("gateway.auth.result", result))
		if result == "error" {
			span.SetStatus(codes.Error, "authentication failed")
		}
	case p != nil && p.Key != nil:
		buf := spanattr.Get()
		attrs := append(buf[:0],
			attribute.String("gateway.auth.result", "ok"),
			attribute.String("gateway.key_alias", p.Key.Alias))
		if p.Team != nil {
			attrs = append(attrs, attribute.String("gateway.team_id", p.Team.ID))
		}
		spanattr.Set(span, buf, attrs)
	}
	span.End()
}

// authFailure classifies an authentication error for the span.
func authFailure(err error) string {
	var invalid *gateway.InvalidKeyError
	switch {
	case errors.Is(err, gateway.ErrMissingKey):
		return "missing_key"
	case errors.As(err, &invalid):
		return "invalid_key"
	default:
		return "error"
	}
}

// traceID returns the request's trace id, or "" without tracing.
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
