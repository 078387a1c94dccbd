package gateway

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCost(t *testing.T) {
	in, out, cached := &Price{PerToken: 2e-6}, &Price{PerToken: 8e-6}, &Price{PerToken: 0.5e-6}
	tiered := &Price{PerToken: 1e-6, Tiers: []PriceTier{{Above: 200_000, PerToken: 2e-6}}}
	tests := []struct {
		name string
		info ModelInfo
		u    Usage
		want float64
	}{
		{"input and output", ModelInfo{InputCost: in, OutputCost: out}, Usage{PromptTokens: 1000, CompletionTokens: 100}, 1000*2e-6 + 100*8e-6},
		{"cached tokens at the cache price", ModelInfo{InputCost: in, OutputCost: out, CacheReadCost: cached}, Usage{PromptTokens: 1000, CompletionTokens: 100, CachedTokens: 400}, 600*2e-6 + 400*0.5e-6 + 100*8e-6},
		{"cached tokens without a cache price", ModelInfo{InputCost: in}, Usage{PromptTokens: 1000, CachedTokens: 400}, 1000 * 2e-6},
		{"no prices", ModelInfo{}, Usage{PromptTokens: 1000, CompletionTokens: 100}, 0},
		{"tier by prompt size", ModelInfo{InputCost: tiered}, Usage{PromptTokens: 300_000}, 300_000 * 2e-6},
		{"below the tier", ModelInfo{InputCost: tiered}, Usage{PromptTokens: 1000}, 1000 * 1e-6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.info.Cost(tc.u); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Cost(%+v) = %g, want %g", tc.u, got, tc.want)
			}
		})
	}
}

func TestLimitError(t *testing.T) {
	budget := &LimitError{Layer: LayerTeam, Kind: LimitBudget}
	if !errors.Is(budget, ErrBudgetExceeded) || !strings.HasPrefix(budget.Error(), "Budget has been exceeded") {
		t.Errorf("budget error = %q, Is(ErrBudgetExceeded) = %t", budget, errors.Is(budget, ErrBudgetExceeded))
	}
	rpm := &LimitError{Layer: LayerKey, Kind: LimitRPM, Model: "gpt-4o"}
	if errors.Is(rpm, ErrBudgetExceeded) || !strings.Contains(rpm.Error(), "key (model gpt-4o) requests per minute") {
		t.Errorf("rpm error = %q", rpm)
	}
}

func TestBudgetPeriod(t *testing.T) {
	anchor := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name       string
		d          time.Duration
		now        time.Time
		start, end time.Time
	}{
		{"never resets", 0, anchor.Add(400 * day), time.Unix(0, 0).UTC(), time.Time{}},
		{"first period", day, anchor.Add(time.Hour), anchor, anchor.Add(day)},
		{"at a boundary", day, anchor.Add(3 * day), anchor.Add(3 * day), anchor.Add(4 * day)},
		{"later period", 30 * day, anchor.Add(65 * day), anchor.Add(60 * day), anchor.Add(90 * day)},
		{"clock before the anchor", day, anchor.Add(-time.Hour), anchor, anchor.Add(day)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end := BudgetPeriod(anchor, tc.d, tc.now)
			if !start.Equal(tc.start) || !end.Equal(tc.end) {
				t.Errorf("BudgetPeriod = %v, %v; want %v, %v", start, end, tc.start, tc.end)
			}
		})
	}
}
