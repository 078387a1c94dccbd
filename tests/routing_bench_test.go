package tests

import (
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// routingOneConfig serves gpt-4o from one deployment; routingThreeConfig
// from three weighted ones, with rpm caps high enough never to bind, so
// that every call draws a weighted order, checks the caps and cooldowns,
// and counts in flight, the minute and the time to first byte. All go to
// the same upstream ({{UP}}).
const (
	routingOneConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, models: [gpt-4o]}
`
	routingThreeConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, weight: 1, rpm: 10000000}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, weight: 2, rpm: 10000000}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, weight: 3, rpm: 10000000}
router_settings:
  routing_strategy: simple-shuffle
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, models: [gpt-4o]}
`
)

// routingBlock is the calls per target per round, sent by routingClients
// clients at once.
const (
	routingBlock   = 200
	routingClients = 8
)

// BenchmarkRoutingWeighted measures the gateway's own CPU per chat call
// with three weighted deployments (one) against one deployment (the
// baseline), issue 15's check that routing state costs the request path
// nothing that grows with load: two real binaries, GOMAXPROCS=1, pinned
// to the same core, the load and the upstream (gateway/mock) in this
// process on the others. Each b.Loop iteration sends a block of calls to
// each, in a new random order, from several clients at once; CPU per call
// is read from /proc. three-vs-one-x is the ratio (target ≤ 1.05).
func BenchmarkRoutingWeighted(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	bin := buildGateway(b)
	up := startListUpstream(b)
	env := []string{"GOMAXPROCS=1", "OTEL_TRACES_EXPORTER=none"}
	targets := []*gatewayProcess{
		startGatewayProcess(b, bin, routingOneConfig, up.URL+"/v1", env...),
		startGatewayProcess(b, bin, routingThreeConfig, up.URL+"/v1", env...),
	}
	pinProcesses(b, targets)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64}}
	chat := opsChatBody("gpt-4o", false)
	send := func(p *gatewayProcess, n int) {
		var wg sync.WaitGroup
		per := n / routingClients
		for range routingClients {
			wg.Go(func() {
				for range per {
					if err := bareCall(client, p.url, opsKey, chat, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for _, p := range targets { // warm connections, caches and memos
		send(p, 400)
	}
	var cpu [2]time.Duration
	calls := 0
	for b.Loop() {
		for _, i := range rand.Perm(2) {
			before := targets[i].cpu(b)
			send(targets[i], routingBlock)
			cpu[i] += targets[i].cpu(b) - before
		}
		calls += routingBlock
	}
	one := float64(cpu[0]) / float64(max(calls, 1))
	three := float64(cpu[1]) / float64(max(calls, 1))
	b.ReportMetric(one, "one-cpu-ns")
	b.ReportMetric(three, "three-cpu-ns")
	if one > 0 {
		b.ReportMetric(three/one, "three-vs-one-x")
	}
}
