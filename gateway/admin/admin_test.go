package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/catalog"
	"github.com/regate/gateway/rego"
	"github.com/regate/gateway/store/memory"
)

// providerSecret is a provider api key that must never appear in an answer.
const providerSecret = "sk-provider-secret-do-not-show"

// testNow is the fixed clock of every fixture.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testDeployments() []gateway.Deployment {
	return []gateway.Deployment{
		{ID: "0", ModelName: "gpt-4o", ProviderModel: "openai/gpt-4o", Provider: "openai",
			APIBase: "https://api.openai.com/v1", APIKey: providerSecret, AccessGroups: []string{"default-models"}},
		{ID: "1", ModelName: "gpt-4o-mini", ProviderModel: "openai/gpt-4o-mini", Provider: "openai",
			APIKey: providerSecret, AccessGroups: []string{"default-models"}},
		{ID: "2", ModelName: "claude", ProviderModel: "anthropic/claude-3", Provider: "anthropic",
			APIKey: providerSecret, AccessGroups: []string{"premium"}},
		{ID: "3", ModelName: "openai/*", ProviderModel: "openai/*", Provider: "openai",
			APIKey: providerSecret, AccessGroups: []string{"default-models"}},
		{ID: "4", ModelName: "embed", ProviderModel: "mock/embed", Provider: "mock"},
	}
}

func testAliases() []catalog.Alias {
	return []catalog.Alias{
		{Name: "fast", Target: "gpt-4o-mini"},
		{Name: "hidden-claude", Target: "claude", Hidden: true},
		// A configuration problem that must not block unrelated writes.
		{Name: "dangling", Target: "nowhere"},
	}
}

// fixture is an API over the real memory store, policy engine and catalog.
type fixture struct {
	api   *API
	store *memory.Store
	authz *rego.Engine
	cat   *catalog.Catalog
	admin *gateway.Principal
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	cat, err := catalog.New(testDeployments(), testAliases())
	if err != nil {
		tb.Fatalf("catalog.New() error = %v", err)
	}
	eng, err := rego.New(rego.Config{})
	if err != nil {
		tb.Fatalf("rego.New() error = %v", err)
	}
	st := memory.New()
	err = st.Upsert(tb.Context(),
		[]gateway.Team{
			{ID: "research", Alias: "Research", Models: []string{"gpt-4o", "fast"},
				ModelAliases: map[string]string{"quick": "gpt-4o-mini"}, CreatedAt: testNow},
			{ID: "open", CreatedAt: testNow},
		},
		[]gateway.User{
			{ID: "alice", Email: "alice@example.com", Role: gateway.RoleInternalUser, CreatedAt: testNow},
			{ID: "bob", Role: gateway.RoleInternalUser, CreatedAt: testNow},
		},
		nil)
	if err != nil {
		tb.Fatalf("Upsert() error = %v", err)
	}
	api, err := New(Config{Store: st, Catalog: cat, Authorizer: eng, Now: func() time.Time { return testNow }})
	if err != nil {
		tb.Fatalf("New() error = %v", err)
	}
	return &fixture{
		api:   api,
		store: st,
		authz: eng,
		cat:   cat,
		admin: &gateway.Principal{Key: &gateway.Key{ID: gateway.HashKey("sk-master-key"), Display: "sk-...-key", Role: gateway.RoleAdmin}},
	}
}

// endpoint finds the endpoint serving method and path.
func (f *fixture) endpoint(tb testing.TB, method, path string) Endpoint {
	tb.Helper()
	for _, e := range f.api.Endpoints() {
		if e.Method == method && e.Path == path {
			return e
		}
	}
	tb.Fatalf("no endpoint %s %s", method, path)
	return Endpoint{}
}

