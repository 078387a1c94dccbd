package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/store/postgres/pgtest"
)

// TestFaultPostgresRestart runs the real binary on a private PostgreSQL
// cluster and stops it, then starts it again on the same port, while
// clients call the gateway without pause with a key it has cached. The
// cached key keeps working throughout; during the outage a key the
// gateway has not seen gets 503 (not 401 or 500), and every request
// answers within a bound; after the restart the gateway recovers by
// itself: readiness 200, a key created through the admin API then works,
// and the process is healthy. Under CI=true the test fails, never skips,
// when PostgreSQL is not installed.
func TestFaultPostgresRestart(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds the binary; skipped with -short (never under CI=true)")
	}
	cluster := pgtest.StartCluster(t)
	bin := buildGateway(t)
	g := runGateway(t, bin, reloadConfig, "", "--database-url", cluster.URL)
	base := "http://" + g.addr
	// No request may take longer than bound, outage or not.
	const bound = 6 * time.Second
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * bound}
	g.ready(t, probe, base)

	do := func(method, path, key string, body []byte) (int, []byte, time.Duration) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := probe.Do(req)
		if err != nil {
			return 0, []byte(err.Error()), time.Since(start)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, time.Since(start)
	}
	newKey := func() string {
		t.Helper()
		code, b, _ := do(http.MethodPost, "/key/generate", "sk-master-test-0000", []byte(`{"models": ["gpt-4o"]}`))
		var out struct {
			Key string `json:"key"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Key == "" {
			t.Fatalf("POST /key/generate = %d %s", code, b)
		}
		return out.Key
	}
	chat := func(key string) (int, []byte, time.Duration) {
		return do(http.MethodPost, "/v1/chat/completions", key, chatBody("gpt-4o"))
	}

	cached, unseen := newKey(), newKey()
	if code, b, _ := chat(cached); code != http.StatusOK {
		t.Fatalf("chat before the outage = %d %s", code, b)
	}
	base0 := baseline(t, probe, base)

	// Load with the cached key from 4 clients until the end.
	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		calls    int
		failures []string
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, b, took := chat(cached)
				mu.Lock()
				calls++
				if code != http.StatusOK || took > bound {
					failures = append(failures, fmt.Sprintf("client %d: %d after %v: %.200s", w, code, took, b))
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)

	cluster.Stop(t)
	outage := time.Now()
	for _, key := range []string{unseen, "sk-never-issued-0000000000001"} {
		code, b, took := chat(key)
		if code != http.StatusServiceUnavailable || took > bound {
			t.Errorf("unseen key during the outage = %d after %v %s, want 503 within %v", code, took, b, bound)
		} else {
			decodeError(t, b)
		}
	}
	if code, b, took := do(http.MethodPost, "/key/generate", "sk-master-test-0000", []byte(`{}`)); code != http.StatusServiceUnavailable || took > bound {
		t.Errorf("admin write during the outage = %d after %v %s, want 503 within %v", code, took, b, bound)
	}
	if code, _, took := do(http.MethodGet, "/health/readiness", "", nil); code != http.StatusServiceUnavailable || took > bound {
		t.Errorf("readiness during the outage = %d after %v, want 503 within %v", code, took, bound)
	}
	time.Sleep(time.Until(outage.Add(2 * time.Second))) // load runs through a while of outage

	cluster.Start(t)
	restarted := time.Now()
	deadline := restarted.Add(30 * time.Second)
	for {
		code, _, took := do(http.MethodGet, "/health/readiness", "", nil)
		if took > bound {
			t.Errorf("readiness took %v while the database returned", took)
		}
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness did not recover within 30s of the database returning; logs:\n%s", tail([]byte(g.stderr.String()), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("readiness back %v after the restart", time.Since(restarted).Round(time.Millisecond))
	fresh := newKey()
	for _, key := range []string{fresh, unseen} {
		if code, b, _ := chat(key); code != http.StatusOK {
			t.Errorf("key after the database returned: chat = %d %s, want 200", code, b)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d calls with the cached key failed or were slow: %s", len(failures), calls, strings.Join(failures[:min(len(failures), 5)], "; "))
	}
	if calls < 20 {
		t.Errorf("only %d calls ran", calls)
	}
	g.healthy(t, probe, base, base0)
}
