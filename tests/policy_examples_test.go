package tests

import (
	"bytes"
	"cmp"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/rego"
)

// examplePolicies is the example custom bundle, relative to this package.
const examplePolicies = "../examples/policies"

// examplesConfig has a premium model, free and paid keys, interns,
// research and finance teams, and trusts a proxy on loopback (the tests'
// X-Forwarded-For then sets the client address), for the policies of
// examples/policies.
const examplesConfig = `
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}"}
    model_info: {access_groups: [default-models]}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}"}
    model_info: {access_groups: [premium]}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  trusted_proxies: [127.0.0.1, "::1"]
  teams:
    - {team_id: interns}
    - {team_id: research}
    - {team_id: finance}
  keys:
    - {key: sk-free-tier-key-0001, key_alias: free, metadata: {tier: free}}
    - {key: sk-pro-tier-key-0002, key_alias: pro, metadata: {tier: pro}}
    - {key: sk-intern-key-0003, key_alias: intern, team_id: interns}
    - {key: sk-research-key-0004, key_alias: researcher, team_id: research}
    - {key: sk-finance-key-0005, key_alias: accountant, team_id: finance}
`

// TestExamplePoliciesRegoTests runs the example bundle's own tests, as
// go tool opa test examples/policies/ does, so go test ./... covers them.
func TestExamplePoliciesRegoTests(t *testing.T) {
	results, err := rego.RunTests(t.Context(), os.DirFS(examplePolicies))
	if err != nil {
		t.Fatalf("RunTests(%s) error = %v", examplePolicies, err)
	}
	if len(results) < 4 {
		t.Fatalf("RunTests(%s) ran %d tests, want the examples' tests", examplePolicies, len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s", r)
		}
	}
}

// chatStatus calls chat through openai-go, streamed or not, and returns the
// HTTP status (200 when the call, and a streamed answer, went through).
func chatStatus(t *testing.T, g *gw, key, model string, stream bool) int {
	t.Helper()
	c := g.client(key)
	if !stream {
		_, err := c.Chat.Completions.New(t.Context(), chatParams(model))
		return apiStatus(t, err)
	}
	s := c.Chat.Completions.NewStreaming(t.Context(), chatParams(model))
	defer s.Close()
	chunks := 0
	for s.Next() {
		chunks++
	}
	if err := s.Err(); err != nil {
		return apiStatus(t, err)
	}
	if chunks == 0 {
		t.Errorf("stream of %s for %s: no chunks", model, key)
	}
	return http.StatusOK
}

