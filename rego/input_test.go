package rego

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

func TestInputValue(t *testing.T) {
	five, sixty := 5.0, int64(60)
	expires := time.Date(2027, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   gateway.Input
		want string
	}{
		{
			name: "empty input",
			in:   gateway.Input{Now: testNow},
			want: `{"request": {"id": "", "route": "", "operation": "", "method": "", "path": "", "stream": false, "self": false,
				"params": {}, "client_ip": null, "headers": {}},
				"key": null, "team": null, "user": null, "model": null, "candidates": [], "candidate_index": null, "now": "2026-11-24T12:00:00Z"}`,
		},
		{
			name: "full input",
			in: gateway.Input{
				Request: gateway.RequestInfo{ID: "r", Route: "admin", Operation: "key.info", Method: "GET", Path: "/key/info", Stream: true, Self: true,
					Body:     []byte(`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"secret prompt"}],"tools":[{"type":"function","function":{"name":"shell"}},{"type":"web_search"}],"tool_choice":{"type":"function","function":{"name":"shell"}},"metadata":{"tier":"free"}}`),
					ClientIP: "10.1.2.3",
					Header:   map[string][]string{"Authorization": {"Bearer sk-x"}, "X-Api-Key": {"k"}, "Cookie": {"c"}, "X-Team": {"a", "b"}, "User-Agent": {"ua"}},
				},
				Principal: &gateway.Principal{
					Key: &gateway.Key{ID: "h", Alias: "a", Role: "admin", Models: []string{"m", "p/*"}, Aliases: map[string]string{"x": "y"},
						TeamID: "t", UserID: "u", Blocked: true, ExpiresAt: expires, Limits: gateway.Limits{MaxBudget: &five, RPMLimit: &sixty},
						Metadata: map[string]any{"n": 1.5, "i": 2, "j": json.Number("3"), "b": true, "z": nil, "l": []any{"s", int64(4)}, "o": map[string]any{"k": []string{"v"}}}},
					Team: &gateway.Team{ID: "t", Alias: "T", Models: []string{"g", "*c", "p/*"}, ModelAliases: map[string]string{"f": "g"}, Blocked: true, Metadata: map[string]any{"tier": "gold"}},
					User: &gateway.User{ID: "u", Email: "u@example.com", Role: "proxy_admin", Models: []string{"*"}, Metadata: map[string]any{"s": map[string]string{"a": "b"}}},
				},
				Model: &gateway.Resolution{
					Requested: "fast", Found: true,
					Chain:    []gateway.ChainLink{{Name: "fast", Kind: "alias", Source: "team"}, {Name: "gpt", Kind: "model_group"}},
					Names:    []string{"fast", "gpt"},
					Resolved: "gpt", Wildcard: "g*", AccessGroups: []string{"default"},
				},
				Candidates: &gateway.CandidateList{Items: []gateway.Candidate{{ID: "c", Names: []string{"c", "p/c"}, AccessGroups: []string{"g"}, OwnedBy: "me"}, {ID: "d"}}},
				Now:        testNow,
			},
			want: `{
				"request": {"id": "r", "route": "admin", "operation": "key.info", "method": "GET", "path": "/key/info", "stream": true, "self": true,
					"params": {"model": "m", "max_tokens": 100, "tool_names": ["shell", "web_search"], "tool_choice": "function", "metadata": {"tier": "free"}},
					"client_ip": "10.1.2.3", "headers": {"x-team": "a", "user-agent": "ua"}},
				"key": {"id": "h", "alias": "a", "role": "admin", "models": ["m", "p/*"], "aliases": {"x": "y"}, "team_id": "t", "user_id": "u",
					"metadata": {"n": 1.5, "i": 2, "j": 3, "b": true, "z": null, "l": ["s", 4], "o": {"k": ["v"]}},
					"blocked": true, "expires_at": "2027-01-02T02:04:05.0000006Z", "expired": false,
					"max_budget": 5, "rpm_limit": 60, "tpm_limit": null, "max_parallel_requests": null},
				"team": {"id": "t", "alias": "T", "models": ["g", "*c", "p/*"], "model_aliases": {"f": "g"}, "blocked": true, "metadata": {"tier": "gold"}, "max_budget": null, "rpm_limit": null, "tpm_limit": null, "max_parallel_requests": null},
				"user": {"id": "u", "email": "u@example.com", "role": "proxy_admin", "models": ["*"], "metadata": {"s": {"a": "b"}}, "max_budget": null, "rpm_limit": null, "tpm_limit": null, "max_parallel_requests": null},
				"model": {"requested": "fast", "found": true,
					"chain": [{"name": "fast", "kind": "alias", "source": "team"}, {"name": "gpt", "kind": "model_group"}],
					"names": ["fast", "gpt"], "resolved": "gpt", "wildcard": "g*", "access_groups": ["default"]},
				"candidates": [{"id": "c", "names": ["c", "p/c"], "access_groups": ["g"]}, {"id": "d", "names": [], "access_groups": []}],
				"candidate_index": {"ids": {"c"}, "names": {}, "access_groups": {"g": {"c"}}, "globs": {"p/*": {"c"}, "*c": {"c"}}},
				"now": "2026-11-24T12:00:00Z"
			}`,
		},
		{
			name: "expired key",
			in: gateway.Input{
				Principal: &gateway.Principal{Key: &gateway.Key{ID: "h", ExpiresAt: testNow}},
				Now:       testNow,
			},
			want: `{"request": {"id": "", "route": "", "operation": "", "method": "", "path": "", "stream": false, "self": false,
				"params": {}, "client_ip": null, "headers": {}},
				"key": {"id": "h", "alias": "", "role": "", "models": [], "aliases": {}, "team_id": null, "user_id": null,
					"metadata": {}, "blocked": false, "expires_at": "2026-11-24T12:00:00Z", "expired": true, "max_budget": null, "rpm_limit": null, "tpm_limit": null, "max_parallel_requests": null},
				"team": null, "user": null, "model": null,
				"candidates": [], "candidate_index": null, "now": "2026-11-24T12:00:00Z"}`,
		},
		{
			name: "personal key: empty ids are null, nil lists are empty",
			in: gateway.Input{
				Principal: &gateway.Principal{Key: &gateway.Key{ID: "h"}},
				Model:     &gateway.Resolution{Requested: "x"},
				Now:       testNow,
			},
			want: `{"request": {"id": "", "route": "", "operation": "", "method": "", "path": "", "stream": false, "self": false,
				"params": {}, "client_ip": null, "headers": {}},
				"key": {"id": "h", "alias": "", "role": "", "models": [], "aliases": {}, "team_id": null, "user_id": null,
					"metadata": {}, "blocked": false, "expires_at": null, "expired": false, "max_budget": null, "rpm_limit": null, "tpm_limit": null, "max_parallel_requests": null},
				"team": null, "user": null,
				"model": {"requested": "x", "found": false, "chain": [], "names": [], "resolved": "", "wildcard": null, "access_groups": []},
				"candidates": [], "candidate_index": null, "now": "2026-11-24T12:00:00Z"}`,
		},
	}
	e := newEngine(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.inputValue(&tc.in)
			if err != nil {
				t.Fatalf("inputValue() error = %v", err)
			}
			want := ast.MustParseTerm(tc.want).Value
			if got.Compare(want) != 0 {
				t.Errorf("inputValue() =\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestInputValueDefaultsNow(t *testing.T) {
	e := newEngine(t)
	before := time.Now()
	v, err := e.inputValue(&gateway.Input{})
	if err != nil {
		t.Fatalf("inputValue() error = %v", err)
	}
	s, ok := v.(ast.Object).Get(ast.StringTerm("now")).Value.(ast.String)
	if !ok {
		t.Fatalf("inputValue().now = %v, want a string", v.(ast.Object).Get(ast.StringTerm("now")))
	}
	now, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil || now.Before(before.Add(-time.Second)) || now.After(time.Now().Add(time.Second)) {
		t.Errorf("inputValue().now = %s, %v; want the current time", s, err)
	}
}

func TestCandidateCache(t *testing.T) {
	var c candidateCache
	lists := make([]*gateway.CandidateList, candidateCacheSize+3)
	for i := range lists {
		lists[i] = &gateway.CandidateList{Items: []gateway.Candidate{{ID: "m", Names: []string{"m"}}}}
	}
	first := c.get(lists[0])
	if again := c.get(lists[0]); again != first {
		t.Errorf("get(same list) = %p, want the cached %p", again, first)
	}
	for _, l := range lists {
		if got := c.get(l); got.list != l {
			t.Errorf("get(%p).list = %p, want the list asked for", l, got.list)
		}
	}
	if got := len(c.m); got > candidateCacheSize {
		t.Errorf("cache holds %d lists, want at most %d", got, candidateCacheSize)
	}
	if _, ok := c.m[lists[0]]; ok {
		t.Errorf("cache still holds the oldest list, want it evicted")
	}
	if got := c.get(lists[0]); got == first || got.term.Value.Compare(first.term.Value) != 0 {
		t.Errorf("get(evicted list) = %p, want a new, equal conversion", got)
	}
}

// TestCandidateCacheKeepsUsed: the list used longest ago goes first, so
// the shared list, used between the lists of callers with aliases, stays.
func TestCandidateCacheKeepsUsed(t *testing.T) {
	var c candidateCache
	shared := benchCandidates(3)
	first := c.get(shared)
	for i := range 2 * candidateCacheSize {
		c.get(&gateway.CandidateList{Base: shared, Redone: []string{fmt.Sprint("alias-", i)}, Items: shared.Items})
		if got := c.get(shared); got != first {
			t.Fatalf("after %d other lists, get(shared) = a new conversion, want the cached one", i+1)
		}
	}
}

func TestCandidateCacheConcurrent(t *testing.T) {
	var c candidateCache
	lists := []*gateway.CandidateList{benchCandidates(10), benchCandidates(20), benchCandidates(30)}
	derived := &gateway.CandidateList{Base: lists[2], Redone: []string{lists[2].Items[0].ID}, Items: lists[2].Items[1:]}
	lists = append(lists, derived)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				l := lists[(g+i)%len(lists)]
				got := c.get(l)
				if got.list != l || (got.base != nil) != (l == derived) || got.term.Value.(*ast.Array).Len() != len(l.Items) {
					t.Errorf("get() = list %p (derived: %t) with %v, want %p with %d items", got.list, got.base != nil, got.term, l, len(l.Items))
					return
				}
				for _, c := range l.Items {
					if !got.has(c.ID) {
						t.Errorf("get(%p).has(%q) = false", l, c.ID)
						return
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestInputReads(t *testing.T) {
	tests := []struct {
		name, rule string
		want       inputFields
	}{
		{"fields", `p if { input.request.id == "x"; input.now; input.key.models[_] == "m" }`,
			inputFields{top: 1<<0 | 1<<1 | 1<<7, req: 1 << 0}},
		{"whole request", `p if { x := input.request; x.path }`, inputFields{top: 1 << 0, req: 1<<len(requestFields) - 1}},
		{"computed key", `p if { k := "now"; input[k] }`, allInput},
		{"whole input", `p if { count(input) > 0 }`, allInput},
		{"with", `p if { q with input.model as {} }
q if { true }`, inputFields{top: 1 << 4}},
		{"not a field", `p if { input.nothing }`, inputFields{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ast.MustCompileModules(map[string]string{"p.rego": "package p\n\n" + tc.rule + "\n"})
			if got := inputReads(c.Modules); got != tc.want {
				t.Errorf("inputReads = %+v, want %+v", got, tc.want)
			}
		})
	}
}
