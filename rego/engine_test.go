package rego

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/regate/gateway/gateway"
)

// newEngine builds an engine over bundles (the default alone when none).
func newEngine(tb testing.TB, bundles ...fs.FS) *Engine {
	tb.Helper()
	e, err := New(Config{Bundles: bundles})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

// newUncheckedEngine is newEngine without the load-time probe checks, for
// tests of how malformed policies fail closed at run time.
func newUncheckedEngine(tb testing.TB, bundles ...fs.FS) *Engine {
	tb.Helper()
	e, err := New(Config{Bundles: bundles, skipCheck: true})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

// bundleFS is an in-memory bundle: file name to content.
func bundleFS(files map[string]string) fs.FS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// principal builds a principal; team and user are left out when their
// models are nil.
func principal(keyModels, teamModels, userModels []string) *gateway.Principal {
	p := &gateway.Principal{Key: &gateway.Key{ID: gateway.HashKey("sk-test"), Alias: "test", Models: keyModels, UserID: "alice"}}
	if teamModels != nil {
		p.Team = &gateway.Team{ID: "research", Models: teamModels}
		p.Key.TeamID = "research"
	}
	if userModels != nil {
		p.User = &gateway.User{ID: "alice", Role: gateway.RoleInternalUser, Models: userModels}
	}
	return p
}

// resolution is a found model whose chain is names.
func resolution(requested string, names []string, groups ...string) *gateway.Resolution {
	r := &gateway.Resolution{Requested: requested, Found: true, Names: names, AccessGroups: groups}
	for i, n := range names {
		kind := gateway.LinkAlias
		if i == len(names)-1 {
			kind = gateway.LinkModelGroup
		}
		r.Chain = append(r.Chain, gateway.ChainLink{Name: n, Kind: kind})
	}
	if len(names) > 0 {
		r.Resolved = names[len(names)-1]
	}
	return r
}

func request(route string) gateway.RequestInfo {
	return gateway.RequestInfo{ID: "req-1", Route: route, Operation: "op", Method: "POST", Path: "/x"}
}

func notFound(model string) gateway.Decision {
	return gateway.Decision{
		Status:  404,
		Code:    gateway.CodeModelNotFound,
		Message: "The model `" + model + "` does not exist or you do not have access to it.",
	}
}

// outcome drops the reasons, which are for logs.
func outcome(d gateway.Decision) gateway.Decision {
	d.Reasons = nil
	return d
}

var allowed = gateway.Decision{Allow: true, Status: 200}

func TestDecide(t *testing.T) {
	e := newEngine(t)
	agentx := resolution("AgentX-LLM", []string{"AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"})
	qwen := resolution("Qwen/Qwen3-Coder-480B-A35B-Instruct", []string{"Qwen/Qwen3-Coder-480B-A35B-Instruct", "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16"})
	gpt4 := resolution("openai/gpt-4", []string{"openai/gpt-4"}, "default-models")
	gpt4.Wildcard = "openai/*"
	o1 := resolution("openai/o1-mini", []string{"openai/o1-mini"}, "restricted-models")
	o1.Wildcard = "openai/o1-*"
	unknown := &gateway.Resolution{Requested: "gpt-5", Names: []string{"gpt-5"}}
	blocked := principal(nil, []string{}, nil)
	blocked.Team.Blocked = true
	admin := principal(nil, nil, nil)
	admin.Key.Role = gateway.RoleAdmin
	selfInfo := request(gateway.RouteAdmin)
	selfInfo.Operation, selfInfo.Self = "key.info", true
	otherInfo := request(gateway.RouteAdmin)
	otherInfo.Operation = "key.info"

	tests := []struct {
		name string
		in   gateway.Input
		want gateway.Decision
	}{
		{"seed 2: key and team name only the alias target",
			gateway.Input{Request: request(gateway.RouteInference), Model: agentx,
				Principal: principal([]string{"openrouter/qwen/qwen3.5-flash-02-23"}, []string{"openrouter/qwen/qwen3.5-flash-02-23"}, nil)},
			allowed},
		{"seed 2: key names another target",
			gateway.Input{Request: request(gateway.RouteInference), Model: agentx,
				Principal: principal([]string{"openrouter/qwen/qwen3-max"}, nil, nil)},
			notFound("AgentX-LLM")},
		{"seed 3: key names only the alias",
			gateway.Input{Request: request(gateway.RouteInference), Model: qwen,
				Principal: principal([]string{"Qwen/Qwen3-Coder-480B-A35B-Instruct"}, nil, nil)},
			allowed},
		{"seed 4: models.get for an ordinary key",
			gateway.Input{Request: request(gateway.RouteModelsGet), Model: qwen,
				Principal: principal([]string{"Qwen/*"}, nil, nil)},
			allowed},
		{"seed 4: models.get of a forbidden model",
			gateway.Input{Request: request(gateway.RouteModelsGet), Model: qwen,
				Principal: principal([]string{"gpt-4o"}, nil, nil)},
			notFound("Qwen/Qwen3-Coder-480B-A35B-Instruct")},
		{"seed 5: gpt-4 through default-models",
			gateway.Input{Request: request(gateway.RouteInference), Model: gpt4,
				Principal: principal([]string{"default-models"}, nil, nil)},
			allowed},
		{"seed 5: o1-mini is restricted",
			gateway.Input{Request: request(gateway.RouteInference), Model: o1,
				Principal: principal([]string{"default-models"}, nil, nil)},
			notFound("openai/o1-mini")},
		{"user list applies to team keys",
			gateway.Input{Request: request(gateway.RouteInference), Model: gpt4,
				Principal: principal(nil, []string{"default-models"}, []string{"anthropic/*"})},
			notFound("openai/gpt-4")},
		{"unknown model looks like a forbidden one",
			gateway.Input{Request: request(gateway.RouteInference), Model: unknown, Principal: principal(nil, nil, nil)},
			notFound("gpt-5")},
		{"inference without a model",
			gateway.Input{Request: request(gateway.RouteInference), Principal: principal(nil, nil, nil)},
			notFound("")},
		{"no principal",
			gateway.Input{Request: request(gateway.RouteModelsList)},
			gateway.Decision{Status: 401, Code: "invalid_api_key", Message: "Authentication required."}},
		{"health without a principal",
			gateway.Input{Request: request(gateway.RouteHealth)},
			allowed},
		{"blocked team",
			gateway.Input{Request: request(gateway.RouteModelsList), Principal: blocked},
			gateway.Decision{Status: 403, Code: gateway.CodePermissionDenied, Message: "The team of this key is blocked."}},
		{"admin route, ordinary key",
			gateway.Input{Request: request(gateway.RouteAdmin), Principal: principal(nil, nil, nil)},
			gateway.Decision{Status: 403, Code: gateway.CodePermissionDenied, Message: "This route needs an admin key."}},
		{"admin route, master key",
			gateway.Input{Request: request(gateway.RouteAdmin), Principal: admin},
			allowed},
		{"key reads its own key info",
			gateway.Input{Request: selfInfo, Principal: principal(nil, nil, nil)},
			allowed},
		{"key reads another key's info",
			gateway.Input{Request: otherInfo, Principal: principal(nil, nil, nil)},
			gateway.Decision{Status: 403, Code: gateway.CodePermissionDenied, Message: "This route needs an admin key."}},
		{"expired key",
			gateway.Input{Request: request(gateway.RouteModelsList), Principal: func() *gateway.Principal {
				p := principal(nil, nil, nil)
				p.Key.ExpiresAt = testNow.Add(-time.Second)
				return p
			}()},
			gateway.Decision{Status: 401, Code: "invalid_api_key", Message: "The API key is blocked or expired."}},
		{"key expiring later",
			gateway.Input{Request: request(gateway.RouteModelsList), Principal: func() *gateway.Principal {
				p := principal(nil, nil, nil)
				p.Key.ExpiresAt = testNow.Add(time.Nanosecond)
				return p
			}()},
			allowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Now = testNow
			got, err := e.Decide(t.Context(), &in)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if !equalDecision(outcome(got), tc.want) {
				t.Errorf("Decide() = %+v, want %+v", outcome(got), tc.want)
			}
			if len(got.Reasons) == 0 {
				t.Errorf("Decide() reasons are empty, want at least one")
			}
		})
	}
}

func equalDecision(a, b gateway.Decision) bool {
	return a.Allow == b.Allow && a.Status == b.Status && a.Code == b.Code && a.Message == b.Message && slices.Equal(a.Reasons, b.Reasons)
}

// customBundle denies streaming, rooted beside the default bundle.
var customBundle = map[string]string{
	".manifest": `{"roots": ["gateway/custom"], "revision": "custom-7"}`,
	"custom.rego": `package gateway.custom

deny contains "streaming is disabled" if input.request.stream
deny contains "research keys need a cost center" if {
	input.team.id == "research"
	not input.key.metadata.cost_center
}
`,
}

func TestDecideCustomBundle(t *testing.T) {
	e := newEngine(t, bundleFS(customBundle))
	if got, want := e.Revision(), e.Bundles()[0].Revision+",custom-7"; got != want {
		t.Errorf("Revision() = %q, want %q", got, want)
	}
	if got := e.Bundles(); len(got) != 2 || got[0].Name != DefaultBundleName || got[1].Name != "bundle1" {
		t.Errorf("Bundles() = %+v, want default then bundle1", got)
	}
	gpt := resolution("gpt-4o", []string{"gpt-4o"})
	stream := request(gateway.RouteInference)
	stream.Stream = true
	withCostCenter := principal(nil, []string{}, nil)
	withCostCenter.Key.Metadata = map[string]any{"cost_center": "r&d"}
	denied := func(msg string) gateway.Decision {
		return gateway.Decision{Status: 403, Code: gateway.CodePolicyDenied, Message: msg}
	}
	tests := []struct {
		name string
		in   gateway.Input
		want gateway.Decision
	}{
		{"allowed when no rule fires", gateway.Input{Request: request(gateway.RouteInference), Model: gpt, Principal: principal(nil, nil, nil)}, allowed},
		{"streaming denied", gateway.Input{Request: stream, Model: gpt, Principal: principal(nil, nil, nil)}, denied("streaming is disabled")},
		{"messages sorted and joined", gateway.Input{Request: stream, Model: gpt, Principal: principal(nil, []string{}, nil)},
			denied("research keys need a cost center; streaming is disabled")},
		{"metadata reaches the policy", gateway.Input{Request: request(gateway.RouteModelsList), Principal: withCostCenter}, allowed},
		{"models.list is narrowed too", gateway.Input{Request: request(gateway.RouteModelsList), Principal: principal(nil, []string{}, nil)},
			denied("research keys need a cost center")},
		{"forbidden model stays 404", gateway.Input{Request: stream, Model: gpt, Principal: principal([]string{"claude"}, nil, nil)}, notFound("gpt-4o")},
		{"health is never narrowed", gateway.Input{Request: request(gateway.RouteHealth), Principal: principal(nil, []string{}, nil)}, allowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Now = testNow
			got, err := e.Decide(t.Context(), &in)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if !equalDecision(outcome(got), tc.want) {
				t.Errorf("Decide() = %+v, want %+v", outcome(got), tc.want)
			}
		})
	}
}

