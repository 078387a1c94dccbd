package rego

import (
	"context"
	"fmt"
	"slices"
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
// input.team and input.user known and the rest of the input unknown. The
// residual policy has the principal's lists as constants; it is compiled on
// its own and cached for the principal. Every later request of the
// principal evaluates the residual with the full input, which gives the same
// result as the general query.
//
// Most residuals read only what the decision memo keys on (memo.go), and
// their decisions are remembered. A residual that reads more — a custom rule
// on input.now, the request id or path — is specialised a second time per
// request shape: for each route, operation, method, stream and self flags
// and model the principal uses (the memo key), with those known as well.
// What is left is the little that depends on the rest (a business-hours
// rule: one comparison of the time), less than half the principal's residual
// to evaluate; and a shape whose residual reads nothing more (a rule that
// applies only to some routes) is memoised after all.
//
// visible_models is not specialised: through input.candidate_index it is a
// few set operations, and its residual would keep comprehensions over the
// list that cost more than the general rule.
//
// Rules partial evaluation keeps whole (rules with else, functions called
// inside comprehensions, a custom deny set iterated in a comprehension) are
// compiled into the residual as written (keptWhole) and evaluated on the
// full input. When partial evaluation fails or times out, the principal (or
// the shape) is served by the query a level up.

// specCacheSize bounds the principals specialised per policy revision. One
// takes about 0.3 MB (its residual's compiler), so they hold about 80 MB at
// most. When the table is full, principals not used since the last sweep
// are dropped (second chance).
const specCacheSize = 256

// shapeCacheSize bounds the request shapes specialised per policy revision
// (only principals whose residual cannot be memoised have them). One takes
// about 50 KB, so they hold about 50 MB at most.
const shapeCacheSize = 1024

// specDuty bounds the share of one CPU the worker spends building
// specialisations while more are queued: after a build that took d it
// pauses d*(1/specDuty-1). A new policy, or more busy principals than the
// cache holds, then cannot take a core away from requests.
const specDuty = 0.25

// peNamespace is where partial evaluation puts the support rules.
const peNamespace = "gateway_pe_support"

// peResultRef is the rule that collects the residual queries.
var peResultRef = ast.MustParseRef("data.gateway_pe.r")

// peUnknowns are the parts of the input a principal does not fix.
var peUnknowns = []string{"input.request", "input.model", "input.candidates", "input.candidate_index", "input.now"}

// shapeUnknowns are the parts of the input a principal and a request shape
// (memoKey) do not fix: every field of the input document but those.
var shapeUnknowns = []string{
	"input.request.id", "input.request.path", "input.request.params", "input.request.body",
	"input.request.client_ip", "input.request.headers",
	"input.candidates", "input.candidate_index", "input.now",
}

// shapeRequestFields are the fields of input.request a request shape fixes
// (requestFields bits): the route, operation, method, stream and self
// flags — not the id, path, nor what the call asks for.
var shapeRequestFields = fieldBits(requestFields, kRoute, kOperation, kMethod, kStream, kSelf)

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
	"data.gateway.authz._custom_denied",
}

// shapeNoInline are the rules kept as support rules in a request shape's
// residual, where everything but the time, the request id and path is
// known and the rest folds away: the custom rules' verdict, tested in
// several branches, is then evaluated once per request.
var shapeNoInline = []string{"data.gateway.authz._custom_denied"}

// specKey identifies a principal by its records.
type specKey struct {
	key  *gateway.Key
	team *gateway.Team
	user *gateway.User
	// expired is the key's key.expired: its residual differs once it has
	// expired.
	expired bool
}

// shapeKey identifies a request shape of a principal.
type shapeKey struct {
	p specKey
	m memoKey
}

