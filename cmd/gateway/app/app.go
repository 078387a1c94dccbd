// Package app wires the gateway's adapters together: configuration, catalog,
// policy engine, store, proxy and HTTP edge. cmd/gateway calls Main; tests
// call Build and Start to boot the real wiring on a free port.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/examples"
	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/admin"
	"github.com/regate/gateway/gateway/authcache"
	"github.com/regate/gateway/gateway/config"
	"github.com/regate/gateway/gateway/decisionlog"
	"github.com/regate/gateway/gateway/httpapi"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/gateway/proxy"
	"github.com/regate/gateway/gateway/router"
	"github.com/regate/gateway/gateway/telemetry"
	"github.com/regate/gateway/rego"
	"github.com/regate/gateway/store/memory"
	"github.com/regate/gateway/store/postgres"
)

// Options are the inputs of Build, already merged from flags and
// environment.
type Options struct {
	// ConfigPath is the config file; empty means the embedded example config
	// (unless ConfigData is set).
	ConfigPath string
	// ConfigData is a config document used instead of ConfigPath (tests).
	ConfigData []byte
	// Listen is the address to listen on; default 127.0.0.1:4000.
	Listen string
	// Bundles are policy bundle locations (directories, .tar.gz bundles,
	// bundle-service URLs) replacing or extending the embedded default;
	// empty means gateway_settings.policy.bundle, or the default alone.
	Bundles []string
	// DecisionLog is where decision events go ("stdout", "stderr", a file,
	// "off"); empty means gateway_settings.policy.decision_log.
	DecisionLog string
	// DecisionLogOutput, when set, receives the decision events instead
	// (tests).
	DecisionLogOutput io.Writer
	// Now is the clock of the policy's input.now; nil means time.Now.
	Now func() time.Time
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Transport is the upstream HTTP transport; nil means the proxy default.
	Transport http.RoundTripper
	// DatabaseURL selects the PostgreSQL store; empty means the in-memory
	// store (not durable).
	DatabaseURL string
	// Cache tunes the principal cache; zero values mean its defaults.
	Cache authcache.Config
	// TracerProvider receives the spans of requests, authentication,
	// policy decisions and upstream calls; nil means no tracing (serve
	// builds one from the OTEL_* environment).
	TracerProvider trace.TracerProvider
	// DisableMetrics leaves GET /metrics unserved and records nothing
	// (benchmark baselines).
	DisableMetrics bool
	// Serving sets TLS and the limits on clients; zero values mean plain
	// HTTP and the default limits.
	Serving Serving
	// Bounds limit upstream answers, bundle fetches and store operations;
	// zero values mean the defaults.
	Bounds Bounds
}

// Gateway is a wired gateway, ready to Start.
type Gateway struct {
	// Config is the loaded configuration.
	Config *config.Config
	// Engine is the policy engine.
	Engine *rego.Engine
	// Store is the principal store: PostgreSQL or in-memory.
	Store gateway.Store
	// Cache is the principal cache in front of Store.
	Cache *authcache.Cache
	// Handler is the HTTP edge.
	Handler http.Handler
	// Durable is true when Store is PostgreSQL.
	Durable bool
	// Metrics is the Prometheus registry behind GET /metrics; nil when
	// Options.DisableMetrics.
	Metrics *telemetry.Metrics
	// DecisionLog records every policy decision; nil when it is off.
	DecisionLog *decisionlog.Logger
	dlogCloser  io.Closer
	// Limiter enforces budgets and rate limits and counts usage.
	Limiter *limits.Limiter

	listen  string
	serving Serving
	// cert serves the TLS certificate; nil for plain HTTP.
	cert *certFiles
	log  *slog.Logger
	srv  *http.Server
	ln   net.Listener
	done chan error
	stop context.CancelFunc
	// draining turns readiness false before shutdown.
	draining *atomic.Bool

	shutdownOnce sync.Once
	shutdownErr  error
}

// DefaultListen is the listen address when none is given.
const DefaultListen = "127.0.0.1:4000"

// LoadConfig reads the configuration Options name and finds the master key.
// A config error is a *config.Error naming the file.
func LoadConfig(opts Options) (*config.Config, error) {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	var (
		cfg *config.Config
		err error
	)
	switch {
	case opts.ConfigData != nil:
		cfg, err = config.Parse(opts.ConfigData, env)
	case opts.ConfigPath != "":
		cfg, err = config.Load(opts.ConfigPath)
	default:
		cfg, err = config.Parse(examples.Config, env)
		var cerr *config.Error
		if errors.As(err, &cerr) {
			cerr.File = EmbeddedConfigName
		}
	}
	if err != nil {
		return nil, err
	}
	if cfg.MasterKey == "" {
		for _, v := range []string{"GATEWAY_MASTER_KEY", "LITELLM_MASTER_KEY"} {
			if k, ok := env(v); ok && k != "" {
				cfg.MasterKey = gateway.Secret(k)
				break
			}
		}
	}
	if cfg.MasterKey == "" {
		return nil, errors.New("no master key: set GATEWAY_MASTER_KEY (or general_settings.master_key in the config)")
	}
	return cfg, nil
}

