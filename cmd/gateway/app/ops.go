package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/regate/gateway/gateway/authcache"
	"github.com/regate/gateway/gateway/config"
	"github.com/regate/gateway/gateway/telemetry"
	"github.com/regate/gateway/rego"
)

// Defaults of the operational flags.
const (
	// DefaultShutdownTimeout bounds how long in-flight requests and streams
	// may finish after SIGTERM before their connections are closed.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultDrainDelay is how long the gateway keeps serving with
	// readiness false before it stops accepting connections.
	DefaultDrainDelay = 0
)

// EnvVars are the environment variables the gateway command reads
// (besides the standard OTEL_* ones), for deployment files and their tests.
var EnvVars = []string{
	"GATEWAY_CONFIG", "GATEWAY_LISTEN", "GATEWAY_BUNDLE", "DATABASE_URL",
	"GATEWAY_MASTER_KEY", "LITELLM_MASTER_KEY",
	"GATEWAY_LOG_LEVEL", "GATEWAY_LOG_FORMAT", "GATEWAY_LOG_FLUSH_INTERVAL", "GATEWAY_SHUTDOWN_TIMEOUT", "GATEWAY_DRAIN_DELAY",
	"GATEWAY_METRICS", "GATEWAY_DECISION_LOG",
	"GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY",
	"GATEWAY_READ_HEADER_TIMEOUT", "GATEWAY_MAX_HEADER_BYTES", "GATEWAY_IDLE_TIMEOUT",
	"GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES", "GATEWAY_BUNDLE_FETCH_TIMEOUT",
}

// opsOptions are the serve flags for logs and shutdown.
type opsOptions struct {
	LogLevel, LogFormat         string
	ShutdownTimeout, DrainDelay time.Duration
	// LogFlushInterval is how long an info or debug line may wait to be
	// written together with others (telemetry.LogWriter); 0 writes each
	// line at once.
	LogFlushInterval time.Duration
	// Metrics serves GET /metrics and records the metrics behind it.
	Metrics bool
	// err is an invalid environment value, reported after flag parsing.
	err error
}

// addOpsFlags registers --log-level, --log-format, --log-flush-interval,
// --shutdown-timeout, --drain-delay and --metrics with their environment
// fallbacks.
func addOpsFlags(fset *flag.FlagSet, getenv func(string) string) *opsOptions {
	o := &opsOptions{ShutdownTimeout: DefaultShutdownTimeout, DrainDelay: DefaultDrainDelay, Metrics: true,
		LogFlushInterval: telemetry.DefaultLogFlushInterval}
	if s := getenv("GATEWAY_METRICS"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			o.err = errors.Join(o.err, fmt.Errorf("GATEWAY_METRICS=%q: want true or false", s))
		} else {
			o.Metrics = v
		}
	}
	fset.BoolVar(&o.Metrics, "metrics", o.Metrics, "serve GET /metrics")
	fset.StringVar(&o.LogLevel, "log-level", or(getenv("GATEWAY_LOG_LEVEL"), "info"), "log level")
	fset.StringVar(&o.LogFormat, "log-format", or(getenv("GATEWAY_LOG_FORMAT"), telemetry.FormatJSON), "log format")
	for _, d := range []struct {
		name, env string
		v         *time.Duration
	}{
		{"shutdown-timeout", "GATEWAY_SHUTDOWN_TIMEOUT", &o.ShutdownTimeout},
		{"drain-delay", "GATEWAY_DRAIN_DELAY", &o.DrainDelay},
		{"log-flush-interval", "GATEWAY_LOG_FLUSH_INTERVAL", &o.LogFlushInterval},
	} {
		if s := getenv(d.env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v < 0 {
				o.err = errors.Join(o.err, fmt.Errorf("%s=%q: want a duration such as 30s", d.env, s))
			} else {
				*d.v = v
			}
		}
		fset.DurationVar(d.v, d.name, *d.v, d.name)
	}
	return o
}

