package rego

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// TestSpecialisedEqualsGeneral checks that the per-principal and
// per-request-shape residual policies give exactly the decisions and lists
// of the general policy, for random principals mixing every kind of entry,
// on every route class, with no custom bundle, with one whose residuals are
// memoised, and with one that reads the time, the request id and path
// (whose request shapes are specialised).
func TestSpecialisedEqualsGeneral(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bundle map[string]string
		shapes bool // request shapes are specialised
	}{
		{"default", nil, false},
		{"custom", customBundle, false},
		{"time", timeBundle, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			general := engineWith(t, true, tc.bundle)
			special := engineWith(t, false, tc.bundle)
			checkEquivalent(t, general, special)
			spec := special.cur.Load().spec
			if n := spec.errs.Load(); n != 0 {
				t.Errorf("%d specialisations failed; the default policy, with or without custom rules, should always specialise", n)
			}
			if n := spec.shapes.n.Load(); (n > 0) != tc.shapes {
				t.Errorf("%d request shapes specialised; want some: %v", n, tc.shapes)
			}
		})
	}
}

// timeBundle reads what the decision memo does not key on: the time, the
// request id and path.
var timeBundle = map[string]string{
	".manifest": `{"roots": ["gateway/custom"], "revision": "time-1"}`,
	"custom.rego": `package gateway.custom

deny contains "closed at night" if {
	input.request.route == "inference"
	time.clock(time.parse_rfc3339_ns(input.now))[0] < 6
}

deny contains "no batch path" if endswith(input.request.path, "/batch")

deny contains "request id required" if input.request.id == ""
`,
}

