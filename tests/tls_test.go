package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/mock"
)

// testCA is a certificate authority of the test's own: clients trust it
// alone.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a server certificate for 127.0.0.1 and localhost with the
// given serial, and a new key, to certFile and keyFile (each replaced
// atomically, the key first).
func (ca *testCA) issue(tb testing.TB, serial int64, certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "gateway"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	replaceFile(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	replaceFile(tb, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// replaceFile writes data to path through a rename.
func replaceFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		tb.Fatal(err)
	}
}

// clientTLS trusts the test CA alone and offers HTTP/2.
func (ca *testCA) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}}
}

// h2Client is an HTTP/2 client trusting only ca, on connections of its own.
func (ca *testCA) h2Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// servedSerial dials addr on a new connection and returns the serial of
// the certificate it is served, after verifying it against the test CA.
func (ca *testCA) servedSerial(tb testing.TB, addr string) (int64, error) {
	tb.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ca.clientTLS())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// runningGateway is the real binary in a process of its own.
type runningGateway struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan error
}

// runGateway starts bin with the config (written to a file, {{UP}}
// replaced by upstream) on a free address, with extra arguments; the
// environment names no gateway setting, so that only the arguments count.
func runGateway(tb testing.TB, bin, config, upstream string, args ...string) *runningGateway {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "{{UP}}", upstream)), 0o600); err != nil {
		tb.Fatal(err)
	}
	g := &runningGateway{addr: freeAddr(tb), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	g.cmd = exec.Command(bin, append([]string{"--config", path, "--listen", g.addr}, args...)...)
	g.cmd.Env = append(os.Environ(), "GATEWAY_MASTER_KEY=", "LITELLM_MASTER_KEY=", "GATEWAY_BUNDLE=",
		"GATEWAY_DECISION_LOG=off", "DATABASE_URL=", "OTEL_TRACES_EXPORTER=none",
		"GATEWAY_TLS_CERT=", "GATEWAY_TLS_KEY=", "GATEWAY_READ_HEADER_TIMEOUT=", "GATEWAY_MAX_HEADER_BYTES=", "GATEWAY_IDLE_TIMEOUT=")
	g.cmd.Stderr = g.stderr
	if err := g.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	tb.Cleanup(func() { _ = g.cmd.Process.Kill(); <-g.exited })
	return g
}

// alive fails the test at once when the gateway has exited.
func (g *runningGateway) alive(tb testing.TB) {
	tb.Helper()
	select {
	case err := <-g.exited:
		g.exited <- err
		tb.Fatalf("the gateway exited: %v; stderr:\n%s", err, g.stderr.String())
	default:
	}
}

