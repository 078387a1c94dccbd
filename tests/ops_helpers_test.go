package tests

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// Secrets and prompt of the operations tests: none may ever appear in a
// log line, a span attribute or a metric label.
const (
	opsKey         = "sk-ops-alice-plaintext-1234"
	opsUpstreamKey = "sk-upstream-provider-secret"
	opsMasterKey   = "sk-master-test-0000"
	opsPrompt      = "the secret prompt: purple-elephant-7731"
)

// opsConfig has an allowed model (gpt-4o), an allowed alias (fast →
// gpt-4o-mini), a model the key may not use (gpt-4o-mini by its own name)
// and a wildcard group.
const opsConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
router_settings:
  model_group_alias:
    fast: gpt-4o-mini
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [gpt-4o, fast]}
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, team_id: research}
`

// opsChatBody is a chat request for model with the secret prompt.
func opsChatBody(model string, stream bool) []byte {
	b := bytes.NewBufferString(`{"model":"` + model + `","messages":[{"role":"user","content":"` + opsPrompt + `"}]`)
	if stream {
		b.WriteString(`,"stream":true`)
	}
	b.WriteString("}")
	return b.Bytes()
}

// opsCall sends a raw chat-style request with key and extra headers, and
// returns the status and the body.
func opsCall(tb testing.TB, g *gw, method, path, key string, body []byte, header map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, g.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	r := roundTrip(tb, req)
	return r.Status, r.Header, r.Body
}

// waitReady waits until GET base/health/readiness answers 200.
func waitReady(tb testing.TB, base string) {
	tb.Helper()
	eventually(tb, "the gateway at "+base+" to become ready", func() bool {
		resp, err := http.Get(base + "/health/readiness")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// eventually polls cond every 10 ms until it holds or 10 s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
