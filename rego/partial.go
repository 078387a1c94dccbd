package rego

import (
	"context"
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
// the first request of a principal queues it to have the decision entry
// point partially evaluated, off the request path, with input.key,
// input.team and input.user known and the rest of the input unknown. The residual policy has the principal's lists as
// constants; it is compiled on its own and cached for the principal. Every
// later request of the principal evaluates the residual with the full
// input, which gives the same result as the general query.
//
// visible_models is not specialised: through input.candidate_index it is a
// few set operations, and its residual would keep comprehensions over the
// list that cost more than the general rule.
//
// Rules partial evaluation keeps whole (rules with else, functions called
// inside comprehensions, a custom deny set iterated in a comprehension) are
// compiled into the residual as written (keptWhole) and evaluated on the
// full input. When partial evaluation fails or times out, the principal is
// served by the general query.

// specCacheSize bounds the specialisations kept per policy revision. One
// takes about 0.4 MB (its residual's compiler), so the cache holds about
// 100 MB at most. When it is full, principals not used since the last sweep
// are dropped (second chance).
const specCacheSize = 256

// specDuty bounds the share of one CPU the worker spends building
// specialisations while more are queued: after a build that took d it
// pauses d*(1/specDuty-1). A new policy, or more busy principals than the
// cache holds, then cannot take a core away from requests.
const specDuty = 0.25

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
	// expired is the key's key.expired: its residual differs once it has
	// expired.
	expired bool
}

// specialised holds one principal's residual query; a nil query means the
// general one serves (partial evaluation failed for it). Its fields are
// set before ready, and read only after it.
type specialised struct {
	ready    atomic.Bool
	used     atomic.Bool // since the last sweep (evict)
	decision *oparego.PreparedEvalQuery
	// memo remembers decisions when the residual allows it (memo.go); nil
	// otherwise.
	memo *decisionMemo
}

// specQueueSize bounds the principals waiting to be specialised. A
// principal that finds the queue full is served by the general policy and
// tries again on a later request.
const specQueueSize = 4096

// specJob is one principal to specialise.
type specJob struct {
	k               specKey
	sp              *specialised
	key, team, user *ast.Term
}

// specCache caches specialisations for one policy revision. Building one
// takes milliseconds of CPU (partial evaluation and a compile), so it is
// done off the request path, one principal at a time, by a worker that runs
// while there is work: a principal's first requests (and every principal's
// first requests after a new policy) are answered by the general policy
// meanwhile, with the same results.
type specCache struct {
	timeout  time.Duration // bounds one specialisation
	compiler *ast.Compiler
	store    storage.Store
	size     int64    // specCacheSize; smaller in tests
	m        sync.Map // specKey → *specialised
	n        atomic.Int64
	evictMu  sync.Mutex
	queue    chan specJob
	working  atomic.Bool
	retired  atomic.Bool // the policy was replaced: build nothing more
	// errs counts principals whose specialisation failed, built those
	// specialised; for tests.
	errs, built atomic.Int64
}

func newSpecCache(c *ast.Compiler, s storage.Store, timeout time.Duration) *specCache {
	return &specCache{compiler: c, store: s, timeout: timeout, size: specCacheSize, queue: make(chan specJob, specQueueSize)}
}

// get returns the specialisation of the principal whose records are k and
// whose converted records are key, team and user, or nil while it is not
// ready; the first call queues it.
func (c *specCache) get(k specKey, key, team, user *ast.Term) *specialised {
	if v, ok := c.m.Load(k); ok {
		sp := v.(*specialised)
		if !sp.used.Load() {
			sp.used.Store(true)
		}
		if sp.ready.Load() {
			return sp
		}
		return nil
	}
	sp := &specialised{}
	sp.used.Store(true)
	if _, loaded := c.m.LoadOrStore(k, sp); loaded {
		return nil
	}
	if c.n.Add(1) > c.size {
		c.evict()
	}
	select {
	case c.queue <- specJob{k: k, sp: sp, key: key, team: team, user: user}:
		c.startWorker()
	default:
		if c.m.CompareAndDelete(k, sp) { // retried by a later request
			c.n.Add(-1)
		}
	}
	return nil
}

// evict brings the cache back under its size: it drops the entries not
// used since the last sweep (entries still being built count as used) and
// clears the mark of the others; if all were used, it drops entries until a
// quarter of the room is free.
func (c *specCache) evict() {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	if c.n.Load() <= c.size {
		return
	}
	c.m.Range(func(k, v any) bool {
		sp := v.(*specialised)
		if sp.ready.Load() && !sp.used.Load() {
			if c.m.CompareAndDelete(k, v) {
				c.n.Add(-1)
			}
		} else {
			sp.used.Store(false)
		}
		return true
	})
	c.m.Range(func(k, v any) bool {
		if c.n.Load() <= c.size*3/4 {
			return false
		}
		if v.(*specialised).ready.Load() && c.m.CompareAndDelete(k, v) {
			c.n.Add(-1)
		}
		return true
	})
}

