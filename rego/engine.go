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
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
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
	// CustomDenyQuery is the extension point: the deny messages of package
	// gateway.custom (DESIGN §6, §10.10). Optional.
	CustomDenyQuery = "data.gateway.custom.deny"
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
	// Sources are bundle locations: directories, OPA bundle tarballs
	// (.tar.gz) and OPA bundle-service URLs (http or https). They load after
	// Bundles by the same rules. New reads them once; Start watches them and
	// Reload re-reads them (see watch.go).
	Sources []string
	// Verification, when set, requires every bundle in Bundles and Sources to
	// carry a valid OPA bundle signature (.signatures.json, as written by
	// opa build --signing-key or opa sign); unsigned or badly signed bundles
	// are refused. The embedded default bundle is trusted.
	Verification *Verification
	// RunTests runs the Rego tests (_test.rego) of the bundles given before
	// a new policy is swapped in; a failing test refuses it.
	RunTests bool
	// PollInterval is how often Start polls bundle-service URLs; zero means
	// DefaultPollInterval. Failed polls back off exponentially up to
	// MaxPollBackoff.
	PollInterval time.Duration
	// FilePollInterval is how often Start checks directories and tarballs
	// for changes; zero means DefaultFilePollInterval.
	FilePollInterval time.Duration
	// FetchTimeout bounds each fetch of a bundle-service URL (request,
	// answer and body), at start and in every poll and reload; zero means
	// DefaultFetchTimeout. A source that hangs is given up on after it,
	// and never holds up the other sources or later reloads.
	FetchTimeout time.Duration
	// HTTPClient fetches URL bundles; nil means http.DefaultClient.
	HTTPClient *http.Client
	// skipCheck leaves out the probe evaluations of check.go, so that tests
	// can load malformed policies and watch them fail closed at run time.
	skipCheck bool
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
	// noShapes stops at the principal's residual (no request-shape
	// specialisation); for benchmarks.
	noShapes bool
	// noListMemo evaluates every list (no list memo); for benchmarks and
	// comparisons.
	noListMemo bool
	cur        atomic.Pointer[state]
	loadMu     sync.Mutex // serialises Load and the loads of fetched bundles
	cands      candidateCache

	static    []bundleInput // Config.Bundles, or what Load was given
	sources   []*source     // Config.Sources
	verify    *bundle.VerificationConfig
	runTests  bool
	pollEvery time.Duration
	fileEvery time.Duration
	client    *http.Client
	// fetchTimeout bounds each URL fetch; fetches counts the fetch
	// goroutines. fetchCtx is the parent of every fetch and load they
	// make, ended by Close (stopFetches): a context kept in the struct
	// because those outlive the Reload or poll that started them, and no
	// caller's context would be right for them.
	fetchTimeout time.Duration
	fetchCtx     context.Context
	stopFetches  context.CancelFunc
	fetches      sync.WaitGroup
	skipCheck    bool
	status       statusTracker
	watch        watcher
	keys         recordCache[gateway.Key] // keys not expired
	expiredKeys  recordCache[gateway.Key]
	teams        recordCache[gateway.Team]
	users        recordCache[gateway.User]
	spend        spendSource
}

var _ gateway.Authorizer = (*Engine)(nil)

// state is everything one bundle revision needs, swapped as a whole.
type state struct {
	revision string
	bundles  []BundleInfo
	loadedAt time.Time
	decision *query
	visible  *query
	layers   *query     // nil when the policy has no layers rule
	spec     *specCache // per-principal residual queries
	// lists remembers visible-model sets when listMemo (listmemo.go).
	lists    listMemo
	listMemo bool
	// reads are the parts of the input document the policy's modules read:
	// the general policy's input holds only those.
	reads inputFields
	// readsSpend is set when the policy reads a layer's spend: it is then
	// evaluated in full on every call (spend.go).
	readsSpend bool
	// paramNames are the names of input.request.params the policy reads;
	// nil when it reads them all (params.go).
	paramNames map[string]bool

	bundleLoaded []time.Time // when each of bundles was first loaded at its revision
	compiler     *ast.Compiler
	store        storage.Store
	custom       *query // data.gateway.custom.deny, for explain; nil without one
}

