// Package httpapi is the HTTP edge of the gateway: the route table, the
// middleware every request passes (request id, body limit, access log,
// panic recovery), authentication, the policy call, the handlers, and the one
// mapper that turns errors into OpenAI-shaped responses.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/admin"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/gateway/proxy"
	"github.com/regate/gateway/gateway/router"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0
// (DESIGN §10.14).
const DefaultMaxBodyBytes = 64 << 20

// Upstream forwards an authorized inference call. *proxy.Proxy implements it.
type Upstream interface {
	// Serve proxies the call. It returns an error only before anything was
	// written to w; later failures are reported in-band by the proxy.
	Serve(w http.ResponseWriter, r *http.Request, req proxy.Request) error
}

// Config wires the edge to the core ports.
type Config struct {
	// Resolver resolves model names and lists candidates. Required.
	Resolver gateway.Resolver
	// Authorizer is the policy. Required.
	Authorizer gateway.Authorizer
	// Store looks up principals by key hash. Required.
	Store gateway.PrincipalStore
	// Upstream proxies permitted inference calls. Required.
	Upstream Upstream
	// Admin serves the admin API (/key/*, /team/*, /user/*, /model/info);
	// nil leaves those routes unserved.
	Admin *admin.API
	// Policy serves /admin/policy/status and /admin/policy/explain (admin
	// route class); nil leaves those routes unserved.
	Policy Policy
	// MasterKey is the admin credential. Required.
	MasterKey gateway.Secret
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives access logs and errors; nil discards them.
	Logger *slog.Logger
	// Ready reports readiness for /health/readiness; nil means always ready.
	Ready func(ctx context.Context) error
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// TracerProvider makes the server span of each request and its
	// authentication span; nil means no tracing and no cost.
	TracerProvider trace.TracerProvider
	// Observer records request metrics; nil means none.
	Observer RequestObserver
	// Metrics serves GET /metrics (route class health, no key needed);
	// nil leaves the route unserved.
	Metrics http.Handler
	// Limiter admits inference calls under the principal's budgets and
	// rate limits after the policy allowed them, and counts their usage
	// and spend (DESIGN §11); nil means no limits and no usage counted.
	Limiter *limits.Limiter
	// UsageObserver counts each admitted call's tokens and spend; nil
	// means none.
	UsageObserver UsageObserver
	// TrustedProxies are the peers whose X-Forwarded-For decides the
	// client address the policy sees (input.request.client_ip).
	TrustedProxies []netip.Prefix
	// Fallbacks are the fallback settings (DESIGN §12); nil means none.
	Fallbacks *router.Settings
	// FallbackObserver counts fallbacks; nil means none.
	FallbackObserver FallbackObserver
}

// FallbackObserver records fallbacks (*telemetry.Metrics implements it).
type FallbackObserver interface {
	// ObserveFallback counts one fallback target of group after a failure
	// of kind: result is "served", "failed", "denied" (the policy refused
	// it or it names no model) or "limited".
	ObserveFallback(group, kind, result string)
}

// UsageObserver records the usage of inference calls (*telemetry.Metrics
// implements it).
type UsageObserver interface {
	// ObserveUsage counts one call served by d for team (empty: none).
	ObserveUsage(d *gateway.Deployment, team string, u gateway.Usage, cost float64)
}

// Server is the gateway's http.Handler.
type Server struct {
	cfg        Config
	log        *slog.Logger
	router     *mux.Router
	tracer     trace.Tracer // nil without tracing
	masterHash string
	created    int64
	lists      listCache // rendered model lists (listcache.go)
}

// New checks cfg and builds the route table.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Resolver == nil:
		return nil, errors.New("httpapi: Resolver is required")
	case cfg.Authorizer == nil:
		return nil, errors.New("httpapi: Authorizer is required")
	case cfg.Store == nil:
		return nil, errors.New("httpapi: Store is required")
	case cfg.Upstream == nil:
		return nil, errors.New("httpapi: Upstream is required")
	case cfg.MasterKey == "":
		return nil, errors.New("httpapi: MasterKey is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		masterHash: gateway.HashKey(cfg.MasterKey.Reveal()),
		created:    cfg.Now().Unix(),
	}
	s.router = s.routes()
	if cfg.TracerProvider != nil {
		s.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	return s, nil
}

// ServeHTTP runs the edge middleware around the router, so unmatched
// requests get request ids, logs and OpenAI-shaped errors too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.edge(w, r)
}
