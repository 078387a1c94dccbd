package modelinfo

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// TestBuiltin checks the embedded data against what the package's own
// calcPrice answers for the same provider and name (run with Node on
// @pydantic/genai-prices 0.1.8; prices per million tokens). Differences by
// design: deepseek-chat's peak-hour rate is folded in, and a model found
// through a fallback provider is named after the provider that has it
// (calcPrice names the one asked: "azure/gpt-4o").
func TestBuiltin(t *testing.T) {
	c := Builtin()
	if c.Source != "@pydantic/genai-prices" || c.Version != "0.1.8" {
		t.Fatalf("Builtin() source = %s %s, want @pydantic/genai-prices 0.1.8", c.Source, c.Version)
	}
	at := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		provider, model string
		want            string // catalog entry; empty for none
		window          int64
		input, output   float64 // per million; -1 for unknown
	}{
		{"openai", "gpt-4o-mini", "openai/gpt-4o-mini", 128000, 0.15, 0.6},
		{"openai", "GPT-4o-Mini", "openai/gpt-4o-mini", 128000, 0.15, 0.6},
		{"openai", "gpt-4o-mini-20240718", "openai/gpt-4o-mini", 128000, 0.15, 0.6},
		{"openai", " gpt-4o ", "openai/gpt-4o", 128000, 2.5, 10},
		{"openai", "no-such-model", "", 0, -1, -1},
		{"azure", "o1-2024-12-17", "azure/o1", 200000, 15, 60},
		{"azure", "gpt-4o-mini", "openai/gpt-4o-mini", 128000, 0.15, 0.6},
		{"azure", "gpt-4o-2024-08-06", "openai/gpt-4o", 128000, 2.5, 10},
		{"azure", "claude-3-5-haiku-20241022", "anthropic/claude-3-5-haiku-latest", 200000, 0.8, 4},
		{"together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together/meta-llama/Llama-3.3-70B-Instruct-Turbo", 0, 0.88, 0.88},
		{"gemini", "gemini-2.5-pro", "google/gemini-2.5-pro", 0, 1.25, 10},
		{"gemini", "gemini-2.5-pro-preview-tts", "google/gemini-2.5-pro-tts", 8192, 1, 20},
		{"gemini", "gemini-2.5-flash-lite", "google/gemini-2.5-flash-lite", 1000000, 0.1, 0.4},
		{"xai", "grok-4.3-20260101", "x-ai/grok-4.3", 1000000, 1.25, 2.5},
		{"xai", "grok-3", "x-ai/grok-3", 131072, 3, 15},
		{"openrouter", "openai/gpt-4o-mini", "openrouter/openai/gpt-4o-mini", 128000, 0.15, 0.6},
		{"openrouter", "qwen/qwen3.5-flash-02-23", "openrouter/qwen/qwen3.5-flash-02-23", 1000000, 0.065, 0.26},
		{"anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5", 200000, 3, 15},
		{"groq", "llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile", 0, 0.59, 0.79},
		{"deepseek", "deepseek-chat", "deepseek/deepseek-chat", 64000, 0.27, 1.1},
		{"mistral", "mistral-large-latest", "mistral/mistral-large", 0, 2, 6},
		{"fireworks_ai", "accounts/fireworks/models/deepseek-v4-pro", "fireworks/deepseek-v4-pro", 1048576, 1.74, 3.48},
		{"perplexity", "sonar", "perplexity/sonar", 128000, 1, 1},
		{"cerebras", "llama3.1-8b", "cerebras/llama3.1-8b", 32768, 0.1, 0.1},
		{"ollama", "llama3", "", 0, -1, -1},
		{"mock", "gpt-4o-mini", "", 0, -1, -1},
		{"hosted_vllm", "gpt-4o-mini", "", 0, -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.provider+"/"+tc.model, func(t *testing.T) {
			info, ok := c.Info(tc.provider, tc.model, at)
			if ok != (tc.want != "") || info.Catalog != tc.want {
				t.Fatalf("Info(%q, %q) = %q, %v, want %q", tc.provider, tc.model, info.Catalog, ok, tc.want)
			}
			if !ok {
				return
			}
			if info.MaxInputTokens != tc.window {
				t.Errorf("MaxInputTokens = %d, want %d", info.MaxInputTokens, tc.window)
			}
			if info.MaxOutputTokens != 0 {
				t.Errorf("MaxOutputTokens = %d, want 0 (not in the data)", info.MaxOutputTokens)
			}
			for _, p := range []struct {
				name string
				got  *gateway.Price
				perM float64
			}{{"input", info.InputCost, tc.input}, {"output", info.OutputCost, tc.output}} {
				if p.got == nil || p.got.PerToken != p.perM/1e6 {
					t.Errorf("%s price = %+v, want %v per token", p.name, p.got, p.perM/1e6)
				}
			}
		})
	}
}

