package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// The shape of TestSoak's load (issue 16).
const (
	soakLoops      = 24               // client loops sending back to back
	soakAbortOneIn = 6                // about one request in six is aborted by its client
	soakWarmUpMax  = 30 * time.Second // of traffic before the baseline
	soakSample     = time.Second      // between readings during the traffic
	soakSettleMin  = 10 * time.Second // after the traffic, before the first reading
	soakKey        = "sk-soak-client-key-0001"
	// The rules for "back to baseline" once the traffic has stopped.
	soakGoroutineSlack = 5
	soakFDSlack        = 2
	soakRSSFactor      = 1.25
	soakRSSSlackMB     = 16
)

// errAbort is how a client loop cuts off an upload.
var errAbort = errors.New("client aborted the upload")

// soakConfig serves gpt-4o from two upstreams ({{UP}}, {{UP2}}), the alias
// fast → gpt-4o, a wildcard group openai/* on {{UP2}} and 400 groups
// soak-000…399 on {{UP}}; its one key may use all of them.
func soakConfig() string {
	var b strings.Builder
	b.WriteString(`model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP2}}", api_key: sk-upstream-provider-secret}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_base: "{{UP2}}", api_key: sk-upstream-provider-secret}
`)
	for i := range 400 {
		fmt.Fprintf(&b, "  - model_name: soak-%03d\n    litellm_params: {model: openai/soak-%03d, api_base: \"{{UP}}\", api_key: sk-upstream-provider-secret}\n", i, i)
	}
	fmt.Fprintf(&b, `router_settings:
  model_group_alias:
    fast: gpt-4o
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: %s, key_alias: soak, models: [gpt-4o, fast, "openai/*", "soak-*"]}
`, soakKey)
	return b.String()
}

// soakReading is one reading of the gateway process.
type soakReading struct {
	goroutines, fds int
	rssMB           float64
}

func (r soakReading) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, RSS %.1f MB", r.goroutines, r.fds, r.rssMB)
}

// read reads the process's goroutines (go_goroutines from its /metrics),
// open files (/proc/PID/fd) and RSS (VmRSS).
func (p *gatewayProcess) read(tb testing.TB) soakReading {
	tb.Helper()
	// A connection of its own, closed after: it is not left in the count.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(p.url + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	var r soakReading
	r.goroutines = -1
	for l := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("go_goroutines %q", v)
			}
			r.goroutines = int(f)
		}
	}
	if r.goroutines < 0 {
		tb.Fatal("no go_goroutines in /metrics")
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/fd")
	if err != nil {
		tb.Fatal(err)
	}
	r.fds = len(fds)
	var ok bool
	if r.rssMB, ok = procStatus(p, "VmRSS:"); !ok {
		tb.Fatal("no VmRSS in /proc/<pid>/status")
	}
	return r
}

// soakStats are the outcomes of the client loops.
type soakStats struct {
	mu       sync.Mutex
	requests map[string]int
	aborted  int
	errors   map[string]int
	firstErr []string
	latency  map[string][]time.Duration
}

func (s *soakStats) done(kind string, aborted bool, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[kind]++
	switch {
	case aborted:
		s.aborted++
	case err != nil:
		s.errors[kind]++
		if len(s.firstErr) < 5 {
			s.firstErr = append(s.firstErr, kind+": "+err.Error())
		}
	default:
		s.latency[kind] = append(s.latency[kind], d)
	}
}

