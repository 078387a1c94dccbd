package tests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// releaseTags are the build tags of the gateway's release binary (the
// Dockerfile's go build, which TestDockerfile holds to them). grpcnotrace
// keeps golang.org/x/net/trace, and with it html/template, out of gRPC:
// see docs/DECISIONS.md, "A smaller binary".
const releaseTags = "grpcnotrace"

// releaseFlags are the Dockerfile's other go build flags, and
// releaseEnv its build environment (a static binary), which buildBinary
// builds every binary with, so that what the tests run and measure is what
// ships: a cgo build links the C library, about 1.5 MB more resident.
var (
	releaseFlags = []string{"-trimpath", "-ldflags=-s -w"}
	releaseEnv   = "CGO_ENABLED=0"
)

// buildGateway builds the real binary, as the Dockerfile does, into a
// temporary directory.
func buildGateway(tb testing.TB) string {
	tb.Helper()
	return buildBinary(tb, "../cmd/gateway", "-tags", releaseTags)
}

// buildBinary builds the command in pkg (relative to tests/) as the
// Dockerfile builds (releaseEnv, releaseFlags), with the go build flags
// given, into a temporary directory and returns its path.
func buildBinary(tb testing.TB, pkg string, flags ...string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	args := append(append(append([]string{"build"}, releaseFlags...), flags...), "-o", bin, pkg)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), releaseEnv)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestOpsGracefulShutdown sends SIGTERM to the real binary while a stream
// runs: readiness turns false while the gateway still serves, then new
// connections are refused, the stream completes, and the exit status is 0.
func TestOpsGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	addr := freeAddr(t)
	var stderr syncBuffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"GATEWAY_MASTER_KEY=sk-master-demo", "GATEWAY_LISTEN="+addr, "GATEWAY_CONFIG=", "DATABASE_URL=",
		"GATEWAY_DRAIN_DELAY=700ms", "GATEWAY_SHUTDOWN_TIMEOUT=20s", "OTEL_TRACES_EXPORTER=none")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + addr
	// Every probe on a new connection, as a load balancer's would be.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	readiness := func() (int, error) {
		resp, err := probe.Get(base + "/health/readiness")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	eventually(t, "the gateway to become ready", func() bool { s, _ := readiness(); return s == http.StatusOK })

	// A stream of 30 chunks 100 ms apart: about 3 s, longer than the drain.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mock-Chunks", "30")
	req.Header.Set("X-Mock-Chunk-Delay", "100ms")
	req.Header.Set("X-Request-Id", "shutdown-stream")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream status = %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first stream line = %q, %v", first, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness false while still serving (the drain delay).
	eventually(t, "readiness 503 after SIGTERM", func() bool {
		s, err := readiness()
		if err != nil {
			t.Fatalf("readiness probe failed before reporting not ready: %v", err)
		}
		return s == http.StatusServiceUnavailable
	})
	// Then no new connections, while the stream still runs.
	eventually(t, "new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case err := <-exited:
		t.Fatalf("the gateway exited (%v) before the stream completed; stderr:\n%s", err, stderr.String())
	default:
	}

	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream broke during shutdown: %v", err)
	}
	if !bytes.HasSuffix(bytes.TrimSpace(rest), []byte("data: [DONE]")) || bytes.Contains(rest, []byte(`"error"`)) {
		t.Errorf("stream did not complete cleanly; its end: %q", tail(rest, 200))
	}
	if n := bytes.Count(rest, []byte("data: ")); n < 30 {
		t.Errorf("stream had %d more events after SIGTERM, want at least 30", n)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the gateway did not exit within 20s of SIGTERM; stderr:\n%s", stderr.String())
	}
	logs := stderr.String()
	if i, j := strings.Index(logs, "readiness is false"), strings.Index(logs, "no longer accepting"); i < 0 || j < i {
		t.Errorf("logs should report readiness false, then no new connections:\n%s", logs)
	}
	// The stream ended just before the exit: its access line and the last
	// line are written on the way out, not lost with the log buffer.
	if !strings.Contains(logs, `"request_id":"shutdown-stream"`) || !strings.HasSuffix(strings.TrimSpace(logs), `"msg":"stopped"}`) {
		t.Errorf("logs should hold the stream's access line and end with \"stopped\":\n%s", logs)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
