package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
)

// explanation is the answer of POST /admin/policy/explain.
type explanation struct {
	Revision string           `json:"revision"`
	Input    map[string]any   `json:"input"`
	Decision gateway.Decision `json:"decision"`
	Chain    []struct {
		Name, Kind, Source string
	} `json:"chain"`
	Layers []struct {
		Layer        string   `json:"layer"`
		Restricts    bool     `json:"restricts"`
		Allowed      bool     `json:"allowed"`
		MatchedEntry string   `json:"matched_entry"`
		DeniedBy     []string `json:"denied_by"`
	} `json:"layers"`
	Custom  []string `json:"custom"`
	Visible []string `json:"visible"`
}

// layerVerdict is what a test expects of one layer.
type layerVerdict struct {
	restricts, allowed bool
	matched            string
}

func explain(t *testing.T, g *gw, body map[string]any) explanation {
	t.Helper()
	var x explanation
	mustJSON(t, g.admin(t, http.MethodPost, "/admin/policy/explain", body), &x)
	return x
}

// TestExplainSeedCases asks the explain endpoint about each of the five
// seed cases and checks that it names the layer and the entry that decided.
func TestExplainSeedCases(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	tests := []struct {
		name   string
		key    string
		route  string
		model  string
		allow  bool
		status int
		layers map[string]layerVerdict // key, team, user
	}{
		{"1: the user's list narrows the team's", "sk-seed1-user-narrows-team", "", "gpt-4o", false, 404, map[string]layerVerdict{
			"key": {false, true, ""}, "team": {true, true, "gpt-4o"}, "user": {true, false, ""},
		}},
		{"1: both lists permit", "sk-seed1-user-narrows-team", "", "gpt-4o-mini", true, 200, map[string]layerVerdict{
			"key": {false, true, ""}, "team": {true, true, "gpt-4o-mini"}, "user": {true, true, "gpt-4o-mini"},
		}},
		{"2: alias permitted by its target", "sk-seed2-target-only", "", "AgentX-LLM", true, 200, map[string]layerVerdict{
			"key": {true, true, "openrouter/qwen/qwen3.5-flash-02-23"}, "team": {true, true, "openrouter/qwen/qwen3.5-flash-02-23"}, "user": {false, true, ""},
		}},
		{"3: alias permitted by its name", "sk-seed3-alias-only", "", "Qwen/Qwen3-Coder-480B-A35B-Instruct", true, 200, map[string]layerVerdict{
			"key": {true, true, "Qwen/Qwen3-Coder-480B-A35B-Instruct"}, "team": {false, true, ""}, "user": {false, true, ""},
		}},
		{"3: the target alone is not", "sk-seed3-alias-only", "", "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16", false, 404, map[string]layerVerdict{
			"key": {true, false, ""}, "team": {false, true, ""}, "user": {false, true, ""},
		}},
		{"4: an ordinary key retrieves", "sk-seed4-ordinary", gateway.RouteModelsGet, "ollama/llama3:8b", true, 200, map[string]layerVerdict{
			"key": {true, true, "ollama/llama3:8b"}, "team": {false, true, ""}, "user": {false, true, ""},
		}},
		{"5: access group through a wildcard", "sk-seed5-default-models", "", "openai/gpt-4", true, 200, map[string]layerVerdict{
			"key": {true, true, "default-models"}, "team": {false, true, ""}, "user": {false, true, ""},
		}},
		{"5: the more specific wildcard's group", "sk-seed5-default-models", "", "openai/o1-mini", false, 404, map[string]layerVerdict{
			"key": {true, false, ""}, "team": {false, true, ""}, "user": {false, true, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"key": tc.key, "model": tc.model}
			if tc.route != "" {
				body["route"] = tc.route
			}
			x := explain(t, g, body)
			if x.Decision.Allow != tc.allow || x.Decision.Status != tc.status {
				t.Errorf("decision = %+v, want allow %t status %d", x.Decision, tc.allow, tc.status)
			}
			if len(x.Decision.Reasons) == 0 {
				t.Error("decision has no reasons")
			}
			if len(x.Chain) == 0 || x.Chain[0].Name != tc.model {
				t.Errorf("chain = %+v, want it to start at %s", x.Chain, tc.model)
			}
			model, _ := x.Input["model"].(map[string]any)
			if model["requested"] != tc.model || x.Input["key"].(map[string]any)["id"] != gateway.HashKey(tc.key) {
				t.Errorf("input = %v, want the request's model and the key's hash", x.Input)
			}
			got := map[string]layerVerdict{}
			for _, l := range x.Layers {
				got[l.Layer] = layerVerdict{l.Restricts, l.Allowed, l.MatchedEntry}
			}
			for name, want := range tc.layers {
				if got[name] != want {
					t.Errorf("layer %s = %+v, want %+v", name, got[name], want)
				}
			}
			if c, ok := got["custom"]; !ok || c.restricts || !c.allowed {
				t.Errorf("custom layer = %+v (present %t), want present, not restricting, allowing", c, ok)
			}
			if strings.Contains(string(mustMarshal(t, x.Input)), tc.key) {
				t.Error("the input document holds the plaintext key")
			}
		})
	}
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestExplainByKeyIDAndPrincipal(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	byID := explain(t, g, map[string]any{"key_id": gateway.HashKey("sk-seed1-user-narrows-team"), "model": "gpt-4o"})
	if byID.Decision.Allow || byID.Decision.Status != 404 {
		t.Errorf("by key_id: decision = %+v, want the 404 of seed case 1", byID.Decision)
	}
	// A principal written out: what if the user's list allowed gpt-4o too?
	whatIf := explain(t, g, map[string]any{
		"principal": map[string]any{
			"key":  map[string]any{"key_alias": "draft"},
			"team": map[string]any{"team_id": "research", "models": []string{"gpt-4o", "gpt-4o-mini"}},
			"user": map[string]any{"user_id": "narrow", "models": []string{"gpt-4o-mini", "gpt-4o"}},
		},
		"model": "gpt-4o",
	})
	if !whatIf.Decision.Allow {
		t.Errorf("written-out principal: decision = %+v, want an allow", whatIf.Decision)
	}
	list := explain(t, g, map[string]any{"key": "sk-seed1-user-narrows-team", "route": "models.list"})
	if !list.Decision.Allow || !slices.Equal(list.Visible, []string{"gpt-4o-mini"}) {
		t.Errorf("models.list: decision %+v, visible %v; want an allow and [gpt-4o-mini]", list.Decision, list.Visible)
	}
	for _, body := range []map[string]any{
		{"model": "gpt-4o"}, // no caller
		{"key": "sk-seed1-user-narrows-team", "key_id": "x", "model": "gpt-4o"},
		{"key": "sk-seed1-user-narrows-team"}, // inference needs a model
		{"key": "sk-seed1-user-narrows-team", "model": "gpt-4o", "route": "nope"},
		{"key": "sk-seed1-user-narrows-team", "model": "gpt-4o", "colour": "red"},
	} {
		if r := g.admin(t, http.MethodPost, "/admin/policy/explain", body); r.Status != http.StatusBadRequest {
			t.Errorf("explain %v = %d, want 400", body, r.Status)
		}
	}
	if r := g.admin(t, http.MethodPost, "/admin/policy/explain", map[string]any{"key": "sk-nobody-0000", "model": "gpt-4o"}); r.Status != http.StatusNotFound {
		t.Errorf("explain for an unknown key = %d, want 404", r.Status)
	}
}

func TestPolicyEndpointsAreAdminOnly(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/admin/policy/status"},
		{http.MethodPost, "/admin/policy/explain"},
	} {
		body := []byte(`{"key": "sk-seed4-ordinary", "model": "gpt-4o"}`)
		if r := g.do(t, tc.method, tc.path, "sk-seed4-ordinary", "application/json", body); r.Status != http.StatusForbidden {
			t.Errorf("%s %s with an ordinary key = %d, want 403", tc.method, tc.path, r.Status)
		}
		if r := g.do(t, tc.method, tc.path, "", "application/json", body); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without a key = %d, want 401", tc.method, tc.path, r.Status)
		}
	}
}