// TestSoak runs the real binary for REGATE_SOAK (a duration such as 10m;
// the test is skipped without it) under mixed traffic — chat calls,
// streams, model lists and retrievals, about one in six aborted by its
// client at a random moment (a chat call while the upstream waits, a
// stream after a random number of chunks, an upload halfway) — and checks
// that goroutines, open files and RSS return to their level before the
// traffic once it stops: the first reading 10 s after the traffic, then
// every half second until they are back or REGATE_SOAK_SETTLE (default
// 30 s) has passed. The figures are logged as "soak: …" lines for
// cmd/benchreport.
func TestSoak(t *testing.T) {
	spec := os.Getenv("REGATE_SOAK")
	if spec == "" {
		t.Skip("set REGATE_SOAK to a duration (10m) to run the soak")
	}
	length, err := time.ParseDuration(spec)
	if err != nil || length <= 0 {
		t.Fatalf("REGATE_SOAK=%q: want a duration such as 10m", spec)
	}
	settle := 30 * time.Second
	if v := os.Getenv("REGATE_SOAK_SETTLE"); v != "" {
		if settle, err = time.ParseDuration(v); err != nil {
			t.Fatalf("REGATE_SOAK_SETTLE=%q: %v", v, err)
		}
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	warm := min(soakWarmUpMax, length/4)

	bin := buildGateway(t)
	var ups []*httptest.Server
	for range 2 {
		up := httptest.NewServer(mock.New(mock.Config{}))
		t.Cleanup(up.Close)
		ups = append(ups, up)
	}
	cfg := strings.ReplaceAll(soakConfig(), "{{UP2}}", ups[1].URL+"/v1")
	p := startGatewayProcess(t, bin, cfg, ups[0].URL+"/v1", "OTEL_TRACES_EXPORTER=none")

	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	// quiet closes every idle connection on both sides of the gateway: the
	// clients' to it, and the upstreams' (the gateway's idle pool).
	quiet := func() {
		tr.CloseIdleConnections()
		for _, up := range ups {
			up.CloseClientConnections()
		}
	}

	traffic := func(d time.Duration, stats *soakStats, during func()) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		var wg sync.WaitGroup
		for range soakLoops {
			wg.Go(func() {
				for ctx.Err() == nil {
					soakRequest(ctx, client, p.url, stats)
				}
			})
		}
		if during != nil {
			tick := time.NewTicker(soakSample)
			defer tick.Stop()
		loop:
			for {
				select {
				case <-ctx.Done():
					break loop
				case <-tick.C:
					during()
				}
			}
		}
		wg.Wait()
	}
	newStats := func() *soakStats {
		return &soakStats{requests: map[string]int{}, errors: map[string]int{}, latency: map[string][]time.Duration{}}
	}

	// Warm up, then the baseline: the reading once it holds still.
	traffic(warm, newStats(), nil)
	quiet()
	var before soakReading
	prev := soakReading{goroutines: -1}
	for start := time.Now(); ; {
		time.Sleep(500 * time.Millisecond)
		before = p.read(t)
		if (before.goroutines == prev.goroutines && before.fds == prev.fds) || time.Since(start) > settle {
			break
		}
		prev = before
	}

	stats := newStats()
	peak := before
	started := time.Now()
	traffic(length, stats, func() {
		r := p.read(t)
		peak.goroutines = max(peak.goroutines, r.goroutines)
		peak.fds = max(peak.fds, r.fds)
		peak.rssMB = max(peak.rssMB, r.rssMB)
	})
	ran := time.Since(started)

	stopped := time.Now()
	quiet()
	rssMax := max(soakRSSFactor*before.rssMB, before.rssMB+soakRSSSlackMB)
	back := func(r soakReading) bool {
		return r.goroutines <= before.goroutines+soakGoroutineSlack && r.fds <= before.fds+soakFDSlack && r.rssMB <= rssMax
	}
	// A short settle first, whatever the figures say, then poll until
	// they are back or the settle allowed has passed.
	time.Sleep(min(soakSettleMin, settle))
	var after soakReading
	for {
		after = p.read(t)
		if back(after) || time.Since(stopped) > settle {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	took := time.Since(stopped)

	total := 0
	var kinds []string
	for k, n := range stats.requests {
		total += n
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	nErr := 0
	for _, n := range stats.errors {
		nErr += n
	}
	t.Logf("soak: %s of traffic after %s of warm-up, %d client loops: %d requests (%s), %.0f per second; %d aborted by their clients; %d errors among the other %d",
		ran.Round(time.Second), warm, soakLoops, total, strings.Join(kinds, ", "), float64(total)/ran.Seconds(), stats.aborted, nErr, total-stats.aborted)
	var lat []string
	for _, k := range []string{"chat", "stream", "list", "retrieve"} {
		ds := stats.latency[k]
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		what := k
		if k == "stream" {
			what = "stream (first event)"
		}
		lat = append(lat, fmt.Sprintf("%s %s / %s", what, msec(ds[len(ds)/2]), msec(ds[len(ds)*99/100])))
	}
	t.Logf("soak: latency p50 / p99: %s", strings.Join(lat, "; "))
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	gOK := after.goroutines <= before.goroutines+soakGoroutineSlack
	fOK := after.fds <= before.fds+soakFDSlack
	rOK := after.rssMB <= rssMax
	t.Logf("soak: goroutines before %d, peak %d, after %d (rule: after ≤ before + %d): %s",
		before.goroutines, peak.goroutines, after.goroutines, soakGoroutineSlack, verdict(gOK))
	t.Logf("soak: open files before %d, peak %d, after %d (rule: after ≤ before + %d): %s",
		before.fds, peak.fds, after.fds, soakFDSlack, verdict(fOK))
	t.Logf("soak: RSS before %.1f MB, peak %.1f MB, after %.1f MB (rule: after ≤ max(%.2f × before, before + %d MB) = %.1f MB): %s",
		before.rssMB, peak.rssMB, after.rssMB, soakRSSFactor, soakRSSSlackMB, rssMax, verdict(rOK))
	t.Logf("soak: after read %s after the traffic stopped (settle allowed: %s)", took.Round(100*time.Millisecond), settle)
	if !gOK || !fOK || !rOK {
		t.Errorf("the gateway did not return to its baseline within %s: before %v, after %v", settle, before, after)
	}
	if nErr > 0 {
		t.Errorf("%d errors among requests the clients did not abort; the first: %s", nErr, strings.Join(stats.firstErr, "; "))
	}
	if total == 0 {
		t.Error("no requests were sent")
	}
}

func msec(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

// soakModel is a name the client loops call: an exact group with two
// deployments, an alias, a name the wildcard serves and groups of the 400.
func soakModel() string {
	switch n := rand.IntN(10); {
	case n < 3:
		return "gpt-4o"
	case n < 5:
		return "fast"
	case n < 7:
		return "openai/gpt-4o-mini"
	default:
		return fmt.Sprintf("soak-%03d", rand.IntN(400))
	}
}

// soakRequest sends one request of the mix and records its outcome. ctx
// ends the soak: a request it cuts off is counted as aborted.
func soakRequest(ctx context.Context, client *http.Client, base string, stats *soakStats) {
	abort := rand.IntN(soakAbortOneIn) == 0
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kind := "chat"
	start := time.Now()
	var err error
	switch n := rand.IntN(10); {
	case n < 4:
		err = soakChat(rctx, cancel, client, base, abort)
	case n < 8:
		kind = "stream"
		var first time.Duration
		first, err = soakStream(rctx, cancel, client, base, abort)
		start = time.Now().Add(-first)
	case n < 9:
		kind = "list"
		err = soakGet(rctx, cancel, client, base+"/v1/models", abort)
	default:
		kind = "retrieve"
		err = soakGet(rctx, cancel, client, base+"/v1/models/"+soakModel(), abort)
	}
	d := time.Since(start)
	stats.done(kind, abort || ctx.Err() != nil, d, err)
}

// soakChat sends a chat call. Aborted: half the time the upload is cut off
// halfway, else the call is cancelled while the upstream waits (50 ms).
func soakChat(ctx context.Context, cancel func(), client *http.Client, base string, abort bool) error {
	body := opsChatBody(soakModel(), false)
	var rd io.Reader = bytes.NewReader(body)
	header := http.Header{}
	if abort {
		if rand.IntN(2) == 0 {
			pr, pw := io.Pipe()
			go func() {
				_, _ = pw.Write(body[:len(body)/2])
				time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
				pw.CloseWithError(errAbort)
			}()
			rd = pr
		} else {
			header.Set(mock.HeaderLatency, "50ms")
			time.AfterFunc(time.Duration(1+rand.IntN(40))*time.Millisecond, cancel)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", rd)
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	return soakDo(client, req)
}

// soakDo sends req with the soak key and reads the answer to its end; an
// answer other than 200 is an error.
func soakDo(client *http.Client, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+soakKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// soakStream sends a stream of 20 chunks 5 ms apart and reads it to
// [DONE], or, aborted, cancels it after a random number of events. It
// returns the time to the first event.
func soakStream(ctx context.Context, cancel func(), client *http.Client, base string, abort bool) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(opsChatBody(soakModel(), true)))
	req.Header.Set("Authorization", "Bearer "+soakKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mock.HeaderChunks, "20")
	req.Header.Set(mock.HeaderChunkDelay, "5ms")
	stopAt := -1
	if abort {
		stopAt = rand.IntN(20)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	// Ended by the client, or complete: what follows [DONE] does not count.
	first, events, done, err := readStream(resp.Body, start, stopAt, cancel)
	if done || (stopAt > 0 && events == stopAt) {
		return first, nil
	}
	if err == nil {
		err = io.EOF
	}
	return first, fmt.Errorf("stream ended without [DONE] after %d events: %w", events, err)
}

// soakGet sends a GET and reads the answer; aborted, it is cancelled
// after up to 2 ms.
func soakGet(ctx context.Context, cancel func(), client *http.Client, url string, abort bool) error {
	if abort {
		time.AfterFunc(time.Duration(rand.IntN(2000))*time.Microsecond, cancel)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	return soakDo(client, req)
}
