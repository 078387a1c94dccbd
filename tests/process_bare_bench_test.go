package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
	"github.com/regate/gateway/gateway/openai"
)

// The shape of BenchmarkProcessVsBareProxy's load (issue 12).
const (
	bareChatBlock   = 20                     // chat calls per block
	bareListBlock   = 10                     // GET /v1/models per block
	bareStreamRate  = 300                    // streams per second
	bareStreamBlock = 500 * time.Millisecond // of streams per block
	bareChunks      = "20"                   // content chunks per stream
	bareChunkDelay  = "5ms"                  // between chunks
	bareErrorRate   = 2500                   // chat calls per second, errors phase
	bareErrorTime   = 5 * time.Second
	bareRSSRate     = 5000 // chat calls per second, memory phase
	bareRSSTime     = 3 * time.Second
	bareRSSLatency  = "60ms" // the upstream's wait per call, memory phase
	// bareMaxInFlight bounds the calls the paced phases keep open: 5,000
	// calls per second of 60 ms are 300 at once.
	bareMaxInFlight = 400
	bareModel       = "bench-000"
	bareKey         = "sk-bench-list-key-0001"
)

// BenchmarkProcessVsBareProxy measures the gateway's real binary side by
// side with a bare httputil.ReverseProxy (tests/internal/bareproxy), both
// built by the test, started with GOMAXPROCS=1 and pinned to the same
// core (the machine's last; taskset), while this process — the load and
// an OpenAI-compatible upstream (gateway/mock, plus a list of 1,001 models)
// — runs on the other cores. Every b.Loop iteration is one round in which
// each target gets, in a new random order per kind: a block of 20 chat
// calls, a block of 10 GET /v1/models, and half a second of streams paced
// at 300 per second (20 chunks 5 ms apart; the upstream itself, called
// directly, is the third target of the stream blocks). The CPU time of each
// process over each block, from /proc/<pid>/task/*/schedstat, is summed by
// kind. After the rounds: 5 s of chat calls paced at 2,500 per second to
// each target (non-200 answers and transport errors are errors), then 3 s
// of chat calls paced at 5,000 per second against an upstream that waits
// 60 ms per call (at most 400 open at once) with the peak RSS (VmHWM,
// reset first through clear_refs) read after it. A third process, the
// architecture's floor (tests/internal/floorproxy: the bare proxy with OPA
// and the default policy compiled, gorilla/mux, the OpenTelemetry SDK and
// OTLP exporters, and pgx linked and started, but none of the gateway), gets
// the warm-up, the 2,500 calls/s and the memory phase with the other two.
//
// The bare proxy proxies the upstream's own list of 1,001 models; the
// gateway lists a catalog of 1,001 model groups for a key whose 50-entry
// allow-list holds 46 exact names, an access group and three globs, in a
// team that allows an access group and a glob (benchListConfig).
//
// Metrics: <kind>-cpu-x is the gateway's CPU per call over the bare
// proxy's (chat, stream, list); ttft-added-x the gateway's p50 time to the
// first event over the direct call's, against the bare proxy's; rss-x the
// peak RSS ratio and floor-rss-x the floor's over the bare proxy's (the
// least any gateway on these dependencies holds); gateway-errors,
// bare-errors and floor-errors the errors at 2,500 per second; and the
// absolute figures behind each ratio, with the largest anonymous and
// file-backed resident memory sampled during the memory phase
// (rss-anon-MB, rss-file-MB: the binary's own pages are file-backed), how
// much anonymous memory the phase added (rss-anon-added-MB) and the call
// rate each process reached in it (rss-req/s).
func BenchmarkProcessVsBareProxy(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	gwBin := buildGateway(b)
	bareBin := buildBinary(b, "./internal/bareproxy")
	up := startListUpstream(b)
	gwProc := startGatewayProcess(b, gwBin, benchListConfig(), up.URL+"/v1", "GOMAXPROCS=1", "OTEL_TRACES_EXPORTER=none")
	bareProc := startBareProxy(b, bareBin, up.URL, "GOMAXPROCS=1")
	floorProc := startBareProxy(b, buildBinary(b, "./internal/floorproxy", "-tags", releaseTags), up.URL, "GOMAXPROCS=1")
	targets := []*gatewayProcess{gwProc, bareProc, floorProc}
	names := []string{"gateway", "bare", "floor"}
	pinProcesses(b, targets)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 1024}}
	keys := []string{bareKey, "sk-upstream-provider-secret", "sk-upstream-provider-secret"}
	chat := opsChatBody(bareModel, false)
	stream := opsChatBody(bareModel, true)
	for i, p := range targets { // warm caches, pools and connections
		for range 200 {
			if err := bareCall(client, p.url, keys[i], chat, nil); err != nil {
				b.Fatalf("%s: %v", names[i], err)
			}
		}
		for range 20 {
			if err := bareList(client, p.url, keys[i]); err != nil {
				b.Fatalf("%s: %v", names[i], err)
			}
		}
		if _, err := bareStream(client, p.url, keys[i], stream); err != nil {
			b.Fatalf("%s: %v", names[i], err)
		}
	}

	var (
		cpu     [2]struct{ chat, list, stream time.Duration }
		calls   [2]struct{ chat, list, stream int }
		ttft    [3][]time.Duration // gateway, bare, direct
		streamN = int(bareStreamRate * bareStreamBlock / time.Second)
	)
	block := func(i int, f func()) time.Duration {
		before := targets[i].cpu(b)
		f()
		return targets[i].cpu(b) - before
	}
	for b.Loop() {
		for _, i := range rand.Perm(2) {
			cpu[i].chat += block(i, func() {
				for range bareChatBlock {
					if err := bareCall(client, targets[i].url, keys[i], chat, nil); err != nil {
						b.Fatalf("%s: %v", names[i], err)
					}
				}
			})
			calls[i].chat += bareChatBlock
		}
		for _, i := range rand.Perm(2) {
			cpu[i].list += block(i, func() {
				for range bareListBlock {
					if err := bareList(client, targets[i].url, keys[i]); err != nil {
						b.Fatalf("%s: %v", names[i], err)
					}
				}
			})
			calls[i].list += bareListBlock
		}
		for _, i := range rand.Perm(3) {
			url, key := up.URL, keys[1]
			if i < 2 {
				url, key = targets[i].url, keys[i]
			}
			var mu sync.Mutex
			var failed atomic.Int64
			run := func() {
				paced(bareStreamRate, streamN, bareMaxInFlight, func() {
					d, err := bareStream(client, url, key, stream)
					if err != nil {
						failed.Add(1)
						return
					}
					mu.Lock()
					ttft[i] = append(ttft[i], d)
					mu.Unlock()
				})
			}
			if i == 2 {
				run()
			} else {
				cpu[i].stream += block(i, run)
				calls[i].stream += streamN
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d streams failed", n)
			}
		}
	}
	b.StopTimer()

	var errs [3]int64
	for _, i := range rand.Perm(3) {
		n := int(bareErrorRate * bareErrorTime / time.Second)
		paced(bareErrorRate, n, bareMaxInFlight, func() {
			if err := bareCall(client, targets[i].url, keys[i], chat, nil); err != nil {
				atomic.AddInt64(&errs[i], 1)
			}
		})
	}
	var rss, anon, added, file, rate [3]float64
	slow := map[string]string{mock.HeaderLatency: bareRSSLatency}
	for _, i := range rand.Perm(3) {
		resetPeakRSS(targets[i])
		n := int(bareRSSRate * bareRSSTime / time.Second)
		var failed atomic.Int64
		stop := make(chan struct{})
		sampled := make(chan [3]float64)
		go func() { sampled <- sampleRSS(targets[i], stop) }()
		start := time.Now()
		paced(bareRSSRate, n, bareMaxInFlight, func() {
			if err := bareCall(client, targets[i].url, keys[i], chat, slow); err != nil {
				failed.Add(1)
			}
		})
		rate[i] = float64(n) / time.Since(start).Seconds()
		close(stop)
		peaks := <-sampled
		anon[i], file[i], added[i] = peaks[0], peaks[1], peaks[0]-peaks[2]
		rss[i] = peakRSS(b, targets[i])
		if f := failed.Load(); f > 0 {
			b.Logf("%s: %d of %d calls failed in the memory phase", names[i], f, n)
		}
	}

	per := func(d time.Duration, n int) float64 { return float64(d) / float64(max(n, 1)) }
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[len(ds)/2]) / 1e3
	}
	for i, name := range names {
		if i < len(cpu) { // the floor is not in the CPU rounds
			b.ReportMetric(per(cpu[i].chat, calls[i].chat), name+"-chat-cpu-ns")
			b.ReportMetric(per(cpu[i].list, calls[i].list), name+"-list-cpu-ns")
			b.ReportMetric(per(cpu[i].stream, calls[i].stream), name+"-stream-cpu-ns")
			b.ReportMetric(p50(ttft[i])-p50(ttft[2]), name+"-ttft-added-µs")
		}
		b.ReportMetric(float64(errs[i]), name+"-errors")
		b.ReportMetric(rss[i], name+"-rss-MB")
		b.ReportMetric(anon[i], name+"-rss-anon-MB")
		b.ReportMetric(added[i], name+"-rss-anon-added-MB")
		b.ReportMetric(file[i], name+"-rss-file-MB")
		b.ReportMetric(rate[i], name+"-rss-req/s")
	}
	ratio := func(g, bare float64) float64 {
		if bare <= 0 {
			return 0
		}
		return g / bare
	}
	b.ReportMetric(ratio(per(cpu[0].chat, calls[0].chat), per(cpu[1].chat, calls[1].chat)), "chat-cpu-x")
	b.ReportMetric(ratio(per(cpu[0].list, calls[0].list), per(cpu[1].list, calls[1].list)), "list-cpu-x")
	b.ReportMetric(ratio(per(cpu[0].stream, calls[0].stream), per(cpu[1].stream, calls[1].stream)), "stream-cpu-x")
	b.ReportMetric(ratio(p50(ttft[0])-p50(ttft[2]), p50(ttft[1])-p50(ttft[2])), "ttft-added-x")
	b.ReportMetric(ratio(rss[0], rss[1]), "rss-x")
	b.ReportMetric(ratio(rss[2], rss[1]), "floor-rss-x")
}