// request builds the request for target ("/key/info?key=...") with body.
func request(tb testing.TB, method, target, body string) *http.Request {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequestWithContext(tb.Context(), method, target, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// do calls the endpoint for method and target as p, and returns its result
// marshalled as the edge would write it.
func (f *fixture) do(tb testing.TB, p *gateway.Principal, method, target, body string) ([]byte, error) {
	tb.Helper()
	path, _, _ := strings.Cut(target, "?")
	e := f.endpoint(tb, method, path)
	res, err := e.Handle(tb.Context(), p, request(tb, method, target, body))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		tb.Fatalf("%s %s: marshal result: %v", method, target, err)
	}
	return b, nil
}

// ok is do as the admin, failing the test on an error.
func (f *fixture) ok(tb testing.TB, method, target, body string) []byte {
	tb.Helper()
	b, err := f.do(tb, f.admin, method, target, body)
	if err != nil {
		tb.Fatalf("%s %s %s: error = %v", method, target, body, err)
	}
	return b
}

// object decodes a JSON object.
func object(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// into decodes b into a value of type T.
func into[T any](tb testing.TB, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// mustJSON marshals v.
func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// hasFields fails unless m has every field.
func hasFields(tb testing.TB, what string, m map[string]any, fields ...string) {
	tb.Helper()
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			tb.Errorf("%s: field %q missing in %v", what, f, m)
		}
	}
}

// generate creates a key through /key/generate and returns the response.
func (f *fixture) generate(tb testing.TB, body string) GenerateKeyResponse {
	tb.Helper()
	return into[GenerateKeyResponse](tb, f.ok(tb, http.MethodPost, "/key/generate", body))
}

// snapshot renders everything the store holds, for "unchanged" checks.
func (f *fixture) snapshot(tb testing.TB) string {
	tb.Helper()
	ctx := tb.Context()
	keys, err := f.store.ListKeys(ctx, gateway.KeyFilter{Size: 1000})
	if err != nil {
		tb.Fatalf("ListKeys() error = %v", err)
	}
	teams, err := f.store.ListTeams(ctx)
	if err != nil {
		tb.Fatalf("ListTeams() error = %v", err)
	}
	users, err := f.store.ListUsers(ctx)
	if err != nil {
		tb.Fatalf("ListUsers() error = %v", err)
	}
	keys, teams, users = slices.Clone(keys), slices.Clone(teams), slices.Clone(users)
	slices.SortFunc(keys, func(a, b *gateway.Key) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(teams, func(a, b *gateway.Team) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(users, func(a, b *gateway.User) int { return strings.Compare(a.ID, b.ID) })
	return mustJSON(tb, []any{keys, teams, users})
}

// wantBadRequest fails unless err is a 400 for param whose message holds
// every fragment.
func wantBadRequest(tb testing.TB, what string, err error, param string, fragments ...string) {
	tb.Helper()
	var bad *gateway.BadRequestError
	if !errors.As(err, &bad) {
		tb.Fatalf("%s: error = %v (%T), want *gateway.BadRequestError", what, err, err)
	}
	if bad.Param != param {
		tb.Errorf("%s: param = %q, want %q (message %q)", what, bad.Param, param, bad.Message)
	}
	for _, frag := range fragments {
		if !strings.Contains(bad.Message, frag) {
			tb.Errorf("%s: message = %q, want it to contain %q", what, bad.Message, frag)
		}
	}
}

// wantNotFound fails unless err is a *gateway.NotFoundError of kind.
func wantNotFound(tb testing.TB, what string, err error, kind string) {
	tb.Helper()
	var nf *gateway.NotFoundError
	if !errors.As(err, &nf) {
		tb.Fatalf("%s: error = %v (%T), want *gateway.NotFoundError", what, err, err)
	}
	if nf.Kind != kind {
		tb.Errorf("%s: kind = %q, want %q", what, nf.Kind, kind)
	}
}

func TestNewRequiresPorts(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Catalog: f.cat, Authorizer: f.authz}, "Store"},
		{"no catalog", Config{Store: f.store, Authorizer: f.authz}, "Catalog"},
		{"no authorizer", Config{Store: f.store, Catalog: f.cat}, "Authorizer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%s) error = %v, want one naming %s", tc.name, err, tc.want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	f := newFixture(t)
	want := map[string]string{
		"POST /key/generate": OpKeyGenerate,
		"GET /key/info":      OpKeyInfo,
		"POST /key/update":   OpKeyUpdate,
		"POST /key/delete":   OpKeyDelete,
		"GET /key/list":      OpKeyList,
		"POST /key/block":    OpKeyBlock,
		"POST /key/unblock":  OpKeyUnblock,
		"POST /team/new":     OpTeamNew,
		"GET /team/info":     OpTeamInfo,
		"POST /team/update":  OpTeamUpdate,
		"POST /team/delete":  OpTeamDelete,
		"GET /team/list":     OpTeamList,
		"POST /team/block":   OpTeamBlock,
		"POST /team/unblock": OpTeamUnblock,
		"POST /user/new":     OpUserNew,
		"GET /user/info":     OpUserInfo,
		"POST /user/update":  OpUserUpdate,
		"POST /user/delete":  OpUserDelete,
		"GET /user/list":     OpUserList,
		"GET /model/info":    OpModelInfo,
		"GET /v1/model/info": OpModelInfo,

		"GET /global/spend/report": OpSpendReport,
	}
	got := make(map[string]string)
	for _, e := range f.api.Endpoints() {
		id := e.Method + " " + e.Path
		if _, dup := got[id]; dup {
			t.Errorf("Endpoints() lists %s twice", id)
		}
		got[id] = e.Operation
		if e.Handle == nil {
			t.Errorf("Endpoints() %s has no Handle", id)
		}
		if (e.Self != nil) != (e.Operation == OpKeyInfo) {
			t.Errorf("Endpoints() %s: Self set = %v, want %v", id, e.Self != nil, e.Operation == OpKeyInfo)
		}
	}
	if mustJSON(t, got) != mustJSON(t, want) {
		t.Errorf("Endpoints() = %v, want %v", got, want)
	}
}

func TestDecodeBody(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body, param, frag string
	}{
		{"empty body", "", "", "must be a JSON object"},
		{"array body", `[1]`, "", "must be a JSON object"},
		{"syntax error", `{"models": [}`, "", "not valid JSON"},
		{"truncated", `{"models": [`, "", "not valid JSON"},
		{"two objects", `{} {}`, "", "exactly one JSON object"},
		{"models not a list", `{"models": "gpt-4o"}`, "models", "want an array of strings"},
		{"aliases not an object", `{"aliases": ["a"]}`, "aliases", "want an object of strings"},
		{"blocked not a bool", `{"blocked": "yes"}`, "blocked", "want a boolean"},
		{"custom key too short", `{"key": "sk-short"}`, "key", "printable ASCII"},
		{"custom key with a space", `{"key": "sk-has a space-1234"}`, "key", "printable ASCII"},
		{"custom key not ASCII", "{\"key\": \"sk-\xea\xad00000000\"}", "key", "printable ASCII"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			_, err := f.do(t, f.admin, http.MethodPost, "/key/generate", tc.body)
			wantBadRequest(t, "POST /key/generate "+tc.body, err, tc.param, tc.frag)
			if after := f.snapshot(t); after != before {
				t.Errorf("store changed after a refused write:\n%s\nwant\n%s", after, before)
			}
		})
	}
	t.Run("unknown fields accepted", func(t *testing.T) {
		b := f.ok(t, http.MethodPost, "/key/generate", `{"max_budget": 10, "tpm_limit": 5, "models": ["gpt-4o"]}`)
		if m := object(t, b); m["models"].([]any)[0] != "gpt-4o" {
			t.Errorf("POST /key/generate models = %v, want [gpt-4o]", m["models"])
		}
	})
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in        string
		want      time.Duration
		wantNever bool
		wantErr   bool
	}{
		{"30s", 30 * time.Second, false, false},
		{"10m", 10 * time.Minute, false, false},
		{"1h", time.Hour, false, false},
		{"30d", 30 * 24 * time.Hour, false, false},
		{"1h30m", 90 * time.Minute, false, false},
		{"-1", 0, true, false},
		{"0s", 0, false, true},
		{"-5m", 0, false, true},
		{"d", 0, false, true},
		{"30", 0, false, true},
		{"thirty days", 0, false, true},
		{"1y", 0, false, true},
		{"-2d", 0, false, true},
		{"99999999d", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, never, err := parseDuration(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseDuration(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want || never != tc.wantNever {
				t.Errorf("parseDuration(%q) = %v, %v, want %v, %v", tc.in, got, never, tc.want, tc.wantNever)
			}
			if err != nil {
				wantBadRequest(t, "parseDuration", err, "duration", tc.in)
			}
		})
	}
}

