// Package app wires the gateway's adapters together: configuration, catalog,
// policy engine, store, proxy and HTTP edge. cmd/gateway calls Main; tests
// call Build and Start to boot the real wiring on a free port.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/regate/gateway/examples"
	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/config"
	"github.com/regate/gateway/gateway/httpapi"
	"github.com/regate/gateway/gateway/proxy"
	"github.com/regate/gateway/rego"
	"github.com/regate/gateway/store/memory"
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
	// Bundles are policy bundle directories replacing or extending the
	// embedded default; empty means the default alone.
	Bundles []string
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Transport is the upstream HTTP transport; nil means the proxy default.
	Transport http.RoundTripper
}

// Gateway is a wired gateway, ready to Start.
type Gateway struct {
	// Config is the loaded configuration.
	Config *config.Config
	// Engine is the policy engine.
	Engine *rego.Engine
	// Store is the principal store.
	Store *memory.Store
	// Handler is the HTTP edge.
	Handler http.Handler

	listen string
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	done   chan error
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
	dirs := opts.Bundles
	if len(dirs) == 0 {
		dirs = cfg.PolicyBundles
	}
	var fss []fs.FS
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("policy bundle: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy bundle %s: not a directory", d)
		}
		fss = append(fss, os.DirFS(d))
	}
	eng, err := rego.New(rego.Config{Bundles: fss, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return eng, nil
}

// Build loads the configuration, compiles the policy, validates every
// configured principal against it, seeds the store and builds the handler.
// It does not listen; Start does.
func Build(ctx context.Context, opts Options) (*Gateway, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := LoadConfig(opts)
	if err != nil {
		return nil, err
	}
	eng, err := NewEngine(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	if err := CheckPrincipals(ctx, cfg, eng); err != nil {
		return nil, err
	}
	st := memory.New()
	if err := Seed(ctx, st, cfg); err != nil {
		return nil, err
	}
	px, err := proxy.New(proxy.Config{Transport: opts.Transport, Logger: log})
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(httpapi.Config{
		Resolver:     cfg.Catalog,
		Authorizer:   eng,
		Store:        st,
		Upstream:     px,
		MasterKey:    cfg.MasterKey,
		MaxBodyBytes: cfg.MaxRequestBodyBytes,
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	listen := opts.Listen
	if listen == "" {
		listen = DefaultListen
	}
	return &Gateway{Config: cfg, Engine: eng, Store: st, Handler: h, listen: listen, log: log}, nil
}

// Seed writes the configured teams, users and keys into the store.
func Seed(ctx context.Context, st *memory.Store, cfg *config.Config) error {
	for _, t := range cfg.Teams {
		if err := st.PutTeam(ctx, t); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	for _, u := range cfg.Users {
		if err := st.PutUser(ctx, u); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	for _, k := range cfg.Keys {
		if err := st.PutKey(ctx, k.Key); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// Start listens and serves in the background.
func (g *Gateway) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g.ln = ln
	g.srv = &http.Server{
		Handler: g.Handler,
		// No WriteTimeout: it would cut long streams (NOTES).
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.done = make(chan error, 1)
	go func() { g.done <- g.srv.Serve(ln) }()
	return nil
}

// Addr is the address the gateway listens on, after Start.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what remains.
func (g *Gateway) Shutdown(ctx context.Context) error {
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