// benchListConfig is a catalog of 1,001 model groups on the upstream
// {{UP}}: bench-000…399 (access group bench-group), extra-000…399
// (extra-models), vendor-000…199/chat (vendor-models) and gpt-4o. Its one
// key allows 46 exact names (extra-100…145), the access group
// vendor-models and the globs extra-099*, vendor-*/chat and bench-*; the
// key's team allows bench-group and extra-*. The key lists 447 models.
func benchListConfig() string {
	var b strings.Builder
	b.WriteString("model_list:\n")
	group := func(name, access string) {
		fmt.Fprintf(&b, "  - model_name: %q\n    litellm_params: {model: %q, api_base: \"{{UP}}\", api_key: sk-upstream-provider-secret}\n", name, "openai/"+name)
		if access != "" {
			fmt.Fprintf(&b, "    model_info: {access_groups: [%s]}\n", access)
		}
	}
	for i := range 400 {
		group(fmt.Sprintf("bench-%03d", i), "bench-group")
	}
	for i := range 400 {
		group(fmt.Sprintf("extra-%03d", i), "extra-models")
	}
	for i := range 200 {
		group(fmt.Sprintf("vendor-%03d/chat", i), "vendor-models")
	}
	group("gpt-4o", "")
	allow := make([]string, 0, 50)
	for i := 100; i < 146; i++ {
		allow = append(allow, fmt.Sprintf("extra-%03d", i))
	}
	allow = append(allow, "vendor-models", `"extra-099*"`, `"vendor-*/chat"`, `"bench-*"`)
	fmt.Fprintf(&b, `general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: bench, models: [bench-group, "extra-*"]}
  keys:
    - {key: %s, key_alias: bench-list, team_id: bench, models: [%s]}
`, bareKey, strings.Join(allow, ", "))
	return b.String()
}

