package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// A config as LiteLLM users write them, with fields the gateway ignores.
const realWorld = `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      temperature: 0.2
      max_tokens: 4096
      rpm: 60
    model_info:
      access_groups: [default-models]
      mode: chat
      input_cost_per_token: 0.0000025
    tpm: 100000
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: os.environ/ANTHROPIC_API_KEY
      timeout: 30
  - model_name: local-llama
    litellm_params:
      model: meta-llama/Llama-3.1-8B-Instruct
      api_base: http://vllm.internal:8000/v1/
      stream_timeout: 10
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_key: os.environ/OPENAI_API_KEY
litellm_settings:
  drop_params: true
  success_callback: ["langfuse"]
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 2
  model_group_alias:
    gpt-4: gpt-4o
environment_variables:
  LANGFUSE_HOST: https://cloud.langfuse.com
general_settings:
  master_key: sk-1234
  database_url: os.environ/DATABASE_URL
  store_model_in_db: true
`

func TestRealWorldLiteLLMConfig(t *testing.T) {
	cfg := mustParse(t, doc(realWorld), map[string]string{"OPENAI_API_KEY": "sk-openai", "ANTHROPIC_API_KEY": "sk-ant"})
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{
		{6, "model_list[0].litellm_params.temperature: ignored"},
		{7, "model_list[0].litellm_params.max_tokens: ignored"},
		{36, "environment_variables: ignored"},
		{40, "general_settings.database_url: ignored; the gateway reads --database-url or DATABASE_URL"},
		{41, "general_settings.store_model_in_db: ignored"},
	})
	var settings []string
	for _, st := range cfg.Settings {
		settings = append(settings, fmt.Sprintf("%d %s", st.Line, st))
	}
	wantSettings := []string{
		"29 litellm_settings.drop_params: not applied (the gateway drops no request parameters)",
		"30 litellm_settings.success_callback: not applied (no LiteLLM callbacks; the gateway has its own decision log, metrics and traces)",
		"32 router_settings.routing_strategy: applied (deployments chosen by simple-shuffle)",
		"33 router_settings.num_retries: applied (attempts after the first, across the group's deployments)",
		"34 router_settings.model_group_alias: applied (global aliases)",
	}
	if !slices.Equal(settings, wantSettings) {
		t.Errorf("Settings =\n  %s\nwant\n  %s", strings.Join(settings, "\n  "), strings.Join(wantSettings, "\n  "))
	}
	checkProblems(t, "unpriced", warningsAsProblems(cfg.Unpriced), []wantProblem{
		{19, `model_list[2] (model_name "local-llama"): no price for meta-llama/Llama-3.1-8B-Instruct`},
	})
	if cfg.MasterKey.Reveal() != "sk-1234" {
		t.Errorf("MasterKey = %v, want sk-1234", cfg.MasterKey)
	}
	// model_info's fields the gateway does not read are kept for
	// /model/info; the catalog fills in the window.
	info := cfg.Catalog.Deployments()[0].Info
	if info.MaxInputTokens != 128000 || info.InputCost == nil || info.InputCost.PerToken != 0.0000025 || info.Extra["mode"] != "chat" {
		t.Errorf("Deployments[0].Info = %+v, want window 128000, input 0.0000025, mode chat", info)
	}
	want := []gateway.Deployment{
		{ID: "0", ModelName: "gpt-4o", ProviderModel: "openai/gpt-4o", Provider: "openai", UpstreamModel: "gpt-4o", APIBase: "https://api.openai.com/v1", APIKey: "sk-openai", AccessGroups: []string{"default-models"}, RPM: 60, TPM: 100000},
		{ID: "1", ModelName: "claude-sonnet", ProviderModel: "anthropic/claude-sonnet-4-5", Provider: "anthropic", UpstreamModel: "claude-sonnet-4-5", APIBase: "https://api.anthropic.com/v1", APIKey: "sk-ant", Timeout: 30 * time.Second},
		{ID: "2", ModelName: "local-llama", ProviderModel: "meta-llama/Llama-3.1-8B-Instruct", Provider: "openai_compatible", UpstreamModel: "meta-llama/Llama-3.1-8B-Instruct", APIBase: "http://vllm.internal:8000/v1", StreamTimeout: 10 * time.Second},
		{ID: "3", ModelName: "openai/*", ProviderModel: "openai/*", Provider: "openai", UpstreamModel: "*", APIBase: "https://api.openai.com/v1", APIKey: "sk-openai"},
	}
	if len(cfg.Deployments) != len(want) {
		t.Fatalf("%d deployments, want %d", len(cfg.Deployments), len(want))
	}
	for i, w := range want {
		if !equalDeployment(cfg.Deployments[i], w) {
			t.Errorf("Deployments[%d] =\n  %+v\nwant\n  %+v", i, cfg.Deployments[i], w)
		}
	}
	res := cfg.Catalog.Resolve("gpt-4", nil, nil)
	if !res.Found || res.Resolved != "gpt-4o" {
		t.Errorf("Resolve(gpt-4) = %+v, want the gpt-4o group", res)
	}
	res = cfg.Catalog.Resolve("openai/gpt-4.1-mini", nil, nil)
	if !res.Found || res.Deployments[0].UpstreamModel != "gpt-4.1-mini" {
		t.Errorf("Resolve(openai/gpt-4.1-mini) = %+v, want upstream gpt-4.1-mini", res)
	}
}

