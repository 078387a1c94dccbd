package rego

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/regate/gateway/gateway"
)

// Per-principal specialisation (DESIGN §8).
//
// A principal's records change rarely and are immutable (a changed record is
// a new pointer), while every request repeats the same work on them: reading
// the allow-lists, compiling them into sets, checking roles and expiry. So
// the first request of a principal partially evaluates the decision
// entry point with input.key, input.team and input.user known and the rest
// of the input unknown. The residual policy has the principal's lists as
// constants; it is compiled on its own and cached for the principal. Every
// later request of the principal evaluates the residual with the full
// input, which gives the same result as the general query.
//
// visible_models is not specialised: through input.candidate_index it is a
// few set operations, and its residual would keep comprehensions over the
// list that cost more than the general rule.
//
// When partial evaluation fails, or leaves a reference to a rule it could
// not specialise (OPA keeps rules with else and functions called inside
// comprehensions whole), the principal is served by the general query.

// specCacheSize bounds the specialisations kept per policy revision. When
// the cache is full it starts over, like the record caches.
const specCacheSize = 1024

// peNamespace is where partial evaluation puts the support rules, and
// peResult the rule that collects the residual queries.
const (
	peNamespace = "gateway_pe_support"
	peResult    = "data.gateway_pe.r"
)

// peUnknowns are the parts of the input a principal does not fix.
var peUnknowns = []string{"input.request", "input.model", "input.candidates", "input.candidate_index", "input.now"}

// peNoInline are rules of the default policy that partial evaluation keeps
// as (specialised) support rules instead of inlining them where they are
// used. Inlined, a rule used under "not" or in several branches is copied
// into each, and every copy is evaluated on every request; kept, it is
// evaluated once per request (OPA caches rule values within an
// evaluation). The reasons of a deny would otherwise be multiplied out into
// one branch per combination of layer verdicts. Names a policy does not
// define are ignored.
var peNoInline = []string{
	"data.gateway.authz._allow_reason",
	"data.gateway.authz._denial",
	"data.gateway.authz._model_allowed",
	"data.gateway.authz._model_key_ok",
	"data.gateway.authz._model_team_ok",
	"data.gateway.authz._model_user_ok",
	"data.gateway.authz._admin_reason",
	"data.gateway.authz._admin_denied",
	"data.gateway.authz._model_denied",
	"data.gateway.authz._model_reasons",
	"data.gateway.authz._model_not_found_message",
	"data.gateway.authz._denied_layer_reason",
	"data.gateway.authz._key_hits",
	"data.gateway.authz._team_hits",
	"data.gateway.authz._user_hits",
}

// specKey identifies a principal by its records.
type specKey struct {
	key  *gateway.Key
	team *gateway.Team
	user *gateway.User
}

// specialised holds one principal's residual queries; a nil query means the
// general one serves (partial evaluation failed for it).
type specialised struct {
	decision *oparego.PreparedEvalQuery
}

// specCache caches specialisations for one policy revision.
type specCache struct {
	timeout  time.Duration // bounds one specialisation
	compiler *ast.Compiler
	store    storage.Store
	m        sync.Map // specKey → *specialised
	n        atomic.Int64
	// errs counts principals whose specialisation failed, for tests.
	errs atomic.Int64
}

func newSpecCache(c *ast.Compiler, s storage.Store, timeout time.Duration) *specCache {
	return &specCache{compiler: c, store: s, timeout: timeout}
}

// get returns the specialisation of the principal whose records are k and
// whose converted records are key, team and user, building it on first use.
func (c *specCache) get(ctx context.Context, k specKey, key, team, user *ast.Term) *specialised {
	if sp, ok := c.m.Load(k); ok {
		return sp.(*specialised)
	}
	known := ast.NewObject(
		[2]*ast.Term{kKey, key},
		[2]*ast.Term{kTeam, team},
		[2]*ast.Term{kUser, user},
	)
	// The specialisation is built once for all requests of the principal:
	// the request's deadline does not apply to it, the evaluation timeout
	// does (partial evaluation runs whatever depends on the principal
	// alone). One that fails or times out is remembered as a failure: the
	// principal is served by the general policy.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	sp := &specialised{}
	var err error
	if sp.decision, err = c.specialise(ctx, DecisionQuery, known); err != nil {
		c.errs.Add(1)
		sp.decision = nil
	}
	if _, loaded := c.m.LoadOrStore(k, sp); !loaded && c.n.Add(1) > specCacheSize {
		c.m.Clear()
		c.n.Store(0)
		c.m.Store(k, sp)
		c.n.Add(1)
	}
	return sp
}

