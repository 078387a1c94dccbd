package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// faultKey may call every model of faultsConfig.
const faultKey = "sk-faults-key-0001"

// faultLimit is the gateway's --max-upstream-response-bytes in the test.
const faultLimit = 1 << 20

// faultsConfig has one model group per upstream fault, each with one
// deployment and one attempt, its timeouts a second or less.
const faultsConfig = `
model_list:
  - model_name: ok
    litellm_params: {model: openai/ok, api_base: "{{UP}}", api_key: sk-up}
  - model_name: stall-headers
    litellm_params: {model: openai/stall-headers, api_base: "{{UP}}", api_key: sk-up, timeout: 1}
  - model_name: stall-first-event
    litellm_params: {model: openai/stall-first-event, api_base: "{{UP}}", api_key: sk-up, stream_timeout: 1}
  - model_name: stall-mid-stream
    litellm_params: {model: openai/stall-mid-stream, api_base: "{{UP}}", api_key: sk-up, stream_timeout: 1}
  - model_name: stall-body
    litellm_params: {model: openai/stall-body, api_base: "{{UP}}", api_key: sk-up, timeout: 1}
  - model_name: endless
    litellm_params: {model: openai/endless, api_base: "{{UP}}", api_key: sk-up}
  - model_name: big
    litellm_params: {model: openai/big, api_base: "{{UP}}", api_key: sk-up}
  - model_name: big-stream
    litellm_params: {model: openai/big-stream, api_base: "{{UP}}", api_key: sk-up}
router_settings:
  num_retries: 0
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: ` + faultKey + `, key_alias: faults, models: [ok, stall-headers, stall-first-event, stall-mid-stream, stall-body, endless, big, big-stream]}
`

// faultUpstream misbehaves according to the upstream model asked for, and
// reports each request the gateway cancelled on cancelled (the model's
// name).
type faultUpstream struct {
	URL       string
	cancelled chan string
}

func startFaultUpstream(tb testing.TB) *faultUpstream {
	tb.Helper()
	u := &faultUpstream{cancelled: make(chan string, 64)}
	ok := mock.New(mock.Config{})
	chunk := func(w io.Writer, i int) {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-f\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(body, &m)
		rc := http.NewResponseController(w)
		// hang holds the request until the gateway cancels it.
		hang := func() {
			select {
			case <-r.Context().Done():
				u.cancelled <- m.Model
			case <-time.After(30 * time.Second):
			}
		}
		switch m.Model {
		case "stall-headers":
			hang()
		case "stall-first-event":
			w.Header().Set("Content-Type", "text/event-stream")
			_ = rc.Flush()
			hang()
		case "stall-mid-stream":
			w.Header().Set("Content-Type", "text/event-stream")
			chunk(w, 0)
			chunk(w, 1)
			_ = rc.Flush()
			hang()
		case "stall-body":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"chatcmpl-stall","object":"chat.completion",`)
			_ = rc.Flush()
			hang()
		case "endless":
			w.Header().Set("Content-Type", "application/json")
			buf := bytes.Repeat([]byte(" "), 32<<10)
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := w.Write(buf); err != nil {
					break
				}
			}
			u.cancelled <- m.Model
		case "big":
			// A whole answer just under the limit.
			text := strings.Repeat("x", faultLimit-64<<10)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"chatcmpl-big","object":"chat.completion","created":1,"model":"big","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}]}`, text)
		case "big-stream":
			// A stream twice the limit, which does not apply to streams.
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 2*faultLimit/200; i++ {
				chunk(w, i)
				if i%100 == 0 {
					_ = rc.Flush()
				}
			}
			io.WriteString(w, "data: [DONE]\n\n")
		default:
			r.Body = io.NopCloser(bytes.NewReader(body))
			ok.ServeHTTP(w, r)
		}
	}))
	tb.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// waitCancelled fails tb unless the upstream reports n requests for model
// cancelled within 5 s.
func (u *faultUpstream) waitCancelled(tb testing.TB, model string, n int) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for n > 0 {
		select {
		case got := <-u.cancelled:
			if got == model {
				n--
			}
		case <-deadline:
			tb.Errorf("%d upstream requests for %s were not cancelled within 5s", n, model)
			return
		}
	}
}

// faultCall posts a chat call for model and returns the response with
// its body unread. It may run in a goroutine of its own: on error it
// reports it and returns an empty response.
func faultCall(tb testing.TB, client *http.Client, base, model string, stream bool) *http.Response {
	tb.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+faultKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tb.Errorf("POST %s: %v", model, err)
		return &http.Response{Body: io.NopCloser(strings.NewReader(""))}
	}
	return resp
}

// concurrently runs call n times at once and waits for them: a fault
// that leaked goroutines would leak n times as many.
func concurrently(n int, call func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call()
		}()
	}
	wg.Wait()
}

// sseEvents reads an event stream to its end and returns the data of
// each event.
func sseEvents(tb testing.TB, r io.Reader) ([]string, error) {
	tb.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, line)
		}
	}
	return events, sc.Err()
}

