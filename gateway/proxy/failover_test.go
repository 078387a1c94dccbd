package proxy

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// hang blocks until the caller gives up, like an upstream that never answers.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// firstKind describes how the first deployment fails.
type firstKind struct {
	name    string
	handler http.HandlerFunc // nil: connection refused
	timeout time.Duration
}

var failingFirsts = []firstKind{
	{name: "connection refused"},
	{name: "503", handler: replying(503, "application/json", `{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)},
	{name: "500 html", handler: replying(500, "text/html", "<h1>oops</h1>")},
	{name: "429", handler: replying(429, "application/json", `{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)},
	{name: "redirect", handler: func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://example.com/", http.StatusFound)
	}},
	{name: "timeout before headers", handler: hang, timeout: 50 * time.Millisecond},
}

func (k firstKind) deployment(tb testing.TB) (gateway.Deployment, *upstream) {
	tb.Helper()
	if k.handler == nil {
		return dep("a", refusedURL(tb)), nil
	}
	u := newUpstream(tb, k.handler)
	d := dep("a", u.URL)
	d.Timeout = k.timeout
	return d, u
}

func TestFailover(t *testing.T) {
	for _, k := range failingFirsts {
		t.Run(k.name, func(t *testing.T) {
			first, firstUp := k.deployment(t)
			second := newUpstream(t, replying(200, "application/json", `{"from":"b"}`))
			gw, result := newGateway(t, newProxy(t, Config{}), first, dep("b", second.URL))
			res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
			if res.StatusCode != 200 || string(body) != `{"from":"b"}` {
				t.Fatalf("response = %d %s, want 200 from the second deployment", res.StatusCode, body)
			}
			if err := result.get(); err != nil {
				t.Errorf("Serve() = %v, want nil", err)
			}
			if firstUp != nil && len(firstUp.requests()) != 1 {
				t.Errorf("first deployment got %d requests, want 1", len(firstUp.requests()))
			}
			got := second.requests()
			if len(got) != 1 || string(got[0].Body) != `{"model":"up-b"}` || got[0].Header.Get("Authorization") != "Bearer sk-provider-secret-b" {
				t.Errorf("second deployment got %+v, want one request with its own model and key", got)
			}
		})
	}
}

