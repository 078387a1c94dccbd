package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

func TestModelInfo(t *testing.T) {
	f := newFixture(t)
	research, err := f.store.GetTeam(t.Context(), "research")
	if err != nil {
		t.Fatalf("GetTeam(research) error = %v", err)
	}
	key := func(models []string, aliases map[string]string) *gateway.Key {
		return &gateway.Key{ID: gateway.HashKey("sk-test-" + strings.Join(models, ",")), Display: "sk-...test", Models: models, Aliases: aliases}
	}
	proxyAdmin := &gateway.Principal{
		Key:  key([]string{"embed"}, nil),
		User: &gateway.User{ID: "pa", Role: gateway.RoleProxyAdmin},
	}
	tests := []struct {
		name   string
		p      *gateway.Principal
		target string
		want   []string // deployment ids
	}{
		{"master key sees every deployment", f.admin, "/model/info", []string{"0", "1", "2", "3", "4"}},
		{"proxy_admin user sees every deployment", proxyAdmin, "/v1/model/info", []string{"0", "1", "2", "3", "4"}},
		{"exact entry", &gateway.Principal{Key: key([]string{"gpt-4o"}, nil)}, "/model/info", []string{"0"}},
		{"alias-only allow-list", &gateway.Principal{Key: key([]string{"coder"}, map[string]string{"coder": "claude"})}, "/model/info", []string{"2"}},
		{"team list with a global alias", &gateway.Principal{Key: key(nil, nil), Team: research}, "/model/info", []string{"0", "1"}},
		{"access group, wildcard deployment left out", &gateway.Principal{Key: key([]string{"default-models"}, nil)}, "/model/info", []string{"0", "1"}},
		{"glob", &gateway.Principal{Key: key([]string{"openai/*"}, nil)}, "/v1/model/info", []string{"0", "1"}},
		{"unrestricted key", &gateway.Principal{Key: key(nil, nil)}, "/model/info", []string{"0", "1", "2", "4"}},
		{"user without default models, personal key", &gateway.Principal{
			Key:  key([]string{"premium"}, nil),
			User: &gateway.User{ID: "u", Role: gateway.RoleInternalUser, Models: []string{gateway.NoDefaultModels}},
		}, "/model/info", nil},
		{"key and user intersect", &gateway.Principal{
			Key:  key([]string{"default-models"}, nil),
			User: &gateway.User{ID: "u", Role: gateway.RoleInternalUser, Models: []string{"gpt-4o-mini", "claude"}},
		}, "/model/info", []string{"1"}},
		{"admin filtered by id", f.admin, "/model/info?litellm_model_id=2", []string{"2"}},
		{"id filter cannot widen", &gateway.Principal{Key: key([]string{"gpt-4o"}, nil)}, "/model/info?litellm_model_id=2", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := f.do(t, tc.p, http.MethodGet, tc.target, "")
			if err != nil {
				t.Fatalf("GET %s: error = %v", tc.target, err)
			}
			if strings.Contains(string(b), providerSecret) || strings.Contains(string(b), "api_key") {
				t.Errorf("GET %s answer %s shows a provider key", tc.target, b)
			}
			hasFields(t, "GET "+tc.target, object(t, b), "data")
			resp := into[ModelInfoResponse](t, b)
			var got []string
			for _, m := range resp.Data {
				got = append(got, m.ModelInfo.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("GET %s ids = %v, want %v", tc.target, got, tc.want)
			}
		})
	}

	t.Run("shape", func(t *testing.T) {
		b := f.ok(t, http.MethodGet, "/model/info?litellm_model_id=0", "")
		data := object(t, b)["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("GET /model/info?litellm_model_id=0: %d entries, want 1", len(data))
		}
		m := data[0].(map[string]any)
		hasFields(t, "model", m, "model_name", "litellm_params", "model_info")
		params := m["litellm_params"].(map[string]any)
		info := m["model_info"].(map[string]any)
		if m["model_name"] != "gpt-4o" || params["model"] != "openai/gpt-4o" || params["api_base"] != "https://api.openai.com/v1" {
			t.Errorf("GET /model/info entry = %v, want gpt-4o served by openai/gpt-4o at the OpenAI base", m)
		}
		if info["id"] != "0" || info["provider"] != "openai" || mustJSON(t, info["access_groups"]) != `["default-models"]` {
			t.Errorf("GET /model/info model_info = %v, want id 0, provider openai, access_groups [default-models]", info)
		}
	})
}

func TestModelMetaJSON(t *testing.T) {
	m := ModelMeta{
		ID: "d1", AccessGroups: nil, Provider: "openai", LiteLLMProvider: "openai",
		Info: gateway.ModelInfo{
			MaxInputTokens: 200000,
			InputCost:      &gateway.Price{PerToken: 3e-6, Tiers: []gateway.PriceTier{{Above: 200000, PerToken: 6e-6}}},
			OutputCost:     &gateway.Price{},
			Catalog:        "anthropic/claude-sonnet-4-5",
			Extra:          map[string]any{"mode": "chat", "id": "from-extra", "max_input_tokens": 1},
		},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"access_groups":[],"cache_creation_input_token_cost":null,"cache_read_input_token_cost":null,` +
		`"catalog_model":"anthropic/claude-sonnet-4-5","id":"d1","input_cost_per_token":0.000003,` +
		`"input_cost_per_token_tiers":[{"above_tokens":200000,"cost_per_token":0.000006}],"litellm_provider":"openai",` +
		`"max_input_tokens":200000,"max_output_tokens":null,"max_tokens":null,"mode":"chat","output_cost_per_token":0,"provider":"openai"}`
	if string(b) != want {
		t.Errorf("json.Marshal(ModelMeta) =\n%s\nwant\n%s", b, want)
	}
}
