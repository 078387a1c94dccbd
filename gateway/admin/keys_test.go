package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

func TestKeyGenerate(t *testing.T) {
	f := newFixture(t)
	body := `{"models": ["gpt-4o", "fast", "coder"], "key_alias": "alice-laptop", "team_id": "research",
		"user_id": "alice", "aliases": {"coder": "gpt-4o"}, "duration": "30d",
		"metadata": {"env": "dev", "n": 12345678901234567890}}`
	b := f.ok(t, http.MethodPost, "/key/generate", body)
	m := object(t, b)
	hasFields(t, "POST /key/generate", m, "key", "token", "key_name", "key_alias", "models", "aliases",
		"team_id", "user_id", "metadata", "expires", "blocked", "created_at")
	resp := into[GenerateKeyResponse](t, b)
	plain := resp.Key
	if !strings.HasPrefix(plain, "sk-") || len(plain) != 3+keyLength {
		t.Errorf("key = %q, want sk- and %d characters", plain, keyLength)
	}
	if resp.Token != gateway.HashKey(plain) {
		t.Errorf("token = %q, want HashKey(key) %q", resp.Token, gateway.HashKey(plain))
	}
	if want := gateway.Redact(plain); resp.KeyName != want {
		t.Errorf("key_name = %q, want %q", resp.KeyName, want)
	}
	if want := testNow.Add(30 * 24 * time.Hour).Format(time.RFC3339); resp.Expires == nil || *resp.Expires != want {
		t.Errorf("expires = %v, want %s", resp.Expires, want)
	}
	if got := strings.Join(resp.Models, ","); got != "gpt-4o,fast,coder" {
		t.Errorf("models = %s, want gpt-4o,fast,coder", got)
	}
	if resp.TeamID == nil || *resp.TeamID != "research" || resp.UserID == nil || *resp.UserID != "alice" {
		t.Errorf("team_id, user_id = %v, %v, want research, alice", resp.TeamID, resp.UserID)
	}
	if !strings.Contains(string(b), `"n":12345678901234567890`) {
		t.Errorf("response %s: metadata number lost its exact value", b)
	}

	k, err := f.store.GetKey(t.Context(), resp.Token)
	if err != nil {
		t.Fatalf("GetKey(token) error = %v", err)
	}
	if k.Alias != "alice-laptop" || k.TeamID != "research" || k.UserID != "alice" || k.Aliases["coder"] != "gpt-4o" || k.Metadata["env"] != "dev" {
		t.Errorf("stored key = %+v, want the request's fields", k)
	}
	if strings.Contains(mustJSON(t, k), plain) || strings.Contains(fmt.Sprintf("%+v", k), plain) {
		t.Errorf("stored key %+v holds the plaintext", k)
	}
	p, err := f.store.PrincipalByKeyHash(t.Context(), gateway.HashKey(plain))
	if err != nil || p.Team == nil || p.Team.ID != "research" {
		t.Errorf("PrincipalByKeyHash(key) = %+v, %v, want the key with team research", p, err)
	}

	t.Run("minimal", func(t *testing.T) {
		m := object(t, f.ok(t, http.MethodPost, "/key/generate", `{}`))
		for _, field := range []string{"team_id", "user_id", "expires", "key_alias"} {
			if m[field] != nil {
				t.Errorf("POST /key/generate {}: %s = %v, want null", field, m[field])
			}
		}
		if models, ok := m["models"].([]any); !ok || len(models) != 0 {
			t.Errorf("POST /key/generate {}: models = %v, want []", m["models"])
		}
		if md, ok := m["metadata"].(map[string]any); !ok || len(md) != 0 {
			t.Errorf("POST /key/generate {}: metadata = %v, want {}", m["metadata"])
		}
	})

	t.Run("accepted allow-lists", func(t *testing.T) {
		for _, body := range []string{
			`{"models": ["premium"]}`,                                // access group
			`{"models": ["openai/*", "anthropic/*"]}`,                // globs
			`{"models": ["openai/gpt-5"]}`,                           // served by a wildcard
			`{"models": ["hidden-claude", "fast"]}`,                  // global aliases, hidden too
			`{"models": ["all-team-models"], "team_id": "research"}`, // special value
			`{"models": ["*"]}`,
			`{"models": ["quick"], "team_id": "open", "aliases": {"quick": "claude"}}`,
			`{"models": ["claude", "embed"], "team_id": "open"}`, // a team that does not restrict
		} {
			if _, err := f.do(t, f.admin, http.MethodPost, "/key/generate", body); err != nil {
				t.Errorf("POST /key/generate %s: error = %v, want nil", body, err)
			}
		}
	})

	t.Run("custom key", func(t *testing.T) {
		resp := f.generate(t, `{"key": "sk-my-own-key-1234"}`)
		if resp.Key != "sk-my-own-key-1234" || resp.Token != gateway.HashKey("sk-my-own-key-1234") {
			t.Errorf("POST /key/generate custom key = %q, %q, want the key and its hash", resp.Key, resp.Token)
		}
		_, err := f.do(t, f.admin, http.MethodPost, "/key/generate", `{"key": "sk-my-own-key-1234"}`)
		var conflict *gateway.ConflictError
		if !errors.As(err, &conflict) {
			t.Fatalf("POST /key/generate duplicate key: error = %v, want *gateway.ConflictError", err)
		}
		if strings.Contains(conflict.Error(), "sk-my-own-key-1234") {
			t.Errorf("conflict error %q reveals the key", conflict.Error())
		}
	})

	t.Run("two keys differ", func(t *testing.T) {
		a, b := f.generate(t, `{}`), f.generate(t, `{}`)
		if a.Key == b.Key {
			t.Errorf("two generated keys are both %q", a.Key)
		}
	})
}

