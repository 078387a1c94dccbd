package tests

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The README's chat example: a demo key of examples/config.yaml and a model
// its team allows.
const (
	demoKey   = "sk-demo-alice-research-0001"
	demoModel = "gpt-4o"
)

// readmeRun returns the README's run command, the first line of the first
// shell block that runs ./cmd/gateway.
func readmeRun(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^(GATEWAY_MASTER_KEY=\\S+ go run \\./cmd/gateway)\\s*$").FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("README.md has no `GATEWAY_MASTER_KEY=... go run ./cmd/gateway` run command")
	}
	return m[1]
}

// TestReadmeRunCommand builds the gateway and starts it the way the README
// says (embedded example config, in-memory store, mock provider), on a free
// port given through GATEWAY_LISTEN, then makes the README's chat call with a
// demo key through openai-go, and stops it with SIGTERM.
func TestReadmeRunCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	cmdline := readmeRun(t)
	masterKey := strings.TrimPrefix(strings.Fields(cmdline)[0], "GATEWAY_MASTER_KEY=")

	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, "../cmd/gateway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var stderr syncBuffer // written by the exec copier while the test reads it
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GATEWAY_MASTER_KEY="+masterKey, "GATEWAY_LISTEN="+addr, "GATEWAY_CONFIG=", "DATABASE_URL=")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready after 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Chat.Completions.New(ctx, chatParams(demoModel))
	if err != nil {
		t.Fatalf("chat through the README gateway: %v", err)
	}
	if len(resp.Choices) == 0 || !strings.Contains(resp.Choices[0].Message.Content, "mock") {
		t.Errorf("chat answer = %+v, want the mock provider's reply", resp.Choices)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("gateway exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit within 15s of SIGTERM")
	}
	// Read after the exit, which writes every log line still gathered: the
	// chat's access line must be there, and no plaintext key anywhere.
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"route":"inference"`) {
		t.Errorf("no access-log line for the chat call:\n%s", logs)
	}
	if strings.Contains(logs, demoKey) || strings.Contains(logs, masterKey) {
		t.Errorf("a plaintext key appears in the logs:\n%s", logs)
	}
}
