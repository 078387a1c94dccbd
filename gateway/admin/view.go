package admin

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/regate/gateway/gateway"
)

// KeyInfo is a key as the admin API shows it (LiteLLM's
// LiteLLM_VerificationToken fields). It never holds the plaintext key.
type KeyInfo struct {
	// Token is the key's SHA-256 hash, LiteLLM's "token".
	Token string `json:"token"`
	// KeyName is the display form, at most the last 4 characters.
	KeyName   string            `json:"key_name"`
	KeyAlias  *string           `json:"key_alias"`
	Models    []string          `json:"models"`
	Aliases   map[string]string `json:"aliases"`
	TeamID    *string           `json:"team_id"`
	UserID    *string           `json:"user_id"`
	Metadata  map[string]any    `json:"metadata"`
	Blocked   bool              `json:"blocked"`
	Expires   *string           `json:"expires"`
	CreatedAt *string           `json:"created_at"`
	Limits
	ModelLimits
}

// TeamInfo is a team as the admin API shows it (LiteLLM_TeamTable fields).
type TeamInfo struct {
	TeamID       string            `json:"team_id"`
	TeamAlias    *string           `json:"team_alias"`
	Models       []string          `json:"models"`
	ModelAliases map[string]string `json:"model_aliases"`
	Blocked      bool              `json:"blocked"`
	Metadata     map[string]any    `json:"metadata"`
	CreatedAt    *string           `json:"created_at"`
	Limits
}

// UserInfo is a user as the admin API shows it (LiteLLM_UserTable fields).
type UserInfo struct {
	UserID    string         `json:"user_id"`
	UserEmail *string        `json:"user_email"`
	UserRole  string         `json:"user_role"`
	Models    []string       `json:"models"`
	Metadata  map[string]any `json:"metadata"`
	CreatedAt *string        `json:"created_at"`
	Limits
}

// GenerateKeyResponse answers /key/generate: the key's fields plus the
// plaintext, shown this once.
type GenerateKeyResponse struct {
	// Key is the plaintext "sk-..." key.
	Key string `json:"key"`
	KeyInfo
}

// KeyInfoResponse answers /key/info as LiteLLM does: {"key", "info"}. Key is
// the hash, never the plaintext.
type KeyInfoResponse struct {
	Key  string  `json:"key"`
	Info KeyInfo `json:"info"`
}

// KeyWriteResponse answers /key/update, /key/block and /key/unblock: the
// stored key's fields with "key" set to its hash.
type KeyWriteResponse struct {
	Key string `json:"key"`
	KeyInfo
}

// KeyListResponse answers /key/list (LiteLLM shape). Keys holds hashes, or
// KeyInfo objects with return_full_object=true.
type KeyListResponse struct {
	Keys        []any `json:"keys"`
	TotalCount  int   `json:"total_count"`
	CurrentPage int   `json:"current_page"`
	TotalPages  int   `json:"total_pages"`
}

// DeleteKeysResponse answers /key/delete with the hashes deleted.
type DeleteKeysResponse struct {
	DeletedKeys []string `json:"deleted_keys"`
}

// TeamInfoResponse answers /team/info (LiteLLM shape) with the team's keys.
type TeamInfoResponse struct {
	TeamID   string    `json:"team_id"`
	TeamInfo TeamInfo  `json:"team_info"`
	Keys     []KeyInfo `json:"keys"`
}

// TeamUpdateResponse answers /team/update (LiteLLM shape).
type TeamUpdateResponse struct {
	TeamID string   `json:"team_id"`
	Data   TeamInfo `json:"data"`
}

// DeleteTeamsResponse answers /team/delete with the ids deleted.
type DeleteTeamsResponse struct {
	DeletedTeams []string `json:"deleted_teams"`
}

// NewUserResponse answers /user/new: the user's fields and, unless
// auto_create_key was false, its new key with the plaintext shown this once.
type NewUserResponse struct {
	UserInfo
	Key      *string `json:"key"`
	Token    *string `json:"token"`
	KeyName  *string `json:"key_name"`
	KeyAlias *string `json:"key_alias"`
	TeamID   *string `json:"team_id"`
	Expires  *string `json:"expires"`
}

// UserInfoResponse answers /user/info (LiteLLM shape) with the user's keys
// and the teams they belong to.
type UserInfoResponse struct {
	UserID   string     `json:"user_id"`
	UserInfo UserInfo   `json:"user_info"`
	Keys     []KeyInfo  `json:"keys"`
	Teams    []TeamInfo `json:"teams"`
}

// UserUpdateResponse answers /user/update (LiteLLM shape).
type UserUpdateResponse struct {
	UserID string   `json:"user_id"`
	Data   UserInfo `json:"data"`
}

// DeleteUsersResponse answers /user/delete with the ids deleted.
type DeleteUsersResponse struct {
	DeletedUsers []string `json:"deleted_users"`
}

// UserListResponse answers /user/list (LiteLLM shape).
type UserListResponse struct {
	Users      []UserInfo `json:"users"`
	Total      int        `json:"total"`
	Page       int        `json:"page"`
	PageSize   int        `json:"page_size"`
	TotalPages int        `json:"total_pages"`
}

