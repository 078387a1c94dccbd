package rego

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/regate/gateway/gateway"
)

// denied reports whether the engine denies model for an unrestricted key
// with a custom rule (403 policy_denied); it fails on anything else.
func denied(tb testing.TB, e *Engine, model string) bool {
	tb.Helper()
	d, err := e.Decide(tb.Context(), &gateway.Input{
		Request: request(gateway.RouteInference), Principal: principal(nil, nil, nil),
		Model: resolution(model, []string{model}), Now: testNow,
	})
	if err != nil {
		tb.Fatalf("Decide(%s) error = %v", model, err)
	}
	if !d.Allow && d.Code != gateway.CodePolicyDenied {
		tb.Fatalf("Decide(%s) = %+v, want an allow or a policy_denied", model, d)
	}
	return !d.Allow
}

func TestReloadDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "custom")
	writeDir(t, dir, pausedBundle("v1", "a"))
	e, err := New(Config{Sources: []string{dir}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !denied(t, e, "a") || denied(t, e, "b") {
		t.Fatal("v1 should deny a and allow b")
	}
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() of an unchanged bundle error = %v", err)
	}
	if got := e.Status().Reloads; got != 1 {
		t.Errorf("Status().Reloads after a forced reload = %d, want 1", got)
	}
	writeDir(t, dir, pausedBundle("v2", "b"))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() error = %v", err)
	}
	if denied(t, e, "a") || !denied(t, e, "b") {
		t.Error("after the reload v2 should allow a and deny b")
	}
	st := e.Status()
	if !strings.HasSuffix(st.Revision, ",v2") || st.Bundles[1].Source != dir || st.Failures != 0 {
		t.Errorf("Status() = %+v, want revision …,v2 from %s without failures", st, dir)
	}
}

func TestWatchPicksUpFileChanges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "custom")
	writeDir(t, dir, pausedBundle("v1", "a"))
	e, err := New(Config{Sources: []string{dir}, FilePollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.Start(t.Context())
	t.Cleanup(e.Close)
	writeDir(t, dir, pausedBundle("v2", "b"))
	waitFor(t, "the watcher to load v2", func() bool { return strings.HasSuffix(e.Revision(), ",v2") })
	if denied(t, e, "a") || !denied(t, e, "b") {
		t.Error("v2 should allow a and deny b")
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadRefusesBrokenBundles(t *testing.T) {
	good := pausedBundle("good", "a")
	tests := []struct {
		name    string
		files   map[string]string // replace the custom bundle's files
		wantErr error             // nil: any error
		wantMsg string            // in the error and in Status
	}{
		{"Rego syntax error", map[string]string{"custom.rego": "package gateway.custom\n\ndeny contains \"x\" if {\n"}, nil, "rego_parse_error"},
		{"Rego v0 syntax", map[string]string{"custom.rego": "package gateway.custom\n\ndeny[\"x\"] { true }\n"}, nil, "rego_parse_error"},
		{"missing entry point", map[string]string{
			".manifest":   `{"roots": ["gateway"]}`,
			"custom.rego": "package gateway.authz\n\ndecision := {\"allow\": false, \"status\": 403}\n",
		}, ErrMissingEntryPoint, "visible_models"},
		{"decision of the wrong type", map[string]string{
			".manifest":   `{"roots": ["gateway"]}`,
			"custom.rego": "package gateway.authz\n\ndecision := true\n\nvisible_models := set()\n",
		}, ErrBadEntryPoint, "not an object"},
		{"bundle outside its roots", map[string]string{"custom.rego": "package gateway.other\n\ndeny contains \"x\" if true\n"}, nil, "do not permit"},
		{"failing bundle test", map[string]string{"custom_test.rego": "package gateway.custom\n\ntest_nothing_denied if count(deny) == 0 with input as {\"model\": {\"requested\": \"a\"}}\n"}, ErrTestsFailed, "test_nothing_denied"},
		{"http.send", map[string]string{"custom.rego": "package gateway.custom\n\ndeny contains \"x\" if http.send({\"method\": \"get\", \"url\": \"http://example.com\"}).status_code == 200\n"}, nil, "http.send"},
		{"net.lookup_ip_addr", map[string]string{"custom.rego": "package gateway.custom\n\ndeny contains \"x\" if count(net.lookup_ip_addr(\"example.com\")) > 0\n"}, nil, "net.lookup_ip_addr"},
		{"time.now_ns", map[string]string{"custom.rego": "package gateway.custom\n\ndeny contains \"x\" if time.now_ns() > 0\n"}, nil, "time.now_ns"},
		{"data file that does not parse", map[string]string{"data.json": "{"}, nil, "data.json"},
	}
	dir := filepath.Join(t.TempDir(), "custom")
	writeDir(t, dir, good)
	var logs bytes.Buffer
	e, err := New(Config{Sources: []string{dir}, RunTests: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rev := e.Revision()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Cleanups run last first: remove the case's files, then
			// restore the good bundle.
			t.Cleanup(func() { writeDir(t, dir, good) })
			for name := range tc.files {
				t.Cleanup(func() { os.Remove(filepath.Join(dir, name)) })
			}
			writeDir(t, dir, tc.files)
			logs.Reset()
			err := e.Reload(t.Context())
			if l := logs.String(); !strings.Contains(l, "policy refused") || !strings.Contains(l, tc.wantMsg) {
				t.Errorf("log = %q, want the refusal and %q", l, tc.wantMsg)
			}
			if err == nil {
				t.Fatal("Reload() error = nil, want the bundle refused")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Reload() error = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Reload() error = %v, want it to mention %q", err, tc.wantMsg)
			}
			if got := e.Revision(); got != rev {
				t.Errorf("Revision() = %q, want %q still serving", got, rev)
			}
			if !denied(t, e, "a") {
				t.Error("the previous bundle should still deny a")
			}
			st := e.Status()
			if st.Failures != uint64(i+1) || !strings.Contains(st.LastError, tc.wantMsg) || st.LastErrorAt.IsZero() {
				t.Errorf("Status() = failures %d, last error %q at %v; want %d failures and the error", st.Failures, st.LastError, st.LastErrorAt, i+1)
			}
			if b := st.Bundles[len(st.Bundles)-1]; b.Source != dir || !strings.Contains(b.LastError, tc.wantMsg) {
				t.Errorf("Status().Bundles[last] = %+v, want source %s with the error", b, dir)
			}
		})
	}
	// A good bundle clears the source's error.
	writeDir(t, dir, pausedBundle("fixed", "a"))
	if err := e.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() of a good bundle error = %v", err)
	}
	if b := e.Status().Bundles[1]; b.Revision != "fixed" || b.LastError != "" {
		t.Errorf("Status().Bundles[1] = %+v, want revision fixed and no error", b)
	}
}

// rsaKeys returns a fresh RSA key pair as PEM: private (PKCS#8), public
// (PKIX). Test keys only, generated per run.
func rsaKeys(tb testing.TB) (priv, pub string) {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}))
}

