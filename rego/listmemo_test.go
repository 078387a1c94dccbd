package rego

import (
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	oparego "github.com/open-policy-agent/opa/v1/rego"

	"github.com/regate/gateway/bundles"
	"github.com/regate/gateway/gateway"
)

// listPolicy is a replacement bundle whose decision allows everything and
// whose list rule is rule.
func listPolicy(rule string) map[string]string {
	return map[string]string{
		"p.rego": "package gateway.authz\n\ndecision := {\"allow\": true, \"status\": 200}\n\n" + rule + "\n",
	}
}

func TestListMemoisable(t *testing.T) {
	tests := []struct {
		name    string
		bundles []map[string]string
		want    bool
	}{
		{"default bundle", nil, true},
		{"default bundle beside a custom rule on the time", []map[string]string{{
			".manifest":   `{"roots": ["gateway/custom"]}`,
			"custom.rego": "package gateway.custom\n\ndeny contains \"night\" if time.clock(time.parse_rfc3339_ns(input.now))[0] < 6\n",
		}}, true},
		{"principal and candidates", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; input.key.alias != ""}`)}, true},
		{"route", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; input.request.route == "models.list"}`)}, true},
		{"the time", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; input.now > "2026"}`)}, false},
		{"the time through a helper", []map[string]string{listPolicy("visible_models := {c.id | some c in input.candidates; _open}\n\n_open if _hour >= 8\n\n_hour := time.clock(time.parse_rfc3339_ns(input.now))[0]")}, false},
		{"the time through a function", []map[string]string{listPolicy("visible_models := {c.id | some c in input.candidates; _late(c)}\n\n_late(_) if input.now > \"2026\"")}, false},
		{"the request id", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; input.request.id != ""}`)}, false},
		{"the model", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; input.model == null}`)}, false},
		{"the whole input", []map[string]string{listPolicy(`visible_models := {c.id | some c in input.candidates; count(input) > 0}`)}, false},
		{"a computed input field", []map[string]string{listPolicy("visible_models := {c.id | some c in input.candidates; some f in [\"now\"]; input[f]}")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fss []fs.FS
			for _, b := range tc.bundles {
				fss = append(fss, bundleFS(b))
			}
			e := newEngine(t, fss...)
			if got := e.cur.Load().listMemo; got != tc.want {
				t.Errorf("listMemo = %t, want %t", got, tc.want)
			}
		})
	}
}

// sameSet reports whether a and b are the same map (not only equal).
func sameSet(a, b map[string]struct{}) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestListMemoMatchesFresh changes each thing a list depends on in turn and
// checks that the memoised list is then what a fresh evaluation gives, and
// that an unchanged list comes from the memo.
func TestListMemoMatchesFresh(t *testing.T) {
	memo := newEngine(t)
	fresh := newEngine(t)
	fresh.noListMemo = true
	list := candidates()
	p := principal([]string{"default-models", "claude", "*-mini"}, []string{"gpt-4o", "gpt-4o-mini", "fast", "o1-*"}, []string{"openai/*"})
	in := func() *gateway.Input {
		return &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p, Candidates: list, Now: testNow}
	}
	var prev []string
	check := func(t *testing.T, step string) {
		t.Helper()
		got, err := memo.VisibleModels(t.Context(), in())
		if err != nil {
			t.Fatalf("%s: VisibleModels() error = %v", step, err)
		}
		want, err := fresh.VisibleModels(t.Context(), in())
		if err != nil {
			t.Fatalf("%s: fresh VisibleModels() error = %v", step, err)
		}
		ids := slices.Sorted(maps.Keys(got))
		if !maps.Equal(got, want) {
			t.Errorf("%s: memoised list = %v, fresh = %v", step, ids, slices.Sorted(maps.Keys(want)))
		}
		if prev != nil && slices.Equal(ids, prev) {
			t.Errorf("%s: the list did not change (%v): the step tests nothing", step, ids)
		}
		prev = ids
		again, err := memo.VisibleModels(t.Context(), in())
		if err != nil || !sameSet(again, got) {
			t.Errorf("%s: a repeated list was not answered from the memo", step)
		}
	}
	check(t, "first list")

	k := *p.Key
	k.Models = []string{"default-models", "claude"}
	p = &gateway.Principal{Key: &k, Team: p.Team, User: p.User}
	check(t, "key narrowed")

	tm := *p.Team
	tm.Models = []string{"gpt-4o-mini", "o1-*"}
	p = &gateway.Principal{Key: p.Key, Team: &tm, User: p.User}
	check(t, "team narrowed")

	u := *p.User
	u.Models = []string{"fast"}
	p = &gateway.Principal{Key: p.Key, Team: p.Team, User: &u}
	check(t, "user narrowed")

	// A caller's alias table, or a new catalog, is a new candidate list.
	l2 := &gateway.CandidateList{Items: slices.Clone(list.Items)}
	l2.Items = append(l2.Items, gateway.Candidate{ID: "fast2", Names: []string{"fast2", "fast", "gpt-4o-mini", "openai/gpt-4o-mini"}, AccessGroups: []string{"default-models"}})
	list = l2
	check(t, "candidate list replaced")

	hide := listPolicy(`visible_models := {c.id | some c in input.candidates; c.id != "gpt-4o-mini"}`)
	if err := memo.Load(bundleFS(hide)); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Load(bundleFS(hide)); err != nil {
		t.Fatal(err)
	}
	check(t, "policy reloaded")
	if err := memo.Load(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Load(); err != nil {
		t.Fatal(err)
	}
	check(t, "default policy reloaded")
}

// TestListMemoNeverForTime: a list rule that reads input.now is evaluated
// on every list.
func TestListMemoNeverForTime(t *testing.T) {
	e := newEngine(t, bundleFS(listPolicy(`visible_models := {c.id | some c in input.candidates; c.id != "claude"} | {"claude" | time.clock(time.parse_rfc3339_ns(input.now))[0] >= 12}`)))
	list := candidates()
	p := principal(nil, nil, nil)
	at := func(hour int) map[string]struct{} {
		t.Helper()
		got, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p, Candidates: list,
			Now: time.Date(2026, 11, 24, hour, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		hour int
		want bool
	}{{11, false}, {13, true}, {11, false}, {13, true}} {
		if _, got := at(tc.hour)["claude"]; got != tc.want {
			t.Errorf("at %d:00 claude listed = %t, want %t", tc.hour, got, tc.want)
		}
	}
	if a, b := at(13), at(13); sameSet(a, b) {
		t.Error("a list rule reading input.now was answered from the memo")
	}
}

// TestListIndexAgreesWithModelRule checks the list through the index (the
// globs matched in Go, rego/globindex.go) against the model rule deciding
// each candidate on its own (globs matched by the policy with glob.match
// and strings.any_prefix_match), for random allow-lists and names.
func TestListIndexAgreesWithModelRule(t *testing.T) {
	e := newEngine(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "-", "/", ":", ".", "é", "?", "[", "\\"}
	word := func(n int) string {
		var b strings.Builder
		for range 1 + rng.IntN(n) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	entry := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(3) {
			if rng.IntN(2) == 0 {
				b.WriteString("*")
			}
			b.WriteString(word(3))
		}
		if rng.IntN(3) == 0 {
			b.WriteString("*")
		}
		return b.String()
	}
	for round := range 30 {
		list := &gateway.CandidateList{}
		for i := range 20 {
			id := fmt.Sprintf("m%d-%s", i, word(4))
			list.Items = append(list.Items, gateway.Candidate{ID: id, Names: []string{id, word(3) + "/" + word(5)}})
		}
		lists := make([][]string, 3)
		for i := range lists {
			for range rng.IntN(4) {
				lists[i] = append(lists[i], entry())
			}
		}
		if rng.IntN(4) == 0 {
			lists[2] = nil // no user
		}
		p := principal(lists[0], lists[1], lists[2])
		got, err := e.VisibleModels(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsList), Principal: p, Candidates: list, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Items {
			d, err := e.Decide(t.Context(), &gateway.Input{Request: request(gateway.RouteModelsGet), Principal: p,
				Model: &gateway.Resolution{Requested: c.ID, Found: true, Names: c.Names, Resolved: c.ID}, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			if _, listed := got[c.ID]; listed != d.Allow {
				t.Errorf("round %d, lists %q, %s %q: listed = %t, model rule allows = %t", round, lists, c.ID, c.Names, listed, d.Allow)
			}
		}
	}
}

// TestGlobMatchesPolicy checks the index's glob matching against the
// policy's own: glob.match with the bundle's _glob_pattern.
func TestGlobMatchesPolicy(t *testing.T) {
	src, err := fs.ReadFile(bundles.Default, "models.rego")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "*", "*", "/", "-", ".", "?", "[", "]", "{", "}", "\\", "é", "**"}
	word := func(n int, stars bool) string {
		var b strings.Builder
		for range rng.IntN(n + 1) {
			s := alphabet[rng.IntN(len(alphabet))]
			if !stars && strings.Contains(s, "*") {
				s = "a"
			}
			b.WriteString(s)
		}
		return b.String()
	}
	type pair struct{ Glob, Name string }
	// Cases where a matcher that lets parts overlap, or anchors them
	// loosely, goes wrong; then random ones.
	cases := []pair{
		{"*ab*ab*", "xab"}, {"*ab*ab*", "abab"}, {"a*a", "a"}, {"ab*ba", "aba"}, {"ab*ba", "abba"},
		{"*a*a*a*", "aa"}, {"x*", "x"}, {"*", ""}, {"a**b", "ab"}, {"é*", "éa"}, {"*é", "aé"},
		{"*-mini", "gpt-4o-mini"}, {"bench-*", "bench-"}, {"vendor-*/chat", "vendor-x/chat/chat"},
		{"vendor-*/chat", "vendor-/chat"}, {"extra-099*", "extra-0991"}, {"a?b*", "a?bc"}, {"a?b*", "axbc"},
		{"[ab]*", "a"}, {"[ab]*", "[ab]c"}, {"{a,b}*", "a"}, {"\\*", "\\x"}, {".*", "x"},
	}
	for range 3000 {
		g := word(6, true)
		// Names built from the glob's own pieces match more often.
		n := strings.ReplaceAll(g, "*", word(2, false))
		if rng.IntN(2) == 0 {
			n = word(6, false)
		}
		cases = append(cases, pair{g, n})
	}
	pq, err := oparego.New(
		oparego.Query(`r := [glob.match(data.gateway.authz._glob_pattern(c.Glob), null, c.Name) | some c in input]`),
		oparego.Module("models.rego", string(src)),
	).PrepareForEval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pq.Eval(t.Context(), oparego.EvalInput(cases))
	if err != nil || len(rs) != 1 {
		t.Fatalf("Eval = %v, %v", rs, err)
	}
	want := rs[0].Bindings["r"].([]any)
	matched := 0
	for i, c := range cases {
		got := compileGlob(c.Glob).match(c.Name)
		if got != want[i].(bool) {
			t.Errorf("glob %q, name %q: match = %t, policy = %t", c.Glob, c.Name, got, want[i])
		}
		if got {
			matched++
		}
	}
	if matched < len(cases)/10 {
		t.Errorf("only %d of %d cases matched: the cases test too little", matched, len(cases))
	}
}
