package catalog

import (
	"slices"
	"testing"
	"unsafe"

	"github.com/regate/gateway/gateway"
)

func alias(name, source string) gateway.ChainLink {
	return gateway.ChainLink{Name: name, Kind: gateway.LinkAlias, Source: source}
}

func mg(name string) gateway.ChainLink {
	return gateway.ChainLink{Name: name, Kind: gateway.LinkModelGroup}
}

func pm(name string) gateway.ChainLink {
	return gateway.ChainLink{Name: name, Kind: gateway.LinkProviderModel}
}

// want is the part of a Resolution a test states; Upstreams lists
// "id=upstream" for each serving deployment.
type want struct {
	Found        bool
	Chain        []gateway.ChainLink
	Names        []string
	Resolved     string
	Wildcard     string
	AccessGroups []string
	Upstreams    []string
	Hidden       bool
}

func summarize(res gateway.Resolution) want {
	w := want{
		Found:        res.Found,
		Chain:        res.Chain,
		Names:        res.Names,
		Resolved:     res.Resolved,
		Wildcard:     res.Wildcard,
		AccessGroups: res.AccessGroups,
		Hidden:       res.Hidden,
	}
	for _, d := range res.Deployments {
		w.Upstreams = append(w.Upstreams, d.ID+"="+d.UpstreamModel)
	}
	return w
}

func equalWant(a, b want) bool {
	return a.Found == b.Found && a.Resolved == b.Resolved && a.Wildcard == b.Wildcard && a.Hidden == b.Hidden &&
		slices.Equal(a.Chain, b.Chain) && slices.Equal(a.Names, b.Names) &&
		slices.Equal(a.AccessGroups, b.AccessGroups) && slices.Equal(a.Upstreams, b.Upstreams)
}

