package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// litellmEnv is the environment the LiteLLM-shaped test configs read.
var litellmEnv = map[string]string{
	"OPENAI_API_KEY": "sk-openai", "AZURE_API_KEY": "az-key", "GROQ_API_KEY": "gsk",
	"COHERE_API_KEY": "co-key", "REDIS_HOST": "localhost", "REDIS_PORT": "6379",
}

// TestLiteLLMConfigsLoad loads configs in the shapes of LiteLLM's own
// example and test proxy configs (DESIGN §10.16): they load with warnings
// only, deployments the gateway cannot speak to are not served, and what
// named only those becomes a warning.
func TestLiteLLMConfigsLoad(t *testing.T) {
	tests := []struct {
		file string
		// served lists the ids of the served deployments; unserved
		// "index id" of the others.
		served, unserved []string
		// warnings are substrings each of some warning.
		warnings []string
		// found and missing are names that do and do not resolve.
		found, missing []string
		applied        []string
	}{
		{
			file:     "proxy_server.yaml",
			served:   []string{"1", "1-1", "2", "4", "7", "8", "9"},
			unserved: []string{"3 3", "5 5", "6 6"},
			warnings: []string{
				`model_list[3] (model_name "llama-sagemaker", model "sagemaker/llama-endpoint-1"): not served: provider "sagemaker" does not speak the OpenAI wire format and no api_base is set`,
				`model_list[5] (model_name "image-gen", model "azure/"): not served: litellm_params.model "azure/" names no model after the provider`,
				`model_list[6] (model_name "instruct", model "text-completion-openai/gpt-3.5-turbo-instruct"): not served: unknown provider "text-completion-openai"`,
				`router_settings.model_group_alias.sagemaker-alias: dropped: its target "llama-sagemaker" names only deployments that are not served`,
				"finetune_settings: ignored",
				`router_settings.routing_strategy: "usage-based-routing-v2" is not one the gateway applies; it routes with simple-shuffle`,
			},
			found:   []string{"chat-eu", "chat-large", "big", "embedder", "flaky", "groq/llama3", "openai/gpt-4.1"},
			missing: []string{"sagemaker-alias", "instruct"},
			applied: []string{"litellm_settings.num_retries", "litellm_settings.request_timeout", "litellm_settings.context_window_fallbacks", "router_settings.model_group_alias"},
		},
		{
			file:     "load_balancer.yaml",
			served:   []string{"0", "1", "2"},
			unserved: []string{"3 3"},
			warnings: []string{
				`model_list[3] (model_name "mistral-7b", model "mistralai/mistral-7b-instruct"): not served: unknown provider "mistralai" and no api_base is set`,
				"environment_variables: ignored",
			},
			found:   []string{"chat"},
			missing: []string{"mistral-7b"},
		},
		{
			file:     "multi_provider.yaml",
			served:   []string{"0", "4"},
			unserved: []string{"0 claude-bedrock", "1 1", "3 3", "5 5", "6 6"},
			warnings: []string{
				`model_list[0] (model_name "claude", model "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"): not served: provider "bedrock" does not speak`,
				`model_list[1] (model_name "claude", model "vertex_ai/claude-3-5-sonnet@20240620"): not served: provider "vertex_ai"`,
				`model_list[5] (model_name "rerank", model "cohere/rerank-english-v3.0"): not served: provider "cohere"`,
				`router_settings.model_group_alias.sonnet: dropped: its target "claude"`,
				`router_settings.model_group_alias.smart: dropped: its target "sonnet"`,
				`gateway_settings.teams[0].models: allow-list entry "claude" names only deployments that are not served; kept, it permits nothing`,
				`gateway_settings.teams[0].models: allow-list entry "aws-models" names only deployments`,
				`gateway_settings.teams[0].model_aliases.writer: dropped: its target "claude"`,
				`gateway_settings.keys[0].aliases.coder: dropped: its target "smart"`,
				`gateway_settings.keys[1].models: allow-list entry "bedrock/titan" names only deployments`,
				`gateway_settings.keys[1].models: allow-list entry "sonnet" names only deployments`,
				`gateway_settings.keys[1].model_rpm_limit: "claude" names only deployments that are not served`,
				"guardrails: ignored",
				`router_settings.fallbacks[0].gpt: "claude" names no model group; it is skipped`,
			},
			found:   []string{"gpt", "fast"},
			missing: []string{"claude", "sonnet", "smart", "rerank", "bedrock/titan"},
			applied: []string{
				"router_settings.routing_strategy", "router_settings.num_retries", "router_settings.timeout",
				"router_settings.allowed_fails", "router_settings.cooldown_time", "router_settings.fallbacks",
				"router_settings.model_group_alias",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "litellm", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parse(data, envFrom(litellmEnv), testNow)
			if err != nil {
				t.Fatalf("parse(%s) error = %v, want warnings only", tc.file, err)
			}
			var served, unserved []string
			for _, d := range cfg.Catalog.Deployments() {
				served = append(served, d.ID)
			}
			for _, u := range cfg.Unserved {
				unserved = append(unserved, strconv.Itoa(u.Index)+" "+u.ID)
			}
			if !slices.Equal(served, tc.served) || !slices.Equal(unserved, tc.unserved) {
				t.Errorf("served ids = %q, unserved = %q; want %q, %q", served, unserved, tc.served, tc.unserved)
			}
			for _, w := range tc.warnings {
				if !slices.ContainsFunc(cfg.Warnings, func(got Warning) bool { return strings.Contains(got.Message, w) }) {
					t.Errorf("no warning containing %q in\n%s", w, joinWarnings(cfg.Warnings))
				}
			}
			for _, name := range tc.found {
				if !cfg.Catalog.Resolve(name, nil, nil).Found {
					t.Errorf("Resolve(%q) found nothing, want a served group", name)
				}
			}
			for _, name := range tc.missing {
				if cfg.Catalog.Resolve(name, nil, nil).Found {
					t.Errorf("Resolve(%q) found a group, want nothing (only unserved deployments)", name)
				}
				if slices.Contains(cfg.Catalog.ModelGroups(), name) {
					t.Errorf("ModelGroups() lists %q", name)
				}
			}
			var applied []string
			for _, s := range cfg.Settings {
				if s.Applied {
					applied = append(applied, s.Name)
				}
			}
			if !slices.Equal(applied, tc.applied) {
				t.Errorf("applied settings = %q, want %q", applied, tc.applied)
			}
		})
	}
}