func TestBuiltinTiers(t *testing.T) {
	info, ok := Builtin().Info("gemini", "gemini-2.5-pro", time.Now())
	if !ok {
		t.Fatal("gemini-2.5-pro not found")
	}
	want := []gateway.PriceTier{{Above: 200000, PerToken: 2.5 / 1e6}}
	if got := info.InputCost.Tiers; len(got) != 1 || got[0] != want[0] {
		t.Errorf("input tiers = %+v, want %+v", got, want)
	}
	if got := info.InputCost.For(250000); got != 2.5/1e6 {
		t.Errorf("For(250000) = %v, want %v", got, 2.5/1e6)
	}
	if info.CacheReadCost == nil || info.CacheReadCost.PerToken != 0.125/1e6 {
		t.Errorf("cache read = %+v, want 0.125 per million", info.CacheReadCost)
	}
}

func TestCovers(t *testing.T) {
	for p, want := range map[string]bool{"openai": true, "together_ai": true, "xai": true, "ollama": false, "mock": false, "x-ai": false} {
		if got := Builtin().Covers(p); got != want {
			t.Errorf("Covers(%q) = %v, want %v", p, got, want)
		}
	}
}

// doc builds a one-provider catalog ("openai") from model JSON objects.
func doc(models ...string) []byte {
	return []byte(`{"source":"test","version":"1","providers":[{"id":"openai","models":[` + strings.Join(models, ",") + `]}]}`)
}

