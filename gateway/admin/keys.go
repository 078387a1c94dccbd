package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/regate/gateway/gateway"
)

// keyRequest is the body of /key/generate and /key/update (LiteLLM's
// GenerateKeyRequest and UpdateKeyRequest, the fields the gateway uses).
// Absent and null fields leave a value unchanged on update, except the
// limits, which null clears (see limitsRequest).
type keyRequest struct {
	// Key is, on /key/generate, an optional custom plaintext key; on
	// /key/update, the key to update (plaintext or hash).
	Key      *string            `json:"key"`
	KeyAlias *string            `json:"key_alias"`
	Models   *[]string          `json:"models"`
	Aliases  *map[string]string `json:"aliases"`
	TeamID   *string            `json:"team_id"`
	UserID   *string            `json:"user_id"`
	Duration *string            `json:"duration"`
	Metadata json.RawMessage    `json:"metadata"`
	Blocked  *bool              `json:"blocked"`
	limitsRequest
	modelLimitsRequest
}

// apply writes the request's fields onto k.
func (req *keyRequest) apply(a *API, k *gateway.Key) error {
	if req.KeyAlias != nil {
		k.Alias = *req.KeyAlias
	}
	if req.Models != nil {
		k.Models = slices.Clone(*req.Models)
	}
	if req.Aliases != nil {
		k.Aliases = maps.Clone(*req.Aliases)
	}
	if req.TeamID != nil {
		k.TeamID = *req.TeamID
	}
	if req.UserID != nil {
		k.UserID = *req.UserID
	}
	if req.Blocked != nil {
		k.Blocked = *req.Blocked
	}
	md, ok, err := parseMetadata(req.Metadata)
	if err != nil {
		return err
	}
	if ok {
		k.Metadata = md
	}
	if req.Duration != nil {
		exp, err := a.expiry(req.Duration)
		if err != nil {
			return err
		}
		k.ExpiresAt = exp
	}
	if err := req.limitsRequest.apply(&k.Limits); err != nil {
		return err
	}
	return req.modelLimitsRequest.apply(&k.ModelLimits)
}

func (a *API) keyGenerate(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req keyRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	var plain string
	if req.Key != nil && *req.Key != "" {
		plain = *req.Key
		if !strings.HasPrefix(plain, "sk-") || len(plain) < minCustomKey || !gateway.KeyChars(plain) {
			return nil, badRequest("key", "Invalid key: a custom key must start with \"sk-\", have at least %d characters, and hold only printable ASCII characters without spaces.", minCustomKey)
		}
	} else {
		var err error
		if plain, err = a.newKey(); err != nil {
			return nil, err
		}
	}
	k := &gateway.Key{
		ID:        gateway.HashKey(plain),
		Display:   gateway.Redact(plain),
		CreatedAt: a.now().UTC(),
	}
	if err := req.apply(a, k); err != nil {
		return nil, err
	}
	team, err := a.teamFor(ctx, k.TeamID)
	if err != nil {
		return nil, err
	}
	if err := a.checkUser(ctx, k.UserID); err != nil {
		return nil, err
	}
	if err := a.validateKey(ctx, k, team); err != nil {
		return nil, err
	}
	if err := a.store.CreateKey(ctx, k); err != nil {
		return nil, storeError("create", "key", k.Display, err)
	}
	a.log.Info("admin: key created", "key", k.Display, "team_id", k.TeamID, "user_id", k.UserID)
	return GenerateKeyResponse{Key: plain, KeyInfo: a.keyView(k)}, nil
}

// getKey finds a key given by a client as its plaintext or its hash.
func (a *API) getKey(ctx context.Context, s string) (*gateway.Key, error) {
	ids := make([]string, 0, 2)
	if isKeyHash(s) {
		ids = append(ids, s)
	}
	ids = append(ids, gateway.HashKey(s))
	for _, id := range ids {
		k, err := a.store.GetKey(ctx, id)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, gateway.ErrNotFound) {
			return nil, storeError("get", "key", keyLabel(s), err)
		}
	}
	return nil, &gateway.NotFoundError{Kind: "key", ID: keyLabel(s)}
}

func (a *API) keyInfo(ctx context.Context, p *gateway.Principal, r *http.Request) (any, error) {
	s := r.URL.Query().Get("key")
	if s == "" {
		// The caller's own key. The master key is not stored: show the
		// principal's own record.
		if p == nil || p.Key == nil {
			return nil, badRequest("key", "Missing key: pass ?key=.")
		}
		k, err := a.store.GetKey(ctx, p.Key.ID)
		if errors.Is(err, gateway.ErrNotFound) {
			k, err = p.Key, nil
		}
		if err != nil {
			return nil, storeError("get", "key", p.Key.Display, err)
		}
		return KeyInfoResponse{Key: k.ID, Info: a.keyView(k)}, nil
	}
	k, err := a.getKey(ctx, s)
	if err != nil {
		return nil, err
	}
	return KeyInfoResponse{Key: k.ID, Info: a.keyView(k)}, nil
}

// errRetry makes an update start over after a concurrent write changed a
// record it depends on.
var errRetry = errors.New("record changed concurrently")

// maxAttempts bounds update retries.
const maxAttempts = 5

