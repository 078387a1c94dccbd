package catalog

import (
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/regate/gateway/gateway"
)

func candidateIDs(l *gateway.CandidateList) []string {
	ids := make([]string, len(l.Items))
	for i, c := range l.Items {
		ids[i] = c.ID
	}
	return ids
}

func findCandidate(l *gateway.CandidateList, id string) (gateway.Candidate, bool) {
	for _, c := range l.Items {
		if c.ID == id {
			return c, true
		}
	}
	return gateway.Candidate{}, false
}

func TestCandidatesShared(t *testing.T) {
	c := newTestCatalog(t)
	a := c.Candidates(nil, nil)
	b := c.Candidates(map[string]string{}, map[string]string{})
	if a != b {
		t.Errorf("Candidates(nil, nil) = %p, Candidates({}, {}) = %p, want the same shared list", a, b)
	}
	if d := c.Candidates(map[string]string{"mine": "gpt-4o"}, nil); d == a {
		t.Errorf("Candidates(with key alias) returned the shared list")
	}
}

func TestCandidatesAliasedCached(t *testing.T) {
	c := newTestCatalog(t)
	key := map[string]string{"mine": "gpt-4o"}
	team := map[string]string{"ours": "claude"}
	first := c.Candidates(key, team)
	if again := c.Candidates(key, team); again != first {
		t.Errorf("Candidates(same tables) = %p then %p, want the cached list", first, again)
	}
	// Equal tables in other maps: a list with the same contents.
	other := c.Candidates(map[string]string{"mine": "gpt-4o"}, map[string]string{"ours": "claude"})
	if !slices.Equal(candidateIDs(other), candidateIDs(first)) {
		t.Errorf("Candidates(equal tables) ids = %v, want %v", candidateIDs(other), candidateIDs(first))
	}
	// Different tables never share a list.
	diff := c.Candidates(map[string]string{"theirs": "gpt-4o"}, team)
	if diff == first || slices.Contains(candidateIDs(diff), "mine") || !slices.Contains(candidateIDs(diff), "theirs") {
		t.Errorf("Candidates(other key table) ids = %v, want theirs and not mine", candidateIDs(diff))
	}
	if got := c.Candidates(nil, team); got == first || slices.Contains(candidateIDs(got), "mine") {
		t.Errorf("Candidates(team table only) ids = %v, want no key alias", candidateIDs(got))
	}
}

func TestCandidates(t *testing.T) {
	c := newTestCatalog(t)
	const qwen = "openrouter/qwen/qwen3.5-flash-02-23"
	base := []string{"AgentX-LLM", "chain1", "embed", "fast", "gpt-4o", "gpt-4o-mini", "latest", "openai/o1-preview", qwen}
	tests := []struct {
		name      string
		key, team map[string]string
		wantIDs   []string
		// wantNames lists, for some ids, the expected Names.
		wantNames map[string][]string
	}{
		{
			name:    "no aliases: groups and non-hidden resolving global aliases",
			wantIDs: base,
			wantNames: map[string][]string{
				"gpt-4o":     {"gpt-4o", "openai/gpt-4o", "azure/gpt-4o-eu"},
				"AgentX-LLM": {"AgentX-LLM", qwen},
				"latest":     {"latest", "openai/gpt-4.1", "mock/gpt-4.1"},
			},
		},
		{
			name:    "key alias adds an id",
			key:     map[string]string{"mine": "gpt-4o"},
			wantIDs: sortedWith(base, "mine"),
			wantNames: map[string][]string{
				"mine": {"mine", "gpt-4o", "openai/gpt-4o", "azure/gpt-4o-eu"},
			},
		},
		{
			name:    "team alias adds an id and changes global chains through it",
			team:    map[string]string{"fast": "embed", "ours": "openai/o1-x"},
			wantIDs: sortedWith(base, "ours"),
			wantNames: map[string][]string{
				"fast":   {"fast", "embed", "mock/embed"},
				"chain1": {"chain1", "fast", "embed", "mock/embed"},
				"ours":   {"ours", "openai/o1-x"},
			},
		},
		{
			name:    "key alias shadowing a model group",
			key:     map[string]string{"gpt-4o": "gpt-4o-mini"},
			wantIDs: base,
			wantNames: map[string][]string{
				"gpt-4o": {"gpt-4o", "gpt-4o-mini", "openai/gpt-4o-mini"},
			},
		},
		{
			name:    "key alias shadowing a hidden alias lists it",
			key:     map[string]string{"secret": "embed"},
			wantIDs: sortedWith(base, "secret"),
		},
		{
			name:    "key alias rescuing a dangling global alias lists both",
			key:     map[string]string{"nowhere": "embed"},
			wantIDs: sortedWith(base, "dangling", "nowhere"),
		},
		{
			name:    "aliases that resolve to nothing are left out",
			key:     map[string]string{"ghost": "nothing", "loop": "loop", "star": "openai/*"},
			team:    map[string]string{"fast": "gone"},
			wantIDs: without(base, "fast", "chain1"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := c.Candidates(tc.key, tc.team)
			if got := candidateIDs(l); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("Candidates(%v, %v) ids = %q, want %q", tc.key, tc.team, got, tc.wantIDs)
			}
			for id, names := range tc.wantNames {
				cand, ok := findCandidate(l, id)
				if !ok {
					t.Errorf("Candidates() has no %q", id)
					continue
				}
				if !slices.Equal(cand.Names, names) {
					t.Errorf("Candidates() %q Names = %q, want %q", id, cand.Names, names)
				}
			}
		})
	}
}

