package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sighupConfig is reloadConfig with file polling slowed to an hour, so that
// within the test only SIGHUP can explain a reload of a directory bundle.
const sighupConfig = reloadConfig + "  policy: {file_poll_interval: 1h}\n"

// policyStatus is the part of GET /admin/policy/status the test reads.
type policyStatus struct {
	Revision  string `json:"revision"`
	LastError string `json:"last_error"`
	Reloads   uint64 `json:"reloads"`
	Failures  uint64 `json:"failures"`
}

// TestPolicySIGHUP runs the real binary on a directory bundle: a changed
// bundle is swapped in on SIGHUP (file polling is too slow to do it), and a
// broken one sent the same way is refused, the last good one serving on and
// the status reporting the error.
func TestPolicySIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	bundleDir := filepath.Join(dir, "custom")
	if err := os.Mkdir(bundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, bundleDir, pauseBundle("r1", "gpt-4o-mini"))
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(sighupConfig), 0o600); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	var stderr syncBuffer
	cmd := exec.Command(bin, "--config", cfgPath, "--bundle", bundleDir, "--listen", addr)
	cmd.Env = append(os.Environ(), "GATEWAY_MASTER_KEY=", "LITELLM_MASTER_KEY=", "GATEWAY_BUNDLE=",
		"GATEWAY_DECISION_LOG=", "DATABASE_URL=", "OTEL_TRACES_EXPORTER=none")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	// alive fails the test at once when the gateway has exited (as it would
	// on a SIGHUP nobody handles).
	alive := func() {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the gateway exited: %v; stderr:\n%s", err, stderr.String())
		default:
		}
	}
	call := func(method, path, key string, body []byte) (int, []byte) {
		t.Helper()
		alive()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil
		}
		return resp.StatusCode, b
	}
	status := func() policyStatus {
		t.Helper()
		code, body := call(http.MethodGet, "/admin/policy/status", "sk-master-test-0000", nil)
		var st policyStatus
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("GET /admin/policy/status: %v in %s", err, body)
			}
		}
		return st
	}
	chat := func(model string) int {
		t.Helper()
		code, _ := call(http.MethodPost, "/v1/chat/completions", "sk-reload-key-0001", chatBody(model))
		return code
	}
	hup := func() {
		t.Helper()
		alive()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, "the gateway to serve r1", func() bool { return strings.HasSuffix(status().Revision, ",r1") })
	if a, b := chat("gpt-4o-mini"), chat("gpt-4o"); a != http.StatusForbidden || b != http.StatusOK {
		t.Fatalf("r1: chat gpt-4o-mini, gpt-4o = %d, %d; want 403, 200", a, b)
	}

	writeFiles(t, bundleDir, pauseBundle("r2", "gpt-4o"))
	hup()
	eventually(t, "SIGHUP to swap in r2", func() bool { return strings.HasSuffix(status().Revision, ",r2") })
	if a, b := chat("gpt-4o-mini"), chat("gpt-4o"); a != http.StatusOK || b != http.StatusForbidden {
		t.Errorf("r2: chat gpt-4o-mini, gpt-4o = %d, %d; want 200, 403", a, b)
	}
	if st := status(); st.Reloads != 1 || st.LastError != "" {
		t.Errorf("status after r2 = %+v, want reloads 1 and no error", st)
	}

	writeFiles(t, bundleDir, map[string]string{
		".manifest":  `{"roots": ["gateway/custom"], "revision": "r3"}`,
		"pause.rego": "package gateway.custom\n\ndeny contains \"broken\" if {\n",
	})
	hup()
	eventually(t, "the broken bundle's error in status", func() bool { return status().LastError != "" })
	st := status()
	if !strings.HasSuffix(st.Revision, ",r2") || st.Failures < 1 || !strings.Contains(st.LastError, "pause.rego") {
		t.Errorf("status after broken r3 = %+v, want r2 serving, a failure, and an error naming pause.rego", st)
	}
	if a, b := chat("gpt-4o-mini"), chat("gpt-4o"); a != http.StatusOK || b != http.StatusForbidden {
		t.Errorf("after broken r3: chat gpt-4o-mini, gpt-4o = %d, %d; want r2's 200, 403", a, b)
	}
	// Info lines reach stderr within the log flush interval (50 ms).
	eventually(t, "the logs to mention the SIGHUP reload", func() bool {
		return strings.Contains(stderr.String(), "SIGHUP: reloading policy bundles")
	})
}
