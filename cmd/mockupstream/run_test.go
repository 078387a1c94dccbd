package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startRun starts run on a free port and returns its base URL, a stop
// function and run's result.
func startRun(tb testing.TB, args []string) (string, context.CancelFunc, <-chan error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, func(string) string { return "" })
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		tb.Fatalf("no startup line: %v (run: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	if m == nil || !strings.Contains(line, "mock upstream listening") {
		cancel()
		tb.Fatalf("startup line = %q, want the listen address", line)
	}
	return "http://" + m[1], cancel, done
}

func TestRun(t *testing.T) {
	base, stop, done := startRun(t, []string{"--listen", "127.0.0.1:0", "--chunks", "2", "--latency", "1ms"})
	res, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	err = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || out.Model != "demo" || out.Choices[0].Message.Content != "Hello from mock model demo." {
		t.Errorf("chat = %d %+v (%v), want 200 from model demo", res.StatusCode, out, err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not return after cancel")
	}
}

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
	}{
		{"unknown flag", []string{"--nope"}, ""},
		{"extra argument", []string{"--listen", "127.0.0.1:0", "serve"}, ""},
		{"bad chunks", []string{"--listen", "127.0.0.1:0", "--chunks", "0"}, ""},
		{"negative latency", []string{"--listen", "127.0.0.1:0", "--latency", "-1s"}, ""},
		{"bad env address", nil, "256.0.0.1:99999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "MOCK_LISTEN" {
					return tc.env
				}
				return ""
			}
			err := run(t.Context(), tc.args, io.Discard, getenv)
			if err == nil {
				t.Errorf("run(%q, MOCK_LISTEN=%q) = nil, want an error", tc.args, tc.env)
			}
		})
	}
}
