package tests

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
)

// limitsConfig seeds limits on a team, a user and a key (DESIGN §11).
const limitsConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}"}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}"}
router_settings:
  model_group_alias:
    fast: gpt-4o-mini
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, max_budget: 100, budget_duration: 30d, rpm_limit: 600}
  users:
    - {user_id: alice, soft_budget: 5.5, max_parallel_requests: 0}
  keys:
    - key: sk-limited-seed-key
      team_id: research
      user_id: alice
      tpm_limit: 1000
      model_rpm_limit: {gpt-4o: 10}
      model_max_budget: {fast: {budget_limit: 2.5, time_period: 1d}}
`

// limitFields is what the info answers show of a record's limits.
type limitFields struct {
	MaxBudget           *float64                  `json:"max_budget"`
	BudgetDuration      *string                   `json:"budget_duration"`
	SoftBudget          *float64                  `json:"soft_budget"`
	RPMLimit            *int64                    `json:"rpm_limit"`
	TPMLimit            *int64                    `json:"tpm_limit"`
	MaxParallelRequests *int64                    `json:"max_parallel_requests"`
	Spend               *float64                  `json:"spend"`
	BudgetResetAt       *string                   `json:"budget_reset_at"`
	ModelRPMLimit       map[string]int64          `json:"model_rpm_limit"`
	ModelTPMLimit       map[string]int64          `json:"model_tpm_limit"`
	ModelMaxBudget      map[string]map[string]any `json:"model_max_budget"`
}

// limitsOf decodes the limit fields of the object at path in a 200 answer.
func limitsOf(t *testing.T, r response, path ...string) limitFields {
	t.Helper()
	var v any
	mustJSON(t, r, &v)
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var l limitFields
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	// Nothing was spent; a budget that resets shows when.
	if l.Spend == nil || *l.Spend != 0 || (l.BudgetResetAt != nil) != (l.BudgetDuration != nil) {
		t.Errorf("spend, budget_reset_at = %v, %v, want 0, and a reset time exactly when budget_duration is set (%v)", l.Spend, l.BudgetResetAt, l.BudgetDuration)
	}
	l.Spend, l.BudgetResetAt = nil, nil
	return l
}

func num[T any](v T) *T { return &v }

func wantLimits(t *testing.T, what string, got, want limitFields) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s limits = %s, want %s", what, g, w)
	}
}

// TestLimitFields writes and reads every limit field through the config
// and the admin API, on both stores: seeded records show what the config
// says, and keep it when another replica seeds the same config; admin
// writes set, keep and clear limits; bad values are 400s naming the field.
func TestLimitFields(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			up := startUpstream(t)
			url := sk.url(t)
			g := startGatewayWith(t, limitsConfig, up, app.Options{DatabaseURL: url})
			empty := map[string]int64{}
			seededKey := limitFields{TPMLimit: num(int64(1000)), ModelRPMLimit: map[string]int64{"gpt-4o": 10},
				ModelTPMLimit: empty, ModelMaxBudget: map[string]map[string]any{"fast": {"budget_limit": 2.5, "time_period": "1d"}}}
			seededTeam := limitFields{MaxBudget: num(100.0), BudgetDuration: num("30d"), RPMLimit: num(int64(600))}
			seededUser := limitFields{SoftBudget: num(5.5), MaxParallelRequests: num(int64(0))}
			checkSeeded := func(g *gw, what string) {
				t.Helper()
				wantLimits(t, what+" seeded key", limitsOf(t, g.admin(t, http.MethodGet, "/key/info?key=sk-limited-seed-key", nil), "info"), seededKey)
				wantLimits(t, what+" seeded team", limitsOf(t, g.admin(t, http.MethodGet, "/team/info?team_id=research", nil), "team_info"), seededTeam)
				wantLimits(t, what+" seeded user", limitsOf(t, g.admin(t, http.MethodGet, "/user/info?user_id=alice", nil), "user_info"), seededUser)
			}
			checkSeeded(g, "first start")
			if url != "" {
				// A second replica seeds the same config into the same database.
				checkSeeded(startGatewayWith(t, limitsConfig, up, app.Options{DatabaseURL: url}), "second replica")
			}
			// The seeded limits are enforced: alice's max_parallel_requests
			// of 0 admits nothing.
			if r := g.do(t, http.MethodPost, "/v1/chat/completions", "sk-limited-seed-key", "application/json", chatBody("gpt-4o")); r.Status != http.StatusTooManyRequests ||
				!contains(string(r.Body), "user parallel requests") {
				t.Errorf("chat with the seeded key = %d %s, want 429 for the user's parallel limit", r.Status, r.Body)
			}

			var gen struct {
				Key   string `json:"key"`
				Token string `json:"token"`
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/key/generate", map[string]any{
				"max_budget": 10.5, "budget_duration": "1h", "soft_budget": 0, "rpm_limit": 60,
				"tpm_limit": 5000, "max_parallel_requests": 2,
				"model_rpm_limit": map[string]any{"fast": 1}, "model_tpm_limit": map[string]any{"gpt-4o-mini": 100},
				"model_max_budget": map[string]any{"gpt-4o": map[string]any{"budget_limit": 1.25}},
			}), &gen)
			full := limitFields{MaxBudget: num(10.5), BudgetDuration: num("1h"), SoftBudget: num(0.0),
				RPMLimit: num(int64(60)), TPMLimit: num(int64(5000)), MaxParallelRequests: num(int64(2)),
				ModelRPMLimit: map[string]int64{"fast": 1}, ModelTPMLimit: map[string]int64{"gpt-4o-mini": 100},
				ModelMaxBudget: map[string]map[string]any{"gpt-4o": {"budget_limit": 1.25}}}
			wantLimits(t, "/key/info", limitsOf(t, g.admin(t, http.MethodGet, "/key/info?key="+gen.Key, nil), "info"), full)
			var list struct {
				Keys []json.RawMessage `json:"keys"`
			}
			mustJSON(t, g.admin(t, http.MethodGet, "/key/list?return_full_object=true&size=100", nil), &list)
			found := false
			for _, raw := range list.Keys {
				var k struct {
					Token string `json:"token"`
				}
				_ = json.Unmarshal(raw, &k)
				if k.Token == gen.Token {
					found = true
					wantLimits(t, "/key/list", limitsOf(t, response{Status: http.StatusOK, Body: raw}), full)
				}
			}
			if !found {
				t.Errorf("/key/list does not hold the generated key")
			}

			// Null clears; fields left out stay.
			mustJSON(t, g.admin(t, http.MethodPost, "/key/update", map[string]any{
				"key": gen.Token, "max_budget": nil, "budget_duration": nil, "rpm_limit": 0, "model_rpm_limit": nil,
			}), &struct{}{})
			cleared := full
			cleared.MaxBudget, cleared.BudgetDuration, cleared.RPMLimit, cleared.ModelRPMLimit = nil, nil, num(int64(0)), empty
			wantLimits(t, "/key/info after update", limitsOf(t, g.admin(t, http.MethodGet, "/key/info?key="+gen.Key, nil), "info"), cleared)

			mustJSON(t, g.admin(t, http.MethodPost, "/team/update", map[string]any{"team_id": "research", "max_budget": nil, "tpm_limit": 7}), &struct{}{})
			team := seededTeam
			team.MaxBudget, team.TPMLimit = nil, num(int64(7))
			wantLimits(t, "/team/info after update", limitsOf(t, g.admin(t, http.MethodGet, "/team/info?team_id=research", nil), "team_info"), team)
			mustJSON(t, g.admin(t, http.MethodPost, "/user/new", map[string]any{"user_id": "carol", "max_budget": 3, "budget_duration": "7d"}), &struct{}{})
			mustJSON(t, g.admin(t, http.MethodPost, "/user/update", map[string]any{"user_id": "carol", "budget_duration": nil, "rpm_limit": 5}), &struct{}{})
			wantLimits(t, "/user/info after update", limitsOf(t, g.admin(t, http.MethodGet, "/user/info?user_id=carol", nil), "user_info"),
				limitFields{MaxBudget: num(3.0), RPMLimit: num(int64(5))})

			refused := []struct {
				path  string
				body  map[string]any
				param string
			}{
				{"/key/generate", map[string]any{"max_budget": -1}, "max_budget"},
				{"/key/generate", map[string]any{"model_tpm_limit": map[string]any{"gpt-5": 1}}, "model_tpm_limit"},
				{"/key/update", map[string]any{"key": gen.Token, "budget_duration": "soon"}, "budget_duration"},
				{"/team/new", map[string]any{"rpm_limit": 2.5}, "rpm_limit"},
				{"/user/update", map[string]any{"user_id": "carol", "soft_budget": "x"}, "soft_budget"},
			}
			for _, rc := range refused {
				r := g.admin(t, http.MethodPost, rc.path, rc.body)
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s %v = %d %s, want 400", rc.path, rc.body, r.Status, r.Body)
					continue
				}
				if e := decodeError(t, r.Body); e.Error.Param == nil || *e.Error.Param != rc.param {
					t.Errorf("%s %v: param = %v, want %q (%s)", rc.path, rc.body, e.Error.Param, rc.param, e.Error.Message)
				}
			}
		})
	}
}