// candidates is a small catalog: exact groups, aliases and a wildcard-served
// model, as the catalog would list them.
func candidates() *gateway.CandidateList {
	return &gateway.CandidateList{Items: []gateway.Candidate{
		{ID: "gpt-4o", Names: []string{"gpt-4o", "openai/gpt-4o"}, AccessGroups: []string{"default-models"}},
		{ID: "gpt-4o-mini", Names: []string{"gpt-4o-mini", "openai/gpt-4o-mini"}, AccessGroups: []string{"default-models"}},
		{ID: "o1-mini", Names: []string{"o1-mini", "openai/o1-mini"}, AccessGroups: []string{"restricted-models"}},
		{ID: "claude", Names: []string{"claude", "anthropic/claude-sonnet-4"}},
		{ID: "AgentX-LLM", Names: []string{"AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"}},
		{ID: "fast", Names: []string{"fast", "gpt-4o-mini", "openai/gpt-4o-mini"}, AccessGroups: []string{"default-models"}},
	}}
}

var visibleCases = []struct {
	name                  string
	key, team, user, want []string
}{
	{name: "nothing restricts", want: []string{"AgentX-LLM", "claude", "fast", "gpt-4o", "gpt-4o-mini", "o1-mini"}},
	{name: "key access group", key: []string{"default-models"}, want: []string{"fast", "gpt-4o", "gpt-4o-mini"}},
	{name: "seed 1: user narrows a team key", key: []string{}, team: []string{"default-models"}, user: []string{"gpt-4o"}, want: []string{"gpt-4o"}},
	{name: "seed 1: layers intersect", key: []string{"gpt-4o-mini"}, team: []string{"gpt-4o"}, want: nil},
	{name: "alias listed through its target", key: []string{"openrouter/qwen/qwen3.5-flash-02-23"}, want: []string{"AgentX-LLM"}},
	{name: "glob", key: []string{"anthropic/*", "*-mini"}, want: []string{"claude", "fast", "gpt-4o-mini", "o1-mini"}},
	{name: "no-default-models on a personal key", user: []string{"no-default-models"}, want: nil},
	{name: "all-team-models", key: []string{"all-team-models"}, team: []string{"o1-mini", "claude"}, want: []string{"claude", "o1-mini"}},
}