func TestCandidateFields(t *testing.T) {
	c := newTestCatalog(t)
	l := c.Candidates(map[string]string{"mine": "openai/o1-x"}, nil)
	tests := []struct {
		id           string
		wantOwner    string
		wantGroups   []string
		wantNamesLen int
	}{
		{"gpt-4o", "openai", []string{"default-models", "eu-models"}, 3},
		{"embed", "mock", []string{"embedding-models"}, 2},
		{"AgentX-LLM", OwnerGateway, nil, 2},
		{"fast", OwnerGateway, []string{"default-models"}, 3},
		{"mine", OwnerGateway, []string{"restricted-models"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			cand, ok := findCandidate(l, tc.id)
			if !ok {
				t.Fatalf("Candidates() has no %q", tc.id)
			}
			if cand.OwnedBy != tc.wantOwner {
				t.Errorf("Candidate(%q).OwnedBy = %q, want %q", tc.id, cand.OwnedBy, tc.wantOwner)
			}
			if !slices.Equal(cand.AccessGroups, tc.wantGroups) {
				t.Errorf("Candidate(%q).AccessGroups = %q, want %q", tc.id, cand.AccessGroups, tc.wantGroups)
			}
			if len(cand.Names) != tc.wantNamesLen {
				t.Errorf("Candidate(%q).Names = %q, want %d names", tc.id, cand.Names, tc.wantNamesLen)
			}
		})
	}
}

// TestCandidatesMatchResolve checks the incremental list against the
// definition: every group, global alias and caller alias, resolved for the
// caller, kept when found and not hidden.
func TestCandidatesMatchResolve(t *testing.T) {
	c := newTestCatalog(t)
	callers := []struct {
		name      string
		key, team map[string]string
	}{
		{"none", nil, nil},
		{"key", map[string]string{"a": "gpt-4o", "fast": "latest", "gpt-4o-mini": "openai/x"}, nil},
		{"team", nil, map[string]string{"openrouter/qwen/qwen3.5-flash-02-23": "embed", "z": "AgentX-LLM"}},
		{"both", map[string]string{"secret": "fast", "embed": "gpt-4o"}, map[string]string{"fast": "chain1", "AAA": "embed"}},
		{"cycles", map[string]string{"gpt-4o": "secret"}, map[string]string{"latest": "latest"}},
	}
	for _, caller := range callers {
		t.Run(caller.name, func(t *testing.T) {
			ids := map[string]struct{}{}
			for _, g := range c.ModelGroups() {
				ids[g] = struct{}{}
			}
			for _, a := range c.Aliases() {
				ids[a.Name] = struct{}{}
			}
			for _, m := range []map[string]string{caller.key, caller.team} {
				for n := range m {
					ids[n] = struct{}{}
				}
			}
			var want []gateway.Candidate
			for id := range ids {
				res := c.Resolve(id, caller.key, caller.team)
				if !res.Found || res.Hidden {
					continue
				}
				want = append(want, gateway.Candidate{ID: id, Names: res.Names, AccessGroups: res.AccessGroups})
			}
			sort.Slice(want, func(i, j int) bool { return want[i].ID < want[j].ID })
			got := c.Candidates(caller.key, caller.team).Items
			if len(got) != len(want) {
				t.Fatalf("Candidates() ids = %q, want %q", candidateIDs(&gateway.CandidateList{Items: got}), candidateIDs(&gateway.CandidateList{Items: want}))
			}
			for i := range got {
				if got[i].ID != want[i].ID || !slices.Equal(got[i].Names, want[i].Names) || !slices.Equal(got[i].AccessGroups, want[i].AccessGroups) {
					t.Errorf("Candidates()[%d] = %+v, want %+v", i, got[i], want[i])
				}
			}
			if caller.key != nil || caller.team != nil {
				checkDerived(t, c.Candidates(nil, nil), c.Candidates(caller.key, caller.team))
			}
		})
	}
}

// checkDerived checks that l keeps CandidateList's promise about its Base:
// it is shared, Redone is sorted without repeats, and every id outside
// Redone that is in either list is in both, with equal items.
func checkDerived(t *testing.T, shared, l *gateway.CandidateList) {
	t.Helper()
	if l.Base != shared {
		t.Errorf("Base = %p, want the shared list %p", l.Base, shared)
		return
	}
	if !slices.IsSorted(l.Redone) || len(slices.Compact(slices.Clone(l.Redone))) != len(l.Redone) {
		t.Errorf("Redone = %q, want sorted without repeats", l.Redone)
	}
	items := func(cl *gateway.CandidateList) map[string]gateway.Candidate {
		m := make(map[string]gateway.Candidate, len(cl.Items))
		for _, c := range cl.Items {
			m[c.ID] = c
		}
		return m
	}
	mine, base := items(l), items(shared)
	for _, m := range []map[string]gateway.Candidate{mine, base} {
		for id := range m {
			if _, redone := slices.BinarySearch(l.Redone, id); redone {
				continue
			}
			a, inMine := mine[id]
			b, inBase := base[id]
			if !inMine || !inBase || !reflect.DeepEqual(a, b) {
				t.Errorf("%q is not in Redone, but the lists differ: %+v (%t) against base %+v (%t)", id, a, inMine, b, inBase)
			}
		}
	}
}

func sortedWith(base []string, extra ...string) []string {
	out := append(slices.Clone(base), extra...)
	sort.Strings(out)
	return out
}

func without(base []string, drop ...string) []string {
	var out []string
	for _, b := range base {
		if !slices.Contains(drop, b) {
			out = append(out, b)
		}
	}
	return out
}
