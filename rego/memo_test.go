package rego

import (
	"context"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// specOf returns the principal's specialisation under the engine's current
// policy, waiting until it is built.
func specOf(t testing.TB, e *Engine, in *gateway.Input) *specialised {
	t.Helper()
	if _, err := e.Decide(t.Context(), in); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if !e.Specialise(ctx, in) {
		t.Fatal("the principal was not specialised within 10s")
	}
	c := e.cur.Load().spec
	return c.wait(ctx, &c.principals, specKeyOf(in))
}

func TestMemoisable(t *testing.T) {
	expiring := principal([]string{"gpt-4o"}, nil, nil)
	expiring.Key.ExpiresAt = testNow.Add(time.Hour)
	// Budgets and rate limits on every layer (issue 13): the default
	// policy does not read them, so its decisions stay memoised.
	limited := principal([]string{"gpt-4o"}, []string{"default-models"}, []string{})
	budget, rpm := 10.0, int64(60)
	lim := gateway.Limits{MaxBudget: &budget, BudgetDuration: "30d", RPMLimit: &rpm, TPMLimit: &rpm, MaxParallelRequests: &rpm}
	limited.Key.Limits, limited.Team.Limits, limited.User.Limits = lim, lim, lim
	limited.Key.ModelLimits = gateway.ModelLimits{RPM: map[string]int64{"gpt-4o": 5}}
	tests := []struct {
		name    string
		bundles map[string]string
		p       *gateway.Principal
		want    bool
	}{
		{"default policy, plain key", nil, principal([]string{"gpt-4o"}, []string{"default-models"}, nil), true},
		{"default policy, key that expires (key.expired, not input.now)", nil, expiring, true},
		{"default policy, limits on every layer", nil, limited, true},
		{"custom rule on the time", map[string]string{
			".manifest":   `{"roots": ["gateway/custom"]}`,
			"custom.rego": "package gateway.custom\n\ndeny contains \"closed\" if time.clock(time.parse_rfc3339_ns(input.now))[0] < 8\n",
		}, principal(nil, nil, nil), false},
		{"custom rule on the path", map[string]string{
			".manifest":   `{"roots": ["gateway/custom"]}`,
			"custom.rego": "package gateway.custom\n\ndeny contains \"no\" if startswith(input.request.path, \"/v1/embeddings\")\n",
		}, principal(nil, nil, nil), false},
		{"custom rule on the stream flag", map[string]string{
			".manifest":   `{"roots": ["gateway/custom"]}`,
			"custom.rego": "package gateway.custom\n\ndeny contains \"no\" if input.request.stream\n",
		}, principal(nil, nil, nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			if tc.bundles != nil {
				e = newEngine(t, bundleFS(tc.bundles))
			}
			in := &gateway.Input{Request: request(gateway.RouteInference), Principal: tc.p, Model: resolution("gpt-4o", []string{"gpt-4o"}), Now: testNow}
			sp := specOf(t, e, in)
			if sp == nil || sp.decision == nil {
				t.Fatal("not specialised")
			}
			if got := sp.memo != nil; got != tc.want {
				t.Errorf("memoised = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMemoNeverStale checks decisions against inputs that differ in what
// the memo keys on and in what it must not ignore.
func TestMemoNeverStale(t *testing.T) {
	e := newEngine(t, bundleFS(map[string]string{
		".manifest":   `{"roots": ["gateway/custom"]}`,
		"custom.rego": "package gateway.custom\n\ndeny contains \"no streaming\" if input.request.stream\n",
	}))
	p := principal([]string{"gpt-4o"}, nil, nil)
	gpt := resolution("gpt-4o", []string{"gpt-4o"})
	claude := resolution("claude", []string{"claude"})
	in := func(route string, stream bool, m *gateway.Resolution) *gateway.Input {
		r := request(route)
		r.Stream = stream
		return &gateway.Input{Request: r, Principal: p, Model: m, Now: testNow}
	}
	steps := []struct {
		name  string
		in    *gateway.Input
		allow bool
	}{
		{"allowed", in(gateway.RouteInference, false, gpt), true},
		{"allowed again (memo)", in(gateway.RouteInference, false, gpt), true},
		{"stream denied by the custom rule", in(gateway.RouteInference, true, gpt), false},
		{"other model", in(gateway.RouteInference, false, claude), false},
		{"same names, other slices", in(gateway.RouteInference, false, resolution("gpt-4o", []string{"gpt-4o"})), true},
		{"admin route", in(gateway.RouteAdmin, false, nil), false},
		{"allowed once more", in(gateway.RouteInference, false, gpt), true},
	}
	sp := specOf(t, e, steps[0].in)
	if sp.memo == nil {
		t.Fatal("the stream rule's residual should be memoised")
	}
	for _, s := range steps {
		d, err := e.Decide(t.Context(), s.in)
		if err != nil || d.Allow != s.allow {
			t.Errorf("%s: Decide = %+v, %v; want allow %v", s.name, d, err, s.allow)
		}
	}

	// A key that expires: before and after, from the memo or not, the
	// answers follow the time.
	exp := principal([]string{"gpt-4o"}, nil, nil)
	exp.Key.ExpiresAt = testNow.Add(time.Minute)
	e2 := newEngine(t)
	before := &gateway.Input{Request: request(gateway.RouteInference), Principal: exp, Model: gpt, Now: testNow}
	after := *before
	after.Now = testNow.Add(2 * time.Minute)
	for _, c := range []struct {
		in    *gateway.Input
		allow bool
	}{{before, true}, {&after, false}, {before, true}} {
		if d, err := e2.Decide(t.Context(), c.in); err != nil || d.Allow != c.allow {
			t.Errorf("expiring key at %v: Decide = %+v, %v; want allow %v", c.in.Now, d, err, c.allow)
		}
	}
}

// TestMemoCallersOwnReasons checks that a caller changing the reasons it
// got does not change later answers.
func TestMemoCallersOwnReasons(t *testing.T) {
	e := newEngine(t)
	in := &gateway.Input{Request: request(gateway.RouteInference), Principal: principal([]string{"gpt-4o"}, nil, nil), Model: resolution("gpt-4o", []string{"gpt-4o"}), Now: testNow}
	first, err := e.Decide(t.Context(), in)
	if err != nil || len(first.Reasons) == 0 {
		t.Fatalf("Decide = %+v, %v", first, err)
	}
	want := first.Reasons[0]
	for range 2 {
		d, _ := e.Decide(t.Context(), in)
		d.Reasons[0] = "changed"
	}
	if d, _ := e.Decide(t.Context(), in); d.Reasons[0] != want {
		t.Errorf("Reasons[0] = %q after a caller changed its copy, want %q", d.Reasons[0], want)
	}
}

// TestParamsNeverMemoised: a custom rule on what a call asks for is
// decided per call once the principal and its request shape are
// specialised, and the default policy's memo is untouched by the fields.
func TestParamsNeverMemoised(t *testing.T) {
	e := newEngine(t, bundleFS(map[string]string{
		".manifest":   `{"roots": ["gateway/custom"]}`,
		"custom.rego": "package gateway.custom\n\ndeny contains \"too many tokens\" if input.request.params.max_tokens > 1000\n\ndeny contains \"blocked\" if input.request.headers[\"x-client\"] == \"bad\"\n",
	}))
	p := principal([]string{"gpt-4o"}, nil, nil)
	in := func(body string, client string) *gateway.Input {
		return &gateway.Input{
			Request:   gateway.RequestInfo{ID: "r", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions", Body: []byte(body), Header: map[string][]string{"X-Client": {client}}},
			Principal: p, Model: resolution("gpt-4o", []string{"gpt-4o"}), Now: testNow,
		}
	}
	small, big := `{"model":"gpt-4o","max_tokens":10}`, `{"model":"gpt-4o","max_tokens":5000}`
	sp := specOf(t, e, in(small, "ok"))
	if sp.memo != nil {
		t.Fatal("a residual reading params is memoised")
	}
	for range 3 { // shapes are built when met again
		e.Decide(t.Context(), in(small, "ok"))
	}
	e.Specialise(t.Context(), in(small, "ok"))
	for _, tc := range []struct {
		body, client string
		allow        bool
	}{{small, "ok", true}, {big, "ok", false}, {small, "bad", false}, {small, "ok", true}, {big, "bad", false}} {
		d, err := e.Decide(t.Context(), in(tc.body, tc.client))
		if err != nil || d.Allow != tc.allow {
			t.Errorf("Decide(%s, %s) = %+v, %v; want allow %t", tc.body, tc.client, d, err, tc.allow)
		}
	}
}

// TestParamsMemo: a rule that reads params by name is memoised by their
// values: every max_tokens gets its own decision, repeated ones from the
// memo.
func TestParamsMemo(t *testing.T) {
	e := newEngine(t, bundleFS(map[string]string{
		".manifest":   `{"roots": ["gateway/custom"]}`,
		"custom.rego": "package gateway.custom\n\ndeny contains \"too many tokens\" if input.request.params.max_tokens > 1000\n",
	}))
	p := principal([]string{"gpt-4o"}, nil, nil)
	m := resolution("gpt-4o", []string{"gpt-4o"}) // one model, as the catalog shares it
	in := func(body string) *gateway.Input {
		return &gateway.Input{
			Request:   gateway.RequestInfo{ID: "r", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions", Body: []byte(body), ContentType: "application/json"},
			Principal: p, Model: m, Now: testNow,
		}
	}
	sp := specOf(t, e, in(`{"model":"gpt-4o"}`))
	if sp.memo == nil || !sp.memo.params["max_tokens"] || len(sp.memo.params) != 1 {
		t.Fatalf("memo = %+v, want one keyed by params max_tokens", sp.memo)
	}
	// Decisions come from the request shape's residual and its memo.
	e.Specialise(t.Context(), in(`{"model":"gpt-4o"}`))
	st := e.cur.Load()
	mk, _ := keyOf(in(`{"model":"gpt-4o"}`))
	sh := st.spec.wait(t.Context(), &st.spec.shapes, shapeKey{specKeyOf(in("{}")), mk})
	if sh == nil || sh.memo == nil || !sh.memo.params["max_tokens"] {
		t.Fatalf("shape = %+v, want one memoised by params max_tokens", sh)
	}
	for range 2 { // the second round comes from the memo
		for _, tc := range []struct {
			body  string
			allow bool
		}{
			{`{"model":"gpt-4o","max_tokens":10}`, true},
			{`{"model":"gpt-4o","max_tokens":5000}`, false},
			{`{"model":"gpt-4o"}`, true},
			{`{"model":"gpt-4o","max_tokens":1001,"messages":[{"role":"user","content":"x"}]}`, false},
			{`{"max_tokens":1000,"model":"gpt-4o"}`, true},
		} {
			d, err := e.Decide(t.Context(), in(tc.body))
			if err != nil || d.Allow != tc.allow {
				t.Errorf("Decide(%s) = %+v, %v; want allow %t", tc.body, d, err, tc.allow)
			}
		}
	}
	if n := len(sh.memo.m); n != 5 {
		t.Errorf("memo holds %d decisions, want 5 (one per max_tokens value and none)", n)
	}
}
