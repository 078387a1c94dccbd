package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFaultSIGHUPStorm sends the real binary 50 SIGHUPs in a second while
// clients call it without pause, and swaps its directory bundle halfway
// through: no call fails or takes long, the bundle written last is the one
// serving at the end (and stays so), and the process is healthy afterwards.
func TestFaultSIGHUPStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	bundleDir := filepath.Join(t.TempDir(), "custom")
	if err := os.Mkdir(bundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, bundleDir, pauseBundle("d1", "gpt-4o-mini"))
	config := reloadConfig + "  policy: {file_poll_interval: 1h}\n"
	g := runGateway(t, bin, config, "", "--bundle", bundleDir)
	base := "http://" + g.addr
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	g.ready(t, probe, base)
	p := policyClient{g: g, base: base, client: probe}
	base0 := baseline(t, probe, base)

	// Load: gpt-4o, which both bundles allow, from 4 clients.
	const slow = 5 * time.Second
	clients := make([]policyClient, 4)
	for w := range clients {
		clients[w] = policyClient{g: g, base: base, client: &http.Client{Transport: &http.Transport{}, Timeout: 2 * slow}}
	}
	load := startLoad(4, func(w int) string {
		start := time.Now()
		code := clients[w].chat(t, "gpt-4o")
		if took := time.Since(start); code != http.StatusOK || took > slow {
			return fmt.Sprintf("%d after %v", code, took)
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond)
	for i := range 50 {
		if i == 25 {
			writeFiles(t, bundleDir, pauseBundle("d2", "none"))
		}
		g.hup(t)
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, "d2 after the storm", func() bool {
		st, _ := p.status(t)
		d, _ := st.bundle(bundleDir)
		return d == "d2"
	})
	time.Sleep(500 * time.Millisecond) // reloads still running must not bring d1 back
	calls, failures := load.finish()
	for _, c := range clients {
		c.client.CloseIdleConnections()
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed or were slow during the storm: %s", len(failures), calls, strings.Join(failures[:min(len(failures), 10)], "; "))
	}
	if calls < 20 {
		t.Errorf("only %d calls ran during the storm", calls)
	}
	st, _ := p.status(t)
	if d, _ := st.bundle(bundleDir); d != "d2" || len(st.Fetching) != 0 {
		t.Errorf("status after the storm = %+v, want d2 and no fetch in progress", st)
	}
	if a := p.chat(t, "gpt-4o-mini"); a != http.StatusOK {
		t.Errorf("d2: chat gpt-4o-mini = %d, want 200 (d1 paused it)", a)
	}
	// Signals that arrive together merge (the kernel keeps one pending
	// SIGHUP), so fewer than 50 reloads may run; d2 above shows that one
	// ran after the last write.
	if n := strings.Count(g.stderr.String(), "SIGHUP: reloading policy bundles"); n < 2 || n > 50 {
		t.Errorf("logs show %d SIGHUP reloads, want between 2 and 50", n)
	}
	g.healthy(t, probe, base, base0)
}