// startWorker starts the worker unless it runs.
func (c *specCache) startWorker() {
	if c.working.CompareAndSwap(false, true) {
		go c.work()
	}
}

// work specialises queued principals until the queue is empty.
func (c *specCache) work() {
	for {
		select {
		case j := <-c.queue:
			if c.retired.Load() {
				j.sp.ready.Store(true) // nothing built: the general query of a dead policy
				continue
			}
			start := time.Now()
			c.build(j)
			if len(c.queue) > 0 {
				time.Sleep(time.Duration(float64(time.Since(start)) * (1/specDuty - 1)))
			}
		default:
			c.working.Store(false)
			// A job queued between the empty read and the store would
			// otherwise wait for the next one.
			if len(c.queue) > 0 {
				c.startWorker()
			}
			return
		}
	}
}

// build specialises one principal and marks it ready. The request's
// deadline does not apply (the work serves all requests of the principal);
// the evaluation timeout does. One that fails or times out is remembered as
// a failure: the principal is served by the general policy.
func (c *specCache) build(j specJob) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	known := ast.NewObject(
		[2]*ast.Term{kKey, j.key},
		[2]*ast.Term{kTeam, j.team},
		[2]*ast.Term{kUser, j.user},
	)
	q, memo, err := c.specialise(ctx, DecisionQuery, known)
	c.built.Add(1)
	if err != nil {
		c.errs.Add(1)
	} else {
		j.sp.decision = q
		if memo {
			j.sp.memo = &decisionMemo{}
		}
	}
	j.sp.ready.Store(true)
}

// retire stops the worker from building more specialisations: the policy
// revision they are for no longer serves.
func (c *specCache) retire() { c.retired.Store(true) }

// wait blocks until the principal k is specialised (or ctx ends); for tests
// and benchmarks.
func (c *specCache) wait(ctx context.Context, k specKey) *specialised {
	for ctx.Err() == nil {
		if v, ok := c.m.Load(k); ok && v.(*specialised).ready.Load() {
			return v.(*specialised)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// specialise partially evaluates query with the known principal and
// prepares the residual, compiled on its own; memo tells whether the
// residual's results may be memoised (memo.go).
func (c *specCache) specialise(ctx context.Context, query string, known ast.Object) (q *oparego.PreparedEvalQuery, memo bool, err error) {
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
		return nil, false, fmt.Errorf("partial evaluation of %s: %w", query, err)
	}
	mod := &ast.Module{Package: &ast.Package{Path: ast.MustParseRef("data.gateway_pe")}}
	modules := map[string]*ast.Module{"__gateway_pe__": mod}
	for _, body := range pq.Queries {
		mod.Rules = append(mod.Rules, &ast.Rule{
			Head:   ast.NewHead(ast.Var("r"), nil, ast.VarTerm("result")),
			Body:   body,
			Module: mod,
		})
	}
	for i, m := range pq.Support {
		modules[fmt.Sprintf("__gateway_pe_support_%d__", i)] = m
	}
	kept := c.keptWhole(modules)
	for name, m := range kept {
		modules[name] = m
	}
	compiler := newCompiler(Capabilities())
	if compiler.Compile(modules); compiler.Failed() {
		return nil, false, fmt.Errorf("compile residual of %s: %w", query, compiler.Errors)
	}
	prepared, err := oparego.New(
		oparego.ParsedQuery(residualQuery(pq.Queries)),
		oparego.Compiler(compiler),
		oparego.Store(c.store),
		oparego.Capabilities(Capabilities()),
		oparego.SetRegoVersion(ast.RegoV1),
		oparego.GenerateJSON(rawTerm),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("prepare residual of %s: %w", query, err)
	}
	support := pq.Support
	for _, m := range kept {
		support = append(support, m)
	}
	return &prepared, memoisable(pq.Queries, support), nil
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

// keptWhole returns copies of the policy's modules that the residual
// modules refer to: rules partial evaluation kept whole (a rule with else,
// a function called in a comprehension, the custom deny set iterated in a
// comprehension) are evaluated as written, on the full input, which the
// residual gets too. Modules those modules refer to are included as well.
// Base documents need nothing: the residual reads the same store.
func (c *specCache) keptWhole(residual map[string]*ast.Module) map[string]*ast.Module {
	out := map[string]*ast.Module{}
	var queue []*ast.Module
	for _, m := range residual {
		queue = append(queue, m)
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !r.HasPrefix(ast.DefaultRootRef) || len(r) >= 2 && r[1].Equal(ast.StringTerm(peNamespace)) {
				return false
			}
			g := r.GroundPrefix()
			for name, orig := range c.compiler.Modules {
				if _, done := out[name]; done {
					continue
				}
				p := orig.Package.Path
				if g.HasPrefix(p) || p.HasPrefix(g) {
					cp := orig.Copy()
					out[name] = cp
					queue = append(queue, cp)
				}
			}
			return false
		})
	}
	return out
}