func TestResolve(t *testing.T) {
	c := newTestCatalog(t)
	const qwen = "openrouter/qwen/qwen3.5-flash-02-23"
	gpt4oMini := want{
		Found:        true,
		Chain:        []gateway.ChainLink{mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
		Names:        []string{"gpt-4o-mini", "openai/gpt-4o-mini"},
		Resolved:     "gpt-4o-mini",
		AccessGroups: []string{"default-models"},
		Upstreams:    []string{"2=gpt-4o-mini"},
	}
	tests := []struct {
		name       string
		requested  string
		key, team  map[string]string
		want       want
		wantHidden bool
	}{
		{
			name:      "exact group",
			requested: "gpt-4o-mini",
			want:      gpt4oMini,
		},
		{
			name:      "group with two deployments",
			requested: "gpt-4o",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{mg("gpt-4o"), pm("openai/gpt-4o"), pm("azure/gpt-4o-eu")},
				Names:        []string{"gpt-4o", "openai/gpt-4o", "azure/gpt-4o-eu"},
				Resolved:     "gpt-4o",
				AccessGroups: []string{"default-models", "eu-models"},
				Upstreams:    []string{"0=gpt-4o", "1=gpt-4o-eu"},
			},
		},
		{
			name:      "DESIGN example: global alias to a group named like its provider model",
			requested: "AgentX-LLM",
			want: want{
				Found:     true,
				Chain:     []gateway.ChainLink{alias("AgentX-LLM", gateway.SourceGlobal), mg(qwen), pm(qwen)},
				Names:     []string{"AgentX-LLM", qwen},
				Resolved:  qwen,
				Upstreams: []string{"3=qwen/qwen3.5-flash-02-23"},
			},
		},
		{
			name:      "two global hops",
			requested: "chain1",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("chain1", gateway.SourceGlobal), alias("fast", gateway.SourceGlobal), mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
				Names:        []string{"chain1", "fast", "gpt-4o-mini", "openai/gpt-4o-mini"},
				Resolved:     "gpt-4o-mini",
				AccessGroups: []string{"default-models"},
				Upstreams:    []string{"2=gpt-4o-mini"},
			},
		},
		{
			name:      "hidden global alias resolves and is marked hidden",
			requested: "secret",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("secret", gateway.SourceGlobal), mg("gpt-4o"), pm("openai/gpt-4o"), pm("azure/gpt-4o-eu")},
				Names:        []string{"secret", "gpt-4o", "openai/gpt-4o", "azure/gpt-4o-eu"},
				Resolved:     "gpt-4o",
				AccessGroups: []string{"default-models", "eu-models"},
				Upstreams:    []string{"0=gpt-4o", "1=gpt-4o-eu"},
				Hidden:       true,
			},
		},
		{
			name:      "key alias shadows a hidden global alias",
			requested: "secret",
			key:       map[string]string{"secret": "gpt-4o-mini"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("secret", gateway.SourceKey), mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
				Names:        []string{"secret", "gpt-4o-mini", "openai/gpt-4o-mini"},
				Resolved:     "gpt-4o-mini",
				AccessGroups: []string{"default-models"},
				Upstreams:    []string{"2=gpt-4o-mini"},
			},
		},
		{
			name:      "team alias shadows a model group",
			requested: "gpt-4o",
			team:      map[string]string{"gpt-4o": "gpt-4o-mini"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("gpt-4o", gateway.SourceTeam), mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
				Names:        []string{"gpt-4o", "gpt-4o-mini", "openai/gpt-4o-mini"},
				Resolved:     "gpt-4o-mini",
				AccessGroups: []string{"default-models"},
				Upstreams:    []string{"2=gpt-4o-mini"},
			},
		},
		{
			name:      "team alias shadows a global alias",
			requested: "fast",
			team:      map[string]string{"fast": "embed"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("fast", gateway.SourceTeam), mg("embed"), pm("mock/embed")},
				Names:        []string{"fast", "embed", "mock/embed"},
				Resolved:     "embed",
				AccessGroups: []string{"embedding-models"},
				Upstreams:    []string{"8=embed"},
			},
		},
		{
			name:      "key alias beats team alias",
			requested: "fast",
			key:       map[string]string{"fast": "gpt-4o-mini"},
			team:      map[string]string{"fast": "embed"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("fast", gateway.SourceKey), mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
				Names:        []string{"fast", "gpt-4o-mini", "openai/gpt-4o-mini"},
				Resolved:     "gpt-4o-mini",
				AccessGroups: []string{"default-models"},
				Upstreams:    []string{"2=gpt-4o-mini"},
			},
		},
		{
			name:      "each hop restarts at the key: a key alias redirects a global chain midway",
			requested: "chain1",
			key:       map[string]string{"fast": "embed"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("chain1", gateway.SourceGlobal), alias("fast", gateway.SourceKey), mg("embed"), pm("mock/embed")},
				Names:        []string{"chain1", "fast", "embed", "mock/embed"},
				Resolved:     "embed",
				AccessGroups: []string{"embedding-models"},
				Upstreams:    []string{"8=embed"},
			},
		},
		{
			name:      "unrelated caller aliases do not change a resolution",
			requested: "gpt-4o-mini",
			key:       map[string]string{"mine": "gpt-4o"},
			team:      map[string]string{"ours": "embed"},
			want:      gpt4oMini,
		},
		{
			name:      "wildcard with two deployments sharing the pattern",
			requested: "openai/gpt-4",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{mg("openai/gpt-4"), pm("openai/gpt-4"), pm("mock/gpt-4")},
				Names:        []string{"openai/gpt-4", "mock/gpt-4"},
				Resolved:     "openai/gpt-4",
				Wildcard:     "openai/*",
				AccessGroups: []string{"backup-models", "default-models"},
				Upstreams:    []string{"4=gpt-4", "9=gpt-4"},
			},
		},
		{
			name:      "most specific wildcard wins",
			requested: "openai/o1-mini",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{mg("openai/o1-mini"), pm("openai/o1-mini")},
				Names:        []string{"openai/o1-mini"},
				Resolved:     "openai/o1-mini",
				Wildcard:     "openai/o1-*",
				AccessGroups: []string{"restricted-models"},
				Upstreams:    []string{"5=o1-mini"},
			},
		},
		{
			name:      "a wildcard star matches at least one character",
			requested: "openai/o1-",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{mg("openai/o1-"), pm("openai/o1-"), pm("mock/o1-")},
				Names:        []string{"openai/o1-", "mock/o1-"},
				Resolved:     "openai/o1-",
				Wildcard:     "openai/*",
				AccessGroups: []string{"backup-models", "default-models"},
				Upstreams:    []string{"4=o1-", "9=o1-"},
			},
		},
		{
			name:      "an empty wildcard match is not served",
			requested: "openai/",
			want:      want{Names: []string{"openai/"}},
		},
		{
			name:      "exact group beats wildcards",
			requested: "openai/o1-preview",
			want: want{
				Found:     true,
				Chain:     []gateway.ChainLink{mg("openai/o1-preview"), pm("mock/o1-preview")},
				Names:     []string{"openai/o1-preview", "mock/o1-preview"},
				Resolved:  "openai/o1-preview",
				Upstreams: []string{"10=o1-preview"},
			},
		},
		{
			name:      "wildcard with a fixed provider model",
			requested: "anthropic/claude-x",
			want: want{
				Found:     true,
				Chain:     []gateway.ChainLink{mg("anthropic/claude-x"), pm("anthropic/claude-fixed")},
				Names:     []string{"anthropic/claude-x", "anthropic/claude-fixed"},
				Resolved:  "anthropic/claude-x",
				Wildcard:  "anthropic/*",
				Upstreams: []string{"6=claude-fixed"},
			},
		},
		{
			name:      "two stars substituted in order",
			requested: "multi/a/vb2",
			want: want{
				Found:     true,
				Chain:     []gateway.ChainLink{mg("multi/a/vb2"), pm("mock/a-b2")},
				Names:     []string{"multi/a/vb2", "mock/a-b2"},
				Resolved:  "multi/a/vb2",
				Wildcard:  "multi/*/v*",
				Upstreams: []string{"7=a-b2"},
			},
		},
		{
			name:      "global alias to a wildcard-served name",
			requested: "latest",
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("latest", gateway.SourceGlobal), mg("openai/gpt-4.1"), pm("openai/gpt-4.1"), pm("mock/gpt-4.1")},
				Names:        []string{"latest", "openai/gpt-4.1", "mock/gpt-4.1"},
				Resolved:     "openai/gpt-4.1",
				Wildcard:     "openai/*",
				AccessGroups: []string{"backup-models", "default-models"},
				Upstreams:    []string{"4=gpt-4.1", "9=gpt-4.1"},
			},
		},
		{
			name:      "key alias to a wildcard-served name",
			requested: "mine",
			key:       map[string]string{"mine": "openai/o1-pro"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("mine", gateway.SourceKey), mg("openai/o1-pro"), pm("openai/o1-pro")},
				Names:        []string{"mine", "openai/o1-pro"},
				Resolved:     "openai/o1-pro",
				Wildcard:     "openai/o1-*",
				AccessGroups: []string{"restricted-models"},
				Upstreams:    []string{"5=o1-pro"},
			},
		},
		{name: "unknown name", requested: "nope", want: want{Names: []string{"nope"}}},
		{name: "empty name", requested: "", want: want{Names: []string{""}}},
		{name: "case-sensitive group", requested: "GPT-4o", want: want{Names: []string{"GPT-4o"}}},
		{name: "case-sensitive alias", requested: "agentx-llm", want: want{Names: []string{"agentx-llm"}}},
		{name: "case-sensitive wildcard prefix", requested: "OpenAI/gpt-4", want: want{Names: []string{"OpenAI/gpt-4"}}},
		{name: "trailing space", requested: "gpt-4o ", want: want{Names: []string{"gpt-4o "}}},
		{name: "leading space on alias", requested: " fast", want: want{Names: []string{" fast"}}},
		{name: "look-alike unicode", requested: "gpt-4о", want: want{Names: []string{"gpt-4о"}}}, // Cyrillic о
		{name: "literal star is not a pattern", requested: "gpt-*", want: want{Names: []string{"gpt-*"}}},
		{name: "a wildcard pattern is not a requestable name", requested: "openai/*", want: want{Names: []string{"openai/*"}}},
		{name: "star in a name a wildcard would otherwise serve", requested: "openai/gpt-*", want: want{Names: []string{"openai/gpt-*"}}},
		{
			name:      "literal star in a key alias name",
			requested: "gpt-*",
			key:       map[string]string{"gpt-*": "gpt-4o-mini"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("gpt-*", gateway.SourceKey), mg("gpt-4o-mini"), pm("openai/gpt-4o-mini")},
				Names:        []string{"gpt-*", "gpt-4o-mini", "openai/gpt-4o-mini"},
				Resolved:     "gpt-4o-mini",
				AccessGroups: []string{"default-models"},
				Upstreams:    []string{"2=gpt-4o-mini"},
			},
		},
		{
			name:      "dangling global alias",
			requested: "dangling",
			want: want{
				Chain: []gateway.ChainLink{alias("dangling", gateway.SourceGlobal)},
				Names: []string{"dangling", "nowhere"},
			},
		},
		{
			name:      "key alias rescues a dangling global alias",
			requested: "dangling",
			key:       map[string]string{"nowhere": "embed"},
			want: want{
				Found:        true,
				Chain:        []gateway.ChainLink{alias("dangling", gateway.SourceGlobal), alias("nowhere", gateway.SourceKey), mg("embed"), pm("mock/embed")},
				Names:        []string{"dangling", "nowhere", "embed", "mock/embed"},
				Resolved:     "embed",
				AccessGroups: []string{"embedding-models"},
				Upstreams:    []string{"8=embed"},
			},
		},
		{
			name:      "cycle through key and team",
			requested: "a",
			key:       map[string]string{"a": "b"},
			team:      map[string]string{"b": "a"},
			want: want{
				Chain: []gateway.ChainLink{alias("a", gateway.SourceKey), alias("b", gateway.SourceTeam)},
				Names: []string{"a", "b"},
			},
		},
		{
			name:      "key alias to itself is a cycle",
			requested: "gpt-4o",
			key:       map[string]string{"gpt-4o": "gpt-4o"},
			want: want{
				Chain: []gateway.ChainLink{alias("gpt-4o", gateway.SourceKey)},
				Names: []string{"gpt-4o"},
			},
		},
		{
			name:      "cycle through a global alias",
			requested: "fast",
			key:       map[string]string{"gpt-4o-mini": "chain1"},
			want: want{
				Chain: []gateway.ChainLink{alias("fast", gateway.SourceGlobal), alias("gpt-4o-mini", gateway.SourceKey), alias("chain1", gateway.SourceGlobal)},
				Names: []string{"fast", "gpt-4o-mini", "chain1"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := c.Resolve(tc.requested, tc.key, tc.team)
			if res.Requested != tc.requested {
				t.Errorf("Resolve(%q).Requested = %q, want %q", tc.requested, res.Requested, tc.requested)
			}
			if got := summarize(res); !equalWant(got, tc.want) {
				t.Errorf("Resolve(%q, %v, %v) =\n  %+v\nwant\n  %+v", tc.requested, tc.key, tc.team, got, tc.want)
			}
		})
	}
}