// errNotSpecialised means the residual still needs rules of the general
// policy.
var errNotSpecialised = errors.New("residual policy refers to unspecialised rules")

// specialise partially evaluates query with the known principal and
// prepares the residual, compiled on its own.
func (c *specCache) specialise(ctx context.Context, query string, known ast.Object) (*oparego.PreparedEvalQuery, error) {
	pq, err := oparego.New(
		oparego.Query("result = "+query),
		oparego.Compiler(c.compiler),
		oparego.Store(c.store),
		oparego.Capabilities(Capabilities()),
		oparego.SetRegoVersion(ast.RegoV1),
		oparego.Unknowns(peUnknowns),
		oparego.ParsedInput(known),
		oparego.PartialNamespace(peNamespace),
		oparego.DisableInlining(peNoInline),
	).Partial(ctx)
	if err != nil {
		return nil, fmt.Errorf("partial evaluation of %s: %w", query, err)
	}
	mod := &ast.Module{Package: &ast.Package{Path: ast.MustParseRef("data.gateway_pe")}}
	modules := map[string]*ast.Module{"__gateway_pe__": mod}
	for _, body := range pq.Queries {
		if err := selfContained(body); err != nil {
			return nil, err
		}
		mod.Rules = append(mod.Rules, &ast.Rule{
			Head:   ast.NewHead(ast.Var("r"), nil, ast.VarTerm("result")),
			Body:   body,
			Module: mod,
		})
	}
	for i, m := range pq.Support {
		if err := selfContained(m); err != nil {
			return nil, err
		}
		modules[fmt.Sprintf("__gateway_pe_support_%d__", i)] = m
	}
	compiler := newCompiler(Capabilities())
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile residual of %s: %w", query, compiler.Errors)
	}
	q, err := oparego.New(
		oparego.ParsedQuery(residualQuery(pq.Queries)),
		oparego.Compiler(compiler),
		oparego.Store(c.store),
		oparego.Capabilities(Capabilities()),
		oparego.SetRegoVersion(ast.RegoV1),
		oparego.GenerateJSON(rawTerm),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare residual of %s: %w", query, err)
	}
	return &q, nil
}

// residualQuery is the query that evaluates the residual: the rule that
// collects the residual queries, or, when partial evaluation left the one
// query "<ref> = result", the reference itself (a rule evaluation less per
// request).
func residualQuery(queries []ast.Body) ast.Body {
	if len(queries) == 1 && len(queries[0]) == 1 {
		e := queries[0][0]
		if e.IsEquality() && !e.Negated && len(e.With) == 0 {
			lhs, rhs := e.Operand(0), e.Operand(1)
			if _, ok := lhs.Value.(ast.Ref); ok && rhs.Equal(ast.VarTerm("result")) {
				return ast.NewBody(ast.NewExpr(lhs))
			}
		}
	}
	return ast.MustParseBody(peResult)
}

// selfContained checks that x refers to no data outside the support
// namespace: a rule partial evaluation kept whole (or a base document) would
// be missing from the residual's own compiler and read as undefined.
func selfContained(x any) error {
	var err error
	ast.WalkRefs(x, func(r ast.Ref) bool {
		if err != nil || !r.HasPrefix(ast.DefaultRootRef) {
			return false
		}
		if len(r) < 2 || !r[1].Equal(ast.StringTerm(peNamespace)) {
			err = fmt.Errorf("%w: %v", errNotSpecialised, r)
		}
		return false
	})
	return err
}
