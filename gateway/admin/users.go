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

// userRequest is the body of /user/new and /user/update. Absent and null
// fields leave a value unchanged on update, except the limits, which null
// clears (see limitsRequest); the limits are the user's, never its new
// key's. The key fields (auto_create_key and after) are read by /user/new
// only.
type userRequest struct {
	UserID    *string         `json:"user_id"`
	UserEmail *string         `json:"user_email"`
	UserRole  *string         `json:"user_role"`
	Models    *[]string       `json:"models"`
	Metadata  json.RawMessage `json:"metadata"`
	limitsRequest

	AutoCreateKey *bool              `json:"auto_create_key"`
	KeyAlias      *string            `json:"key_alias"`
	TeamID        *string            `json:"team_id"`
	Aliases       *map[string]string `json:"aliases"`
	Duration      *string            `json:"duration"`
}

// apply writes the request's user fields (but not the id) onto u.
func (req *userRequest) apply(u *gateway.User) error {
	if req.UserEmail != nil {
		u.Email = *req.UserEmail
	}
	if req.UserRole != nil {
		u.Role = *req.UserRole
	}
	if req.Models != nil {
		u.Models = slices.Clone(*req.Models)
	}
	md, ok, err := parseMetadata(req.Metadata)
	if err != nil {
		return err
	}
	if ok {
		u.Metadata = md
	}
	return req.limitsRequest.apply(&u.Limits)
}

func (a *API) userNew(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req userRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	now := a.now().UTC()
	u := &gateway.User{Role: gateway.RoleInternalUser, CreatedAt: now}
	if req.UserID != nil && *req.UserID != "" {
		u.ID = *req.UserID
	} else {
		var err error
		if u.ID, err = a.newID(); err != nil {
			return nil, err
		}
	}
	if err := req.apply(u); err != nil {
		return nil, err
	}
	if err := a.validateUser(u); err != nil {
		return nil, err
	}
	resp := NewUserResponse{UserInfo: a.userView(u)}
	var k *gateway.Key
	if req.AutoCreateKey == nil || *req.AutoCreateKey {
		plain, err := a.newKey()
		if err != nil {
			return nil, err
		}
		k = &gateway.Key{
			ID:        gateway.HashKey(plain),
			Display:   gateway.Redact(plain),
			UserID:    u.ID,
			CreatedAt: now,
		}
		if req.KeyAlias != nil {
			k.Alias = *req.KeyAlias
		}
		if req.TeamID != nil {
			k.TeamID = *req.TeamID
		}
		if req.Aliases != nil {
			k.Aliases = maps.Clone(*req.Aliases)
		}
		if k.ExpiresAt, err = a.expiry(req.Duration); err != nil {
			return nil, err
		}
		team, err := a.teamFor(ctx, k.TeamID)
		if err != nil {
			return nil, err
		}
		if err := a.validateKey(ctx, k, team); err != nil {
			return nil, err
		}
		resp.Key = &plain
		resp.Token = &k.ID
		resp.KeyName = &k.Display
		resp.KeyAlias = optString(k.Alias)
		resp.TeamID = optString(k.TeamID)
		resp.Expires = optTime(k.ExpiresAt)
	}
	if err := a.store.CreateUser(ctx, u, k); err != nil {
		return nil, storeError("create", "user", u.ID, err)
	}
	a.log.Info("admin: user created", "user_id", u.ID, "with_key", k != nil)
	return resp, nil
}

func (a *API) userInfo(ctx context.Context, p *gateway.Principal, r *http.Request) (any, error) {
	id := r.URL.Query().Get("user_id")
	if id == "" {
		if p == nil || p.User == nil {
			return nil, badRequest("user_id", "Missing user_id: pass ?user_id=.")
		}
		id = p.User.ID
	}
	u, err := a.store.GetUser(ctx, id)
	if err != nil {
		return nil, storeError("get", "user", id, err)
	}
	keys, err := a.allKeys(ctx, gateway.KeyFilter{UserID: id})
	if err != nil {
		return nil, err
	}
	resp := UserInfoResponse{UserID: u.ID, UserInfo: a.userView(u), Keys: a.keyViews(keys), Teams: []TeamInfo{}}
	seen := make(map[string]bool)
	for _, k := range keys {
		if k.TeamID == "" || seen[k.TeamID] {
			continue
		}
		seen[k.TeamID] = true
		t, err := a.store.GetTeam(ctx, k.TeamID)
		if errors.Is(err, gateway.ErrNotFound) {
			continue // deleted since the keys were read
		}
		if err != nil {
			return nil, storeError("get", "team", k.TeamID, err)
		}
		resp.Teams = append(resp.Teams, a.teamView(t))
	}
	sort.Slice(resp.Teams, func(i, j int) bool { return resp.Teams[i].TeamID < resp.Teams[j].TeamID })
	return resp, nil
}

func (a *API) userUpdate(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req userRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.UserID == nil || *req.UserID == "" {
		return nil, badRequest("user_id", "Missing user_id: the body must name the user to update.")
	}
	id := *req.UserID
	u, err := a.store.UpdateUser(ctx, id, func(u *gateway.User) error {
		if err := req.apply(u); err != nil {
			return err
		}
		return a.validateUser(u)
	})
	if err != nil {
		var bad *gateway.BadRequestError
		if errors.As(err, &bad) {
			return nil, err
		}
		return nil, storeError("update", "user", id, err)
	}
	a.log.Info("admin: user updated", "user_id", u.ID)
	return UserUpdateResponse{UserID: u.ID, Data: a.userView(u)}, nil
}

func (a *API) userDelete(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs) == 0 {
		return nil, badRequest("user_ids", "Missing user_ids: pass the users to delete as \"user_ids\": [...].")
	}
	deleted, err := deleteAll(ctx, "user", req.UserIDs, a.store.GetUser, a.store.DeleteUsers)
	if err != nil {
		return nil, err
	}
	a.log.Info("admin: users deleted", "user_ids", deleted)
	return DeleteUsersResponse{DeletedUsers: nonNilList(deleted)}, nil
}

// defaultUserPageSize is LiteLLM's /user/list page size.
const defaultUserPageSize = 25

func (a *API) userList(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	q := r.URL.Query()
	page, err := queryInt(q, "page", 1, 1<<30)
	if err != nil {
		return nil, err
	}
	size, err := queryInt(q, "page_size", defaultUserPageSize, maxPageSize)
	if err != nil {
		return nil, err
	}
	us, err := a.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if role := q.Get("role"); role != "" {
		us = slices.DeleteFunc(slices.Clone(us), func(u *gateway.User) bool { return u.Role != role })
	} else {
		us = slices.Clone(us)
	}
	sort.Slice(us, func(i, j int) bool { return us[i].ID < us[j].ID })
	resp := UserListResponse{
		Users:      []UserInfo{},
		Total:      len(us),
		Page:       page,
		PageSize:   size,
		TotalPages: (len(us) + size - 1) / size,
	}
	start := (page - 1) * size
	for i := start; i < len(us) && i < start+size; i++ {
		resp.Users = append(resp.Users, a.userView(us[i]))
	}
	return resp, nil
}
