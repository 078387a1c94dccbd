package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

// dep builds a deployment the way the config package does.
func dep(id, modelName, providerModel, provider string, accessGroups ...string) gateway.Deployment {
	return gateway.Deployment{
		ID:            id,
		ModelName:     modelName,
		ProviderModel: providerModel,
		Provider:      provider,
		AccessGroups:  accessGroups,
	}
}

func testDeployments() []gateway.Deployment {
	return []gateway.Deployment{
		dep("0", "gpt-4o", "openai/gpt-4o", "openai", "default-models"),
		dep("1", "gpt-4o", "azure/gpt-4o-eu", "azure", "eu-models"),
		dep("2", "gpt-4o-mini", "openai/gpt-4o-mini", "openai", "default-models"),
		dep("3", "openrouter/qwen/qwen3.5-flash-02-23", "openrouter/qwen/qwen3.5-flash-02-23", "openrouter"),
		dep("4", "openai/*", "openai/*", "openai", "default-models"),
		dep("5", "openai/o1-*", "openai/o1-*", "openai", "restricted-models"),
		dep("6", "anthropic/*", "anthropic/claude-fixed", "anthropic"),
		dep("7", "multi/*/v*", "mock/*-*", "mock"),
		dep("8", "embed", "mock/embed", "mock", "embedding-models"),
		dep("9", "openai/*", "mock/*", "mock", "backup-models"),
		dep("10", "openai/o1-preview", "mock/o1-preview", "mock"),
	}
}

func testAliases() []Alias {
	return []Alias{
		{Name: "AgentX-LLM", Target: "openrouter/qwen/qwen3.5-flash-02-23"},
		{Name: "fast", Target: "gpt-4o-mini"},
		{Name: "secret", Target: "gpt-4o", Hidden: true},
		{Name: "chain1", Target: "fast"},
		{Name: "latest", Target: "openai/gpt-4.1"},
		{Name: "dangling", Target: "nowhere"},
	}
}

func newTestCatalog(tb testing.TB) *Catalog {
	tb.Helper()
	c, err := New(testDeployments(), testAliases())
	if err != nil {
		tb.Fatalf("New() error = %v", err)
	}
	return c
}

