package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultStatus is the part of GET /admin/policy/status the fault tests read.
type faultStatus struct {
	Revision string `json:"revision"`
	Bundles  []struct {
		Source    string `json:"source"`
		Revision  string `json:"revision"`
		LastError string `json:"last_error"`
	} `json:"bundles"`
	Fetching []struct {
		Source    string    `json:"source"`
		StartedAt time.Time `json:"started_at"`
	} `json:"fetching"`
}

// bundle returns the status of the bundle read from a source whose name
// contains src.
func (s faultStatus) bundle(src string) (revision, lastError string) {
	for _, b := range s.Bundles {
		if strings.Contains(b.Source, src) {
			return b.Revision, b.LastError
		}
	}
	return "", ""
}

// policyClient asks a running binary for its policy status and makes
// chat calls with the reload key.
type policyClient struct {
	g      *runningGateway
	base   string
	client *http.Client
}

// status returns the policy status and how long the answer took.
func (p policyClient) status(tb testing.TB) (faultStatus, time.Duration) {
	tb.Helper()
	p.g.alive(tb)
	req, _ := http.NewRequestWithContext(tb.Context(), http.MethodGet, p.base+"/admin/policy/status", nil)
	req.Header.Set("Authorization", "Bearer sk-master-test-0000")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		tb.Fatalf("GET /admin/policy/status: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	var st faultStatus
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil {
		tb.Fatalf("GET /admin/policy/status = %d %s", resp.StatusCode, b)
	}
	return st, took
}

// chat sends one chat call for model and returns the status (0 when the
// call failed).
func (p policyClient) chat(tb testing.TB, model string) int {
	tb.Helper()
	req, _ := http.NewRequestWithContext(tb.Context(), http.MethodPost, p.base+"/v1/chat/completions", bytes.NewReader(chatBody(model)))
	req.Header.Set("Authorization", "Bearer sk-reload-key-0001")
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hup sends SIGHUP to the binary.
func (g *runningGateway) hup(tb testing.TB) {
	tb.Helper()
	g.alive(tb)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		tb.Fatal(err)
	}
}

// TestFaultBundleServer runs the real binary on two bundle sources, a
// directory and a bundle server, with polling slowed to an hour so that
// only SIGHUP reloads. The server answers 500, then garbage: the last good
// bundle keeps serving and the status names each failure. Then it hangs:
// the status endpoint still answers at once and lists the fetch in
// progress; a SIGHUP sent during the hang reloads the directory at once;
// the hanging fetch is given up on at --bundle-fetch-timeout (the server
// sees its request cancelled), and the process is healthy afterwards.
func TestFaultBundleServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	const fetchTimeout = 4 * time.Second
	var (
		mu        sync.Mutex
		mode      = "ok"
		cancelled = make(chan struct{}, 8)
	)
	good := bundleTarball(t, map[string]string{
		".manifest":  `{"roots": ["gateway/extra"], "revision": "u1"}`,
		"extra.rego": "package gateway.extra\n\nnote := \"served by the bundle server\"\n",
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		// No pooled connections to count against the goroutine baseline.
		w.Header().Set("Connection", "close")
		switch m {
		case "500":
			http.Error(w, "internal error", http.StatusInternalServerError)
		case "garbage":
			w.Write([]byte("<html>this is not a bundle</html>"))
		case "hang":
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-time.After(30 * time.Second):
			}
		default:
			w.Write(good)
		}
	}))
	t.Cleanup(srv.Close)
	setMode := func(m string) {
		mu.Lock()
		mode = m
		mu.Unlock()
	}

	bin := buildGateway(t)
	bundleDir := filepath.Join(t.TempDir(), "custom")
	if err := os.Mkdir(bundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, bundleDir, pauseBundle("d1", "gpt-4o-mini"))
	config := reloadConfig + "  policy: {file_poll_interval: 1h, poll_interval: 1h}\n"
	g := runGateway(t, bin, config, "", "--bundle", bundleDir, "--bundle", srv.URL+"/bundles/extra.tar.gz",
		"--bundle-fetch-timeout", fetchTimeout.String())
	base := "http://" + g.addr
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	g.ready(t, probe, base)
	p := policyClient{g: g, base: base, client: probe}
	st, _ := p.status(t)
	if d, _ := st.bundle(bundleDir); d != "d1" {
		t.Fatalf("status at start = %+v, want d1 from the directory", st)
	}
	if u, _ := st.bundle(srv.URL); u != "u1" {
		t.Fatalf("status at start = %+v, want u1 from the server", st)
	}
	if a, b := p.chat(t, "gpt-4o-mini"), p.chat(t, "gpt-4o"); a != http.StatusForbidden || b != http.StatusOK {
		t.Fatalf("d1: chat gpt-4o-mini, gpt-4o = %d, %d; want 403, 200", a, b)
	}
	base0 := baseline(t, probe, base)

	for _, tc := range []struct{ mode, wantErr string }{
		{"500", "HTTP 500"},
		{"garbage", "not a gzipped tarball"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			setMode(tc.mode)
			g.hup(t)
			eventually(t, "the failure in status", func() bool {
				st, _ := p.status(t)
				_, e := st.bundle(srv.URL)
				return strings.Contains(e, tc.wantErr)
			})
			st, _ := p.status(t)
			if u, _ := st.bundle(srv.URL); u != "u1" {
				t.Errorf("status = %+v, want u1 still serving", st)
			}
			if a, b := p.chat(t, "gpt-4o-mini"), p.chat(t, "gpt-4o"); a != http.StatusForbidden || b != http.StatusOK {
				t.Errorf("chat gpt-4o-mini, gpt-4o = %d, %d; want 403, 200 (the last good policy)", a, b)
			}
			g.healthy(t, probe, base, base0)
		})
	}

	t.Run("hang", func(t *testing.T) {
		setMode("hang")
		hungAt := time.Now()
		g.hup(t)
		eventually(t, "the hanging fetch in status", func() bool {
			st, took := p.status(t)
			if took > 2*time.Second {
				t.Errorf("GET /admin/policy/status took %v during the hang, want it at once", took)
			}
			return len(st.Fetching) == 1 && strings.Contains(st.Fetching[0].Source, srv.URL)
		})

		// A SIGHUP during the hang reloads the directory at once.
		writeFiles(t, bundleDir, pauseBundle("d2", "gpt-4o"))
		g.hup(t)
		eventually(t, "d2 during the hang", func() bool {
			st, _ := p.status(t)
			d, _ := st.bundle(bundleDir)
			return d == "d2"
		})
		if took := time.Since(hungAt); took >= fetchTimeout {
			t.Errorf("d2 was loaded %v after the hang began, want it before the fetch timeout (%v)", took, fetchTimeout)
		}
		st, took := p.status(t)
		if took > 2*time.Second || len(st.Fetching) != 1 {
			t.Errorf("status during the hang (%v) = %+v, want at once with the fetch in progress", took, st)
		}
		if a, b := p.chat(t, "gpt-4o-mini"), p.chat(t, "gpt-4o"); a != http.StatusOK || b != http.StatusForbidden {
			t.Errorf("d2: chat gpt-4o-mini, gpt-4o = %d, %d; want 200, 403", a, b)
		}

		// The fetch ends at its deadline: the server sees it cancelled,
		// the status says why, and u1 serves on.
		select {
		case <-cancelled:
			within(t, "the hanging fetch", time.Since(hungAt), fetchTimeout*8/10, fetchTimeout+2*time.Second)
		case <-time.After(fetchTimeout + 5*time.Second):
			t.Fatal("the hanging fetch was not cancelled")
		}
		setMode("ok")
		eventually(t, "the timeout in status and no fetch in progress", func() bool {
			st, _ := p.status(t)
			return len(st.Fetching) == 0
		})
		st, _ = p.status(t)
		if u, _ := st.bundle(srv.URL); u != "u1" {
			t.Errorf("status after the hang = %+v, want u1 serving", st)
		}
		if d, _ := st.bundle(bundleDir); d != "d2" {
			t.Errorf("status after the hang = %+v, want d2 serving", st)
		}
		if logs := g.stderr.String(); !strings.Contains(logs, "fetch timeout "+fetchTimeout.String()) {
			t.Errorf("logs do not report the fetch timeout:\n%s", tail([]byte(logs), 3000))
		}
		g.healthy(t, probe, base, base0)
	})
}