// Verification is the key bundle signatures are verified with, as in OPA's
// keys and bundle signing configuration.
type Verification struct {
	// KeyID names the key; default "default". Every signature is checked
	// with this key, whatever key id its header names.
	KeyID string
	// Key is a PEM public key (RS*, PS*, ES*) or the shared secret (HS*).
	Key string
	// Algorithm is the signature algorithm; default RS256.
	Algorithm string
	// Scope, when set, must equal the signature's scope claim.
	Scope string
}

// config is v as OPA's verification config; nil for a nil v.
func (v *Verification) config() *bundle.VerificationConfig {
	if v == nil {
		return nil
	}
	id, alg := v.KeyID, v.Algorithm
	if id == "" {
		id = "default"
	}
	if alg == "" {
		alg = "RS256"
	}
	keys := map[string]*bundle.KeyConfig{id: {Key: v.Key, Algorithm: alg, Scope: v.Scope}}
	return bundle.NewVerificationConfig(keys, id, v.Scope, nil)
}

// New reads the configured bundles and sources, compiles them and prepares
// the entry-point queries. A source that cannot be read is an error.
func New(cfg Config) (*Engine, error) {
	e := &Engine{
		log: cfg.Logger, timeout: cfg.EvalTimeout, special: !cfg.NoSpecialise,
		static: fsInputs(cfg.Bundles), verify: cfg.Verification.config(), runTests: cfg.RunTests,
		pollEvery: cfg.PollInterval, fileEvery: cfg.FilePollInterval, client: cfg.HTTPClient,
		fetchTimeout: cfg.FetchTimeout, skipCheck: cfg.skipCheck,
	}
	e.fetchCtx, e.stopFetches = context.WithCancel(context.Background())
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.timeout <= 0 {
		e.timeout = DefaultEvalTimeout
	}
	if e.pollEvery <= 0 {
		e.pollEvery = DefaultPollInterval
	}
	if e.fileEvery <= 0 {
		e.fileEvery = DefaultFilePollInterval
	}
	if e.client == nil {
		e.client = http.DefaultClient
	}
	if e.fetchTimeout <= 0 {
		e.fetchTimeout = DefaultFetchTimeout
	}
	for _, loc := range cfg.Sources {
		src, err := parseSource(loc)
		if err != nil {
			return nil, fmt.Errorf("load policy: %w", err)
		}
		src.interval = e.pollEvery
		e.sources = append(e.sources, src)
	}
	fresh := make(map[*source]fs.FS, len(e.sources))
	for _, src := range e.sources {
		ctx, cancel := context.WithTimeout(e.fetchCtx, e.fetchTimeout)
		fsys, err := src.fetch(ctx, e.client, true)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("load policy: %w", err)
		}
		fresh[src] = fsys
	}
	if err := e.install(context.Background(), e.inputs(fresh)); err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	for src, fsys := range fresh {
		src.good = fsys
		src.next = time.Now().Add(src.interval)
	}
	return e, nil
}

// Load compiles fsys as the policy (the same rules as Config.Bundles),
// together with the sources' current bundles, and swaps it in atomically.
// On any error the current policy keeps serving and Status reports it.
func (e *Engine) Load(fsys ...fs.FS) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	prev := e.static
	e.static = fsInputs(fsys)
	if err := e.install(context.Background(), e.inputs(nil)); err != nil {
		e.static = prev
		return fmt.Errorf("load policy: %w", err)
	}
	return nil
}

// inputs lists the bundles to compile: the static ones, then each source's
// fresh bundle when it has one, else its last good one.
func (e *Engine) inputs(fresh map[*source]fs.FS) []bundleInput {
	ins := slices.Clone(e.static)
	for _, src := range e.sources {
		f := fresh[src]
		if f == nil {
			f = src.good
		}
		if f != nil {
			ins = append(ins, bundleInput{fsys: f, source: src.name()})
		}
	}
	return ins
}