// specialised holds one residual query (a principal's or a request
// shape's); a nil query means the level up serves (partial evaluation
// failed). Its fields are set before ready, and read only after it.
type specialised struct {
	ready    atomic.Bool
	used     atomic.Bool // since the last sweep (evict)
	queued   atomic.Bool // handed to the worker (a shape is not until met again)
	decision *query
	// memo remembers decisions when the residual allows it (memo.go); nil
	// otherwise.
	memo *decisionMemo
	// pin keeps the model lists a shape's key points into alive, and model
	// is input.model for a shape (nil for a principal; set when queued).
	pin   memoPin
	model *ast.Term
	// reads are the parts of the input the residual reads: only those are
	// built for it.
	reads inputFields
}

// specQueueSize bounds the specialisations waiting to be built. One that
// finds the queue full is served by the level up and tried again on a later
// request. Every waiting one holds an entry of its table, so more than the
// two tables hold would only queue work that evicts itself; the queue's
// buffer is allocated whole per policy revision (72 bytes a job: 4,096 were
// 288 KB of every idle gateway's heap).
const specQueueSize = specCacheSize + shapeCacheSize

// peKeep is how long the worker keeps its copy of the policy (peCompiler)
// after the queue ran dry. The copy is about 0.5 MB of heap for the default
// bundle and takes about 15 ms of CPU to build (2 cores here), the order of
// one specialisation's own partial evaluation and compile. New principals
// come in bursts (start-up, a new policy, a batch of new keys), which one
// copy serves; a principal seen alone later pays one more build, and a
// gateway whose principals are all specialised holds no copy.
const peKeep = 10 * time.Second

// specJob is one principal or shape to specialise: partial evaluation of
// the decision with known, unknowns and noInline (oparego.DisableInlining).
type specJob struct {
	sp                 *specialised
	known              ast.Object
	unknowns, noInline []string
}

// specTable holds the specialisations of one kind (principals or shapes),
// bounded by size.
type specTable struct {
	size    int64
	m       sync.Map // specKey or shapeKey → *specialised
	n       atomic.Int64
	evictMu sync.Mutex
}

// specCache caches specialisations for one policy revision. Building one
// takes milliseconds of CPU (partial evaluation and a compile), so it is
// done off the request path, one at a time, by a worker that runs while
// there is work: a principal's first requests (and every principal's first
// requests after a new policy) are answered by the general policy
// meanwhile, and a shape's by the principal's residual, with the same
// results.
type specCache struct {
	timeout time.Duration // bounds one specialisation
	policy  *ast.Compiler // the compiled policy requests evaluate
	// compiler is the worker's own copy of policy (peCompiler), built by
	// the worker when it first needs it, or peErr; only the worker uses them.
	compiler *ast.Compiler
	peErr    error
	// drained counts the times the queue ran dry; a release of compiler
	// scheduled at one of them applies only if no work came after it.
	drained    atomic.Uint64
	store      storage.Store
	principals specTable
	shapes     specTable
	queue      chan specJob
	working    atomic.Bool
	retired    atomic.Bool // the policy was replaced: build nothing more
	// errs counts specialisations that failed, built those built; for
	// tests.
	errs, built atomic.Int64
}

// peCompiler compiles copies of the policy's modules for partial
// evaluation. OPA's partial evaluation rewrites terms of the modules it
// evaluates in place (copy propagation), while requests evaluate those
// modules concurrently; so the specialisation worker gets modules of its
// own, which only it touches.
func peCompiler(c *ast.Compiler) (*ast.Compiler, error) {
	modules := make(map[string]*ast.Module, len(c.Modules))
	for name, m := range c.Modules {
		modules[name] = m.Copy()
	}
	pe := newCompiler(c.Capabilities())
	if pe.Compile(modules); pe.Failed() {
		return nil, fmt.Errorf("compile the policy for partial evaluation: %w", pe.Errors)
	}
	return pe, nil
}

func newSpecCache(policy *ast.Compiler, s storage.Store, timeout time.Duration) *specCache {
	return &specCache{
		policy:     policy,
		store:      s,
		timeout:    timeout,
		principals: specTable{size: specCacheSize},
		shapes:     specTable{size: shapeCacheSize},
		queue:      make(chan specJob, specQueueSize),
	}
}