// EmbeddedConfigName names the embedded example config in messages.
const EmbeddedConfigName = "embedded examples/config.yaml"

// NewEngine compiles the policy bundles Options and the config name.
func NewEngine(cfg *config.Config, opts Options, log *slog.Logger) (*rego.Engine, error) {
	rc, err := engineConfig(cfg, opts, log)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	eng, err := rego.New(rc)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return eng, nil
}

// Build loads the configuration, compiles the policy, validates every
// configured principal against it, opens the store (applying migrations for
// PostgreSQL), upserts the configured principals and builds the handler. It
// does not listen; Start does. Shutdown (or Close) releases what Build
// opened.
func Build(ctx context.Context, opts Options) (*Gateway, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := LoadConfig(opts)
	if err != nil {
		return nil, err
	}
	// A missing or broken key pair fails before the store is opened.
	var cert *certFiles
	if s := opts.Serving; s.TLS() {
		if s.TLSCertFile == "" || s.TLSKeyFile == "" {
			return nil, errors.New("tls: both a certificate and a key file are needed")
		}
		if cert, err = loadCertFiles(s.TLSCertFile, s.TLSKeyFile); err != nil {
			return nil, err
		}
	}
	eng, err := NewEngine(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	if err := CheckPrincipals(ctx, cfg, eng); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, opts.DatabaseURL, opts.Bounds.DatabaseQueryTimeout, log)
	if err != nil {
		return nil, err
	}
	g, err := assemble(ctx, cfg, eng, st, opts, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	g.cert, g.serving = cert, opts.Serving.withDefaults()
	return g, nil
}

// openStore opens PostgreSQL (migrated) when url is set, else memory;
// queryTimeout bounds each PostgreSQL operation (0: the default).
func openStore(ctx context.Context, url string, queryTimeout time.Duration, log *slog.Logger) (gateway.Store, error) {
	if url == "" {
		return memory.New(), nil
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	st, err := postgres.New(postgres.Config{URL: url, Logger: log, QueryTimeout: queryTimeout})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := st.Start(ctx); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return st, nil
}

// assemble seeds the store and builds the cache, admin API and edge.
func assemble(ctx context.Context, cfg *config.Config, eng *rego.Engine, st gateway.Store, opts Options, log *slog.Logger) (*Gateway, error) {
	keys := make([]gateway.Key, len(cfg.Keys))
	for i, k := range cfg.Keys {
		keys[i] = k.Key
	}
	if err := st.Upsert(ctx, cfg.Teams, cfg.Users, keys); err != nil {
		return nil, fmt.Errorf("seed principals from config: %w", err)
	}
	cc := opts.Cache
	cc.Store = st
	cache, err := authcache.New(cc)
	if err != nil {
		return nil, err
	}
	// The subscription lives as long as the gateway, not as long as ctx.
	subCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) (*Gateway, error) { stop(); return nil, err }
	if err := st.Subscribe(subCtx, cache.Invalidate); err != nil {
		return fail(fmt.Errorf("subscribe to store changes: %w", err))
	}
	// The decision log is opened below; its drop counter is read at scrape
	// time, after Build.
	var dlog *decisionlog.Logger
	metrics, err := newMetrics(cfg, cache, eng, func() uint64 { return dlog.Dropped() }, opts)
	if err != nil {
		return fail(err)
	}
	var usage gateway.UsageStore = memory.NewUsage()
	if pg, ok := st.(*postgres.Store); ok {
		usage = pg.Usage()
	}
	lcfg := limits.Config{Shared: usage, Logger: log, Now: opts.Now}
	if metrics != nil {
		lcfg.Observer = metrics
	}
	lim := limits.New(lcfg)
	if err := lim.Start(ctx); err != nil {
		return fail(fmt.Errorf("usage: %w", err))
	}
	eng.SetSpendReader(lim)
	fail = func(err error) (*Gateway, error) {
		stop()
		_ = lim.Close(context.Background())
		return nil, err
	}
	rcfg := router.Config{Settings: cfg.Router, Share: lim.Share}
	pcfg := proxy.Config{Transport: opts.Transport, Logger: log, TracerProvider: opts.TracerProvider,
		MaxResponseBytes: opts.Bounds.MaxUpstreamResponseBytes}
	if metrics != nil {
		pcfg.Observer, rcfg.Observer = metrics.ObserveUpstream, metrics
	}
	pcfg.Router = router.New(rcfg)
	px, err := proxy.New(pcfg)
	if err != nil {
		return fail(err)
	}
	adm, err := admin.New(admin.Config{Store: st, Catalog: cfg.Catalog, Authorizer: eng, Logger: log, Reports: lim, Spend: lim, Now: opts.Now, Unserved: cfg.UnservedName})
	if err != nil {
		return fail(err)
	}
	draining := new(atomic.Bool)
	var authz gateway.Authorizer = eng
	dlog, dlogCloser, err := openDecisionLog(cfg, opts, eng, eng, log)
	if err != nil {
		return fail(err)
	}
	if dlog != nil {
		authz = dlog
		fail = func(err error) (*Gateway, error) {
			stop()
			_ = lim.Close(context.Background())
			_ = dlog.Close(context.Background())
			if dlogCloser != nil {
				_ = dlogCloser.Close()
			}
			return nil, err
		}
	}
	hcfg := httpapi.Config{
		Resolver: cfg.Catalog,
		Authorizer: telemetry.NewAuthorizer(telemetry.AuthorizerConfig{
			Next: authz, TracerProvider: opts.TracerProvider, Metrics: metrics, Revision: eng.Revision,
		}),
		Store:          cache,
		Upstream:       px,
		Admin:          adm,
		Policy:         policyAdmin{eng},
		MasterKey:      cfg.MasterKey,
		MaxBodyBytes:   cfg.MaxRequestBodyBytes,
		TrustedProxies: cfg.TrustedProxies,
		Logger:         log,
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return errDraining
			}
			return st.Ping(ctx)
		},
		TracerProvider: opts.TracerProvider,
		Now:            opts.Now,
		Limiter:        lim,
		Fallbacks:      &cfg.Router,
	}
	if metrics != nil {
		hcfg.Observer, hcfg.Metrics, hcfg.UsageObserver = metrics, metrics.Handler(), metrics
		hcfg.FallbackObserver = metrics
	}
	h, err := httpapi.New(hcfg)
	if err != nil {
		return fail(err)
	}
	listen := opts.Listen
	if listen == "" {
		listen = DefaultListen
	}
	_, durable := st.(*postgres.Store)
	return &Gateway{
		Config: cfg, Engine: eng, Store: st, Cache: cache, Handler: h, Durable: durable, Metrics: metrics,
		listen: listen, log: log, stop: stop, draining: draining, Limiter: lim,
		DecisionLog: dlog, dlogCloser: dlogCloser,
	}, nil
}

