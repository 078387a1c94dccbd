package tests

import (
	"errors"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/rego"
)

// examplePolicies is the example custom bundle, relative to this package.
const examplePolicies = "../examples/policies"

// examplesConfig has a premium model, free and paid keys, and an interns
// team, for the policies of examples/policies.
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
  teams:
    - {team_id: interns}
    - {team_id: research}
  keys:
    - {key: sk-free-tier-key-0001, key_alias: free, metadata: {tier: free}}
    - {key: sk-pro-tier-key-0002, key_alias: pro, metadata: {tier: pro}}
    - {key: sk-intern-key-0003, key_alias: intern, team_id: interns}
    - {key: sk-research-key-0004, key_alias: researcher, team_id: research}
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
