package tests

import (
	"net/http"
	"slices"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
)

// TestListFollowsEveryChange lists a key's models again and again while its
// key, team and user records and alias tables change through the admin
// API: each list must show the change at once although lists are
// remembered per principal version (DESIGN §10.17), and an unchanged
// principal gets the same list again. On both stores.
func TestListFollowsEveryChange(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			up := startUpstream(t)
			g := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: sk.url(t)})
			var team struct {
				TeamID string `json:"team_id"`
			}
			mustJSON(t, g.admin(t, http.MethodPost, "/team/new", map[string]any{
				"team_alias": "Lists", "models": []string{"gpt-4o", "gpt-4o-mini", "AgentX-LLM"},
			}), &team)
			mustJSON(t, g.admin(t, http.MethodPost, "/user/new", map[string]any{"user_id": "lee", "models": []string{}}), &struct{}{})
			write := func(path string, body map[string]any) {
				t.Helper()
				mustJSON(t, g.admin(t, http.MethodPost, path, body), &struct{}{})
			}
			key := genKey(t, g, map[string]any{"team_id": team.TeamID, "user_id": "lee", "models": []string{"gpt-*", "AgentX-LLM"}})

			steps := []struct {
				name  string
				write func()
				want  []string
			}{
				{"first list", nil, []string{"AgentX-LLM", "gpt-4o", "gpt-4o-mini"}},
				{"the same list again", nil, []string{"AgentX-LLM", "gpt-4o", "gpt-4o-mini"}},
				{"key narrowed", func() {
					write("/key/update", map[string]any{"key": key, "models": []string{"gpt-*"}})
				}, []string{"gpt-4o", "gpt-4o-mini"}},
				{"key alias added", func() {
					write("/key/update", map[string]any{"key": key, "models": []string{"gpt-*", "coder"}, "aliases": map[string]string{"coder": "gpt-4o"}})
				}, []string{"coder", "gpt-4o", "gpt-4o-mini"}},
				{"team narrowed", func() {
					write("/team/update", map[string]any{"team_id": team.TeamID, "models": []string{"gpt-4o-mini"}})
				}, []string{"gpt-4o-mini"}},
				{"team alias added", func() {
					write("/team/update", map[string]any{"team_id": team.TeamID, "models": []string{"gpt-4o-mini", "team-fast"}, "model_aliases": map[string]string{"team-fast": "gpt-4o-mini"}})
				}, []string{"gpt-4o-mini", "team-fast"}}, // the key's gpt-* matches team-fast's chain
				{"team widened", func() {
					write("/team/update", map[string]any{"team_id": team.TeamID, "models": []string{"gpt-4o", "gpt-4o-mini", "team-fast"}})
				}, []string{"coder", "gpt-4o", "gpt-4o-mini", "team-fast"}},
				{"user narrowed", func() {
					write("/user/update", map[string]any{"user_id": "lee", "models": []string{"gpt-4o"}})
				}, []string{"coder", "gpt-4o"}},
				{"user opened", func() {
					write("/user/update", map[string]any{"user_id": "lee", "models": []string{}})
				}, []string{"coder", "gpt-4o", "gpt-4o-mini", "team-fast"}},
			}
			for _, s := range steps {
				if s.write != nil {
					s.write()
				}
				if got := listIDs(t, g, key); !slices.Equal(got, s.want) {
					t.Errorf("%s: /v1/models = %v, want %v", s.name, got, s.want)
				}
				// What is listed is what can be retrieved.
				for _, id := range s.want {
					if st := retrieveStatus(t, g, key, id); st != http.StatusOK {
						t.Errorf("%s: GET /v1/models/%s = %d, want 200", s.name, id, st)
					}
				}
			}
		})
	}
}