// Start listens and serves in the background.
func (g *Gateway) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g.ln = ln
	s := g.serving.withDefaults()
	g.srv = &http.Server{
		Handler: g.Handler,
		// No WriteTimeout and no ReadTimeout: they would cut long streams
		// and slow uploads (NOTES). Over TLS the header timeout bounds the
		// handshake too.
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout:       s.IdleTimeout,
		// net/http reads headerSlack bytes past MaxHeaderBytes before it
		// answers 431.
		MaxHeaderBytes: s.MaxHeaderBytes - headerSlack,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.done = make(chan error, 1)
	if g.cert != nil {
		g.srv.TLSConfig = g.cert.tlsConfig()
		go func() { g.done <- g.srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { g.done <- g.srv.Serve(ln) }()
	}
	g.Engine.Start(ctx)
	return nil
}

// Addr is the address the gateway listens on, after Start.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what remains.
// It then closes the store. Later calls return the first call's result.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.shutdownOnce.Do(func() { g.shutdownErr = g.shutdown(ctx) })
	return g.shutdownErr
}

func (g *Gateway) shutdown(ctx context.Context) error {
	defer g.Close()
	if g.srv == nil {
		return nil
	}
	err := g.srv.Shutdown(ctx)
	if err != nil {
		_ = g.srv.Close()
	}
	if serr := <-g.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Close ends the change subscription and closes the store. Shutdown calls
// it; call it directly only for a gateway that was never started.
func (g *Gateway) Close() {
	if g.stop != nil {
		g.stop()
	}
	g.closePolicy()
	if g.Limiter != nil {
		// The last usage counted reaches the store (SIGTERM, DESIGN §11).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := g.Limiter.Close(ctx); err != nil {
			g.log.Error("usage: last sync failed; the usage since the previous one is lost", "error", err)
		}
		cancel()
	}
	g.Store.Close()
}
