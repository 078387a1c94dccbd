package rego

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// convertedList is a candidate list as an OPA array (input.candidates),
// with its ids and the parts of input.candidate_index that depend on the
// list alone.
//
// A list the catalog made for a caller with aliases (CandidateList.Base)
// differs from the shared list in a few ids. It is derived from the shared
// list's conversion: the items outside Redone share their terms, and the
// index keeps only the sets those ids change, looking the rest up in the
// base. Converting it whole cost as much as converting the shared list:
// 1,000 candidates took about 4 ms and 1.3 MB, for every key or team with
// aliases of its own.
type convertedList struct {
	list  *gateway.CandidateList
	term  *ast.Term   // the array of candidate objects
	idOf  []*ast.Term // the id term of each item (shared by its object and the sets)
	pos   map[string]int32
	index struct {
		ids *ast.Term
		// Sets of ids by chain name and by access group. In a derived
		// list, only those that differ from the base's; a nil term is a
		// name or group no candidate has any more.
		names, groups map[string]*ast.Term
	}
	globs globCache // sets of ids by glob, made when a caller's list needs them

	// base is the conversion this list was derived from, nil for a list
	// converted whole; redone holds list.Redone. pos then maps only the
	// redone ids that are in the list.
	base   *convertedList
	redone map[string]struct{}
}

// has reports whether id is one of the list's candidates.
func (cl *convertedList) has(id string) bool {
	if cl.base != nil {
		if _, ok := cl.redone[id]; !ok {
			_, ok := cl.base.pos[id]
			return ok
		}
	}
	_, ok := cl.pos[id]
	return ok
}

// nameSet returns the set of ids with chain name n, if any has it.
func (cl *convertedList) nameSet(n string) (*ast.Term, bool) {
	return lookupSet(cl, n, func(c *convertedList) map[string]*ast.Term { return c.index.names })
}

// groupSet returns the set of ids in access group g, if any is.
func (cl *convertedList) groupSet(g string) (*ast.Term, bool) {
	return lookupSet(cl, g, func(c *convertedList) map[string]*ast.Term { return c.index.groups })
}

func lookupSet(cl *convertedList, k string, sets func(*convertedList) map[string]*ast.Term) (*ast.Term, bool) {
	if t, ok := sets(cl)[k]; ok || cl.base == nil {
		return t, t != nil
	}
	t, ok := sets(cl.base)[k]
	return t, ok
}

// item is a candidate's object in input.candidates.
func item(c *gateway.Candidate, id *ast.Term) *ast.Term {
	return ast.ObjectTerm(
		[2]*ast.Term{kID, id},
		[2]*ast.Term{kNames, strList(c.Names)},
		[2]*ast.Term{kAccessGroups, strList(c.AccessGroups)},
	)
}

// convertWhole converts every item of l and builds its index: the ids of
// the candidates, and sets of ids by chain name and by access group.
// Candidates with an empty chain are permitted nothing and are left out of
// the index. The index lets the policy narrow a list with set operations
// instead of visiting every candidate (bundles/default/models.rego, "A
// list, through the index"). Each request gets the sets of its principal's
// entries only (convertedList.indexFor).
func convertWhole(l *gateway.CandidateList) *convertedList {
	cl := &convertedList{list: l, idOf: make([]*ast.Term, len(l.Items)), pos: make(map[string]int32, len(l.Items))}
	// The id terms in one block: the policy's set operations on the index
	// walk them, and terms scattered among the items' objects cost a
	// cache miss each (a first list of 10,000 candidates took 30–100%
	// longer that way).
	idTerms := make([]ast.Term, len(l.Items))
	for i := range l.Items {
		idTerms[i].Value = ast.String(l.Items[i].ID)
		cl.idOf[i] = &idTerms[i]
	}
	items := make([]*ast.Term, len(l.Items))
	all := make([]*ast.Term, 0, len(l.Items))
	names := map[string]ast.Set{}
	groups := map[string]ast.Set{}
	for i := range l.Items {
		c := &l.Items[i]
		id := cl.idOf[i]
		items[i] = item(c, id)
		cl.pos[c.ID] = int32(i)
		if len(c.Names) == 0 {
			continue
		}
		all = append(all, id)
		for _, n := range c.Names {
			addTo(names, n, id)
		}
		for _, g := range c.AccessGroups {
			addTo(groups, g, id)
		}
	}
	cl.term = ast.ArrayTerm(items...)
	cl.index.ids = ast.SetTerm(all...)
	cl.index.names, cl.index.groups = setTerms(names), setTerms(groups)
	return cl
}