func joinWarnings(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("  " + w.String() + "\n")
	}
	return b.String()
}

func TestUnservedPrincipals(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "litellm", "multi_provider.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, data, litellmEnv)
	// Entries naming only unserved deployments stay: dropping them could
	// leave an empty list, which would not restrict.
	if got := cfg.Keys[1].Key.Models; !slices.Equal(got, []string{"bedrock/titan", "sonnet"}) {
		t.Errorf("keys[1].models = %q, want both entries kept", got)
	}
	if got := cfg.Teams[0].ModelAliases; len(got) != 1 || got["quick"] != "fast" {
		t.Errorf("teams[0].model_aliases = %v, want only quick (writer dropped)", got)
	}
	if got := cfg.Keys[0].Key.Aliases; len(got) != 0 {
		t.Errorf("keys[0].aliases = %v, want coder dropped", got)
	}
	if got := cfg.Catalog.Aliases(); len(got) != 1 || got[0].Name != "fast" {
		t.Errorf("global aliases = %+v, want only fast", got)
	}
	var gpt []string
	for _, d := range cfg.Catalog.Resolve("gpt", nil, nil).Deployments {
		gpt = append(gpt, d.ProviderModel)
	}
	if !slices.Equal(gpt, []string{"openai/gpt-4o", "groq/llama-3.3-70b-versatile"}) {
		t.Errorf("gpt deployments = %q, want the openai and groq ones", gpt)
	}
	for name, want := range map[string]bool{"claude": true, "aws-models": true, "bedrock/x": true, "sonnet": true, "gpt": false, "default-models": false, "nothing": false} {
		if got := cfg.UnservedName(name); got != want {
			t.Errorf("UnservedName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestGeneratedIDs(t *testing.T) {
	tests := []struct {
		name string
		ids  []string // model_info.id per deployment, "" for none
		want []string
	}{
		{"none explicit", []string{"", "", ""}, []string{"0", "1", "2"}},
		{"explicit index of a later entry", []string{"1", "", ""}, []string{"1", "1-1", "2"}},
		{"explicit index of an earlier entry", []string{"", "", "0"}, []string{"0-1", "1", "0"}},
		{"suffixed form taken too", []string{"1", "", "1-1"}, []string{"1", "1-2", "1-1"}},
		{"names", []string{"a", "", "b"}, []string{"a", "1", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("model_list:\n")
			for i, id := range tc.ids {
				b.WriteString("  - model_name: m" + strconv.Itoa(i) + "\n    litellm_params: {model: mock/x}\n")
				if id != "" {
					b.WriteString("    model_info: {id: \"" + id + "\"}\n")
				}
			}
			cfg := mustParse(t, []byte(b.String()), nil)
			var got []string
			for _, d := range cfg.Deployments {
				got = append(got, d.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids %q -> %q, want %q", tc.ids, got, tc.want)
			}
		})
	}
}
