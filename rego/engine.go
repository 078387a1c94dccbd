// Package rego evaluates the gateway's policy with an embedded OPA.
//
// An Engine compiles policy bundles (the embedded default from package
// bundles, custom ones beside it or in its place), prepares the entry-point
// queries once per bundle revision, and evaluates them per request with an
// input document built directly as an OPA value (DESIGN §3 step 5, §6, §8).
// The compiled state sits behind an atomic pointer: Load builds a new one off
// the request path and swaps it in only when it compiled.
//
// Evaluation fails closed: an error, a timeout, an undefined or malformed
// result all come back as a deny decision together with the error.
package rego

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/regate/gateway/gateway"
)

// Entry points of the policy contract (DESIGN §6).
const (
	// DecisionQuery is the decision for one request.
	DecisionQuery = "data.gateway.authz.decision"
	// VisibleModelsQuery is the set of candidate ids the caller may see.
	VisibleModelsQuery = "data.gateway.authz.visible_models"
	// LayersQuery is the per-layer model rule report for input.model. It is
	// optional: a replacement bundle may leave it out.
	LayersQuery = "data.gateway.authz.layers"
)

// DefaultEvalTimeout bounds one evaluation when Config.EvalTimeout is zero.
const DefaultEvalTimeout = time.Second

// Errors of evaluation. Each comes with a deny decision.
var (
	// ErrUndefined means the entry point had no value for the input.
	ErrUndefined = errors.New("policy result is undefined")
	// ErrMalformed means the result did not have the contract's shape.
	ErrMalformed = errors.New("policy result is malformed")
	// ErrNoLayers means the loaded policy has no LayersQuery rule.
	ErrNoLayers = errors.New("policy has no layers rule")
)

// Config configures an Engine.
type Config struct {
	// Bundles are the policy bundles, each a file system rooted at the
	// bundle's top directory (where its .manifest is). Nil or empty means
	// bundles.Default alone. Otherwise the default bundle loads beside them,
	// unless one of them claims the gateway/authz root and so replaces it; a
	// bundle without a manifest claims every root.
	Bundles []fs.FS
	// Logger receives policy load events; nil discards them.
	Logger *slog.Logger
	// EvalTimeout bounds one evaluation; zero means DefaultEvalTimeout.
	EvalTimeout time.Duration
	// NoSpecialise turns off the per-principal partial evaluation of the
	// entry points (partial.go): every request then evaluates the general
	// policy. For comparisons and troubleshooting; results are the same.
	NoSpecialise bool
}

// Engine evaluates the policy. It implements gateway.Authorizer and is safe
// for concurrent use. Create it with New.
type Engine struct {
	log     *slog.Logger
	timeout time.Duration
	special bool // specialise the policy per principal
	cur     atomic.Pointer[state]
	loadMu  sync.Mutex // serialises Load
	cands   candidateCache
	keys    recordCache[gateway.Key]
	teams   recordCache[gateway.Team]
	users   recordCache[gateway.User]
}

var _ gateway.Authorizer = (*Engine)(nil)

// state is everything one bundle revision needs, swapped as a whole.
type state struct {
	revision string
	bundles  []BundleInfo
	loadedAt time.Time
	decision oparego.PreparedEvalQuery
	visible  oparego.PreparedEvalQuery
	layers   *oparego.PreparedEvalQuery // nil when the policy has no layers rule
	spec     *specCache                 // per-principal residual queries
}

// New compiles the configured bundles and prepares the entry-point queries.
func New(cfg Config) (*Engine, error) {
	e := &Engine{log: cfg.Logger, timeout: cfg.EvalTimeout, special: !cfg.NoSpecialise}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.timeout <= 0 {
		e.timeout = DefaultEvalTimeout
	}
	if err := e.Load(cfg.Bundles...); err != nil {
		return nil, err
	}
	return e, nil
}

// Load compiles fsys as the policy (the same rules as Config.Bundles) and
// swaps it in atomically. On any error the current policy keeps serving.
func (e *Engine) Load(fsys ...fs.FS) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	st, err := build(context.Background(), fsys, e.timeout)
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	e.cur.Store(st)
	e.log.Info("policy loaded", "revision", st.revision, "bundles", len(st.bundles))
	return nil
}

// build reads, compiles and prepares a new state; timeout bounds each
// per-principal specialisation.
func build(ctx context.Context, fss []fs.FS, timeout time.Duration) (*state, error) {
	lbs, err := readBundles(fss, false)
	if err != nil {
		return nil, err
	}
	compiler, store, err := activate(ctx, lbs)
	if err != nil {
		return nil, err
	}
	st := &state{loadedAt: time.Now(), spec: newSpecCache(compiler, store, timeout)}
	revs := make([]string, 0, len(lbs))
	for _, lb := range lbs {
		st.bundles = append(st.bundles, lb.info)
		revs = append(revs, lb.info.Revision)
	}
	st.revision = strings.Join(revs, ",")
	if st.decision, err = prepare(ctx, compiler, store, DecisionQuery); err != nil {
		return nil, err
	}
	if st.visible, err = prepare(ctx, compiler, store, VisibleModelsQuery); err != nil {
		return nil, err
	}
	if len(compiler.GetRulesExact(ast.MustParseRef(LayersQuery))) > 0 {
		q, err := prepare(ctx, compiler, store, LayersQuery)
		if err != nil {
			return nil, err
		}
		st.layers = &q
	}
	return st, nil
}