// get returns the specialisation of the principal whose records are k and
// whose converted records are key, team and user, or nil while it is not
// ready; the first call queues it.
func (c *specCache) get(k specKey, key, team, user *ast.Term) *specialised {
	if v, ok := c.principals.m.Load(k); ok {
		return readied(v)
	}
	known := ast.NewObject(
		[2]*ast.Term{kKey, key},
		[2]*ast.Term{kTeam, team},
		[2]*ast.Term{kUser, user},
	)
	c.create(&c.principals, k, &specialised{}, specJob{known: known, unknowns: peUnknowns, noInline: peNoInline})
	return nil
}

// shape returns the specialisation of the request shape k of a principal
// (whose converted records are key, team and user, with in the request), or
// nil while it is not ready. pin holds the model lists k points into.
//
// A shape is built when it is met the second time: the first call only
// records it. The catalog shares a model's lists between requests for the
// same name, but resolves alias chains of a key or team and names a
// wildcard deployment serves anew each time; those shapes are never met
// twice, so they cost a table entry (dropped by the sweep), never a build.
func (c *specCache) shape(k shapeKey, pin memoPin, in *gateway.Input, key, team, user *ast.Term) *specialised {
	v, ok := c.shapes.m.Load(k)
	if !ok {
		// Not marked used: the next sweep drops it unless it is met
		// again first, before any entry that is.
		c.add(&c.shapes, k, &specialised{pin: pin}, false)
		return nil
	}
	sp := v.(*specialised)
	if sp.queued.Load() || !sp.queued.CompareAndSwap(false, true) {
		return readied(v)
	}
	sp.touch()
	sp.model = modelOf(in)
	known := ast.NewObject(
		[2]*ast.Term{kKey, key},
		[2]*ast.Term{kTeam, team},
		[2]*ast.Term{kUser, user},
		[2]*ast.Term{kModel, sp.model},
		[2]*ast.Term{kRequest, requestFieldsTerm(&in.Request, shapeRequestFields, nil)},
	)
	if !c.enqueue(specJob{sp: sp, known: known, unknowns: shapeUnknowns, noInline: shapeNoInline}) {
		sp.queued.Store(false) // tried again when next met
	}
	return nil
}

// touch marks sp used since the last sweep.
func (sp *specialised) touch() {
	if !sp.used.Load() {
		sp.used.Store(true)
	}
}

// readied marks the table entry v used and returns it when it is ready.
func readied(v any) *specialised {
	sp := v.(*specialised)
	sp.touch()
	if sp.ready.Load() {
		return sp
	}
	return nil
}

// create adds sp to t as k and queues it to be built as j says, unless
// another request added it first.
func (c *specCache) create(t *specTable, k any, sp *specialised, j specJob) {
	if !c.add(t, k, sp, true) {
		return
	}
	sp.queued.Store(true)
	j.sp = sp
	if !c.enqueue(j) && t.m.CompareAndDelete(k, sp) { // retried by a later request
		t.n.Add(-1)
	}
}

// add adds sp to t as k, marked used or not, unless k is there; it
// reports whether it did.
func (c *specCache) add(t *specTable, k any, sp *specialised, used bool) bool {
	sp.used.Store(used)
	if _, loaded := t.m.LoadOrStore(k, sp); loaded {
		return false
	}
	if t.n.Add(1) > t.size {
		t.evict()
	}
	return true
}

// enqueue hands j to the worker; it reports false when the queue is full.
func (c *specCache) enqueue(j specJob) bool {
	select {
	case c.queue <- j:
		c.startWorker()
		return true
	default:
		return false
	}
}

