package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

func TestRewriteBodyAndHeaders(t *testing.T) {
	const clientBody = "{\"temperature\": 1e400 ,\"model\" :\"alias\",\n \"top_p\":0.10000000000000000001,\"x-unknown\":{\"model\":\"inner\"},\"messages\":[]}"
	tests := []struct {
		name      string
		dep       func(base string) gateway.Deployment
		wantPath  string
		wantQuery string
		wantModel string
		wantAuth  string
		wantKey   string
	}{
		{
			name:     "openai",
			dep:      func(base string) gateway.Deployment { return dep("a", base) },
			wantPath: "/v1/chat/completions", wantQuery: "trace=1", wantModel: "up-a",
			wantAuth: "Bearer sk-provider-secret-a",
		},
		{
			name: "no provider key",
			dep: func(base string) gateway.Deployment {
				d := dep("a", base)
				d.APIKey, d.APIBase = "", base+"/"
				return d
			},
			wantPath: "/chat/completions", wantQuery: "trace=1", wantModel: "up-a",
		},
		{
			name: "same model keeps body",
			dep: func(base string) gateway.Deployment {
				d := dep("a", base)
				d.UpstreamModel = "alias"
				return d
			},
			wantPath: "/v1/chat/completions", wantQuery: "trace=1", wantModel: "alias",
			wantAuth: "Bearer sk-provider-secret-a",
		},
		{
			name: "azure",
			dep: func(base string) gateway.Deployment {
				return gateway.Deployment{
					ID: "az", ModelName: "group", Provider: "azure", UpstreamModel: "my deployment",
					APIBase: base, APIKey: "azure-secret", APIVersion: "2024-10-21",
				}
			},
			wantPath: "/openai/deployments/my deployment/chat/completions", wantQuery: "api-version=2024-10-21&trace=1",
			wantModel: "my deployment", wantKey: "azure-secret",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				h := w.Header()
				h.Set("Content-Type", "application/json")
				h.Set("Set-Cookie", "upstream=1")
				h.Set("Openai-Organization", "org-secret")
				h.Set("X-Request-Id", "req-upstream")
				h.Set("X-Ratelimit-Remaining-Requests", "99")
				_, _ = io.WriteString(w, `{"ok":true}`)
			})
			gw, _ := newGateway(t, newProxy(t, Config{}), tc.dep(up.URL))
			res, body := post(t, gw, "/v1/chat/completions?trace=1", "application/json; charset=utf-8", clientBody, map[string]string{
				"Authorization":       "Bearer sk-client-virtual-key",
				"Api-Key":             "sk-client-2",
				"X-Api-Key":           "sk-client-3",
				"OpenAI-Organization": "org-client",
				"OpenAI-Project":      "proj-client",
				"Cookie":              "session=1",
				"Accept":              "application/json",
				"User-Agent":          "OpenAI/Go 3.0",
				"X-Stainless-Lang":    "go",
				"X-Forwarded-For":     "10.0.0.1",
			})
			if res.StatusCode != 200 || string(body) != `{"ok":true}` {
				t.Fatalf("response = %d %s, want 200 {\"ok\":true}", res.StatusCode, body)
			}
			reqs := up.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Path != tc.wantPath || got.RawQuery != tc.wantQuery {
				t.Errorf("upstream URL = %s?%s, want %s?%s", got.Path, got.RawQuery, tc.wantPath, tc.wantQuery)
			}
			wantBody := strings.Replace(clientBody, `"alias"`, `"`+tc.wantModel+`"`, 1)
			if string(got.Body) != wantBody {
				t.Errorf("upstream body = %s, want %s", got.Body, wantBody)
			}
			h := got.Header
			if cl := h.Get("Content-Length"); cl != itoa(len(wantBody)) {
				t.Errorf("upstream Content-Length = %q, want %d", cl, len(wantBody))
			}
			if a := h.Get("Authorization"); a != tc.wantAuth {
				t.Errorf("upstream Authorization = %q, want %q", a, tc.wantAuth)
			}
			if k := h.Get("Api-Key"); k != tc.wantKey {
				t.Errorf("upstream api-key = %q, want %q", k, tc.wantKey)
			}
			for _, k := range []string{"X-Api-Key", "Openai-Organization", "Openai-Project", "Cookie", "X-Forwarded-For", "Forwarded"} {
				if v := h.Values(k); len(v) > 0 {
					t.Errorf("upstream %s = %q, want it dropped", k, v)
				}
			}
			for k, want := range map[string]string{
				"Accept": "application/json", "User-Agent": "OpenAI/Go 3.0", "X-Stainless-Lang": "go",
				"Content-Type": "application/json; charset=utf-8",
			} {
				if v := h.Get(k); v != want {
					t.Errorf("upstream %s = %q, want %q", k, v, want)
				}
			}
			rh := res.Header
			for _, k := range []string{"Set-Cookie", "Openai-Organization"} {
				if v := rh.Values(k); len(v) > 0 {
					t.Errorf("client got %s = %q, want it dropped", k, v)
				}
			}
			if v := rh.Values("X-Request-Id"); len(v) > 0 {
				t.Errorf("client got X-Request-Id = %q, want the upstream's moved away", v)
			}
			if v := rh.Get("X-Upstream-Request-Id"); v != "req-upstream" {
				t.Errorf("client got X-Upstream-Request-Id = %q, want req-upstream", v)
			}
			if v := rh.Get("X-Ratelimit-Remaining-Requests"); v != "99" {
				t.Errorf("client got X-Ratelimit-Remaining-Requests = %q, want 99", v)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestUpstream4xx(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantBody    string // exact, or "" to check wantMessage
		wantMessage string
		wantType    string
		wantCode    any
	}{
		{
			name: "openai envelope passes through", status: 400, contentType: "application/json",
			body:     `{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":null}}`,
			wantBody: `{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":null}}`,
		},
		{
			name: "numeric code normalised", status: 422, contentType: "application/json",
			body:        `{"error":{"message":"unprocessable","code":422,"metadata":{"provider":"x"}}}`,
			wantMessage: "unprocessable", wantType: "invalid_request_error", wantCode: "422",
		},
		{
			name: "plain text wrapped", status: 404, contentType: "text/plain",
			body:        "  model not found: up-a \n",
			wantMessage: "model not found: up-a", wantType: "invalid_request_error", wantCode: nil,
		},
		{
			name: "other json wrapped", status: 401, contentType: "application/json",
			body:        `{"detail":"Unauthorized"}`,
			wantMessage: `{"detail":"Unauthorized"}`, wantType: "invalid_request_error", wantCode: nil,
		},
		{
			name: "empty body", status: 403, contentType: "text/plain", body: "",
			wantMessage: "The upstream provider returned HTTP 403.", wantType: "invalid_request_error", wantCode: nil,
		},
		{
			name: "long text truncated", status: 400, contentType: "text/html", body: strings.Repeat("é", 600),
			wantMessage: strings.Repeat("é", 256) + "…", wantType: "invalid_request_error", wantCode: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newUpstream(t, replying(tc.status, tc.contentType, tc.body))
			b := newUpstream(t, replying(200, "application/json", `{"from":"b"}`))
			gw, result := newGateway(t, newProxy(t, Config{}), dep("a", a.URL), dep("b", b.URL))
			res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
			if res.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
			}
			if n := len(b.requests()); n != 0 {
				t.Errorf("second deployment got %d requests, want none (no failover on %d)", n, tc.status)
			}
			var ue *UpstreamError
			if err := result.get(); !errors.As(err, &ue) || ue.Retryable || !errors.Is(err, ErrUpstreamStatus) {
				t.Errorf("Serve() error = %v, want a non-retryable *UpstreamError wrapping ErrUpstreamStatus", err)
			}
			if tc.wantBody != "" {
				if string(body) != tc.wantBody {
					t.Errorf("body = %s, want %s", body, tc.wantBody)
				}
				return
			}
			checkEnvelope(t, body, tc.wantMessage, tc.wantType, tc.wantCode)
		})
	}
}

