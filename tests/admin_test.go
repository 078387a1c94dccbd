package tests

import (
	"net/http"
	"slices"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/store/postgres/pgtest"
)

// storeKinds runs a test against the in-memory store and PostgreSQL.
var storeKinds = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"memory", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.Start(t).URL }},
}

// genKey creates a key through the admin API and returns its plaintext.
func genKey(t *testing.T, g *gw, body map[string]any) string {
	t.Helper()
	var out struct {
		Key   string `json:"key"`
		Token string `json:"token"`
	}
	mustJSON(t, g.admin(t, http.MethodPost, "/key/generate", body), &out)
	if out.Key == "" || out.Token == "" || out.Key == out.Token {
		t.Fatalf("/key/generate = key %q token %q", out.Key, out.Token)
	}
	return out.Key
}

// expectAccess checks, through openai-go, the list of key and that each
// model in allowed calls 200 and each in denied 404.
func expectAccess(t *testing.T, g *gw, up *upstream, key string, list []string, allowed, denied []string) {
	t.Helper()
	if list != nil {
		got := listIDs(t, g, key)
		if !slices.Equal(got, list) {
			t.Errorf("Models.List = %v, want %v", got, list)
		}
	}
	for _, m := range allowed {
		if status, _ := chatUpstreamModel(t, g, up, key, m); status != 200 {
			t.Errorf("chat %q = %d, want 200", m, status)
		}
	}
	for _, m := range denied {
		if status, _ := chatUpstreamModel(t, g, up, key, m); status != 404 {
			t.Errorf("chat %q = %d, want 404", m, status)
		}
	}
}

// TestAdminFlows follows LiteLLM's documented flows through the admin API
// with the master key, then calls with openai-go, on both stores.
func TestAdminFlows(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			up := startUpstream(t)
			g := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: sk.url(t)})

			// A key generated with models: [gpt-4o].
			k1 := genKey(t, g, map[string]any{"models": []string{"gpt-4o"}, "key_alias": "k1"})
			expectAccess(t, g, up, k1, []string{"gpt-4o"}, []string{"gpt-4o"}, []string{"gpt-4o-mini", "AgentX-LLM"})

			// A team with models, and a key created with its team_id.
			var team struct {
				TeamID string `json:"team_id"`
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/team/new", map[string]any{
				"team_alias": "Applied", "models": []string{"gpt-4o-mini", "AgentX-LLM"},
			}), &team)
			k2 := genKey(t, g, map[string]any{"team_id": team.TeamID})
			expectAccess(t, g, up, k2, []string{"AgentX-LLM", "gpt-4o-mini"}, []string{"gpt-4o-mini", "AgentX-LLM"}, []string{"gpt-4o", "openrouter/qwen/qwen3.5-flash-02-23"})

			// A user's models narrow the user's team keys.
			var user struct {
				UserID string `json:"user_id"`
				Key    string `json:"key"`
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/user/new", map[string]any{"user_id": "dana", "models": []string{"gpt-4o-mini"}}), &user)
			if user.Key == "" {
				t.Fatal("/user/new returned no key")
			}
			k3 := genKey(t, g, map[string]any{"team_id": team.TeamID, "user_id": "dana"})
			expectAccess(t, g, up, k3, []string{"gpt-4o-mini"}, []string{"gpt-4o-mini"}, []string{"AgentX-LLM"})

			// Access groups and wildcard entries, as in the core seed case.
			k4 := genKey(t, g, map[string]any{"models": []string{"default-models"}})
			expectAccess(t, g, up, k4, nil, []string{"openai/gpt-4"}, []string{"openai/o1-mini", "gpt-4o"})
			k5 := genKey(t, g, map[string]any{"models": []string{"openai/o1-*"}})
			expectAccess(t, g, up, k5, nil, []string{"openai/o1-mini"}, []string{"openai/gpt-4"})

			// Every change shows at once in /v1/models and in calls.
			mustJSON(t, g.admin(t, http.MethodPost, "/key/update", map[string]any{"key": k1, "models": []string{"gpt-4o-mini"}}), &struct{}{})
			expectAccess(t, g, up, k1, []string{"gpt-4o-mini"}, []string{"gpt-4o-mini"}, []string{"gpt-4o"})
			mustJSON(t, g.admin(t, http.MethodPost, "/team/update", map[string]any{"team_id": team.TeamID, "models": []string{"AgentX-LLM"}}), &struct{}{})
			expectAccess(t, g, up, k2, []string{"AgentX-LLM"}, []string{"AgentX-LLM"}, []string{"gpt-4o-mini"})

			mustJSON(t, g.admin(t, http.MethodPost, "/key/block", map[string]any{"key": k1}), &struct{}{})
			if r := g.do(t, http.MethodGet, "/v1/models", k1, "", nil); r.Status != 401 {
				t.Errorf("blocked key: /v1/models = %d, want 401", r.Status)
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/key/unblock", map[string]any{"key": k1}), &struct{}{})
			expectAccess(t, g, up, k1, []string{"gpt-4o-mini"}, nil, nil)
			mustJSON(t, g.admin(t, http.MethodPost, "/team/block", map[string]any{"team_id": team.TeamID}), &struct{}{})
			if r := g.do(t, http.MethodPost, "/v1/chat/completions", k2, "application/json", chatBody("AgentX-LLM")); r.Status != 403 {
				t.Errorf("key of a blocked team: chat = %d, want 403", r.Status)
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/key/delete", map[string]any{"keys": []string{k1}}), &struct{}{})
			if r := g.do(t, http.MethodGet, "/v1/models", k1, "", nil); r.Status != 401 {
				t.Errorf("deleted key: /v1/models = %d, want 401", r.Status)
			}
			// A key may read its own info, and nothing else of the admin API.
			if r := g.do(t, http.MethodGet, "/key/info", k4, "", nil); r.Status != 200 {
				t.Errorf("own /key/info = %d %s, want 200", r.Status, r.Body)
			}
			if r := g.do(t, http.MethodGet, "/key/list", k4, "", nil); r.Status != 403 {
				t.Errorf("/key/list with an ordinary key = %d, want 403", r.Status)
			}
		})
	}
}

