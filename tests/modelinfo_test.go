package tests

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// catalogConfig has deployments the built-in catalog knows (gpt-4o-mini:
// 128000 tokens in, 0.15 USD per million), one it does not, model_info
// overrides, a group of two and a wildcard. The provider key and a
// credential-like model_info field must never be shown.
const catalogConfig = `
model_list:
  - model_name: openai/gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", api_key: sk-provider-secret-catalog-1}
  - model_name: tuned
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", output_cost_per_token: 0.000002}
    model_info: {max_output_tokens: 4096, mode: chat, supports_vision: true, api_key: sk-info-secret-catalog-2}
  - model_name: local/llama-3-private
    litellm_params: {model: hosted_vllm/llama-3-private, api_base: "{{UP}}"}
  - model_name: pair
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}"}
  - model_name: pair
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}"}
    model_info: {max_input_tokens: 64000, max_tokens: 8192}
  - model_name: "wild/*"
    litellm_params: {model: "openai/*", api_base: "{{UP}}"}
router_settings:
  model_group_alias:
    mini-alias: openai/gpt-4o-mini
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: sk-catalog-open-0001, key_alias: open}
`

// limits are a model object's limit fields; nil means absent.
type limits struct {
	ContextLength, MaxInput, MaxOutput any
}

func objectLimits(m map[string]any) limits {
	return limits{m["context_length"], m["max_input_tokens"], m["max_output_tokens"]}
}

// window is what a model object says of a known input window and, when
// out is not 0, output limit; JSON numbers decode as float64.
func window(in, out float64) limits {
	l := limits{ContextLength: in, MaxInput: in}
	if out != 0 {
		l.MaxOutput = out
	}
	return l
}

func TestModelObjectLimits(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, catalogConfig, up)
	const key = "sk-catalog-open-0001"
	want := map[string]limits{
		"openai/gpt-4o-mini":    window(128000, 0),    // the catalog's window
		"tuned":                 window(128000, 4096), // model_info over the catalog, field by field
		"local/llama-3-private": {},                   // no catalog knows it: no fields at all
		"pair":                  window(64000, 8192),  // the smallest known of the group
		"mini-alias":            window(128000, 0),    // an alias carries its target's
		"wild/gpt-4o":           window(128000, 0),    // a wildcard name: its concrete upstream model
		"wild/no-such-model-x1": {},                   // served, but unknown to the catalog
	}

	r := g.do(t, http.MethodGet, "/v1/models", key, "", nil)
	var list struct {
		Data []map[string]any `json:"data"`
	}
	mustJSON(t, r, &list)
	listed := map[string]bool{}
	for _, m := range list.Data {
		id := m["id"].(string)
		listed[id] = true
		w, ok := want[id]
		if !ok {
			t.Errorf("list has unexpected id %q", id)
			continue
		}
		if got := objectLimits(m); got != w {
			t.Errorf("list: %s limits = %+v, want %+v", id, got, w)
		}
	}
	for _, id := range []string{"openai/gpt-4o-mini", "tuned", "local/llama-3-private", "pair", "mini-alias"} {
		if !listed[id] {
			t.Errorf("list lacks %q", id)
		}
	}
	if !strings.Contains(string(r.Body), `"id":"local/llama-3-private","object":"model","created":`) ||
		strings.Contains(string(r.Body), "null") || strings.Contains(string(r.Body), `"context_length":0`) {
		t.Errorf("list: unknown limits must be absent, not null or 0: %s", r.Body)
	}

	for id, w := range want {
		// Raw slashes (older clients) and %2F (openai-go, openai-node).
		for _, path := range []string{"/v1/models/" + id, "/v1/models/" + url.PathEscape(id)} {
			r := g.do(t, http.MethodGet, path, key, "", nil)
			var m map[string]any
			mustJSON(t, r, &m)
			if m["id"] != id {
				t.Errorf("GET %s id = %v, want %q", path, m["id"], id)
			}
			if got := objectLimits(m); got != w {
				t.Errorf("GET %s limits = %+v, want %+v", path, got, w)
			}
		}
	}

	// openai-go keeps the fields it does not model in ExtraFields.
	c := g.client(key)
	m, err := c.Models.Get(t.Context(), "openai/gpt-4o-mini")
	if err != nil {
		t.Fatalf("Models.Get(openai/gpt-4o-mini): %v", err)
	}
	for field, want := range map[string]string{"context_length": "128000", "max_input_tokens": "128000"} {
		if got := m.JSON.ExtraFields[field].Raw(); got != want {
			t.Errorf("Models.Get(openai/gpt-4o-mini) %s = %q, want %s", field, got, want)
		}
	}
	if f, ok := m.JSON.ExtraFields["max_output_tokens"]; ok {
		t.Errorf("Models.Get(openai/gpt-4o-mini) max_output_tokens = %s, want absent", f.Raw())
	}
}

func TestModelInfoShowsEffectiveInfo(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, catalogConfig, up)
	for _, caller := range []string{"sk-master-test-0000", "sk-catalog-open-0001"} {
		r := g.do(t, http.MethodGet, "/model/info", caller, "", nil)
		for _, secret := range []string{"sk-provider-secret-catalog-1", "sk-info-secret-catalog-2", "api_key"} {
			if strings.Contains(string(r.Body), secret) {
				t.Errorf("/model/info as %s shows %q: %s", caller[:9], secret, r.Body)
			}
		}
		var resp struct {
			Data []struct {
				ModelName string         `json:"model_name"`
				ModelInfo map[string]any `json:"model_info"`
			} `json:"data"`
		}
		mustJSON(t, r, &resp)
		byName := map[string]map[string]any{}
		for _, d := range resp.Data {
			if _, dup := byName[d.ModelName]; !dup {
				byName[d.ModelName] = d.ModelInfo
			}
		}
		tuned := byName["tuned"]
		for field, want := range map[string]any{
			"max_input_tokens":      128000.0, // catalog
			"max_output_tokens":     4096.0,   // model_info
			"input_cost_per_token":  0.15 / 1e6,
			"output_cost_per_token": 0.000002, // litellm_params
			"mode":                  "chat",
			"supports_vision":       true,
			"catalog_model":         "openai/gpt-4o-mini",
			"provider":              "openai",
		} {
			if got := tuned[field]; got != want {
				b, _ := json.Marshal(tuned)
				t.Errorf("/model/info tuned %s = %v, want %v (%s)", field, got, want, b)
			}
		}
		local := byName["local/llama-3-private"]
		for _, field := range []string{"max_input_tokens", "input_cost_per_token", "output_cost_per_token"} {
			if v, ok := local[field]; !ok || v != nil {
				t.Errorf("/model/info local %s = %v (present %v), want null", field, v, ok)
			}
		}
	}
}
