package tests

import (
	"net/http"
	"testing"
)

// TestServedHeaders: answers say which model group served them and how
// many deployments were tried (DESIGN §12).
func TestServedHeaders(t *testing.T) {
	up := startUpstream(t)
	const config = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}"}
  - model_name: dual
    litellm_params: {model: openai/dual, api_base: "http://127.0.0.1:1", weight: 1e30}
  - model_name: dual
    litellm_params: {model: openai/dual, api_base: "{{UP}}", weight: 1e-30}
  - model_name: direct
    litellm_params: {model: openai/dual, api_base: "{{UP}}"}
router_settings:
  model_group_alias: {fast: gpt-4o}
general_settings:
  master_key: sk-master-test-0000
`
	g := startGateway(t, config, up)
	r := g.do(t, http.MethodPost, "/v1/chat/completions", "sk-master-test-0000", "application/json", chatBody("fast"))
	if r.Status != 200 || r.Header.Get("X-Gateway-Model-Group") != "gpt-4o" || r.Header.Get("X-Gateway-Attempts") != "1" {
		t.Errorf("alias call = %d, model group %q, attempts %q", r.Status, r.Header.Get("X-Gateway-Model-Group"), r.Header.Get("X-Gateway-Attempts"))
	}
	// dual's first choice (by its weight) refuses connections: the
	// second deployment serves after a failover.
	for model, want := range map[string]string{"dual": "2", "direct": "1"} {
		r := g.do(t, http.MethodPost, "/v1/chat/completions", "sk-master-test-0000", "application/json", chatBody(model))
		if r.Status != 200 || r.Header.Get("X-Gateway-Model-Group") != model || r.Header.Get("X-Gateway-Attempts") != want {
			t.Errorf("%s = %d, model group %q, attempts %q; want %s attempts", model, r.Status, r.Header.Get("X-Gateway-Model-Group"), r.Header.Get("X-Gateway-Attempts"), want)
		}
	}
}