func TestResolveDepth(t *testing.T) {
	c := newTestCatalog(t)
	tests := []struct {
		name      string
		hops      int
		wantFound bool
	}{
		{"one hop", 1, true},
		{"eight hops", 8, true},
		{"nine hops", 9, false},
		{"twenty hops", 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, layer := range []string{gateway.SourceKey, gateway.SourceTeam} {
				var key, team map[string]string
				if layer == gateway.SourceKey {
					key = chainMap(tc.hops, "gpt-4o-mini")
				} else {
					team = chainMap(tc.hops, "gpt-4o-mini")
				}
				res := c.Resolve("h1", key, team)
				if res.Found != tc.wantFound {
					t.Errorf("Resolve(h1) with %d %s hops: Found = %v, want %v", tc.hops, layer, res.Found, tc.wantFound)
				}
				wantLinks := min(tc.hops, MaxAliasHops+1)
				if tc.wantFound {
					wantLinks = tc.hops + 2
				}
				if len(res.Chain) != wantLinks {
					t.Errorf("Resolve(h1) with %d %s hops: %d links, want %d", tc.hops, layer, len(res.Chain), wantLinks)
				}
			}
		})
	}
}

// TestResolveFastPath checks that the precomputed resolutions Resolve returns
// for callers without aliases, or whose aliases do not touch a chain, are the
// ones a full walk produces.
func TestResolveFastPath(t *testing.T) {
	c := newTestCatalog(t)
	callers := []struct {
		name      string
		key, team map[string]string
	}{
		{"no aliases", nil, nil},
		{"empty maps", map[string]string{}, map[string]string{}},
		{"unrelated aliases", map[string]string{"zz": "gpt-4o"}, map[string]string{"yy": "embed"}},
		{"touching aliases", map[string]string{"fast": "embed", "nowhere": "gpt-4o"}, map[string]string{"gpt-4o": "gpt-4o-mini"}},
		{"aliasing a wildcard name", map[string]string{"openai/gpt-4": "embed"}, map[string]string{"zz": "openai/gpt-4"}},
	}
	ids := append(c.ModelGroups(), "AgentX-LLM", "fast", "secret", "chain1", "latest", "dangling", "openai/gpt-4", "zz")
	for _, caller := range callers {
		t.Run(caller.name, func(t *testing.T) {
			for pass := range 2 { // the second from the caches
				for _, id := range ids {
					got := c.Resolve(id, caller.key, caller.team)
					want, _, _ := c.walk(id, caller.key, caller.team)
					if !equalWant(summarize(got), summarize(want)) || got.Requested != want.Requested {
						t.Errorf("pass %d: Resolve(%q) = %+v, want walk result %+v", pass, id, summarize(got), summarize(want))
					}
				}
			}
		})
	}
}