func TestPolicyStatusEndpoint(t *testing.T) {
	up := startUpstream(t)
	g := startGatewayWith(t, seedConfig, up, app.Options{Bundles: []string{examplePolicies}})
	var st struct {
		Revision  string  `json:"revision"`
		LastError string  `json:"last_error"`
		LastAt    *string `json:"last_error_at"`
		Bundles   []struct {
			Name, Source, Revision string
			LoadedAt               string  `json:"loaded_at"`
			LastError              string  `json:"last_error"`
			LastErrorAt            *string `json:"last_error_at"`
		} `json:"bundles"`
	}
	mustJSON(t, g.admin(t, http.MethodGet, "/admin/policy/status", nil), &st)
	if len(st.Bundles) != 2 || st.Bundles[0].Name != "default" || st.Bundles[0].Source != "embedded" ||
		st.Bundles[1].Name != "example-custom" || st.Bundles[1].Source != examplePolicies || st.Bundles[1].Revision != "examples-1" {
		t.Fatalf("status bundles = %+v, want the default and example-custom from %s", st.Bundles, examplePolicies)
	}
	if st.Revision != g.Engine.Revision() || st.LastError != "" || st.LastAt != nil {
		t.Errorf("status = %+v, want revision %s and no error", st, g.Engine.Revision())
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Bundles[1].LoadedAt); err != nil || st.Bundles[1].LastErrorAt != nil {
		t.Errorf("bundle loaded_at %q, last_error_at %v; want a time and null", st.Bundles[1].LoadedAt, st.Bundles[1].LastErrorAt)
	}
}

func TestExplainCustomLayer(t *testing.T) {
	up := startUpstream(t)
	g := startGatewayWith(t, examplesConfig, up, app.Options{Bundles: []string{examplePolicies}})
	x := explain(t, g, map[string]any{"key": "sk-free-tier-key-0001", "model": "gpt-4o", "stream": true})
	if x.Decision.Allow || x.Decision.Code != gateway.CodePolicyDenied {
		t.Errorf("decision = %+v, want policy_denied", x.Decision)
	}
	var custom *struct {
		restricts, allowed bool
		deniedBy           []string
	}
	for _, l := range x.Layers {
		if l.Layer == "custom" {
			custom = &struct {
				restricts, allowed bool
				deniedBy           []string
			}{l.Restricts, l.Allowed, l.DeniedBy}
		}
	}
	want := []string{
		"Streaming is not available on the free tier; send stream: false.",
		"The model `gpt-4o` is a premium model; the free tier cannot use it.",
	}
	if custom == nil || !custom.restricts || custom.allowed || !slices.Equal(custom.deniedBy, want) || !slices.Equal(x.Custom, want) {
		t.Errorf("custom layer = %+v, custom = %v; want denied by %v", custom, x.Custom, want)
	}
}