func equalDeployment(a, b gateway.Deployment) bool {
	return a.ID == b.ID && a.ModelName == b.ModelName && a.ProviderModel == b.ProviderModel &&
		a.Provider == b.Provider && a.UpstreamModel == b.UpstreamModel && a.APIBase == b.APIBase &&
		a.APIKey == b.APIKey && a.APIVersion == b.APIVersion && slices.Equal(a.AccessGroups, b.AccessGroups) &&
		a.MockLatency == b.MockLatency && a.Timeout == b.Timeout && a.StreamTimeout == b.StreamTimeout &&
		a.Weight == b.Weight && a.RPM == b.RPM && a.TPM == b.TPM
}

func TestProviders(t *testing.T) {
	tests := []struct {
		name     string
		params   string // litellm_params body, one flow mapping
		env      map[string]string
		want     gateway.Deployment // only Provider, UpstreamModel, APIBase, APIKey, APIVersion checked
		wantErr  string
		errLine  int // line of wantErr when it is not the deployment's (2)
		wantWarn string
		warnLine int // line of wantWarn when it is not 3
		// wantUnserved is the reason the deployment loads unserved.
		wantUnserved string
	}{
		{name: "no prefix goes to openai", params: `{model: gpt-4o}`, want: gateway.Deployment{Provider: "openai", UpstreamModel: "gpt-4o", APIBase: "https://api.openai.com/v1"}},
		{name: "no prefix with api_base", params: `{model: gpt-4o, api_base: "http://localhost:9000/v1/"}`, want: gateway.Deployment{Provider: "openai", UpstreamModel: "gpt-4o", APIBase: "http://localhost:9000/v1"}},
		{name: "openrouter keeps the rest", params: `{model: openrouter/qwen/qwen3.5-flash-02-23}`, want: gateway.Deployment{Provider: "openrouter", UpstreamModel: "qwen/qwen3.5-flash-02-23", APIBase: "https://openrouter.ai/api/v1"}},
		{name: "together_ai", params: `{model: together_ai/meta-llama/Llama-3-70b}`, want: gateway.Deployment{Provider: "together_ai", UpstreamModel: "meta-llama/Llama-3-70b", APIBase: "https://api.together.xyz/v1"}},
		{name: "groq", params: `{model: groq/llama-3.3-70b}`, want: gateway.Deployment{Provider: "groq", UpstreamModel: "llama-3.3-70b", APIBase: "https://api.groq.com/openai/v1"}},
		{name: "deepseek", params: `{model: deepseek/deepseek-chat}`, want: gateway.Deployment{Provider: "deepseek", UpstreamModel: "deepseek-chat", APIBase: "https://api.deepseek.com/v1"}},
		{name: "mistral", params: `{model: mistral/mistral-large}`, want: gateway.Deployment{Provider: "mistral", UpstreamModel: "mistral-large", APIBase: "https://api.mistral.ai/v1"}},
		{name: "fireworks_ai", params: `{model: fireworks_ai/accounts/fireworks/models/x}`, want: gateway.Deployment{Provider: "fireworks_ai", UpstreamModel: "accounts/fireworks/models/x", APIBase: "https://api.fireworks.ai/inference/v1"}},
		{name: "xai", params: `{model: xai/grok-3}`, want: gateway.Deployment{Provider: "xai", UpstreamModel: "grok-3", APIBase: "https://api.x.ai/v1"}},
		{name: "ollama default", params: `{model: ollama/llama3}`, want: gateway.Deployment{Provider: "ollama", UpstreamModel: "llama3", APIBase: "http://localhost:11434/v1"}},
		{name: "ollama native address gets /v1", params: `{model: ollama_chat/llama3, api_base: "http://gpu:11434"}`, want: gateway.Deployment{Provider: "ollama_chat", UpstreamModel: "llama3", APIBase: "http://gpu:11434/v1"}},
		{name: "anthropic", params: `{model: anthropic/claude-3-5-haiku}`, want: gateway.Deployment{Provider: "anthropic", UpstreamModel: "claude-3-5-haiku", APIBase: "https://api.anthropic.com/v1"}},
		{name: "gemini", params: `{model: gemini/gemini-2.5-flash}`, want: gateway.Deployment{Provider: "gemini", UpstreamModel: "gemini-2.5-flash", APIBase: "https://generativelanguage.googleapis.com/v1beta/openai"}},
		{name: "perplexity", params: `{model: perplexity/sonar}`, want: gateway.Deployment{Provider: "perplexity", UpstreamModel: "sonar", APIBase: "https://api.perplexity.ai"}},
		{name: "cerebras", params: `{model: cerebras/llama3.1-8b}`, want: gateway.Deployment{Provider: "cerebras", UpstreamModel: "llama3.1-8b", APIBase: "https://api.cerebras.ai/v1"}},
		{name: "deepinfra", params: `{model: deepinfra/meta-llama/x}`, want: gateway.Deployment{Provider: "deepinfra", UpstreamModel: "meta-llama/x", APIBase: "https://api.deepinfra.com/v1/openai"}},
		{name: "hosted_vllm with api_base", params: `{model: hosted_vllm/qwen, api_base: "http://vllm:8000/v1"}`, want: gateway.Deployment{Provider: "hosted_vllm", UpstreamModel: "qwen", APIBase: "http://vllm:8000/v1"}},
		{name: "hosted_vllm without api_base", params: `{model: hosted_vllm/qwen}`, wantUnserved: `provider "hosted_vllm" needs litellm_params.api_base`},
		{name: "openai_compatible without api_base", params: `{model: openai_compatible/x}`, wantUnserved: `provider "openai_compatible" needs`},
		{name: "custom_openai", params: `{model: custom_openai/x, api_base: "https://llm.corp/v1"}`, want: gateway.Deployment{Provider: "custom_openai", UpstreamModel: "x", APIBase: "https://llm.corp/v1"}},
		{name: "litellm_proxy", params: `{model: litellm_proxy/x, api_base: "https://proxy.corp"}`, want: gateway.Deployment{Provider: "litellm_proxy", UpstreamModel: "x", APIBase: "https://proxy.corp"}},
		{name: "azure default version", params: `{model: azure/my-gpt4o, api_base: "https://res.openai.azure.com/", api_key: "k"}`, want: gateway.Deployment{Provider: "azure", UpstreamModel: "my-gpt4o", APIBase: "https://res.openai.azure.com", APIKey: "k", APIVersion: DefaultAzureAPIVersion}},
		{name: "azure explicit version", params: `{model: azure/my-gpt4o, api_base: "https://res.openai.azure.com", api_version: "2025-01-01-preview"}`, want: gateway.Deployment{Provider: "azure", UpstreamModel: "my-gpt4o", APIBase: "https://res.openai.azure.com", APIVersion: "2025-01-01-preview"}},
		{name: "azure without api_base", params: `{model: azure/my-gpt4o}`, wantUnserved: `provider "azure" needs litellm_params.api_base`},
		{name: "mock needs nothing", params: `{model: mock/anything, mock_latency: 50ms}`, want: gateway.Deployment{Provider: "mock", UpstreamModel: "anything"}},
		{name: "unknown prefix with api_base is OpenAI-compatible", params: `{model: Qwen/Qwen2.5-7B, api_base: "http://tgi:8080/v1"}`, want: gateway.Deployment{Provider: "openai_compatible", UpstreamModel: "Qwen/Qwen2.5-7B", APIBase: "http://tgi:8080/v1"}},
		{name: "unknown prefix without api_base", params: `{model: acme/claude-3}`, wantUnserved: `unknown provider "acme" and no api_base is set`},
		{name: "bedrock without api_base", params: `{model: bedrock/anthropic.claude-3, aws_region_name: us-east-1}`, wantUnserved: `provider "bedrock" does not speak the OpenAI wire format and no api_base is set`},
		{name: "vertex_ai without api_base", params: `{model: vertex_ai/gemini-pro, vertex_project: p}`, wantUnserved: `provider "vertex_ai" does not speak the OpenAI wire format`},
		{name: "cohere without api_base", params: `{model: cohere/command-r}`, wantUnserved: `provider "cohere" does not speak`},
		{name: "sagemaker without api_base", params: `{model: sagemaker/endpoint}`, wantUnserved: `provider "sagemaker" does not speak`},
		{name: "huggingface with api_base is served and warned", params: `{model: huggingface/tgi, api_base: "http://tgi:8080/v1"}`, want: gateway.Deployment{Provider: "openai_compatible", UpstreamModel: "huggingface/tgi", APIBase: "http://tgi:8080/v1"}, wantWarn: `model_list[0] (model_name "m"): provider "huggingface" does not speak the OpenAI wire format; served as an OpenAI-compatible server`, warnLine: 2},
		{name: "prefixes are case-sensitive", params: `{model: OpenAI/gpt-4o}`, wantUnserved: `unknown provider "OpenAI"`},
		{name: "provider without a model", params: `{model: openai/}`, wantUnserved: `names no model after the provider`},
		{name: "missing model", params: `{api_base: "http://x"}`, wantErr: "missing litellm_params.model"},
		{name: "bad api_base", params: `{model: openai/x, api_base: "localhost:8000"}`, wantErr: "api_base: want an http or https URL", errLine: 3},
		{name: "provider key from the environment like LiteLLM", params: `{model: groq/llama}`, env: map[string]string{"GROQ_API_KEY": "gsk-env"}, want: gateway.Deployment{Provider: "groq", UpstreamModel: "llama", APIBase: "https://api.groq.com/openai/v1", APIKey: "gsk-env"}},
		{name: "explicit api_key beats the provider variable", params: `{model: groq/llama, api_key: os.environ/MY_GROQ}`, env: map[string]string{"GROQ_API_KEY": "gsk-env", "MY_GROQ": "gsk-mine"}, want: gateway.Deployment{Provider: "groq", UpstreamModel: "llama", APIBase: "https://api.groq.com/openai/v1", APIKey: "gsk-mine"}},
		{name: "unset api_key variable warns", params: `{model: openai/x, api_key: os.environ/NOPE_KEY}`, want: gateway.Deployment{Provider: "openai", UpstreamModel: "x", APIBase: "https://api.openai.com/v1"}, wantWarn: `model_list[0].litellm_params.api_key: environment variable NOPE_KEY is not set; model_list[0] (model_name "m") will fail upstream`},
		{name: "unset api_base variable warns and leaves no base", params: `{model: weird/x, api_base: os.environ/NOPE_BASE}`, want: gateway.Deployment{Provider: "openai_compatible", UpstreamModel: "weird/x"}, wantWarn: "environment variable NOPE_BASE is not set"},
		{name: "api_base from the environment", params: `{model: hosted_vllm/x, api_base: os.environ/VLLM_BASE}`, env: map[string]string{"VLLM_BASE": "http://vllm:8000/v1/"}, want: gateway.Deployment{Provider: "hosted_vllm", UpstreamModel: "x", APIBase: "http://vllm:8000/v1"}},
		{name: "unset model variable is an error", params: `{model: os.environ/NOPE_MODEL}`, wantErr: "litellm_params.model: environment variable NOPE_MODEL is not set", errLine: 3},
		{name: "timeout as duration", params: `{model: mock/x, timeout: 1m}`, want: gateway.Deployment{Provider: "mock", UpstreamModel: "x"}},
		{name: "bad timeout", params: `{model: mock/x, timeout: -3}`, wantErr: "timeout: want a positive number of seconds", errLine: 3},
		{name: "bad mock_latency", params: `{model: mock/x, mock_latency: 50}`, wantErr: "mock_latency: want a duration like 50ms", errLine: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := doc(`
model_list:
  - model_name: m
    litellm_params: ` + tc.params + `
`)
			cfg, err := parse(data, envFrom(tc.env), testNow)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("parse(%s) = %+v, want error containing %q", tc.params, cfg.Deployments, tc.wantErr)
				}
				e := err.(*Error)
				line := 2
				if tc.errLine != 0 {
					line = tc.errLine
				}
				checkProblems(t, "problems", e.Problems, []wantProblem{{line, tc.wantErr}})
				return
			}
			if err != nil {
				t.Fatalf("parse(%s) error: %v", tc.params, err)
			}
			if tc.wantUnserved != "" {
				if len(cfg.Deployments) != 0 || len(cfg.Unserved) != 1 || !strings.Contains(cfg.Unserved[0].Reason, tc.wantUnserved) {
					t.Fatalf("parse(%s) = %d served, unserved %+v; want none served and a reason containing %q", tc.params, len(cfg.Deployments), cfg.Unserved, tc.wantUnserved)
				}
				if w := cfg.Warnings[0]; w.Line != 2 || !strings.Contains(w.Message, "): not served: ") || !strings.Contains(w.Message, tc.wantUnserved) {
					t.Errorf("parse(%s) warnings = %v, want one saying not served: %s", tc.params, cfg.Warnings, tc.wantUnserved)
				}
				if cfg.Catalog.Resolve("m", nil, nil).Found {
					t.Errorf("Resolve(m) found a group with only an unserved deployment")
				}
				return
			}
			d := cfg.Deployments[0]
			got := gateway.Deployment{Provider: d.Provider, UpstreamModel: d.UpstreamModel, APIBase: d.APIBase, APIKey: d.APIKey, APIVersion: d.APIVersion}
			if !equalDeployment(got, tc.want) {
				t.Errorf("parse(%s) deployment = %+v, want %+v", tc.params, got, tc.want)
			}
			var wantWarns []wantProblem
			if tc.wantWarn != "" {
				line := 3
				if tc.warnLine != 0 {
					line = tc.warnLine
				}
				wantWarns = []wantProblem{{line, tc.wantWarn}}
			}
			checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), wantWarns)
		})
	}
}