func engineWith(t *testing.T, noSpecialise bool, bundle map[string]string) *Engine {
	t.Helper()
	cfg := Config{NoSpecialise: noSpecialise}
	if bundle != nil {
		cfg.Bundles = append(cfg.Bundles, bundleFS(bundle))
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func checkEquivalent(t *testing.T, general, special *Engine) {
	t.Helper()
	entries := []string{
		"gpt-4o", "gpt-4o-mini", "o1-mini", "claude", "AgentX-LLM", "fast", "openai/gpt-4o",
		"openrouter/qwen/qwen3.5-flash-02-23", "anthropic/claude-sonnet-4", "unknown-model",
		"default-models", "restricted-models", "openai/*", "*-mini", "anthropic/*", "*", "o*-mini",
		"all-proxy-models", "all-team-models", "no-default-models",
	}
	list := candidates()
	routes := []string{gateway.RouteInference, gateway.RouteModelsList, gateway.RouteModelsGet, gateway.RouteAdmin, gateway.RouteHealth}
	r := rand.New(rand.NewPCG(7, 11))
	pick := func() []string {
		switch r.IntN(5) {
		case 0:
			return nil // layer absent (team, user) or unrestricted (key)
		case 1:
			return []string{}
		}
		out := make([]string, 1+r.IntN(3))
		for i := range out {
			out[i] = entries[r.IntN(len(entries))]
		}
		return out
	}
	// One resolution per model for the whole run, as the catalog shares
	// them, so that memoised decisions are met again across requests.
	var models []*gateway.Resolution
	for _, c := range list.Items {
		models = append(models, resolution(c.ID, c.Names, c.AccessGroups...))
	}
	models = append(models, &gateway.Resolution{Requested: "nowhere"})
	for i := range 150 {
		p := principal(pick(), pick(), pick())
		p.Key.Blocked = r.IntN(10) == 0
		if r.IntN(8) == 0 {
			p.Key.Role = gateway.RoleAdmin
		}
		if p.Team != nil {
			p.Team.Blocked = r.IntN(10) == 0
			if r.IntN(3) == 0 {
				p.Key.Metadata = map[string]any{"cost_center": "r&d"}
			}
		}
		in := &gateway.Input{Principal: p, Candidates: list, Now: testNow}
		specOf(t, special, in) // specialised off the request path: wait for it
		in.Request = request(routes[r.IntN(len(routes))])
		in.Request.Stream = r.IntN(4) == 0
		gv, gerr := general.VisibleModels(t.Context(), in)
		sv, serr := special.VisibleModels(t.Context(), in)
		if (gerr != nil) != (serr != nil) || !maps.Equal(gv, sv) {
			t.Fatalf("principal %d %+v: visible general = %v (%v), specialised = %v (%v)",
				i, lists(p), slices.Sorted(maps.Keys(gv)), gerr, slices.Sorted(maps.Keys(sv)), serr)
		}
		for _, m := range models {
			in.Model = m
			// The time, id and path vary per request; the shape is
			// specialised (when the principal's residual cannot be
			// memoised) before the second of the two decisions below.
			in.Now = testNow.Add(time.Duration(r.IntN(24)) * time.Hour)
			in.Request.ID = []string{"req-1", ""}[r.IntN(2)]
			in.Request.Path = []string{"/v1/chat/completions", "/v1/batch"}[r.IntN(2)]
			// Three times: first from the principal's residual (the
			// shape is queued), then from the shape's residual or the
			// memo, then again at another time, id and path.
			for j := range 3 {
				switch j {
				case 1:
					special.Specialise(t.Context(), in)
				case 2:
					in.Now = in.Now.Add(time.Duration(1+r.IntN(23)) * time.Hour)
					in.Request.ID, in.Request.Path = "req-2", "/v1/chat/completions"
				}
				gd, gerr := general.Decide(t.Context(), in)
				sd, serr := special.Decide(t.Context(), in)
				if (gerr != nil) != (serr != nil) || !equalDecision(gd, sd) {
					t.Fatalf("principal %d %+v route %s model %s at %s (decision %d): general = %+v (%v), specialised = %+v (%v)",
						i, lists(p), in.Request.Route, m.Requested, in.Now.Format(time.TimeOnly), j, gd, gerr, sd, serr)
				}
			}
		}
	}
}

func lists(p *gateway.Principal) [3][]string {
	var out [3][]string
	out[0] = p.Key.Models
	if p.Team != nil {
		out[1] = p.Team.Models
	}
	if p.User != nil {
		out[2] = p.User.Models
	}
	return out
}

// TestSpecCacheEvicts checks the second-chance sweep: entries used since
// the last sweep stay, the others go (shapes met once, never queued,
// included), entries queued or being built stay, and when everything was
// used the cache still gets back under its size.
func TestSpecCacheEvicts(t *testing.T) {
	c := &specTable{size: 4}
	addAs := func(i int, queued, ready, used bool) specKey {
		k := specKey{key: &gateway.Key{ID: fmt.Sprint(i)}}
		sp := &specialised{}
		sp.queued.Store(queued)
		sp.ready.Store(ready)
		sp.used.Store(used)
		c.m.Store(k, sp)
		c.n.Add(1)
		return k
	}
	add := func(i int, ready, used bool) specKey { return addAs(i, true, ready, used) }
	keep1 := add(1, true, true)
	drop2 := add(2, true, false)
	keep3 := add(3, false, false) // being built
	drop4 := add(4, true, false)
	keep5 := add(5, true, true)
	drop9 := addAs(9, false, false, false) // a shape met once
	c.evict()
	for _, k := range []specKey{keep1, keep3, keep5} {
		if _, ok := c.m.Load(k); !ok {
			t.Errorf("principal %s evicted, want kept", k.key.ID)
		}
	}
	for _, k := range []specKey{drop2, drop4, drop9} {
		if _, ok := c.m.Load(k); ok {
			t.Errorf("principal %s kept, want evicted", k.key.ID)
		}
	}
	if got := c.n.Load(); got != 3 {
		t.Errorf("count = %d, want 3", got)
	}
	// All used: the sweep clears the marks, then makes room anyway.
	for i := 6; i <= 8; i++ {
		add(i, true, true)
	}
	c.evict()
	if got := c.n.Load(); got > 3 {
		t.Errorf("count after a sweep of used entries = %d, want at most 3", got)
	}
	n := 0
	c.m.Range(func(_, _ any) bool { n++; return true })
	if int64(n) != c.n.Load() {
		t.Errorf("%d entries, count says %d", n, c.n.Load())
	}
}

// TestShapeBuiltWhenMetAgain checks that a request shape is specialised
// only when it is met a second time: a model resolved anew for every request
// (new lists each time, as for a key's alias chain or a wildcard name) never
// costs a build, while one the catalog shares is built on its second
// request, and then decides as the general policy does.
func TestShapeBuiltWhenMetAgain(t *testing.T) {
	e := engineWith(t, false, timeBundle)
	general := engineWith(t, true, timeBundle)
	c := e.cur.Load().spec
	in := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{"gpt-4o"}, nil, nil), Now: testNow}
	fresh := func() *gateway.Resolution { return resolution("gpt-4o", []string{"gpt-4o"}, "default-models") }
	in.Model = fresh()
	if _, err := e.Decide(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if sp := c.wait(ctx, &c.principals, specKeyOf(in)); sp == nil || sp.decision == nil || sp.memo != nil {
		t.Fatal("the principal was not specialised, or its residual (which reads the time) was memoised")
	}
	for range 5 {
		in.Model = fresh()
		if _, err := e.Decide(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // a queued build would have started
	if n := c.built.Load(); n != 1 {
		t.Fatalf("%d specialisations built after five requests with fresh model lists, want 1 (the principal)", n)
	}
	shared := fresh()
	in.Model = shared
	for i := range 3 {
		d, err := e.Decide(t.Context(), in)
		gd, gerr := general.Decide(t.Context(), in)
		if err != nil || gerr != nil || !equalDecision(d, gd) {
			t.Fatalf("decision %d = %+v (%v), general = %+v (%v)", i, d, err, gd, gerr)
		}
		if i == 1 {
			mk, _ := keyOf(in)
			if sh := c.wait(ctx, &c.shapes, shapeKey{specKeyOf(in), mk}); sh == nil || sh.decision == nil {
				t.Fatal("the shape met a second time was not specialised")
			}
		}
	}
	if n := c.built.Load(); n != 2 {
		t.Errorf("%d specialisations built, want 2 (the principal and the shared shape)", n)
	}
}

// TestShapesMetOnceGoFirst checks that shapes met only once (models
// resolved anew for each request) make room for themselves without pushing
// out a shape that is built and in use.
func TestShapesMetOnceGoFirst(t *testing.T) {
	c := newSpecCache(nil, nil, time.Second)
	c.shapes.size = 4
	p := specKey{key: &gateway.Key{ID: "k"}}
	in := &gateway.Input{Request: request(gateway.RouteInference), Principal: &gateway.Principal{Key: p.key}, Now: testNow}
	built := &specialised{}
	built.queued.Store(true)
	built.ready.Store(true)
	built.used.Store(true)
	in.Model = resolution("kept", []string{"kept"})
	mk, _ := keyOf(in)
	keep := shapeKey{p, mk}
	c.shapes.m.Store(keep, built)
	c.shapes.n.Add(1)
	for i := range 10 {
		in.Model = resolution(fmt.Sprint("m", i), []string{"gpt-4o"}) // new lists each time
		mk, pin := keyOf(in)
		if sp := c.shape(shapeKey{p, mk}, pin, in, nil, nil, nil); sp != nil {
			t.Fatal("a shape met once is ready")
		}
		if c.shape(keep, memoPin{}, in, nil, nil, nil) != built { // in use
			t.Fatalf("after %d shapes met once, the built shape in use was evicted", i+1)
		}
	}
	if n := c.shapes.n.Load(); n > c.shapes.size {
		t.Errorf("%d shapes kept, want at most %d", n, c.shapes.size)
	}
	if len(c.queue) != 0 {
		t.Errorf("%d builds queued for shapes met once", len(c.queue))
	}
}

// TestReloadRetiresSpecialisation checks that a new policy stops the old
// revision's worker: principals still queued for it are not built.
func TestReloadRetiresSpecialisation(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	old := e.cur.Load()
	const n = 20
	var last *gateway.Input
	for i := range n {
		in := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{fmt.Sprint("m", i)}, nil, nil), Now: testNow}
		if _, err := e.Decide(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		last = in
	}
	if err := e.Load(); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The old worker drains its queue without building.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if old.spec.wait(ctx, &old.spec.principals, specKeyOf(last)) == nil {
		t.Fatal("the old revision's queue was not drained")
	}
	if got := old.spec.built.Load(); got >= n {
		t.Errorf("old revision built %d of %d queued principals after the reload, want fewer", got, n)
	}
	// The new revision specialises on demand.
	if !e.Specialise(t.Context(), last) {
		t.Error("the new revision did not specialise the principal")
	}
}

// TestSpecialisingWhileDeciding has requests decide while the worker
// partially evaluates the same policy for other principals. OPA's partial
// evaluation rewrites terms of the modules it evaluates in place; the
// worker has its own copies (peCompiler), so under -race this finds no race
// with the requests reading the policy's constant decision terms.
func TestSpecialisingWhileDeciding(t *testing.T) {
	e := newUncheckedEngine(t, replacement(`decision := {"allow": true, "status": 200, "reasons": ["constant"]} if input.request.route == "inference"`))
	// Queue specialisations for a few principals, then decide for another
	// one until the worker is done (or 20 s have passed).
	for i := range 8 {
		in := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{fmt.Sprint("m", i)}, nil, nil), Now: testNow}
		if _, err := e.Decide(t.Context(), in); err != nil {
			t.Fatal(err)
		}
	}
	spec := e.cur.Load().spec
	deadline := time.Now().Add(20 * time.Second)
	in := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal(nil, nil, nil), Now: testNow}
	for n := 0; spec.working.Load() && time.Now().Before(deadline); n++ {
		d, err := e.Decide(t.Context(), in)
		if err != nil || !d.Allow || len(d.Reasons) != 1 || d.Reasons[0] != "constant" {
			t.Fatalf("decision %d = %+v, %v", n, d, err)
		}
	}
}