func TestVisibleModels(t *testing.T) {
	e := newEngine(t)
	list := candidates()
	for _, tc := range visibleCases {
		t.Run(tc.name, func(t *testing.T) {
			in := &gateway.Input{Request: request(gateway.RouteModelsList), Principal: principal(tc.key, tc.team, tc.user), Candidates: list, Now: testNow}
			got, err := e.VisibleModels(t.Context(), in)
			if err != nil {
				t.Fatalf("VisibleModels() error = %v", err)
			}
			if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, tc.want) {
				t.Errorf("VisibleModels() = %v, want %v", ids, tc.want)
			}
		})
	}
}

// TestListedIffAllowed checks the core invariant (DESIGN §2) through the
// engine: a candidate is listed exactly when models.get and inference of
// it are allowed.
func TestListedIffAllowed(t *testing.T) {
	e := newEngine(t)
	list := candidates()
	for _, tc := range visibleCases {
		p := principal(tc.key, tc.team, tc.user)
		listed, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p, Candidates: list, Now: testNow})
		if err != nil {
			t.Fatalf("%s: VisibleModels() error = %v", tc.name, err)
		}
		for _, c := range list.Items {
			t.Run(tc.name+"/"+c.ID, func(t *testing.T) {
				m := &gateway.Resolution{Requested: c.ID, Found: true, Names: c.Names, Resolved: c.ID, AccessGroups: c.AccessGroups}
				_, isListed := listed[c.ID]
				for _, route := range []string{gateway.RouteModelsGet, gateway.RouteInference} {
					d, err := e.Decide(t.Context(), &gateway.Input{Request: request(route), Principal: p, Model: m, Now: testNow})
					if err != nil {
						t.Fatalf("Decide(%s) error = %v", route, err)
					}
					if d.Allow != isListed {
						t.Errorf("Decide(%s %s).Allow = %t, want %t (listed)", route, c.ID, d.Allow, isListed)
					}
				}
			})
		}
	}
}