// ready polls GET base/health/readiness with client until it answers 200.
func (g *runningGateway) ready(tb testing.TB, client *http.Client, base string) {
	tb.Helper()
	eventually(tb, "readiness 200 at "+base, func() bool {
		g.alive(tb)
		resp, err := client.Get(base + "/health/readiness")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// heldStream answers streamed chat calls with before chunks, then waits
// until release is closed, then sends after chunks and [DONE]; other calls
// go to the mock provider.
func heldStream(before, after int, release <-chan struct{}) http.Handler {
	fallback := mock.New(mock.Config{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			r.Body = io.NopCloser(bytes.NewReader(body))
			fallback.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		chunk := func(i int) {
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-held\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
			_ = rc.Flush()
		}
		for i := range before {
			chunk(i)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		for i := range after {
			chunk(before + i)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		_ = rc.Flush()
	})
}

// tlsConfig is opsConfig with file polling slowed to an hour, so that only
// SIGHUP can explain a reload of the directory bundle.
const tlsConfig = opsConfig + "  policy: {file_poll_interval: 1h}\n"

// TestTLSServeAndReload runs the real binary over TLS with a certificate
// of the test's own CA: a chat and a stream complete over HTTP/2; then,
// while a stream is held open, a renewed certificate and SIGHUP make new
// connections get the new certificate (and the policy reload), while the
// open stream completes on the old connection with all its events. A
// broken certificate file on SIGHUP is refused and the last good one
// serves on. The healthcheck command works against the TLS listener.
func TestTLSServeAndReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 1001, certFile, keyFile)
	bundleDir := filepath.Join(dir, "custom")
	if err := os.Mkdir(bundleDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, bundleDir, pauseBundle("r1", "gpt-4o-mini"))

	release := make(chan struct{})
	var released bool
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	up := startUpstream(t)
	up.setHandler(heldStream(3, 4, release))
	// Short client limits: the held stream outlasts both.
	g := runGateway(t, bin, tlsConfig, up.URL, "--tls-cert", certFile, "--tls-key", keyFile, "--bundle", bundleDir,
		"--read-header-timeout", "1s", "--idle-timeout", "1s")
	base := "https://" + g.addr
	client := ca.h2Client()
	g.ready(t, client, base)

	post := func(c *http.Client, body []byte) *http.Response {
		t.Helper()
		g.alive(t)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+opsKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST /v1/chat/completions: %v", err)
		}
		return resp
	}
	serial := func(resp *http.Response) int64 {
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			return 0
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	revision := func() string {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/admin/policy/status", nil)
		req.Header.Set("Authorization", "Bearer "+opsMasterKey)
		resp, err := client.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var st policyStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return ""
		}
		return st.Revision
	}

	// A chat over HTTP/2.
	resp := post(client, opsChatBody("gpt-4o", false))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || !bytes.Contains(b, []byte(`"choices"`)) {
		t.Fatalf("chat over TLS = %d %s %s, want 200 over HTTP/2 with choices", resp.StatusCode, resp.Proto, b)
	}
	if s := serial(resp); s != 1001 {
		t.Errorf("chat served certificate serial %d, want 1001", s)
	}

	// A stream over HTTP/2, held open by the upstream, on a client of its
	// own so that its connection is the only one it uses.
	streamClient := ca.h2Client()
	streamClient.Timeout = 0
	stream := post(streamClient, opsChatBody("gpt-4o", true))
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK || stream.ProtoMajor != 2 || serial(stream) != 1001 {
		t.Fatalf("stream = %d %s serial %d, want 200 over HTTP/2 with serial 1001", stream.StatusCode, stream.Proto, serial(stream))
	}
	br := bufio.NewReader(stream.Body)
	var events []string
	readEvent := func() string {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream broke after %d events: %v (last line %q)", len(events), err, line)
			}
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "data: ") {
				events = append(events, line)
				return line
			}
		}
	}
	for range 3 {
		readEvent()
	}
	heldSince := time.Now()

	// Renew: a new serial from the same CA, written over the same files.
	ca.issue(t, 1002, certFile, keyFile)
	writeFiles(t, bundleDir, pauseBundle("r2", "gpt-4o-mini"))
	g.alive(t)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new connections to get the renewed certificate", func() bool {
		s, err := ca.servedSerial(t, g.addr)
		return err == nil && s == 1002
	})
	eventually(t, "the same SIGHUP to reload the policy", func() bool { return strings.HasSuffix(revision(), ",r2") })
	fresh := ca.h2Client()
	resp = post(fresh, opsChatBody("gpt-4o", false))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || serial(resp) != 1002 {
		t.Errorf("chat on a new connection after SIGHUP = %d %s serial %d, want 200 over HTTP/2 with serial 1002", resp.StatusCode, resp.Proto, serial(resp))
	}

	// A broken certificate file: the reload is refused, the renewed
	// certificate serves on.
	replaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed reload in the logs", func() bool {
		return strings.Contains(g.stderr.String(), "tls certificate reload failed")
	})
	if s, err := ca.servedSerial(t, g.addr); err != nil || s != 1002 {
		t.Errorf("after a broken certificate file: new connection serial %d, %v; want 1002", s, err)
	}

	// The held stream outlasts the header and idle timeouts, then
	// completes on its old connection with every event.
	if d := 2500*time.Millisecond - time.Since(heldSince); d > 0 {
		time.Sleep(d)
	}
	released = true
	close(release)
	for range 4 {
		readEvent()
	}
	if last := readEvent(); last != "data: [DONE]" {
		t.Errorf("stream's last event = %q, want data: [DONE]", last)
	}
	if rest, err := io.ReadAll(br); err != nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("after [DONE]: %q, %v; want a clean end", rest, err)
	}
	for i, e := range events[:7] {
		if !strings.Contains(e, fmt.Sprintf(`tok%d `, i)) {
			t.Errorf("stream event %d = %q, want tok%d", i, e, i)
		}
	}
	if s := serial(stream); s != 1001 {
		t.Errorf("the open stream's connection has serial %d, want the old 1001", s)
	}

	g.ready(t, ca.h2Client(), base)

	// A client that never finishes its TLS handshake is cut after the
	// header timeout.
	raw, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _ = raw.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, no more
	_ = raw.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(raw)
	raw.Close()
	if took := time.Since(start); took < 800*time.Millisecond || took > 4*time.Second {
		t.Errorf("a stalled TLS handshake was closed after %v (%v), want about 1s", took, err)
	}
	g.ready(t, ca.h2Client(), base)

	// Info lines reach stderr within the log flush interval (50 ms).
	for _, want := range []string{"SIGHUP: reloading the TLS certificate", "tls certificate reloaded", "SIGHUP: reloading policy bundles"} {
		eventually(t, fmt.Sprintf("the logs to mention %q", want), func() bool {
			return strings.Contains(g.stderr.String(), want)
		})
	}

	// The healthcheck command asks over HTTPS: told by the environment, or
	// finding out by itself when the certificate came by flag.
	for _, env := range [][]string{{"GATEWAY_TLS_CERT=" + certFile, "GATEWAY_TLS_KEY=" + keyFile}, {"GATEWAY_TLS_CERT=", "GATEWAY_TLS_KEY="}} {
		hc := exec.Command(bin, "healthcheck", "--listen", g.addr)
		hc.Env = append(os.Environ(), env...)
		if out, err := hc.CombinedOutput(); err != nil || !strings.Contains(string(out), "ready") {
			t.Errorf("gateway healthcheck with %v = %v, %s; want exit 0 and ready", env, err, out)
		}
	}
}

