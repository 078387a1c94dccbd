package config

import (
	"reflect"
	"testing"
)

func TestModelInfoFields(t *testing.T) {
	cfg := mustParse(t, doc(`
model_list:
  - model_name: mini
    litellm_params: { model: openai/gpt-4o-mini }
  - model_name: mini-tuned
    litellm_params: { model: openai/gpt-4o-mini }
    model_info:
      max_input_tokens: 1000
      max_tokens: 500
      output_cost_per_token: 0
      mode: chat
      supports_vision: true
      base_model: { name: gpt-4o-mini, tags: [a] }
      api_key: sk-never-shown
  - model_name: local
    litellm_params: { model: hosted_vllm/x, api_base: "http://vllm:8000/v1", input_cost_per_token: 1e-6 }
    model_info: { input_cost_per_token: 2e-6, max_output_tokens: 100, max_tokens: 50, cache_read_input_token_cost: 5e-7, cache_creation_input_token_cost: 3 }
  - model_name: nulls
    litellm_params: { model: hosted_vllm/y, api_base: "http://vllm:8000/v1" }
    model_info: { max_input_tokens: null, input_cost_per_token: ~ }
`), nil)
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{
		{13, "model_list[1].model_info.api_key: ignored and never shown"},
	})
	checkProblems(t, "unpriced", warningsAsProblems(cfg.Unpriced), []wantProblem{
		{17, `model_list[3] (model_name "nulls"): no price for hosted_vllm/y`},
	})
	deps := cfg.Catalog.Deployments()
	price := func(p interface{ For(int64) float64 }) float64 { return p.For(0) }

	mini := deps[0].Info
	if mini.MaxInputTokens != 128000 || mini.MaxOutputTokens != 0 || mini.Catalog != "openai/gpt-4o-mini" ||
		price(mini.InputCost) != 0.15/1e6 || price(mini.OutputCost) != 0.6/1e6 || price(mini.CacheReadCost) != 0.075/1e6 {
		t.Errorf("mini Info = %+v, want the catalog's gpt-4o-mini", mini)
	}

	tuned := deps[1].Info
	if tuned.MaxInputTokens != 1000 || tuned.MaxOutputTokens != 500 || tuned.MaxTokens != 500 ||
		price(tuned.InputCost) != 0.15/1e6 || tuned.OutputCost == nil || price(tuned.OutputCost) != 0 {
		t.Errorf("mini-tuned Info = %+v, want model_info over the catalog field by field", tuned)
	}
	wantExtra := map[string]any{"mode": "chat", "supports_vision": true, "base_model": map[string]any{"name": "gpt-4o-mini", "tags": []any{"a"}}}
	if !reflect.DeepEqual(tuned.Extra, wantExtra) {
		t.Errorf("mini-tuned Extra = %v, want %v", tuned.Extra, wantExtra)
	}

	local := deps[2].Info
	if local.MaxInputTokens != 0 || local.MaxOutputTokens != 100 || local.MaxTokens != 50 || local.Catalog != "" ||
		price(local.InputCost) != 1e-6 || local.OutputCost != nil || price(local.CacheReadCost) != 5e-7 || price(local.CacheWriteCost) != 3 {
		t.Errorf("local Info = %+v, want litellm_params' input price over model_info's, max_output_tokens over max_tokens", local)
	}

	if nulls := deps[3].Info; nulls.MaxInputTokens != 0 || nulls.InputCost != nil {
		t.Errorf("nulls Info = %+v, want nothing known", nulls)
	}
}

func TestModelInfoErrors(t *testing.T) {
	tests := []struct {
		name string
		info string // one model_info field
		want string
	}{
		{"negative limit", "max_input_tokens: -1", `model_list[0].model_info.max_input_tokens: want a positive whole number of tokens, got "-1"`},
		{"zero limit", "max_output_tokens: 0", `model_list[0].model_info.max_output_tokens: want a positive whole number of tokens, got "0"`},
		{"fractional limit", "max_tokens: 1.5", `model_list[0].model_info.max_tokens: want a positive whole number of tokens, got "1.5"`},
		{"string limit", `max_input_tokens: "128000"`, `model_list[0].model_info.max_input_tokens: want a positive whole number of tokens, got "128000"`},
		{"list limit", "max_input_tokens: [1]", "model_list[0].model_info.max_input_tokens: want a positive whole number of tokens, got a list"},
		{"negative price", "input_cost_per_token: -0.1", `model_list[0].model_info.input_cost_per_token: want a non-negative number (USD per token), got "-0.1"`},
		{"string price", `output_cost_per_token: "0.1"`, `model_list[0].model_info.output_cost_per_token: want a non-negative number (USD per token), got "0.1"`},
		{"infinite price", "cache_read_input_token_cost: .inf", `model_list[0].model_info.cache_read_input_token_cost: want a non-negative number (USD per token), got ".inf"`},
		{"mapping price", "cache_creation_input_token_cost: {a: 1}", "model_list[0].model_info.cache_creation_input_token_cost: want a non-negative number (USD per token), got a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, doc(`
model_list:
  - model_name: a
    litellm_params: { model: openai/gpt-4o }
    model_info:
      `+tc.info+`
`), nil)
			checkProblems(t, "problems", e.Problems, []wantProblem{{5, tc.want}})
		})
	}
	e := parseProblems(t, doc(`
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      input_cost_per_token: -1
`), nil)
	checkProblems(t, "problems", e.Problems, []wantProblem{{5, "model_list[0].litellm_params.input_cost_per_token: want a non-negative number (USD per token), got \"-1\""}})
}
