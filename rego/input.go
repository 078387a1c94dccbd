package rego

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// Keys of the input document, built once.
var (
	kRequest      = ast.StringTerm("request")
	kKey          = ast.StringTerm("key")
	kTeam         = ast.StringTerm("team")
	kUser         = ast.StringTerm("user")
	kModel        = ast.StringTerm("model")
	kCandidates   = ast.StringTerm("candidates")
	kNow          = ast.StringTerm("now")
	kID           = ast.StringTerm("id")
	kRoute        = ast.StringTerm("route")
	kOperation    = ast.StringTerm("operation")
	kMethod       = ast.StringTerm("method")
	kPath         = ast.StringTerm("path")
	kStream       = ast.StringTerm("stream")
	kSelf         = ast.StringTerm("self")
	kAlias        = ast.StringTerm("alias")
	kRole         = ast.StringTerm("role")
	kModels       = ast.StringTerm("models")
	kAliases      = ast.StringTerm("aliases")
	kTeamID       = ast.StringTerm("team_id")
	kUserID       = ast.StringTerm("user_id")
	kMetadata     = ast.StringTerm("metadata")
	kBlocked      = ast.StringTerm("blocked")
	kExpiresAt    = ast.StringTerm("expires_at")
	kExpired      = ast.StringTerm("expired")
	kModelAliases = ast.StringTerm("model_aliases")
	kEmail        = ast.StringTerm("email")
	kRequested    = ast.StringTerm("requested")
	kFound        = ast.StringTerm("found")
	kChain        = ast.StringTerm("chain")
	kName         = ast.StringTerm("name")
	kKind         = ast.StringTerm("kind")
	kSource       = ast.StringTerm("source")
	kNames        = ast.StringTerm("names")
	kResolved     = ast.StringTerm("resolved")
	kWildcard     = ast.StringTerm("wildcard")
	kAccessGroups = ast.StringTerm("access_groups")
	kIndex        = ast.StringTerm("candidate_index")
	kIDs          = ast.StringTerm("ids")
	kGlobs        = ast.StringTerm("globs")
	kParams       = ast.StringTerm("params")
	kBody         = ast.StringTerm("body")
	kClientIP     = ast.StringTerm("client_ip")
	kHeaders      = ast.StringTerm("headers")
	kMaxBudget    = ast.StringTerm("max_budget")
	kRPMLimit     = ast.StringTerm("rpm_limit")
	kTPMLimit     = ast.StringTerm("tpm_limit")
	kMaxParallel  = ast.StringTerm("max_parallel_requests")
	kSpend        = ast.StringTerm("spend")
	kResetAt      = ast.StringTerm("budget_reset_at")
)

// inputValue builds the input document (DESIGN §6) for in. Absent principal
// parts and model are null; lists are never null.
func (e *Engine) inputValue(in *gateway.Input) (ast.Value, error) {
	return e.inputValueFor(e.cur.Load(), in)
}

// inputValueFor is inputValue for the policy of st.
func (e *Engine) inputValueFor(st *state, in *gateway.Input) (ast.Value, error) {
	in = pinNow(in)
	key, team, user, err := e.principalTerms(in)
	if err != nil {
		return nil, err
	}
	if st.readsSpend {
		key, team, user = e.withSpend(in, key, team, user)
	}
	return e.inputOf(st, shownInput, in, key, team, user, nil), nil
}

// shownInput is the input document the explain endpoint shows and the
// checks evaluate: every field but input.request.body, which is never shown
// or logged (it carries the prompt).
var shownInput = inputFields{top: allInput.top, req: allInput.req &^ fieldBits(requestFields, kBody), allParams: true}

// principalTerms converts the principal's records (cached by identity);
// absent ones are null.
func (e *Engine) principalTerms(in *gateway.Input) (key, team, user *ast.Term, err error) {
	key, team, user = ast.InternedNullTerm, ast.InternedNullTerm, ast.InternedNullTerm
	p := in.Principal
	if p == nil {
		return key, team, user, nil
	}
	if p.Key != nil {
		// The record converts differently before and after it expires.
		keys, convert := &e.keys, liveKeyTerm
		if keyExpired(in) {
			keys, convert = &e.expiredKeys, expiredKeyTerm
		}
		if key, err = keys.get(p.Key, convert); err != nil {
			return nil, nil, nil, err
		}
	}
	if p.Team != nil {
		if team, err = e.teams.get(p.Team, teamTerm); err != nil {
			return nil, nil, nil, err
		}
	}
	if p.User != nil {
		if user, err = e.users.get(p.User, userTerm); err != nil {
			return nil, nil, nil, err
		}
	}
	return key, team, user, nil
}

