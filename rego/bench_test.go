package rego

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	oparego "github.com/open-policy-agent/opa/v1/rego"

	"github.com/regate/gateway/gateway"
)

// benchPrincipal is a realistic principal: a team key with three entries,
// a team allowed an access group, a user allowed a glob.
func benchPrincipal() *gateway.Principal {
	return &gateway.Principal{
		Key: &gateway.Key{
			ID:       gateway.HashKey("sk-bench"),
			Alias:    "bench",
			Models:   []string{"gpt-4o", "AgentX-LLM", "openai/*"},
			TeamID:   "research",
			UserID:   "alice",
			Metadata: map[string]any{"cost_center": "r&d"},
		},
		Team: &gateway.Team{ID: "research", Alias: "Research", Models: []string{"default-models"}},
		User: &gateway.User{ID: "alice", Email: "alice@example.com", Role: gateway.RoleInternalUser, Models: []string{"openai/*"}},
	}
}

func benchInput() *gateway.Input {
	return &gateway.Input{
		Request:   gateway.RequestInfo{ID: "req-1", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions", Stream: true},
		Principal: benchPrincipal(),
		Model: &gateway.Resolution{
			Requested:    "gpt-4o",
			Found:        true,
			Chain:        []gateway.ChainLink{{Name: "gpt-4o", Kind: gateway.LinkModelGroup}, {Name: "openai/gpt-4o", Kind: gateway.LinkProviderModel}},
			Names:        []string{"gpt-4o", "openai/gpt-4o"},
			Resolved:     "gpt-4o",
			AccessGroups: []string{"default-models"},
		},
		Now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
	}
}

// benchCandidates is n candidates over a few providers and two access
// groups; the bench principal may see about a third of them.
func benchCandidates(n int) *gateway.CandidateList {
	providers := []string{"openai", "anthropic", "openrouter"}
	groups := []string{"default-models", "restricted-models"}
	l := &gateway.CandidateList{Items: make([]gateway.Candidate, n)}
	for i := range l.Items {
		id := fmt.Sprintf("model-%d", i)
		l.Items[i] = gateway.Candidate{
			ID:           id,
			Names:        []string{id, providers[i%len(providers)] + "/" + id},
			AccessGroups: []string{groups[i%len(groups)]},
		}
	}
	return l
}

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	e, err := New(Config{})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	return e
}