// checkEnvelope checks an OpenAI error envelope with exactly four fields.
func checkEnvelope(tb testing.TB, body []byte, message, typ string, code any) {
	tb.Helper()
	var env struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		tb.Fatalf("body %s is not an error envelope (%v)", body, err)
	}
	e := env.Error
	if len(e) != 4 || e["message"] != message || e["type"] != typ || e["code"] != code || e["param"] != nil {
		tb.Errorf("error = %v, want message %q, type %q, code %v, param null", e, message, typ, code)
	}
}

func TestShuffleSpreadsCalls(t *testing.T) {
	var ups []*upstream
	var deps []gateway.Deployment
	for _, id := range []string{"a", "b", "c"} {
		u := newUpstream(t, replying(200, "application/json", `{"from":"`+id+`"}`))
		ups = append(ups, u)
		d := dep(id, u.URL)
		d.Weight = 1 // equal weights: simple-shuffle picks at random
		deps = append(deps, d)
	}
	p := newProxy(t, Config{})
	gw, _ := newGateway(t, p, deps...)
	const calls = 300
	counts := map[string]int{}
	for range calls {
		_, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
		counts[string(body)]++
	}
	// Binomial(300, 1/3): mean 100, sd 8.2; ±40 is about 5 sd.
	for _, id := range []string{"a", "b", "c"} {
		if n := counts[`{"from":"`+id+`"}`]; n < 60 || n > 140 {
			t.Errorf("deployment %s answered %d of %d calls, want about %d (counts %v)", id, n, calls, calls/3, counts)
		}
	}
	// Each deployment saw its own upstream model.
	for i, u := range ups {
		for _, r := range u.requests() {
			if !bytes.Contains(r.Body, []byte(`"up-`)) {
				t.Errorf("upstream %d got body %s, want an upstream model", i, r.Body)
			}
		}
	}
}