func TestExamplePoliciesEndToEnd(t *testing.T) {
	up := startUpstream(t)
	var now atomic.Pointer[time.Time]
	clock := func() time.Time { return *now.Load() }
	setNow := func(s string) {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		now.Store(&tm)
	}
	setNow("2026-11-24T09:00:00Z") // Tuesday 10:00 in Berlin
	plain := startGatewayWith(t, examplesConfig, up, app.Options{Now: clock})
	custom := startGatewayWith(t, examplesConfig, up, app.Options{Now: clock, Bundles: []string{examplePolicies}})

	tests := []struct {
		name   string
		now    string
		key    string
		model  string
		stream bool
		want   int // with the example policies; without them every call is 200
	}{
		{"free key, plain call", "2026-11-24T09:00:00Z", "sk-free-tier-key-0001", "gpt-4o-mini", false, 200},
		{"free key, streaming", "2026-11-24T09:00:00Z", "sk-free-tier-key-0001", "gpt-4o-mini", true, 403},
		{"free key, premium model", "2026-11-24T09:00:00Z", "sk-free-tier-key-0001", "gpt-4o", false, 403},
		{"pro key, premium model streamed", "2026-11-24T09:00:00Z", "sk-pro-tier-key-0002", "gpt-4o", true, 200},
		{"intern, Tuesday 10:00 Berlin", "2026-11-24T09:00:00Z", "sk-intern-key-0003", "gpt-4o", false, 200},
		{"intern, Tuesday 19:00 Berlin", "2026-11-24T18:00:00Z", "sk-intern-key-0003", "gpt-4o", false, 403},
		{"intern, Saturday 11:00 Berlin", "2026-11-28T10:00:00Z", "sk-intern-key-0003", "gpt-4o-mini", true, 403},
		{"researcher, Tuesday 19:00 Berlin", "2026-11-24T18:00:00Z", "sk-research-key-0004", "gpt-4o", false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setNow(tc.now)
			if got := chatStatus(t, plain, tc.key, tc.model, tc.stream); got != http.StatusOK {
				t.Errorf("without the examples: chat = %d, want 200", got)
			}
			if got := chatStatus(t, custom, tc.key, tc.model, tc.stream); got != tc.want {
				t.Errorf("with the examples: chat = %d, want %d", got, tc.want)
			}
		})
	}

	// A custom deny is 403 policy_denied with the rule's message. Custom
	// rules do not filter the list (DESIGN §10.10): the premium model stays
	// listed, and retrieving it is refused like calling it.
	setNow("2026-11-24T09:00:00Z")
	c := custom.client("sk-free-tier-key-0001")
	_, err := c.Chat.Completions.New(t.Context(), chatParams("gpt-4o"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "policy_denied" || !contains(apiErr.Message, "premium model") {
		t.Errorf("free key, premium model: error = %v, want 403 policy_denied naming the premium rule", err)
	}
	if got := retrieveStatus(t, custom, "sk-free-tier-key-0001", "gpt-4o"); got != http.StatusForbidden {
		t.Errorf("free key: Models.Get(gpt-4o) = %d, want 403 like the call", got)
	}
	if ids := listIDs(t, custom, "sk-free-tier-key-0001"); !slices.Contains(ids, "gpt-4o") {
		t.Errorf("free key: Models.List = %v, want gpt-4o listed (custom rules do not filter)", ids)
	}
}

// TestExamplePoliciesWhatACallAsks calls the rules of examples/policies
// that read what a call asks for (output_tokens, tools, reasoning_effort,
// structured_output, office_network, data_loss) through the HTTP API: each
// refuses with 403 policy_denied and its message before the upstream is
// called, and lets the other calls through. Without the bundle every call
// is 200. The clock is a Tuesday at 10:00 in Berlin, inside the interns'
// business hours.
func TestExamplePoliciesWhatACallAsks(t *testing.T) {
	up := startUpstream(t)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	plain := startGatewayWith(t, examplesConfig, up, app.Options{Now: clock})
	custom := startGatewayWith(t, examplesConfig, up, app.Options{Now: clock, Bundles: []string{examplePolicies}})

	free, pro, intern, researcher, finance := "sk-free-tier-key-0001", "sk-pro-tier-key-0002", "sk-intern-key-0003", "sk-research-key-0004", "sk-finance-key-0005"
	chat := func(model, extra string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}]` + extra + `}`
	}
	tool := func(name string) string {
		return `,"tools":[{"type":"function","function":{"name":"` + name + `","parameters":{"type":"object"}}}]`
	}
	schema := `{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"}}}`
	tests := []struct {
		name   string
		key    string
		path   string // default /v1/chat/completions
		body   string
		xff    string // X-Forwarded-For, sent through the trusted proxy on loopback
		denied string // part of the deny message; empty when allowed
	}{
		// output_tokens.rego
		{name: "free, max_tokens 1000", key: free, body: chat("gpt-4o-mini", `,"max_tokens":1000`)},
		{name: "free, max_completion_tokens 1001", key: free, body: chat("gpt-4o-mini", `,"max_completion_tokens":1001`), denied: "at most 1000 output tokens; max_completion_tokens is 1001"},
		{name: "free, Responses max_output_tokens 2000", key: free, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"hi","max_output_tokens":2000}`, denied: "max_output_tokens is 2000"},
		{name: "pro, max_tokens 5000", key: pro, body: chat("gpt-4o-mini", `,"max_tokens":5000`)},
		// tools.rego
		{name: "intern, shell tool", key: intern, body: chat("gpt-4o-mini", tool("shell")), denied: "may not give models the tool `shell`"},
		{name: "intern, Responses local_shell", key: intern, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"hi","tools":[{"type":"local_shell"}]}`, denied: "the tool `local_shell`"},
		{name: "intern, search tool", key: intern, body: chat("gpt-4o-mini", tool("search"))},
		{name: "researcher, shell tool", key: researcher, body: chat("gpt-4o-mini", tool("shell"))},
		// reasoning_effort.rego
		{name: "researcher, effort high", key: researcher, body: chat("gpt-4o", `,"reasoning_effort":"high"`)},
		{name: "pro, effort high", key: pro, body: chat("gpt-4o", `,"reasoning_effort":"high"`), denied: "Reasoning effort high is for team research only."},
		{name: "intern, Responses reasoning.effort high", key: intern, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"hi","reasoning":{"effort":"high"}}`, denied: "Reasoning effort high"},
		{name: "pro, effort low", key: pro, body: chat("gpt-4o", `,"reasoning_effort":"low"`)},
		// structured_output.rego
		{name: "json_schema on gpt-4o", key: pro, body: chat("gpt-4o", `,"response_format":`+schema)},
		{name: "json_schema on gpt-4o-mini", key: pro, body: chat("gpt-4o-mini", `,"response_format":`+schema), denied: "`gpt-4o-mini` does not support a json_schema response format"},
		{name: "Responses text.format json_schema on gpt-4o-mini", key: pro, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"hi","text":{"format":{"type":"json_schema","name":"answer","schema":{"type":"object"}}}}`, denied: "does not support a json_schema"},
		{name: "json_object on gpt-4o-mini", key: pro, body: chat("gpt-4o-mini", `,"response_format":{"type":"json_object"}`)},
		// office_network.rego
		{name: "finance from the office", key: finance, body: chat("gpt-4o-mini", ""), xff: "10.20.3.4"},
		{name: "finance from elsewhere", key: finance, body: chat("gpt-4o-mini", ""), xff: "203.0.113.7", denied: "Team finance may call models only from the office network."},
		{name: "finance, office address left of an outside one", key: finance, body: chat("gpt-4o-mini", ""), xff: "10.20.3.4, 203.0.113.7", denied: "only from the office network"},
		{name: "finance, the proxy itself", key: finance, body: chat("gpt-4o-mini", ""), denied: "only from the office network"},
		{name: "researcher from elsewhere", key: researcher, body: chat("gpt-4o-mini", ""), xff: "203.0.113.7"},
		// data_loss.rego
		{name: "marker in a chat message", key: pro, body: `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"notes on project-nightjar"}]}`, denied: "The prompt contains the marker PROJECT-NIGHTJAR"},
		{name: "marker in a chat text part", key: pro, body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"CONFIDENTIAL//NO-AI"}]}]}`, denied: "marker CONFIDENTIAL//NO-AI"},
		{name: "marker in the Responses input", key: pro, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"summarise CONFIDENTIAL//NO-AI"}`, denied: "marker CONFIDENTIAL//NO-AI"},
		{name: "Responses input without a marker", key: pro, path: "/v1/responses", body: `{"model":"gpt-4o-mini","input":"summarise the minutes"}`},
	}
	send := func(g *gw, key, path, body, xff string) response {
		req, err := http.NewRequest(http.MethodPost, g.URL+path, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return roundTrip(t, req)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := cmp.Or(tc.path, "/v1/chat/completions")
			before := up.count()
			r := send(custom, tc.key, path, tc.body, tc.xff)
			switch {
			case tc.denied == "" && r.Status != http.StatusOK:
				t.Errorf("with the examples: %d %s, want 200", r.Status, r.Body)
			case tc.denied != "" && r.Status != http.StatusForbidden:
				t.Errorf("with the examples: %d %s, want 403", r.Status, r.Body)
			case tc.denied != "":
				e := decodeError(t, r.Body)
				if e.Error.Code == nil || *e.Error.Code != "policy_denied" || !strings.Contains(e.Error.Message, tc.denied) {
					t.Errorf("with the examples: error %s, want policy_denied %q", r.Body, tc.denied)
				}
				if up.count() != before {
					t.Errorf("with the examples: the upstream was called for a denied call")
				}
			}
			if r := send(plain, tc.key, path, tc.body, tc.xff); r.Status != http.StatusOK {
				t.Errorf("without the examples: %d %s, want 200", r.Status, r.Body)
			}
		})
	}

	// The office rule holds on every route custom rules see: finance lists
	// models from the office only.
	list := func(xff string) int {
		req, _ := http.NewRequest(http.MethodGet, custom.URL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+finance)
		req.Header.Set("X-Forwarded-For", xff)
		return roundTrip(t, req).Status
	}
	if st := list("192.0.2.10"); st != http.StatusOK {
		t.Errorf("finance lists models from the office: %d, want 200", st)
	}
	if st := list("198.51.100.1"); st != http.StatusForbidden {
		t.Errorf("finance lists models from elsewhere: %d, want 403", st)
	}
}