func TestKeyGenerateRefused(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body, param string
		frags             []string
	}{
		{"unknown model", `{"models": ["gpt-4o", "gpt-5"]}`, "models", []string{`"gpt-5"`, "not a model group"}},
		{"lookup is case-sensitive", `{"models": ["GPT-4O"]}`, "models", []string{`"GPT-4O"`}},
		{"empty entry", `{"models": [""]}`, "models", []string{"empty entry"}},
		{"team alias of another team", `{"models": ["quick"]}`, "models", []string{`"quick"`}},
		{"alias cycle", `{"aliases": {"a": "b", "b": "a"}}`, "aliases", []string{"alias cycle", "a -> b -> a"}},
		{"alias cycle through a global alias", `{"aliases": {"gpt-4o-mini": "fast"}}`, "aliases", []string{"alias cycle", "fast", "gpt-4o-mini"}},
		{"dangling key alias", `{"aliases": {"x": "nowhere-model"}}`, "aliases", []string{`"x"`, "nowhere-model"}},
		{"models outside the team", `{"team_id": "research", "models": ["claude"]}`, "models", []string{`"claude"`, `team "research"`}},
		{"target of a team alias-only entry", `{"team_id": "research", "models": ["gpt-4o-mini"]}`, "models", []string{`"gpt-4o-mini"`}},
		{"team alias the team does not permit", `{"team_id": "research", "models": ["quick"]}`, "models", []string{`"quick"`}},
		{"missing team", `{"team_id": "ghost"}`, "team_id", []string{`"ghost"`, "no such team"}},
		{"missing user", `{"user_id": "ghost"}`, "user_id", []string{`"ghost"`, "no such user"}},
		{"bad duration", `{"duration": "30x"}`, "duration", []string{`"30x"`}},
		{"zero duration", `{"duration": "0d"}`, "duration", []string{`"0d"`}},
		{"metadata array", `{"metadata": [1, 2]}`, "metadata", []string{"JSON object", "an array"}},
		{"metadata string", `{"metadata": "x"}`, "metadata", []string{"JSON object", "a string"}},
		{"metadata number out of range", `{"metadata": {"a": [1e400]}}`, "metadata", []string{"out of range"}},
		{"null body", `null`, "", []string{"JSON object"}},
		{"custom key without sk-", `{"key": "abcdefghijklmnop"}`, "key", []string{`"sk-"`}},
		{"custom key too short", `{"key": "sk-abc"}`, "key", []string{"at least"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.do(t, f.admin, http.MethodPost, "/key/generate", tc.body)
			wantBadRequest(t, "POST /key/generate "+tc.body, err, tc.param, tc.frags...)
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed after a refused write:\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func TestKeyInfo(t *testing.T) {
	f := newFixture(t)
	k1 := f.generate(t, `{"team_id": "research", "user_id": "alice", "models": ["gpt-4o"], "key_alias": "one"}`)
	k2 := f.generate(t, `{"user_id": "bob"}`)
	p1, err := f.store.PrincipalByKeyHash(t.Context(), k1.Token)
	if err != nil {
		t.Fatalf("PrincipalByKeyHash() error = %v", err)
	}
	tests := []struct {
		name      string
		p         *gateway.Principal
		target    string
		wantToken string
	}{
		{"by plaintext", f.admin, "/key/info?key=" + url.QueryEscape(k1.Key), k1.Token},
		{"by hash", f.admin, "/key/info?key=" + k2.Token, k2.Token},
		{"own key, no parameter", p1, "/key/info", k1.Token},
		{"own key, empty parameter", p1, "/key/info?key=", k1.Token},
		{"master key itself", f.admin, "/key/info", f.admin.Key.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := f.do(t, tc.p, http.MethodGet, tc.target, "")
			if err != nil {
				t.Fatalf("GET %s: error = %v", tc.target, err)
			}
			m := object(t, b)
			hasFields(t, "GET /key/info", m, "key", "info")
			resp := into[KeyInfoResponse](t, b)
			if resp.Key != tc.wantToken || resp.Info.Token != tc.wantToken {
				t.Errorf("GET %s = key %q, token %q, want %q", tc.target, resp.Key, resp.Info.Token, tc.wantToken)
			}
			for _, plain := range []string{k1.Key, k2.Key} {
				if strings.Contains(string(b), plain) {
					t.Errorf("GET %s answer %s holds a plaintext key", tc.target, b)
				}
			}
		})
	}
	t.Run("fields", func(t *testing.T) {
		info := object(t, f.ok(t, http.MethodGet, "/key/info?key="+k1.Token, ""))["info"].(map[string]any)
		hasFields(t, "GET /key/info info", info, "token", "key_name", "key_alias", "models", "aliases",
			"team_id", "user_id", "metadata", "blocked", "expires", "created_at")
		if info["key_alias"] != "one" || info["team_id"] != "research" || info["key_name"] != gateway.Redact(k1.Key) {
			t.Errorf("GET /key/info info = %v, want alias one, team research, key_name %s", info, gateway.Redact(k1.Key))
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodGet, "/key/info?key=sk-unknown-key-abcd", "")
		wantNotFound(t, "GET /key/info unknown", err, "key")
		if strings.Contains(err.Error(), "sk-unknown-key-abcd") {
			t.Errorf("error %q reveals the key", err)
		}
	})
}

// TestKeyInfoSelfPolicy runs Self through the real policy: an ordinary key
// may read its own /key/info and nothing else.
func TestKeyInfoSelfPolicy(t *testing.T) {
	f := newFixture(t)
	k1 := f.generate(t, `{"user_id": "alice"}`)
	k2 := f.generate(t, `{"user_id": "bob"}`)
	p1, err := f.store.PrincipalByKeyHash(t.Context(), k1.Token)
	if err != nil {
		t.Fatalf("PrincipalByKeyHash() error = %v", err)
	}
	tests := []struct {
		name, method, target string
		p                    *gateway.Principal
		want                 bool
	}{
		{"own key implicitly", http.MethodGet, "/key/info", p1, true},
		{"own key by plaintext", http.MethodGet, "/key/info?key=" + url.QueryEscape(k1.Key), p1, true},
		{"own key by hash", http.MethodGet, "/key/info?key=" + k1.Token, p1, true},
		{"another key by plaintext", http.MethodGet, "/key/info?key=" + url.QueryEscape(k2.Key), p1, false},
		{"another key by hash", http.MethodGet, "/key/info?key=" + k2.Token, p1, false},
		{"key list", http.MethodGet, "/key/list", p1, false},
		{"key generate", http.MethodPost, "/key/generate", p1, false},
		{"admin reads any key", http.MethodGet, "/key/info?key=" + k2.Token, f.admin, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, _, _ := strings.Cut(tc.target, "?")
			e := f.endpoint(t, tc.method, path)
			r := request(t, tc.method, tc.target, "")
			self := e.Self != nil && e.Self(tc.p, r)
			d, err := f.authz.Decide(t.Context(), &gateway.Input{
				Request:   gateway.RequestInfo{Route: gateway.RouteAdmin, Operation: e.Operation, Method: tc.method, Path: path, Self: self},
				Principal: tc.p,
				Now:       testNow,
			})
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if d.Allow != tc.want {
				t.Errorf("%s %s as key %s: allow = %v (self %v), want %v", tc.method, tc.target, tc.p.Key.Display, d.Allow, self, tc.want)
			}
		})
	}
}

func TestKeyList(t *testing.T) {
	f := newFixture(t)
	var all []GenerateKeyResponse
	for _, body := range []string{
		`{"team_id": "research", "user_id": "alice", "key_alias": "a1"}`,
		`{"team_id": "research", "user_id": "alice"}`,
		`{"team_id": "research", "user_id": "bob"}`,
		`{"team_id": "open", "user_id": "bob"}`,
		`{"team_id": "open", "user_id": "bob"}`,
		`{}`,
	} {
		all = append(all, f.generate(t, body))
	}
	tokens := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i].Token)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		query string
		// want is the page's keys; nil compares only their number.
		want                               []string
		wantLen, wantTotal, wantPages, cur int
	}{
		{"", tokens(0, 1, 2, 3, 4, 5), 6, 6, 1, 1},
		{"?team_id=research", tokens(0, 1, 2), 3, 3, 1, 1},
		{"?user_id=bob", tokens(2, 3, 4), 3, 3, 1, 1},
		{"?team_id=open&user_id=bob", tokens(3, 4), 2, 2, 1, 1},
		{"?team_id=open&user_id=alice", nil, 0, 0, 0, 1},
		{"?key_alias=a1", tokens(0), 1, 1, 1, 1},
		{"?size=4&page=2", nil, 2, 6, 2, 2},
		{"?size=4&page=3", nil, 0, 6, 2, 3},
		{"?team_id=nobody", nil, 0, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			b := f.ok(t, http.MethodGet, "/key/list"+tc.query, "")
			hasFields(t, "GET /key/list", object(t, b), "keys", "total_count", "current_page", "total_pages")
			resp := into[KeyListResponse](t, b)
			if resp.TotalCount != tc.wantTotal || resp.TotalPages != tc.wantPages || resp.CurrentPage != tc.cur {
				t.Errorf("GET /key/list%s = total %d, pages %d, page %d, want %d, %d, %d",
					tc.query, resp.TotalCount, resp.TotalPages, resp.CurrentPage, tc.wantTotal, tc.wantPages, tc.cur)
			}
			var got []string
			for _, k := range resp.Keys {
				s, ok := k.(string)
				if !ok || !isKeyHash(s) {
					t.Errorf("GET /key/list%s: key %v is not a hash", tc.query, k)
				}
				got = append(got, s)
			}
			slices.Sort(got)
			if len(got) != tc.wantLen {
				t.Errorf("GET /key/list%s: %d keys, want %d", tc.query, len(got), tc.wantLen)
			}
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("GET /key/list%s keys = %v, want %v", tc.query, got, tc.want)
			}
			for _, k := range all {
				if strings.Contains(string(b), k.Key) {
					t.Errorf("GET /key/list%s answer holds a plaintext key", tc.query)
				}
			}
		})
	}
	t.Run("pages cover every key once", func(t *testing.T) {
		var got []string
		for page := 1; page <= 3; page++ {
			resp := into[KeyListResponse](t, f.ok(t, http.MethodGet, fmt.Sprintf("/key/list?size=2&page=%d", page), ""))
			for _, k := range resp.Keys {
				got = append(got, k.(string))
			}
		}
		slices.Sort(got)
		if want := tokens(0, 1, 2, 3, 4, 5); !slices.Equal(got, want) {
			t.Errorf("GET /key/list pages of 2 = %v, want %v", got, want)
		}
	})
	t.Run("full objects", func(t *testing.T) {
		b := f.ok(t, http.MethodGet, "/key/list?team_id=research&return_full_object=true", "")
		m := object(t, b)
		keys := m["keys"].([]any)
		if len(keys) != 3 {
			t.Fatalf("GET /key/list full: %d keys, want 3", len(keys))
		}
		for _, k := range keys {
			obj, ok := k.(map[string]any)
			if !ok {
				t.Fatalf("GET /key/list full: key %v is not an object", k)
			}
			hasFields(t, "GET /key/list full", obj, "token", "key_name", "team_id")
			if obj["team_id"] != "research" {
				t.Errorf("GET /key/list full: team_id = %v, want research", obj["team_id"])
			}
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, tc := range []struct{ query, param string }{
			{"?size=0", "size"}, {"?size=101", "size"}, {"?page=x", "page"}, {"?page=0", "page"},
			{"?return_full_object=maybe", "return_full_object"},
		} {
			_, err := f.do(t, f.admin, http.MethodGet, "/key/list"+tc.query, "")
			wantBadRequest(t, "GET /key/list"+tc.query, err, tc.param)
		}
	})
}

