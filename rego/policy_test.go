package rego

import (
	"strings"
	"testing"

	"github.com/regate/gateway/bundles"
)

// TestPolicyTests runs the default bundle's Rego tests (bundles/default/
// *_test.rego), so that go test ./... covers the policy too.
func TestPolicyTests(t *testing.T) {
	results, err := RunTests(t.Context(), bundles.Default)
	if err != nil {
		t.Fatalf("RunTests() error = %v", err)
	}
	if len(results) == 0 {
		t.Fatal("RunTests() ran no tests, want the default bundle's")
	}
	cases := 0
	for _, r := range results {
		cases += max(r.Cases, 1)
		if !r.Passed {
			t.Errorf("%s", r)
		}
	}
	t.Logf("%d Rego tests, %d cases", len(results), cases)
}

func TestRunTestsReportsFailures(t *testing.T) {
	custom := bundleFS(map[string]string{
		".manifest": `{"roots": ["gateway/custom"]}`,
		"custom.rego": `package gateway.custom

deny contains "no streaming" if input.request.stream
`,
		"custom_test.rego": `package gateway.custom

test_stream_denied if {
	"no streaming" in deny with input as {"request": {"stream": true}}
}

test_wrong_expectation if {
	count(deny) == 1 with input as {"request": {"stream": false}}
}

test_table[note] if {
	some tc in [{"note": "ok", "stream": true, "want": 1}, {"note": "bad", "stream": false, "want": 1}]
	note := tc.note
	count(deny) == tc.want with input as {"request": {"stream": tc.stream}}
}

test_decision_sees_custom if {
	d := data.gateway.authz.decision with input as {
		"request": {"route": "models.list", "stream": true},
		"key": {"models": [], "blocked": false, "expires_at": null},
		"team": null, "user": null, "model": null, "candidates": [],
		"now": "2026-11-24T12:00:00Z",
	}
	d.code == "policy_denied"
}
`,
	})
	results, err := RunTests(t.Context(), custom)
	if err != nil {
		t.Fatalf("RunTests() error = %v", err)
	}
	got := map[string]TestResult{}
	for _, r := range results {
		if !strings.HasPrefix(r.Name, "data.gateway.custom.") {
			t.Errorf("RunTests() ran %s, want only the custom bundle's tests (the default's are not its own)", r.Name)
		}
		got[strings.TrimPrefix(r.Name, "data.gateway.custom.")] = r
	}
	tests := []struct {
		name       string
		passed     bool
		cases      int
		failedCase string
	}{
		{"test_stream_denied", true, 0, ""},
		{"test_wrong_expectation", false, 0, ""},
		{"test_table", false, 2, "bad"},
		{"test_decision_sees_custom", true, 0, ""},
	}
	for _, tc := range tests {
		r, ok := got[tc.name]
		if !ok {
			t.Errorf("RunTests() has no result for %s", tc.name)
			continue
		}
		if r.Passed != tc.passed || r.Cases != tc.cases {
			t.Errorf("%s: Passed, Cases = %t, %d, want %t, %d", tc.name, r.Passed, r.Cases, tc.passed, tc.cases)
		}
		if tc.failedCase != "" && (len(r.FailedCases) != 1 || r.FailedCases[0] != tc.failedCase) {
			t.Errorf("%s: FailedCases = %v, want [%s]", tc.name, r.FailedCases, tc.failedCase)
		}
	}
}

func TestRunTestsCompileError(t *testing.T) {
	bad := bundleFS(map[string]string{"p_test.rego": "package gateway.authz\n\ntest_x if http.send({})\n"})
	if _, err := RunTests(t.Context(), bad); err == nil {
		t.Error("RunTests(bundle calling http.send) error = nil, want a compile error")
	}
}
