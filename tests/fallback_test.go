package tests

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
)

// Fallbacks (DESIGN §12) through the HTTP API: each target is decided by
// the policy for the same principal as a direct call would be, and one the
// caller may not call never reaches its upstream nor shows in any answer.

// fallbackConfig: the key may call every group but secret-backup; the
// fallback lists put secret-backup and a name that exists nowhere before
// the targets it may call.
const fallbackConfig = `
model_list:
  - model_name: primary
    litellm_params: {model: openai/primary, api_base: "{{0}}", input_cost_per_token: 0.01, output_cost_per_token: 0.01}
  - model_name: secret-backup
    litellm_params: {model: openai/secret-backup, api_base: "{{1}}"}
  - model_name: backup
    litellm_params: {model: openai/backup, api_base: "{{2}}", input_cost_per_token: 0.001, output_cost_per_token: 0.002}
  - model_name: big-context
    litellm_params: {model: openai/big, api_base: "{{3}}"}
  - model_name: safe
    litellm_params: {model: openai/safe, api_base: "{{4}}"}
  - model_name: lonely
    litellm_params: {model: openai/lonely, api_base: "{{0}}"}
router_settings:
  fallbacks: [{"primary": ["secret-backup", "no-such-model", "backup"]}]
  context_window_fallbacks: [{"primary": ["secret-backup", "big-context"]}]
  content_policy_fallbacks: [{"primary": ["secret-backup", "safe"]}]
  default_fallbacks: ["secret-backup", "backup"]
`

const fallbackAllow = "primary, backup, big-context, safe, lonely"

type fallbackServers struct {
	primary, secret, backup, big, safe *deploymentServer
}

func startFallbackGateway(t *testing.T, opts app.Options, keyExtra string) (*gw, *fallbackServers) {
	t.Helper()
	s := &fallbackServers{newDeploymentServer(t), newDeploymentServer(t), newDeploymentServer(t), newDeploymentServer(t), newDeploymentServer(t)}
	config := serversConfig(fallbackConfig, s.primary, s.secret, s.backup, s.big, s.safe) + routingKeyConfig(fallbackAllow+"]"+keyExtra+"}")
	return startGatewayWith(t, config, nil, opts), s
}

// noSecret fails if an answer names the target the caller may not call.
func noSecret(t *testing.T, r response) {
	t.Helper()
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, "secret-backup") {
				t.Errorf("header %s: %s names the forbidden fallback", k, v)
			}
		}
	}
	if strings.Contains(string(r.Body), "secret") || strings.Contains(string(r.Body), "no-such-model") {
		t.Errorf("body names a fallback the caller may not call: %s", r.Body)
	}
}

