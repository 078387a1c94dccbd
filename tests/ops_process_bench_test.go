package tests

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// procConfig proxies gpt-4o to an OpenAI-compatible upstream ({{UP}}).
const procConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [gpt-4o]}
  keys:
    - {key: sk-ops-alice-plaintext-1234, key_alias: alice-ops, team_id: research}
`

// gatewayProcess is the real binary serving in a process of its own.
type gatewayProcess struct {
	cmd *exec.Cmd
	url string
}

// startGatewayProcess runs bin with config (written to a file, {{UP}}
// replaced by upstream) and extra environment, and waits until it is ready.
// Its logs are discarded.
func startGatewayProcess(tb testing.TB, bin, config, upstream string, env ...string) *gatewayProcess {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "{{UP}}", upstream)), 0o600); err != nil {
		tb.Fatal(err)
	}
	addr := freeAddr(tb)
	cmd := exec.Command(bin, "--config", path, "--listen", addr)
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "GATEWAY_BUNDLE=", "GATEWAY_DECISION_LOG=off")
	cmd.Env = append(cmd.Env, env...)
	p := startProcess(tb, cmd, addr)
	waitReady(tb, p.url)
	return p
}

// startProcess starts cmd, which serves on addr, with its output discarded,
// and kills it at cleanup.
func startProcess(tb testing.TB, cmd *exec.Cmd, addr string) *gatewayProcess {
	tb.Helper()
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &gatewayProcess{cmd: cmd, url: "http://" + addr}
}

// cpu is the CPU time the process has used so far, summed over its threads
// from /proc/<pid>/task/*/schedstat (nanoseconds).
func (p *gatewayProcess) cpu(tb testing.TB) time.Duration {
	tb.Helper()
	dir := "/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			tb.Fatalf("%s/%s/schedstat: %q", dir, t.Name(), b)
		}
		total += time.Duration(ns)
	}
	return total
}

// telemetryProcs is how many processes BenchmarkOpsTelemetryProcess runs
// per configuration.
const telemetryProcs = 2

// BenchmarkOpsTelemetryProcess measures the gateway's own CPU per chat
// call as it runs in production: the real binary in a process of its own,
// serving over TCP and proxying over TCP to an OpenAI-compatible upstream,
// with its default logging (one access-log line per request). Four
// configurations, each in telemetryProcs processes, differ only in their
// environment: metrics off and no tracing
// (off), metrics (the default; no exporter, so no spans), and metrics with
// tracing exported by the real OTLP exporter (http/protobuf) to a receiver
// that accepts and drops the spans, sampling every request (otlp) or 10%
// (otlp-10pct). The load and the upstream run in this process, so they are
// not counted. Requests go to the processes in blocks, in a new order each
// round; each process's CPU time is read from /proc before and after the
// run, and summed per configuration: <config>-cpu-ns/op and
// <config>-overhead-% against off.
func BenchmarkOpsTelemetryProcess(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	bin := buildGateway(b)
	up := httptest.NewServer(mock.New(mock.Config{}))
	b.Cleanup(up.Close)
	var posts, spanBytes atomic.Int64
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/traces" {
			posts.Add(1)
			spanBytes.Add(n)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(otlp.Close)
	tracing := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}
	configs := []struct {
		name string
		env  []string
	}{
		{"off", []string{"GATEWAY_METRICS=false", "OTEL_TRACES_EXPORTER=none"}},
		{"metrics", []string{"OTEL_TRACES_EXPORTER=none"}},
		{"otlp", append([]string{"OTEL_TRACES_SAMPLER=always_on"}, tracing...)},
		{"otlp-10pct", append([]string{"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.1"}, tracing...)},
	}
	// Each configuration runs in telemetryProcs processes: identical
	// processes differ by a few percent in CPU per call (4–8% measured), as
	// much as the overhead measured, so one process per configuration would
	// measure the processes as much as the configurations.
	procs := make([]*gatewayProcess, 0, len(configs)*telemetryProcs)
	for _, c := range configs {
		for range telemetryProcs {
			procs = append(procs, startGatewayProcess(b, bin, procConfig, up.URL, c.env...))
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	body := opsChatBody("gpt-4o", false)
	call := func(p *gatewayProcess) { postChat(b, client, p.url, opsKey, body) }
	// Metrics off means no /metrics; on, it is served.
	for i, want := range []int{http.StatusNotFound, http.StatusOK} {
		resp, err := http.Get(procs[i*telemetryProcs].url + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("%s: GET /metrics = %d, want %d", configs[i].name, resp.StatusCode, want)
		}
	}
	for _, p := range procs { // warm caches, pools and connections
		for range 300 {
			call(p)
		}
	}
	const block = 20
	start := make([]time.Duration, len(procs))
	for i, p := range procs {
		start[i] = p.cpu(b)
	}
	n := 0
	for b.Loop() {
		for _, i := range rand.Perm(len(procs)) {
			for range block {
				call(procs[i])
			}
		}
		n += block
	}
	b.StopTimer()
	if posts.Load() == 0 || spanBytes.Load() == 0 {
		b.Fatal("the OTLP receiver got no spans: the real exporter did not export")
	}
	used := make([]time.Duration, len(configs))
	for i, p := range procs {
		used[i/telemetryProcs] += p.cpu(b) - start[i] // procs[i] runs configs[i/telemetryProcs]
	}
	var base float64
	for i, c := range configs {
		perOp := float64(used[i]) / float64(n*telemetryProcs)
		if i == 0 {
			base = perOp
		}
		b.ReportMetric(perOp, c.name+"-cpu-ns/op")
		if i > 0 {
			b.ReportMetric(100*(perOp-base)/base, c.name+"-overhead-%")
		}
	}
}
