package config

import (
	"reflect"
	"testing"

	"github.com/regate/gateway/gateway"
)

func ptr[T any](v T) *T { return &v }

func TestLimits(t *testing.T) {
	cfg := mustParse(t, doc(models+`
gateway_settings:
  teams:
    - team_id: research
      max_budget: 100
      budget_duration: 30d
      soft_budget: 80.5
      rpm_limit: 600
      tpm_limit: 100000
      max_parallel_requests: 20
  users:
    - user_id: alice
      max_budget: 0
      rpm_limit: 0
      budget_duration: null
  keys:
    - key: sk-alice-1234567890
      user_id: alice
      team_id: research
      aliases: { coder: gpt-4o }
      max_budget: 5.25
      budget_duration: 1h
      tpm_limit: 1000
      model_rpm_limit: { gpt-4o: 10, fast: 0 }
      model_tpm_limit: { coder: 5000, openai/gpt-5: 1 }
      model_max_budget:
        gpt-4o: { budget_limit: 5.0, time_period: 1d }
        gpt-4o-mini: { budget_limit: 1 }
        openai/gpt-5: 2.5
    - key: sk-plain-1234567890
`[1:]), nil)
	wantTeam := gateway.Limits{
		MaxBudget: ptr(100.0), BudgetDuration: "30d", SoftBudget: ptr(80.5),
		RPMLimit: ptr(int64(600)), TPMLimit: ptr(int64(100000)), MaxParallelRequests: ptr(int64(20)),
	}
	if got := cfg.Teams[0].Limits; !reflect.DeepEqual(got, wantTeam) {
		t.Errorf("team Limits = %+v, want %+v", got, wantTeam)
	}
	wantUser := gateway.Limits{MaxBudget: ptr(0.0), RPMLimit: ptr(int64(0))}
	if got := cfg.Users[0].Limits; !reflect.DeepEqual(got, wantUser) {
		t.Errorf("user Limits = %+v, want %+v", got, wantUser)
	}
	wantKey := gateway.Limits{MaxBudget: ptr(5.25), BudgetDuration: "1h", TPMLimit: ptr(int64(1000))}
	if got := cfg.Keys[0].Key.Limits; !reflect.DeepEqual(got, wantKey) {
		t.Errorf("key Limits = %+v, want %+v", got, wantKey)
	}
	wantModels := gateway.ModelLimits{
		RPM: map[string]int64{"gpt-4o": 10, "fast": 0},
		TPM: map[string]int64{"coder": 5000, "openai/gpt-5": 1},
		Budget: map[string]gateway.ModelBudget{
			"gpt-4o":       {BudgetLimit: 5, TimePeriod: "1d"},
			"gpt-4o-mini":  {BudgetLimit: 1},
			"openai/gpt-5": {BudgetLimit: 2.5},
		},
	}
	if got := cfg.Keys[0].Key.ModelLimits; !reflect.DeepEqual(got, wantModels) {
		t.Errorf("key ModelLimits = %+v, want %+v", got, wantModels)
	}
	if k := cfg.Keys[1].Key; !k.Limits.IsZero() || !k.ModelLimits.IsZero() {
		t.Errorf("key without limits: Limits = %+v, ModelLimits = %+v, want none", k.Limits, k.ModelLimits)
	}
}

func TestLimitErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings string // appended after models; gateway_settings is line 12
		want     []wantProblem
	}{
		{
			name: "bad values on a team",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      max_budget: -1
      soft_budget: lots
      budget_duration: 0d
      rpm_limit: 1.5
      tpm_limit: -3
      max_parallel_requests: "4"
`,
			want: []wantProblem{
				{15, `gateway_settings.teams[0].max_budget: want a number of USD, at least 0, got "-1"`},
				{16, `gateway_settings.teams[0].soft_budget: want a number of USD, at least 0, got "lots"`},
				{17, `gateway_settings.teams[0].budget_duration: want a positive duration like 1h, 1d or 30d, got "0d"`},
				{18, `gateway_settings.teams[0].rpm_limit: want a whole number, at least 0, got "1.5"`},
				{19, `gateway_settings.teams[0].tpm_limit: want a whole number, at least 0, got "-3"`},
				{20, `gateway_settings.teams[0].max_parallel_requests: want a whole number, at least 0, got "4"`},
			},
		},
		{
			name: "bad values on a user",
			settings: `
gateway_settings:
  users:
    - user_id: u
      budget_duration: 1 week
      max_budget: [1]
`,
			want: []wantProblem{
				{15, `gateway_settings.users[0].budget_duration: want a positive duration like 1h, 1d or 30d, got "1 week"`},
				{16, `gateway_settings.users[0].max_budget: want a number of USD, at least 0, got a list`},
			},
		},
		{
			name: "model limits only on keys",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      model_rpm_limit: { gpt-4o: 1 }
  users:
    - user_id: u
      model_max_budget: {}
`,
			want: []wantProblem{
				{15, `gateway_settings.teams[0]: unknown field "model_rpm_limit"`},
				{18, `gateway_settings.users[0]: unknown field "model_max_budget"`},
			},
		},
		{
			name: "bad model limits on a key",
			settings: `
gateway_settings:
  keys:
    - key: sk-k-123456789
      aliases: { coder: gpt-4o }
      model_rpm_limit:
        gpt-4o: -1
        coder: 2
        default-models: 3
        "gpt-*": 4
        nope: 5
      model_tpm_limit: { gpt-4o: null, fast: x }
      model_max_budget:
        gpt-4o: { budget_limit: -5, time_period: 1d }
        gpt-4o-mini: { time_period: 1x }
        fast: { budget_limit: 1, period: 1d }
        openai/gpt-5: -3
        openai/gpt-6: [3]
`,
			want: []wantProblem{
				{17, `gateway_settings.keys[0].model_rpm_limit.gpt-4o: want a whole number, at least 0, got "-1"`},
				{19, `gateway_settings.keys[0].model_rpm_limit: "default-models" is not a model group, an alias or a name a wildcard deployment serves`},
				{20, `gateway_settings.keys[0].model_rpm_limit: "gpt-*" is not a model group, an alias or a name a wildcard deployment serves`},
				{21, `gateway_settings.keys[0].model_rpm_limit: "nope" is not a model group, an alias or a name a wildcard deployment serves`},
				{22, `gateway_settings.keys[0].model_tpm_limit.gpt-4o: want a whole number, at least 0, got null`},
				{22, `gateway_settings.keys[0].model_tpm_limit.fast: want a whole number, at least 0, got "x"`},
				{24, `gateway_settings.keys[0].model_max_budget.gpt-4o.budget_limit: want a number of USD, at least 0, got "-5"`},
				{25, `gateway_settings.keys[0].model_max_budget.gpt-4o-mini.time_period: want a positive duration like 1h, 1d or 30d, got "1x"`},
				{25, `gateway_settings.keys[0].model_max_budget.gpt-4o-mini: missing budget_limit`},
				{26, `gateway_settings.keys[0].model_max_budget.fast: unknown field "period"`},
				{27, `gateway_settings.keys[0].model_max_budget.openai/gpt-5: want a number of USD, at least 0, got "-3"`},
				{28, `gateway_settings.keys[0].model_max_budget.openai/gpt-6: want a mapping, got a list`},
			},
		},
		{
			name: "team aliases count for a key's model limits",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      model_aliases: { quick: gpt-4o-mini }
  keys:
    - key: sk-k-123456789
      team_id: t
      model_rpm_limit: { quick: 1 }
    - key: sk-l-123456789
      model_rpm_limit: { quick: 1 }
`,
			want: []wantProblem{
				{21, `gateway_settings.keys[1].model_rpm_limit: "quick" is not a model group, an alias or a name a wildcard deployment serves`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, doc(models+tc.settings[1:]), nil)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}
