package rego

import (
	"encoding/json"
	"slices"
	"sync"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

// Decision memo (per principal).
//
// A principal's residual policy (partial.go) is a function of the input
// fields it reads. When it reads only the principal (fixed for the
// residual), the model and the request's route, operation, method, stream
// and self flags, and calls no non-deterministic built-in (the time, random
// numbers, network, I/O), then two requests that agree on those fields get
// the same decision, and the second need not evaluate the policy again.
// That is the common case: a key calling the same model again and again.
// A residual that reads anything else — input.now (a key that expires, a
// business-hours rule), the request id or path, the candidate list — is
// evaluated on every request.
//
// The memo lives in the principal's specialisation, so it is dropped with
// it: when a record changes (a new pointer), when the cache starts over, and
// when a new policy is loaded. Evaluation errors are never memoised.

// memoSize bounds the decisions remembered per principal. When the memo is
// full it starts over.
const memoSize = 256

// memoPrefixes are the input fields a memoisable residual may read.
// input.key, input.team and input.user are fixed for a residual.
var memoPrefixes = []ast.Ref{
	ast.MustParseRef("input.request.route"),
	ast.MustParseRef("input.request.operation"),
	ast.MustParseRef("input.request.method"),
	ast.MustParseRef("input.request.stream"),
	ast.MustParseRef("input.request.self"),
	ast.MustParseRef("input.model"),
	ast.MustParseRef("input.key"),
	ast.MustParseRef("input.team"),
	ast.MustParseRef("input.user"),
}

// memoisable reports whether a residual (its queries and support modules)
// reads only memoPrefixes of the input, and input.request.params by
// constant names, and calls only deterministic built-ins; params are the
// names it reads (nil when none). Such a residual's decisions are memoised
// by the values of those params too: a rule on max_tokens is answered from
// the memo for a max_tokens met before.
func memoisable(queries []ast.Body, support []*ast.Module) (ok bool, params map[string]bool) {
	var xs []any
	for _, q := range queries {
		xs = append(xs, q)
	}
	for _, m := range support {
		xs = append(xs, m)
	}
	for _, x := range xs {
		if !readsOnly(x, memoPrefixes, func(g ast.Ref) bool {
			name, byName := paramName(g)
			if byName {
				if params == nil {
					params = map[string]bool{}
				}
				params[name] = true
			}
			return byName
		}) {
			return false, nil
		}
	}
	return true, params
}

// requestParams is input.request.params.
var requestParams = ast.MustParseRef("input.request.params")

// paramName reports whether the ground ref g reads one param by a constant
// name, and which.
func paramName(g ast.Ref) (string, bool) {
	if len(g) < 4 || !g.HasPrefix(requestParams) {
		return "", false
	}
	s, ok := g[3].Value.(ast.String)
	return string(s), ok
}

// paramsKey is what a memo keys on of the params named: their values,
// encoded with sorted names (openai.ParamsOf, as the input has them).
func paramsKey(r *gateway.RequestInfo, names map[string]bool) string {
	b, err := json.Marshal(openai.ParamsOf(r.Body, r.ContentType, names))
	if err != nil {
		return "\x00unencodable" // never equal to an encoding
	}
	return string(b)
}

// memoKey is what a memoisable residual can read of a request besides the
// principal. The model is identified by its contents: the strings, and the
// backing arrays of its lists, which the catalog shares between the
// resolutions of one name. A memo entry keeps those arrays alive (pin), so
// no other list can take their address while the entry exists.
type memoKey struct {
	route, operation, method string
	stream, self             bool
	// params are the values of the params the residual reads (paramsKey);
	// empty when it reads none.
	params string

	model                         bool
	requested, resolved, wildcard string
	found                         bool
	chain                         *gateway.ChainLink
	names, groups                 *string
	nChain, nNames, nGroups       int
}

// memoPin holds the arrays a memoKey points into.
type memoPin struct {
	chain         []gateway.ChainLink
	names, groups []string
}

func keyOf(in *gateway.Input) (memoKey, memoPin) {
	r := &in.Request
	k := memoKey{route: r.Route, operation: r.Operation, method: r.Method, stream: r.Stream, self: r.Self}
	var pin memoPin
	if m := in.Model; m != nil {
		k.model = true
		k.requested, k.resolved, k.wildcard, k.found = m.Requested, m.Resolved, m.Wildcard, m.Found
		k.chain, k.nChain = unsafe.SliceData(m.Chain), len(m.Chain)
		k.names, k.nNames = unsafe.SliceData(m.Names), len(m.Names)
		k.groups, k.nGroups = unsafe.SliceData(m.AccessGroups), len(m.AccessGroups)
		pin = memoPin{chain: m.Chain, names: m.Names, groups: m.AccessGroups}
	}
	return k, pin
}

type memoEntry struct {
	d   gateway.Decision
	pin memoPin
}

// decisionMemo remembers one principal's decisions.
type decisionMemo struct {
	mu sync.RWMutex
	m  map[memoKey]memoEntry
	// params are the names of input.request.params the residual reads:
	// their values are part of the key.
	params map[string]bool
}

// key is k with the values of the params the residual reads.
func (m *decisionMemo) key(k memoKey, in *gateway.Input) memoKey {
	if len(m.params) > 0 {
		k.params = paramsKey(&in.Request, m.params)
	}
	return k
}

func (m *decisionMemo) get(k memoKey) (gateway.Decision, bool) {
	m.mu.RLock()
	e, ok := m.m[k]
	m.mu.RUnlock()
	if !ok {
		return gateway.Decision{}, false
	}
	d := e.d
	d.Reasons = slices.Clone(d.Reasons) // callers own what they get
	return d, true
}

func (m *decisionMemo) put(k memoKey, pin memoPin, d gateway.Decision) {
	d.Reasons = slices.Clone(d.Reasons)
	m.mu.Lock()
	if m.m == nil || len(m.m) >= memoSize {
		m.m = make(map[memoKey]memoEntry)
	}
	m.m[k] = memoEntry{d: d, pin: pin}
	m.mu.Unlock()
}
