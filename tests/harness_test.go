// Package tests holds black-box end-to-end tests: they boot the real wiring
// (config, catalog, Rego policy, store, proxy, HTTP edge) on a free port, put
// a real httptest upstream behind it, and call it with the real openai-go
// client and raw HTTP.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/gateway/mock"
)

// upstreamCall is what the upstream saw of one request.
type upstreamCall struct {
	Path   string
	Model  string
	Header http.Header
	Body   []byte
}

// upstream is a real HTTP server standing in for a provider. By default it
// answers like OpenAI (the mock handler); tests may install their own
// handler. It records every call.
type upstream struct {
	URL string

	mu      sync.Mutex
	calls   []upstreamCall
	handler http.Handler
}

func startUpstream(tb testing.TB) *upstream {
	tb.Helper()
	u := &upstream{handler: mock.New(mock.Config{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(body, &m)
		u.mu.Lock()
		u.calls = append(u.calls, upstreamCall{Path: r.URL.Path, Model: m.Model, Header: r.Header.Clone(), Body: body})
		h := u.handler
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// setHandler replaces the upstream's behaviour.
func (u *upstream) setHandler(h http.Handler) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = h
}

// last returns the most recent call, failing the test when there is none.
func (u *upstream) last(tb testing.TB) upstreamCall {
	tb.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) == 0 {
		tb.Fatal("upstream received no call")
	}
	return u.calls[len(u.calls)-1]
}

// count returns how many calls the upstream received.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

// gw is a running gateway.
type gw struct {
	*app.Gateway
	URL string
}

// startGateway boots the real wiring with the given config document on a
// free port. "{{UP}}" in the config is replaced by the upstream's URL.
func startGateway(tb testing.TB, config string, up *upstream) *gw {
	tb.Helper()
	return startGatewayWith(tb, config, up, app.Options{})
}

// startGatewayWith is startGateway with extra options (a database URL, a
// logger, cache settings).
func startGatewayWith(tb testing.TB, config string, up *upstream, opts app.Options) *gw {
	tb.Helper()
	if up != nil {
		config = strings.ReplaceAll(config, "{{UP}}", up.URL)
	}
	ctx := context.Background()
	opts.ConfigData = []byte(config)
	opts.Listen = "127.0.0.1:0"
	opts.Env = func(string) (string, bool) { return "", false }
	g, err := app.Build(ctx, opts)
	if err != nil {
		tb.Fatalf("app.Build: %v", err)
	}
	if err := g.Start(ctx); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(sctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return &gw{Gateway: g, URL: "http://" + g.Addr()}
}

// client returns an openai-go client for key, without retries so every
// status reaches the test as it was sent.
func (g *gw) client(key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(g.URL+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	)
}

// response is a raw HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a raw request; key may be empty.
func (g *gw) do(tb testing.TB, method, path, key, contentType string, body []byte) response {
	tb.Helper()
	req, err := http.NewRequest(method, g.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return roundTrip(tb, req)
}

// roundTrip sends req and reads the whole answer.
func roundTrip(tb testing.TB, req *http.Request) response {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// admin sends an admin API call with the master key of seedConfig; body is
// marshalled as JSON when not nil.
func (g *gw) admin(tb testing.TB, method, path string, body any) response {
	tb.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			tb.Fatal(err)
		}
	}
	return g.do(tb, method, path, "sk-master-test-0000", "application/json", b)
}

// mustJSON decodes a 200 answer into v.
func mustJSON(tb testing.TB, r response, v any) {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errorEnvelope is the OpenAI error shape.
type errorEnvelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// decodeError parses an OpenAI error envelope, failing when it is not one.
func decodeError(tb testing.TB, b []byte) errorEnvelope {
	tb.Helper()
	var e errorEnvelope
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		tb.Fatalf("not an OpenAI error envelope: %s (err %v)", b, err)
	}
	return e
}

// chatBody is a minimal chat request for model.
func chatBody(model string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": "hi"}},
	})
	return b
}

// chatParams is the openai-go form of chatBody.
func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
}

// apiStatus returns the HTTP status of an openai-go error, or 200 for nil.
func apiStatus(tb testing.TB, err error) int {
	tb.Helper()
	if err == nil {
		return http.StatusOK
	}
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		tb.Fatalf("not an API error: %v", err)
	}
	return apiErr.StatusCode
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
