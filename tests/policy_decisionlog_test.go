package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
)

// decisionEvents decodes the JSON lines of a decision log.
func decisionEvents(tb testing.TB, b []byte) []map[string]any {
	tb.Helper()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var ev map[string]any
		if err := dec.Decode(&ev); err != nil {
			tb.Fatalf("decision log line: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func TestDecisionLogEvents(t *testing.T) {
	up := startUpstream(t)
	var out syncBuffer
	g := startGatewayWith(t, seedConfig, up, app.Options{DecisionLogOutput: &out})
	const key = "sk-seed2-target-only"
	c := g.client(key)
	if _, err := c.Models.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Models.Get(t.Context(), "AgentX-LLM"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat.Completions.New(t.Context(), chatParams("AgentX-LLM")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat.Completions.New(t.Context(), chatParams("gpt-4o")); apiStatus(t, err) != http.StatusNotFound {
		t.Fatalf("chat gpt-4o = %v, want 404", err)
	}
	// list: the route decision and the visible_models filter; retrieve;
	// two calls.
	const want = 5
	eventually(t, "the decision events", func() bool { return g.DecisionLog.Written() >= want })
	evs := decisionEvents(t, []byte(out.String()))
	if len(evs) != want {
		t.Fatalf("%d decision events, want %d:\n%s", len(evs), want, []byte(out.String()))
	}
	tests := []struct {
		query, route, requested, resolved string
		allow                             bool
	}{
		{"decision", gateway.RouteModelsList, "", "", true},
		{"visible_models", gateway.RouteModelsList, "", "", true},
		{"decision", gateway.RouteModelsGet, "AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23", true},
		{"decision", gateway.RouteInference, "AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23", true},
		{"decision", gateway.RouteInference, "gpt-4o", "gpt-4o", false},
	}
	ids := map[string]bool{}
	for i, tc := range tests {
		ev := evs[i]
		if ev["query"] != tc.query || ev["route"] != tc.route || ev["requested_model"] != tc.requested ||
			ev["resolved_model"] != tc.resolved || ev["allow"] != tc.allow {
			t.Errorf("event %d = %v, want %s %s %q→%q allow %t", i, ev, tc.query, tc.route, tc.requested, tc.resolved, tc.allow)
		}
		if ev["key_hash"] != gateway.HashKey(key) || ev["key_alias"] != "seed2" || ev["team"] != "qwen-team" {
			t.Errorf("event %d: key %v %v team %v, want seed2's hash, alias and team", i, ev["key_hash"], ev["key_alias"], ev["team"])
		}
		if ev["bundle_revision"] != g.Engine.Revision() || ev["request_id"] == "" || ev["time"] == "" {
			t.Errorf("event %d: revision %v, request id %v, time %v", i, ev["bundle_revision"], ev["request_id"], ev["time"])
		}
		if us, ok := ev["eval_us"].(float64); !ok || us <= 0 {
			t.Errorf("event %d: eval_us = %v, want a positive time", i, ev["eval_us"])
		}
		id, _ := ev["decision_id"].(string)
		if id == "" || ids[id] {
			t.Errorf("event %d: decision_id %q, want a fresh id", i, id)
		}
		ids[id] = true
	}
	if chain, _ := evs[3]["chain"].([]any); len(chain) != 2 || chain[0] != "AgentX-LLM" {
		t.Errorf("call event chain = %v, want [AgentX-LLM openrouter/…]", evs[3]["chain"])
	}
	if vis, _ := evs[1]["visible"].([]any); len(vis) == 0 {
		t.Errorf("visible_models event = %v, want the visible ids", evs[1])
	}
	if reasons, _ := evs[4]["reasons"].([]any); len(reasons) == 0 {
		t.Errorf("deny event has no reasons: %v", evs[4])
	}
	for _, secret := range []string{key, "sk-master-test-0000", "sk-upstream-provider-secret", `"hi"`} {
		if bytes.Contains([]byte(out.String()), []byte(secret)) {
			t.Errorf("the decision log contains %s", secret)
		}
	}
	if g.DecisionLog.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", g.DecisionLog.Dropped())
	}
}

func TestDecisionLogOffByDefault(t *testing.T) {
	g := startGateway(t, seedConfig, startUpstream(t))
	if g.DecisionLog != nil {
		t.Error("DecisionLog is on without a destination")
	}
}

func TestDecisionLogConfig(t *testing.T) {
	for _, bad := range []string{
		"  policy: {decision_log: [stdout]}\n",
		"  policy: {decisionlog: stdout}\n",
		"  policy: {poll_interval: 5ms}\n",
		"  policy: {verification: {algorithm: RS256}}\n",
		"  policy: {verification: {key: k, algorithm: XX999}}\n",
	} {
		_, err := app.Build(t.Context(), app.Options{ConfigData: []byte(reloadConfig + bad), Env: func(string) (string, bool) { return "", false }})
		if err == nil || !strings.Contains(err.Error(), "gateway_settings.policy") {
			t.Errorf("Build(%q) error = %v, want a gateway_settings.policy error with its line", strings.TrimSpace(bad), err)
		}
	}
}