func (a *API) keyUpdate(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req keyRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Key == nil || *req.Key == "" {
		return nil, badRequest("key", "Missing key: the body must name the key to update.")
	}
	cur, err := a.getKey(ctx, *req.Key)
	if err != nil {
		return nil, err
	}
	// Parse once, outside the store's transaction.
	if _, _, err := parseMetadata(req.Metadata); err != nil {
		return nil, err
	}
	if req.Duration != nil {
		if _, err := a.expiry(req.Duration); err != nil {
			return nil, err
		}
	}
	for range maxAttempts {
		teamID, userID := cur.TeamID, cur.UserID
		if req.TeamID != nil {
			teamID = *req.TeamID
		}
		if req.UserID != nil {
			userID = *req.UserID
		}
		team, err := a.teamFor(ctx, teamID)
		if err != nil {
			return nil, err
		}
		if req.UserID != nil {
			if err := a.checkUser(ctx, userID); err != nil {
				return nil, err
			}
		}
		k, err := a.store.UpdateKey(ctx, cur.ID, func(k *gateway.Key) error {
			if k.TeamID != cur.TeamID || k.UserID != cur.UserID {
				return errRetry
			}
			if err := req.apply(a, k); err != nil {
				return err
			}
			return a.validateKey(ctx, k, team)
		})
		if errors.Is(err, errRetry) {
			if cur, err = a.getKey(ctx, cur.ID); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, keyWriteError("update", cur, err)
		}
		a.log.Info("admin: key updated", "key", k.Display)
		return KeyWriteResponse{Key: k.ID, KeyInfo: a.keyView(k)}, nil
	}
	return nil, fmt.Errorf("update key %s: %w", cur.Display, errRetry)
}

// keyWriteError passes validation errors through and translates store
// errors.
func keyWriteError(op string, k *gateway.Key, err error) error {
	var bad *gateway.BadRequestError
	if errors.As(err, &bad) {
		return err
	}
	return storeError(op, "key", k.Display, err)
}

// keyBlock serves /key/block (block true) and /key/unblock. Blocking is
// never refused for validation reasons: it must always work.
func (a *API) keyBlock(block bool) func(context.Context, *gateway.Principal, *http.Request) (any, error) {
	return func(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
		var req struct {
			Key string `json:"key"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.Key == "" {
			return nil, badRequest("key", "Missing key: the body must name the key.")
		}
		cur, err := a.getKey(ctx, req.Key)
		if err != nil {
			return nil, err
		}
		k, err := a.store.UpdateKey(ctx, cur.ID, func(k *gateway.Key) error {
			k.Blocked = block
			return nil
		})
		if err != nil {
			return nil, keyWriteError("block", cur, err)
		}
		a.log.Info("admin: key blocked", "key", k.Display, "blocked", block)
		return KeyWriteResponse{Key: k.ID, KeyInfo: a.keyView(k)}, nil
	}
}

func (a *API) keyDelete(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	var req struct {
		Keys []string `json:"keys"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Keys) == 0 {
		return nil, badRequest("keys", "Missing keys: pass the keys to delete as \"keys\": [...].")
	}
	// Every key must exist, or nothing is deleted (as LiteLLM refuses a
	// partial delete).
	hashes := make([]string, 0, len(req.Keys))
	for _, s := range req.Keys {
		k, err := a.getKey(ctx, s)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, k.ID)
	}
	deleted, err := a.store.DeleteKeys(ctx, hashes)
	if err != nil {
		return nil, fmt.Errorf("delete keys: %w", err)
	}
	a.log.Info("admin: keys deleted", "count", len(deleted))
	return DeleteKeysResponse{DeletedKeys: nonNilList(deleted)}, nil
}

// Page sizes of /key/list, as LiteLLM's.
const (
	defaultKeyPageSize = 10
	maxPageSize        = 100
	// storePage is the page size used to read whole listings from the store.
	storePage = 1000
)

func (a *API) keyList(ctx context.Context, _ *gateway.Principal, r *http.Request) (any, error) {
	q := r.URL.Query()
	page, err := queryInt(q, "page", 1, 1<<30)
	if err != nil {
		return nil, err
	}
	size, err := queryInt(q, "size", defaultKeyPageSize, maxPageSize)
	if err != nil {
		return nil, err
	}
	full, err := queryBool(q, "return_full_object")
	if err != nil {
		return nil, err
	}
	all, err := a.allKeys(ctx, gateway.KeyFilter{TeamID: q.Get("team_id"), UserID: q.Get("user_id")})
	if err != nil {
		return nil, err
	}
	if alias := q.Get("key_alias"); alias != "" {
		all = slices.DeleteFunc(all, func(k *gateway.Key) bool { return k.Alias != alias })
	}
	resp := KeyListResponse{
		Keys:        []any{},
		TotalCount:  len(all),
		CurrentPage: page,
		TotalPages:  (len(all) + size - 1) / size,
	}
	start := (page - 1) * size
	for i := start; i < len(all) && i < start+size; i++ {
		if full {
			resp.Keys = append(resp.Keys, a.keyView(all[i]))
		} else {
			resp.Keys = append(resp.Keys, all[i].ID)
		}
	}
	return resp, nil
}

// allKeys reads every key matching f (its paging fields are ignored).
func (a *API) allKeys(ctx context.Context, f gateway.KeyFilter) ([]*gateway.Key, error) {
	var all []*gateway.Key
	f.Size = storePage
	for f.Page = 1; ; f.Page++ {
		ks, err := a.store.ListKeys(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		all = append(all, ks...)
		if len(ks) < storePage {
			return all, nil
		}
	}
}