func TestSignedBundles(t *testing.T) {
	priv, pub := rsaKeys(t)
	otherPriv, _ := rsaKeys(t)
	files := pausedBundle("signed-1", "a")
	files["custom_test.rego"] = "package gateway.custom\n\ntest_a if \"model a is paused\" in deny with input as {\"model\": {\"requested\": \"a\"}}\n"
	verify := &Verification{Key: pub}
	tests := []struct {
		name   string
		data   []byte
		verify *Verification
		ok     bool
	}{
		{"signed, verified", tarball(t, files, bundle.NewSigningConfig(priv, "RS256", "")), verify, true},
		{"unsigned, no verification configured", tarball(t, files, nil), nil, true},
		{"unsigned, verification configured", tarball(t, files, nil), verify, false},
		{"signed with another key", tarball(t, files, bundle.NewSigningConfig(otherPriv, "RS256", "")), verify, false},
		{"HS256, right secret", tarball(t, files, bundle.NewSigningConfig("s3cret", "HS256", "")), &Verification{Key: "s3cret", Algorithm: "HS256"}, true},
		{"HS256, wrong secret", tarball(t, files, bundle.NewSigningConfig("s3cret", "HS256", "")), &Verification{Key: "other", Algorithm: "HS256"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bundle.tar.gz")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := New(Config{Sources: []string{p}, Verification: tc.verify, RunTests: true})
			if tc.ok != (err == nil) {
				t.Fatalf("New() error = %v, want ok %t", err, tc.ok)
			}
			if !tc.ok {
				if tc.verify != nil && !errors.Is(err, ErrVerification) {
					t.Errorf("New() error = %v, want ErrVerification", err)
				}
				return
			}
			if !denied(t, e, "a") || !strings.HasSuffix(e.Revision(), ",signed-1") {
				t.Errorf("the tarball's policy is not serving (revision %s)", e.Revision())
			}
		})
	}
}

func TestSignedBundleTampered(t *testing.T) {
	priv, pub := rsaKeys(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	data := tarball(t, pausedBundle("signed", "a"), bundle.NewSigningConfig(priv, "RS256", ""))
	m, err := untar(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for name, f := range m {
		files[name] = string(f.Data)
	}
	writeDir(t, dir, files)
	e, err := New(Config{Sources: []string{dir}, Verification: &Verification{Key: pub}})
	if err != nil {
		t.Fatalf("New(signed directory) error = %v", err)
	}
	writeDir(t, dir, map[string]string{"custom.rego": strings.Replace(files["custom.rego"], `== "a"`, `== "b"`, 1)})
	if err := e.Reload(t.Context()); !errors.Is(err, ErrVerification) {
		t.Errorf("Reload(tampered) error = %v, want ErrVerification", err)
	}
	if !denied(t, e, "a") {
		t.Error("the signed bundle should keep serving")
	}
}

// bundleServer is an OPA bundle service: it serves one tarball with an
// ETag, answers 304 to a matching If-None-Match, and can go down.
type bundleServer struct {
	*httptest.Server
	mu          sync.Mutex
	data        []byte
	etag        string
	down        bool
	full, total int
}

func newBundleServer(tb testing.TB) *bundleServer {
	tb.Helper()
	bs := &bundleServer{}
	bs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		bs.total++
		if bs.down {
			// Drop the connection: a network failure, not an HTTP answer.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		if r.Header.Get("If-None-Match") == bs.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		bs.full++
		w.Header().Set("ETag", bs.etag)
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(bs.data)
	}))
	tb.Cleanup(bs.Close)
	return bs
}