// validate checks the values after parsing.
func (o *opsOptions) validate() error {
	if o.ShutdownTimeout < 0 || o.DrainDelay < 0 || o.LogFlushInterval < 0 {
		return errors.Join(o.err, errors.New("--shutdown-timeout, --drain-delay and --log-flush-interval must not be negative"))
	}
	if _, err := telemetry.NewLogger(io.Discard, o.LogFormat, o.LogLevel); err != nil {
		return errors.Join(o.err, err)
	}
	return o.err
}

// Drain turns readiness false, so that load balancers stop sending new
// requests, while the gateway keeps serving.
func (g *Gateway) Drain() {
	if g.draining != nil {
		g.draining.Store(true)
	}
}

// errDraining is the readiness error while the gateway shuts down.
var errDraining = errors.New("shutting down")

// drainAndStop drains and shuts the gateway down after a signal: readiness false
// first, serving on for the drain delay, then no new connections while
// in-flight requests and streams finish within the shutdown timeout.
func drainAndStop(ctx context.Context, g *Gateway, o *opsOptions, log *slog.Logger) int {
	g.Drain()
	log.Info("shutting down: readiness is false", "drain_delay", o.DrainDelay, "shutdown_timeout", o.ShutdownTimeout)
	if o.DrainDelay > 0 {
		time.Sleep(o.DrainDelay)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	log.Info("no longer accepting connections; waiting for in-flight requests")
	if err := g.Shutdown(sctx); err != nil {
		log.Error("shutdown: in-flight requests cut at the deadline", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// healthcheck asks a local gateway's /health/readiness (for container
// health checks, where no curl is at hand) and returns 0 when it is ready.
// It asks over HTTPS when useTLS (the serve flags name a certificate), or
// when the plain request is answered that the gateway wants HTTPS, as it is
// when the certificate came by flag in the container's command and the
// health check does not see it. The certificate is not verified: it names
// the public host, not loopback, and may come from a CA the container does
// not trust; the probe carries no credentials and reads only a status.
func healthcheck(ctx context.Context, listen string, useTLS bool, stdout, stderr io.Writer) int {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: listen address %q: %v\n", listen, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		//nolint:gosec // a local readiness probe; see above.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	defer client.CloseIdleConnections()
	ask := func(scheme string) (string, int, []byte, error) {
		u := scheme + "://" + net.JoinHostPort(host, port) + "/health/readiness"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return u, 0, nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return u, 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return u, resp.StatusCode, b, nil
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	u, code, body, err := ask(scheme)
	// net/http's TLS server answers a plain request with this 400.
	if !useTLS && err == nil && code == http.StatusBadRequest && bytes.Contains(body, []byte("HTTP request to an HTTPS server")) {
		u, code, _, err = ask("https")
	}
	if err != nil {
		fmt.Fprintln(stderr, "gateway healthcheck:", err)
		return 1
	}
	if code != http.StatusOK {
		fmt.Fprintf(stderr, "gateway healthcheck: %s answered %d\n", u, code)
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	return 0
}

// newMetrics builds the Prometheus metrics unless opts disable them. The
// model_group label takes the configured model group names only.
func newMetrics(cfg *config.Config, cache *authcache.Cache, eng *rego.Engine, dropped func() uint64, opts Options) (*telemetry.Metrics, error) {
	if opts.DisableMetrics {
		return nil, nil
	}
	var groups []string
	for _, d := range cfg.Catalog.Deployments() {
		groups = append(groups, d.ModelName)
	}
	return telemetry.NewMetrics(telemetry.MetricsConfig{
		ModelGroups: groups,
		Version:     Version(),
		PrincipalCache: func() (hits, misses, stale uint64) {
			s := cache.Stats()
			return s.Hits, s.Misses, s.Stale
		},
		BundleReloads: func() (ok, failed uint64) {
			st := eng.Status()
			return st.Reloads, st.Failures
		},
		DecisionLogDropped: dropped,
	})
}