// startListUpstream is the OpenAI-compatible upstream of the side-by-side
// benchmark: gateway/mock, except that GET /v1/models lists the 1,001
// models of benchListConfig.
func startListUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	list := openai.ModelList{Object: "list"}
	add := func(id string) {
		list.Data = append(list.Data, openai.Model{ID: id, Object: "model", Created: 1700000000, OwnedBy: "openai"})
	}
	for i := range 400 {
		add(fmt.Sprintf("bench-%03d", i))
	}
	for i := range 400 {
		add(fmt.Sprintf("extra-%03d", i))
	}
	for i := range 200 {
		add(fmt.Sprintf("vendor-%03d/chat", i))
	}
	add("gpt-4o")
	body, err := json.Marshal(list)
	if err != nil {
		tb.Fatal(err)
	}
	m := mock.New(mock.Config{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		m.ServeHTTP(w, r)
	}))
	tb.Cleanup(up.Close)
	return up
}

// startBareProxy runs the bare proxy in front of upstream and waits until
// it answers.
func startBareProxy(tb testing.TB, bin, upstream string, env ...string) *gatewayProcess {
	tb.Helper()
	addr := freeAddr(tb)
	cmd := exec.Command(bin, "-listen", addr, "-upstream", upstream)
	cmd.Env = append(os.Environ(), env...)
	p := startProcess(tb, cmd, addr)
	eventually(tb, "the bare proxy to answer", func() bool {
		resp, err := http.Get(p.url + "/v1/models")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// pinProcesses pins every thread of the targets to the machine's last CPU
// and this process's threads to the others, with taskset (util-linux),
// restoring this process's affinity at cleanup. Without taskset, or on one
// CPU, nothing is pinned and the benchmark says so.
func pinProcesses(tb testing.TB, targets []*gatewayProcess) {
	tb.Helper()
	n := runtime.NumCPU()
	if _, err := exec.LookPath("taskset"); err != nil || n < 2 {
		tb.Logf("not pinned (taskset: %v, %d CPUs)", err, n)
		return
	}
	core := strconv.Itoa(n - 1)
	for _, p := range targets {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", core, strconv.Itoa(p.cmd.Process.Pid)).CombinedOutput(); err != nil {
			tb.Fatalf("taskset: %v\n%s", err, out)
		}
	}
	self := strconv.Itoa(os.Getpid())
	out, err := exec.Command("taskset", "-p", self).Output()
	if err != nil {
		tb.Fatalf("taskset -p: %v", err)
	}
	mask := strings.TrimSpace(string(out[bytes.LastIndexByte(out, ':')+1:]))
	if out, err := exec.Command("taskset", "-a", "-p", "-c", "0-"+strconv.Itoa(n-2), self).CombinedOutput(); err != nil {
		tb.Fatalf("taskset: %v\n%s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("taskset", "-a", "-p", mask, self).Run() })
}

// resetPeakRSS resets the process's VmHWM to its current RSS (Linux ≥ 4.0);
// where that is refused the peak is the process's whole life's.
func resetPeakRSS(p *gatewayProcess) {
	_ = os.WriteFile("/proc/"+strconv.Itoa(p.cmd.Process.Pid)+"/clear_refs", []byte("5"), 0)
}

// peakRSS is the process's VmHWM in MB.
func peakRSS(tb testing.TB, p *gatewayProcess) float64 {
	tb.Helper()
	v, ok := procStatus(p, "VmHWM:")
	if !ok {
		tb.Fatal("no VmHWM in /proc/<pid>/status")
	}
	return v
}

// procStatus is a field of /proc/<pid>/status in MB.
func procStatus(p *gatewayProcess, field string) (float64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// sampleRSS reads the process's anonymous and file-backed resident memory
// every 20 ms until stop is closed and returns the largest of each and the
// anonymous memory it started from (MB): VmHWM has no such split.
func sampleRSS(p *gatewayProcess, stop <-chan struct{}) [3]float64 {
	var peak [3]float64
	peak[2], _ = procStatus(p, "RssAnon:")
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		for i, f := range []string{"RssAnon:", "RssFile:"} {
			if v, ok := procStatus(p, f); ok {
				peak[i] = max(peak[i], v)
			}
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// paced calls send n times at rate per second, each in its own goroutine
// with at most maxInFlight running (a full house delays the next call),
// and waits for them all.
func paced(rate float64, n, maxInFlight int, send func()) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			send()
		})
	}
	wg.Wait()
}

// bareCall sends one chat call with extra headers; a transport error or a
// status but 200 is an error.
func bareCall(client *http.Client, url, key string, body []byte, header map[string]string) error {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chat: status %d", resp.StatusCode)
	}
	return err
}

// bareList asks GET /v1/models and reads the answer.
func bareList(client *http.Client, url, key string) error {
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n < 1000 {
		return fmt.Errorf("list: status %d, %d bytes", resp.StatusCode, n)
	}
	return err
}

// bareStream sends one streamed chat call of 20 chunks 5 ms apart, reads it
// to the end and returns the time to its first data event.
func bareStream(client *http.Client, url, key string, body []byte) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mock.HeaderChunks, bareChunks)
	req.Header.Set(mock.HeaderChunkDelay, bareChunkDelay)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("stream: status %d", resp.StatusCode)
	}
	first, _, done, err := readStream(resp.Body, start, 0, nil)
	if err != nil {
		return 0, err
	}
	if !done {
		return 0, fmt.Errorf("stream: no [DONE]")
	}
	return first, nil
}

// readStream reads a stream's data events from r until its end: the time
// from start to the first event, the events before [DONE], and whether
// [DONE] came. With stopAt > 0 it calls stop and returns after that many
// events. A read error other than the end of r is returned.
func readStream(r io.Reader, start time.Time, stopAt int, stop func()) (first time.Duration, events int, done bool, err error) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data: ")) {
			if first == 0 {
				first = time.Since(start)
			}
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				done = true
			} else if !done {
				events++
				if events == stopAt {
					stop()
					return first, events, done, nil
				}
			}
		}
		if err == io.EOF {
			return first, events, done, nil
		}
		if err != nil {
			return first, events, done, err
		}
	}
}
