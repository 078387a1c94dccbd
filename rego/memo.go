package rego

import (
	"slices"
	"sync"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
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
// reads only memoPrefixes of the input and calls only deterministic
// built-ins.
func memoisable(queries []ast.Body, support []*ast.Module) bool {
	for _, q := range queries {
		if !readsOnly(q, memoPrefixes) {
			return false
		}
	}
	for _, m := range support {
		if !readsOnly(m, memoPrefixes) {
			return false
		}
	}
	return true
}

// memoKey is what a memoisable residual can read of a request besides the
// principal. The model is identified by its contents: the strings, and the
// backing arrays of its lists, which the catalog shares between the
// resolutions of one name. A memo entry keeps those arrays alive (pin), so
// no other list can take their address while the entry exists.
type memoKey struct {
	route, operation, method string
	stream, self             bool

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
