package catalog

import (
	"slices"
	"testing"

	"github.com/regate/gateway/gateway"
)

// fakeInfo knows a few upstream models of provider "openai" and counts its
// lookups.
type fakeInfo struct {
	known   map[string]gateway.ModelInfo
	lookups []string
}

func (f *fakeInfo) lookup(provider, model string) (gateway.ModelInfo, bool) {
	f.lookups = append(f.lookups, provider+"/"+model)
	info, ok := f.known[model]
	return info, ok && provider == "openai"
}

func newInfoCatalog(t *testing.T) (*Catalog, *fakeInfo) {
	t.Helper()
	price := &gateway.Price{PerToken: 1e-6}
	f := &fakeInfo{known: map[string]gateway.ModelInfo{
		"gpt-4o":      {MaxInputTokens: 128000, InputCost: price, OutputCost: price, Catalog: "openai/gpt-4o"},
		"gpt-4o-mini": {MaxInputTokens: 128000, InputCost: price, Catalog: "openai/gpt-4o-mini"},
		"o1":          {MaxInputTokens: 200000, Catalog: "openai/o1"},
	}}
	withInfo := func(d gateway.Deployment, info gateway.ModelInfo) gateway.Deployment {
		d.Info = info
		return d
	}
	deps := []gateway.Deployment{
		dep("0", "gpt-4o", "openai/gpt-4o", "openai"),
		withInfo(dep("1", "gpt-4o", "azure/gpt-4o-eu", "azure"), gateway.ModelInfo{MaxInputTokens: 64000, MaxOutputTokens: 4096}),
		withInfo(dep("2", "mini", "openai/gpt-4o-mini", "openai"), gateway.ModelInfo{MaxOutputTokens: 16384, OutputCost: &gateway.Price{}}),
		dep("3", "local", "hosted_vllm/llama", "hosted_vllm"),
		withInfo(dep("4", "openai/*", "openai/*", "openai"), gateway.ModelInfo{MaxOutputTokens: 1000}),
	}
	c, err := NewWithInfo(deps, []Alias{{Name: "fast", Target: "mini"}}, f.lookup)
	if err != nil {
		t.Fatalf("NewWithInfo: %v", err)
	}
	return c, f
}

func TestDeploymentInfo(t *testing.T) {
	c, _ := newInfoCatalog(t)
	got := c.Deployments()
	if in := got[0].Info; in.MaxInputTokens != 128000 || in.Catalog != "openai/gpt-4o" || !in.Priced() {
		t.Errorf("deployment 0 Info = %+v, want the built-in gpt-4o", in)
	}
	if in := got[1].Info; in.MaxInputTokens != 64000 || in.MaxOutputTokens != 4096 || in.Catalog != "" {
		t.Errorf("deployment 1 Info = %+v, want only its configured limits (azure unknown to the fake)", in)
	}
	in := got[2].Info
	if in.MaxInputTokens != 128000 || in.MaxOutputTokens != 16384 || in.InputCost == nil || in.OutputCost == nil || in.OutputCost.PerToken != 0 {
		t.Errorf("deployment 2 Info = %+v, want built-in window and input price, configured output limit and free output", in)
	}
	if in := got[4].Info; in.MaxInputTokens != 0 || in.MaxOutputTokens != 1000 {
		t.Errorf("wildcard deployment Info = %+v, want as configured", in)
	}
}

func TestCandidateLimits(t *testing.T) {
	c, _ := newInfoCatalog(t)
	want := map[string][2]int64{
		"gpt-4o": {64000, 4096}, // smallest known across both deployments
		"mini":   {128000, 16384},
		"fast":   {128000, 16384}, // an alias carries its target's
		"local":  {0, 0},
	}
	items := c.Candidates(nil, nil).Items
	if len(items) != len(want) {
		t.Fatalf("Candidates = %d items, want %d", len(items), len(want))
	}
	for _, cand := range items {
		if w := want[cand.ID]; cand.MaxInputTokens != w[0] || cand.MaxOutputTokens != w[1] {
			t.Errorf("candidate %s limits = %d, %d, want %d, %d", cand.ID, cand.MaxInputTokens, cand.MaxOutputTokens, w[0], w[1])
		}
	}
}

func TestWildcardInfo(t *testing.T) {
	c, f := newInfoCatalog(t)
	res := c.Resolve("openai/o1", nil, nil)
	if !res.Found || len(res.Deployments) != 1 {
		t.Fatalf("Resolve(openai/o1) = %+v", res)
	}
	if in := res.Deployments[0].Info; in.MaxInputTokens != 200000 || in.MaxOutputTokens != 1000 || in.Catalog != "openai/o1" {
		t.Errorf("wildcard-served Info = %+v, want the built-in o1 window and the configured output limit", in)
	}
	if !slices.Contains(f.lookups, "openai/o1") {
		t.Errorf("lookups = %v, want openai/o1 looked up", f.lookups)
	}
	if res := c.Resolve("openai/unknown", nil, nil); res.Deployments[0].Info.MaxInputTokens != 0 {
		t.Errorf("unknown wildcard-served Info = %+v, want no window", res.Deployments[0].Info)
	}
}

func TestUnpriced(t *testing.T) {
	c, _ := newInfoCatalog(t)
	covered := func(p string) bool { return p == "openai" }
	if got, want := c.Unpriced(covered), []int{1, 3}; !slices.Equal(got, want) {
		t.Errorf("Unpriced(openai covered) = %v, want %v", got, want)
	}
	if got, want := c.Unpriced(nil), []int{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("Unpriced(nil) = %v, want %v", got, want)
	}
}

// TestNotFoundMimicsServing checks the constant work behind DESIGN §2: a
// name nothing serves, resolved for the first time, looks its name up in
// the built-in catalog as a name the first substituting wildcard group
// serves does, and its resolution is still "not found"; asked again, both
// come from the cache without a lookup.
func TestNotFoundMimicsServing(t *testing.T) {
	var asked []string
	lookup := func(provider, model string) (gateway.ModelInfo, bool) {
		asked = append(asked, provider+"/"+model)
		return gateway.ModelInfo{}, false
	}
	deps := []gateway.Deployment{
		dep("0", "gpt-4o", "openai/gpt-4o", "openai"),
		dep("1", "vendor/*", "openai/*", "openai"),
	}
	c, err := NewWithInfo(deps, nil, lookup)
	if err != nil {
		t.Fatalf("NewWithInfo: %v", err)
	}
	asked = nil
	served := c.Resolve("vendor/chat-1", nil, nil)
	if !served.Found || len(asked) != 1 || asked[0] != "openai/chat-1" {
		t.Fatalf("served name: found %t, lookups %q; want found and one lookup of openai/chat-1", served.Found, asked)
	}
	asked = nil
	missing := c.Resolve("vendre/chat-1", nil, nil)
	if missing.Found || len(missing.Deployments) != 0 || !slices.Equal(missing.Names, []string{"vendre/chat-1"}) {
		t.Fatalf("name not found resolved to %+v", missing)
	}
	if len(asked) != 1 {
		t.Fatalf("name not found: lookups %q, want one, as a served name does", asked)
	}
	asked = nil
	c.Resolve("vendor/chat-1", nil, nil)
	c.Resolve("vendre/chat-1", nil, nil)
	if len(asked) != 0 {
		t.Fatalf("asked again: lookups %q, want none (cached)", asked)
	}
}
