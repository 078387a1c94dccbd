package rego

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regate/gateway/gateway"
)

// ErrBadEntryPoint means an entry point gave a value of the wrong shape (or
// none) for one of the probe inputs a new policy is checked with.
var ErrBadEntryPoint = errors.New("policy entry point has the wrong shape")

// ErrTestsFailed means a bundle's own Rego tests failed.
var ErrTestsFailed = errors.New("bundle tests failed")

// probeTime is the input.now of the probes: fixed, so a check is repeatable.
var probeTime = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// probes are the inputs a new policy must answer with a well-formed
// decision before it is swapped in: a health check, a model call by an
// ordinary key, a model list and an admin call. They catch a decision that
// is not an object, has no default, or a visible_models that is not a set —
// mistakes that would otherwise fail every request closed.
func probes() []*gateway.Input {
	key := &gateway.Key{ID: "probe", Alias: "probe"}
	p := &gateway.Principal{Key: key}
	return []*gateway.Input{
		{Request: gateway.RequestInfo{ID: "probe-health", Route: gateway.RouteHealth, Operation: "health.liveliness", Method: "GET", Path: "/health/liveliness"}, Now: probeTime},
		{
			Request:   gateway.RequestInfo{ID: "probe-inference", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions"},
			Principal: p,
			Model: &gateway.Resolution{
				Requested: "probe-model", Found: true, Resolved: "probe-model",
				Chain: []gateway.ChainLink{{Name: "probe-model", Kind: gateway.LinkModelGroup}, {Name: "mock/probe-model", Kind: gateway.LinkProviderModel}},
				Names: []string{"probe-model", "mock/probe-model"},
			},
			Now: probeTime,
		},
		{Request: gateway.RequestInfo{ID: "probe-list", Route: gateway.RouteModelsList, Operation: "models.list", Method: "GET", Path: "/v1/models"}, Principal: p, Now: probeTime},
		{Request: gateway.RequestInfo{ID: "probe-admin", Route: gateway.RouteAdmin, Operation: "key.list", Method: "GET", Path: "/key/list"}, Principal: p, Now: probeTime},
	}
}

// probeCandidates is the candidate list of the visible_models probe.
var probeCandidates = &gateway.CandidateList{Items: []gateway.Candidate{
	{ID: "probe-model", Names: []string{"probe-model", "mock/probe-model"}},
}}

// check evaluates the general (unspecialised) entry points of st on the
// probe inputs and refuses a policy whose answers do not parse.
func (e *Engine) check(ctx context.Context, st *state) error {
	for _, in := range probes() {
		v, err := e.inputValueFor(st, in)
		if err != nil {
			return err
		}
		t, err := e.eval(ctx, st.decision, v)
		if err != nil {
			return fmt.Errorf("%w: %s for a %s request: %w", ErrBadEntryPoint, DecisionQuery, in.Request.Route, err)
		}
		if _, err := parseDecision(t); err != nil {
			return fmt.Errorf("%w: %s for a %s request: %w", ErrBadEntryPoint, DecisionQuery, in.Request.Route, err)
		}
	}
	in := probes()[2]
	in.Candidates = probeCandidates
	v, err := e.inputValueFor(st, in)
	if err != nil {
		return err
	}
	t, err := e.eval(ctx, st.visible, v)
	if errors.Is(err, ErrUndefined) {
		return nil // an empty partial set is undefined: nothing visible
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadEntryPoint, VisibleModelsQuery, err)
	}
	if _, err := parseVisible(t, func(string) bool { return false }); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadEntryPoint, VisibleModelsQuery, err)
	}
	return nil
}

// checkTests runs the Rego tests of the bundles given and refuses them when
// one fails, naming at most five failures.
func checkTests(ctx context.Context, ins []bundleInput) error {
	results, err := runTests(ctx, ins)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTestsFailed, err)
	}
	var failed []string
	for _, r := range results {
		if !r.Passed {
			failed = append(failed, r.String())
		}
	}
	n := len(failed)
	if n == 0 {
		return nil
	}
	if n > 5 {
		failed = append(failed[:5], fmt.Sprintf("and %d more", n-5))
	}
	return fmt.Errorf("%w: %d of %d: %s", ErrTestsFailed, n, len(results), strings.Join(failed, "; "))
}