// TestTLSNeedsBothFiles checks that the real binary refuses a certificate
// without its key, and a key pair it cannot read, with a clear error.
func TestTLSNeedsBothFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := buildGateway(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCA(t).issue(t, 7, certFile, keyFile)
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantErr  string
	}{
		{"cert flag alone", []string{"--tls-cert", certFile}, nil, 2, "--tls-cert and --tls-key"},
		{"key env alone", nil, []string{"GATEWAY_TLS_KEY=" + keyFile}, 2, "--tls-cert and --tls-key"},
		{"missing key file", []string{"--tls-cert", certFile, "--tls-key", filepath.Join(dir, "missing.key")}, nil, 1, "missing.key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--listen", freeAddr(t)}, tc.args...)...)
			cmd.Env = append(os.Environ(), "GATEWAY_MASTER_KEY=sk-master-demo", "GATEWAY_CONFIG=", "DATABASE_URL=",
				"GATEWAY_TLS_CERT=", "GATEWAY_TLS_KEY=", "OTEL_TRACES_EXPORTER=none")
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.wantCode || !strings.Contains(string(out), tc.wantErr) {
				t.Errorf("gateway serve %v %v = exit %d, %s; want exit %d mentioning %q", tc.args, tc.env, code, out, tc.wantCode, tc.wantErr)
			}
		})
	}
}
