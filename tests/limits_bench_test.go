package tests

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// limitsBenchConfig prices the one deployment; {{LIMITS}} is replaced by
// the key's, team's and user's limits (or nothing).
const limitsBenchConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [gpt-4o]{{TEAM}}}
  users:
    - {user_id: alice{{USER}}}
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, team_id: research, user_id: alice{{KEY}}}
`

// BenchmarkLimitsProcess measures what budgets and rate limits cost a chat
// call in the real binary (issue 13, acceptance 3): three processes pinned
// to one core as in BenchmarkProcessVsBareProxy — the gateway with prices
// on its deployment and no limits (nolimits), the same with every limit
// kind on the key, its team and its user, far above the load (limits), and
// a bare httputil.ReverseProxy (bare) — get blocks of 20 chat calls in a
// new order each round; each one's CPU per call is read from /proc.
// Metrics: limits-x (limits over nolimits, target ≤ 1.1), limits-bare-x
// (limits over bare, target ≤ 1.5), and the CPU per call of each.
func BenchmarkLimitsProcess(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	gwBin := buildGateway(b)
	bareBin := buildBinary(b, "./internal/bareproxy")
	up := httptest.NewServer(mock.New(mock.Config{}))
	b.Cleanup(up.Close)
	limited := map[string]string{
		"{{KEY}}":  ", max_budget: 1000000, rpm_limit: 100000000, tpm_limit: 100000000000, max_parallel_requests: 100000, model_rpm_limit: {gpt-4o: 100000000}",
		"{{TEAM}}": ", max_budget: 1000000, budget_duration: 30d, rpm_limit: 100000000, tpm_limit: 100000000000",
		"{{USER}}": ", max_budget: 1000000, soft_budget: 500000, max_parallel_requests: 100000",
	}
	config := func(limits bool) string {
		c := limitsBenchConfig
		for k, v := range limited {
			if !limits {
				v = ""
			}
			c = strings.ReplaceAll(c, k, v)
		}
		return c
	}
	env := []string{"GOMAXPROCS=1", "OTEL_TRACES_EXPORTER=none"}
	targets := []*gatewayProcess{
		startGatewayProcess(b, gwBin, config(false), up.URL+"/v1", env...),
		startGatewayProcess(b, gwBin, config(true), up.URL+"/v1", env...),
		startBareProxy(b, bareBin, up.URL, "GOMAXPROCS=1"),
	}
	names := []string{"nolimits", "limits", "bare"}
	keys := []string{opsKey, opsKey, "sk-upstream-provider-secret"}
	pinProcesses(b, targets)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	body := opsChatBody("gpt-4o", false)
	call := func(i int) {
		if err := bareCall(client, targets[i].url, keys[i], body, nil); err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
	}
	for i := range targets {
		for range 300 {
			call(i)
		}
	}
	const block = 20
	var cpu [3]time.Duration
	n := 0
	for b.Loop() {
		for _, i := range rand.Perm(3) {
			before := targets[i].cpu(b)
			for range block {
				call(i)
			}
			cpu[i] += targets[i].cpu(b) - before
		}
		n += block
	}
	b.StopTimer()
	per := func(i int) float64 { return float64(cpu[i]) / float64(n) }
	for i, name := range names {
		b.ReportMetric(per(i), name+"-cpu-ns/op")
	}
	b.ReportMetric(per(1)/per(0), "limits-x")
	b.ReportMetric(per(1)/per(2), "limits-bare-x")
}
