package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// env returns a lookup over a fixed map, so tests never read the real
// environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const goodConfig = `model_list:
  - model_name: gpt-4o
    litellm_params: {model: mock/gpt-4o, temperature: 0.2}
    model_info: {access_groups: [default-models]}
litellm_settings:
  drop_params: true
general_settings:
  master_key: sk-master-check
gateway_settings:
  teams: [{team_id: t1, models: [gpt-4o]}]
  keys: [{key: sk-check-key-1, team_id: t1}]
`

func TestMainCheck(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		env        map[string]string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantErr    []string // substrings of stderr
		wantNoText string   // must appear in neither
	}{
		{
			name: "valid with warnings", config: goodConfig, wantCode: 0,
			wantOut: []string{"ok (1 deployments, 0 not served", ":3: warning:", "temperature",
				":6: setting: litellm_settings.drop_params: not applied (the gateway drops no request parameters)", "; 1 settings not applied; 1 warnings)"},
		},
		{
			name: "deployments without a price",
			config: strings.Replace(goodConfig, "model_list:\n", "model_list:\n"+
				"  - model_name: mini\n    litellm_params: {model: openai/gpt-4o-mini}\n"+
				"  - model_name: local\n    litellm_params: {model: hosted_vllm/llama, api_base: \"http://vllm:8000/v1\"}\n"+
				"  - model_name: local-priced\n    litellm_params: {model: hosted_vllm/llama, api_base: \"http://vllm:8000/v1\"}\n    model_info: {input_cost_per_token: 0}\n", 1),
			wantCode:   0,
			wantOut:    []string{`:4: warning: model_list[1] (model_name "local"): no price for hosted_vllm/llama`, "; 2 warnings)"},
			wantNoText: `"mini"): no price`,
		},
		{
			name:     "unknown gateway_settings field",
			config:   strings.Replace(goodConfig, "teams: [{team_id: t1, models: [gpt-4o]}]", "teams: [{team_id: t1, modles: [gpt-4o]}]", 1),
			wantCode: 1, wantErr: []string{":10:", "modles"},
		},
		{
			name:     "alias cycle",
			config:   goodConfig + "router_settings:\n  model_group_alias:\n    a: b\n    b: a\n",
			wantCode: 1, wantErr: []string{"cycle", "a -> b -> a"},
		},
		{
			name:     "allow-list entry that names nothing",
			config:   strings.Replace(goodConfig, "models: [gpt-4o]}]", "models: [gpt-5-ghost]}]", 1),
			wantCode: 1, wantErr: []string{":10:", "gpt-5-ghost"},
		},
		{
			name: "key entry outside its team's rule",
			// gpt-4o-mini exists, but the key's team allows only gpt-4o.
			config: strings.NewReplacer(
				"keys: [{key: sk-check-key-1, team_id: t1}]", "keys: [{key: sk-check-key-1, team_id: t1, models: [gpt-4o-mini]}]",
				"model_list:\n", "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params: {model: mock/gpt-4o-mini}\n",
			).Replace(goodConfig),
			wantCode: 1, wantErr: []string{"gpt-4o-mini", "not permitted by team \"t1\""},
			wantNoText: "sk-check-key-1",
		},
		{
			name: "bedrock beside openai, alias and allow-list naming the bedrock group",
			config: strings.NewReplacer(
				"model_list:\n", "model_list:\n  - model_name: claude\n    litellm_params: {model: bedrock/anthropic.claude-3, aws_region_name: us-east-1}\n",
				"keys: [{key: sk-check-key-1, team_id: t1}]", "keys: [{key: sk-check-key-1, team_id: t1, models: [claude, gpt-4o]}]",
				"teams: [{team_id: t1, models: [gpt-4o]}]", "teams: [{team_id: t1, models: [default-models, claude]}]",
			).Replace(goodConfig) + "router_settings:\n  routing_strategy: least-busy\n  model_group_alias: {sonnet: claude}\n",
			wantCode: 0,
			wantOut: []string{
				`:2: warning: model_list[0] (model_name "claude", model "bedrock/anthropic.claude-3"): not served: provider "bedrock" does not speak the OpenAI wire format and no api_base is set`,
				`warning: router_settings.model_group_alias.sonnet: dropped`,
				`warning: gateway_settings.teams[0].models: allow-list entry "claude" names only deployments that are not served`,
				`warning: gateway_settings.keys[0].models: allow-list entry "claude" names only deployments that are not served`,
				"setting: router_settings.routing_strategy: applied (deployments chosen by least-busy)",
				"setting: router_settings.model_group_alias: applied",
				"ok (1 deployments, 1 not served, 0 aliases",
			},
		},
		{
			name:     "no master key",
			config:   strings.Replace(goodConfig, "  master_key: sk-master-check\n", "", 1),
			wantCode: 1, wantErr: []string{"no master key"},
		},
		{
			name:     "master key from the environment",
			config:   strings.Replace(goodConfig, "  master_key: sk-master-check\n", "", 1),
			env:      map[string]string{"GATEWAY_MASTER_KEY": "sk-from-env"},
			wantCode: 0, wantOut: []string{"ok ("},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "config.yaml", tc.config)
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"check", "--config", path}, &stdout, &stderr, env(tc.env))
			if code != tc.wantCode {
				t.Fatalf("gateway check = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, s := range tc.wantOut {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if tc.wantNoText != "" && strings.Contains(stdout.String()+stderr.String(), tc.wantNoText) {
				t.Errorf("output echoes %q", tc.wantNoText)
			}
		})
	}
}

// TestMainCheckEmbedded: the embedded demo config passes check with the
// master key from the environment, as the README runs it.
func TestMainCheckEmbedded(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"check"}, &stdout, &stderr, env(map[string]string{"GATEWAY_MASTER_KEY": "sk-master-demo"}))
	if code != 0 || !strings.Contains(stdout.String(), "0 warnings") {
		t.Fatalf("gateway check (embedded) = %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// TestMainServeFailsClearly: start-up errors exit 1 with one line on stderr.
func TestMainServeFailsClearly(t *testing.T) {
	badPolicy := t.TempDir()
	if err := os.WriteFile(filepath.Join(badPolicy, "p.rego"), []byte("package gateway.custom\n\ndeny contains msg if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no master key", []string{"serve", "--listen", "127.0.0.1:0"}, nil, "GATEWAY_MASTER_KEY is not set"},
		{"missing config file", []string{"--config", "/nonexistent/config.yaml", "--listen", "127.0.0.1:0"}, map[string]string{"GATEWAY_MASTER_KEY": "sk-x-master"}, "read config"},
		{"policy that does not compile", []string{"--bundle", badPolicy, "--listen", "127.0.0.1:0"}, map[string]string{"GATEWAY_MASTER_KEY": "sk-x-master"}, "policy"},
		{"unknown command", []string{"frobnicate"}, nil, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tc.args, &stdout, &stderr, env(tc.env))
			if code == 0 {
				t.Fatalf("gateway %v = 0, want non-zero", tc.args)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to mention %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestMainVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"version"}, &stdout, &stderr, env(nil)); code != 0 || !strings.HasPrefix(stdout.String(), "gateway ") {
		t.Errorf("gateway version = %d %q", code, stdout.String())
	}
}

// TestMainCheckLiteLLMConfigs: configs in the shapes of LiteLLM's own
// example and test proxy configs pass check with warnings only, and check
// says which router and LiteLLM settings it applies (DESIGN §10.16, §12).
func TestMainCheckLiteLLMConfigs(t *testing.T) {
	litellmEnv := map[string]string{
		"OPENAI_API_KEY": "sk-openai", "AZURE_API_KEY": "az-key", "GROQ_API_KEY": "gsk",
		"COHERE_API_KEY": "co-key", "REDIS_HOST": "localhost", "REDIS_PORT": "6379",
		"GATEWAY_MASTER_KEY": "sk-master-check", // load_balancer.yaml sets none
	}
	tests := []struct {
		file    string
		wantOut []string
	}{
		{"proxy_server.yaml", []string{
			`:25: warning: model_list[3] (model_name "llama-sagemaker", model "sagemaker/llama-endpoint-1"): not served: provider "sagemaker"`,
			`warning: model_list[6] (model_name "instruct", model "text-completion-openai/gpt-3.5-turbo-instruct"): not served: unknown provider`,
			"setting: litellm_settings.num_retries: applied (attempts after the first, across the group's deployments)",
			"setting: litellm_settings.context_window_fallbacks: applied (groups tried when a call overflows the context window, each decided by the policy)",
			"setting: router_settings.routing_strategy: not applied (strategies applied: simple-shuffle, least-busy, latency-based-routing; others route as simple-shuffle)",
			"setting: router_settings.redis_host: not applied",
			"setting: router_settings.model_group_alias: applied (global aliases)",
			"ok (7 deployments, 3 not served, 1 aliases",
		}},
		{"load_balancer.yaml", []string{
			`warning: model_list[3] (model_name "mistral-7b", model "mistralai/mistral-7b-instruct"): not served: unknown provider "mistralai"`,
			"ok (3 deployments, 1 not served",
		}},
		{"multi_provider.yaml", []string{
			`not served: provider "bedrock" does not speak the OpenAI wire format`,
			`not served: provider "vertex_ai"`,
			`not served: provider "cohere"`,
			"setting: router_settings.fallbacks: applied (groups tried once a group's deployments are exhausted, each decided by the policy)",
			"setting: router_settings.allowed_fails: applied (failures within a minute before a deployment cools down)",
			"setting: router_settings.cooldown_time: applied",
			"setting: router_settings.timeout: applied",
			"setting: router_settings.routing_strategy: applied (deployments chosen by latency-based-routing)",
			"setting: litellm_settings.num_retries: not applied (router_settings.num_retries is applied instead)",
			"setting: litellm_settings.cache: not applied (the gateway caches no responses)",
			"setting: litellm_settings.guardrails: not applied",
			"warning: guardrails: ignored",
			"warning: environment_variables: ignored",
			"ok (2 deployments, 5 not served, 1 aliases, 1 teams, 0 users, 2 keys",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("..", "..", "..", "gateway", "config", "testdata", "litellm", tc.file)
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"check", "--config", path}, &stdout, &stderr, env(litellmEnv))
			if code != 0 || stderr.Len() != 0 {
				t.Fatalf("gateway check %s = %d, want 0 and no errors\nstdout:\n%s\nstderr:\n%s", tc.file, code, stdout.String(), stderr.String())
			}
			for _, s := range tc.wantOut {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}
