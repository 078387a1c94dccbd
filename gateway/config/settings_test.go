package config

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/catalog"
)

// models is a model_list shared by the gateway_settings tests (lines 1-11).
const models = `
model_list:
  - model_name: gpt-4o
    litellm_params: { model: mock/gpt-4o }
    model_info: { access_groups: [default-models] }
  - model_name: gpt-4o-mini
    litellm_params: { model: mock/gpt-4o-mini }
  - model_name: "openai/*"
    litellm_params: { model: "mock/*" }
router_settings:
  model_group_alias:
    fast: gpt-4o-mini
`

func TestGatewaySettingsErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings string // appended after models; gateway_settings is line 12
		env      map[string]string
		want     []wantProblem
	}{
		{
			name: "unknown field in a team",
			settings: `
gateway_settings:
  teams:
    - team_id: research
      modles: [gpt-4o]
`,
			want: []wantProblem{{15, `gateway_settings.teams[0]: unknown field "modles"`}},
		},
		{
			name: "unknown fields at every level",
			settings: `
gateway_settings:
  team: []
  users:
    - user_id: alice
      email: a@example.com
  keys:
    - key: sk-a
      model: [gpt-4o]
  policy:
    bundles: ./b
`,
			want: []wantProblem{
				{13, `gateway_settings: unknown field "team"`},
				{16, `gateway_settings.users[0]: unknown field "email"`},
				{19, `gateway_settings.keys[0]: unknown field "model"`},
				{21, `gateway_settings.policy: unknown field "bundles"`},
			},
		},
		{
			name: "wrong types",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      models: gpt-4o
      blocked: "yes"
      metadata: [a]
      model_aliases: [a]
  max_request_body_bytes: lots
`,
			want: []wantProblem{
				{15, "gateway_settings.teams[0].models: want a list, got a string"},
				{16, "gateway_settings.teams[0].blocked: want true or false, got a string"},
				{17, "gateway_settings.teams[0].metadata: want a mapping, got a list"},
				{18, "gateway_settings.teams[0].model_aliases: want a mapping, got a list"},
				{19, "gateway_settings.max_request_body_bytes: want an integer, got a string"},
			},
		},
		{
			name: "missing and duplicate ids",
			settings: `
gateway_settings:
  teams:
    - team_alias: no id
    - team_id: t
    - team_id: t
  users:
    - user_email: x@example.com
    - user_id: u
    - user_id: u
`,
			want: []wantProblem{
				{14, "gateway_settings.teams[0]: missing team_id"},
				{16, `gateway_settings.teams[2]: team_id "t" is also the id of gateway_settings.teams[1]`},
				{18, "gateway_settings.users[0]: missing user_id"},
				{20, `gateway_settings.users[2]: user_id "u" is also the id of gateway_settings.users[1]`},
			},
		},
		{
			name: "keys: prefix, duplicates, unknown team and user, missing key",
			settings: `
gateway_settings:
  teams: [{team_id: t}]
  users: [{user_id: u}]
  keys:
    - key: abc-123456789
    - key: sk-one-123456
      team_id: nope
      user_id: nobody
    - key: sk-one-123456
    - key_alias: no key
    - key: "sk-with a space-1"
`,
			want: []wantProblem{
				{16, `gateway_settings.keys[0].key: must start with "sk-"`},
				{18, `gateway_settings.keys[1].team_id: no team "nope" in gateway_settings.teams`},
				{19, `gateway_settings.keys[1].user_id: no user "nobody" in gateway_settings.users`},
				{20, "gateway_settings.keys[2]: same key as gateway_settings.keys[1]"},
				{21, "gateway_settings.keys[3]: missing key"},
				{22, "gateway_settings.keys[4].key: must hold only printable ASCII characters without spaces"},
			},
		},
		{
			name: "key env variables",
			settings: `
gateway_settings:
  keys:
    - key: os.environ/UNSET_KEY
    - key: os.environ/SET_KEY
    - key: os.environ/
`,
			env: map[string]string{"SET_KEY": "sk-from-env-1234"},
			want: []wantProblem{
				{14, "gateway_settings.keys[0].key: environment variable UNSET_KEY is not set"},
				{16, "gateway_settings.keys[2].key: os.environ/ needs a variable name"},
			},
		},
		{
			name: "master key",
			settings: `
general_settings:
  master_key: os.environ/UNSET_MASTER
`,
			want: []wantProblem{{13, "general_settings.master_key: environment variable UNSET_MASTER is not set"}},
		},
		{
			name: "master key prefix",
			settings: `
general_settings:
  master_key: hunter2
`,
			want: []wantProblem{{13, `general_settings.master_key: must start with "sk-"`}},
		},
		{
			name: "expiry",
			settings: `
gateway_settings:
  keys:
    - key: sk-a-123456789
      expires: tomorrow
    - key: sk-b-123456789
      duration: 5 days
    - key: sk-c-123456789
      expires: 2030-01-01T00:00:00Z
      duration: 30d
`,
			want: []wantProblem{
				{15, "gateway_settings.keys[0].expires: want an RFC 3339 time"},
				{17, "gateway_settings.keys[1].duration: want a positive duration like 30d"},
				{20, "gateway_settings.keys[2]: set expires or duration, not both"},
			},
		},
		{
			name: "bad role and body limit",
			settings: `
gateway_settings:
  users:
    - user_id: u
      user_role: superuser
  max_request_body_bytes: 0
`,
			want: []wantProblem{
				{15, `gateway_settings.users[0].user_role: unknown role "superuser"`},
				{16, "gateway_settings.max_request_body_bytes: must be positive"},
			},
		},
		{
			name: "dangling allow-list entries at their lines",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      models: [gpt-4o, gpt4o, default-models]
      model_aliases: { mine: gpt-4o }
  users:
    - user_id: u
      models:
        - fast
        - mine
        - "openai/*"
        - openai/gpt-4.1
  keys:
    - key: sk-k-123456789
      team_id: t
      models: [mine, coder, all-team-models, nothing]
      aliases: { coder: gpt-4o }
`,
			want: []wantProblem{
				{15, `gateway_settings.teams[0].models: allow-list entry "gpt4o": not a model group, alias, access group, special value or name a wildcard deployment serves`},
				{21, `gateway_settings.users[0].models: allow-list entry "mine"`},
				{27, `gateway_settings.keys[0].models: allow-list entry "nothing"`},
			},
		},
		{
			name: "alias problems in teams and keys",
			settings: `
gateway_settings:
  teams:
    - team_id: t
      model_aliases:
        loop: loop
        gone: nowhere
        gpt-4o-mini: fast
  keys:
    - key: sk-k-123456789
      team_id: t
      aliases:
        a: b
        b: a
        ok: fast
`,
			want: []wantProblem{
				{16, "gateway_settings.teams[0].model_aliases: alias cycle: loop -> loop"},
				{17, `gateway_settings.teams[0].model_aliases: alias "gone" -> "nowhere": nowhere is not a model group`},
				{18, "gateway_settings.teams[0].model_aliases: alias cycle: fast -> gpt-4o-mini -> fast"},
				{23, "gateway_settings.keys[0].aliases: alias cycle: a -> b -> a"},
			},
		},
		{
			name: "deep key alias chain",
			settings: `
gateway_settings:
  keys:
    - key: sk-k-123456789
      aliases: { h1: h2, h2: h3, h3: h4, h4: h5, h5: h6, h6: h7, h7: h8, h8: h9, h9: gpt-4o }
`,
			want: []wantProblem{{15, "gateway_settings.keys[0].aliases: alias chain longer than 8 hops: h1 -> h2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, doc(models+tc.settings[1:]), tc.env)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}

func TestGlobalAliases(t *testing.T) {
	cfg := mustParse(t, doc(`
model_list:
  - model_name: gpt-4o
    litellm_params: { model: mock/gpt-4o }
router_settings:
  model_group_alias:
    plain: gpt-4o
    hidden-one: { model: gpt-4o, hidden: true }
    shown: { model: gpt-4o, hidden: false }
    defaulted: { model: gpt-4o }
    extra: { model: gpt-4o, weight: 3 }
`), nil)
	want := []catalog.Alias{
		{Name: "plain", Target: "gpt-4o"},
		{Name: "hidden-one", Target: "gpt-4o", Hidden: true},
		{Name: "shown", Target: "gpt-4o"},
		{Name: "defaulted", Target: "gpt-4o"},
		{Name: "extra", Target: "gpt-4o"},
	}
	if !slices.Equal(cfg.Aliases, want) {
		t.Errorf("Aliases = %+v, want %+v", cfg.Aliases, want)
	}
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{{10, "router_settings.model_group_alias.extra.weight: ignored"}})
	if res := cfg.Catalog.Resolve("hidden-one", nil, nil); !res.Found || !res.Hidden {
		t.Errorf("Resolve(hidden-one) = found %v hidden %v, want found and hidden", res.Found, res.Hidden)
	}
	for _, c := range cfg.Catalog.Candidates(nil, nil).Items {
		if c.ID == "hidden-one" {
			t.Errorf("Candidates() lists the hidden alias")
		}
	}
}

func TestGlobalAliasErrors(t *testing.T) {
	tests := []struct {
		name    string
		aliases string // under model_group_alias, from line 6
		want    []wantProblem
	}{
		{
			name: "cycle",
			aliases: `
    a: b
    b: a
`,
			want: []wantProblem{{6, "router_settings.model_group_alias: alias cycle: a -> b -> a"}},
		},
		{
			name: "dangling",
			aliases: `
    ok: gpt-4o
    typo: gpt-4o-mni
`,
			want: []wantProblem{{7, `router_settings.model_group_alias: alias "typo" -> "gpt-4o-mni": gpt-4o-mni is not a model group, alias or name a wildcard deployment serves`}},
		},
		{
			name: "missing target and bad form",
			aliases: `
    empty: { hidden: true }
    list: [gpt-4o]
`,
			want: []wantProblem{
				{6, "router_settings.model_group_alias.empty: missing target model"},
				{7, "router_settings.model_group_alias.list: want a string, got a list"},
			},
		},
		{
			name: "too deep",
			aliases: `
    h1: h2
    h2: h3
    h3: h4
    h4: h5
    h5: h6
    h6: h7
    h7: h8
    h8: h9
    h9: gpt-4o
`,
			want: []wantProblem{{6, "alias chain longer than 8 hops: h1 -> h2 -> h3 -> h4 -> h5 -> h6 -> h7 -> h8 -> h9 -> gpt-4o"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := doc(`
model_list:
  - model_name: gpt-4o
    litellm_params: { model: mock/gpt-4o }
router_settings:
  model_group_alias:` + tc.aliases)
			e := parseProblems(t, data, nil)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}

func TestPrincipals(t *testing.T) {
	cfg := mustParse(t, doc(models+`
gateway_settings:
  teams:
    - team_id: research
      team_alias: Research
      models: [default-models, fast]
      model_aliases: { quick: gpt-4o-mini }
      blocked: true
      metadata: { cost_center: r-101, tags: [a, b], limits: { rpm: 10, ratio: 0.5, on: true, none: null }, since: 2024-01-01 }
  users:
    - user_id: alice
      user_email: alice@example.com
      models: [no-default-models, gpt-4o]
    - user_id: root
      user_role: proxy_admin
  keys:
    - key: sk-alice-1234567890
      key_alias: alice-laptop
      user_id: alice
      team_id: research
      models: [quick, coder, all-team-models]
      aliases: { coder: gpt-4o }
      blocked: true
      metadata: { owner: alice }
      duration: 30d
    - key: os.environ/ROOT_KEY
      user_id: root
      expires: 2030-01-31T00:00:00Z
  policy:
    bundle: ./bundles/default
  max_request_body_bytes: 1048576
`[1:]), map[string]string{"ROOT_KEY": "sk-root-abcdefgh"})
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", cfg.Warnings)
	}
	wantTeam := gateway.Team{
		ID: "research", Alias: "Research", Models: []string{"default-models", "fast"},
		ModelAliases: map[string]string{"quick": "gpt-4o-mini"}, Blocked: true,
		Metadata: map[string]any{
			"cost_center": "r-101",
			"tags":        []any{"a", "b"},
			"limits":      map[string]any{"rpm": int64(10), "ratio": 0.5, "on": true, "none": nil},
			"since":       "2024-01-01",
		},
	}
	if len(cfg.Teams) != 1 || !reflect.DeepEqual(cfg.Teams[0], wantTeam) {
		t.Errorf("Teams = %#v, want [%#v]", cfg.Teams, wantTeam)
	}
	wantUsers := []gateway.User{
		{ID: "alice", Email: "alice@example.com", Role: gateway.RoleInternalUser, Models: []string{"no-default-models", "gpt-4o"}},
		{ID: "root", Role: gateway.RoleProxyAdmin},
	}
	if !reflect.DeepEqual(cfg.Users, wantUsers) {
		t.Errorf("Users = %#v, want %#v", cfg.Users, wantUsers)
	}
	wantKeys := []SeedKey{
		{Plaintext: "sk-alice-1234567890", Key: gateway.Key{
			ID: gateway.HashKey("sk-alice-1234567890"), Display: "sk-...7890", Alias: "alice-laptop",
			Models: []string{"quick", "coder", "all-team-models"}, Aliases: map[string]string{"coder": "gpt-4o"},
			TeamID: "research", UserID: "alice", Metadata: map[string]any{"owner": "alice"}, Blocked: true,
			ExpiresAt: testNow.Add(30 * 24 * time.Hour),
		}},
		{Plaintext: "sk-root-abcdefgh", Key: gateway.Key{
			ID: gateway.HashKey("sk-root-abcdefgh"), Display: "sk-...efgh", UserID: "root",
			ExpiresAt: time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC),
		}},
	}
	if !reflect.DeepEqual(cfg.Keys, wantKeys) {
		t.Errorf("Keys = %#v, want %#v", cfg.Keys, wantKeys)
	}
	if !slices.Equal(cfg.PolicyBundles, []string{"./bundles/default"}) {
		t.Errorf("PolicyBundles = %q, want [./bundles/default]", cfg.PolicyBundles)
	}
	if cfg.MaxRequestBodyBytes != 1<<20 {
		t.Errorf("MaxRequestBodyBytes = %d, want %d", cfg.MaxRequestBodyBytes, 1<<20)
	}
}

func TestSpecialValueWarnings(t *testing.T) {
	cfg := mustParse(t, doc(models+`
gateway_settings:
  teams:
    - team_id: t
      models: [all-team-models, no-default-models]
  users:
    - user_id: u
      models: [all-team-models]
  keys:
    - key: sk-k-123456789
      models: [all-team-models, no-default-models]
`[1:]), nil)
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{
		{15, `gateway_settings.teams[0].models: "all-team-models" only has a meaning on a key`},
		{15, `gateway_settings.teams[0].models: "no-default-models" only has a meaning on a user`},
		{18, `gateway_settings.users[0].models: "all-team-models" only has a meaning on a key`},
		{21, `gateway_settings.keys[0].models: "no-default-models" only has a meaning on a user`},
		{21, `gateway_settings.keys[0].models: "all-team-models" permits nothing on a key without a team`},
	})
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		{
			name: "top level",
			yaml: `
model_list: []
model_list: []
`,
			want: []wantProblem{{2, `duplicate key "model_list" (first defined on line 1)`}},
		},
		{
			name: "in a deployment",
			yaml: `
model_list:
  - model_name: a
    litellm_params:
      model: mock/a
      model: mock/b
`,
			want: []wantProblem{{5, `duplicate key "model" (first defined on line 4)`}},
		},
		{
			name: "in an ignored LiteLLM section",
			yaml: `
litellm_settings:
  drop_params: true
  drop_params: false
`,
			want: []wantProblem{{3, `duplicate key "drop_params" (first defined on line 2)`}},
		},
		{
			name: "in gateway_settings",
			yaml: `
gateway_settings:
  keys:
    - key: sk-a-123456789
      models: ["*"]
      models: []
`,
			want: []wantProblem{{5, `duplicate key "models" (first defined on line 4)`}},
		},
		{
			name: "in an alias table",
			yaml: `
model_list:
  - model_name: a
    litellm_params: { model: mock/a }
router_settings:
  model_group_alias: { x: a, x: a }
`,
			want: []wantProblem{{5, `duplicate key "x"`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, doc(tc.yaml), nil)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg := mustParse(t, doc(`
x-defaults: &defaults
  api_base: https://llm.corp/v1
  api_key: os.environ/CORP_KEY
model_list:
  - model_name: a
    litellm_params:
      <<: *defaults
      model: openai_compatible/a
  - model_name: b
    litellm_params:
      <<: *defaults
      model: openai_compatible/b
      api_base: https://other.corp/v1
gateway_settings:
  teams:
    - &team
      team_id: t1
      models: &m [a, b]
    - team_id: t2
      models: *m
`), map[string]string{"CORP_KEY": "corp-secret"})
	if got := cfg.Deployments[0]; got.APIBase != "https://llm.corp/v1" || got.APIKey != "corp-secret" || got.UpstreamModel != "a" {
		t.Errorf("Deployments[0] = %+v, want merged defaults", got)
	}
	if got := cfg.Deployments[1].APIBase; got != "https://other.corp/v1" {
		t.Errorf("Deployments[1].APIBase = %q, want the explicit key to beat the merged one", got)
	}
	if len(cfg.Teams) != 2 || !slices.Equal(cfg.Teams[1].Models, []string{"a", "b"}) {
		t.Errorf("Teams = %+v, want t2 with the anchored models", cfg.Teams)
	}
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{{1, "x-defaults: ignored"}})
}
