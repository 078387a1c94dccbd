package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	// Policies name time zones (time.clock, time.weekday); embed the zone
	// database so they work in images without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/config"
	"github.com/regate/gateway/gateway/decisionlog"
	"github.com/regate/gateway/rego"
)

// engineConfig turns the policy settings of cfg and opts into the engine's
// configuration. --bundle locations replace gateway_settings.policy.bundle.
func engineConfig(cfg *config.Config, opts Options, log *slog.Logger) (rego.Config, error) {
	locs := opts.Bundles
	if len(locs) == 0 {
		locs = cfg.PolicyBundles
	}
	rc := rego.Config{
		Sources:      locs,
		Logger:       log,
		RunTests:     cfg.Policy.RunTests,
		PollInterval: cfg.Policy.PollInterval,
		// Zero leaves the engine's default (1s).
		FilePollInterval: cfg.Policy.FilePollInterval,
		// Zero leaves the engine's default (30s).
		FetchTimeout: opts.Bounds.BundleFetchTimeout,
	}
	if v := cfg.Policy.Verification; v != nil {
		key := v.Key.Reveal()
		if !strings.HasPrefix(v.Algorithm, "HS") && !strings.HasPrefix(strings.TrimSpace(key), "-----BEGIN") {
			b, err := os.ReadFile(key)
			if err != nil {
				return rc, fmt.Errorf("policy verification key: %w", err)
			}
			key = string(b)
		}
		rc.Verification = &rego.Verification{KeyID: v.KeyID, Key: key, Algorithm: v.Algorithm, Scope: v.Scope}
	}
	return rc, nil
}

// openDecisionLog starts the decision log Options or the config ask for,
// around authz; nil when there is none. The returned closer closes the
// destination file, if any, after the logger has drained.
func openDecisionLog(cfg *config.Config, opts Options, authz gateway.Authorizer, eng *rego.Engine, log *slog.Logger) (*decisionlog.Logger, io.Closer, error) {
	out, closer := opts.DecisionLogOutput, io.Closer(nil)
	dest := or(opts.DecisionLog, cfg.Policy.DecisionLog)
	if out == nil {
		switch dest {
		case "", "off":
			return nil, nil, nil
		case "stdout", "-":
			out = os.Stdout
		case "stderr":
			out = os.Stderr
		default:
			f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				return nil, nil, fmt.Errorf("decision log: %w", err)
			}
			out, closer = f, f
		}
	}
	dl, err := decisionlog.New(decisionlog.Config{Authorizer: authz, Output: out, Revision: eng.Revision, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	dl.Start()
	return dl, closer, nil
}

// policyAdmin serves the policy admin endpoints from the engine.
type policyAdmin struct{ eng *rego.Engine }

func (p policyAdmin) PolicyStatus() any { return p.eng.Status() }

func (p policyAdmin) Explain(ctx context.Context, in *gateway.Input) (any, error) {
	return p.eng.Explain(ctx, in)
}

// closePolicy stops the bundle watcher and drains the decision log.
func (g *Gateway) closePolicy() {
	g.Engine.Close()
	if g.DecisionLog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.DecisionLog.Close(ctx); err != nil {
			g.log.Warn("decision log: events left unwritten", "error", err)
		}
	}
	if g.dlogCloser != nil {
		_ = g.dlogCloser.Close()
	}
}