// BenchmarkDecide is one policy decision for the bench principal:
//
//   - repeat: the same key, model and route again, answered from the
//     principal's decision memo (rego/memo.go);
//   - evaluated: a decision evaluated every time, as with a custom rule
//     that reads input.now (business hours), whose decisions cannot be
//     memoised: the residual of the principal's request shape (route and
//     model), which is what serves once that is specialised;
//   - principal: the same decision from the principal's residual, which
//     serves a request shape's first requests;
//   - general: the general policy, without specialisation.
func BenchmarkDecide(b *testing.B) {
	clock := fstest.MapFS{
		".manifest":   &fstest.MapFile{Data: []byte(`{"roots": ["gateway/custom"]}`)},
		"custom.rego": &fstest.MapFile{Data: []byte("package gateway.custom\n\ndeny contains \"closed at night\" if time.clock(time.parse_rfc3339_ns(input.now))[0] < 6\n")},
	}
	cases := []struct {
		name     string
		cfg      Config
		noShapes bool
	}{
		{"repeat", Config{}, false},
		{"evaluated", Config{Bundles: []fs.FS{clock}}, false},
		{"principal", Config{Bundles: []fs.FS{clock}}, true},
		{"general", Config{NoSpecialise: true}, false},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			e.noShapes = bc.noShapes
			in := benchInput()
			ctx := b.Context()
			if !bc.cfg.NoSpecialise {
				specOf(b, e, in)
			}
			d, err := e.Decide(ctx, in)
			if err != nil || !d.Allow {
				b.Fatalf("Decide = %+v, %v, want allow", d, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	e := benchEngine(b)
	in := benchInput()
	ctx := b.Context()
	specOf(b, e, in)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// listShape is the allow-list shape of a platform team's key (issue 12):
// a catalog of n model groups, and a key whose allow-list holds 46 exact
// names, one access group and three globs (a prefix glob whose prefix ends
// in a digit, an inner glob and a prefix glob), on a team whose list holds
// an access group and a prefix glob. Every kind of entry matches something.
func listShape(n int) (*gateway.Principal, *gateway.CandidateList) {
	l := &gateway.CandidateList{Items: make([]gateway.Candidate, n)}
	for i := range l.Items {
		var id, provider string
		var groups []string
		switch i % 4 {
		case 0:
			id, provider = fmt.Sprintf("bench-%d", i), "openai/"
			if i%8 == 0 {
				groups = []string{"bench-group"}
			}
		case 1:
			id, provider = fmt.Sprintf("extra-%03d", i/4), "openrouter/extra/"
		case 2:
			id, provider = fmt.Sprintf("vendor-%d/chat", i), "together_ai/"
		default:
			id, provider = fmt.Sprintf("model-%d", i), "anthropic/"
			groups = []string{"default-models"}
		}
		l.Items[i] = gateway.Candidate{ID: id, Names: []string{id, provider + id}, AccessGroups: groups}
	}
	key := make([]string, 0, 50)
	for i := 0; len(key) < 46; i += n / 46 {
		key = append(key, l.Items[i%n].ID)
	}
	key = append(key, "default-models", "extra-099*", "vendor-*/chat", "bench-*")
	p := &gateway.Principal{
		Key:  &gateway.Key{ID: gateway.HashKey("sk-list"), Alias: "list", Models: key, TeamID: "bench", UserID: "bob"},
		Team: &gateway.Team{ID: "bench", Models: []string{"bench-group", "extra-*"}},
		User: &gateway.User{ID: "bob", Role: gateway.RoleInternalUser},
	}
	return p, l
}

// aliasedList is the list the catalog makes from shared (listShape's) for
// a key with two aliases: my-bench for bench-0, a new id, and model-3 for
// bench-4, which shadows the model group model-3.
func aliasedList(shared *gateway.CandidateList) *gateway.CandidateList {
	l := &gateway.CandidateList{Base: shared, Redone: []string{"model-3", "my-bench"}}
	for _, c := range shared.Items {
		if c.ID == "model-3" {
			c = gateway.Candidate{ID: c.ID, Names: []string{c.ID, "bench-4", "openai/bench-4"}}
		}
		l.Items = append(l.Items, c)
	}
	l.Items = append(l.Items, gateway.Candidate{ID: "my-bench", Names: []string{"my-bench", "bench-0", "openai/bench-0"}, AccessGroups: []string{"bench-group"}})
	return l
}

// BenchmarkVisibleModels is GET /v1/models' policy work for the list shape
// above over 1,000 and 10,000 candidates: a principal's first list (the
// candidate list converted and its globs matched already, as after any
// earlier list of this catalog: one evaluation through the index), a
// repeated list (from the list memo), and a cold list (a new candidate
// list each time: conversion, index and glob matching, as once per catalog
// version and alias table), and an aliased list (a new list each time,
// made from the catalog's shared list as for a key with aliases of its
// own, one new alias and one alias shadowing a model group, and converted
// through the shared list's conversion).
func BenchmarkVisibleModels(b *testing.B) {
	// A first list for each kind of entry alone, over 1,000 candidates:
	// each costs the same order of work.
	shapes := []struct {
		name string
		key  []string
	}{
		{"exact", nil}, // the shape's 46 exact names
		{"group", []string{"default-models"}},
		{"prefix", []string{"bench-1*", "extra-09*", "model-3*"}},
		{"infix", []string{"vendor-*/chat", "*-2*", "open*/bench-*"}},
	}
	for _, sh := range shapes {
		b.Run("first/"+sh.name+"/1000", func(b *testing.B) {
			e := benchEngine(b)
			e.noListMemo = true
			p, list := listShape(1000)
			if sh.key == nil {
				sh.key = p.Key.Models[:46]
			}
			p = &gateway.Principal{Key: &gateway.Key{ID: gateway.HashKey("sk-shape"), Models: sh.key}}
			in := &gateway.Input{Request: gateway.RequestInfo{Route: gateway.RouteModelsList, Operation: "models.list", Method: "GET", Path: "/v1/models"},
				Principal: p, Candidates: list, Now: testNow}
			got, err := e.VisibleModels(b.Context(), in)
			if err != nil || len(got) == 0 || len(got) == 1000 {
				b.Fatalf("VisibleModels = %d ids, %v; want some but not all", len(got), err)
			}
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				if _, err := e.VisibleModels(b.Context(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(got)), "visible")
		})
	}
	for _, kind := range []string{"first", "repeat", "cold", "aliased"} {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				e := benchEngine(b)
				e.noListMemo = kind != "repeat"
				p, list := listShape(n)
				in := &gateway.Input{
					Request:   gateway.RequestInfo{ID: "req-1", Route: gateway.RouteModelsList, Operation: "models.list", Method: "GET", Path: "/v1/models"},
					Principal: p, Candidates: list, Now: testNow,
				}
				ctx := b.Context()
				if kind == "aliased" { // the shared list converted, as by any earlier list
					if _, err := e.VisibleModels(ctx, in); err != nil {
						b.Fatal(err)
					}
					in.Candidates = aliasedList(list)
				}
				got, err := e.VisibleModels(ctx, in)
				if err != nil || len(got) == 0 || len(got) == n {
					b.Fatalf("VisibleModels = %d ids, %v; want some but not all of %d", len(got), err, n)
				}
				b.ReportAllocs()
				cpu := processCPU(b)
				for b.Loop() {
					switch l := in.Candidates; kind {
					case "cold":
						in.Candidates = &gateway.CandidateList{Items: list.Items}
					case "aliased":
						in.Candidates = &gateway.CandidateList{Items: l.Items, Base: l.Base, Redone: l.Redone}
					}
					if _, err := e.VisibleModels(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(len(got)), "visible")
			})
		}
	}
}

// BenchmarkInputValue is the baseline cost of building the input document.
func BenchmarkInputValue(b *testing.B) {
	e := benchEngine(b)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.inputValue(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineEval is the floor on this machine: a prepared one-line
// policy evaluated with a parsed input, to read the other figures against.
func BenchmarkBaselineEval(b *testing.B) {
	pq, err := oparego.New(
		oparego.Query("data.p.allow"),
		oparego.Module("p.rego", "package p\n\nallow if input.request.route == \"inference\"\n"),
	).PrepareForEval(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	e := benchEngine(b)
	v, err := e.inputValue(benchInput())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if _, err := pq.Eval(b.Context(), oparego.EvalParsedInput(v)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user and system CPU time so far: on a shared
// machine, a benchmark's CPU per operation varies less than its wall time.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// chatBody is a chat request body of about n bytes: a conversation of
// messages around the given top-level fields.
func chatBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o","max_tokens":500,"temperature":0.2,"stream":false,"messages":[`)
	for i := 0; b.Len() < n-200; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"role":"user","content":"message %d: %s"}`, i, strings.Repeat("lorem ipsum dolor sit amet ", 8))
	}
	b.WriteString(`],"tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}],"metadata":{"team":"x"}}`)
	return []byte(b.String())
}

// BenchmarkDecideRequest is one decision for a chat call with a 2 KB body
// (and a 100 KB one): with the default policy (which reads none of what a
// call asks for: the decision memo answers), with a custom rule on
// input.request.params.max_tokens (memoised by the max_tokens value: params
// is the same value again, params-varied a new value on every call, so that
// the memo never answers), and with a custom rule on input.request.body (a
// data-loss marker in the messages). The rules' principals and request
// shapes are specialised first, as in production after a principal's first
// calls. cpu-ns/op is the process's CPU.
func BenchmarkDecideRequest(b *testing.B) {
	custom := func(rule string) []fs.FS {
		return []fs.FS{fstest.MapFS{
			".manifest":   &fstest.MapFile{Data: []byte(`{"roots": ["gateway/custom"]}`)},
			"custom.rego": &fstest.MapFile{Data: []byte("package gateway.custom\n\n" + rule + "\n")},
		}}
	}
	params := custom(`deny contains "too many tokens" if input.request.params.max_tokens > 1000`)
	body := custom("deny contains \"marked\" if {\n\tsome m in input.request.body.messages\n\tcontains(m.content, \"TOP-SECRET\")\n}")
	cases := []struct {
		name    string
		bundles []fs.FS
		size    int
	}{
		{"default/2KB", nil, 2 << 10},
		{"params/2KB", params, 2 << 10},
		{"params-varied/2KB", params, 2 << 10},
		{"body/2KB", body, 2 << 10},
		{"default/100KB", nil, 100 << 10},
		{"params/100KB", params, 100 << 10},
		{"body/100KB", body, 100 << 10},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(Config{Bundles: bc.bundles})
			if err != nil {
				b.Fatal(err)
			}
			in := benchInput()
			in.Request.Body, in.Request.ContentType = chatBody(bc.size), "application/json"
			ctx := b.Context()
			specOf(b, e, in)
			for range 3 { // a request shape is built when met again
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			e.Specialise(ctx, in)
			d, err := e.Decide(ctx, in)
			if err != nil || !d.Allow {
				b.Fatalf("Decide = %+v, %v, want allow", d, err)
			}
			// More distinct values than a principal's memo holds.
			var bodies [][]byte
			if strings.HasPrefix(bc.name, "params-varied") {
				for i := range 2 * memoSize {
					bodies = append(bodies, bytes.Replace(in.Request.Body, []byte(`"max_tokens":500`), fmt.Appendf(nil, `"max_tokens":%d`, i), 1))
				}
			}
			b.ReportAllocs()
			cpu := processCPU(b)
			i := 0
			for b.Loop() {
				if bodies != nil {
					in.Request.Body = bodies[i%len(bodies)]
					i++
				}
				if _, err := e.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
