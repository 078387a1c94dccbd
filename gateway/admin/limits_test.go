package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// limitFieldsOf picks the limit fields, spend and budget_reset_at out of an
// answer object, as JSON text for comparison.
func limitFieldsOf(tb testing.TB, m map[string]any, model bool) string {
	tb.Helper()
	names := []string{"max_budget", "budget_duration", "soft_budget", "rpm_limit", "tpm_limit",
		"max_parallel_requests", "spend", "budget_reset_at"}
	if model {
		names = append(names, "model_rpm_limit", "model_tpm_limit", "model_max_budget")
	}
	out := make(map[string]any, len(names))
	for _, n := range names {
		v, ok := m[n]
		if !ok {
			tb.Errorf("field %q missing in %v", n, m)
		}
		out[n] = v
	}
	return mustJSON(tb, out)
}

// sameJSON fails unless got and want are the same JSON document.
func sameJSON(tb testing.TB, what, got, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		tb.Fatalf("%s: decode %s: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("%s: decode want %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("%s = %s, want %s", what, got, want)
	}
}

func TestKeyLimits(t *testing.T) {
	f := newFixture(t)
	gen := f.generate(t, `{"team_id": "research", "aliases": {"coder": "gpt-4o"},
		"max_budget": 10.5, "budget_duration": "30d", "soft_budget": 8, "rpm_limit": 60,
		"tpm_limit": 100000, "max_parallel_requests": 0,
		"model_rpm_limit": {"gpt-4o": 10, "quick": 5, "openai/gpt-5": 1},
		"model_tpm_limit": {"coder": 1000},
		"model_max_budget": {"gpt-4o": {"budget_limit": 5.0, "time_period": "1d"}, "fast": {"budget_limit": "0.0001"}, "claude": 2}}`)
	full := `{"max_budget": 10.5, "budget_duration": "30d", "soft_budget": 8, "rpm_limit": 60,
		"tpm_limit": 100000, "max_parallel_requests": 0, "spend": 0, "budget_reset_at": "2026-12-24T12:00:00Z",
		"model_rpm_limit": {"gpt-4o": 10, "quick": 5, "openai/gpt-5": 1},
		"model_tpm_limit": {"coder": 1000},
		"model_max_budget": {"gpt-4o": {"budget_limit": 5, "time_period": "1d"}, "fast": {"budget_limit": 0.0001}, "claude": {"budget_limit": 2}}}`
	sameJSON(t, "/key/generate limits", limitFieldsOf(t, object(t, []byte(mustJSON(t, gen))), true), full)
	info := object(t, f.ok(t, http.MethodGet, "/key/info?key="+gen.Key, ""))["info"].(map[string]any)
	sameJSON(t, "/key/info limits", limitFieldsOf(t, info, true), full)

	k, err := f.store.GetKey(t.Context(), gen.Token)
	if err != nil {
		t.Fatal(err)
	}
	if k.Limits.MaxParallelRequests == nil || *k.Limits.MaxParallelRequests != 0 {
		t.Errorf("stored max_parallel_requests = %v, want 0 (kept apart from unset)", k.Limits.MaxParallelRequests)
	}

	steps := []struct {
		name, body, want string
	}{
		{"fields left out stay", `{"rpm_limit": 120}`,
			`{"max_budget": 10.5, "budget_duration": "30d", "soft_budget": 8, "rpm_limit": 120,
			"tpm_limit": 100000, "max_parallel_requests": 0, "spend": 0, "budget_reset_at": "2026-12-24T12:00:00Z",
			"model_rpm_limit": {"gpt-4o": 10, "quick": 5, "openai/gpt-5": 1},
			"model_tpm_limit": {"coder": 1000},
			"model_max_budget": {"gpt-4o": {"budget_limit": 5, "time_period": "1d"}, "fast": {"budget_limit": 0.0001}, "claude": {"budget_limit": 2}}}`},
		{"null clears", `{"max_budget": null, "budget_duration": null, "model_rpm_limit": null, "model_tpm_limit": {}, "tpm_limit": null}`,
			`{"max_budget": null, "budget_duration": null, "soft_budget": 8, "rpm_limit": 120,
			"tpm_limit": null, "max_parallel_requests": 0, "spend": 0, "budget_reset_at": null,
			"model_rpm_limit": {}, "model_tpm_limit": {},
			"model_max_budget": {"gpt-4o": {"budget_limit": 5, "time_period": "1d"}, "fast": {"budget_limit": 0.0001}, "claude": {"budget_limit": 2}}}`},
		{"a map is replaced whole", `{"model_max_budget": {"claude": {"budget_limit": 1}}, "budget_duration": ""}`,
			`{"max_budget": null, "budget_duration": null, "soft_budget": 8, "rpm_limit": 120,
			"tpm_limit": null, "max_parallel_requests": 0, "spend": 0, "budget_reset_at": null,
			"model_rpm_limit": {}, "model_tpm_limit": {}, "model_max_budget": {"claude": {"budget_limit": 1}}}`},
		{"everything cleared", `{"soft_budget": null, "rpm_limit": null, "max_parallel_requests": null, "model_max_budget": null}`,
			`{"max_budget": null, "budget_duration": null, "soft_budget": null, "rpm_limit": null,
			"tpm_limit": null, "max_parallel_requests": null, "spend": 0, "budget_reset_at": null,
			"model_rpm_limit": {}, "model_tpm_limit": {}, "model_max_budget": {}}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got := object(t, f.ok(t, http.MethodPost, "/key/update", `{"key": "`+gen.Token+`", `+st.body[1:]))
			sameJSON(t, "/key/update", limitFieldsOf(t, got, true), st.want)
			info := object(t, f.ok(t, http.MethodGet, "/key/info?key="+gen.Token, ""))["info"].(map[string]any)
			sameJSON(t, "/key/info after update", limitFieldsOf(t, info, true), st.want)
		})
	}
	k, err = f.store.GetKey(t.Context(), gen.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Limits.IsZero() || !k.ModelLimits.IsZero() {
		t.Errorf("stored limits after clearing = %+v, %+v, want none", k.Limits, k.ModelLimits)
	}
}

func TestTeamAndUserLimits(t *testing.T) {
	f := newFixture(t)
	team := object(t, f.ok(t, http.MethodPost, "/team/new", `{"team_id": "limited", "max_budget": 100,
		"budget_duration": "1d", "rpm_limit": 0, "max_parallel_requests": 4}`))
	want := `{"max_budget": 100, "budget_duration": "1d", "soft_budget": null, "rpm_limit": 0,
		"tpm_limit": null, "max_parallel_requests": 4, "spend": 0, "budget_reset_at": "2026-11-25T12:00:00Z"}`
	sameJSON(t, "/team/new", limitFieldsOf(t, team, false), want)
	info := object(t, f.ok(t, http.MethodGet, "/team/info?team_id=limited", ""))["team_info"].(map[string]any)
	sameJSON(t, "/team/info", limitFieldsOf(t, info, false), want)
	upd := object(t, f.ok(t, http.MethodPost, "/team/update", `{"team_id": "limited", "max_budget": null, "tpm_limit": 500}`))["data"].(map[string]any)
	want = `{"max_budget": null, "budget_duration": "1d", "soft_budget": null, "rpm_limit": 0,
		"tpm_limit": 500, "max_parallel_requests": 4, "spend": 0, "budget_reset_at": "2026-11-25T12:00:00Z"}`
	sameJSON(t, "/team/update", limitFieldsOf(t, upd, false), want)
	for _, tm := range into[[]map[string]any](t, f.ok(t, http.MethodGet, "/team/list", "")) {
		if tm["team_id"] == "limited" {
			sameJSON(t, "/team/list", limitFieldsOf(t, tm, false), want)
		}
	}

	user := object(t, f.ok(t, http.MethodPost, "/user/new", `{"user_id": "carol", "max_budget": 0.5,
		"soft_budget": 0.25, "tpm_limit": 1000}`))
	want = `{"max_budget": 0.5, "budget_duration": null, "soft_budget": 0.25, "rpm_limit": null,
		"tpm_limit": 1000, "max_parallel_requests": null, "spend": 0, "budget_reset_at": null}`
	sameJSON(t, "/user/new", limitFieldsOf(t, user, false), want)
	k, err := f.store.GetKey(t.Context(), user["token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if !k.Limits.IsZero() {
		t.Errorf("the key /user/new made has limits %+v, want none (they are the user's)", k.Limits)
	}
	uinfo := object(t, f.ok(t, http.MethodGet, "/user/info?user_id=carol", ""))["user_info"].(map[string]any)
	sameJSON(t, "/user/info", limitFieldsOf(t, uinfo, false), want)
	upd = object(t, f.ok(t, http.MethodPost, "/user/update", `{"user_id": "carol", "soft_budget": null, "budget_duration": "7d"}`))["data"].(map[string]any)
	want = `{"max_budget": 0.5, "budget_duration": "7d", "soft_budget": null, "rpm_limit": null,
		"tpm_limit": 1000, "max_parallel_requests": null, "spend": 0, "budget_reset_at": "2026-12-01T12:00:00Z"}`
	sameJSON(t, "/user/update", limitFieldsOf(t, upd, false), want)
	list := into[UserListResponse](t, f.ok(t, http.MethodGet, "/user/list", ""))
	for _, u := range list.Users {
		if u.UserID == "carol" {
			sameJSON(t, "/user/list", limitFieldsOf(t, object(t, []byte(mustJSON(t, u))), false), want)
		}
	}
}

func TestLimitsRefused(t *testing.T) {
	f := newFixture(t)
	gen := f.generate(t, `{"models": ["gpt-4o"]}`)
	tests := []struct {
		name, path, body, param string
		fragments               []string
	}{
		{"negative budget", "/key/generate", `{"max_budget": -1}`, "max_budget", []string{"at least 0", "-1"}},
		{"budget as text", "/team/new", `{"max_budget": "10"}`, "max_budget", []string{"a string"}},
		{"soft budget object", "/user/new", `{"soft_budget": {}}`, "soft_budget", []string{"an object"}},
		{"fractional rpm", "/key/generate", `{"rpm_limit": 1.5}`, "rpm_limit", []string{"whole number", "1.5"}},
		{"negative tpm", "/team/new", `{"tpm_limit": -5}`, "tpm_limit", []string{"at least 0"}},
		{"parallel as bool", "/user/new", `{"max_parallel_requests": true}`, "max_parallel_requests", []string{"a boolean"}},
		{"zero period", "/key/generate", `{"budget_duration": "0s"}`, "budget_duration", []string{`"0s"`, "positive"}},
		{"unknown unit", "/team/new", `{"budget_duration": "1w"}`, "budget_duration", []string{`"1w"`}},
		{"period as number", "/user/new", `{"budget_duration": 30}`, "budget_duration", []string{"a number"}},
		{"model rpm not an object", "/key/generate", `{"model_rpm_limit": [1]}`, "model_rpm_limit", []string{"an array"}},
		{"model rpm negative", "/key/generate", `{"model_rpm_limit": {"gpt-4o": -1}}`, "model_rpm_limit", []string{"model_rpm_limit.gpt-4o", "at least 0"}},
		{"model tpm unknown model", "/key/generate", `{"model_tpm_limit": {"gpt-5o": 1}}`, "model_tpm_limit", []string{`"gpt-5o"`, "not a model group"}},
		{"model limit on an access group", "/key/generate", `{"model_rpm_limit": {"default-models": 1}}`, "model_rpm_limit", []string{`"default-models"`}},
		{"model limit on a glob", "/key/generate", `{"model_rpm_limit": {"gpt-*": 1}}`, "model_rpm_limit", []string{`"gpt-*"`}},
		{"team alias without the team", "/key/generate", `{"model_rpm_limit": {"quick": 1}}`, "model_rpm_limit", []string{`"quick"`}},
		{"empty model name", "/key/generate", `{"model_rpm_limit": {"": 1}}`, "model_rpm_limit", []string{"empty"}},
		{"model budget without limit", "/key/generate", `{"model_max_budget": {"gpt-4o": {"time_period": "1d"}}}`, "model_max_budget", []string{"budget_limit is required"}},
		{"model budget a list", "/key/generate", `{"model_max_budget": {"gpt-4o": [5]}}`, "model_max_budget", []string{"want an object", "or a number"}},
		{"model budget a negative number", "/key/generate", `{"model_max_budget": {"gpt-4o": -5}}`, "model_max_budget", []string{"model_max_budget.gpt-4o", "at least 0"}},
		{"model budget negative", "/key/generate", `{"model_max_budget": {"gpt-4o": {"budget_limit": -2}}}`, "model_max_budget", []string{"model_max_budget.gpt-4o.budget_limit"}},
		{"model budget bad text", "/key/generate", `{"model_max_budget": {"gpt-4o": {"budget_limit": "lots"}}}`, "model_max_budget", []string{"budget_limit"}},
		{"model budget bad period", "/key/generate", `{"model_max_budget": {"gpt-4o": {"budget_limit": 1, "time_period": "1 day"}}}`, "model_max_budget", []string{`"1 day"`}},
		{"update refused", "/key/update", `{"key": "` + gen.Token + `", "rpm_limit": -1}`, "rpm_limit", nil},
		{"update model refused", "/key/update", `{"key": "` + gen.Token + `", "model_rpm_limit": {"nope": 1}}`, "model_rpm_limit", []string{`"nope"`}},
		{"team update refused", "/team/update", `{"team_id": "research", "soft_budget": -0.5}`, "soft_budget", nil},
		{"user update refused", "/user/update", `{"user_id": "alice", "budget_duration": "-1d"}`, "budget_duration", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.do(t, f.admin, http.MethodPost, tc.path, tc.body)
			wantBadRequest(t, tc.path+" "+tc.body, err, tc.param, tc.fragments...)
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed by a refused write:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// spendTable is a SpendReader with fixed answers.
type spendTable map[string]float64

func (s spendTable) Spend(layer, id string, _ time.Time) float64 { return s[layer+"/"+id] }

func TestSpendShown(t *testing.T) {
	f := newFixture(t)
	gen := f.generate(t, `{"team_id": "research", "user_id": "alice", "max_budget": 10, "budget_duration": "30d"}`)
	// The key's budget resets 30 days after it was made, and every 30 days
	// after that.
	reset := f.api.now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second).Format(time.RFC3339)
	f.api.spendReader = spendTable{
		gateway.LayerKey + "/" + gen.Token:  2.5,
		gateway.LayerTeam + "/research":     7.25,
		gateway.LayerUser + "/alice":        0.125,
		gateway.LayerKey + "/" + "research": 99, // another layer's id: never shown
	}
	checks := []struct {
		what   string
		target string
		pick   func(map[string]any) map[string]any
		spend  float64
		reset  any
	}{
		{"/key/info", "/key/info?key=" + gen.Token, func(m map[string]any) map[string]any { return m["info"].(map[string]any) }, 2.5, reset},
		{"/key/list", "/key/list?return_full_object=true", func(m map[string]any) map[string]any { return m["keys"].([]any)[0].(map[string]any) }, 2.5, reset},
		{"/team/info", "/team/info?team_id=research", func(m map[string]any) map[string]any { return m["team_info"].(map[string]any) }, 7.25, nil},
		{"/team/info keys", "/team/info?team_id=research", func(m map[string]any) map[string]any { return m["keys"].([]any)[0].(map[string]any) }, 2.5, reset},
		{"/user/info", "/user/info?user_id=alice", func(m map[string]any) map[string]any { return m["user_info"].(map[string]any) }, 0.125, nil},
		{"/user/info teams", "/user/info?user_id=alice", func(m map[string]any) map[string]any { return m["teams"].([]any)[0].(map[string]any) }, 7.25, nil},
		{"/user/info of bob", "/user/info?user_id=bob", func(m map[string]any) map[string]any { return m["user_info"].(map[string]any) }, 0, nil},
	}
	for _, c := range checks {
		t.Run(c.what, func(t *testing.T) {
			m := c.pick(object(t, f.ok(t, http.MethodGet, c.target, "")))
			if m["spend"] != c.spend || m["budget_reset_at"] != c.reset {
				t.Errorf("%s: spend, budget_reset_at = %v, %v, want %v, %v", c.target, m["spend"], m["budget_reset_at"], c.spend, c.reset)
			}
		})
	}
	teams := into[[]map[string]any](t, f.ok(t, http.MethodGet, "/team/list", ""))
	for _, tm := range teams {
		want := 0.0
		if tm["team_id"] == "research" {
			want = 7.25
		}
		if tm["spend"] != want {
			t.Errorf("/team/list %v: spend = %v, want %v", tm["team_id"], tm["spend"], want)
		}
	}
	users := into[UserListResponse](t, f.ok(t, http.MethodGet, "/user/list", ""))
	for _, u := range users.Users {
		want := 0.0
		if u.UserID == "alice" {
			want = 0.125
		}
		if u.Spend != want {
			t.Errorf("/user/list %s: spend = %v, want %v", u.UserID, u.Spend, want)
		}
	}
}