// TestAdminInvalidWrites: each refused write is a 400 that names the entry,
// and nothing is written.
func TestAdminInvalidWrites(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			up := startUpstream(t)
			g := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: sk.url(t)})
			var team struct {
				TeamID string `json:"team_id"`
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/team/new", map[string]any{"team_id": "narrow", "models": []string{"gpt-4o-mini"}}), &team)
			count := func() int {
				var l struct {
					TotalCount int `json:"total_count"`
				}
				mustJSON(t, g.admin(t, http.MethodGet, "/key/list", nil), &l)
				return l.TotalCount
			}
			before := count()
			tests := []struct {
				name, path string
				body       map[string]any
				wantInMsg  string
			}{
				{"unknown model", "/key/generate", map[string]any{"models": []string{"gpt-9-ghost"}}, "gpt-9-ghost"},
				{"key alias cycle", "/key/generate", map[string]any{"aliases": map[string]string{"a": "b", "b": "a"}}, "cycle"},
				{"key outside its team", "/key/generate", map[string]any{"team_id": "narrow", "models": []string{"gpt-4o"}}, "gpt-4o"},
				{"missing team", "/key/generate", map[string]any{"team_id": "ghost-team"}, "ghost-team"},
				{"bad duration", "/key/generate", map[string]any{"duration": "fortnight"}, "fortnight"},
				{"team with unknown model", "/team/new", map[string]any{"team_id": "t-bad", "models": []string{"nope-model"}}, "nope-model"},
				{"user with bad role", "/user/new", map[string]any{"user_id": "u-bad", "user_role": "root"}, "root"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r := g.admin(t, http.MethodPost, tc.path, tc.body)
					if r.Status != 400 {
						t.Fatalf("POST %s %v = %d %s, want 400", tc.path, tc.body, r.Status, r.Body)
					}
					if e := decodeError(t, r.Body); !contains(e.Error.Message, tc.wantInMsg) {
						t.Errorf("message %q does not name %q", e.Error.Message, tc.wantInMsg)
					}
				})
			}
			if after := count(); after != before {
				t.Errorf("keys after refused writes = %d, want %d", after, before)
			}
			for _, path := range []string{"/team/info?team_id=t-bad", "/user/info?user_id=u-bad"} {
				if r := g.admin(t, http.MethodGet, path, nil); r.Status != 404 {
					t.Errorf("GET %s after a refused create = %d, want 404", path, r.Status)
				}
			}
		})
	}
}
