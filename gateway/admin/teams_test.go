package admin

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestTeamNew(t *testing.T) {
	f := newFixture(t)
	b := f.ok(t, http.MethodPost, "/team/new", `{"team_id": "ml", "team_alias": "ML", "models": ["gpt-4o", "premium", "smart"],
		"model_aliases": {"smart": "claude"}, "metadata": {"cost_center": "42"}}`)
	hasFields(t, "POST /team/new", object(t, b), "team_id", "team_alias", "models", "model_aliases", "blocked", "metadata", "created_at")
	resp := into[TeamInfo](t, b)
	if resp.TeamID != "ml" || resp.TeamAlias == nil || *resp.TeamAlias != "ML" || resp.ModelAliases["smart"] != "claude" || resp.Blocked {
		t.Errorf("POST /team/new = %+v, want the request's fields", resp)
	}
	stored, err := f.store.GetTeam(t.Context(), "ml")
	if err != nil {
		t.Fatalf("GetTeam(ml) error = %v", err)
	}
	if !slices.Equal(stored.Models, []string{"gpt-4o", "premium", "smart"}) || stored.Metadata["cost_center"] != "42" {
		t.Errorf("stored team = %+v, want the request's fields", stored)
	}

	t.Run("generated ids", func(t *testing.T) {
		a := into[TeamInfo](t, f.ok(t, http.MethodPost, "/team/new", `{"team_alias": "A"}`))
		b := into[TeamInfo](t, f.ok(t, http.MethodPost, "/team/new", `{"team_id": ""}`))
		if !uuidRE.MatchString(a.TeamID) || !uuidRE.MatchString(b.TeamID) || a.TeamID == b.TeamID {
			t.Errorf("POST /team/new without team_id = %q, %q, want two distinct UUIDs", a.TeamID, b.TeamID)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/team/new", `{"team_id": "research"}`)
		var conflict *gateway.ConflictError
		if !errors.As(err, &conflict) || conflict.Kind != "team" || conflict.ID != "research" {
			t.Errorf("POST /team/new existing id: error = %v, want ConflictError team research", err)
		}
	})
}

func TestTeamNewRefused(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body, param string
		frags             []string
	}{
		{"unknown model", `{"models": ["gpt-4o", "llama"]}`, "models", []string{`"llama"`}},
		{"alias of another team", `{"models": ["quick"]}`, "models", []string{`"quick"`}},
		{"alias cycle", `{"model_aliases": {"a": "b", "b": "c", "c": "a"}}`, "model_aliases", []string{"alias cycle", "a -> b -> c -> a"}},
		{"dangling alias", `{"model_aliases": {"x": "missing-model"}}`, "model_aliases", []string{"missing-model"}},
		{"metadata not an object", `{"metadata": ["a"]}`, "metadata", []string{"JSON object"}},
		{"aliases wrong type", `{"model_aliases": {"a": 1}}`, "model_aliases", []string{"object of strings"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.do(t, f.admin, http.MethodPost, "/team/new", tc.body)
			wantBadRequest(t, "POST /team/new "+tc.body, err, tc.param, tc.frags...)
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed after a refused write:\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func TestTeamInfoAndList(t *testing.T) {
	f := newFixture(t)
	k1 := f.generate(t, `{"team_id": "research"}`)
	k2 := f.generate(t, `{"team_id": "research"}`)
	f.generate(t, `{"team_id": "open"}`)

	b := f.ok(t, http.MethodGet, "/team/info?team_id=research", "")
	hasFields(t, "GET /team/info", object(t, b), "team_id", "team_info", "keys")
	resp := into[TeamInfoResponse](t, b)
	var got []string
	for _, k := range resp.Keys {
		got = append(got, k.Token)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values([]string{k1.Token, k2.Token}))
	if resp.TeamID != "research" || resp.TeamInfo.TeamID != "research" || !slices.Equal(got, want) {
		t.Errorf("GET /team/info = team %q, keys %v, want research, %v", resp.TeamID, got, want)
	}
	if strings.Contains(string(b), k1.Key) || strings.Contains(string(b), k2.Key) {
		t.Errorf("GET /team/info answer holds a plaintext key")
	}

	_, err := f.do(t, f.admin, http.MethodGet, "/team/info", "")
	wantBadRequest(t, "GET /team/info without team_id", err, "team_id")
	_, err = f.do(t, f.admin, http.MethodGet, "/team/info?team_id=ghost", "")
	wantNotFound(t, "GET /team/info ghost", err, "team")

	list := into[[]TeamInfo](t, f.ok(t, http.MethodGet, "/team/list", ""))
	var ids []string
	for _, tm := range list {
		ids = append(ids, tm.TeamID)
	}
	if !slices.Equal(ids, []string{"open", "research"}) {
		t.Errorf("GET /team/list ids = %v, want [open research]", ids)
	}
}

func TestTeamUpdate(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"team_id": "research", "aliases": {"gpt-4o": "fast"}}`)

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, body, param string
			frags             []string
		}{
			{"unknown model", `{"models": ["nope"]}`, "models", []string{`"nope"`}},
			{"alias cycle", `{"model_aliases": {"p": "q", "q": "p"}}`, "model_aliases", []string{"alias cycle", "p -> q -> p"}},
			// Fine for the team alone, but for the key gpt-4o (key) ->
			// fast (global) -> gpt-4o-mini (team) -> gpt-4o is a cycle.
			{"cycle with a key's aliases", `{"model_aliases": {"gpt-4o-mini": "gpt-4o"}}`, "model_aliases",
				[]string{"alias cycle", k.KeyName}},
			{"metadata not an object", `{"metadata": true}`, "metadata", []string{"JSON object"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := f.snapshot(t)
				body := `{"team_id": "research", ` + strings.TrimPrefix(tc.body, "{")
				_, err := f.do(t, f.admin, http.MethodPost, "/team/update", body)
				wantBadRequest(t, "POST /team/update "+tc.body, err, tc.param, tc.frags...)
				if after := f.snapshot(t); after != before {
					t.Errorf("store changed after a refused update:\n%s\nwant\n%s", after, before)
				}
			})
		}
	})
	t.Run("missing or unknown team", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/team/update", `{"models": []}`)
		wantBadRequest(t, "POST /team/update without team_id", err, "team_id")
		_, err = f.do(t, f.admin, http.MethodPost, "/team/update", `{"team_id": "ghost", "models": []}`)
		wantNotFound(t, "POST /team/update ghost", err, "team")
	})
	t.Run("applied", func(t *testing.T) {
		b := f.ok(t, http.MethodPost, "/team/update", `{"team_id": "research", "models": ["claude", "gpt-4o"], "model_aliases": {"smart": "claude"}, "team_alias": "R2"}`)
		hasFields(t, "POST /team/update", object(t, b), "team_id", "data")
		resp := into[TeamUpdateResponse](t, b)
		if resp.TeamID != "research" || !slices.Equal(resp.Data.Models, []string{"claude", "gpt-4o"}) || resp.Data.ModelAliases["smart"] != "claude" || *resp.Data.TeamAlias != "R2" {
			t.Errorf("POST /team/update = %+v, want the new fields", resp)
		}
		p, err := f.store.PrincipalByKeyHash(t.Context(), k.Token)
		if err != nil || p.Team == nil || p.Team.ModelAliases["smart"] != "claude" {
			t.Errorf("principal after team update = %+v, %v, want the new team", p, err)
		}
	})
}

func TestTeamBlock(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"team_id": "research"}`)
	for _, tc := range []struct {
		path string
		want bool
	}{{"/team/block", true}, {"/team/unblock", false}} {
		t.Run(tc.path, func(t *testing.T) {
			resp := into[TeamInfo](t, f.ok(t, http.MethodPost, tc.path, `{"team_id": "research"}`))
			if resp.Blocked != tc.want {
				t.Errorf("POST %s blocked = %v, want %v", tc.path, resp.Blocked, tc.want)
			}
			p, err := f.store.PrincipalByKeyHash(t.Context(), k.Token)
			if err != nil || p.Team.Blocked != tc.want {
				t.Errorf("principal team after POST %s = %+v, %v, want blocked %v", tc.path, p.Team, err, tc.want)
			}
		})
	}
	t.Run("keys of a blocked team are still validated against its list", func(t *testing.T) {
		f.ok(t, http.MethodPost, "/team/block", `{"team_id": "research"}`)
		if _, err := f.do(t, f.admin, http.MethodPost, "/key/generate", `{"team_id": "research", "models": ["gpt-4o"]}`); err != nil {
			t.Errorf("POST /key/generate in a blocked team, permitted model: error = %v, want nil", err)
		}
		_, err := f.do(t, f.admin, http.MethodPost, "/key/generate", `{"team_id": "research", "models": ["claude"]}`)
		wantBadRequest(t, "POST /key/generate in a blocked team, model outside", err, "models", `"claude"`)
	})
	t.Run("errors", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/team/block", `{}`)
		wantBadRequest(t, "POST /team/block {}", err, "team_id")
		_, err = f.do(t, f.admin, http.MethodPost, "/team/unblock", `{"team_id": "ghost"}`)
		wantNotFound(t, "POST /team/unblock ghost", err, "team")
	})
}

func TestTeamDelete(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"team_id": "research"}`)
	other := f.generate(t, `{"team_id": "open"}`)

	before := f.snapshot(t)
	_, err := f.do(t, f.admin, http.MethodPost, "/team/delete", `{"team_ids": ["research", "ghost"]}`)
	wantNotFound(t, "POST /team/delete with an unknown team", err, "team")
	if after := f.snapshot(t); after != before {
		t.Errorf("store changed after a refused delete")
	}
	_, err = f.do(t, f.admin, http.MethodPost, "/team/delete", `{"team_ids": []}`)
	wantBadRequest(t, "POST /team/delete []", err, "team_ids")

	resp := into[DeleteTeamsResponse](t, f.ok(t, http.MethodPost, "/team/delete", `{"team_ids": ["research"]}`))
	if !slices.Equal(resp.DeletedTeams, []string{"research"}) {
		t.Errorf("POST /team/delete deleted_teams = %v, want [research]", resp.DeletedTeams)
	}
	if _, err := f.store.GetTeam(t.Context(), "research"); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("GetTeam(research) after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := f.store.GetKey(t.Context(), k.Token); !errors.Is(err, gateway.ErrNotFound) {
		t.Errorf("GetKey(team key) after team delete: error = %v, want ErrNotFound (cascade)", err)
	}
	if _, err := f.store.GetKey(t.Context(), other.Token); err != nil {
		t.Errorf("GetKey(other team's key) after team delete: error = %v, want nil", err)
	}
}
