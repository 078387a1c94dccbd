package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"

	"github.com/regate/gateway/gateway"
)

// teamRequest is the body of /team/new and /team/update. Absent and null
// fields leave a value unchanged on update, except the limits, which null
// clears (see limitsRequest).
type teamRequest struct {
	TeamID       *string            `json:"team_id"`
	TeamAlias    *string            `json:"team_alias"`
	Models       *[]string          `json:"models"`
	ModelAliases *map[string]string `json:"model_aliases"`
	Metadata     json.RawMessage    `json:"metadata"`
	Blocked      *bool              `json:"blocked"`
	limitsRequest
}

// apply writes the request's fields (but not the id) onto t.
func (req *teamRequest) apply(t *gateway.Team) error {
	if req.TeamAlias != nil {
		t.Alias = *req.TeamAlias
	}
	if req.Models != nil {
		t.Models = slices.Clone(*req.Models)
	}
	if req.ModelAliases != nil {
		t.ModelAliases = maps.Clone(*req.ModelAliases)
	}
	if req.Blocked != nil {
		t.Blocked = *req.Blocked
	}
	md, ok, err := parseMetadata(req.Metadata)
	if err != nil {
		return err
	}
	if ok {
		t.Metadata = md
	}
	return req.limitsRequest.apply(&t.Limits)
}

func (a *API) teamNew(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req teamRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	t := &gateway.Team{CreatedAt: a.now().UTC()}
	if req.TeamID != nil && *req.TeamID != "" {
		t.ID = *req.TeamID
	} else {
		var err error
		if t.ID, err = a.newID(); err != nil {
			return nil, err
		}
	}
	if err := req.apply(t); err != nil {
		return nil, err
	}
	if err := a.validateTeam(t); err != nil {
		return nil, err
	}
	if err := a.store.CreateTeam(ctx, t); err != nil {
		return nil, storeError("create", "team", t.ID, err)
	}
	a.log.Info("admin: team created", "team_id", t.ID)
	return a.teamView(t), nil
}

// teamID reads a required team_id from a query parameter.
func teamIDParam(r *http.Request) (string, error) {
	id := r.URL.Query().Get("team_id")
	if id == "" {
		return "", badRequest("team_id", "Missing team_id: pass ?team_id=.")
	}
	return id, nil
}

func (a *API) teamInfo(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	id, err := teamIDParam(r)
	if err != nil {
		return nil, err
	}
	t, err := a.store.GetTeam(ctx, id)
	if err != nil {
		return nil, storeError("get", "team", id, err)
	}
	keys, err := a.allKeys(ctx, gateway.KeyFilter{TeamID: id})
	if err != nil {
		return nil, err
	}
	return TeamInfoResponse{TeamID: t.ID, TeamInfo: a.teamView(t), Keys: a.keyViews(keys)}, nil
}

func (a *API) teamUpdate(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req teamRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.TeamID == nil || *req.TeamID == "" {
		return nil, badRequest("team_id", "Missing team_id: the body must name the team to update.")
	}
	id := *req.TeamID
	if _, _, err := parseMetadata(req.Metadata); err != nil {
		return nil, err
	}
	var keys []*gateway.Key
	if req.ModelAliases != nil {
		// The team's keys resolve through its new aliases: read them first,
		// outside the store's transaction.
		var err error
		if keys, err = a.allKeys(ctx, gateway.KeyFilter{TeamID: id}); err != nil {
			return nil, err
		}
	}
	t, err := a.store.UpdateTeam(ctx, id, func(t *gateway.Team) error {
		if err := req.apply(t); err != nil {
			return err
		}
		if err := a.validateTeam(t); err != nil {
			return err
		}
		return a.validateTeamKeys(t, keys)
	})
	if err != nil {
		return nil, teamWriteError("update", id, err)
	}
	a.log.Info("admin: team updated", "team_id", t.ID)
	return TeamUpdateResponse{TeamID: t.ID, Data: a.teamView(t)}, nil
}

// teamWriteError passes validation errors through and translates store
// errors.
func teamWriteError(op, id string, err error) error {
	var bad *gateway.BadRequestError
	if errors.As(err, &bad) {
		return err
	}
	return storeError(op, "team", id, err)
}

// teamBlock serves /team/block (block true) and /team/unblock.
func (a *API) teamBlock(block bool) func(context.Context, *gateway.Principal, *http.Request) (any, error) {
	return func(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
		var req struct {
			TeamID string `json:"team_id"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.TeamID == "" {
			return nil, badRequest("team_id", "Missing team_id: the body must name the team.")
		}
		t, err := a.store.UpdateTeam(ctx, req.TeamID, func(t *gateway.Team) error {
			t.Blocked = block
			return nil
		})
		if err != nil {
			return nil, storeError("block", "team", req.TeamID, err)
		}
		a.log.Info("admin: team blocked", "team_id", t.ID, "blocked", block)
		return a.teamView(t), nil
	}
}

func (a *API) teamDelete(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req struct {
		TeamIDs []string `json:"team_ids"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.TeamIDs) == 0 {
		return nil, badRequest("team_ids", "Missing team_ids: pass the teams to delete as \"team_ids\": [...].")
	}
	deleted, err := deleteAll(ctx, "team", req.TeamIDs, a.store.GetTeam, a.store.DeleteTeams)
	if err != nil {
		return nil, err
	}
	a.log.Info("admin: teams deleted", "team_ids", deleted)
	return DeleteTeamsResponse{DeletedTeams: nonNilList(deleted)}, nil
}

func (a *API) teamList(ctx context.Context, _ *gateway.Principal, _ *http.Request) (any, error) {
	ts, err := a.store.ListTeams(ctx)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	ts = slices.Clone(ts)
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	out := make([]TeamInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, a.teamView(t))
	}
	return out, nil
}