func TestFallbackKinds(t *testing.T) {
	var log syncBuffer
	g, s := startFallbackGateway(t, app.Options{DecisionLogOutput: &log}, "")
	for _, tc := range []struct {
		name, model string
		fail        http.HandlerFunc
		stream      bool
		wantGroup   string
		served      *deploymentServer
		kind        string
	}{
		{"exhausted", "primary", status(http.StatusServiceUnavailable, "overloaded"), false, "backup", s.backup, "fallback"},
		{"exhausted stream", "primary", status(http.StatusInternalServerError, "boom"), true, "backup", s.backup, "fallback"},
		{"context window", "primary", status(http.StatusBadRequest, "context_length_exceeded"), false, "big-context", s.big, "context_window"},
		{"content policy", "primary", status(http.StatusBadRequest, "content_policy_violation"), false, "safe", s.safe, "content_policy"},
		{"default fallbacks", "lonely", status(http.StatusBadGateway, "bad_gateway"), false, "backup", s.backup, "fallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.primary.set(tc.fail)
			before := tc.served.calls.Load()
			body := chatBody(tc.model)
			if tc.stream {
				body = []byte(`{"model":"` + tc.model + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			}
			r := g.do(t, http.MethodPost, "/v1/chat/completions", routingKey, "application/json", body)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d %s, want 200 from the fallback", r.Status, r.Body)
			}
			if got := r.Header.Get("X-Gateway-Model-Group"); got != tc.wantGroup {
				t.Errorf("X-Gateway-Model-Group = %q, want %q", got, tc.wantGroup)
			}
			if got := r.Header.Get("X-Gateway-Attempts"); got != "2" {
				t.Errorf("X-Gateway-Attempts = %q, want 2 (the group's one deployment, then the fallback)", got)
			}
			if tc.stream && !strings.Contains(string(r.Body), "data: [DONE]") {
				t.Errorf("stream from the fallback = %s, want a whole stream", r.Body)
			}
			if tc.served.calls.Load() != before+1 {
				t.Errorf("%s's upstream saw %d calls, want 1", tc.wantGroup, tc.served.calls.Load()-before)
			}
			noSecret(t, r)
		})
	}
	if n := s.secret.calls.Load(); n != 0 {
		t.Errorf("the forbidden fallback's upstream saw %d calls, want none", n)
	}
	metricHas(t, g, `gateway_fallbacks_total{kind="fallback",model_group="primary",result="denied"} 4`)
	metricHas(t, g, `gateway_fallbacks_total{kind="fallback",model_group="primary",result="served"} 2`)
	metricHas(t, g, `gateway_fallbacks_total{kind="context_window",model_group="primary",result="served"} 1`)
	metricHas(t, g, `gateway_fallbacks_total{kind="fallback",model_group="lonely",result="served"} 1`)

	// The decision log records every target decided, with the group it
	// stood in for.
	eventually(t, "the fallback decisions", func() bool { return strings.Count(log.String(), `"fallback_from"`) >= 12 })
	var denied, allowed int
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var ev struct {
			Requested    string `json:"requested_model"`
			Allow        bool   `json:"allow"`
			FallbackFrom string `json:"fallback_from"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("decision log line %q: %v", line, err)
		}
		switch {
		case ev.FallbackFrom == "":
		case ev.Requested == "secret-backup" || ev.Requested == "no-such-model":
			denied++
			if ev.Allow {
				t.Errorf("decision for %s allowed it", ev.Requested)
			}
		case ev.Allow:
			allowed++
		}
	}
	if denied != 7 || allowed != 5 {
		t.Errorf("decision log: %d denied and %d allowed fallback decisions, want 7 and 5", denied, allowed)
	}
}

// TestFallbackNeverReachesForbidden: when every target the caller may
// call fails too, the answer is the first group's, naming nothing else.
func TestFallbackExhausted(t *testing.T) {
	g, s := startFallbackGateway(t, app.Options{}, "")
	s.primary.set(status(http.StatusServiceUnavailable, "overloaded"))
	s.backup.set(status(http.StatusTooManyRequests, "rate_limit_exceeded"))
	s.secret.set(status(http.StatusOK, "must never be called"))
	r := routedChat(t, g, "primary")
	env := decodeError(t, r.Body)
	if r.Status != http.StatusServiceUnavailable || env.Error.Message != "upstream says 503" {
		t.Errorf("answer %d %s, want the primary group's 503", r.Status, r.Body)
	}
	if s.backup.calls.Load() != 1 || s.secret.calls.Load() != 0 {
		t.Errorf("backup saw %d calls, secret-backup %d; want 1 and 0", s.backup.calls.Load(), s.secret.calls.Load())
	}
	noSecret(t, r)
	// A 4xx that is no fallback kind is the answer at once.
	s.primary.set(status(http.StatusBadRequest, "invalid_value"))
	if r := routedChat(t, g, "primary"); r.Status != http.StatusBadRequest || s.backup.calls.Load() != 1 {
		t.Errorf("a plain 400: %d, backup saw %d calls; want the 400 and no fallback", r.Status, s.backup.calls.Load())
	}
}

// TestFallbackChargesModelThatServed: limits and spend apply to the model
// group that served, not the one asked for.
func TestFallbackChargesModelThatServed(t *testing.T) {
	g, s := startFallbackGateway(t, app.Options{}, ", model_rpm_limit: {backup: 1}")
	s.primary.set(status(http.StatusServiceUnavailable, "overloaded"))
	r := routedChat(t, g, "primary")
	if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Model-Group") != "backup" {
		t.Fatalf("first call: %d group %q, want backup to serve", r.Status, r.Header.Get("X-Gateway-Model-Group"))
	}
	var answer struct {
		Usage struct {
			PromptTokens     float64 `json:"prompt_tokens"`
			CompletionTokens float64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(r.Body, &answer); err != nil || answer.Usage.PromptTokens == 0 {
		t.Fatalf("answer %s: %v, want usage", r.Body, err)
	}
	want := answer.Usage.PromptTokens*0.001 + answer.Usage.CompletionTokens*0.002
	if spend, _ := spendOf(t, g, routingKey); math.Abs(spend-want) > 1e-9 {
		t.Errorf("spend = %v, want %v (backup's prices, not primary's)", spend, want)
	}
	// backup's rpm limit of 1 is spent: the fallback is skipped, and the
	// answer is primary's failure.
	r = routedChat(t, g, "primary")
	if r.Status != http.StatusServiceUnavailable || s.backup.calls.Load() != 1 {
		t.Errorf("second call: %d, backup saw %d calls; want primary's 503 and backup not called again", r.Status, s.backup.calls.Load())
	}
	metricHas(t, g, `gateway_fallbacks_total{kind="fallback",model_group="primary",result="limited"} 1`)
}

// TestFallbackFromCappedGroup: a group whose every deployment is at its
// rpm cap is exhausted too; its fallback serves, and the attempts count
// only the calls made.
func TestFallbackFromCappedGroup(t *testing.T) {
	capped, backup := newDeploymentServer(t), newDeploymentServer(t)
	g := routingGateway(t, `
model_list:
  - model_name: capped
    litellm_params: {model: openai/capped, api_base: "{{0}}", rpm: 1}
  - model_name: backup
    litellm_params: {model: openai/backup, api_base: "{{1}}"}
router_settings:
  fallbacks: [{"capped": ["backup"]}]
`, "capped, backup", capped, backup)
	for i, want := range []string{"capped", "backup", "backup"} {
		r := routedChat(t, g, "capped")
		if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Model-Group") != want || r.Header.Get("X-Gateway-Attempts") != "1" {
			t.Errorf("call %d: %d group %q attempts %q, want %s after 1 attempt", i, r.Status, r.Header.Get("X-Gateway-Model-Group"), r.Header.Get("X-Gateway-Attempts"), want)
		}
	}
	if capped.calls.Load() != 1 || backup.calls.Load() != 2 {
		t.Errorf("capped saw %d calls, backup %d; want 1 and 2", capped.calls.Load(), backup.calls.Load())
	}
}
