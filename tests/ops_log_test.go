package tests

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway"
)

// TestOpsAccessLog checks one access-log line per request with the fields
// operators search by, and that no key or prompt reaches the log at any
// level (debug included).
func TestOpsAccessLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := startTraced(t, app.Options{Logger: log})
	const badKey = "sk-ops-wrong-key-plaintext-9876"

	calls := []struct {
		id, method, path, key string
		body                  []byte
		header                map[string]string
		want                  map[string]any // fields of the access line
	}{
		{id: "log-allowed", method: http.MethodPost, path: "/v1/chat/completions", key: opsKey, body: opsChatBody("fast", false),
			want: map[string]any{"route": "inference", "http_route": "/v1/chat/completions", "status": 200.0, "key_alias": "alice-ops",
				"team": "research", "model": "fast", "resolved_model": "gpt-4o-mini", "upstream_status": 200.0, "decision": "allow"}},
		{id: "log-denied", method: http.MethodPost, path: "/v1/chat/completions", key: opsKey, body: opsChatBody("gpt-4o-mini", false),
			want: map[string]any{"route": "inference", "status": 404.0, "key_alias": "alice-ops", "model": "gpt-4o-mini", "decision": "deny"}},
		{id: "log-upstream-error", method: http.MethodPost, path: "/chat/completions", key: opsKey, body: opsChatBody("gpt-4o", false),
			header: map[string]string{"X-Mock-Status": "502"},
			want:   map[string]any{"route": "inference", "http_route": "/chat/completions", "status": 502.0, "upstream_status": 502.0, "resolved_model": "gpt-4o"}},
		{id: "log-stream", method: http.MethodPost, path: "/v1/chat/completions", key: opsKey, body: opsChatBody("gpt-4o", true),
			want: map[string]any{"route": "inference", "status": 200.0, "upstream_status": 200.0, "team": "research"}},
		{id: "log-bad-key", method: http.MethodPost, path: "/v1/chat/completions", key: badKey, body: opsChatBody("gpt-4o", false),
			want: map[string]any{"route": "inference", "status": 401.0}},
		{id: "log-unknown-route", method: http.MethodGet, path: "/v1/nothing-here", key: opsKey,
			want: map[string]any{"route": "", "status": 404.0}},
		{id: "log-admin", method: http.MethodGet, path: "/key/info?key=" + opsKey, key: opsMasterKey,
			want: map[string]any{"route": "admin", "status": 200.0, "key_alias": "master_key"}},
	}
	for _, c := range calls {
		h := map[string]string{"X-Request-Id": c.id}
		for k, v := range c.header {
			h[k] = v
		}
		opsCall(t, tr.gw, c.method, c.path, c.key, c.body, h)
	}

	// The access line is written once the handler returned, which may be
	// after the client has its answer.
	lines := map[string][]map[string]any{}
	eventually(t, "an access-log line for every request", func() bool {
		clear(lines)
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", l)
			}
			if rec["msg"] == "request" {
				id, _ := rec["request_id"].(string)
				lines[id] = append(lines[id], rec)
			}
		}
		for _, c := range calls {
			if len(lines[c.id]) == 0 {
				return false
			}
		}
		return true
	})
	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, c := range calls {
		t.Run(c.id, func(t *testing.T) {
			if n := len(lines[c.id]); n != 1 {
				t.Fatalf("%d access lines for %s, want 1", n, c.id)
			}
			rec := lines[c.id][0]
			for k, want := range c.want {
				if got := rec[k]; got != want && !(want == "" && got == nil) {
					t.Errorf("access line %s = %v, want %v", k, got, want)
				}
			}
			if d, ok := rec["duration"].(float64); !ok || d <= 0 {
				t.Errorf("access line duration = %v, want a positive number", rec["duration"])
			}
			if id, _ := rec["trace_id"].(string); !traceID.MatchString(id) {
				t.Errorf("access line trace_id = %q, want 32 hex digits", id)
			}
		})
	}

	logs := buf.String()
	for _, secret := range []string{opsKey, badKey, opsMasterKey, opsUpstreamKey, gateway.HashKey(opsKey), "purple-elephant"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
	// The failed upstream attempt is logged as a warning: more than the
	// access lines were searched.
	if !strings.Contains(logs, `"level":"WARN"`) {
		t.Errorf("no warning in the logs; the upstream failure should have logged one:\n%s", logs)
	}
}
