package catalog

import (
	"fmt"
	"testing"

	"github.com/regate/gateway/gateway"
)

// benchCatalog has n exact groups, n/4 global aliases and a few wildcards,
// the size of a large deployment.
func benchCatalog(b *testing.B, n int) *Catalog {
	b.Helper()
	var deps []gateway.Deployment
	for i := range n {
		name := fmt.Sprintf("model-%04d", i)
		deps = append(deps, dep(fmt.Sprint(i), name, "openai/"+name, "openai", fmt.Sprintf("group-%d", i%10)))
	}
	deps = append(deps,
		dep("w1", "openai/*", "openai/*", "openai", "default-models"),
		dep("w2", "openai/o1-*", "openai/o1-*", "openai", "restricted-models"),
		dep("w3", "anthropic/*", "anthropic/*", "anthropic"),
	)
	var aliases []Alias
	for i := range n / 4 {
		aliases = append(aliases, Alias{Name: fmt.Sprintf("alias-%04d", i), Target: fmt.Sprintf("model-%04d", i*2)})
	}
	c, err := New(deps, aliases)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkResolve(b *testing.B) {
	c := benchCatalog(b, 1000)
	key := map[string]string{"coder": "alias-0001", "model-0004": "model-0005"}
	team := map[string]string{"fast": "model-0009"}
	cases := []struct {
		name      string
		model     string
		key, team map[string]string
	}{
		{"group", "model-0500", nil, nil},
		{"global_alias", "alias-0100", nil, nil},
		{"wildcard", "openai/o1-mini", nil, nil},
		{"not_found", "nope", nil, nil},
		{"group_with_caller_aliases", "model-0500", key, team},
		{"key_alias_chain", "coder", key, team},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res := c.Resolve(tc.model, tc.key, tc.team)
				if res.Requested != tc.model {
					b.Fatal("wrong resolution")
				}
			}
		})
	}
}

func BenchmarkCandidates(b *testing.B) {
	for _, n := range []int{100, 1000} {
		c := benchCatalog(b, n)
		key := map[string]string{"coder": "alias-0001", "model-0004": "model-0005"}
		team := map[string]string{"fast": "model-0009", "alias-0003": "openai/gpt-4.1"}
		b.Run(fmt.Sprintf("shared/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if l := c.Candidates(nil, nil); len(l.Items) == 0 {
					b.Fatal("empty list")
				}
			}
		})
		b.Run(fmt.Sprintf("with_aliases/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if l := c.Candidates(key, team); len(l.Items) == 0 {
					b.Fatal("empty list")
				}
			}
		})
	}
}