// pinNow returns in with its time set: in itself when it has one, else a
// copy at the current time. Entry points call it first, so that all that is
// derived from one input (key.expired, input.now, the specialisation key)
// sees one time.
func pinNow(in *gateway.Input) *gateway.Input {
	if !in.Now.IsZero() {
		return in
	}
	c := *in
	c.Now = time.Now()
	return &c
}

// keyExpired reports whether in's key has expired at in.Now (set by
// pinNow): the input document's key.expired.
func keyExpired(in *gateway.Input) bool {
	return in.Principal != nil && in.Principal.Key != nil && in.Principal.Key.Expired(in.Now)
}

func liveKeyTerm(k *gateway.Key) (*ast.Term, error)    { return keyTerm(k, false) }
func expiredKeyTerm(k *gateway.Key) (*ast.Term, error) { return keyTerm(k, true) }

// keyTerm converts a key; expired is key.expired, which the gateway works
// out from expires_at and the request's time, so that the policy need not
// read input.now for it (and a principal's decisions can be memoised).
func keyTerm(k *gateway.Key, expired bool) (*ast.Term, error) {
	md, err := metadataTerm(k.Metadata)
	if err != nil {
		return nil, fmt.Errorf("key metadata: %w", err)
	}
	expires := ast.InternedNullTerm
	if !k.ExpiresAt.IsZero() {
		expires = timeTerm(k.ExpiresAt)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kID, str(k.ID)},
		[2]*ast.Term{kAlias, str(k.Alias)},
		[2]*ast.Term{kRole, str(k.Role)},
		[2]*ast.Term{kModels, strList(k.Models)},
		[2]*ast.Term{kAliases, stringMap(k.Aliases)},
		[2]*ast.Term{kTeamID, strOrNull(k.TeamID)},
		[2]*ast.Term{kUserID, strOrNull(k.UserID)},
		[2]*ast.Term{kMetadata, md},
		[2]*ast.Term{kBlocked, ast.InternedTerm(k.Blocked)},
		[2]*ast.Term{kExpiresAt, expires},
		[2]*ast.Term{kExpired, ast.InternedTerm(expired)},
		[2]*ast.Term{kMaxBudget, floatOrNull(k.Limits.MaxBudget)},
		[2]*ast.Term{kRPMLimit, intOrNull(k.Limits.RPMLimit)},
		[2]*ast.Term{kTPMLimit, intOrNull(k.Limits.TPMLimit)},
		[2]*ast.Term{kMaxParallel, intOrNull(k.Limits.MaxParallelRequests)},
	), nil
}

func teamTerm(t *gateway.Team) (*ast.Term, error) {
	md, err := metadataTerm(t.Metadata)
	if err != nil {
		return nil, fmt.Errorf("team metadata: %w", err)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kID, str(t.ID)},
		[2]*ast.Term{kAlias, str(t.Alias)},
		[2]*ast.Term{kModels, strList(t.Models)},
		[2]*ast.Term{kModelAliases, stringMap(t.ModelAliases)},
		[2]*ast.Term{kBlocked, ast.InternedTerm(t.Blocked)},
		[2]*ast.Term{kMetadata, md},
		[2]*ast.Term{kMaxBudget, floatOrNull(t.Limits.MaxBudget)},
		[2]*ast.Term{kRPMLimit, intOrNull(t.Limits.RPMLimit)},
		[2]*ast.Term{kTPMLimit, intOrNull(t.Limits.TPMLimit)},
		[2]*ast.Term{kMaxParallel, intOrNull(t.Limits.MaxParallelRequests)},
	), nil
}

func userTerm(u *gateway.User) (*ast.Term, error) {
	md, err := metadataTerm(u.Metadata)
	if err != nil {
		return nil, fmt.Errorf("user metadata: %w", err)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kID, str(u.ID)},
		[2]*ast.Term{kEmail, str(u.Email)},
		[2]*ast.Term{kRole, str(u.Role)},
		[2]*ast.Term{kModels, strList(u.Models)},
		[2]*ast.Term{kMetadata, md},
		[2]*ast.Term{kMaxBudget, floatOrNull(u.Limits.MaxBudget)},
		[2]*ast.Term{kRPMLimit, intOrNull(u.Limits.RPMLimit)},
		[2]*ast.Term{kTPMLimit, intOrNull(u.Limits.TPMLimit)},
		[2]*ast.Term{kMaxParallel, intOrNull(u.Limits.MaxParallelRequests)},
	), nil
}

