package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/openai/openai-go/v3"
)

// seedConfig reproduces the five reported failures of other gateways.
const seedConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
  - model_name: openrouter/qwen/qwen3.5-flash-02-23
    litellm_params: {model: openrouter/qwen/qwen3.5-flash-02-23, api_base: "{{UP}}"}
  - model_name: Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16
    litellm_params: {model: hosted_vllm/Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16, api_base: "{{UP}}"}
  - model_name: ollama/llama3:8b
    litellm_params: {model: ollama/llama3:8b, api_base: "{{UP}}"}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_base: "{{UP}}"}
    model_info: {access_groups: [default-models]}
  - model_name: "openai/o1-*"
    litellm_params: {model: "openai/o1-*", api_base: "{{UP}}"}
    model_info: {access_groups: [restricted-models]}
router_settings:
  model_group_alias:
    AgentX-LLM: openrouter/qwen/qwen3.5-flash-02-23
    Qwen/Qwen3-Coder-480B-A35B-Instruct: Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16
    secret-alias: {model: gpt-4o, hidden: true}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [gpt-4o, gpt-4o-mini]}
    - {team_id: qwen-team, models: [openrouter/qwen/qwen3.5-flash-02-23]}
  users:
    - {user_id: narrow, models: [gpt-4o-mini]}
    - {user_id: bob}
  keys:
    - {key: sk-seed1-user-narrows-team, key_alias: seed1, team_id: research, user_id: narrow}
    - {key: sk-seed2-target-only, key_alias: seed2, team_id: qwen-team, models: [openrouter/qwen/qwen3.5-flash-02-23]}
    - {key: sk-seed3-alias-only, key_alias: seed3, models: ["Qwen/Qwen3-Coder-480B-A35B-Instruct"]}
    - {key: sk-seed4-ordinary, key_alias: seed4, user_id: bob, models: [openrouter/qwen/qwen3.5-flash-02-23, "ollama/llama3:8b"]}
    - {key: sk-seed5-default-models, key_alias: seed5, models: [default-models]}
