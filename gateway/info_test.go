package gateway

import (
	"reflect"
	"testing"
)

func TestPriceFor(t *testing.T) {
	p := &Price{PerToken: 1, Tiers: []PriceTier{{Above: 100, PerToken: 2}, {Above: 200, PerToken: 3}}}
	for prompt, want := range map[int64]float64{0: 1, 100: 1, 101: 2, 200: 2, 201: 3, 1 << 40: 3} {
		if got := p.For(prompt); got != want {
			t.Errorf("For(%d) = %v, want %v", prompt, got, want)
		}
	}
}

func TestOverride(t *testing.T) {
	catalog := ModelInfo{
		MaxInputTokens: 128000, InputCost: &Price{PerToken: 1}, OutputCost: &Price{PerToken: 2},
		Catalog: "openai/gpt-4o-mini",
	}
	configured := ModelInfo{
		MaxOutputTokens: 4096, OutputCost: &Price{PerToken: 0}, CacheReadCost: &Price{PerToken: 0.5},
		Extra: map[string]any{"mode": "chat"},
	}
	want := ModelInfo{
		MaxInputTokens: 128000, MaxOutputTokens: 4096,
		InputCost: &Price{PerToken: 1}, OutputCost: &Price{PerToken: 0}, CacheReadCost: &Price{PerToken: 0.5},
		Catalog: "openai/gpt-4o-mini", Extra: map[string]any{"mode": "chat"},
	}
	if got := catalog.Override(configured); !reflect.DeepEqual(got, want) {
		t.Errorf("Override = %+v, want %+v", got, want)
	}
	if got := catalog.Override(ModelInfo{}); !reflect.DeepEqual(got, catalog) {
		t.Errorf("Override(empty) = %+v, want %+v", got, catalog)
	}
}

func TestPriced(t *testing.T) {
	for _, tc := range []struct {
		info ModelInfo
		want bool
	}{
		{ModelInfo{}, false},
		{ModelInfo{MaxInputTokens: 10, CacheReadCost: &Price{}}, false},
		{ModelInfo{InputCost: &Price{}}, true},
		{ModelInfo{OutputCost: &Price{PerToken: 1}}, true},
	} {
		if got := tc.info.Priced(); got != tc.want {
			t.Errorf("%+v.Priced() = %v, want %v", tc.info, got, tc.want)
		}
	}
}

func TestGroupLimits(t *testing.T) {
	dep := func(in, out int64) Deployment {
		return Deployment{Info: ModelInfo{MaxInputTokens: in, MaxOutputTokens: out}}
	}
	for _, tc := range []struct {
		name            string
		deps            []Deployment
		wantIn, wantOut int64
	}{
		{"none", nil, 0, 0},
		{"unknown", []Deployment{dep(0, 0)}, 0, 0},
		{"one", []Deployment{dep(128000, 4096)}, 128000, 4096},
		{"smallest known", []Deployment{dep(0, 8192), dep(200000, 0), dep(128000, 16384)}, 128000, 8192},
	} {
		in, out := GroupLimits(tc.deps)
		if in != tc.wantIn || out != tc.wantOut {
			t.Errorf("%s: Limits = %d, %d, want %d, %d", tc.name, in, out, tc.wantIn, tc.wantOut)
		}
	}
}