// install builds a new state from ins, checks it (entry points, decision
// shape, and the bundles' own tests when configured) and swaps it in. Every
// outcome is recorded for Status. The caller holds loadMu.
func (e *Engine) install(ctx context.Context, ins []bundleInput) error {
	st, err := build(ctx, ins, e.verify, e.timeout)
	if err == nil && !e.skipCheck {
		err = e.check(ctx, st)
	}
	if err == nil && e.runTests {
		err = checkTests(ctx, ins)
	}
	if err != nil {
		e.status.failed(err)
		e.log.Error("policy refused; the previous policy keeps serving", "error", err)
		return err
	}
	prev := e.cur.Load()
	now := time.Now()
	st.loadedAt = now
	st.bundleLoaded = make([]time.Time, len(st.bundles))
	for i, b := range st.bundles {
		st.bundleLoaded[i] = now
		if prev != nil {
			for j, pb := range prev.bundles {
				if pb.Name == b.Name && pb.Source == b.Source && pb.Revision == b.Revision {
					st.bundleLoaded[i] = prev.bundleLoaded[j]
				}
			}
		}
	}
	e.cur.Store(st)
	if prev != nil {
		prev.spec.retire() // its queued principals are built for the new policy on demand
	}
	e.status.loaded(prev != nil)
	e.log.Info("policy loaded", "revision", st.revision, "bundles", len(st.bundles))
	return nil
}

// build reads, compiles and prepares a new state; timeout bounds each
// per-principal specialisation.
func build(ctx context.Context, ins []bundleInput, verify *bundle.VerificationConfig, timeout time.Duration) (*state, error) {
	lbs, err := readBundles(ins, readOpts{verify: verify})
	if err != nil {
		return nil, err
	}
	compiler, store, err := activate(ctx, lbs)
	if err != nil {
		return nil, err
	}
	st := &state{spec: newSpecCache(compiler, store, timeout), compiler: compiler, store: store}
	revs := make([]string, 0, len(lbs))
	for _, lb := range lbs {
		st.bundles = append(st.bundles, lb.info)
		revs = append(revs, lb.info.Revision)
	}
	st.revision = strings.Join(revs, ",")
	if st.decision, err = prepare(compiler, store, DecisionQuery); err != nil {
		return nil, err
	}
	if st.visible, err = prepare(compiler, store, VisibleModelsQuery); err != nil {
		return nil, err
	}
	st.listMemo = listMemoisable(compiler, VisibleModelsQuery)
	st.reads = inputReads(compiler.Modules)
	st.readsSpend = readsSpend(compiler.Modules)
	st.paramNames = paramNames(compiler.Modules)
	st.listMemo = st.listMemo && !st.readsSpend
	if len(compiler.GetRulesExact(ast.MustParseRef(LayersQuery))) > 0 {
		if st.layers, err = prepare(compiler, store, LayersQuery); err != nil {
			return nil, err
		}
	}
	if len(compiler.GetRulesExact(ast.MustParseRef(CustomDenyQuery))) > 0 {
		if st.custom, err = prepare(compiler, store, CustomDenyQuery); err != nil {
			return nil, err
		}
	}
	return st, nil
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
	in = pinNow(in)
	st := e.cur.Load()
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	q := st.decision
	var memo *decisionMemo
	if st.readsSpend {
		key, team, user = e.withSpend(in, key, team, user)
	}
	sp, mk, pin := e.specialised(st, in, key, team, user)
	if sp != nil {
		q, memo = sp.decision, sp.memo
		if memo != nil {
			mk = memo.key(mk, in)
			if d, ok := memo.get(mk); ok {
				return d, nil
			}
		}
	}
	// The general policy gets the whole input; a residual only what it
	// reads, with the model its shape holds converted.
	reads, model := st.reads, (*ast.Term)(nil)
	if sp != nil {
		reads, model = sp.reads, sp.model
	}
	t, err := e.eval(ctx, q, e.inputOf(st, reads, in, key, team, user, model))
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	d, err := parseDecision(t)
	if err != nil {
		return failClosed(), fmt.Errorf("decide: %w", err)
	}
	if memo != nil {
		memo.put(mk, pin, d)
	}
	return d, nil
}