// TestResolveSharesServedLists checks that a name a wildcard deployment
// serves, and a name a caller's own alias table resolves, give the same
// lists every time (the policy engine's memo keys on them).
func TestResolveSharesServedLists(t *testing.T) {
	c := newTestCatalog(t)
	a := c.Resolve("openai/gpt-4", nil, nil)
	b := c.Resolve("openai/gpt-4", map[string]string{"zz": "gpt-4o"}, nil)
	if !a.Found || a.Wildcard == "" {
		t.Fatalf("Resolve(openai/gpt-4) = %+v, want a wildcard-served name", summarize(a))
	}
	if unsafe.SliceData(a.Names) != unsafe.SliceData(b.Names) || unsafe.SliceData(a.Chain) != unsafe.SliceData(b.Chain) {
		t.Error("two resolutions of one wildcard-served name do not share their lists")
	}
	if other := c.Resolve("openai/gpt-3", nil, nil); unsafe.SliceData(other.Names) == unsafe.SliceData(a.Names) || other.Resolved != "openai/gpt-3" {
		t.Errorf("another name got %+v sharing the first one's lists", summarize(other))
	}
	own := c.Resolve("openai/gpt-4", map[string]string{"openai/gpt-4": "embed"}, nil)
	if own.Resolved != "embed" || unsafe.SliceData(own.Names) == unsafe.SliceData(a.Names) {
		t.Errorf("a caller aliasing the name got %+v, want its own resolution to embed", summarize(own))
	}
	if nf := c.Resolve("nope", nil, nil); nf.Found {
		t.Errorf("Resolve(nope) = %+v, want not found", summarize(nf))
	}
	// A key's own alias chain: the same tables give the same lists; other
	// tables (even with the same contents) their own resolution.
	key := map[string]string{"mine": "fast"}
	x, y := c.Resolve("mine", key, nil), c.Resolve("mine", key, nil)
	if x.Resolved != "gpt-4o-mini" || unsafe.SliceData(x.Names) != unsafe.SliceData(y.Names) {
		t.Errorf("a key alias chain resolved twice = %+v and %+v, want gpt-4o-mini with shared lists", summarize(x), summarize(y))
	}
	other := map[string]string{"mine": "embed"}
	if z := c.Resolve("mine", other, nil); z.Resolved != "embed" || unsafe.SliceData(z.Names) == unsafe.SliceData(x.Names) {
		t.Errorf("another key's table resolved mine to %+v", summarize(z))
	}
}

