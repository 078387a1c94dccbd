package tests

import (
	"net/http"
	"slices"
	"testing"
)

// unservedConfig has a group with a bedrock deployment beside an OpenAI
// one, a group with only a bedrock deployment (and a global alias and an
// allow-list entry naming it), and an explicit id "0" on a deployment that
// is not model_list[0] (DESIGN §10.16).
const unservedConfig = `
model_list:
  - model_name: gpt
    litellm_params: {model: "bedrock/meta.llama3-70b-instruct-v1:0", aws_region_name: us-east-1}
  - model_name: gpt
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}"}
    model_info: {id: "0"}
  - model_name: claude
    litellm_params: {model: bedrock/anthropic.claude-3-5-sonnet}
  - model_name: mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}"}
router_settings:
  routing_strategy: simple-shuffle
  model_group_alias: {sonnet: claude}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: sk-unserved-key-0001, models: [gpt, claude]}
`

func TestUnservedDeployments(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, unservedConfig, up)
	const key = "sk-unserved-key-0001"

	t.Run("the OpenAI deployment serves the mixed group", func(t *testing.T) {
		for range 3 { // every call: the bedrock deployment is never tried
			r := g.do(t, http.MethodPost, "/v1/chat/completions", key, "application/json", chatBody("gpt"))
			if r.Status != http.StatusOK {
				t.Fatalf("POST chat gpt = %d, want 200: %s", r.Status, r.Body)
			}
			if got := up.last(t).Model; got != "gpt-4o" {
				t.Errorf("upstream model = %q, want gpt-4o", got)
			}
		}
	})
	t.Run("the unserved group and its alias are 404", func(t *testing.T) {
		for _, name := range []string{"claude", "sonnet"} {
			r := g.do(t, http.MethodPost, "/v1/chat/completions", key, "application/json", chatBody(name))
			if r.Status != http.StatusNotFound {
				t.Errorf("POST chat %s = %d, want 404: %s", name, r.Status, r.Body)
			}
			if r := g.do(t, http.MethodGet, "/v1/models/"+name, key, "", nil); r.Status != http.StatusNotFound {
				t.Errorf("GET /v1/models/%s = %d, want 404", name, r.Status)
			}
		}
	})
	t.Run("listing", func(t *testing.T) {
		for _, caller := range []string{key, "sk-master-test-0000"} {
			var list struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			mustJSON(t, g.do(t, http.MethodGet, "/v1/models", caller, "", nil), &list)
			var ids []string
			for _, m := range list.Data {
				ids = append(ids, m.ID)
			}
			want := []string{"gpt", "mini"}
			if caller == key {
				want = []string{"gpt"}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("GET /v1/models as %s = %q, want %q", caller[:12], ids, want)
			}
		}
	})
	t.Run("model info by id", func(t *testing.T) {
		// The explicit id "0" stays with its deployment; model_list[0]
		// (unserved) got another, and model_list[3] got "3".
		for id, want := range map[string]string{"0": "openai/gpt-4o", "3": "openai/gpt-4o-mini", "0-1": "", "2": ""} {
			var info struct {
				Data []struct {
					Params struct {
						Model string `json:"model"`
					} `json:"litellm_params"`
				} `json:"data"`
			}
			mustJSON(t, g.admin(t, http.MethodGet, "/model/info?litellm_model_id="+id, nil), &info)
			var got string
			if len(info.Data) == 1 {
				got = info.Data[0].Params.Model
			}
			if len(info.Data) > 1 || got != want {
				t.Errorf("GET /model/info?litellm_model_id=%s = %+v, want %q", id, info.Data, want)
			}
		}
	})
	t.Run("admin writes keep unserved entries", func(t *testing.T) {
		// Updating the config key, whose allow-list names the unserved
		// group claude, keeps working; so does a new key naming it. The
		// entry permits nothing.
		if r := g.admin(t, http.MethodPost, "/key/update", map[string]any{"key": key, "max_budget": 10}); r.Status != http.StatusOK {
			t.Errorf("POST /key/update = %d %s, want 200", r.Status, r.Body)
		}
		var gen struct {
			Key string `json:"key"`
		}
		mustJSON(t, g.admin(t, http.MethodPost, "/key/generate", map[string]any{"models": []string{"mini", "claude"}, "model_rpm_limit": map[string]int{"claude": 5}}), &gen)
		if r := g.do(t, http.MethodPost, "/v1/chat/completions", gen.Key, "application/json", chatBody("claude")); r.Status != http.StatusNotFound {
			t.Errorf("chat claude with the new key = %d, want 404", r.Status)
		}
		if r := g.do(t, http.MethodPost, "/v1/chat/completions", gen.Key, "application/json", chatBody("mini")); r.Status != http.StatusOK {
			t.Errorf("chat mini with the new key = %d %s, want 200", r.Status, r.Body)
		}
	})
}