func TestUpstreamModel(t *testing.T) {
	tests := []struct {
		provider, model, want string
	}{
		{"openai", "openai/gpt-4o", "gpt-4o"},
		{"openrouter", "openrouter/qwen/qwen3.5-flash", "qwen/qwen3.5-flash"},
		{"openai", "gpt-4o", "gpt-4o"},
		{"openai_compatible", "weird/model", "weird/model"},
		{"openai", "openaix/gpt", "openaix/gpt"},
		{"openai", "openai", "openai"},
		{"openai", "openai/", ""},
		{"", "a/b", "a/b"},
	}
	for _, tc := range tests {
		t.Run(tc.provider+"|"+tc.model, func(t *testing.T) {
			if got := UpstreamModel(tc.provider, tc.model); got != tc.want {
				t.Errorf("UpstreamModel(%q, %q) = %q, want %q", tc.provider, tc.model, got, tc.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	c := newTestCatalog(t)
	wantGroups := []string{"embed", "gpt-4o", "gpt-4o-mini", "openai/o1-preview", "openrouter/qwen/qwen3.5-flash-02-23"}
	if got := c.ModelGroups(); !slices.Equal(got, wantGroups) {
		t.Errorf("ModelGroups() = %q, want %q", got, wantGroups)
	}
	wantAG := []string{"backup-models", "default-models", "embedding-models", "eu-models", "restricted-models"}
	if got := c.AccessGroups(); !slices.Equal(got, wantAG) {
		t.Errorf("AccessGroups() = %q, want %q", got, wantAG)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{{"default-models", true}, {"restricted-models", true}, {"Default-models", false}, {"gpt-4o", false}, {"", false}} {
		if got := c.IsAccessGroup(tc.name); got != tc.want {
			t.Errorf("IsAccessGroup(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	deps := c.Deployments()
	if len(deps) != len(testDeployments()) {
		t.Fatalf("len(Deployments()) = %d, want %d", len(deps), len(testDeployments()))
	}
	for i, d := range deps {
		if d.ID != fmt.Sprint(i) {
			t.Errorf("Deployments()[%d].ID = %q, want config order", i, d.ID)
		}
	}
	if deps[2].UpstreamModel != "gpt-4o-mini" {
		t.Errorf("Deployments()[2].UpstreamModel = %q, want %q", deps[2].UpstreamModel, "gpt-4o-mini")
	}
	// The returned slice is a copy.
	deps[0].AccessGroups[0] = "mutated"
	if got := c.Deployments()[0].AccessGroups[0]; got != "default-models" {
		t.Errorf("Deployments() shares memory with the catalog: AccessGroups[0] = %q after caller mutation", got)
	}
	var aliasNames []string
	for _, a := range c.Aliases() {
		aliasNames = append(aliasNames, a.Name)
	}
	wantAliases := []string{"AgentX-LLM", "chain1", "dangling", "fast", "latest", "secret"}
	if !slices.Equal(aliasNames, wantAliases) {
		t.Errorf("Aliases() names = %q, want %q", aliasNames, wantAliases)
	}
}

func TestNewErrors(t *testing.T) {
	ok := []gateway.Deployment{dep("0", "gpt-4o", "openai/gpt-4o", "openai")}
	tests := []struct {
		name        string
		deployments []gateway.Deployment
		aliases     []Alias
		want        []string // substrings, one per expected problem, in order
	}{
		{
			name:        "global alias cycle",
			deployments: ok,
			aliases:     []Alias{{Name: "b", Target: "a"}, {Name: "a", Target: "b"}},
			want:        []string{"alias cycle: a -> b -> a"},
		},
		{
			name:        "self alias",
			deployments: ok,
			aliases:     []Alias{{Name: "x", Target: "x"}},
			want:        []string{"alias cycle: x -> x"},
		},
		{
			name:        "alias into a cycle is reported as the cycle",
			deployments: ok,
			aliases:     []Alias{{Name: "in", Target: "m"}, {Name: "m", Target: "n"}, {Name: "n", Target: "m"}},
			want:        []string{"alias cycle: m -> n -> m"},
		},
		{
			name:        "nine hops",
			deployments: ok,
			aliases:     chainAliases(9, "gpt-4o"),
			want:        []string{"alias chain longer than 8 hops: h1 -> h2 -> h3 -> h4 -> h5 -> h6 -> h7 -> h8 -> h9 -> gpt-4o"},
		},
		{
			name:        "duplicate, empty name, empty target",
			deployments: ok,
			aliases:     []Alias{{Name: "a", Target: "gpt-4o"}, {Name: "a", Target: "gpt-4o"}, {Name: "", Target: "gpt-4o"}, {Name: "e"}},
			want:        []string{`alias "a": defined twice`, `alias "": empty alias name`, `alias "e": empty target`},
		},
		{
			name:        "provider model with more stars",
			deployments: []gateway.Deployment{dep("0", "gpt-4o", "openai/*", "openai"), dep("1", "a/*", "openai/*-*", "openai")},
			want: []string{
				`deployment 0 (model_name "gpt-4o"): provider model "openai/*" has more '*' than model_name`,
				`deployment 1 (model_name "a/*"): provider model "openai/*-*" has more '*' than model_name`,
			},
		},
		{
			name:        "empty names and duplicate ids",
			deployments: []gateway.Deployment{dep("0", "", "openai/x", "openai"), dep("x", "a", "", "openai"), dep("d", "a", "openai/a", "openai"), dep("d", "b", "openai/b", "openai")},
			want: []string{
				"empty model_name",
				"empty provider model",
				`deployment 3 (id "d") (model_name "b"): duplicate deployment id "d" (also deployment 2)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.deployments, tc.aliases)
			if err == nil {
				t.Fatalf("New() = %v, nil, want error", c)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("New() error %T, want ErrorList", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("New() problems = %d (%v), want %d (%q)", len(list), err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(list[i].Error(), w) {
					t.Errorf("New() problem %d = %q, want it to contain %q", i, list[i].Error(), w)
				}
			}
		})
	}
}

// chainAliases returns n global aliases h1 -> h2 -> ... -> hn -> target.
func chainAliases(n int, target string) []Alias {
	var out []Alias
	for i := 1; i <= n; i++ {
		t := fmt.Sprintf("h%d", i+1)
		if i == n {
			t = target
		}
		out = append(out, Alias{Name: fmt.Sprintf("h%d", i), Target: t})
	}
	return out
}

// chainMap is chainAliases as an alias table.
func chainMap(n int, target string) map[string]string {
	m := make(map[string]string)
	for _, a := range chainAliases(n, target) {
		m[a.Name] = a.Target
	}
	return m
}

func TestNewDepth(t *testing.T) {
	ok := []gateway.Deployment{dep("0", "gpt-4o", "openai/gpt-4o", "openai")}
	c, err := New(ok, chainAliases(MaxAliasHops, "gpt-4o"))
	if err != nil {
		t.Fatalf("New(8 hops) error = %v, want nil", err)
	}
	res := c.Resolve("h1", nil, nil)
	if !res.Found || len(res.Chain) != MaxAliasHops+2 {
		t.Errorf("Resolve(h1) = found %v, %d links, want found with %d links", res.Found, len(res.Chain), MaxAliasHops+2)
	}
	if _, err := New(ok, chainAliases(MaxAliasHops+1, "gpt-4o")); err == nil {
		t.Errorf("New(9 hops) error = nil, want too deep")
	}
}

func TestNewCopiesInput(t *testing.T) {
	deps := testDeployments()
	c, err := New(deps, testAliases())
	if err != nil {
		t.Fatal(err)
	}
	deps[0].AccessGroups[0] = "mutated"
	deps[2].ModelName = "mutated"
	if !c.IsAccessGroup("default-models") || c.IsAccessGroup("mutated") {
		t.Errorf("catalog changed after the caller mutated its deployments")
	}
	if got := c.Resolve("gpt-4o", nil, nil).AccessGroups; !slices.Equal(got, []string{"default-models", "eu-models"}) {
		t.Errorf("Resolve(gpt-4o).AccessGroups = %q after caller mutation", got)
	}
}

// TestGroupDeploymentsInConfigOrder checks that a group's deployments come
// in config order whether they are adjacent in the config (shared with the
// catalog's own list) or not (copied), and that a resolution's list cannot
// grow into its neighbour's.
func TestGroupDeploymentsInConfigOrder(t *testing.T) {
	tests := []struct {
		name string
		deps []gateway.Deployment
		want map[string][]string // group → deployment ids
	}{
		{"adjacent", []gateway.Deployment{
			dep("a1", "a", "openai/a1", "openai"), dep("a2", "a", "openai/a2", "openai"), dep("b1", "b", "openai/b1", "openai"),
		}, map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}},
		{"interleaved", []gateway.Deployment{
			dep("a1", "a", "openai/a1", "openai"), dep("b1", "b", "openai/b1", "openai"), dep("a2", "a", "openai/a2", "openai"),
		}, map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}},
		{"around a wildcard", []gateway.Deployment{
			dep("a1", "a", "openai/a1", "openai"), dep("w", "w/*", "openai/*", "openai"), dep("a2", "a", "openai/a2", "openai"),
		}, map[string][]string{"a": {"a1", "a2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.deps, nil)
			if err != nil {
				t.Fatal(err)
			}
			for group, want := range tc.want {
				res := c.Resolve(group, nil, nil)
				var got []string
				for _, d := range res.Deployments {
					got = append(got, d.ID)
				}
				if !slices.Equal(got, want) {
					t.Errorf("Resolve(%q).Deployments = %v, want %v", group, got, want)
				}
				if cap(res.Deployments) != len(res.Deployments) {
					t.Errorf("Resolve(%q).Deployments has room to grow (len %d, cap %d)", group, len(res.Deployments), cap(res.Deployments))
				}
			}
		})
	}
}
