package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
)

// requestRules is a custom bundle that denies on each field of what a call
// asks for (DESIGN §6, second part).
const requestRules = `package gateway.custom

deny contains "max_tokens over 1000" if input.request.params.max_tokens > 1000

deny contains "no shell tool" if "shell" in input.request.params.tool_names

deny contains "json_schema output is not for this model" if {
	input.request.params.response_format == "json_schema"
	input.model.resolved == "gpt-4o-mini"
}

deny contains "reasoning_effort high is for research" if {
	input.request.params.reasoning_effort == "high"
	input.team.id != "research"
}

deny contains "a marked prompt" if {
	some m in input.request.body.messages
	contains(m.content, "TOP-SECRET")
}

deny contains "not from that address" if input.request.client_ip == "203.0.113.9"

deny contains "blocked client" if input.request.headers["x-client"] == "blocked-tool"

deny contains "low budget keys may not stream" if {
	is_number(input.key.max_budget)
	input.key.max_budget < 1
	input.request.stream
}

deny contains "spent too much for gpt-4o" if {
	input.key.metadata.watch_spend
	input.request.route == "inference"
	input.key.spend > 0.3
	input.model.resolved == "gpt-4o"
}
`

// requestConfig: gpt-4o is priced so that a call of the usage upstream
// costs 0.19; a proxy on loopback is trusted.
const requestConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", input_cost_per_token: 0.001, output_cost_per_token: 0.002, cache_read_input_token_cost: 0.0005}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}"}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  trusted_proxies: [127.0.0.1/32, "::1"]
  teams:
    - {team_id: research}
    - {team_id: applied}
  keys:
    - {key: sk-request-research-key, team_id: research}
    - {key: sk-request-applied-key, team_id: applied}
    - {key: sk-request-lowbudget-key, team_id: applied, max_budget: 0.5}
    - {key: sk-request-spender-key, team_id: research, metadata: {watch_spend: true}}
