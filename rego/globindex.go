package rego

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// Globs in the candidate index.
//
// An allow-list glob ("openai/*", "bench-*", "vendor-*/chat") permits the
// candidates with a chain name it matches. Matching every glob against every
// candidate in Rego costs a visit to the whole list per glob on every list
// (about 9 ms for 1,000 candidates and a few globs). Instead the gateway
// matches each glob of the caller's lists once per candidate list (that is,
// once per catalog version and alias table), keeps the set of ids it
// matches beside the list, and passes the caller's globs to the policy as
// input.candidate_index.globs: {glob: set of ids}. The policy decides what
// the sets mean (which layer, which entries, the special values) as it does
// for exact names and access groups; only the matching of a pattern against
// a name is done here, with the semantics of the policy's own
// _glob_pattern / glob.match (DESIGN §5: "*" matches any run of characters,
// "/" included; everything else is literal), which the tests check against
// OPA's glob.match.

// globCacheSize bounds the globs whose sets one list keeps. Past it, a glob
// is matched for the request that needs it and not kept.
const globCacheSize = 4096

// globCache holds the sets of ids of one candidate list by glob.
type globCache struct {
	m sync.Map // string → *ast.Term (a set of ids)
	n atomic.Int64
}

// indexFor returns input.candidate_index for the list and principal p: the
// ids of the list, and the sets of ids by chain name, by access group and
// by glob for the entries of p's key, team and user lists (globs matched
// once per list). The policy picks each layer's entries out of these; an
// index of every name of the list would make it walk them all.
func (cl *convertedList) indexFor(p *gateway.Principal) *ast.Term {
	var names, groups, globs [][2]*ast.Term
	for _, e := range principalEntries(p) {
		if strings.Contains(e, "*") {
			if e != "*" {
				globs = append(globs, [2]*ast.Term{ast.StringTerm(e), cl.globTerm(e)})
			}
			continue
		}
		if t, ok := cl.nameSet(e); ok {
			names = append(names, [2]*ast.Term{ast.StringTerm(e), t})
		}
		if t, ok := cl.groupSet(e); ok {
			groups = append(groups, [2]*ast.Term{ast.StringTerm(e), t})
		}
	}
	return ast.ObjectTerm(
		[2]*ast.Term{kIDs, cl.index.ids},
		[2]*ast.Term{kNames, ast.ObjectTerm(names...)},
		[2]*ast.Term{kAccessGroups, ast.ObjectTerm(groups...)},
		[2]*ast.Term{kGlobs, ast.ObjectTerm(globs...)},
	)
}

// globTerm returns the set of ids of the list's candidates (with a
// non-empty chain) that have a name matching glob g.
func (cl *convertedList) globTerm(g string) *ast.Term {
	if t, ok := cl.globs.m.Load(g); ok {
		return t.(*ast.Term)
	}
	pat := compileGlob(g)
	var t *ast.Term
	if cl.base != nil {
		t = cl.deriveGlob(g, pat)
	} else {
		set := ast.NewSet()
		for i := range cl.list.Items {
			if pat.matchAny(cl.list.Items[i].Names) {
				set.Add(cl.idOf[i])
			}
		}
		t = ast.NewTerm(set)
	}
	if cl.globs.n.Load() < globCacheSize {
		if prev, loaded := cl.globs.m.LoadOrStore(g, t); loaded {
			return prev.(*ast.Term)
		}
		cl.globs.n.Add(1)
	}
	return t
}

// deriveGlob is globTerm for a derived list: the base's set, unless a
// redone id went in or out of it.
func (cl *convertedList) deriveGlob(g string, pat glob) *ast.Term {
	b := cl.base
	bt := b.globTerm(g)
	changed := false
	var add []*ast.Term
	for id := range cl.redone {
		was := false
		if j, ok := b.pos[id]; ok {
			was = pat.matchAny(b.list.Items[j].Names)
		}
		is := false
		if i, ok := cl.pos[id]; ok && pat.matchAny(cl.list.Items[i].Names) {
			is = true
			add = append(add, cl.idOf[i])
		}
		changed = changed || was != is
	}
	if !changed {
		return bt
	}
	return ast.NewTerm(cl.rebase(bt, add))
}

// principalEntries returns the distinct entries of p's key, team and user
// lists.
func principalEntries(p *gateway.Principal) []string {
	if p == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(models []string) {
		for _, e := range models {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	if p.Key != nil {
		add(p.Key.Models)
	}
	if p.Team != nil {
		add(p.Team.Models)
	}
	if p.User != nil {
		add(p.User.Models)
	}
	return out
}

// glob is an allow-list glob split at its stars: a name matches when it
// starts with prefix, ends with suffix, and holds the middle parts in order
// between them, without overlapping.
type glob struct {
	prefix, suffix string
	middle         []string
	star           bool // false: the glob is a literal name
}

func compileGlob(g string) glob {
	parts := strings.Split(g, "*")
	if len(parts) == 1 {
		return glob{prefix: g}
	}
	return glob{prefix: parts[0], suffix: parts[len(parts)-1], middle: parts[1 : len(parts)-1], star: true}
}

// matchAny reports whether one of names matches.
func (g glob) matchAny(names []string) bool {
	for _, n := range names {
		if g.match(n) {
			return true
		}
	}
	return false
}

func (g glob) match(name string) bool {
	if !g.star {
		return name == g.prefix
	}
	if len(name) < len(g.prefix)+len(g.suffix) || !strings.HasPrefix(name, g.prefix) || !strings.HasSuffix(name, g.suffix) {
		return false
	}
	rest := name[len(g.prefix) : len(name)-len(g.suffix)]
	for _, m := range g.middle {
		i := strings.Index(rest, m)
		if i < 0 {
			return false
		}
		rest = rest[i+len(m):]
	}
	return true
}