func TestKeyUpdate(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"team_id": "research", "user_id": "alice", "models": ["gpt-4o"], "duration": "1d", "metadata": {"a": 1}}`)

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, body, param string
			frags             []string
		}{
			{"unknown model", `{"models": ["gpt-5"]}`, "models", []string{`"gpt-5"`}},
			{"outside the team", `{"models": ["claude"]}`, "models", []string{`"claude"`, `team "research"`}},
			{"alias cycle", `{"aliases": {"x": "y", "y": "x"}}`, "aliases", []string{"alias cycle", "x -> y -> x"}},
			{"missing team", `{"team_id": "ghost"}`, "team_id", []string{`"ghost"`}},
			{"missing user", `{"user_id": "ghost"}`, "user_id", []string{`"ghost"`}},
			{"bad duration", `{"duration": "soon"}`, "duration", []string{`"soon"`}},
			{"metadata not an object", `{"metadata": 5}`, "metadata", []string{"JSON object"}},
			{"models wrong type", `{"models": {"a": 1}}`, "models", []string{"array of strings"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := f.snapshot(t)
				body := `{"key": "` + k.Key + `", ` + strings.TrimPrefix(tc.body, "{")
				_, err := f.do(t, f.admin, http.MethodPost, "/key/update", body)
				wantBadRequest(t, "POST /key/update "+tc.body, err, tc.param, tc.frags...)
				if after := f.snapshot(t); after != before {
					t.Errorf("store changed after a refused update:\n%s\nwant\n%s", after, before)
				}
			})
		}
	})

	t.Run("missing key", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/key/update", `{"models": []}`)
		wantBadRequest(t, "POST /key/update without key", err, "key")
		_, err = f.do(t, f.admin, http.MethodPost, "/key/update", `{"key": "sk-no-such-key-123"}`)
		wantNotFound(t, "POST /key/update unknown key", err, "key")
	})

	t.Run("applied", func(t *testing.T) {
		body := `{"key": "` + k.Key + `", "models": ["fast"], "key_alias": "renamed", "duration": "1h", "metadata": {"b": "2"}}`
		b := f.ok(t, http.MethodPost, "/key/update", body)
		if strings.Contains(string(b), k.Key) {
			t.Errorf("POST /key/update answer %s holds the plaintext key", b)
		}
		resp := into[KeyWriteResponse](t, b)
		if resp.Key != k.Token || resp.Token != k.Token {
			t.Errorf("POST /key/update key, token = %q, %q, want the hash %q", resp.Key, resp.Token, k.Token)
		}
		stored, err := f.store.GetKey(t.Context(), k.Token)
		if err != nil {
			t.Fatalf("GetKey() error = %v", err)
		}
		if !slices.Equal(stored.Models, []string{"fast"}) || stored.Alias != "renamed" || stored.Metadata["b"] != "2" ||
			!stored.ExpiresAt.Equal(testNow.Add(time.Hour)) || stored.TeamID != "research" || stored.UserID != "alice" {
			t.Errorf("stored key after update = %+v, want models [fast], alias renamed, metadata b=2, expiry +1h, team and user kept", stored)
		}
		if _, ok := stored.Metadata["a"]; ok {
			t.Errorf("stored metadata = %v, want it replaced", stored.Metadata)
		}
	})

	t.Run("by hash, move team, clear expiry", func(t *testing.T) {
		body := `{"key": "` + k.Token + `", "team_id": "open", "models": ["claude"], "duration": "-1"}`
		resp := into[KeyWriteResponse](t, f.ok(t, http.MethodPost, "/key/update", body))
		if resp.TeamID == nil || *resp.TeamID != "open" || resp.Expires != nil || !slices.Equal(resp.Models, []string{"claude"}) {
			t.Errorf("POST /key/update = team %v, expires %v, models %v, want open, null, [claude]", resp.TeamID, resp.Expires, resp.Models)
		}
	})

	t.Run("leave the team", func(t *testing.T) {
		resp := into[KeyWriteResponse](t, f.ok(t, http.MethodPost, "/key/update", `{"key": "`+k.Token+`", "team_id": ""}`))
		if resp.TeamID != nil {
			t.Errorf("POST /key/update team_id \"\" = team %v, want null", resp.TeamID)
		}
	})
}

func TestKeyBlock(t *testing.T) {
	f := newFixture(t)
	k := f.generate(t, `{"team_id": "research"}`)
	tests := []struct {
		path, key string
		want      bool
	}{
		{"/key/block", k.Key, true},
		{"/key/block", k.Token, true}, // idempotent
		{"/key/unblock", k.Token, false},
		{"/key/block", k.Token, true},
		{"/key/unblock", k.Key, false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			b := f.ok(t, http.MethodPost, tc.path, `{"key": "`+tc.key+`"}`)
			resp := into[KeyWriteResponse](t, b)
			if resp.Blocked != tc.want || resp.Key != k.Token {
				t.Errorf("POST %s = blocked %v, key %q, want %v, %q", tc.path, resp.Blocked, resp.Key, tc.want, k.Token)
			}
			p, err := f.store.PrincipalByKeyHash(t.Context(), k.Token)
			if err != nil {
				t.Fatalf("PrincipalByKeyHash() error = %v", err)
			}
			if p.Key.Blocked != tc.want {
				t.Errorf("after POST %s: stored blocked = %v, want %v", tc.path, p.Key.Blocked, tc.want)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/key/block", `{}`)
		wantBadRequest(t, "POST /key/block {}", err, "key")
		_, err = f.do(t, f.admin, http.MethodPost, "/key/unblock", `{"key": "sk-not-a-real-key"}`)
		wantNotFound(t, "POST /key/unblock unknown", err, "key")
	})
}

func TestKeyDelete(t *testing.T) {
	f := newFixture(t)
	k1, k2, k3 := f.generate(t, `{}`), f.generate(t, `{}`), f.generate(t, `{}`)

	t.Run("unknown key deletes nothing", func(t *testing.T) {
		before := f.snapshot(t)
		_, err := f.do(t, f.admin, http.MethodPost, "/key/delete", `{"keys": ["`+k3.Key+`", "sk-unknown-key-000"]}`)
		wantNotFound(t, "POST /key/delete with an unknown key", err, "key")
		if after := f.snapshot(t); after != before {
			t.Errorf("store changed after a refused delete")
		}
	})
	t.Run("empty list", func(t *testing.T) {
		_, err := f.do(t, f.admin, http.MethodPost, "/key/delete", `{"keys": []}`)
		wantBadRequest(t, "POST /key/delete []", err, "keys")
	})
	t.Run("plaintext and hash", func(t *testing.T) {
		b := f.ok(t, http.MethodPost, "/key/delete", `{"keys": ["`+k1.Key+`", "`+k2.Token+`"]}`)
		resp := into[DeleteKeysResponse](t, b)
		got := slices.Sorted(slices.Values(resp.DeletedKeys))
		want := slices.Sorted(slices.Values([]string{k1.Token, k2.Token}))
		if !slices.Equal(got, want) {
			t.Errorf("POST /key/delete deleted_keys = %v, want %v", got, want)
		}
		if strings.Contains(string(b), k1.Key) {
			t.Errorf("POST /key/delete answer %s holds a plaintext key", b)
		}
		for _, tok := range want {
			if _, err := f.store.GetKey(t.Context(), tok); !errors.Is(err, gateway.ErrNotFound) {
				t.Errorf("GetKey(%s) after delete: error = %v, want ErrNotFound", tok, err)
			}
		}
		if _, err := f.store.GetKey(t.Context(), k3.Token); err != nil {
			t.Errorf("GetKey(k3) after deleting others: error = %v, want nil", err)
		}
	})
}