func TestWildcardSpecificity(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string // in config order
		request  string
		want     string // winning pattern, "" for none
	}{
		{"longer prefix wins", []string{"openai/*", "openai/o1-*"}, "openai/o1-mini", "openai/o1-*"},
		{"longer prefix wins regardless of order", []string{"openai/o1-*", "openai/*"}, "openai/o1-mini", "openai/o1-*"},
		{"general pattern for the rest", []string{"openai/o1-*", "openai/*"}, "openai/gpt-4", "openai/*"},
		{"fewer stars on equal prefix", []string{"openai/*-*", "openai/*"}, "openai/a-b", "openai/*"},
		{"more literal text on equal prefix and stars", []string{"a/*", "a/*-mini"}, "a/o1-mini", "a/*-mini"},
		{"config order breaks a tie", []string{"*-*", "*/*"}, "a-b/c", "*-*"},
		{"config order breaks a tie, reversed", []string{"*/*", "*-*"}, "a-b/c", "*/*"},
		{"catch-all star", []string{"*", "openai/*"}, "groq/llama", "*"},
		{"catch-all loses to a prefix", []string{"*", "openai/*"}, "openai/gpt-4", "openai/*"},
		{"bedrock does not match bedrockz", []string{"bedrock/*"}, "bedrockz/x", ""},
		{"dot is literal", []string{"a.b/*"}, "axb/c", ""},
		{"suffix must match", []string{"*-mini"}, "gpt-4o-mini2", ""},
		{"suffix only", []string{"*-mini"}, "gpt-4o-mini", "*-mini"},
		{"middle literal", []string{"a/*/b/*"}, "a/x/y/b/z", "a/*/b/*"},
		{"middle literal missing", []string{"a/*/b/*"}, "a/x/y/c/z", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var deps []gateway.Deployment
			for i, p := range tc.patterns {
				deps = append(deps, dep(letter(i), p, "mock/"+p, "mock", "ag-"+p))
			}
			c, err := New(deps, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := c.Resolve(tc.request, nil, nil)
			if res.Wildcard != tc.want || res.Found != (tc.want != "") {
				t.Errorf("Resolve(%q) over %q = wildcard %q found %v, want %q", tc.request, tc.patterns, res.Wildcard, res.Found, tc.want)
			}
			if tc.want != "" && !slices.Equal(res.AccessGroups, []string{"ag-" + tc.want}) {
				t.Errorf("Resolve(%q).AccessGroups = %q, want those of %q only", tc.request, res.AccessGroups, tc.want)
			}
		})
	}
}

