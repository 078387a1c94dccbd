package rego

import (
	"fmt"
	"io/fs"
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

func BenchmarkVisibleModels(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e := benchEngine(b)
			in := benchInput()
			in.Request = gateway.RequestInfo{Route: gateway.RouteModelsList, Operation: "models.list", Method: "GET", Path: "/v1/models"}
			in.Model = nil
			in.Candidates = benchCandidates(n)
			ctx := b.Context()
			got, err := e.VisibleModels(ctx, in)
			if err != nil || len(got) == 0 || len(got) == n {
				b.Fatalf("VisibleModels = %d ids, %v; want some but not all of %d", len(got), err, n)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.VisibleModels(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
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
	for b.Loop() {
		if _, err := pq.Eval(b.Context(), oparego.EvalParsedInput(v)); err != nil {
			b.Fatal(err)
		}
	}
}