// VisibleModels evaluates VisibleModelsQuery over in.Candidates in one
// evaluation. Only ids of in.Candidates are returned. When the loaded list
// rule reads only what the list memo keys on, the set is computed once per
// principal, candidate list and policy revision (listmemo.go) and the same
// set is returned again: callers must not modify it. On any failure it
// returns the error and an empty set.
func (e *Engine) VisibleModels(ctx context.Context, in *gateway.Input) (map[string]struct{}, error) {
	if in == nil {
		return map[string]struct{}{}, errors.New("visible models: nil input")
	}
	if in.Candidates == nil || len(in.Candidates.Items) == 0 {
		return map[string]struct{}{}, nil
	}
	in = pinNow(in)
	st := e.cur.Load()
	memo := st.listMemo && !e.noListMemo
	var lk listKey
	if memo {
		lk = listKeyOf(in)
		if ids, ok := st.lists.get(lk); ok {
			return ids, nil
		}
	}
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	if st.readsSpend {
		key, team, user = e.withSpend(in, key, team, user)
	}
	// The list is not specialised: narrowing it through
	// input.candidate_index is a few set operations either way.
	t, err := e.eval(ctx, st.visible, e.inputOf(st, st.reads, in, key, team, user, nil))
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	ids, err := parseVisible(t, e.cands.get(in.Candidates).has)
	if err != nil {
		return map[string]struct{}{}, fmt.Errorf("visible models: %w", err)
	}
	if memo {
		st.lists.put(lk, ids)
	}
	return ids, nil
}

// specialised returns the most specific residual ready for in under st —
// its request shape's, else its principal's — with in's memo key; nil when
// specialisation is off or none is ready yet (the first calls queue them).
func (e *Engine) specialised(st *state, in *gateway.Input, key, team, user *ast.Term) (*specialised, memoKey, memoPin) {
	if !e.special || st.readsSpend {
		return nil, memoKey{}, memoPin{}
	}
	pk := specKeyOf(in)
	sp := st.spec.get(pk, key, team, user)
	if sp == nil || sp.decision == nil {
		return nil, memoKey{}, memoPin{}
	}
	mk, pin := keyOf(in)
	// A memo keyed by params values misses on every new value: its misses
	// are evaluated on the request shape's smaller residual.
	if (sp.memo != nil && len(sp.memo.params) == 0) || e.noShapes {
		return sp, mk, pin
	}
	if sh := st.spec.shape(shapeKey{pk, mk}, pin, in, key, team, user); sh != nil && sh.decision != nil {
		return sh, mk, pin
	}
	return sp, mk, pin
}

// Specialise queues in's principal (and, when its residual cannot be
// memoised, in's request shape) for specialisation under the current
// policy, unless it is done, and waits until the residuals are ready or
// ctx ends. Decisions do not need it (the level up answers meanwhile); it
// is for warming a principal up, in benchmarks and before traffic. It
// reports whether the principal is specialised (false when specialisation
// is off or failed).
func (e *Engine) Specialise(ctx context.Context, in *gateway.Input) bool {
	if !e.special || in == nil {
		return false
	}
	in = pinNow(in)
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return false
	}
	st := e.cur.Load()
	pk := specKeyOf(in)
	st.spec.get(pk, key, team, user)
	sp := st.spec.wait(ctx, &st.spec.principals, pk)
	if sp == nil || sp.decision == nil {
		return false
	}
	if (sp.memo == nil || len(sp.memo.params) > 0) && !e.noShapes {
		mk, pin := keyOf(in)
		sk := shapeKey{pk, mk}
		for range 2 { // a shape is built when it is met again
			st.spec.shape(sk, pin, in, key, team, user)
		}
		st.spec.wait(ctx, &st.spec.shapes, sk)
	}
	return true
}

// specKeyOf identifies in's principal by its records.
func specKeyOf(in *gateway.Input) specKey {
	var k specKey
	if p := in.Principal; p != nil {
		k = specKey{key: p.Key, team: p.Team, user: p.User, expired: keyExpired(in)}
	}
	return k
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
	t, err := e.eval(ctx, st.layers, v)
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
func (e *Engine) eval(ctx context.Context, q *query, input ast.Value) (*ast.Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// An external cancel with context.AfterFunc instead of a goroutine per
	// evaluation.
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	return q.run(ctx, input, c)
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