func letter(i int) string { return string(rune('a' + i)) }

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          []string // captures; nil = no match
	}{
		{"openai/*", "openai/gpt-4", []string{"gpt-4"}},
		{"openai/*", "openai/", nil},
		{"*", "x", []string{"x"}},
		{"*", "", nil},
		{"a*b*c", "aXbYc", []string{"X", "Y"}},
		{"a*b*c", "abbc", nil},
		{"a*b*c", "aXYbc", nil},
		{"a*b*c", "aXbbYc", []string{"X", "bY"}},
		{"a*b*c", "aXbYbZc", []string{"X", "YbZ"}},
		{"a**c", "aXYc", []string{"X", "Y"}},
		{"a**c", "aXc", nil},
		{"*/*", "a/b/c", []string{"a", "b/c"}},
		{"*x", "x", nil},
		{"*x", "xx", []string{"x"}},
		{"pre*", "pr", nil},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"|"+tc.name, func(t *testing.T) {
			c, err := New([]gateway.Deployment{dep("0", tc.pattern, "mock/"+tc.pattern, "mock")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := c.wildcards[0].match(tc.name, nil)
			if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
				t.Errorf("match(%q, %q) = %q, %v, want %q", tc.pattern, tc.name, got, ok, tc.want)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct {
		q    string
		caps []string
		want string
	}{
		{"mock/*", []string{"gpt-4"}, "mock/gpt-4"},
		{"mock/*-*", []string{"a", "b"}, "mock/a-b"},
		{"mock/*", []string{"a", "b"}, "mock/a"},
		{"mock/fixed", []string{"a"}, "mock/fixed"},
		{"*", []string{"openai/gpt-4"}, "openai/gpt-4"},
	}
	for _, tc := range tests {
		if got := substitute(tc.q, tc.caps); got != tc.want {
			t.Errorf("substitute(%q, %q) = %q, want %q", tc.q, tc.caps, got, tc.want)
		}
	}
}

func TestResolveSharedResultsAreNotCorrupted(t *testing.T) {
	c := newTestCatalog(t)
	first := c.Resolve("gpt-4o", nil, nil)
	// A caller appending to the returned slices must not affect later calls.
	_ = append(first.Chain, alias("x", gateway.SourceKey))
	_ = append(first.Names, "x")
	_ = append(first.AccessGroups, "x")
	second := c.Resolve("gpt-4o", nil, nil)
	if len(second.Chain) != 3 || len(second.Names) != 3 || len(second.AccessGroups) != 2 {
		t.Errorf("Resolve(gpt-4o) after appends = %+v, want unchanged", summarize(second))
	}
	withAlias := c.Resolve("x", map[string]string{"x": "gpt-4o"}, nil)
	if got := withAlias.Chain[0]; got != alias("x", gateway.SourceKey) {
		t.Errorf("Resolve(x).Chain[0] = %+v, want the key alias", got)
	}
	if again := c.Resolve("gpt-4o", nil, nil); !equalWant(summarize(again), summarize(second)) {
		t.Errorf("Resolve(gpt-4o) changed after an alias resolution through it: %+v", summarize(again))
	}
}