func TestAllFail(t *testing.T) {
	const envelope503 = `{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`
	tests := []struct {
		name       string
		second     firstKind // the last deployment tried decides the answer
		wantStatus int
		wantBody   string // exact; "" to check the fields below
		wantMsg    string
		wantType   string
		wantCode   any
		wantCause  error
		wantHeader string // Retry-After
	}{
		{
			name: "connection refused", second: firstKind{name: "refused"},
			wantStatus: 502, wantMsg: "The upstream provider could not be reached.", wantType: "server_error", wantCode: "upstream_error",
			wantCause: ErrUpstreamUnavailable,
		},
		{
			name: "timeout", second: firstKind{handler: hang, timeout: 50 * time.Millisecond},
			wantStatus: 504, wantMsg: "The upstream provider did not answer in time.", wantType: "server_error", wantCode: "upstream_timeout",
			wantCause: ErrUpstreamTimeout,
		},
		{
			name: "503 envelope passes through", second: firstKind{handler: replying(503, "application/json", envelope503)},
			wantStatus: 503, wantBody: envelope503, wantCause: ErrUpstreamStatus,
		},
		{
			name: "500 text wrapped", second: firstKind{handler: replying(500, "text/plain", "internal stack trace")},
			wantStatus: 500, wantMsg: "The upstream provider returned HTTP 500.", wantType: "server_error", wantCode: "upstream_error",
			wantCause: ErrUpstreamStatus,
		},
		{
			name: "429 wrapped with retry-after",
			second: firstKind{handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
			}},
			wantStatus: 429, wantMsg: "The upstream provider is rate limiting requests.", wantType: "rate_limit_error", wantCode: "rate_limit_exceeded",
			wantCause: ErrUpstreamStatus, wantHeader: "7",
		},
		{
			name: "redirect", second: firstKind{handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/x", http.StatusMovedPermanently) }},
			wantStatus: 502, wantMsg: "The upstream provider answered with an unexpected redirect.", wantType: "server_error", wantCode: "upstream_error",
			wantCause: ErrUpstreamStatus,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := newUpstream(t, replying(503, "text/plain", "first down"))
			last, _ := tc.second.deployment(t)
			last.ID = "b"
			gw, result := newGateway(t, newProxy(t, Config{}), dep("a", first.URL), last)
			res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
			if res.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", res.StatusCode, tc.wantStatus, body)
			}
			if len(first.requests()) != 1 {
				t.Errorf("first deployment got %d requests, want 1", len(first.requests()))
			}
			if tc.wantBody != "" {
				if string(body) != tc.wantBody {
					t.Errorf("body = %s, want %s", body, tc.wantBody)
				}
			} else {
				checkEnvelope(t, body, tc.wantMsg, tc.wantType, tc.wantCode)
			}
			if h := res.Header.Get("Retry-After"); h != tc.wantHeader {
				t.Errorf("Retry-After = %q, want %q", h, tc.wantHeader)
			}
			var ue *UpstreamError
			err := result.get()
			if !errors.As(err, &ue) || !errors.Is(err, tc.wantCause) {
				t.Fatalf("Serve() = %v, want an *UpstreamError wrapping %v", err, tc.wantCause)
			}
			wantRetry := tc.wantStatus != 502 || errors.Is(err, ErrUpstreamUnavailable)
			if ue.Attempts != 2 || ue.Deployment != "b" || ue.Retryable != wantRetry {
				t.Errorf("UpstreamError = {Attempts:%d Deployment:%q Retryable:%v}, want {2 \"b\" %v}", ue.Attempts, ue.Deployment, ue.Retryable, wantRetry)
			}
		})
	}
}

func TestAttemptTimeoutConfig(t *testing.T) {
	tests := []struct {
		name        string
		cfgTimeout  time.Duration
		depTimeout  time.Duration
		wantTimeout bool
	}{
		{"config timeout", 50 * time.Millisecond, 0, true},
		{"deployment overrides config", time.Hour, 50 * time.Millisecond, true},
		{"headers in time", 5 * time.Second, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The upstream answers only after its request is cancelled or
			// after 300ms, whichever comes first.
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(300 * time.Millisecond):
					_, _ = w.Write([]byte(`{"late":true}`))
				}
			})
			d := dep("a", up.URL)
			d.Timeout = tc.depTimeout
			gw, _ := newGateway(t, newProxy(t, Config{AttemptTimeout: tc.cfgTimeout}), d)
			res, _ := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
			if got := res.StatusCode == http.StatusGatewayTimeout; got != tc.wantTimeout {
				t.Errorf("status = %d, want timeout %v", res.StatusCode, tc.wantTimeout)
			}
		})
	}
}

// TestClientErrorAfterFailover: a 4xx from the second deployment is the
// answer, with both attempts counted.
func TestClientErrorAfterFailover(t *testing.T) {
	const envelope = `{"error":{"message":"context too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`
	first := newUpstream(t, replying(503, "text/plain", "down"))
	second := newUpstream(t, replying(400, "application/json", envelope))
	gw, result := newGateway(t, newProxy(t, Config{}), dep("a", first.URL), dep("b", second.URL))
	res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
	if res.StatusCode != 400 || string(body) != envelope {
		t.Errorf("response = %d %s, want 400 %s", res.StatusCode, body, envelope)
	}
	var ue *UpstreamError
	if err := result.get(); !errors.As(err, &ue) || ue.Attempts != 2 || ue.Deployment != "b" || ue.Retryable {
		t.Errorf("Serve() = %#v, want a non-retryable *UpstreamError from deployment b after 2 attempts", err)
	}
}