func (bs *bundleServer) set(data []byte, etag string) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.data, bs.etag = data, etag
}

func (bs *bundleServer) setDown(down bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.down = down
}

func (bs *bundleServer) counts() (full, total int) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.full, bs.total
}

func TestURLSource(t *testing.T) {
	bs := newBundleServer(t)
	bs.set(tarball(t, pausedBundle("r1", "a"), nil), `"r1"`)
	e, err := New(Config{Sources: []string{bs.URL + "/bundles/custom.tar.gz?token=secret"}, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.Start(t.Context())
	t.Cleanup(e.Close)
	if !denied(t, e, "a") {
		t.Fatal("r1 should deny a")
	}
	// Unchanged: polls get 304s, nothing is downloaded again.
	waitFor(t, "a few polls", func() bool { _, total := bs.counts(); return total >= 4 })
	if full, _ := bs.counts(); full != 1 {
		t.Errorf("full downloads = %d, want 1 (then 304s)", full)
	}
	bs.set(tarball(t, pausedBundle("r2", "b"), nil), `"r2"`)
	waitFor(t, "r2 to load", func() bool { return strings.HasSuffix(e.Revision(), ",r2") })
	if denied(t, e, "a") || !denied(t, e, "b") {
		t.Error("r2 should allow a and deny b")
	}

	// Down: the last good bundle keeps serving; status names the failure,
	// without the URL's query.
	bs.setDown(true)
	_, before := bs.counts()
	waitFor(t, "a failed poll", func() bool { return e.Status().Bundles[1].LastError != "" })
	time.Sleep(500 * time.Millisecond) // let the backoff grow
	_, after := bs.counts()
	st := e.Status()
	if !strings.HasSuffix(st.Revision, ",r2") || !denied(t, e, "b") {
		t.Errorf("Revision() = %s while the server is down, want r2 still serving", st.Revision)
	}
	if src := st.Bundles[1].Source; strings.Contains(src, "secret") || strings.Contains(st.Bundles[1].LastError, "secret") {
		t.Errorf("Status() shows the URL's query: %+v", st.Bundles[1])
	}
	// 500 ms at a 20 ms interval would be 25 polls; the backoff doubles.
	if n := after - before; n > 12 {
		t.Errorf("%d polls in 500 ms while down, want the backoff to space them out", n)
	}
	bs.set(tarball(t, pausedBundle("r3", "c"), nil), `"r3"`)
	bs.setDown(false)
	waitFor(t, "r3 to load after the outage", func() bool { return strings.HasSuffix(e.Revision(), ",r3") })
	waitFor(t, "the error to clear", func() bool { return e.Status().Bundles[1].LastError == "" })
	if !denied(t, e, "c") {
		t.Error("r3 should deny c")
	}
}

func TestURLSourceDownAtStart(t *testing.T) {
	bs := newBundleServer(t)
	bs.setDown(true)
	if _, err := New(Config{Sources: []string{bs.URL + "/b.tar.gz"}}); err == nil {
		t.Error("New() with an unreachable bundle server error = nil, want an error")
	}
}

func TestParseSource(t *testing.T) {
	dir := t.TempDir()
	tgz := filepath.Join(dir, "b.tar.gz")
	other := filepath.Join(dir, "b.zip")
	for _, p := range []string{tgz, other} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		loc, kind string
	}{
		{dir, SourceDir},
		{tgz, SourceTarball},
		{"https://bundles.example.com/authz.tar.gz", SourceURL},
		{other, ""},
		{filepath.Join(dir, "missing"), ""},
		{"s3://bucket/b.tar.gz", ""},
	}
	for _, tc := range tests {
		s, err := parseSource(tc.loc)
		switch {
		case tc.kind == "" && err == nil:
			t.Errorf("parseSource(%s) = %s, want an error", tc.loc, s.kind)
		case tc.kind != "" && (err != nil || s.kind != tc.kind):
			t.Errorf("parseSource(%s) = %v, %v; want %s", tc.loc, s, err, tc.kind)
		}
	}
}

func TestUntarRefusesEscapes(t *testing.T) {
	if _, err := untar(strings.NewReader("not gzip")); err == nil {
		t.Error("untar(not gzip) error = nil")
	}
}