func TestDeploymentFields(t *testing.T) {
	cfg := mustParse(t, doc(`
model_list:
  - model_name: a
    litellm_params: { model: mock/a, timeout: 2.5, mock_latency: 50ms }
    model_info: { id: custom-id, access_groups: [g1, g2] }
  - model_name: a
    litellm_params: { model: mock/a2, timeout: 1m }
`), nil)
	d0, d1 := cfg.Deployments[0], cfg.Deployments[1]
	if d0.ID != "custom-id" || d1.ID != "1" {
		t.Errorf("deployment ids = %q, %q; want custom-id, 1", d0.ID, d1.ID)
	}
	if d0.Timeout != 2500*time.Millisecond || d1.Timeout != time.Minute {
		t.Errorf("timeouts = %v, %v; want 2.5s, 1m", d0.Timeout, d1.Timeout)
	}
	if d0.MockLatency != 50*time.Millisecond {
		t.Errorf("MockLatency = %v, want 50ms", d0.MockLatency)
	}
	if !slices.Equal(d0.AccessGroups, []string{"g1", "g2"}) {
		t.Errorf("AccessGroups = %q, want [g1 g2]", d0.AccessGroups)
	}
	if got := cfg.Catalog.Resolve("a", nil, nil); len(got.Deployments) != 2 {
		t.Errorf("Resolve(a) has %d deployments, want 2", len(got.Deployments))
	}
}

func TestModelListErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		{
			name: "missing model_name and litellm_params",
			yaml: `
model_list:
  - litellm_params: { model: mock/a }
  - model_name: b
`,
			want: []wantProblem{{2, "model_list[0]: missing model_name"}, {3, `model_list[1] (model_name "b"): missing litellm_params`}},
		},
		{
			name: "model_list not a list",
			yaml: `
model_list:
  model_name: a
`,
			want: []wantProblem{{2, "model_list: want a list, got a mapping"}},
		},
		{
			name: "duplicate deployment id",
			yaml: `
model_list:
  - model_name: a
    litellm_params: { model: mock/a }
    model_info: { id: x }
  - model_name: b
    litellm_params: { model: mock/b }
    model_info: { id: x }
`,
			want: []wantProblem{{5, `model_list[1]: deployment id "x" is also the id of model_list[0]`}},
		},
		{
			name: "duplicate deployment id with an unserved deployment",
			yaml: `
model_list:
  - model_name: a
    litellm_params: { model: bedrock/a }
    model_info: { id: x }
  - model_name: b
    litellm_params: { model: mock/b }
    model_info: { id: x }
`,
			want: []wantProblem{{5, `model_list[1]: deployment id "x" is also the id of model_list[0]`}},
		},
		{
			name: "star in the provider model of an exact group",
			yaml: `
model_list:
  - model_name: ok
    litellm_params: { model: mock/ok }
  - model_name: gpt-4o
    litellm_params: { model: "openai/*" }
`,
			want: []wantProblem{{4, `model_list[1] (model_name "gpt-4o"): provider model "openai/*" has more '*' than model_name`}},
		},
		{
			name: "access groups must be strings",
			yaml: `
model_list:
  - model_name: a
    litellm_params: { model: mock/a }
    model_info:
      access_groups: [ok, {x: 1}, ""]
`,
			want: []wantProblem{{5, "model_list[0].model_info.access_groups[1]: want a string, got a mapping"}, {5, "model_list[0].model_info.access_groups: empty access group name"}},
		},
		{
			name: "top level must be a mapping",
			yaml: `
- model_name: a
`,
			want: []wantProblem{{1, "config: want a mapping, got a list"}},
		},
		{
			name: "syntax error",
			yaml: "model_list:\n\t- model_name: a\n",
			want: []wantProblem{{2, "invalid YAML: found character that cannot start any token"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, doc(tc.yaml), nil)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}

func TestEmptyConfig(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "model_list: []\n"} {
		cfg := mustParse(t, []byte(in), nil)
		if len(cfg.Deployments) != 0 || cfg.Catalog == nil && in == "model_list: []\n" {
			t.Errorf("parse(%q) = %d deployments, catalog %v", in, len(cfg.Deployments), cfg.Catalog)
		}
		if in != "model_list: []\n" && len(cfg.Warnings) != 1 {
			t.Errorf("parse(%q) warnings = %v, want one about the missing model_list", in, cfg.Warnings)
		}
	}
}