// TestPolicyCopyReleased checks that the worker's copy of the policy is
// dropped once the queue has been dry for a while (release, which peKeep
// schedules), that a release scheduled before later work does nothing, and
// that a principal queued after a release is still specialised.
func TestPolicyCopyReleased(t *testing.T) {
	e := newEngine(t)
	c := e.cur.Load().spec
	first := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{"gpt-4o"}, nil, nil), Now: testNow}
	if specOf(t, e, first) == nil {
		t.Fatal("the first principal was not specialised")
	}
	waitIdle := func() {
		for deadline := time.Now().Add(10 * time.Second); c.working.Load(); {
			if time.Now().After(deadline) {
				t.Fatal("the worker is still running after 10s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitIdle()
	c.release(c.drained.Load() - 1) // an earlier dry spell: work came after it
	if c.compiler == nil {
		t.Fatal("a stale release dropped the worker's copy of the policy")
	}
	c.release(c.drained.Load())
	if c.compiler != nil {
		t.Fatal("release kept the worker's copy of the policy")
	}
	second := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{"gpt-4o-mini"}, nil, nil), Now: testNow}
	if sp := specOf(t, e, second); sp == nil || sp.decision == nil {
		t.Fatal("a principal queued after a release was not specialised")
	}
	if n := c.errs.Load(); n != 0 {
		t.Errorf("%d specialisations failed", n)
	}
}
