package rego

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// List memo (DESIGN §10.17).
//
// The visible-model set is a function of what the list rule reads. When the
// rules visible_models depends on (found through the compiled policy's rule
// graph) read only the principal's records, the candidate list and its
// index, and the request's route, operation, method, stream and self flags,
// and call only deterministic built-ins, two lists that agree on those give
// the same set: it is computed once per (principal version, policy
// revision, catalog version) and reused. Records and candidate lists are
// immutable and replaced whole when they change (a new key, team or user
// record; a new list when the catalog or a caller's alias table changes),
// so their identity is their version; the memo lives in the policy
// revision's state and goes with it. A list rule that reads anything else
// (input.now, the request id or path, input.model) or calls a
// non-deterministic built-in is evaluated on every list.

// listMemoSize bounds the lists remembered per policy revision, and
// listMemoIDs the ids they hold together. When either is reached the memo
// starts over.
const (
	listMemoSize = 4096
	listMemoIDs  = 1 << 20
)

// listMemoPrefixes are the input fields a memoisable list rule may read.
// input.key, input.team, input.user, input.candidates and
// input.candidate_index are fixed by the memo key.
var listMemoPrefixes = []ast.Ref{
	ast.MustParseRef("input.request.route"),
	ast.MustParseRef("input.request.operation"),
	ast.MustParseRef("input.request.method"),
	ast.MustParseRef("input.request.stream"),
	ast.MustParseRef("input.request.self"),
	ast.MustParseRef("input.key"),
	ast.MustParseRef("input.team"),
	ast.MustParseRef("input.user"),
	ast.MustParseRef("input.candidates"),
	ast.MustParseRef("input.candidate_index"),
}

// listMemoisable reports whether the rules of query, and every rule they
// depend on, read only listMemoPrefixes of the input and call only
// deterministic built-ins.
func listMemoisable(c *ast.Compiler, query string) bool {
	seen := map[*ast.Rule]struct{}{}
	stack := c.GetRulesExact(ast.MustParseRef(query))
	if len(stack) == 0 {
		return false
	}
	for len(stack) > 0 {
		r := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[r]; ok {
			continue
		}
		seen[r] = struct{}{}
		for dep := range c.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok {
				stack = append(stack, d)
			}
		}
	}
	for r := range seen {
		if !readsOnly(r, listMemoPrefixes, nil) {
			return false
		}
	}
	return true
}

// readsOnly reports whether x reads only prefixes of the input (its refs'
// ground prefixes reach at least as deep as the field they name), or what
// also accepts (when not nil: it is given a ref's ground prefix), and calls
// only deterministic built-ins.
func readsOnly(x any, prefixes []ast.Ref, also func(ast.Ref) bool) bool {
	ok := true
	ast.WalkRefs(x, func(r ast.Ref) bool {
		if ok && r.HasPrefix(ast.InputRootRef) && !withinAny(r, prefixes) && (also == nil || !also(r.GroundPrefix())) {
			ok = false
		}
		return false
	})
	ast.WalkExprs(x, func(e *ast.Expr) bool {
		if !ok || !e.IsCall() {
			return !ok
		}
		name := e.Operator().String()
		if bi, found := ast.BuiltinMap[name]; found && (bi.IsNondeterministic() || name == ast.Print.Name || name == ast.InternalPrint.Name || name == ast.Trace.Name) {
			ok = false
		}
		return false
	})
	return ok
}

// withinAny reports whether r lies within one of prefixes.
func withinAny(r ast.Ref, prefixes []ast.Ref) bool {
	g := r.GroundPrefix()
	for _, p := range prefixes {
		if g.HasPrefix(p) {
			return true
		}
	}
	return false
}

// listKey is what a memoisable list rule can read of a request.
type listKey struct {
	p                        specKey
	cands                    *gateway.CandidateList
	route, operation, method string
	stream, self             bool
}

func listKeyOf(in *gateway.Input) listKey {
	r := &in.Request
	return listKey{
		p: specKeyOf(in), cands: in.Candidates,
		route: r.Route, operation: r.Operation, method: r.Method, stream: r.Stream, self: r.Self,
	}
}

// listMemo remembers one policy revision's visible-model sets. The sets are
// shared: callers must not modify them.
type listMemo struct {
	mu  sync.RWMutex
	m   map[listKey]map[string]struct{}
	ids int
}

func (m *listMemo) get(k listKey) (map[string]struct{}, bool) {
	m.mu.RLock()
	ids, ok := m.m[k]
	m.mu.RUnlock()
	return ids, ok
}

func (m *listMemo) put(k listKey, ids map[string]struct{}) {
	m.mu.Lock()
	if m.m == nil || len(m.m) >= listMemoSize || m.ids+len(ids) > listMemoIDs {
		m.m = make(map[listKey]map[string]struct{})
		m.ids = 0
	}
	if _, dup := m.m[k]; !dup {
		m.m[k] = ids
		m.ids += len(ids)
	}
	m.mu.Unlock()
}
