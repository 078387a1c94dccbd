package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/regate/gateway/gateway/config"
	"github.com/regate/gateway/gateway/telemetry"
	"github.com/regate/gateway/store/postgres"
)

// usage is printed for -h and unknown commands.
const usage = `usage: gateway [command] [flags]

commands:
  serve     run the gateway (default)
  check     validate a config and the policy, print warnings; exit 1 on errors
  migrate   apply the PostgreSQL schema migrations (needs --database-url)
  healthcheck  exit 0 when the gateway at --listen is ready (container health checks);
               over HTTPS when --tls-cert or GATEWAY_TLS_CERT is set, or when the
               gateway answers that it wants HTTPS (the certificate is not verified:
               the probe is local and sends nothing secret)
  version   print the version

flags (serve, check):
  --config FILE     config file (env GATEWAY_CONFIG); default: the embedded example config
  --listen ADDR     listen address (env GATEWAY_LISTEN); default 127.0.0.1:4000
  --bundle LOC      policy bundle: a directory, an OPA bundle .tar.gz or an
                    OPA bundle-service URL; repeatable (env GATEWAY_BUNDLE)
  --database-url U  PostgreSQL URL (env DATABASE_URL); default: the in-memory
                    store, which is not durable

flags (serve):
  --decision-log D      decision events to stdout, stderr or a file, or off
                        (env GATEWAY_DECISION_LOG); default gateway_settings.policy.decision_log
  --log-level L         debug, info, warn or error (env GATEWAY_LOG_LEVEL); default info
  --log-format F        json or text (env GATEWAY_LOG_FORMAT); default json
  --drain-delay D       after SIGTERM/SIGINT, serve on with readiness false for D
                        (env GATEWAY_DRAIN_DELAY); default 0s
  --shutdown-timeout D  then let in-flight requests and streams finish for up to D
                        (env GATEWAY_SHUTDOWN_TIMEOUT); default 30s
  --metrics=false       do not serve GET /metrics nor record metrics
                        (env GATEWAY_METRICS); default true
  --tls-cert FILE       serve HTTPS (and HTTP/2) with this PEM certificate chain
                        (env GATEWAY_TLS_CERT); needs --tls-key; SIGHUP reloads
                        both files for new connections; default plain HTTP
  --tls-key FILE        the certificate's PEM private key (env GATEWAY_TLS_KEY)
  --read-header-timeout D
                        time a client has to send its request headers and finish
                        the TLS handshake (env GATEWAY_READ_HEADER_TIMEOUT); default 10s
  --max-header-bytes N  request line and header bytes; more gets 431
                        (env GATEWAY_MAX_HEADER_BYTES); default 1048576 (1 MiB)
  --idle-timeout D      close keep-alive connections idle for D
                        (env GATEWAY_IDLE_TIMEOUT); default 2m0s
  None of the last three cuts a long stream.
  --max-upstream-response-bytes N
                        cut an upstream answer that is not a stream past N bytes
                        and cancel the call (env GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES);
                        default 67108864 (64 MiB); streams are not cut
  --bundle-fetch-timeout D
                        give up on a fetch of a bundle-service URL after D; a hanging
                        server never holds up other sources or reloads
                        (env GATEWAY_BUNDLE_FETCH_TIMEOUT); default 30s
  --database-query-timeout D
                        give up on a PostgreSQL store operation (key lookup, admin
                        write, usage sync) after D and answer 503
                        (env GATEWAY_DATABASE_QUERY_TIMEOUT); default 5s

Traces are exported over OTLP when the standard OTEL_* environment names an
exporter or endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER=otlp).

The master key comes from general_settings.master_key or GATEWAY_MASTER_KEY
(or LITELLM_MASTER_KEY).
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Main runs the gateway command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }

	fset := flag.NewFlagSet("gateway "+cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, usage) }
	opts := Options{Env: lookupEnv}
	var bundles stringList
	fset.StringVar(&opts.ConfigPath, "config", getenv("GATEWAY_CONFIG"), "config file")
	fset.StringVar(&opts.Listen, "listen", or(getenv("GATEWAY_LISTEN"), DefaultListen), "listen address")
	fset.Var(&bundles, "bundle", "policy bundle directory, .tar.gz or URL (repeatable)")
	fset.StringVar(&opts.DecisionLog, "decision-log", getenv("GATEWAY_DECISION_LOG"), "decision log destination")
	fset.StringVar(&opts.DatabaseURL, "database-url", getenv("DATABASE_URL"), "PostgreSQL URL")
	ops := addOpsFlags(fset, getenv)
	srvFlags := addServingFlags(fset, getenv, &opts.Serving)
	bndFlags := addBoundsFlags(fset, getenv, &opts.Bounds)

	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "gateway", Version())
		return 0
	case "serve", "check", "migrate", "healthcheck":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway %s: unexpected argument %q\n", cmd, fset.Arg(0))
		return 2
	}
	opts.Bundles = bundles
	if len(opts.Bundles) == 0 {
		if b := getenv("GATEWAY_BUNDLE"); b != "" {
			opts.Bundles = strings.Split(b, ",")
		}
	}
	switch cmd {
	case "check":
		return check(ctx, opts, stdout, stderr)
	case "migrate":
		return migrate(ctx, opts.DatabaseURL, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, opts.Listen, opts.Serving.TLS(), stdout, stderr)
	}
	if err := errors.Join(ops.validate(), srvFlags.validate(), bndFlags.validate()); err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	return serve(ctx, opts, ops, stderr)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// check validates a config and the policy without serving.
func check(ctx context.Context, opts Options, stdout, stderr io.Writer) int {
	name := or(opts.ConfigPath, EmbeddedConfigName)
	cfg, err := LoadConfig(opts)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			printWarnings(stdout, name, cerr.Warnings)
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	printWarnings(stdout, name, cfg.Warnings)
	printWarnings(stdout, name, cfg.Unpriced)
	notApplied := printSettings(stdout, name, cfg.Settings)
	eng, err := NewEngine(cfg, opts, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := CheckPrincipals(ctx, cfg, eng); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d deployments, %d not served, %d aliases, %d teams, %d users, %d keys; policy %s; %d settings not applied; %d warnings)\n",
		name, len(cfg.Deployments), len(cfg.Unserved), len(cfg.Aliases), len(cfg.Teams), len(cfg.Users), len(cfg.Keys), eng.Revision(),
		notApplied, len(cfg.Warnings)+len(cfg.Unpriced))
	return 0
}

// printSettings lists the router_settings and litellm_settings keys, each
// applied or not with what the gateway does instead, and returns how many
// are not applied.
func printSettings(w io.Writer, name string, settings []config.Setting) int {
	n := 0
	for _, s := range settings {
		if !s.Applied {
			n++
		}
		fmt.Fprintf(w, "%s:%d: setting: %s\n", name, s.Line, s)
	}
	return n
}

func printWarnings(w io.Writer, name string, ws []config.Warning) {
	for _, wn := range ws {
		fmt.Fprintf(w, "%s:%d: warning: %s\n", name, wn.Line, wn.Message)
	}
}

// serve runs the gateway until ctx ends, then drains.
func serve(ctx context.Context, opts Options, ops *opsOptions, stderr io.Writer) int {
	lw := telemetry.NewLogWriter(stderr, ops.LogFlushInterval)
	defer func() { _ = lw.Flush() }()
	log, err := telemetry.NewLogger(lw, ops.LogFormat, ops.LogLevel)
	if err != nil {
		fmt.Fprintln(lw, "gateway:", err)
		return 2
	}
	opts.Logger = log
	opts.DisableMetrics = !ops.Metrics
	tp, err := telemetry.NewTracerProvider(ctx, telemetry.TracingConfig{Env: opts.Env, ServiceVersion: Version()})
	if err != nil {
		fmt.Fprintln(lw, "gateway:", err)
		return 1
	}
	if tp != nil {
		opts.TracerProvider = tp
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(fctx); err != nil {
				log.Warn("flush traces", "error", err)
			}
		}()
	}
	g, err := Build(ctx, opts)
	if err != nil {
		fmt.Fprintln(lw, "gateway:", err)
		return 1
	}
	for _, w := range g.Config.Warnings {
		log.Warn("config", "line", w.Line, "warning", w.Message)
	}
	for _, w := range g.Config.Unpriced {
		log.Warn("config", "line", w.Line, "warning", w.Message)
	}
	for _, s := range g.Config.Settings {
		if !s.Applied {
			log.Warn("config setting not applied", "line", s.Line, "setting", s.Name, "note", s.Note)
		}
	}
	// Catch SIGHUP before the listener opens: its default action would end
	// the process, so one sent as soon as the gateway answers must reload.
	reloadOnHUP(ctx, g, log)
	if err := g.Start(ctx); err != nil {
		fmt.Fprintln(lw, "gateway:", err)
		return 1
	}
	log.Info("gateway listening", "addr", g.Addr(), "tls", g.TLS(), "version", Version(),
		"config", or(opts.ConfigPath, EmbeddedConfigName),
		"deployments", len(g.Config.Deployments), "policy_revision", g.Engine.Revision())
	if g.TLS() {
		log.Info("serving HTTPS and HTTP/2; SIGHUP reloads the certificate", g.cert.logAttrs()...)
	}
	if g.Durable {
		log.Info("using the PostgreSQL store")
	} else {
		log.Warn("using the in-memory store: keys, teams and users written through the API are lost on exit (set DATABASE_URL for PostgreSQL)")
	}
	if tp != nil {
		log.Info("exporting traces over OTLP")
	}
	<-ctx.Done()
	return drainAndStop(ctx, g, ops, log)
}

// migrate applies the schema migrations and reports the version.
func migrate(ctx context.Context, url string, stdout, stderr io.Writer) int {
	if url == "" {
		fmt.Fprintln(stderr, "gateway migrate: no database: set --database-url or DATABASE_URL")
		return 1
	}
	if err := postgres.Migrate(ctx, url); err != nil {
		fmt.Fprintln(stderr, "gateway migrate:", err)
		return 1
	}
	cur, _, err := postgres.SchemaVersion(ctx, url)
	if err != nil {
		fmt.Fprintln(stderr, "gateway migrate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "database schema at version %d\n", cur)
	return 0
}

// Version is the module version the binary was built from, or "devel".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
