package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/cmd/gateway/app"
)

// reloadConfig serves one in-process mock model to one key.
const reloadConfig = `
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {model: mock/gpt-4o-mini}
  - model_name: gpt-4o
    litellm_params: {model: mock/gpt-4o}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  keys:
    - {key: sk-reload-key-0001, key_alias: loader}
`

// pauseBundle is a custom bundle that pauses one model.
func pauseBundle(revision, model string) map[string]string {
	return map[string]string{
		".manifest":  fmt.Sprintf(`{"roots": ["gateway/custom"], "revision": %q}`, revision),
		"pause.rego": fmt.Sprintf("package gateway.custom\n\ndeny contains \"model %s is paused\" if input.model.requested == %q\n", model, model),
	}
}

// writeFiles replaces files in dir atomically (write, then rename).
func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p+".tmp", []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			tb.Fatal(err)
		}
	}
}

// outcome is one request of the load.
type outcome struct {
	start, end time.Time
	status     int
	body       string
	err        error
}

// load sends chat calls for model from workers goroutines until stop is
// closed.
func load(g *gw, key, model string, workers int, stop <-chan struct{}) []outcome {
	var (
		mu  sync.Mutex
		out []outcome
		wg  sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	body := chatBody(model)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{start: time.Now()}
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					o.status, o.body = resp.StatusCode, string(b)
				}
				o.err, o.end = err, time.Now()
				mu.Lock()
				out = append(out, o)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// TestReloadUnderLoad edits a directory bundle while the gateway serves
// steady traffic: every request is answered by the old or the new policy,
// those decided before the swap by the old one, those after by the new one,
// and none fails. A broken edit afterwards changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, pauseBundle("v1", "gpt-4o-mini"))
	g := startGatewayWith(t, reloadConfig, nil, app.Options{Bundles: []string{dir}})
	oldRev := g.Engine.Revision()

	stop := make(chan struct{})
	results := make(chan []outcome)
	go func() { results <- load(g, "sk-reload-key-0001", "gpt-4o-mini", 4, stop) }()
	time.Sleep(200 * time.Millisecond) // steady load on the old policy

	writeFiles(t, dir, pauseBundle("v2", "gpt-4o"))
	var lastOld, firstNew time.Time
	deadline := time.Now().Add(10 * time.Second)
	for {
		t0 := time.Now()
		if g.Engine.Revision() != oldRev {
			firstNew = time.Now()
			break
		}
		lastOld = t0
		if t0.After(deadline) {
			close(stop)
			<-results
			t.Fatal("the edited bundle was not picked up within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // steady load on the new policy

	// A broken edit is refused while the load goes on.
	writeFiles(t, dir, map[string]string{"pause.rego": "package gateway.custom\n\ndeny contains \"x\" if {\n"})
	eventually(t, "the broken edit to be refused", func() bool { return g.Engine.Status().Failures > 0 })
	time.Sleep(100 * time.Millisecond)
	close(stop)
	outs := <-results

	var before, after, between int
	for _, o := range outs {
		oldAnswer := o.status == http.StatusForbidden && strings.Contains(o.body, "model gpt-4o-mini is paused")
		newAnswer := o.status == http.StatusOK
		switch {
		case o.err != nil:
			t.Errorf("request failed: %v", o.err)
		case o.end.Before(lastOld):
			before++
			if !oldAnswer {
				t.Errorf("request decided before the swap: %d %s, want the old policy's 403", o.status, o.body)
			}
		case o.start.After(firstNew):
			after++
			if !newAnswer {
				t.Errorf("request started after the swap: %d %s, want the new policy's 200", o.status, o.body)
			}
		default:
			between++
			if !oldAnswer && !newAnswer {
				t.Errorf("request during the swap: %d %s, want the old or the new policy's answer", o.status, o.body)
			}
		}
	}
	t.Logf("%d requests: %d before the swap, %d during, %d after", len(outs), before, between, after)
	if before == 0 || after == 0 {
		t.Errorf("%d requests before and %d after the swap, want both", before, after)
	}
	if st := g.Engine.Status(); !strings.HasSuffix(st.Revision, ",v2") || !strings.Contains(st.LastError, "rego_parse_error") {
		t.Errorf("Status() = revision %s, last error %q; want v2 serving and the parse error", st.Revision, st.LastError)
	}
	fams := scrape(t, g)
	st := g.Engine.Status()
	if got := value(fams, "gateway_bundle_reloads_total", nil); got != float64(st.Reloads) || got < 1 {
		t.Errorf("gateway_bundle_reloads_total = %v, want Status().Reloads = %d (at least 1)", got, st.Reloads)
	}
	if got := value(fams, "gateway_bundle_reload_failures_total", nil); got != float64(st.Failures) || got < 1 {
		t.Errorf("gateway_bundle_reload_failures_total = %v, want Status().Failures = %d (at least 1)", got, st.Failures)
	}
}

// TestBundleServerEndToEnd serves the custom bundle from an OPA-style
// bundle server: picked up at start, replaced on a new ETag, and kept while
// the server is down.
func TestBundleServerEndToEnd(t *testing.T) {
	var (
		mu   sync.Mutex
		data []byte
		etag string
		down bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	publish := func(rev, model string) {
		b := bundleTarball(t, pauseBundle(rev, model))
		mu.Lock()
		data, etag = b, `"`+rev+`"`
		mu.Unlock()
	}
	publish("s1", "gpt-4o-mini")
	config := reloadConfig + "  policy: {poll_interval: 100ms}\n"
	g := startGatewayWith(t, config, nil, app.Options{Bundles: []string{srv.URL + "/bundles/custom.tar.gz"}})

	if got := chatStatusRaw(t, g, "gpt-4o-mini"); got != http.StatusForbidden {
		t.Errorf("s1: chat gpt-4o-mini = %d, want 403", got)
	}
	publish("s2", "gpt-4o")
	eventually(t, "s2", func() bool { return strings.HasSuffix(g.Engine.Revision(), ",s2") })
	if a, b := chatStatusRaw(t, g, "gpt-4o-mini"), chatStatusRaw(t, g, "gpt-4o"); a != http.StatusOK || b != http.StatusForbidden {
		t.Errorf("s2: chat gpt-4o-mini, gpt-4o = %d, %d; want 200, 403", a, b)
	}
	mu.Lock()
	down = true
	mu.Unlock()
	eventually(t, "the outage to show in status", func() bool {
		st := g.Engine.Status()
		return strings.Contains(st.Bundles[len(st.Bundles)-1].LastError, "503")
	})
	if got := chatStatusRaw(t, g, "gpt-4o"); got != http.StatusForbidden {
		t.Errorf("server down: chat gpt-4o = %d, want s2's 403", got)
	}
	publish("s3", "none")
	mu.Lock()
	down = false
	mu.Unlock()
	eventually(t, "s3 after the outage", func() bool { return strings.HasSuffix(g.Engine.Revision(), ",s3") })
	if got := chatStatusRaw(t, g, "gpt-4o"); got != http.StatusOK {
		t.Errorf("s3: chat gpt-4o = %d, want 200", got)
	}
}

// chatStatusRaw sends one chat call for model and returns the status.
func chatStatusRaw(t *testing.T, g *gw, model string) int {
	t.Helper()
	return g.do(t, http.MethodPost, "/v1/chat/completions", "sk-reload-key-0001", "application/json", chatBody(model)).Status
}

// bundleTarball packs files as an OPA bundle tarball, with paths written
// the way opa build writes them ("/.manifest").
func bundleTarball(tb testing.TB, files map[string]string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