`

// requestBundle writes requestRules as a bundle rooted at gateway/custom.
func requestBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		".manifest":    `{"roots": ["gateway/custom"], "revision": "request-rules"}`,
		"request.rego": requestRules,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyOverWhatACallAsks(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(usageUpstream())
	var log syncBuffer
	g := startGatewayWith(t, requestConfig, up, app.Options{Bundles: []string{requestBundle(t)}, DecisionLogOutput: &log})
	research, applied, low, spender := "sk-request-research-key", "sk-request-applied-key", "sk-request-lowbudget-key", "sk-request-spender-key"
	chat := func(extra string) []byte {
		return []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello PROMPT-MARKER"}]` + extra + `}`)
	}
	type call struct {
		name   string
		key    string
		body   []byte
		header map[string]string
		denied string // the message of the deny, empty when allowed
	}
	calls := []call{
		{"plain call", applied, chat(""), nil, ""},
		{"max_tokens within", applied, chat(`,"max_tokens":1000`), nil, ""},
		{"max_tokens over", applied, chat(`,"max_tokens":1001`), nil, "max_tokens over 1000"},
		{"max_completion_tokens is another field", applied, chat(`,"max_completion_tokens":5000`), nil, ""},
		{"shell tool", applied, chat(`,"tools":[{"type":"function","function":{"name":"shell","parameters":{}}}]`), nil, "no shell tool"},
		{"other tool", applied, chat(`,"tools":[{"type":"function","function":{"name":"search","parameters":{}}}]`), nil, ""},
		{"json_schema on gpt-4o-mini", applied, []byte(`{"model":"gpt-4o-mini","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`), nil, "json_schema output is not for this model"},
		{"json_schema on gpt-4o", applied, chat(`,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}`), nil, ""},
		{"reasoning_effort high outside research", applied, chat(`,"reasoning_effort":"high"`), nil, "reasoning_effort high is for research"},
		{"reasoning_effort high in research", research, chat(`,"reasoning_effort":"high"`), nil, ""},
		{"marked prompt", applied, []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"this is TOP-SECRET"}]}`), nil, "a marked prompt"},
		{"forwarded for by a trusted proxy", applied, chat(""), map[string]string{"X-Forwarded-For": "203.0.113.9"}, "not from that address"},
		{"forwarded chain, right-most untrusted", applied, chat(""), map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}, ""},
		{"X-Real-IP changes nothing", applied, chat(""), map[string]string{"X-Real-IP": "203.0.113.9"}, ""},
		{"header", applied, chat(""), map[string]string{"X-Client": "blocked-tool"}, "blocked client"},
		{"low budget key, no stream", low, chat(""), nil, ""},
		{"low budget key, stream", low, chat(`,"stream":true`), nil, "low budget keys may not stream"},
		{"spend under the mark", spender, chat(""), nil, ""}, // 0.19 spent after it
		{"spend still under the mark", spender, chat(""), nil, ""},
		{"spend over the mark", spender, chat(""), nil, "spent too much for gpt-4o"},
		{"spend over the mark, other model", spender, []byte(`{"model":"gpt-4o-mini","messages":[]}`), nil, ""},
	}
	for _, c := range calls {
		before := up.count()
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		r := roundTrip(t, req)
		if c.denied == "" {
			if r.Status != http.StatusOK {
				t.Errorf("%s: %d %s, want 200", c.name, r.Status, r.Body)
			}
			continue
		}
		if r.Status != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", c.name, r.Status, r.Body)
			continue
		}
		e := decodeError(t, r.Body)
		if e.Error.Code == nil || *e.Error.Code != "policy_denied" || !strings.Contains(e.Error.Message, c.denied) {
			t.Errorf("%s: error %s, want policy_denied %q", c.name, r.Body, c.denied)
		}
		if up.count() != before {
			t.Errorf("%s: the upstream was called for a denied call", c.name)
		}
	}

	// Custom rules do not filter the list, and retrieve stays as it was
	// (DESIGN §10.10): the spend rule denies gpt-4o calls of this key, yet
	// it is listed and retrievable.
	if got := listIDs(t, g, spender); strings.Join(got, ",") != "gpt-4o,gpt-4o-mini" {
		t.Errorf("list = %v, want both models", got)
	}
	if st := retrieveStatus(t, g, spender, "gpt-4o"); st != http.StatusOK {
		t.Errorf("retrieve gpt-4o = %d, want 200", st)
	}

	// The explain endpoint shows the params of a call it is given, never
	// its body or prompt.
	x := g.admin(t, http.MethodPost, "/admin/policy/explain", map[string]any{
		"key": applied, "model": "gpt-4o", "client_ip": "203.0.113.9",
		"body": map[string]any{"model": "gpt-4o", "max_tokens": 5000, "messages": []any{map[string]any{"role": "user", "content": "PROMPT-MARKER"}}},
	})
	var ex struct {
		Decision struct {
			Allow   bool     `json:"allow"`
			Message string   `json:"message"`
			Reasons []string `json:"reasons"`
		} `json:"decision"`
		Input struct {
			Request map[string]any `json:"request"`
		} `json:"input"`
	}
	mustJSON(t, x, &ex)
	params, _ := ex.Input.Request["params"].(map[string]any)
	if ex.Decision.Allow || params["max_tokens"] != float64(5000) || ex.Input.Request["client_ip"] != "203.0.113.9" {
		t.Errorf("explain = %s", x.Body)
	}
	if _, ok := ex.Input.Request["body"]; ok || strings.Contains(string(x.Body), "PROMPT-MARKER") {
		t.Errorf("explain shows the body or the prompt: %s", x.Body)
	}

	// The decision log shows params, never the body, the prompt or a
	// credential.
	eventually(t, "the decision events", func() bool { return g.DecisionLog.Written() > uint64(len(calls)) })
	text := log.String()
	for _, secret := range []string{"PROMPT-MARKER", "TOP-SECRET", "sk-request-", "Bearer"} {
		if strings.Contains(text, secret) {
			t.Errorf("the decision log holds %q", secret)
		}
	}
	found := false
	for _, line := range strings.Split(text, "\n") {
		var ev struct {
			Params   map[string]any `json:"params"`
			ClientIP string         `json:"client_ip"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Params["max_tokens"] == float64(1001) {
			found = true
			if _, ok := ev.Params["messages"]; ok {
				t.Errorf("params hold the messages: %v", ev.Params)
			}
		}
	}
	if !found {
		t.Error("no decision event shows params.max_tokens 1001")
	}
}

// TestUntrustedForwardedFor: without trusted proxies, X-Forwarded-For
// changes nothing.
func TestUntrustedForwardedFor(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(usageUpstream())
	config := strings.Replace(requestConfig, `  trusted_proxies: [127.0.0.1/32, "::1"]`+"\n", "", 1)
	g := startGatewayWith(t, config, up, app.Options{Bundles: []string{requestBundle(t)}})
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(chatBody("gpt-4o")))
	req.Header.Set("Authorization", "Bearer sk-request-applied-key")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if r := roundTrip(t, req); r.Status != http.StatusOK {
		t.Errorf("untrusted X-Forwarded-For: %d %s, want 200", r.Status, r.Body)
	}
}

// TestHeadersWithoutCredentials: input.request.headers never holds a
// credential (a rule that would deny on any of them never fires).
func TestHeadersWithoutCredentials(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	rule := `package gateway.custom

deny contains sprintf("credential header %s", [h]) if {
	some h in ["authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"]
	input.request.headers[h]
}

deny contains "header names are lower case" if input.request.headers["X-Team"]

deny contains "no x-team header" if not input.request.headers["x-team"]
`
	for name, data := range map[string]string{".manifest": `{"roots": ["gateway/custom"]}`, "h.rego": rule} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := startGatewayWith(t, requestConfig, up, app.Options{Bundles: []string{dir}})
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(chatBody("gpt-4o")))
	for k, v := range map[string]string{"Authorization": "Bearer sk-request-applied-key", "Api-Key": "sk-request-applied-key",
		"X-Api-Key": "sk-request-applied-key", "Cookie": "session=1", "Proxy-Authorization": "Basic eA==", "X-Team": "t"} {
		req.Header.Set(k, v)
	}
	if r := roundTrip(t, req); r.Status != http.StatusOK {
		t.Errorf("chat with credential headers = %d %s, want 200", r.Status, r.Body)
	}
}