func modelTerm(m *gateway.Resolution) *ast.Term {
	chain := make([]*ast.Term, len(m.Chain))
	for i, l := range m.Chain {
		if l.Source == "" {
			chain[i] = ast.ObjectTerm(
				[2]*ast.Term{kName, str(l.Name)},
				[2]*ast.Term{kKind, str(l.Kind)},
			)
		} else {
			chain[i] = ast.ObjectTerm(
				[2]*ast.Term{kName, str(l.Name)},
				[2]*ast.Term{kKind, str(l.Kind)},
				[2]*ast.Term{kSource, str(l.Source)},
			)
		}
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kRequested, str(m.Requested)},
		[2]*ast.Term{kFound, ast.InternedTerm(m.Found)},
		[2]*ast.Term{kChain, ast.ArrayTerm(chain...)},
		[2]*ast.Term{kNames, strList(m.Names)},
		[2]*ast.Term{kResolved, str(m.Resolved)},
		[2]*ast.Term{kWildcard, strOrNull(m.Wildcard)},
		[2]*ast.Term{kAccessGroups, strList(m.AccessGroups)},
	)
}

func str(s string) *ast.Term { return ast.InternedTerm(s) }

func floatOrNull(f *float64) *ast.Term {
	if f == nil {
		return ast.InternedNullTerm
	}
	return ast.FloatNumberTerm(*f)
}

func intOrNull(n *int64) *ast.Term {
	if n == nil {
		return ast.InternedNullTerm
	}
	return ast.InternedTerm(*n)
}

func strOrNull(s string) *ast.Term {
	if s == "" {
		return ast.InternedNullTerm
	}
	return ast.InternedTerm(s)
}

func timeTerm(t time.Time) *ast.Term {
	return ast.StringTerm(t.UTC().Format(time.RFC3339Nano))
}

// strList converts a list; nil becomes an empty array, never null.
func strList(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.InternedTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func stringMap(m map[string]string) *ast.Term {
	if len(m) == 0 {
		return ast.InternedEmptyObject
	}
	kvs := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		kvs = append(kvs, [2]*ast.Term{ast.InternedTerm(k), ast.InternedTerm(v)})
	}
	return ast.ObjectTerm(kvs...)
}

func metadataTerm(m map[string]any) (*ast.Term, error) {
	if len(m) == 0 {
		return ast.InternedEmptyObject, nil
	}
	return anyTerm(m)
}

// anyTerm converts the JSON-shaped values metadata holds. Other types fall
// back to OPA's generic (reflective) conversion.
func anyTerm(v any) (*ast.Term, error) {
	switch x := v.(type) {
	case nil:
		return ast.InternedNullTerm, nil
	case string:
		return ast.InternedTerm(x), nil
	case bool:
		return ast.InternedTerm(x), nil
	case int:
		return ast.InternedTerm(x), nil
	case int64:
		return ast.InternedTerm(x), nil
	case int32:
		return ast.InternedTerm(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("metadata number %v is not JSON", x)
		}
		return ast.FloatNumberTerm(x), nil
	case json.Number:
		return ast.NumberTerm(x), nil
	case []any:
		ts := make([]*ast.Term, len(x))
		for i, e := range x {
			t, err := anyTerm(e)
			if err != nil {
				return nil, err
			}
			ts[i] = t
		}
		return ast.ArrayTerm(ts...), nil
	case []string:
		return strList(x), nil
	case map[string]any:
		kvs := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			t, err := anyTerm(e)
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, [2]*ast.Term{ast.InternedTerm(k), t})
		}
		return ast.ObjectTerm(kvs...), nil
	case map[string]string:
		return stringMap(x), nil
	default:
		val, err := ast.InterfaceToValue(v)
		if err != nil {
			return nil, fmt.Errorf("metadata value of type %T: %w", v, err)
		}
		return ast.NewTerm(val), nil
	}
}

// recordCacheSize bounds each principal record cache. When a cache is full it
// starts over: a simple bound that keeps the hot records after a moment.
const recordCacheSize = 4096

// recordCache caches converted principal records (keys, teams, users) by
// identity. Stores hand out immutable records and replace a record whole
// when it changes, so a changed record is a new pointer and never meets its
// old conversion. Records that fail to convert are not cached.
type recordCache[T any] struct {
	m sync.Map // *T → *ast.Term
	n atomic.Int64
}

func (c *recordCache[T]) get(r *T, convert func(*T) (*ast.Term, error)) (*ast.Term, error) {
	if t, ok := c.m.Load(r); ok {
		return t.(*ast.Term), nil
	}
	t, err := convert(r)
	if err != nil {
		return nil, err
	}
	if _, loaded := c.m.LoadOrStore(r, t); !loaded && c.n.Add(1) > recordCacheSize {
		c.m.Clear()
		c.n.Store(0)
		c.m.Store(r, t)
		c.n.Add(1)
	}
	return t, nil
}

