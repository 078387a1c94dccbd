package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// goroutineSlack is how many goroutines above its baseline a gateway may
// keep once a fault is over: pooled upstream connections (two goroutines
// each) come and go. A call left hanging holds four or more.
const goroutineSlack = 6

// goroutines reads go_goroutines from the gateway's GET /metrics.
func goroutines(tb testing.TB, client *http.Client, base string) int {
	tb.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(f)
		}
	}
	tb.Fatalf("GET /metrics (%d) has no go_goroutines", resp.StatusCode)
	return 0
}

// healthy fails tb unless the gateway answers readiness 200 and its
// goroutines come back to at most baseline plus goroutineSlack within
// 5 s: the fault left nothing behind.
func (g *runningGateway) healthy(tb testing.TB, client *http.Client, base string, baseline int) {
	tb.Helper()
	g.ready(tb, client, base)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := goroutines(tb, client, base)
		if n <= baseline+goroutineSlack {
			tb.Logf("goroutines after the fault: %d (baseline %d)", n, baseline)
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("goroutines = %d 5s after the fault, want at most %d (baseline %d + %d)", n, baseline+goroutineSlack, baseline, goroutineSlack)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// baseline waits for the gateway's goroutine count to settle (two equal
// readings 200 ms apart) and returns it.
func baseline(tb testing.TB, client *http.Client, base string) int {
	tb.Helper()
	prev := goroutines(tb, client, base)
	for range 20 {
		time.Sleep(200 * time.Millisecond)
		n := goroutines(tb, client, base)
		if n == prev {
			return n
		}
		prev = n
	}
	return prev
}

// within fails tb unless took lies in [lo, hi].
func within(tb testing.TB, what string, took, lo, hi time.Duration) {
	tb.Helper()
	if took < lo || took > hi {
		tb.Errorf("%s took %v, want between %v and %v", what, took.Round(time.Millisecond), lo, hi)
	}
}

// timedDo sends a request with the bearer key (none when empty) and a JSON
// body through client and returns the status, the answer's body and how
// long it took; status 0 and the error's text when the request failed.
func timedDo(tb testing.TB, client *http.Client, base, method, path, key string, body []byte) (int, []byte, time.Duration) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, base+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, time.Since(start)
}

// generateKey makes a key for gpt-4o through the admin API with the
// master key of the fault tests' configurations.
func generateKey(tb testing.TB, client *http.Client, base string) string {
	tb.Helper()
	code, b, _ := timedDo(tb, client, base, http.MethodPost, "/key/generate", "sk-master-test-0000", []byte(`{"models": ["gpt-4o"]}`))
	var out struct {
		Key string `json:"key"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Key == "" {
		tb.Fatalf("POST /key/generate = %d %s", code, b)
	}
	return out.Key
}

// clientLoad is n client loops calling the gateway without pause while a
// fault is injected (startLoad).
type clientLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	calls    int
	failures []string
}

// startLoad starts n client loops; each calls call(w), w its number, until
// finish. call returns "" for a good call, else what went wrong.
func startLoad(n int, call func(w int) string) *clientLoad {
	l := &clientLoad{stop: make(chan struct{})}
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				bad := call(w)
				l.mu.Lock()
				l.calls++
				if bad != "" {
					l.failures = append(l.failures, fmt.Sprintf("client %d: %s", w, bad))
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the loops, waits for them and returns how many calls ran
// and what went wrong.
func (l *clientLoad) finish() (calls int, failures []string) {
	close(l.stop)
	l.wg.Wait()
	return l.calls, l.failures
}
