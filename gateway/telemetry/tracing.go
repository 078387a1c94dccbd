// Package telemetry sets up what operators see of the gateway: OpenTelemetry
// traces configured by the standard OTEL_* environment, Prometheus metrics
// with bounded labels, the policy decorator that records every decision,
// and the slog logger.
//
// Nothing here holds a key or a prompt: spans, metrics and logs carry key
// aliases, team ids, model names, route classes and statuses only.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultServiceName is service.name when OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES do not set one.
const DefaultServiceName = "regate-gateway"

// TracingConfig configures NewTracerProvider.
type TracingConfig struct {
	// Env looks up environment variables to decide whether to export at
	// all; nil means os.LookupEnv. The OTLP exporter and the SDK read their
	// own settings (endpoint, headers, sampler, batching) from the process
	// environment, as the OpenTelemetry specification describes.
	Env func(string) (string, bool)
	// ServiceName is service.name; empty means DefaultServiceName.
	ServiceName string
	// ServiceVersion is service.version; empty leaves it out.
	ServiceVersion string
}

// ErrUnsupportedExporter is returned for OTEL_TRACES_EXPORTER values or
// OTLP protocols the gateway does not ship.
var ErrUnsupportedExporter = errors.New("unsupported trace exporter")

// NewTracerProvider returns a Provider that exports spans over OTLP as the
// standard environment says, or nil when it asks for no export:
// OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none, or neither
// OTEL_TRACES_EXPORTER nor an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set. A nil provider means no spans
// and no cost. The protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" (the default) or "grpc".
// The sampler is OTEL_TRACES_SAMPLER(_ARG), batching OTEL_BSP_*, limits
// OTEL_*_LIMIT. Exporters connect lazily, so this does no I/O; call
// Shutdown on exit to flush.
func NewTracerProvider(ctx context.Context, cfg TracingConfig) (*Provider, error) {
	env := cfg.Env
	if env == nil {
		env = os.LookupEnv
	}
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	exporter := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
	if exporter == "" && (get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") {
		exporter = "otlp"
	}
	switch exporter {
	case "", "none":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: %w (use otlp or none)", exporter, ErrUnsupportedExporter)
	}
	sampler, err := SamplerFromEnv(env)
	if err != nil {
		return nil, err
	}
	protocol := get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var client otlptrace.Client
	switch protocol {
	case "", "http/protobuf":
		client = otlptracehttp.NewClient()
	case "grpc":
		client = otlptracegrpc.NewClient()
	default:
		return nil, fmt.Errorf("OTLP protocol %q: %w (use http/protobuf or grpc)", protocol, ErrUnsupportedExporter)
	}
	exp, err := NewExporter(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := Resource(ctx, cfg.ServiceName, cfg.ServiceVersion)
	if err != nil {
		return nil, err
	}
	return NewProvider(ProviderConfig{
		Exporter: exp,
		Resource: res,
		Sampler:  sampler,
		Batch:    batchOptionsFromEnv(env),
	}), nil
}

// ErrBadSampler is returned for an OTEL_TRACES_SAMPLER or
// OTEL_TRACES_SAMPLER_ARG the gateway cannot use.
var ErrBadSampler = errors.New("bad trace sampler setting")

// SamplerFromEnv is the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, looked up through env:
// always_on, always_off, traceidratio, parentbased_always_on (the default,
// also when unset), parentbased_always_off, parentbased_traceidratio, the
// ratio defaulting to 1. Where the SDK logs a bad value and samples
// everything, the gateway refuses to start.
func SamplerFromEnv(env func(string) (string, bool)) (sdktrace.Sampler, error) {
	name, _ := env("OTEL_TRACES_SAMPLER")
	name = strings.ToLower(strings.TrimSpace(name))
	arg, _ := env("OTEL_TRACES_SAMPLER_ARG")
	arg = strings.TrimSpace(arg)
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: %w (want a ratio from 0 to 1)", arg, ErrBadSampler)
		}
		return sdktrace.TraceIDRatioBased(v), nil
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return ratio()
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(r), nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%s: %w (use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name, ErrBadSampler)
	}
}

// Resource describes the gateway process: service.name and service.version,
// overridden by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func Resource(ctx context.Context, name, version string) (*resource.Resource, error) {
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last, so the environment wins
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}
