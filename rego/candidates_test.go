package rego

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// derivedPair makes a random shared list and a list derived from it as the
// catalog derives a caller's list: some ids redone (changed, dropped,
// unchanged, or new), the rest the same items.
func derivedPair(rng *rand.Rand, n int) (base, l *gateway.CandidateList) {
	pick := func(pool []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			if s := pool[rng.IntN(len(pool))]; !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	names := []string{"openai/gpt-4o", "gpt-4o", "vendor/chat", "mock/x", "a:b", "bench-1"}
	groups := []string{"g1", "g2", "g3"}
	cand := func(id string) gateway.Candidate {
		c := gateway.Candidate{ID: id, AccessGroups: pick(groups, 2)}
		if rng.IntN(8) > 0 { // else an empty chain: permitted nothing
			c.Names = append([]string{id}, pick(names, 3)...)
		}
		return c
	}
	base = &gateway.CandidateList{}
	for i := range n {
		base.Items = append(base.Items, cand(fmt.Sprintf("m-%03d", i*2)))
	}
	items := map[string]gateway.Candidate{}
	for _, c := range base.Items {
		items[c.ID] = c
	}
	redone := map[string]bool{}
	for range rng.IntN(6) {
		switch id := fmt.Sprintf("m-%03d", rng.IntN(2*n+4)); rng.IntN(4) {
		case 0: // dropped (or never there)
			delete(items, id)
			redone[id] = true
		case 1: // redone to the same item, or new
			if _, ok := items[id]; !ok {
				items[id] = cand(id)
			}
			redone[id] = true
		default: // changed, or new
			items[id] = cand(id)
			redone[id] = true
		}
	}
	l = &gateway.CandidateList{Base: base, Redone: slices.Sorted(maps.Keys(redone))}
	for _, id := range slices.Sorted(maps.Keys(items)) {
		l.Items = append(l.Items, items[id])
	}
	return base, l
}

// TestDeriveMatchesWhole checks a derived conversion against converting
// the same list whole: the array, the ids, and every set of the index
// (by chain name, access group and glob).
func TestDeriveMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	globs := []string{"*", "m-0*", "*-00*", "openai/*", "*chat", "gpt*", "m-0?", "*:*", "bench-*"}
	for round := range 300 {
		base, l := derivedPair(rng, 1+rng.IntN(12))
		b := convertWhole(base)
		for _, g := range globs[:rng.IntN(len(globs))] { // some base sets made first
			b.globTerm(g)
		}
		got := derive(l, b)
		if got == nil {
			t.Fatalf("round %d: derive refused a list that keeps its promise (redone %q)", round, l.Redone)
		}
		want := convertWhole(&gateway.CandidateList{Items: l.Items})
		fail := func(what string, g, w any) {
			t.Errorf("round %d (redone %q): %s = %v, want %v", round, l.Redone, what, g, w)
		}
		if got.term.Value.Compare(want.term.Value) != 0 {
			fail("term", got.term, want.term)
		}
		if got.index.ids.Value.Compare(want.index.ids.Value) != 0 {
			fail("index ids", got.index.ids, want.index.ids)
		}
		keys := []string{"none"}
		for _, c := range append(slices.Clone(base.Items), l.Items...) {
			keys = append(keys, c.ID)
			keys = append(keys, c.Names...)
			keys = append(keys, c.AccessGroups...)
		}
		for _, k := range keys {
			if g, w := got.has(k), want.has(k); g != w {
				fail(fmt.Sprintf("has(%q)", k), g, w)
			}
			for kind, f := range map[string]func(*convertedList, string) (*ast.Term, bool){
				"names": (*convertedList).nameSet, "groups": (*convertedList).groupSet,
			} {
				gt, gok := f(got, k)
				wt, wok := f(want, k)
				if gok != wok || gok && gt.Value.Compare(wt.Value) != 0 {
					fail(fmt.Sprintf("%s[%q]", kind, k), gt, wt)
				}
			}
		}
		for _, g := range globs {
			if gt, wt := got.globTerm(g), want.globTerm(g); gt.Value.Compare(wt.Value) != 0 {
				fail(fmt.Sprintf("glob %q", g), gt, wt)
			}
		}
	}
}

// TestDeriveRefusesBrokenPromise: a list whose items outside Redone differ
// in ids from its base's is converted whole.
func TestDeriveRefusesBrokenPromise(t *testing.T) {
	base := &gateway.CandidateList{Items: []gateway.Candidate{
		{ID: "a", Names: []string{"a"}}, {ID: "b", Names: []string{"b"}},
	}}
	for name, l := range map[string]*gateway.CandidateList{
		"an id dropped without being redone": {Base: base, Items: base.Items[:1]},
		"an id added without being redone":   {Base: base, Items: append(slices.Clone(base.Items), gateway.Candidate{ID: "c", Names: []string{"c"}})},
	} {
		if cl := derive(l, convertWhole(base)); cl != nil {
			t.Errorf("%s: derive = a conversion, want nil", name)
		}
		var c candidateCache
		cl := c.get(l)
		if want := convertWhole(&gateway.CandidateList{Items: l.Items}); cl.base != nil || cl.term.Value.Compare(want.term.Value) != 0 {
			t.Errorf("%s: the cache's conversion = %v (derived: %t), want the whole list %v", name, cl.term, cl.base != nil, want.term)
		}
	}
}

// TestDerivedListVisible checks GET /v1/models' policy work over a derived
// list against the same list converted whole, for random allow-lists.
func TestDerivedListVisible(t *testing.T) {
	e := newEngine(t)
	e.noListMemo = true
	rng := rand.New(rand.NewPCG(7, 8))
	entries := []string{"m-000", "m-002", "m-01*", "*-00*", "gpt-4o", "openai/*", "*chat", "g1", "g2", "bench-*", "m-0*"}
	pick := func() []string {
		var out []string
		for range rng.IntN(4) {
			out = append(out, entries[rng.IntN(len(entries))])
		}
		return out
	}
	for round := range 60 {
		_, l := derivedPair(rng, 1+rng.IntN(12))
		whole := &gateway.CandidateList{Items: l.Items}
		key, team := pick(), pick()
		p := principal(key, team, nil)
		visible := func(cl *gateway.CandidateList) map[string]struct{} {
			got, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p, Candidates: cl, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got, want := visible(l), visible(whole); !maps.Equal(got, want) {
			t.Errorf("round %d, key %q, team %q, redone %q: visible = %v, want %v", round, key, team, l.Redone, got, want)
		}
	}
}