func TestVisibleModelsLargeList(t *testing.T) {
	e := newEngine(t)
	list := benchCandidates(300)
	in := &gateway.Input{Request: request(gateway.RouteModelsList), Principal: benchPrincipal(), Candidates: list, Now: testNow}
	got, err := e.VisibleModels(t.Context(), in)
	if err != nil {
		t.Fatalf("VisibleModels() error = %v", err)
	}
	// The bench principal: key gpt-4o, AgentX-LLM or openai/*; team
	// default-models; user openai/*. benchCandidates puts model-i under
	// provider i%3 and access group i%2.
	want := 0
	for i := range list.Items {
		if i%3 == 0 && i%2 == 0 {
			want++
			if _, ok := got[list.Items[i].ID]; !ok {
				t.Errorf("VisibleModels() lacks %s", list.Items[i].ID)
			}
		}
	}
	if len(got) != want {
		t.Errorf("VisibleModels() = %d ids, want %d", len(got), want)
	}
	again, err := e.VisibleModels(t.Context(), in)
	if err != nil || !maps.Equal(again, got) {
		t.Errorf("VisibleModels() second call = %d ids, %v; want the same %d", len(again), err, len(got))
	}
}

func TestVisibleModelsWithoutCandidates(t *testing.T) {
	e := newEngine(t)
	for _, list := range []*gateway.CandidateList{nil, {}} {
		got, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: principal(nil, nil, nil), Candidates: list})
		if err != nil || len(got) != 0 {
			t.Errorf("VisibleModels(%v) = %v, %v; want empty, nil", list, got, err)
		}
	}
}