`

// listIDs lists the models a key sees through openai-go.
func listIDs(t *testing.T, g *gw, key string) []string {
	t.Helper()
	c := g.client(key)
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	return ids
}

// chatUpstreamModel calls chat with model through openai-go and returns the
// status and the model name the upstream received.
func chatUpstreamModel(t *testing.T, g *gw, up *upstream, key, model string) (int, string) {
	t.Helper()
	before := up.count()
	c := g.client(key)
	_, err := c.Chat.Completions.New(t.Context(), chatParams(model))
	status := apiStatus(t, err)
	if status != http.StatusOK {
		if up.count() != before {
			t.Errorf("chat %q denied with %d but the upstream was called", model, status)
		}
		return status, ""
	}
	return status, up.last(t).Model
}

// retrieveStatus retrieves model through openai-go; a retrieved model must
// be the same object the list shows.
func retrieveStatus(t *testing.T, g *gw, key, model string) int {
	t.Helper()
	c := g.client(key)
	m, err := c.Models.Get(t.Context(), model)
	status := apiStatus(t, err)
	if status != http.StatusOK {
		return status
	}
	if m.ID != model {
		t.Errorf("Models.Get(%q).ID = %q, want %q", model, m.ID, model)
	}
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range page.Data {
		if l.ID == model && (l.OwnedBy != m.OwnedBy || l.Created != m.Created) {
			t.Errorf("Models.Get(%q) = owned_by %q created %d, list says %q %d", model, m.OwnedBy, m.Created, l.OwnedBy, l.Created)
		}
	}
	return status
}

// Seed case 1: GET /v1/models must apply the user's allow-list to a team
// key, intersecting it with the team's (not taking the first non-empty).
func TestSeed1ListAppliesUserAllowList(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const key = "sk-seed1-user-narrows-team"

	if got, want := listIDs(t, g, key), []string{"gpt-4o-mini"}; !slices.Equal(got, want) {
		t.Errorf("Models.List = %v, want %v", got, want)
	}
	tests := []struct {
		model      string
		wantStatus int
		wantUp     string
	}{
		{"gpt-4o-mini", 200, "gpt-4o-mini"},
		{"gpt-4o", 404, ""},       // the team allows it, the user does not
		{"secret-alias", 404, ""}, // hidden alias of gpt-4o: same rule
		{"AgentX-LLM", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			if got := retrieveStatus(t, g, key, tc.model); got != tc.wantStatus {
				t.Errorf("retrieve %q = %d, want %d", tc.model, got, tc.wantStatus)
			}
			status, upModel := chatUpstreamModel(t, g, up, key, tc.model)
			if status != tc.wantStatus || upModel != tc.wantUp {
				t.Errorf("chat %q = %d upstream model %q, want %d %q", tc.model, status, upModel, tc.wantStatus, tc.wantUp)
			}
		})
	}
}

// Seed case 2: an alias is permitted when the key and team allow only its
// target.
func TestSeed2AliasPermittedByTargetOnly(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const key = "sk-seed2-target-only"

	ids := listIDs(t, g, key)
	for _, want := range []string{"AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"} {
		if !slices.Contains(ids, want) {
			t.Errorf("Models.List = %v, want it to contain %q", ids, want)
		}
	}
	if slices.Contains(ids, "gpt-4o") {
		t.Errorf("Models.List = %v lists gpt-4o, which the key does not allow", ids)
	}
	for _, model := range []string{"AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"} {
		if got := retrieveStatus(t, g, key, model); got != 200 {
			t.Errorf("retrieve %q = %d, want 200", model, got)
		}
		status, upModel := chatUpstreamModel(t, g, up, key, model)
		if status != 200 || upModel != "qwen/qwen3.5-flash-02-23" {
			t.Errorf("chat %q = %d upstream model %q, want 200 %q", model, status, upModel, "qwen/qwen3.5-flash-02-23")
		}
	}
}

// Seed case 3: an alias is permitted when the key allows only the alias
// name; the target itself stays forbidden.
func TestSeed3AliasPermittedByAliasNameOnly(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const (
		key    = "sk-seed3-alias-only"
		alias  = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
		target = "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16"
	)
	if got, want := listIDs(t, g, key), []string{alias}; !slices.Equal(got, want) {
		t.Errorf("Models.List = %v, want %v", got, want)
	}
	if got := retrieveStatus(t, g, key, alias); got != 200 {
		t.Errorf("retrieve %q = %d, want 200", alias, got)
	}
	status, upModel := chatUpstreamModel(t, g, up, key, alias)
	if status != 200 || upModel != target {
		t.Errorf("chat %q = %d upstream model %q, want 200 %q", alias, status, upModel, target)
	}
	if got := retrieveStatus(t, g, key, target); got != 404 {
		t.Errorf("retrieve %q = %d, want 404", target, got)
	}
	if status, _ := chatUpstreamModel(t, g, up, key, target); status != 404 {
		t.Errorf("chat %q = %d, want 404", target, status)
	}
}

// Seed case 4: ordinary keys may retrieve the models they may use, with
// "/" raw or %2F-encoded and ":" in the id.
func TestSeed4RetrieveOpenToOrdinaryKeys(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const key = "sk-seed4-ordinary"

	for _, model := range []string{"openrouter/qwen/qwen3.5-flash-02-23", "ollama/llama3:8b", "AgentX-LLM"} {
		if got := retrieveStatus(t, g, key, model); got != 200 {
			t.Errorf("openai-go Models.Get(%q) = %d, want 200", model, got)
		}
	}
	tests := []struct {
		name, path string
		wantStatus int
		wantID     string
	}{
		{"raw slashes", "/v1/models/openrouter/qwen/qwen3.5-flash-02-23", 200, "openrouter/qwen/qwen3.5-flash-02-23"},
		{"encoded slashes", "/v1/models/openrouter%2Fqwen%2Fqwen3.5-flash-02-23", 200, "openrouter/qwen/qwen3.5-flash-02-23"},
		{"no v1 prefix", "/models/openrouter/qwen/qwen3.5-flash-02-23", 200, "openrouter/qwen/qwen3.5-flash-02-23"},
		{"raw colon", "/v1/models/ollama/llama3:8b", 200, "ollama/llama3:8b"},
		{"encoded colon", "/v1/models/ollama%2Fllama3%3A8b", 200, "ollama/llama3:8b"},
		{"double encoding decoded once", "/v1/models/openrouter%252Fqwen", 404, ""},
		{"forbidden", "/v1/models/gpt-4o", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(t, http.MethodGet, tc.path, key, "", nil)
			if r.Status != tc.wantStatus {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, r.Status, r.Body, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				e := decodeError(t, r.Body)
				if e.Error.Code == nil || *e.Error.Code != "model_not_found" {
					t.Errorf("GET %s code = %v, want model_not_found", tc.path, e.Error.Code)
				}
				return
			}
			var m openai.Model
			if err := json.Unmarshal(r.Body, &m); err != nil || m.ID != tc.wantID || m.Object != "model" {
				t.Errorf("GET %s = %s, want id %q object model", tc.path, r.Body, tc.wantID)
			}
		})
	}
	// %252F decodes once to %2F and names no model: the message echoes it so.
	r := g.do(t, http.MethodGet, "/v1/models/openrouter%252Fqwen", key, "", nil)
	if e := decodeError(t, r.Body); e.Error.Message != "The model `openrouter%2Fqwen` does not exist or you do not have access to it." {
		t.Errorf("double-encoded id message = %q", e.Error.Message)
	}
}

// Seed case 5: access groups on wildcard deployments; the most specific
// wildcard decides which group a name belongs to.
func TestSeed5AccessGroupsAndWildcards(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const key = "sk-seed5-default-models"

	tests := []struct {
		model      string
		wantStatus int
		wantUp     string
	}{
		{"openai/gpt-4", 200, "gpt-4"},
		{"openai/gpt-4.1-nano", 200, "gpt-4.1-nano"},
		{"openai/o1-mini", 404, ""}, // served by openai/o1-* in restricted-models
		{"openai/o1-preview", 404, ""},
		// gpt-4o's own deployment is in no access group; that openai/*
		// would also serve the name openai/gpt-4o grants nothing.
		{"gpt-4o", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			if got := retrieveStatus(t, g, key, tc.model); got != tc.wantStatus {
				t.Errorf("retrieve %q = %d, want %d", tc.model, got, tc.wantStatus)
			}
			status, upModel := chatUpstreamModel(t, g, up, key, tc.model)
			if status != tc.wantStatus || upModel != tc.wantUp {
				t.Errorf("chat %q = %d upstream model %q, want %d %q", tc.model, status, upModel, tc.wantStatus, tc.wantUp)
			}
		})
	}
	// Wildcards are never listed as patterns.
	for _, id := range listIDs(t, g, key) {
		if id == "openai/*" || id == "openai/o1-*" {
			t.Errorf("Models.List lists the pattern %q", id)
		}
	}
}