// rawTerm makes results come back as OPA terms, not Go values: the engine
// checks their shape itself and skips a conversion.
func rawTerm(t *ast.Term, _ *oparego.EvalContext) (any, error) { return t, nil }

func prepare(ctx context.Context, c *ast.Compiler, s storage.Store, query string) (oparego.PreparedEvalQuery, error) {
	q, err := oparego.New(
		oparego.Query(query),
		oparego.Compiler(c),
		oparego.Store(s),
		oparego.Capabilities(Capabilities()),
		oparego.SetRegoVersion(ast.RegoV1),
		oparego.GenerateJSON(rawTerm),
	).PrepareForEval(ctx)
	if err != nil {
		return q, fmt.Errorf("prepare %s: %w", query, err)
	}
	return q, nil
}

// Revision identifies the policy now serving: the loaded bundles' revisions
// joined with ",".
func (e *Engine) Revision() string { return e.cur.Load().revision }

// Bundles describes the loaded bundles, in load order.
func (e *Engine) Bundles() []BundleInfo { return slices.Clone(e.cur.Load().bundles) }

// LoadedAt is when the policy now serving was loaded.
func (e *Engine) LoadedAt() time.Time { return e.cur.Load().loadedAt }

// Decide evaluates DecisionQuery. On any failure it returns the error and a
// deny (403 permission_denied); callers treat any error as a deny.
func (e *Engine) Decide(ctx context.Context, in *gateway.Input) (gateway.Decision, error) {
	if in == nil {
		return failClosed(), errors.New("decide: nil input")
	}
	st := e.cur.Load()
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	q := st.decision
	if sp := e.specialised(ctx, st, in, key, team, user); sp != nil && sp.decision != nil {
		q = *sp.decision
	}
	t, err := e.eval(ctx, q, e.inputWith(in, key, team, user))
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	d, err := parseDecision(t)
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	return d, nil
}

// VisibleModels evaluates VisibleModelsQuery over in.Candidates in one
// evaluation. Only ids of in.Candidates are returned. On any failure it
// returns the error and an empty set.
func (e *Engine) VisibleModels(ctx context.Context, in *gateway.Input) (map[string]struct{}, error) {
	if in == nil {
		return map[string]struct{}{}, errors.New("visible models: nil input")
	}
	if in.Candidates == nil || len(in.Candidates.Items) == 0 {
		return map[string]struct{}{}, nil
	}
	st := e.cur.Load()
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	// The list is not specialised: narrowing it through
	// input.candidate_index is a few set operations either way.
	t, err := e.eval(ctx, st.visible, e.inputWith(in, key, team, user))
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	ids, err := parseVisible(t, e.cands.get(in.Candidates).ids)
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	return ids, nil
}

// specialised returns the principal's residual queries under st, or nil
// when specialisation is off.
func (e *Engine) specialised(ctx context.Context, st *state, in *gateway.Input, key, team, user *ast.Term) *specialised {
	if !e.special {
		return nil
	}
	var k specKey
	if p := in.Principal; p != nil {
		k = specKey{key: p.Key, team: p.Team, user: p.User}
	}
	return st.spec.get(ctx, k, key, team, user)
}

// Layer is one layer of the model rule for input.model (LayersQuery).
type Layer struct {
	// Layer is "key", "team" or "user".
	Layer string `json:"layer"`
	// Restricts is false when the layer's list is empty (or the team or user
	// is absent).
	Restricts bool `json:"restricts"`
	// Allowed tells whether the layer permits the model.
	Allowed bool `json:"allowed"`
	// MatchedEntry is the first entry of the layer's list that permitted the
	// model; empty when none did.
	MatchedEntry string `json:"matched_entry"`
}

// layerOrder is the order Layers reports in.
var layerOrder = []string{"key", "team", "user"}

// Layers evaluates LayersQuery for in.Model: for the explain endpoint. It
// returns ErrNoLayers when the loaded policy does not define it.
func (e *Engine) Layers(ctx context.Context, in *gateway.Input) ([]Layer, error) {
	if in == nil {
		return nil, errors.New("layers: nil input")
	}
	st := e.cur.Load()
	if st.layers == nil {
		return nil, ErrNoLayers
	}
	v, err := e.inputValue(in)
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	t, err := e.eval(ctx, *st.layers, v)
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	ls, err := parseLayers(t)
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	return ls, nil
}

// eval runs one prepared query under the engine's timeout and returns the
// value of its single expression.
func (e *Engine) eval(ctx context.Context, q oparego.PreparedEvalQuery, input ast.Value) (*ast.Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// An external cancel with context.AfterFunc instead of the goroutine
	// OPA would start for every evaluation.
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	rs, err := q.Eval(ctx, oparego.EvalParsedInput(input), oparego.EvalExternalCancel(c))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, ErrUndefined
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok || t == nil {
		return nil, fmt.Errorf("%w: unexpected result type %T", ErrMalformed, rs[0].Expressions[0].Value)
	}
	return t, nil
}

// failClosed is the decision returned with every evaluation error.
func failClosed() gateway.Decision {
	return gateway.Decision{
		Allow:   false,
		Status:  403,
		Code:    gateway.CodePermissionDenied,
		Message: "The request was denied by policy.",
		Reasons: []string{"engine: policy evaluation failed"},
	}
}
