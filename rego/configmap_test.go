package rego

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfigMapDir lays files out as the kubelet does for a ConfigMap
// volume: the files in a timestamped "..2026_…" folder, a "..data" link to
// it, and one link per file through "..data". A second call swaps the
// "..data" link atomically and removes the old folder, as an update does.
func writeConfigMapDir(tb testing.TB, dir string, files map[string]string, gen int) {
	tb.Helper()
	ts := fmt.Sprintf("..2026_12_07_01_00_%02d.%d", gen, 100+gen)
	writeDir(tb, filepath.Join(dir, ts), files)
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		tb.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
			tb.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			tb.Fatal(err)
		}
	}
}

// configMapBundle denies the model named in its data.json, whose place in
// data comes from its path: read from the "..2026_…" folder, it would land
// outside the manifest's roots and the bundle would not load.
func configMapBundle(revision, deniedModel string) map[string]string {
	return map[string]string{
		".manifest": `{"roots": ["gateway/custom"], "revision": "` + revision + `"}`,
		"data.json": `{"gateway": {"custom": {"paused": "` + deniedModel + `"}}}`,
		"custom.rego": `package gateway.custom

deny contains "model paused" if input.model.requested == data.gateway.custom.paused
`,
	}
}

// TestConfigMapDirectory loads a bundle mounted from a Kubernetes ConfigMap
// (the Helm chart passes such a folder as --bundle) and follows an update.
func TestConfigMapDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	writeConfigMapDir(t, dir, configMapBundle("v1", "a"), 1)
	e, err := New(Config{Sources: []string{dir}, FilePollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("New with a ConfigMap folder: %v", err)
	}
	if !denied(t, e, "a") || denied(t, e, "b") {
		t.Fatal("v1 should deny a and allow b")
	}
	if rev := e.Revision(); !strings.HasSuffix(rev, ",v1") {
		t.Errorf("Revision() = %q, want …,v1 from the manifest", rev)
	}
	e.Start(t.Context())
	t.Cleanup(e.Close)
	writeConfigMapDir(t, dir, configMapBundle("v2", "b"), 2)
	waitFor(t, "the watcher to load v2", func() bool { return strings.HasSuffix(e.Revision(), ",v2") })
	if denied(t, e, "a") || !denied(t, e, "b") {
		t.Error("v2 should allow a and deny b")
	}
	if st := e.Status(); st.Failures != 0 {
		t.Errorf("Status().Failures = %d, want 0: %+v", st.Failures, st)
	}
}
