package catalog

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

func problems(tb testing.TB, err error) []string {
	tb.Helper()
	if err == nil {
		return nil
	}
	var list ErrorList
	if !errors.As(err, &list) {
		tb.Fatalf("error %T (%v), want ErrorList", err, err)
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Error()
	}
	return out
}

func TestCheckAliases(t *testing.T) {
	c := newTestCatalog(t)
	const dangling = `alias "dangling" -> "nowhere": nowhere is not a model group, alias or name a wildcard deployment serves`
	tests := []struct {
		name      string
		key, team map[string]string
		want      []string
	}{
		{
			name: "global only: the dangling global alias",
			want: []string{dangling},
		},
		{
			name: "key alias fixes the dangling global alias",
			key:  map[string]string{"nowhere": "gpt-4o"},
		},
		{
			name: "good key and team aliases",
			key:  map[string]string{"mine": "gpt-4o", "gpt-4o": "gpt-4o-mini", "w": "openai/o1-x"},
			team: map[string]string{"ours": "AgentX-LLM", "fast": "embed"},
			want: []string{dangling},
		},
		{
			name: "dangling key alias",
			key:  map[string]string{"mine": "gpt4o"},
			want: []string{`alias "mine" -> "gpt4o": gpt4o is not a model group, alias or name a wildcard deployment serves`, dangling},
		},
		{
			name: "alias to a wildcard pattern is dangling",
			team: map[string]string{"any": "openai/*"},
			want: []string{`alias "any" -> "openai/*": openai/* is not a model group, alias or name a wildcard deployment serves`, dangling},
		},
		{
			name: "cycle between key and team, reported once",
			key:  map[string]string{"a": "b"},
			team: map[string]string{"b": "a"},
			want: []string{"alias cycle: a -> b -> a", dangling},
		},
		{
			name: "team alias closing a cycle through global aliases",
			team: map[string]string{"gpt-4o-mini": "chain1"},
			want: []string{dangling, "alias cycle: chain1 -> fast -> gpt-4o-mini -> chain1"},
		},
		{
			name: "key self alias",
			key:  map[string]string{"gpt-4o": "gpt-4o"},
			want: []string{dangling, "alias cycle: gpt-4o -> gpt-4o"},
		},
		{
			name: "eight hops are fine",
			key:  chainMap(8, "gpt-4o"),
			want: []string{dangling},
		},
		{
			name: "nine hops are too deep",
			team: chainMap(9, "gpt-4o"),
			want: []string{dangling, "alias chain longer than 8 hops: h1 -> h2 -> h3 -> h4 -> h5 -> h6 -> h7 -> h8 -> h9 -> gpt-4o"},
		},
		{
			name: "empty names and targets",
			key:  map[string]string{"": "gpt-4o", "e": ""},
			want: []string{`alias "": empty alias name`, `alias "e": empty target`, dangling},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, c.CheckAliases(tc.key, tc.team))
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("CheckAliases(%v, %v) =\n  %q\nwant\n  %q", tc.key, tc.team, got, tc.want)
			}
		})
	}
}

func TestCheckAliasesErrorFields(t *testing.T) {
	c := newTestCatalog(t)
	err := c.CheckAliases(map[string]string{"k": "t1"}, map[string]string{"t1": "gone"})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("CheckAliases() = %v, want ErrorList", err)
	}
	var found bool
	for _, e := range list {
		var ae *AliasError
		if errors.As(e, &ae) && ae.Name == "t1" {
			found = true
			if ae.Kind != AliasDangling || ae.Source != gateway.SourceTeam || !slices.Equal(ae.Chain, []string{"t1", "gone"}) {
				t.Errorf("AliasError = %+v, want dangling team alias t1 -> gone", ae)
			}
		}
	}
	if !found {
		t.Errorf("CheckAliases() = %v, want a problem for t1", err)
	}
}

func TestCheckAllowList(t *testing.T) {
	c := newTestCatalog(t)
	const reason = "not a model group, alias, access group, special value or name a wildcard deployment serves"
	tests := []struct {
		name      string
		entries   []string
		key, team map[string]string
		want      []string
	}{
		{name: "empty list", entries: nil},
		{
			name:    "every accepted kind",
			entries: []string{"gpt-4o", "default-models", "AgentX-LLM", "secret", "dangling", "*", "all-proxy-models", "all-team-models", "no-default-models", "openai/gpt-4.1", "openai/o1-mini", "anthropic/x", "openai/*", "bedrock/*", "gpt-*"},
		},
		{
			name:    "key and team aliases are visible",
			entries: []string{"mine", "ours"},
			key:     map[string]string{"mine": "gpt-4o"},
			team:    map[string]string{"ours": "gpt-4o"},
		},
		{
			name:    "aliases of other principals are not",
			entries: []string{"mine", "ours"},
			want:    []string{`allow-list entry "mine": ` + reason, `allow-list entry "ours": ` + reason},
		},
		{
			name:    "unknown, misspelt, case and spaces",
			entries: []string{"gpt4o", "GPT-4o", "gpt-4o ", "default-model", "openai/"},
			want: []string{
				`allow-list entry "gpt4o": ` + reason,
				`allow-list entry "GPT-4o": ` + reason,
				`allow-list entry "gpt-4o ": ` + reason,
				`allow-list entry "default-model": ` + reason,
				`allow-list entry "openai/": ` + reason,
			},
		},
		{
			name:    "provider model of an exact group is not a name to allow",
			entries: []string{"openai/gpt-4o", "mock/embed"},
			// openai/gpt-4o is served by the openai/* wildcard; mock/embed is
			// served by nothing.
			want: []string{`allow-list entry "mock/embed": ` + reason},
		},
		{
			name:    "empty entry",
			entries: []string{""},
			want:    []string{`allow-list entry "": empty entry`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, c.CheckAllowList(tc.entries, tc.key, tc.team))
			if !slices.Equal(got, tc.want) {
				t.Errorf("CheckAllowList(%q) =\n  %q\nwant\n  %q", tc.entries, got, tc.want)
			}
		})
	}
}

func TestCheckAllowListIndex(t *testing.T) {
	c := newTestCatalog(t)
	err := c.CheckAllowList([]string{"gpt-4o", "bad", "embed", "worse"}, nil, nil)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("CheckAllowList() = %v, want 2 problems", err)
	}
	var idx []int
	for _, e := range list {
		var ee *EntryError
		if !errors.As(e, &ee) {
			t.Fatalf("problem %T, want *EntryError", e)
		}
		idx = append(idx, ee.Index)
	}
	if !slices.Equal(idx, []int{1, 3}) {
		t.Errorf("CheckAllowList() indexes = %v, want [1 3]", idx)
	}
}

// TestImports keeps the catalog free of dependencies beyond the standard
// library and the core package.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path != "github.com/regate/gateway/gateway" && strings.Contains(strings.Split(path, "/")[0], ".") {
				t.Errorf("%s imports %s; the catalog may import only the standard library and the core", f, path)
			}
		}
	}
}
