package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/telemetry/spanattr"
)

// Queries of ObservePolicy.
const (
	queryDecision      = "decision"
	queryVisibleModels = "visible_models"
)

// Decision results in spans and metrics.
const (
	ResultAllow = "allow"
	ResultDeny  = "deny"
	ResultError = "error"
)

// AuthorizerConfig configures NewAuthorizer.
type AuthorizerConfig struct {
	// Next is the policy being observed. Required.
	Next gateway.Authorizer
	// TracerProvider makes a span per evaluation; nil means none.
	TracerProvider trace.TracerProvider
	// Metrics records durations and decisions; nil means none.
	Metrics *Metrics
	// Revision returns the serving bundle revision for spans; nil leaves
	// it out.
	Revision func() string
}

// Authorizer is a gateway.Authorizer that records each evaluation of Next:
// a span (the alias chain the request resolved, the decision, the bundle
// revision, the route class; never a key or a prompt) and metrics.
type Authorizer struct {
	next     gateway.Authorizer
	tracer   trace.Tracer
	metrics  *Metrics
	revision func() string
}

// NewAuthorizer returns cfg.Next observed. With neither a tracer provider
// nor metrics it returns cfg.Next itself.
func NewAuthorizer(cfg AuthorizerConfig) gateway.Authorizer {
	if cfg.TracerProvider == nil && cfg.Metrics == nil {
		return cfg.Next
	}
	a := &Authorizer{next: cfg.Next, metrics: cfg.Metrics, revision: cfg.Revision}
	if cfg.TracerProvider != nil {
		a.tracer = cfg.TracerProvider.Tracer("github.com/regate/gateway/gateway/telemetry")
	}
	return a
}

// Decide implements gateway.Authorizer.
func (a *Authorizer) Decide(ctx context.Context, in *gateway.Input) (gateway.Decision, error) {
	ctx, span := a.start(ctx, "policy.decision")
	start := time.Now()
	d, err := a.next.Decide(ctx, in)
	elapsed := time.Since(start)
	result := ResultDeny
	switch {
	case err != nil:
		result = ResultError
	case d.Allow:
		result = ResultAllow
	}
	if a.metrics != nil {
		a.metrics.ObservePolicy(queryDecision, in.Request.Route, result, elapsed)
	}
	if span != nil {
		buf := spanattr.Get()
		attrs := a.inputAttrs(buf[:0], in)
		attrs = append(attrs, attribute.String("gateway.policy.decision", result))
		switch {
		case err != nil:
			span.SetStatus(codes.Error, "policy evaluation failed")
		case !d.Allow:
			// What a deny needs to be understood; an allow keeps the span
			// lean (every attribute costs CPU on every call).
			attrs = append(attrs, attribute.Int("gateway.policy.status", d.Status),
				attribute.String("gateway.policy.code", d.Code),
				attribute.StringSlice("gateway.policy.reasons", d.Reasons))
			if in.Model != nil {
				attrs = append(attrs, attribute.StringSlice("gateway.model.chain", in.Model.Names))
			}
		}
		spanattr.Set(span, buf, attrs)
		span.End()
	}
	return d, err
}

// VisibleModels implements gateway.Authorizer.
func (a *Authorizer) VisibleModels(ctx context.Context, in *gateway.Input) (map[string]struct{}, error) {
	ctx, span := a.start(ctx, "policy.visible_models")
	start := time.Now()
	v, err := a.next.VisibleModels(ctx, in)
	elapsed := time.Since(start)
	if a.metrics != nil {
		result := ResultAllow
		if err != nil {
			result = ResultError
		}
		a.metrics.ObservePolicy(queryVisibleModels, in.Request.Route, result, elapsed)
	}
	if span != nil {
		buf := spanattr.Get()
		attrs := a.inputAttrs(buf[:0], in)
		if err != nil {
			span.SetStatus(codes.Error, "policy evaluation failed")
		} else {
			attrs = append(attrs, attribute.Int("gateway.policy.visible", len(v)))
		}
		if in.Candidates != nil {
			attrs = append(attrs, attribute.Int("gateway.policy.candidates", len(in.Candidates.Items)))
		}
		spanattr.Set(span, buf, attrs)
		span.End()
	}
	return v, err
}

// start starts an evaluation span when tracing is on and the span is
// recorded.
func (a *Authorizer) start(ctx context.Context, name string) (context.Context, trace.Span) {
	if a.tracer == nil {
		return ctx, nil
	}
	ctx, span := a.tracer.Start(ctx, name)
	if !span.IsRecording() {
		span.End()
		return ctx, nil
	}
	return ctx, span
}

// inputAttrs appends what describes the evaluation to attrs: the route
// class, the bundle revision and, for a request naming a model, the alias
// chain it resolved.
func (a *Authorizer) inputAttrs(attrs []attribute.KeyValue, in *gateway.Input) []attribute.KeyValue {
	attrs = append(attrs, attribute.String("gateway.route", in.Request.Route))
	if a.revision != nil {
		attrs = append(attrs, attribute.String("gateway.policy.revision", a.revision()))
	}
	if m := in.Model; m != nil {
		attrs = append(attrs, attribute.String("gateway.model.requested", m.Requested))
		if m.Found {
			attrs = append(attrs, attribute.String("gateway.model.resolved", m.Resolved))
		}
	}
	return attrs
}