// inputFields says which parts of the input document a residual policy
// reads: some top-level fields and, of input.request, some fields (all of
// them when it reads input as a whole or with a key it computes).
type inputFields struct {
	top uint16 // 1 << index in topFields
	req uint16 // 1 << index in requestFields
	// allParams builds every name of input.request.params, not only those
	// the policy reads (for the input the explain endpoint shows).
	allParams bool
}

// topFields and requestFields are the fields of the input document and of
// input.request, in bit order.
var (
	topFields     = []*ast.Term{kRequest, kKey, kTeam, kUser, kModel, kCandidates, kIndex, kNow}
	requestFields = []*ast.Term{kID, kRoute, kOperation, kMethod, kPath, kStream, kSelf, kParams, kBody, kClientIP, kHeaders}
)

// fieldBits is the mask of fields among all.
func fieldBits(all []*ast.Term, fields ...*ast.Term) uint16 {
	var m uint16
	for _, f := range fields {
		m |= 1 << slices.IndexFunc(all, f.Equal)
	}
	return m
}

// allInput is every field.
var allInput = inputFields{top: 1<<len(topFields) - 1, req: 1<<len(requestFields) - 1}

// inputReads returns the parts of the input that modules read.
func inputReads(modules map[string]*ast.Module) inputFields {
	var f inputFields
	for _, m := range modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if f == allInput || !r.HasPrefix(ast.InputRootRef) {
				return false
			}
			g := r.GroundPrefix()
			if len(g) < 2 {
				f = allInput
				return false
			}
			i := slices.IndexFunc(topFields, func(t *ast.Term) bool { return t.Equal(g[1]) })
			if i < 0 {
				return false // not a field of the input: undefined either way
			}
			f.top |= 1 << i
			if topFields[i] == kRequest {
				if len(g) < 3 {
					f.req = allInput.req
					return false
				}
				if j := slices.IndexFunc(requestFields, func(t *ast.Term) bool { return t.Equal(g[2]) }); j >= 0 {
					f.req |= 1 << j
				}
			}
			return false
		})
	}
	return f
}

// inputOf builds the parts f of the input document for in, around
// converted principal records and, unless it is nil, a converted model.
// Absent principal parts and model are null; lists are never null.
func (e *Engine) inputOf(st *state, f inputFields, in *gateway.Input, key, team, user, model *ast.Term) ast.Value {
	var kv [8][2]*ast.Term
	n := 0
	var cl *convertedList // looked up once, for the list and its index
	for i, k := range topFields {
		if f.top&(1<<i) == 0 {
			continue
		}
		var v *ast.Term
		switch k {
		case kRequest:
			want := st.paramNames
			if f.allParams {
				want = nil
			}
			v = requestFieldsTerm(&in.Request, f.req, want)
		case kKey:
			v = key
		case kTeam:
			v = team
		case kUser:
			v = user
		case kModel:
			v = model
			if v == nil {
				v = modelOf(in)
			}
		case kCandidates, kIndex:
			if in.Candidates == nil {
				v = ast.InternedEmptyArray
				if k == kIndex {
					v = ast.InternedNullTerm
				}
				break
			}
			if cl == nil {
				cl = e.cands.get(in.Candidates)
			}
			v = cl.term
			if k == kIndex {
				v = cl.indexFor(in.Principal)
			}
		case kNow:
			v = timeTerm(in.Now)
		}
		kv[n] = [2]*ast.Term{k, v}
		n++
	}
	return ast.NewObject(kv[:n]...)
}

// modelOf converts in.Model; null when there is none.
func modelOf(in *gateway.Input) *ast.Term {
	if in.Model == nil {
		return ast.InternedNullTerm
	}
	return modelTerm(in.Model)
}

// requestFieldsTerm is input.request with the fields in mask only.
func requestFieldsTerm(r *gateway.RequestInfo, mask uint16, paramsWanted map[string]bool) *ast.Term {
	var kv [11][2]*ast.Term
	n := 0
	for i, k := range requestFields {
		if mask&(1<<i) == 0 {
			continue
		}
		var v *ast.Term
		switch k {
		case kID:
			v = str(r.ID)
		case kRoute:
			v = str(r.Route)
		case kOperation:
			v = str(r.Operation)
		case kMethod:
			v = str(r.Method)
		case kPath:
			v = str(r.Path)
		case kStream:
			v = ast.InternedTerm(r.Stream)
		case kSelf:
			v = ast.InternedTerm(r.Self)
		case kParams:
			v = paramsTerm(r, paramsWanted)
		case kBody:
			v = bodyTerm(r)
		case kClientIP:
			v = strOrNull(r.ClientIP)
		case kHeaders:
			v = headersTerm(r)
		}
		kv[n] = [2]*ast.Term{k, v}
		n++
	}
	return ast.NewTerm(ast.NewObject(kv[:n]...))
}