func TestLayers(t *testing.T) {
	e := newEngine(t)
	in := &gateway.Input{
		Request:   request(gateway.RouteInference),
		Principal: principal([]string{"claude", "openai/*"}, []string{"restricted-models"}, nil),
		Model:     resolution("gpt-4o", []string{"gpt-4o", "openai/gpt-4o"}, "default-models"),
		Now:       testNow,
	}
	got, err := e.Layers(t.Context(), in)
	if err != nil {
		t.Fatalf("Layers() error = %v", err)
	}
	want := []Layer{
		{Layer: "key", Restricts: true, Allowed: true, MatchedEntry: "openai/*"},
		{Layer: "team", Restricts: true, Allowed: false},
		{Layer: "user", Restricts: false, Allowed: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Layers() = %+v, want %+v", got, want)
	}
}

func TestLayersMissingRule(t *testing.T) {
	e := newEngine(t, bundleFS(map[string]string{
		"p.rego": "package gateway.authz\n\ndecision := {\"allow\": true, \"status\": 200}\n\nvisible_models := set()\n",
	}))
	if _, err := e.Layers(t.Context(), &gateway.Input{}); !errors.Is(err, ErrNoLayers) {
		t.Errorf("Layers() error = %v, want ErrNoLayers", err)
	}
}

// replacement is a bundle without a manifest: it owns every root and so
// replaces the default bundle.
func replacement(decision string) fs.FS {
	return bundleFS(map[string]string{
		"p.rego": "package gateway.authz\n\n" + decision + "\n\nvisible_models := {c.id | some c in input.candidates}\n",
	})
}

func TestDecideFailsClosed(t *testing.T) {
	tests := []struct {
		name     string
		decision string
		wantErr  error
	}{
		{"decision is a string", `decision := "allow"`, ErrMalformed},
		{"decision is undefined", `decision := {"allow": true, "status": 200} if input.nope`, ErrUndefined},
		{"allow is a string", `decision := {"allow": "true", "status": 200}`, ErrMalformed},
		{"allow is missing", `decision := {"status": 200}`, ErrMalformed},
		{"status is missing", `decision := {"allow": true}`, ErrMalformed},
		{"status is not an integer", `decision := {"allow": true, "status": 200.5}`, ErrMalformed},
		{"status of an allow is an error", `decision := {"allow": true, "status": 403}`, ErrMalformed},
		{"status of a deny is a success", `decision := {"allow": false, "status": 200}`, ErrMalformed},
		{"reasons hold a number", `decision := {"allow": true, "status": 200, "reasons": [1]}`, ErrMalformed},
		{"code is a number", `decision := {"allow": false, "status": 403, "code": 3}`, ErrMalformed},
		{"evaluation error", `decision := {"allow": true, "status": 200} if 1 / 0 == 1`, nil},
		{"conflicting values", "decision := {\"allow\": true, \"status\": 200} if input.request.route\ndecision := {\"allow\": false, \"status\": 403} if input.request.route", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newUncheckedEngine(t, replacement(tc.decision))
			got, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteInference), Principal: principal(nil, nil, nil)})
			if err == nil {
				t.Fatalf("Decide() error = nil, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Decide() error = %v, want %v", err, tc.wantErr)
			}
			if want := failClosed(); !equalDecision(got, want) {
				t.Errorf("Decide() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecideReplacementBundle(t *testing.T) {
	e := newEngine(t, replacement(`decision := {"allow": false, "status": 429, "reasons": ["closed"]}`))
	if got := len(e.Bundles()); got != 1 {
		t.Errorf("len(Bundles()) = %d, want 1 (the default is replaced)", got)
	}
	got, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteInference)})
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	// A deny without code or message gets the generic ones.
	want := gateway.Decision{Status: 429, Code: gateway.CodePermissionDenied, Message: failClosed().Message, Reasons: []string{"closed"}}
	if !equalDecision(got, want) {
		t.Errorf("Decide() = %+v, want %+v", got, want)
	}
}

func TestVisibleModelsFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		visible string
		wantErr error
		want    []string
	}{
		{"a string", `visible_models := "all"`, ErrMalformed, nil},
		{"undefined", `visible_models := {"a"} if input.nope`, ErrUndefined, nil},
		{"not strings", `visible_models := {1}`, ErrMalformed, nil},
		{"ids outside the candidates are dropped", `visible_models := {"a", "zzz"}`, nil, []string{"a"}},
		{"an array is accepted", `visible_models := ["b"]`, nil, []string{"b"}},
	}
	list := &gateway.CandidateList{Items: []gateway.Candidate{{ID: "a", Names: []string{"a"}}, {ID: "b", Names: []string{"b"}}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newUncheckedEngine(t, bundleFS(map[string]string{
				"p.rego": "package gateway.authz\n\ndecision := {\"allow\": true, \"status\": 200}\n\n" + tc.visible + "\n",
			}))
			got, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Candidates: list})
			if (tc.wantErr == nil) != (err == nil) || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("VisibleModels() error = %v, want %v", err, tc.wantErr)
			}
			if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, tc.want) {
				t.Errorf("VisibleModels() = %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestNewRefusesBadBundles(t *testing.T) {
	ok := "\n\nvisible_models := set()\n\ndecision := {\"allow\": true, \"status\": 200}\n"
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"missing visible_models", map[string]string{"p.rego": "package gateway.authz\n\ndecision := {\"allow\": true, \"status\": 200}\n"}, "visible_models"},
		{"missing decision", map[string]string{"p.rego": "package gateway.authz\n\nvisible_models := set()\n"}, "decision"},
		{"http.send", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := http.send({\"method\": \"get\", \"url\": \"http://example.com\"})\n"}, "http.send"},
		{"net.lookup_ip_addr", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := net.lookup_ip_addr(\"example.com\")\n"}, "net.lookup_ip_addr"},
		{"time.now_ns", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := time.now_ns()\n"}, "time.now_ns"},
		{"rand.intn", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := rand.intn(\"a\", 10)\n"}, "rand.intn"},
		{"opa.runtime", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := opa.runtime()\n"}, "opa.runtime"},
		{"uuid.rfc4122", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := uuid.rfc4122(\"a\")\n"}, "uuid.rfc4122"},
		{"syntax error", map[string]string{"p.rego": "package gateway.authz" + ok + "\nx := \n"}, "rego_parse_error"},
		{"Rego v0 in the manifest", map[string]string{".manifest": `{"rego_version": 0}`, "p.rego": "package gateway.authz" + ok}, "Rego v1"},
		{"Rego v0 syntax", map[string]string{"p.rego": "package gateway.authz" + ok + "\nallow { true }\n"}, "rego_parse_error"},
		{"package outside the roots", map[string]string{".manifest": `{"roots": ["gateway/custom"]}`, "p.rego": "package gateway.other\n\ndeny := set()\n"}, "roots"},
		{"root overlapping the default replaces it", map[string]string{".manifest": `{"roots": ["gateway/authz/extra"]}`, "p.rego": "package gateway.authz.extra\n\nx := 1\n"}, "entry point"},
		{"custom deny that is not a collection", map[string]string{".manifest": `{"roots": ["gateway/custom"]}`, "c.rego": "package gateway.custom\n\ndeny := true\n"}, "data.gateway.custom.deny"},
		{"wasm module", map[string]string{".manifest": `{"roots": ["gateway/custom"]}`, "policy.wasm": "\x00asm"}, "wasm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Bundles: []fs.FS{bundleFS(tc.files)}})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New() error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadKeepsServingOnError(t *testing.T) {
	e := newEngine(t)
	rev := e.Revision()
	loaded := e.LoadedAt()
	err := e.Load(bundleFS(map[string]string{"p.rego": "package gateway.authz\n\nx := http.send({})\n"}))
	if err == nil {
		t.Fatal("Load(bad) error = nil, want an error")
	}
	if got := e.Revision(); got != rev {
		t.Errorf("Revision() after a failed Load = %q, want %q", got, rev)
	}
	if got := e.LoadedAt(); !got.Equal(loaded) {
		t.Errorf("LoadedAt() after a failed Load = %v, want %v", got, loaded)
	}
	d, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: principal(nil, nil, nil)})
	if err != nil || !d.Allow {
		t.Errorf("Decide() after a failed Load = %+v, %v; want allowed", d, err)
	}
	if err := e.Load(bundleFS(customBundle)); err != nil {
		t.Fatalf("Load(custom) error = %v", err)
	}
	if got := e.Revision(); got == rev || !strings.HasSuffix(got, ",custom-7") {
		t.Errorf("Revision() after Load = %q, want the default's and custom-7", got)
	}
}

func TestRevisionIsContentHash(t *testing.T) {
	a, b := newEngine(t), newEngine(t)
	if a.Revision() != b.Revision() || !strings.HasPrefix(a.Revision(), "sha256:") {
		t.Errorf("Revision() = %q and %q, want one sha256: revision", a.Revision(), b.Revision())
	}
	c := newEngine(t, replacement(`decision := {"allow": true, "status": 200}`))
	d := newEngine(t, replacement(`decision := {"allow": true, "status": 201}`))
	if c.Revision() == d.Revision() {
		t.Errorf("Revision() = %q for two different bundles, want different revisions", c.Revision())
	}
}

func TestEvalTimeout(t *testing.T) {
	slow := replacement(`decision := {"allow": true, "status": 200} if {
	count({x |
		some x in numbers.range(1, 5000)
		some y in numbers.range(1, 5000)
		x + y > 0
	}) > 0
}`)
	e, err := New(Config{Bundles: []fs.FS{slow}, EvalTimeout: 20 * time.Millisecond, skipCheck: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	start := time.Now()
	d, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteInference)})
	if err == nil || d.Allow {
		t.Errorf("Decide() = %+v, %v; want a deny and an error", d, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Decide() took %v, want it cut short near 20ms", took)
	}
}

func TestDecideCancelledContext(t *testing.T) {
	e := newEngine(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d, err := e.Decide(ctx, &gateway.Input{Request: request(gateway.RouteHealth)})
	if !errors.Is(err, context.Canceled) || d.Allow {
		t.Errorf("Decide(cancelled) = %+v, %v; want a deny and context.Canceled", d, err)
	}
}

func TestDecideNilInput(t *testing.T) {
	e := newEngine(t)
	if d, err := e.Decide(t.Context(), nil); err == nil || d.Allow {
		t.Errorf("Decide(nil) = %+v, %v; want a deny and an error", d, err)
	}
	if m, err := e.VisibleModels(t.Context(), nil); err == nil || len(m) != 0 {
		t.Errorf("VisibleModels(nil) = %v, %v; want empty and an error", m, err)
	}
}

func TestDecideBadMetadata(t *testing.T) {
	e := newEngine(t)
	p := principal(nil, nil, nil)
	p.Key.Metadata = map[string]any{"bad": func() {}}
	d, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p})
	if err == nil || d.Allow {
		t.Errorf("Decide() = %+v, %v; want a deny and an error", d, err)
	}
}