// ModelInfoResponse answers /model/info: {"data": [...]}.
type ModelInfoResponse struct {
	Data []ModelInfo `json:"data"`
}

// ModelInfo is one deployment in /model/info (LiteLLM shape). It never
// holds the provider's api key.
type ModelInfo struct {
	ModelName     string        `json:"model_name"`
	LiteLLMParams LiteLLMParams `json:"litellm_params"`
	ModelInfo     ModelMeta     `json:"model_info"`
}

// LiteLLMParams are the deployment's litellm_params without credentials.
type LiteLLMParams struct {
	Model      string `json:"model"`
	APIBase    string `json:"api_base,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
}

// ModelMeta is a deployment's whole effective model_info: the configured
// fields and, for limits and prices not configured, the built-in catalog's.
type ModelMeta struct {
	ID           string   `json:"id"`
	AccessGroups []string `json:"access_groups"`
	Provider     string   `json:"provider"`
	// LiteLLMProvider repeats Provider under LiteLLM's name.
	LiteLLMProvider string `json:"litellm_provider"`
	// Info is written out flat beside the fields above, as LiteLLM does:
	// max_input_tokens, max_output_tokens, max_tokens and the four
	// per-token prices (null when unknown), <price>_tiers for tiered
	// prices, catalog_model when the built-in catalog supplied values, and
	// the configured fields the gateway does not read, as given.
	Info gateway.ModelInfo `json:"-"`
}

// MarshalJSON writes the fields and Info in one object. Configured extra
// fields never replace the gateway's own.
func (m ModelMeta) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(m.Info.Extra)+16)
	for k, v := range m.Info.Extra {
		out[k] = v
	}
	out["id"] = m.ID
	out["access_groups"] = nonNilList(m.AccessGroups)
	out["provider"] = m.Provider
	out["litellm_provider"] = m.LiteLLMProvider
	out["max_input_tokens"] = optInt(m.Info.MaxInputTokens)
	out["max_output_tokens"] = optInt(m.Info.MaxOutputTokens)
	out["max_tokens"] = optInt(m.Info.MaxTokens)
	for _, f := range m.Info.PriceFields() {
		price := *f.Price
		out[f.Name] = nil
		if price == nil {
			continue
		}
		out[f.Name] = price.PerToken
		if len(price.Tiers) > 0 {
			tiers := make([]PriceTier, len(price.Tiers))
			for i, t := range price.Tiers {
				tiers[i] = PriceTier{AboveTokens: t.Above, CostPerToken: t.PerToken}
			}
			out[f.Name+"_tiers"] = tiers
		}
	}
	if m.Info.Catalog != "" {
		out["catalog_model"] = m.Info.Catalog
	}
	return json.Marshal(out)
}

// PriceTier is one tier of a tiered price in /model/info: the per-token
// cost of a whole call whose prompt has more than AboveTokens tokens.
type PriceTier struct {
	AboveTokens  int64   `json:"above_tokens"`
	CostPerToken float64 `json:"cost_per_token"`
}

func optInt(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func nonNilMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return maps.Clone(m)
}

func (a *API) keyView(k *gateway.Key) KeyInfo {
	return KeyInfo{
		Token:       k.ID,
		KeyName:     k.Display,
		KeyAlias:    optString(k.Alias),
		Models:      nonNilList(k.Models),
		Aliases:     nonNilMap(k.Aliases),
		TeamID:      optString(k.TeamID),
		UserID:      optString(k.UserID),
		Metadata:    nonNilMap(k.Metadata),
		Blocked:     k.Blocked,
		Expires:     optTime(k.ExpiresAt),
		CreatedAt:   optTime(k.CreatedAt),
		Limits:      a.limitsView(k.Limits, gateway.LayerKey, k.ID, k.CreatedAt),
		ModelLimits: modelLimitsView(k.ModelLimits),
	}
}

func (a *API) keyViews(ks []*gateway.Key) []KeyInfo {
	out := make([]KeyInfo, 0, len(ks))
	for _, k := range ks {
		out = append(out, a.keyView(k))
	}
	return out
}

func (a *API) teamView(t *gateway.Team) TeamInfo {
	return TeamInfo{
		TeamID:       t.ID,
		TeamAlias:    optString(t.Alias),
		Models:       nonNilList(t.Models),
		ModelAliases: nonNilMap(t.ModelAliases),
		Blocked:      t.Blocked,
		Metadata:     nonNilMap(t.Metadata),
		CreatedAt:    optTime(t.CreatedAt),
		Limits:       a.limitsView(t.Limits, gateway.LayerTeam, t.ID, t.CreatedAt),
	}
}

func (a *API) userView(u *gateway.User) UserInfo {
	return UserInfo{
		UserID:    u.ID,
		UserEmail: optString(u.Email),
		UserRole:  u.Role,
		Models:    nonNilList(u.Models),
		Metadata:  nonNilMap(u.Metadata),
		CreatedAt: optTime(u.CreatedAt),
		Limits:    a.limitsView(u.Limits, gateway.LayerUser, u.ID, u.CreatedAt),
	}
}