// TestFaultUpstream runs the real binary against an upstream that stalls
// before its headers, before a stream's first event, mid-stream and in
// the middle of a JSON answer, that sends an endless answer, and that
// sends answers near and over --max-upstream-response-bytes. Each time the
// client's answer ends within the bound that applies (timeout,
// stream_timeout, the response limit), the upstream request is
// cancelled, and the process is healthy afterwards: readiness 200 and its
// goroutines back to their baseline. Each fault is met by three calls at
// once, so that a leak would show well above the baseline's noise.
func TestFaultUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	up := startFaultUpstream(t)
	g := runGateway(t, bin, faultsConfig, up.URL, "--max-upstream-response-bytes", fmt.Sprint(faultLimit))
	base := "http://" + g.addr
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	g.ready(t, probe, base)
	// Each call on a connection of its own, closed after it.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp := faultCall(t, client, base, "ok", false)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ok = %d, want 200", resp.StatusCode)
	}
	base0 := baseline(t, probe, base)
	t.Logf("baseline: %d goroutines", base0)

	const (
		timeout = time.Second // the deployments' timeout and stream_timeout
		// Each fault is met by this many calls at once.
		calls = 3
	)

	t.Run("stall before headers", func(t *testing.T) {
		concurrently(calls, func() {
			start := time.Now()
			resp := faultCall(t, client, base, "stall-headers", false)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			within(t, "the answer", time.Since(start), timeout*8/10, timeout+2*time.Second)
			var e errorEnvelope
			err := json.Unmarshal(b, &e)
			if resp.StatusCode != http.StatusGatewayTimeout || err != nil || e.Error.Code == nil || *e.Error.Code != "upstream_timeout" {
				t.Errorf("stall before headers = %d %s, want 504 and an upstream_timeout envelope", resp.StatusCode, b)
			}
		})
		up.waitCancelled(t, "stall-headers", calls)
		g.healthy(t, probe, base, base0)
	})

	for _, tc := range []struct {
		model  string
		chunks int
	}{
		{"stall-first-event", 0},
		{"stall-mid-stream", 2},
	} {
		t.Run(tc.model, func(t *testing.T) {
			concurrently(calls, func() {
				start := time.Now()
				resp := faultCall(t, client, base, tc.model, true)
				events, err := sseEvents(t, resp.Body)
				resp.Body.Close()
				within(t, "the stream", time.Since(start), timeout*8/10, timeout+2*time.Second)
				if err != nil {
					t.Errorf("stream read error %v, want a clean end after the error event", err)
				}
				if resp.StatusCode != http.StatusOK || len(events) != tc.chunks+1 ||
					!strings.Contains(events[len(events)-1], `"code":"upstream_timeout"`) || strings.Contains(strings.Join(events, "\n"), "[DONE]") {
					t.Errorf("stream = %d %q, want 200, %d chunks, one upstream_timeout error event and no [DONE]", resp.StatusCode, events, tc.chunks)
				}
			})
			up.waitCancelled(t, tc.model, calls)
			g.healthy(t, probe, base, base0)
		})
	}

	t.Run("JSON body stalls after headers", func(t *testing.T) {
		concurrently(calls, func() {
			start := time.Now()
			resp := faultCall(t, client, base, "stall-body", false)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			within(t, "the answer", time.Since(start), timeout*8/10, timeout+2*time.Second)
			// Headers went out; the body can only be cut.
			if resp.StatusCode != http.StatusOK || err == nil {
				t.Errorf("stalled body = %d, %q, read error %v; want 200 and the body cut (a read error)", resp.StatusCode, b, err)
			}
		})
		up.waitCancelled(t, "stall-body", calls)
		g.healthy(t, probe, base, base0)
	})

	t.Run("endless JSON body", func(t *testing.T) {
		concurrently(calls, func() {
			start := time.Now()
			resp := faultCall(t, client, base, "endless", false)
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			within(t, "the answer", time.Since(start), 0, 5*time.Second)
			if err == nil || n > faultLimit {
				t.Errorf("endless body: %d bytes, read error %v; want it cut (a read error) at most %d bytes in", n, err, faultLimit)
			}
		})
		up.waitCancelled(t, "endless", calls)
		g.healthy(t, probe, base, base0)
	})

	t.Run("answers under the limit and long streams pass", func(t *testing.T) {
		resp := faultCall(t, client, base, "big", false)
		var answer struct {
			Choices []struct {
				Message struct{ Content string }
			}
		}
		err := json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || len(answer.Choices) != 1 || len(answer.Choices[0].Message.Content) != faultLimit-64<<10 {
			t.Errorf("answer just under the limit = %d, %v; want 200 and all of it", resp.StatusCode, err)
		}
		resp = faultCall(t, client, base, "big-stream", true)
		var n int64
		cr := &countReader{r: resp.Body, n: &n}
		events, err := sseEvents(t, cr)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || n <= faultLimit || len(events) == 0 || events[len(events)-1] != "[DONE]" {
			t.Errorf("stream over the limit = %d, %d bytes, %v; want 200, more than %d bytes and [DONE]", resp.StatusCode, n, err, faultLimit)
		}
		g.healthy(t, probe, base, base0)
	})

	if logs := g.stderr.String(); !strings.Contains(logs, "upstream answer larger than the response limit") ||
		!strings.Contains(logs, "upstream answer silent for longer than its timeout") {
		t.Errorf("logs do not name the cut answers:\n%s", tail([]byte(logs), 3000))
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
