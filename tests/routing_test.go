package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// Routing, retries, cooldowns, timeouts and fallbacks (DESIGN §12) through
// the HTTP API, with one real upstream server per deployment whose answers
// each test controls.

const routingKey = "sk-routing-key-0001"

// deploymentServer is one deployment's upstream: it counts the calls it
// receives and answers with its handler (by default as OpenAI would).
type deploymentServer struct {
	URL     string
	calls   atomic.Int64
	handler atomic.Pointer[http.Handler]
}

func newDeploymentServer(t *testing.T) *deploymentServer {
	t.Helper()
	s := &deploymentServer{}
	s.use(mock.New(mock.Config{}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		// Read the body first: only then does the server notice a
		// client that goes away and cancel r.Context().
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		(*s.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *deploymentServer) set(h http.HandlerFunc) { s.use(h) }

func (s *deploymentServer) use(h http.Handler) { s.handler.Store(&h) }

// status answers every call with status and an OpenAI error envelope.
func status(code int, errCode string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"message":"upstream says %d","type":"server_error","param":null,"code":%q}}`, code, errCode)
	}
}

// routingGateway starts a gateway whose config names the servers as
// {{0}}, {{1}}, ...; the key routingKey may call what allow lists.
func routingGateway(t *testing.T, config string, allow string, servers ...*deploymentServer) *gw {
	t.Helper()
	return startGateway(t, serversConfig(config, servers...)+routingKeyConfig(allow+"]}"), nil)
}

// serversConfig replaces {{0}}, {{1}}, ... in config by the servers' URLs.
func serversConfig(config string, servers ...*deploymentServer) string {
	for i, s := range servers {
		config = strings.ReplaceAll(config, "{{"+strconv.Itoa(i)+"}}", s.URL)
	}
	return config
}

// routingKeyConfig is the master key and routingKey, whose entry ends
// with rest (its allow-list's last names, "]", more fields and "}").
func routingKeyConfig(rest string) string {
	return `
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: ` + routingKey + `, key_alias: routing, models: [` + rest + `
`
}

func routedChat(t *testing.T, g *gw, model string) response {
	t.Helper()
	return g.do(t, http.MethodPost, "/v1/chat/completions", routingKey, "application/json", chatBody(model))
}

func TestWeightedShuffleSplitsCalls(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		values      [2]string
		want        float64 // share of the first deployment
	}{
		{"weight", "weight", [2]string{"1", "3"}, 0.25},
		{"rpm", "rpm", [2]string{"60000", "20000"}, 0.75},
		{"tpm", "tpm", [2]string{"100000", "400000"}, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newDeploymentServer(t), newDeploymentServer(t)
			g := routingGateway(t, `
model_list:
  - model_name: chat
    litellm_params: {model: openai/a, api_base: "{{0}}", `+tc.field+`: `+tc.values[0]+`}
  - model_name: chat
    litellm_params: {model: openai/b, api_base: "{{1}}", `+tc.field+`: `+tc.values[1]+`}
`, "chat", a, b)
			const calls = 1000
			for i := range calls {
				if r := routedChat(t, g, "chat"); r.Status != http.StatusOK {
					t.Fatalf("call %d: %d %s", i, r.Status, r.Body)
				}
			}
			share := float64(a.calls.Load()) / calls
			if math.Abs(share-tc.want) > 0.05 {
				t.Errorf("first deployment served %.1f%% of %d calls (b %d), want %.0f%% ± 5 points", share*100, calls, b.calls.Load(), tc.want*100)
			}
			if a.calls.Load()+b.calls.Load() != calls {
				t.Errorf("upstreams saw %d + %d calls, want %d in all", a.calls.Load(), b.calls.Load(), calls)
			}
		})
	}
}

// aFirstConfig is a group "chat" of deployments a ({{0}}) and b ({{1}})
// whose weights leave b no chance in float64 while a is not cooling,
// followed by an open router_settings section.
const aFirstConfig = `
model_list:
  - model_name: chat
    litellm_params: {model: openai/a, api_base: "{{0}}", weight: 1e30}
  - model_name: chat
    litellm_params: {model: openai/b, api_base: "{{1}}", weight: 1e-30}
router_settings:
`

func TestCooldownEntryAndExit(t *testing.T) {
	a, b := newDeploymentServer(t), newDeploymentServer(t)
	a.set(status(http.StatusInternalServerError, "boom"))
	// a is tried first while it is not cooling.
	g := routingGateway(t, aFirstConfig+"  allowed_fails: 1\n  cooldown_time: 1\n", "chat", a, b)
	// Two failures within a minute: more than allowed_fails, so a cools.
	for i := range 2 {
		r := routedChat(t, g, "chat")
		if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Attempts") != "2" {
			t.Fatalf("call %d: %d attempts %q, want 200 after 2 attempts", i, r.Status, r.Header.Get("X-Gateway-Attempts"))
		}
	}
	if n := a.calls.Load(); n != 2 {
		t.Fatalf("a saw %d calls, want 2", n)
	}
	// Cooling: b answers first time, a sees nothing.
	for range 10 {
		r := routedChat(t, g, "chat")
		if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Attempts") != "1" {
			t.Fatalf("while a cools: %d attempts %q, want 200 at the first attempt", r.Status, r.Header.Get("X-Gateway-Attempts"))
		}
	}
	if n := a.calls.Load(); n != 2 {
		t.Errorf("a saw %d calls while cooling, want none beyond the 2 before", n)
	}
	metricHas(t, g, `gateway_deployment_cooldowns_total{model_group="chat",provider="openai",reason="allowed_fails"} 1`)
	// After cooldown_time a is tried again.
	time.Sleep(1200 * time.Millisecond)
	a.use(mock.New(mock.Config{}))
	r := routedChat(t, g, "chat")
	if r.Status != http.StatusOK || r.Header.Get("X-Gateway-Attempts") != "1" || a.calls.Load() != 3 {
		t.Errorf("after cooldown: %d attempts %q, a saw %d calls; want a to serve at once", r.Status, r.Header.Get("X-Gateway-Attempts"), a.calls.Load())
	}
}

func TestRetryAfterCoolsDeployment(t *testing.T) {
	a, b := newDeploymentServer(t), newDeploymentServer(t)
	a.set(status(http.StatusTooManyRequests, "rate_limit_exceeded", "Retry-After", "2"))
	g := routingGateway(t, aFirstConfig+"  allowed_fails: 100\n", "chat", a, b)
	start := time.Now()
	if r := routedChat(t, g, "chat"); r.Status != http.StatusOK || a.calls.Load() != 1 {
		t.Fatalf("first call: %d, a saw %d; want 200 from b after a's 429", r.Status, a.calls.Load())
	}
	a.use(mock.New(mock.Config{}))
	// For the 2 s a asked for, only b is called.
	for time.Since(start) < 1500*time.Millisecond {
		routedChat(t, g, "chat")
		time.Sleep(50 * time.Millisecond)
	}
	if n := a.calls.Load(); n != 1 {
		t.Errorf("a saw %d calls within its Retry-After, want 1", n)
	}
	metricHas(t, g, `gateway_deployment_cooldowns_total{model_group="chat",provider="openai",reason="retry_after"} 1`)
	time.Sleep(time.Until(start.Add(2100 * time.Millisecond)))
	if r := routedChat(t, g, "chat"); r.Status != http.StatusOK || a.calls.Load() != 2 {
		t.Errorf("after Retry-After: %d, a saw %d calls; want a called again", r.Status, a.calls.Load())
	}
}

func TestNumRetriesBoundsAttempts(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    int64
	}{
		{"", 3},               // unset: each deployment once
		{"num_retries: 0", 1}, // one attempt
		{"num_retries: 1", 2}, // across the group
		{"num_retries: 4", 5}, // more than the group: round again
	} {
		t.Run(strings.ReplaceAll(tc.setting, " ", ""), func(t *testing.T) {
			var servers []*deploymentServer
			for range 3 {
				s := newDeploymentServer(t)
				s.set(status(http.StatusServiceUnavailable, "overloaded"))
				servers = append(servers, s)
			}
			cfg := `
model_list:
  - model_name: chat
    litellm_params: {model: openai/a, api_base: "{{0}}"}
  - model_name: chat
    litellm_params: {model: openai/b, api_base: "{{1}}"}
  - model_name: chat
    litellm_params: {model: openai/c, api_base: "{{2}}"}
router_settings:
  allowed_fails: 100
`
			if tc.setting != "" {
				cfg += "  " + tc.setting + "\n"
			}
			g := routingGateway(t, cfg, "chat", servers...)
			r := routedChat(t, g, "chat")
			if r.Status != http.StatusServiceUnavailable {
				t.Errorf("status %d %s, want the upstream's 503", r.Status, r.Body)
			}
			var total int64
			for _, s := range servers {
				total += s.calls.Load()
			}
			if total != tc.want {
				t.Errorf("%d upstream attempts, want %d", total, tc.want)
			}
		})
	}
}

// holdAll makes every server hold its calls until release is closed, and
// reports each arrival on arrived.
func holdAll(servers []*deploymentServer, arrived chan<- int, release <-chan struct{}) {
	for i, s := range servers {
		ok := mock.New(mock.Config{})
		s.set(func(w http.ResponseWriter, r *http.Request) {
			arrived <- i
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			ok.ServeHTTP(w, r)
		})
	}
}

func TestLeastBusyPicksIdleDeployment(t *testing.T) {
	a, b := newDeploymentServer(t), newDeploymentServer(t)
	g := routingGateway(t, `
model_list:
  - model_name: chat
    litellm_params: {model: openai/a, api_base: "{{0}}"}
  - model_name: chat
    litellm_params: {model: openai/b, api_base: "{{1}}"}
router_settings:
  routing_strategy: least-busy
`, "chat", a, b)
	for round := range 10 {
		arrived := make(chan int, 4)
		release := make(chan struct{})
		holdAll([]*deploymentServer{a, b}, arrived, release)
		var wg sync.WaitGroup
		call := func() {
			wg.Add(1)
			go func() { defer wg.Done(); routedChat(t, g, "chat") }()
		}
		call()
		first := <-arrived
		call()
		second := <-arrived
		close(release)
		wg.Wait()
		if first == second {
			t.Fatalf("round %d: both calls went to deployment %d while the other was idle", round, first)
		}
	}
}

func TestLatencyBasedPrefersFastest(t *testing.T) {
	slow, fast := newDeploymentServer(t), newDeploymentServer(t)
	ok := mock.New(mock.Config{})
	slow.set(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		ok.ServeHTTP(w, r)
	})
	g := routingGateway(t, `
model_list:
  - model_name: chat
    litellm_params: {model: openai/slow, api_base: "{{0}}"}
  - model_name: chat
    litellm_params: {model: openai/fast, api_base: "{{1}}"}
router_settings:
  routing_strategy: latency-based-routing
`, "chat", slow, fast)
	const calls = 150
	for range calls {
		if r := routedChat(t, g, "chat"); r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	// Exploration sends about one call in ten elsewhere.
	if f := fast.calls.Load(); f < calls*3/4 {
		t.Errorf("fast deployment served %d of %d calls, want most", f, calls)
	}
	if s := slow.calls.Load(); s < 2 {
		t.Errorf("slow deployment served %d calls, want it still sampled now and then", s)
	}
}

func TestDeploymentCaps(t *testing.T) {
	a, b := newDeploymentServer(t), newDeploymentServer(t)
	g := routingGateway(t, `
model_list:
  - model_name: chat
    litellm_params: {model: openai/a, api_base: "{{0}}", rpm: 2, weight: 1e30}
  - model_name: chat
    litellm_params: {model: openai/b, api_base: "{{1}}", rpm: 1000, weight: 1e-30}
  - model_name: solo
    litellm_params: {model: openai/solo, api_base: "{{0}}", rpm: 1}
`, "chat, solo", a, b)
	for range 6 {
		if r := routedChat(t, g, "chat"); r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if a.calls.Load() != 2 || b.calls.Load() != 4 {
		t.Errorf("a saw %d calls and b %d, want a's cap of 2 and the rest on b", a.calls.Load(), b.calls.Load())
	}
	if r := routedChat(t, g, "solo"); r.Status != http.StatusOK {
		t.Fatalf("solo: %d %s", r.Status, r.Body)
	}
	r := routedChat(t, g, "solo")
	if env := decodeError(t, r.Body); r.Status != http.StatusTooManyRequests || env.Error.Code == nil || *env.Error.Code != "rate_limit_exceeded" || r.Header.Get("Retry-After") == "" {
		t.Errorf("solo over its cap: %d %s (Retry-After %q), want 429 rate_limit_exceeded", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}

func TestStreamTimeouts(t *testing.T) {
	stalled, ok := newDeploymentServer(t), newDeploymentServer(t)
	cancelled := make(chan struct{}, 4)
	stalled.set(func(w http.ResponseWriter, r *http.Request) {
		// Two events, then silence until the gateway gives up.
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 2 {
			fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
		cancelled <- struct{}{}
	})
	silentHeaders := newDeploymentServer(t)
	silentHeaders.set(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		cancelled <- struct{}{}
	})
	g := routingGateway(t, `
model_list:
  - model_name: silent
    litellm_params: {model: openai/s, api_base: "{{0}}", stream_timeout: 0.4}
  - model_name: first-byte
    litellm_params: {model: openai/h, api_base: "{{2}}", stream_timeout: 0.3, weight: 1e30}
  - model_name: first-byte
    litellm_params: {model: openai/ok, api_base: "{{1}}", weight: 1e-30}
`, "silent, first-byte", stalled, ok, silentHeaders)

	// Silence mid-stream: one error event, no [DONE], upstream cancelled.
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(`{"model":"silent","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+routingKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, line)
		}
	}
	res.Body.Close()
	took := time.Since(start)
	if len(events) != 3 || !strings.Contains(events[2], `"code":"upstream_timeout"`) || strings.Contains(strings.Join(events, ""), "[DONE]") {
		t.Errorf("events = %q, want two chunks and one upstream_timeout error event, no [DONE]", events)
	}
	if took > 3*time.Second {
		t.Errorf("stream ended after %v, want about stream_timeout (0.4 s)", took)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the silent upstream's request was not cancelled")
	}

	// No first byte within stream_timeout: the next deployment serves.
	req, _ = http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(`{"model":"first-byte","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+routingKey)
	r := roundTrip(t, req)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "[DONE]") || r.Header.Get("X-Gateway-Attempts") != "2" || silentHeaders.calls.Load() != 1 {
		t.Errorf("first-byte timeout: %d attempts %q, silent saw %d; want a whole stream from the second deployment",
			r.Status, r.Header.Get("X-Gateway-Attempts"), silentHeaders.calls.Load())
	}
}

// metricHas fails unless /metrics holds line.
func metricHas(t *testing.T, g *gw, line string) {
	t.Helper()
	r := g.do(t, http.MethodGet, "/metrics", "", "", nil)
	if !strings.Contains(string(r.Body), line+"\n") {
		var have []string
		for _, l := range strings.Split(string(r.Body), "\n") {
			name, _, _ := strings.Cut(line, "{")
			if strings.HasPrefix(l, name) {
				have = append(have, l)
			}
		}
		t.Errorf("/metrics lacks %q; has %q", line, have)
	}
}
