package admin

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

func TestUserNew(t *testing.T) {
	f := newFixture(t)
	b := f.ok(t, http.MethodPost, "/user/new", `{"user_id": "carol", "user_email": "carol@example.com", "user_role": "internal_user",
		"models": ["gpt-4o", "no-default-models"], "metadata": {"dept": "ml"}, "key_alias": "carol-key", "duration": "1h", "team_id": "research"}`)
	hasFields(t, "POST /user/new", object(t, b), "user_id", "user_email", "user_role", "models", "metadata",
		"key", "token", "key_name", "key_alias", "team_id", "expires", "created_at")
	resp := into[NewUserResponse](t, b)
	if resp.UserID != "carol" || *resp.UserEmail != "carol@example.com" || resp.UserRole != "internal_user" || resp.Metadata["dept"] != "ml" {
		t.Errorf("POST /user/new user fields = %+v, want the request's", resp.UserInfo)
	}
	if resp.Key == nil || !strings.HasPrefix(*resp.Key, "sk-") || *resp.Token != gateway.HashKey(*resp.Key) || *resp.KeyName != gateway.Redact(*resp.Key) {
		t.Fatalf("POST /user/new key fields = %v %v %v, want a plaintext key, its hash and display", resp.Key, resp.Token, resp.KeyName)
	}
	if want := testNow.Add(time.Hour).Format(time.RFC3339); resp.Expires == nil || *resp.Expires != want {
		t.Errorf("POST /user/new expires = %v, want %s", resp.Expires, want)
	}
	p, err := f.store.PrincipalByKeyHash(t.Context(), *resp.Token)
	if err != nil {
		t.Fatalf("PrincipalByKeyHash(new user's key) error = %v", err)
	}
	if p.User == nil || p.User.ID != "carol" || p.Team == nil || p.Team.ID != "research" || p.Key.Alias != "carol-key" {
		t.Errorf("new user's principal = key %+v user %+v team %+v, want carol, research, carol-key", p.Key, p.User, p.Team)
	}
	info := f.ok(t, http.MethodGet, "/user/info?user_id=carol", "")
	if strings.Contains(string(info), *resp.Key) {
		t.Errorf("GET /user/info answer holds the plaintext key")
	}

	t.Run("defaults", func(t *testing.T) {
		resp := into[NewUserResponse](t, f.ok(t, http.MethodPost, "/user/new", `{}`))
		if !uuidRE.MatchString(resp.UserID) || resp.UserRole != gateway.RoleInternalUser || resp.Key == nil || resp.TeamID != nil || resp.Expires != nil {
			t.Errorf("POST /user/new {} = %+v, want a UUID, role internal_user, a key without team or expiry", resp)
		}
	})
	t.Run("without a key", func(t *testing.T) {
		before := len(f.keys(t))
		b := f.ok(t, http.MethodPost, "/user/new", `{"user_id": "dave", "auto_create_key": false}`)
		m := object(t, b)
		if m["key"] != nil || m["token"] != nil {
			t.Errorf("POST /user/new auto_create_key false: key, token = %v, %v, want null", m["key"], m["token"])
		}
		if after := len(f.keys(t)); after != before {
			t.Errorf("POST /user/new auto_create_key false: %d keys, want %d", after, before)
		}
		if _, err := f.store.GetUser(t.Context(), "dave"); err != nil {
			t.Errorf("GetUser(dave) error = %v", err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		before := f.snapshot(t)
		_, err := f.do(t, f.admin, http.MethodPost, "/user/new", `{"user_id": "alice"}`)
		var conflict *gateway.ConflictError
		if !errors.As(err, &conflict) || conflict.Kind != "user" {
			t.Errorf("POST /user/new existing id: error = %v, want ConflictError user", err)
		}
		if after := f.snapshot(t); after != before {
			t.Errorf("store changed after a refused create")
		}
	})
}

// keys returns every stored key.
func (f *fixture) keys(tb testing.TB) []*gateway.Key {
	tb.Helper()
	ks, err := f.api.allKeys(tb.Context(), gateway.KeyFilter{})
	if err != nil {
		tb.Fatalf("allKeys() error = %v", err)
	}
	return ks
}

func TestUserNewRefused(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body, param string
		frags             []string
	}{
		{"bad role", `{"user_role": "superuser"}`, "user_role", []string{`"superuser"`, "proxy_admin"}},
		{"empty role", `{"user_role": ""}`, "user_role", []string{`""`}},
		{"unknown model", `{"models": ["gpt-6"]}`, "models", []string{`"gpt-6"`}},
		{"metadata not an object", `{"metadata": "x"}`, "metadata", []string{"JSON object"}},
		{"missing team for the key", `{"team_id": "ghost"}`, "team_id", []string{`"ghost"`}},
		{"bad duration", `{"duration": "1 week"}`, "duration", []string{`"1 week"`}},
		{"key alias cycle", `{"aliases": {"m": "n", "n": "m"}}`, "aliases", []string{"alias cycle"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.do(t, f.admin, http.MethodPost, "/user/new", tc.body)
			wantBadRequest(t, "POST /user/new "+tc.body, err, tc.param, tc.frags...)
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed after a refused write:\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func TestUserInfo(t *testing.T) {
	f := newFixture(t)
	k1 := f.generate(t, `{"user_id": "alice", "team_id": "research"}`)
	k2 := f.generate(t, `{"user_id": "alice"}`)
	f.generate(t, `{"user_id": "bob", "team_id": "open"}`)

	b := f.ok(t, http.MethodGet, "/user/info?user_id=alice", "")
	hasFields(t, "GET /user/info", object(t, b), "user_id", "user_info", "keys", "teams")
	resp := into[UserInfoResponse](t, b)
	var tokens, teams []string
	for _, k := range resp.Keys {
		tokens = append(tokens, k.Token)
	}
	for _, tm := range resp.Teams {
		teams = append(teams, tm.TeamID)
	}
	slices.Sort(tokens)
	if want := slices.Sorted(slices.Values([]string{k1.Token, k2.Token})); !slices.Equal(tokens, want) {
		t.Errorf("GET /user/info keys = %v, want %v", tokens, want)
	}
	if !slices.Equal(teams, []string{"research"}) || resp.UserInfo.UserID != "alice" || *resp.UserInfo.UserEmail != "alice@example.com" {
		t.Errorf("GET /user/info = user %+v teams %v, want alice and [research]", resp.UserInfo, teams)
	}

	_, err := f.do(t, f.admin, http.MethodGet, "/user/info?user_id=ghost", "")
	wantNotFound(t, "GET /user/info ghost", err, "user")
	_, err = f.do(t, f.admin, http.MethodGet, "/user/info", "")
	wantBadRequest(t, "GET /user/info without user_id, master key", err, "user_id")

	p, err := f.store.PrincipalByKeyHash(t.Context(), k1.Token)
	if err != nil {
		t.Fatalf("PrincipalByKeyHash() error = %v", err)
	}
	b, err = f.do(t, p, http.MethodGet, "/user/info", "")
	if err != nil {
		t.Fatalf("GET /user/info as alice's key: error = %v", err)
	}
	if got := into[UserInfoResponse](t, b).UserID; got != "alice" {
		t.Errorf("GET /user/info as alice's key = user %q, want alice", got)
	}
}

func TestUserUpdate(t *testing.T) {
	f := newFixture(t)
	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, body, param string
			frags             []string
		}{
			{"bad role", `{"user_role": "root"}`, "user_role", []string{`"root"`}},
			{"unknown model", `{"models": ["gpt-4o", "x-model"]}`, "models", []string{`"x-model"`}},
			{"metadata not an object", `{"metadata": [true]}`, "metadata", []string{"JSON object"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := f.snapshot(t)
				_, err := f.do(t, f.admin, http.MethodPost, "/user/update", `{"user_id": "alice", `+strings.TrimPrefix(tc.body, "{"))
				wantBadRequest(t, "POST /user/update "+tc.body, err, tc.param, tc.frags...)
				if after := f.snapshot(t); after != before {
					t.Errorf("store changed after a refused update")
				}
			})
		}
	})
	t.Run("missing or unknown user", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/user/update", `{"user_role": "proxy_admin"}`)
		wantBadRequest(t, "POST /user/update without user_id", err, "user_id")
		_, err = f.do(t, f.admin, http.MethodPost, "/user/update", `{"user_id": "ghost"}`)
		wantNotFound(t, "POST /user/update ghost", err, "user")
	})
	t.Run("applied", func(t *testing.T) {
		b := f.ok(t, http.MethodPost, "/user/update", `{"user_id": "alice", "user_role": "proxy_admin", "models": ["premium"], "metadata": {"x": 1}}`)
		hasFields(t, "POST /user/update", object(t, b), "user_id", "data")
		resp := into[UserUpdateResponse](t, b)
		if resp.UserID != "alice" || resp.Data.UserRole != "proxy_admin" || !slices.Equal(resp.Data.Models, []string{"premium"}) || *resp.Data.UserEmail != "alice@example.com" {
			t.Errorf("POST /user/update = %+v, want role proxy_admin, models [premium], email kept", resp)
		}
	})
}

func TestUserDeleteAndList(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"user_id": "bob"}`)
	for i := range 5 {
		role := "internal_user"
		if i%2 == 0 {
			role = "internal_user_viewer"
		}
		f.ok(t, http.MethodPost, "/user/new", fmt.Sprintf(`{"user_id": "u%d", "user_role": %q, "auto_create_key": false}`, i, role))
	}

	tests := []struct {
		query                                   string
		wantIDs                                 []string
		wantTotal, wantPage, wantSize, wantPags int
	}{
		{"", []string{"alice", "bob", "u0", "u1", "u2", "u3", "u4"}, 7, 1, 25, 1},
		{"?page=2&page_size=3", []string{"u1", "u2", "u3"}, 7, 2, 3, 3},
		{"?role=internal_user_viewer", []string{"u0", "u2", "u4"}, 3, 1, 25, 1},
	}
	for _, tc := range tests {
		t.Run("list"+tc.query, func(t *testing.T) {
			b := f.ok(t, http.MethodGet, "/user/list"+tc.query, "")
			hasFields(t, "GET /user/list", object(t, b), "users", "total", "page", "page_size", "total_pages")
			resp := into[UserListResponse](t, b)
			var ids []string
			for _, u := range resp.Users {
				ids = append(ids, u.UserID)
			}
			if !slices.Equal(ids, tc.wantIDs) || resp.Total != tc.wantTotal || resp.Page != tc.wantPage || resp.PageSize != tc.wantSize || resp.TotalPages != tc.wantPags {
				t.Errorf("GET /user/list%s = %v total %d page %d size %d pages %d, want %v %d %d %d %d", tc.query,
					ids, resp.Total, resp.Page, resp.PageSize, resp.TotalPages, tc.wantIDs, tc.wantTotal, tc.wantPage, tc.wantSize, tc.wantPags)
			}
		})
	}
	_, err := f.do(t, f.admin, http.MethodGet, "/user/list?page_size=1000", "")
	wantBadRequest(t, "GET /user/list?page_size=1000", err, "page_size")

	t.Run("delete", func(t *testing.T) {
		before := f.snapshot(t)
		_, err := f.do(t, f.admin, http.MethodPost, "/user/delete", `{"user_ids": ["bob", "ghost"]}`)
		wantNotFound(t, "POST /user/delete with an unknown user", err, "user")
		if after := f.snapshot(t); after != before {
			t.Errorf("store changed after a refused delete")
		}
		_, err = f.do(t, f.admin, http.MethodPost, "/user/delete", `{}`)
		wantBadRequest(t, "POST /user/delete {}", err, "user_ids")

		resp := into[DeleteUsersResponse](t, f.ok(t, http.MethodPost, "/user/delete", `{"user_ids": ["bob", "u0"]}`))
		if got := slices.Sorted(slices.Values(resp.DeletedUsers)); !slices.Equal(got, []string{"bob", "u0"}) {
			t.Errorf("POST /user/delete deleted_users = %v, want [bob u0]", got)
		}
		if _, err := f.store.GetKey(t.Context(), k.Token); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("GetKey(bob's key) after user delete: error = %v, want ErrNotFound (cascade)", err)
		}
		if _, err := f.store.GetUser(t.Context(), "alice"); err != nil {
			t.Errorf("GetUser(alice) after deleting others: error = %v", err)
		}
	})
}