// evict brings the table back under its size: it drops the entries not
// used since the last sweep (entries queued or being built count as used) and
// clears the mark of the others; if all were used, it drops entries until a
// quarter of the room is free.
func (t *specTable) evict() {
	t.evictMu.Lock()
	defer t.evictMu.Unlock()
	if t.n.Load() <= t.size {
		return
	}
	t.m.Range(func(k, v any) bool {
		sp := v.(*specialised)
		if sp.idle() && !sp.used.Load() {
			if t.m.CompareAndDelete(k, v) {
				t.n.Add(-1)
			}
		} else {
			sp.used.Store(false)
		}
		return true
	})
	t.m.Range(func(k, v any) bool {
		if t.n.Load() <= t.size*3/4 {
			return false
		}
		if v.(*specialised).idle() && t.m.CompareAndDelete(k, v) {
			t.n.Add(-1)
		}
		return true
	})
}

// idle reports whether sp is not being built: ready, or (a shape met once)
// never queued.
func (sp *specialised) idle() bool { return sp.ready.Load() || !sp.queued.Load() }

// startWorker starts the worker unless it runs.
func (c *specCache) startWorker() {
	if c.working.CompareAndSwap(false, true) {
		go c.work()
	}
}

// work specialises what is queued until the queue is empty.
func (c *specCache) work() {
	for {
		select {
		case j := <-c.queue:
			if c.retired.Load() {
				j.sp.ready.Store(true) // nothing built: the level up of a dead policy
				continue
			}
			start := time.Now()
			c.build(j)
			if len(c.queue) > 0 {
				time.Sleep(time.Duration(float64(time.Since(start)) * (1/specDuty - 1)))
			}
		default:
			if c.compiler != nil || c.peErr != nil {
				n := c.drained.Add(1)
				time.AfterFunc(peKeep, func() { c.release(n) })
			}
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

// release drops the worker's copy of the policy unless the worker is
// running or has run since the queue ran dry for the n-th time; the next
// build compiles a new copy.
func (c *specCache) release(n uint64) {
	if !c.working.CompareAndSwap(false, true) {
		return // the worker runs; it schedules a release when done
	}
	if c.drained.Load() == n {
		c.compiler, c.peErr = nil, nil
	}
	c.working.Store(false)
	if len(c.queue) > 0 {
		c.startWorker()
	}
}

// build specialises one principal or shape and marks it ready; the first
// build (the first after a release) compiles the worker's copy of the
// policy. The
// request's deadline does not apply (the work serves all requests of the
// principal); the evaluation timeout does. One that fails or times out is
// remembered as a failure: the level up serves it.
func (c *specCache) build(j specJob) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if c.compiler == nil && c.peErr == nil {
		c.compiler, c.peErr = peCompiler(c.policy)
	}
	var (
		q      *query
		reads  inputFields
		memo   bool
		params map[string]bool
	)
	err := c.peErr
	if err == nil {
		q, reads, memo, params, err = c.specialise(ctx, DecisionQuery, j)
	}
	c.built.Add(1)
	if err != nil {
		c.errs.Add(1)
	} else {
		j.sp.decision, j.sp.reads = q, reads
		if memo {
			j.sp.memo = &decisionMemo{params: params}
		}
	}
	j.sp.ready.Store(true)
}

// retire stops the worker from building more specialisations: the policy
// revision they are for no longer serves.
func (c *specCache) retire() { c.retired.Store(true) }

// wait blocks until the specialisation k of t is ready (or ctx ends); for
// tests and benchmarks.
func (c *specCache) wait(ctx context.Context, t *specTable, k any) *specialised {
	for ctx.Err() == nil {
		if v, ok := t.m.Load(k); ok && v.(*specialised).ready.Load() {
			return v.(*specialised)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// specialise partially evaluates the entry point as j says and prepares the
// residual, compiled on its own; reads are the parts of the input it reads,
// and memo tells whether its results may be memoised (memo.go).
func (c *specCache) specialise(ctx context.Context, entry string, j specJob) (q *query, reads inputFields, memo bool, params map[string]bool, err error) {
	pq, err := oparego.New(
		oparego.Query("result = "+entry),
		oparego.Compiler(c.compiler),
		oparego.Store(c.store),
		oparego.Capabilities(Capabilities()),
		oparego.SetRegoVersion(ast.RegoV1),
		oparego.Unknowns(j.unknowns),
		oparego.ParsedInput(j.known.Copy()), // the principal's terms are shared with requests
		oparego.PartialNamespace(peNamespace),
		oparego.DisableInlining(j.noInline),
	).Partial(ctx)
	if err != nil {
		return nil, inputFields{}, false, nil, fmt.Errorf("partial evaluation of %s: %w", entry, err)
	}
	// The residual may share terms with the worker's modules, which the next
	// partial evaluation may rewrite while requests evaluate the residual:
	// it gets copies.
	pq.Queries = slices.DeleteFunc(pq.Queries, deadBody)
	for i, body := range pq.Queries {
		pq.Queries[i] = body.Copy()
	}
	for i, m := range pq.Support {
		pq.Support[i] = m.Copy()
		pruneDead(pq.Support[i])
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
	// A residual calls a few built-ins; a compiler told of only those
	// keeps a type environment a fraction of the size (most of a small
	// residual's memory). Should that miss one the compile needs, it is
	// compiled again with them all.
	compiler := newCompiler(residualCapabilities(modules))
	if compiler.Compile(modules); compiler.Failed() {
		compiler = newCompiler(Capabilities())
		if compiler.Compile(modules); compiler.Failed() {
			return nil, inputFields{}, false, nil, fmt.Errorf("compile residual of %s: %w", entry, compiler.Errors)
		}
	}
	prepared, err := prepareRef(compiler, c.store, residualRef(pq.Queries))
	if err != nil {
		return nil, inputFields{}, false, nil, fmt.Errorf("residual of %s: %w", entry, err)
	}
	support := pq.Support
	for _, m := range kept {
		support = append(support, m)
	}
	memo, params = memoisable(pq.Queries, support)
	return prepared, inputReads(compiler.Modules), memo, params, nil
}

// residualCapabilities returns the gateway's capabilities with only the
// built-ins that modules call.
func residualCapabilities(modules map[string]*ast.Module) *ast.Capabilities {
	used := map[string]bool{}
	for _, m := range modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				used[e.Operator().String()] = true
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
				used[c[0].String()] = true
			}
			return false
		})
	}
	caps := Capabilities()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool { return !used[b.Name] })
	return caps
}

// pruneDead drops the rules of m whose body can never hold: partial
// evaluation leaves a branch whose known condition failed as "not true"
// after the unknown parts it tested first, and evaluating those would only
// cost time. Rules with else are kept (dropping one would drop its else
// branches too), and so are default rules.
func pruneDead(m *ast.Module) {
	m.Rules = slices.DeleteFunc(m.Rules, func(r *ast.Rule) bool {
		return !r.Default && r.Else == nil && deadBody(r.Body)
	})
}

// deadBody reports whether body has an expression that always fails: the
// constant false, or "not true".
func deadBody(body ast.Body) bool {
	for _, e := range body {
		t, ok := e.Terms.(*ast.Term)
		if !ok || len(e.With) > 0 {
			continue
		}
		if v, ok := t.Value.(ast.Boolean); ok && bool(v) == e.Negated {
			return true
		}
	}
	return false
}

// residualRef is the reference whose value the residual is: the rule that
// collects the residual queries, or, when partial evaluation left the one
// query "<ref> = result", the reference itself (a rule evaluation less per
// request).
func residualRef(queries []ast.Body) ast.Ref {
	if len(queries) == 1 && len(queries[0]) == 1 {
		e := queries[0][0]
		if e.IsEquality() && !e.Negated && len(e.With) == 0 {
			lhs, rhs := e.Operand(0), e.Operand(1)
			if r, ok := lhs.Value.(ast.Ref); ok && rhs.Equal(ast.VarTerm("result")) {
				return r
			}
		}
	}
	return peResultRef
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