func TestMultipartRewrite(t *testing.T) {
	audio := []byte{0, 1, 2, 0xff, '\r', '\n', '-', '-', 'x'}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "speech.mp3")
	_, _ = fw.Write(audio)
	_ = mw.WriteField("model", "alias-whisper")
	_ = mw.WriteField("language", "en")
	_ = mw.Close()
	clientBody, ct := buf.String(), mw.FormDataContentType()

	up := newUpstream(t, replying(200, "application/json", `{"text":"hi"}`))
	d := dep("a", up.URL)
	d.UpstreamModel = "whisper-1"
	gw, _ := newGateway(t, newProxy(t, Config{}), d)
	res, body := post(t, gw, "/v1/audio/transcriptions", ct, clientBody, nil)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d %s, want 200", res.StatusCode, body)
	}
	got := up.requests()[0]
	if h := got.Header.Get("Content-Type"); h != ct {
		t.Errorf("upstream Content-Type = %q, want %q", h, ct)
	}
	want := strings.Replace(clientBody, "\r\n\r\nalias-whisper\r\n", "\r\n\r\nwhisper-1\r\n", 1)
	if string(got.Body) != want {
		t.Errorf("upstream body = %q, want %q", got.Body, want)
	}
	if m, err := openai.ScanMultipart(got.Body, ct); err != nil || m != "whisper-1" {
		t.Errorf("upstream model = %q, %v, want whisper-1", m, err)
	}
}

// TestNoSecretsLogged fails one attempt and breaks one stream and checks
// that neither the provider key nor the prompt reaches the log.
func TestNoSecretsLogged(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bad := newUpstream(t, replying(503, "text/plain", "overloaded"))
	good := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeEvent(t, w, `{"n":1}`)
		panic(http.ErrAbortHandler)
	})
	gw, _ := newGateway(t, newProxy(t, Config{Logger: log}), dep("a", bad.URL), dep("b", good.URL))
	res, body := post(t, gw, "/v1/chat/completions", "application/json",
		`{"model":"m","stream":true,"messages":[{"role":"user","content":"TOP-SECRET-PROMPT"}]}`,
		map[string]string{"Authorization": "Bearer sk-client-virtual-key"})
	if res.StatusCode != 200 || !strings.Contains(string(body), "upstream stream failed") {
		t.Fatalf("response = %d %s, want 200 with the error event", res.StatusCode, body)
	}
	out := logs.String()
	if !strings.Contains(out, "upstream attempt failed") || !strings.Contains(out, "upstream stream failed") {
		t.Errorf("log = %s, want both failures logged", out)
	}
	for _, secret := range []string{"sk-provider-secret", "TOP-SECRET-PROMPT", "sk-client-virtual-key"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q: %s", secret, out)
		}
	}
}

func TestServeErrors(t *testing.T) {
	p := newProxy(t, Config{})
	err := p.Serve(nil, nil, Request{})
	if !errors.Is(err, ErrNoDeployments) {
		t.Errorf("Serve(no deployments) = %v, want ErrNoDeployments", err)
	}
	t.Run("bad api_base", func(t *testing.T) {
		d := dep("a", "")
		d.APIBase = "not a url"
		gw, result := newGateway(t, p, d)
		res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, nil)
		if res.StatusCode != http.StatusBadGateway || !errors.Is(result.get(), ErrUpstreamUnavailable) {
			t.Errorf("bad api_base: %d %s (%v), want 502 and ErrUpstreamUnavailable", res.StatusCode, body, result.get())
		}
	})
}

// TestStreamAcceptEncoding: a streamed call does not pass on the client's
// Accept-Encoding (the transport negotiates and decompresses); other calls do.
func TestStreamAcceptEncoding(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"stream", `{"model":"m","stream":true}`, "gzip"},
		{"not a stream", `{"model":"m"}`, "br"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, replying(200, "application/json", `{}`))
			gw, _ := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
			post(t, gw, "/v1/chat/completions", "application/json", tc.body, map[string]string{"Accept-Encoding": "br"})
			if got := up.requests()[0].Header.Get("Accept-Encoding"); got != tc.want {
				t.Errorf("upstream Accept-Encoding = %q, want %q", got, tc.want)
			}
		})
	}
}
