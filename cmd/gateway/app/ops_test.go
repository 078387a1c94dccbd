package app

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestOpsFlags checks that bad log, shutdown and metrics settings are refused with
// exit 2 before anything starts, from flags and from the environment.
func TestOpsFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"bad drain env", nil, map[string]string{"GATEWAY_DRAIN_DELAY": "soon"}, "GATEWAY_DRAIN_DELAY"},
		{"negative timeout env", nil, map[string]string{"GATEWAY_SHUTDOWN_TIMEOUT": "-1s"}, "GATEWAY_SHUTDOWN_TIMEOUT"},
		{"bad level flag", []string{"--log-level", "loud"}, nil, "log level"},
		{"bad format env", nil, map[string]string{"GATEWAY_LOG_FORMAT": "xml"}, "log format"},
		{"negative flag", []string{"--drain-delay", "-2s"}, nil, "must not be negative"},
		{"bad log flush env", nil, map[string]string{"GATEWAY_LOG_FLUSH_INTERVAL": "soon"}, "GATEWAY_LOG_FLUSH_INTERVAL"},
		{"negative log flush flag", []string{"--log-flush-interval", "-1ms"}, nil, "must not be negative"},
		{"bad metrics env", nil, map[string]string{"GATEWAY_METRICS": "sometimes"}, "GATEWAY_METRICS"},
		{"bad metrics flag", []string{"--metrics=sometimes"}, nil, "invalid boolean"},
		{"cert without key", []string{"--tls-cert", "cert.pem"}, nil, "--tls-key"},
		{"key env without cert", nil, map[string]string{"GATEWAY_TLS_KEY": "key.pem"}, "--tls-cert and --tls-key"},
		{"bad header timeout env", nil, map[string]string{"GATEWAY_READ_HEADER_TIMEOUT": "soon"}, "GATEWAY_READ_HEADER_TIMEOUT"},
		{"zero idle timeout flag", []string{"--idle-timeout", "0s"}, nil, "must be positive"},
		{"bad header bytes env", nil, map[string]string{"GATEWAY_MAX_HEADER_BYTES": "1MiB"}, "GATEWAY_MAX_HEADER_BYTES"},
		{"tiny header bytes flag", []string{"--max-header-bytes", "100"}, nil, "at least 8192"},
		{"bad response bytes env", nil, map[string]string{"GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES": "64MiB"}, "GATEWAY_MAX_UPSTREAM_RESPONSE_BYTES"},
		{"zero response bytes flag", []string{"--max-upstream-response-bytes", "0"}, nil, "--max-upstream-response-bytes must be positive"},
		{"bad fetch timeout env", nil, map[string]string{"GATEWAY_BUNDLE_FETCH_TIMEOUT": "soon"}, "GATEWAY_BUNDLE_FETCH_TIMEOUT"},
		{"zero fetch timeout flag", []string{"--bundle-fetch-timeout", "0s"}, nil, "--bundle-fetch-timeout must be positive"},
		{"bad query timeout env", nil, map[string]string{"GATEWAY_DATABASE_QUERY_TIMEOUT": "-5s"}, "GATEWAY_DATABASE_QUERY_TIMEOUT"},
		{"zero query timeout flag", []string{"--database-query-timeout", "0s"}, nil, "--database-query-timeout must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(t.Context(), append([]string{"serve"}, tc.args...), &out, &errOut, env(tc.env))
			if code != 2 || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("Main(serve %v, env %v) = %d, stderr %q; want 2 mentioning %q", tc.args, tc.env, code, errOut.String(), tc.wantErr)
			}
		})
	}
}

// TestHealthcheck checks the healthcheck command against plain and TLS
// listeners: over TLS it asks HTTPS when told by flag or environment, and
// finds out by itself when the gateway answers that it wants HTTPS.
func TestHealthcheck(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		env    map[string]string
		status int
		want   int
	}{
		{"ready", false, nil, http.StatusOK, 0},
		{"draining", false, nil, http.StatusServiceUnavailable, 1},
		{"tls by env", true, map[string]string{"GATEWAY_TLS_CERT": "/certs/tls.crt", "GATEWAY_TLS_KEY": "/certs/tls.key"}, http.StatusOK, 0},
		{"tls found out", true, nil, http.StatusOK, 0},
		{"tls draining", true, nil, http.StatusServiceUnavailable, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health/readiness" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
			}))
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			// An unspecified listen host is asked on loopback.
			port := srv.Listener.Addr().String()[strings.LastIndex(srv.Listener.Addr().String(), ":"):]
			var out, errOut bytes.Buffer
			if code := Main(t.Context(), []string{"healthcheck", "--listen", "0.0.0.0" + port}, &out, &errOut, env(tc.env)); code != tc.want {
				t.Errorf("healthcheck against %d = exit %d (%s), want %d", tc.status, code, errOut.String(), tc.want)
			}
		})
	}
}

// TestDrainReadiness checks that Drain turns readiness false on a running
// gateway while it keeps serving.
func TestDrainReadiness(t *testing.T) {
	g, err := Build(t.Context(), Options{Listen: "127.0.0.1:0", Env: env(map[string]string{"GATEWAY_MASTER_KEY": "sk-master-drain"})})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	}()
	get := func(path string) int {
		resp, err := http.Get("http://" + g.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/health/readiness"); s != http.StatusOK {
		t.Fatalf("readiness before Drain = %d, want 200", s)
	}
	g.Drain()
	if s := get("/health/readiness"); s != http.StatusServiceUnavailable {
		t.Errorf("readiness after Drain = %d, want 503", s)
	}
	if s := get("/health/liveliness"); s != http.StatusOK {
		t.Errorf("liveliness after Drain = %d, want 200 (still serving)", s)
	}
}