func TestNewKeyAndID(t *testing.T) {
	// A deterministic source: the same bytes give the same key, and bytes
	// outside the uniform range are skipped rather than biasing the result.
	f := newFixture(t)
	src := bytes.Repeat([]byte{255, 0, 61, 62, 247}, 100)
	api, err := New(Config{Store: f.store, Catalog: f.cat, Authorizer: f.authz, Rand: bytes.NewReader(src)})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	k, err := api.newKey()
	if err != nil {
		t.Fatalf("newKey() error = %v", err)
	}
	// 255 is rejected; 0 → '0', 61 → 'z', 62 → '0', 247 → 247%62=61 → 'z'.
	want := "sk-" + strings.Repeat("0z0z", 8)
	if k != want {
		t.Errorf("newKey() = %q, want %q", k, want)
	}
	id, err := api.newID()
	if err != nil {
		t.Fatalf("newID() error = %v", err)
	}
	if len(id) != 36 || id[14] != '4' || strings.Count(id, "-") != 4 {
		t.Errorf("newID() = %q, want a version 4 UUID", id)
	}

	short, err := New(Config{Store: f.store, Catalog: f.cat, Authorizer: f.authz, Rand: bytes.NewReader(nil)})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	if _, err := short.newKey(); err == nil {
		t.Errorf("newKey() with an empty source: error = nil, want one")
	}
}