func TestMatchKinds(t *testing.T) {
	tests := []struct {
		name  string
		match string
		hit   []string
		miss  []string
	}{
		{"equals", `{"equals":"GPT-x"}`, []string{"gpt-x", "GPT-X", " gpt-x "}, []string{"gpt-x2", "gpt"}},
		{"starts_with", `{"starts_with":"gpt-"}`, []string{"gpt-4", "GPT-"}, []string{"xgpt-4"}},
		{"ends_with", `{"ends_with":"-mini"}`, []string{"gpt-4o-MINI"}, []string{"gpt-4o-mini-2"}},
		{"contains", `{"contains":"4o"}`, []string{"gpt-4o-mini", "4O"}, []string{"gpt-4"}},
		{"regex", `{"regex":"^gpt-\\d{2}$"}`, []string{"gpt-10", "GPT-10"}, []string{"gpt-1", "gpt-100"}},
		{"regex sees the lower-cased name", `{"regex":"^GPT"}`, nil, []string{"GPT-4"}},
		{"or", `{"or":[{"equals":"a"},{"equals":"b"}]}`, []string{"a", "b"}, []string{"c"}},
		{"and", `{"and":[{"starts_with":"a"},{"ends_with":"z"}]}`, []string{"abz"}, []string{"ab", "bz"}},
		{"not", `{"and":[{"starts_with":"g"},{"not":{"regex":"^.*-tts(?:$|-)"}}]}`, []string{"gemini", "gemini-ttsx"}, []string{"gemini-tts", "gemini-tts-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(doc(`{"id":"m","match":` + tc.match + `,"context_window":10}`))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, name := range tc.hit {
				if _, ok := c.Find("openai", name); !ok {
					t.Errorf("Find(%q) = false, want a match", name)
				}
			}
			for _, name := range tc.miss {
				if m, ok := c.Find("openai", name); ok {
					t.Errorf("Find(%q) = %s, want none", name, m.ID)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for name, model := range map[string]string{
		"two kinds":        `{"id":"m","match":{"equals":"a","contains":"b"}}`,
		"no kind":          `{"id":"m","match":{}}`,
		"bad regex":        `{"id":"m","match":{"regex":"(?!x)"}}`,
		"negative price":   `{"id":"m","match":{"equals":"a"},"prices":[{"input":-1}]}`,
		"bad price":        `{"id":"m","match":{"equals":"a"},"prices":[{"input":"1"}]}`,
		"dated first":      `{"id":"m","match":{"equals":"a"},"prices":[{"from":"2026-01-01","input":1}]}`,
		"undated later":    `{"id":"m","match":{"equals":"a"},"prices":[{"input":1},{"input":2}]}`,
		"unordered tiers":  `{"id":"m","match":{"equals":"a"},"prices":[{"input":{"base":1,"tiers":[{"start":5,"price":2},{"start":5,"price":3}]}}]}`,
		"negative window":  `{"id":"m","match":{"equals":"a"},"context_window":-1}`,
		"bad nested match": `{"id":"m","match":{"or":[{"equals":"a"},{}]}}`,
	} {
		if _, err := Parse(doc(model)); err == nil {
			t.Errorf("Parse(%s) = nil error, want one", name)
		}
	}
}

func TestFirstMatchWinsAndFallback(t *testing.T) {
	c, err := Parse([]byte(`{"providers":[
		{"id":"azure","fallback":["openai"],"models":[{"id":"own","match":{"starts_with":"gpt-4o"},"context_window":1}]},
		{"id":"openai","models":[
			{"id":"first","match":{"starts_with":"gpt"},"context_window":2},
			{"id":"second","match":{"equals":"gpt-5"},"context_window":3}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ provider, model, want string }{
		{"openai", "gpt-5", "openai/first"},
		{"azure", "gpt-4o-mini", "azure/own"},
		{"azure", "gpt-5", "openai/first"},
	} {
		info, _ := c.Info(tc.provider, tc.model, time.Now())
		if info.Catalog != tc.want {
			t.Errorf("Info(%q, %q).Catalog = %q, want %q", tc.provider, tc.model, info.Catalog, tc.want)
		}
	}
}

func TestPricePeriods(t *testing.T) {
	c, err := Parse(doc(`{"id":"m","match":{"equals":"m"},"prices":[{"input":1,"output":2},{"from":"2026-03-13","input":3},{"from":"2027-01-01","input":5,"output":6}]}`))
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time {
		d, _ := time.Parse(time.DateOnly, s)
		return d
	}
	for _, tc := range []struct {
		at            time.Time
		input, output float64 // per million; -1 unknown
	}{
		{day("2026-03-12"), 1, 2},
		{day("2026-03-13"), 3, -1},
		{day("2026-12-31"), 3, -1},
		{day("2027-01-01"), 5, 6},
	} {
		info, _ := c.Info("openai", "m", tc.at)
		if got := perMillion(info.InputCost); got != tc.input {
			t.Errorf("at %s: input = %v, want %v", tc.at.Format(time.DateOnly), got, tc.input)
		}
		if got := perMillion(info.OutputCost); got != tc.output {
			t.Errorf("at %s: output = %v, want %v", tc.at.Format(time.DateOnly), got, tc.output)
		}
	}
}

func perMillion(p *gateway.Price) float64 {
	if p == nil {
		return -1
	}
	return p.PerToken * 1e6
}

func TestDashDates(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o-mini-20240718":      "gpt-4o-mini-2024-07-18",
		"m-20240718-preview":        "m-2024-07-18-preview",
		"m-20240718:free":           "m-2024-07-18:free",
		"m-20240718x":               "m-20240718x",
		"m-20240230":                "m-20240230", // no such day
		"m-20241301":                "m-20241301",
		"m-19990101":                "m-19990101",
		"m-20240101-20250202":       "m-2024-01-01-2025-02-02",
		"m-2024071":                 "m-2024071",
		"claude-3-5-haiku-20241022": "claude-3-5-haiku-2024-10-22",
	} {
		if got := dashDates(in); got != want {
			t.Errorf("dashDates(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBuiltinWhileHeld checks that Builtin parses once while its result
// is held, and parses again once nothing holds it.
func TestBuiltinWhileHeld(t *testing.T) {
	c := Builtin()
	if Builtin() != c {
		t.Error("Builtin() parsed again while a catalog was held")
	}
	runtime.KeepAlive(c)
	runtime.GC()
	if got := Builtin(); got == nil || got.Source == "" {
		t.Errorf("Builtin() after collection = %v, want the embedded catalog", got)
	}
}
