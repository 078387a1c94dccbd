package rego

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHangingSourceBlocksNothing serves one of two sources from a bundle
// server that hangs: a reload that comes during the hang loads the other
// source at once, Status answers and lists the fetch in progress, and the
// fetch is given up on at FetchTimeout with the error in Status.
func TestHangingSourceBlocksNothing(t *testing.T) {
	const fetchTimeout = 500 * time.Millisecond
	extra := tarball(t, map[string]string{
		".manifest":  `{"roots": ["gateway/extra"], "revision": "u1"}`,
		"extra.rego": "package gateway.extra\n\nnote := 1\n",
	}, nil)
	var hang atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			<-r.Context().Done()
			return
		}
		_, _ = w.Write(extra)
	}))
	t.Cleanup(srv.Close)
	dir := filepath.Join(t.TempDir(), "custom")
	writeDir(t, dir, pausedBundle("d1", "a"))
	e, err := New(Config{Sources: []string{dir, srv.URL + "/extra.tar.gz"}, FetchTimeout: fetchTimeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(e.Close)
	if st := e.Status(); len(st.Fetching) != 0 || !strings.HasSuffix(st.Revision, ",d1,u1") {
		t.Fatalf("Status() at start = %+v, want d1, u1 and no fetch in progress", st)
	}

	hang.Store(true)
	first := make(chan error, 1)
	start := time.Now()
	go func() { first <- e.Reload(context.Background()) }()
	waitFor(t, "the hanging fetch in Status", func() bool {
		f := e.Status().Fetching
		return len(f) == 1 && strings.HasPrefix(f[0].Source, srv.URL)
	})

	writeDir(t, dir, pausedBundle("d2", "b"))
	second := make(chan error, 1)
	go func() { second <- e.Reload(context.Background()) }()
	waitFor(t, "d2 during the hang", func() bool { return strings.Contains(e.Revision(), ",d2,") })
	if took := time.Since(start); took >= fetchTimeout {
		t.Errorf("d2 loaded %v after the hang began, want before the fetch timeout (%v)", took, fetchTimeout)
	}
	if !denied(t, e, "b") || denied(t, e, "a") {
		t.Error("d2 should deny b and allow a")
	}

	select {
	case err := <-first:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Reload() during the hang error = %v, want the fetch deadline", err)
		}
		if took := time.Since(start); took < fetchTimeout || took > fetchTimeout+2*time.Second {
			t.Errorf("Reload() during the hang returned after %v, want about %v", took, fetchTimeout)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reload() during the hang did not return")
	}
	st := e.Status()
	if b := st.Bundles[len(st.Bundles)-1]; !strings.Contains(b.LastError, "fetch timeout") || b.Revision != "u1" {
		t.Errorf("Status().Bundles[last] = %+v, want u1 serving and the fetch timeout as its error", b)
	}
	// The second reload fetches the server once more, after the first
	// fetch ended; it answers now.
	hang.Store(false)
	select {
	case err := <-second:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second Reload() error = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second Reload() did not return")
	}
	waitFor(t, "no fetch in progress", func() bool { return len(e.Status().Fetching) == 0 })
}