// derive converts l, made from the list b converts, through b: see
// convertedList. It returns nil when l does not keep CandidateList's
// promise about its base, which convertWhole does not need.
func derive(l *gateway.CandidateList, b *convertedList) *convertedList {
	cl := &convertedList{
		list: l, base: b,
		idOf:   make([]*ast.Term, len(l.Items)),
		pos:    make(map[string]int32, len(l.Redone)),
		redone: make(map[string]struct{}, len(l.Redone)),
	}
	for _, id := range l.Redone {
		cl.redone[id] = struct{}{}
	}
	baseItems := b.term.Value.(*ast.Array)
	items := make([]*ast.Term, len(l.Items))
	kept := 0 // items taken from the base
	next := 0 // where in the base the next kept item is, when both are in the same order
	for i := range l.Items {
		c := &l.Items[i]
		if _, ok := cl.redone[c.ID]; ok {
			id := str(c.ID)
			cl.idOf[i], items[i] = id, item(c, id)
			cl.pos[c.ID] = int32(i)
			continue
		}
		j := next
		if j >= len(b.list.Items) || b.list.Items[j].ID != c.ID {
			k, ok := b.pos[c.ID]
			if !ok {
				return nil
			}
			j = int(k)
		}
		cl.idOf[i], items[i] = b.idOf[j], baseItems.Elem(j)
		next = j + 1
		kept++
	}
	// The index: the sets the redone ids were in, or are in now, are
	// made again; the others are the base's.
	listed := func(c *gateway.Candidate) bool { return len(c.Names) > 0 }
	changed := false
	inBase := 0                       // redone ids in the base
	names := map[string][]*ast.Term{} // ids added by name; a key with none is a set to make again
	groups := map[string][]*ast.Term{}
	for id := range cl.redone {
		var was, is *gateway.Candidate
		if j, ok := b.pos[id]; ok {
			inBase++
			if listed(&b.list.Items[j]) {
				was = &b.list.Items[j]
			}
		}
		i, ok := cl.pos[id]
		if ok && listed(&l.Items[i]) {
			is = &l.Items[i]
		}
		changed = changed || (was == nil) != (is == nil)
		if was != nil { // its sets are made again, with or without it
			for _, n := range was.Names {
				touchKey(names, n)
			}
			for _, g := range was.AccessGroups {
				touchKey(groups, g)
			}
		}
		if is != nil {
			for _, n := range is.Names {
				names[n] = append(names[n], cl.idOf[i])
			}
			for _, g := range is.AccessGroups {
				groups[g] = append(groups[g], cl.idOf[i])
			}
		}
	}
	// Every base item outside Redone must be here too.
	if kept != len(b.list.Items)-inBase {
		return nil
	}
	cl.term = ast.ArrayTerm(items...)
	cl.index.ids = b.index.ids
	if changed {
		all := make([]*ast.Term, 0, len(l.Items))
		for i := range l.Items {
			if listed(&l.Items[i]) {
				all = append(all, cl.idOf[i])
			}
		}
		cl.index.ids = ast.SetTerm(all...)
	}
	cl.index.names = cl.remake(names, b.index.names)
	cl.index.groups = cl.remake(groups, b.index.groups)
	return cl
}

// remake returns, for each key of added, the base's set of that key
// with the redone ids replaced by those added holds for it; nil where that
// leaves nothing.
func (cl *convertedList) remake(added map[string][]*ast.Term, base map[string]*ast.Term) map[string]*ast.Term {
	out := make(map[string]*ast.Term, len(added))
	for k, add := range added {
		out[k] = nil
		if s := cl.rebase(base[k], add); s.Len() > 0 {
			out[k] = ast.NewTerm(s)
		}
	}
	return out
}

// rebase returns the set of ids t holds (none when t is nil) but the
// redone ones, and add.
func (cl *convertedList) rebase(t *ast.Term, add []*ast.Term) ast.Set {
	s := ast.NewSet()
	if t != nil {
		t.Value.(ast.Set).Foreach(func(x *ast.Term) {
			if _, redone := cl.redone[string(x.Value.(ast.String))]; !redone {
				s.Add(x)
			}
		})
	}
	for _, x := range add {
		s.Add(x)
	}
	return s
}

// touchKey makes sure m has key k, leaving its value if it has one.
func touchKey(m map[string][]*ast.Term, k string) {
	if _, ok := m[k]; !ok {
		m[k] = nil
	}
}

func addTo(m map[string]ast.Set, k string, id *ast.Term) {
	s := m[k]
	if s == nil {
		s = ast.NewSet()
		m[k] = s
	}
	s.Add(id)
}

func setTerms(m map[string]ast.Set) map[string]*ast.Term {
	out := make(map[string]*ast.Term, len(m))
	for k, s := range m {
		out[k] = ast.NewTerm(s)
	}
	return out
}

// candidateCacheSize bounds the cache. The catalog shares one list between
// most callers; keys or teams with aliases of their own get their own lists.
const candidateCacheSize = 16

// candidateCache caches converted candidate lists by identity: lists are
// immutable (gateway.CandidateList). The last list used is checked first
// without locking; when the cache is full, the list used longest ago goes.
type candidateCache struct {
	last  atomic.Pointer[convertedList]
	mu    sync.Mutex
	m     map[*gateway.CandidateList]*convertedList
	order []*gateway.CandidateList // least recently used first
}

func (c *candidateCache) get(l *gateway.CandidateList) *convertedList {
	if cl := c.last.Load(); cl != nil && cl.list == l {
		return cl
	}
	c.mu.Lock()
	cl, ok := c.m[l]
	if ok {
		c.touch(l)
	}
	c.mu.Unlock()
	if !ok {
		// Converting outside the lock: two callers may convert the same
		// list at once; both results are equal.
		cl = c.convert(l)
		c.mu.Lock()
		if c.m == nil {
			c.m = make(map[*gateway.CandidateList]*convertedList, candidateCacheSize)
		}
		if prev, dup := c.m[l]; dup {
			cl = prev
			c.touch(l)
		} else {
			if len(c.order) >= candidateCacheSize {
				delete(c.m, c.order[0])
				c.order = slices.Delete(c.order, 0, 1)
			}
			c.m[l] = cl
			c.order = append(c.order, l)
		}
		c.mu.Unlock()
	}
	c.last.Store(cl)
	return cl
}

// touch makes l the most recently used list; c.mu is held.
func (c *candidateCache) touch(l *gateway.CandidateList) {
	if i := slices.Index(c.order, l); i >= 0 && i < len(c.order)-1 {
		c.order = append(slices.Delete(c.order, i, i+1), l)
	}
}

// convert converts l, through its base's conversion when it has a base
// that was converted whole.
func (c *candidateCache) convert(l *gateway.CandidateList) *convertedList {
	if l.Base != nil && l.Base.Base == nil {
		if cl := derive(l, c.get(l.Base)); cl != nil {
			return cl
		}
	}
	return convertWhole(l)
}
