package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/mock"
)

func mockDep(id, upstreamModel string) gateway.Deployment {
	return gateway.Deployment{ID: id, ModelName: "mock-group", ProviderModel: "mock/" + upstreamModel, Provider: "mock", UpstreamModel: upstreamModel}
}

func TestMockProvider(t *testing.T) {
	p := newProxy(t, Config{Mock: mock.New(mock.Config{Chunks: 3})})
	t.Run("chat", func(t *testing.T) {
		gw, _ := newGateway(t, p, mockDep("0", "mock-up"))
		res, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"alias","messages":[]}`, nil)
		var out struct {
			Model   string `json:"model"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(body, &out); err != nil || res.StatusCode != 200 {
			t.Fatalf("response = %d %s (%v)", res.StatusCode, body, err)
		}
		if out.Model != "mock-up" || !strings.Contains(out.Choices[0].Message.Content, "mock model mock-up") {
			t.Errorf("answer = %+v, want it from model mock-up", out)
		}
		if cl := res.Header.Get("Content-Length"); cl != itoa(len(body)) {
			t.Errorf("Content-Length = %q, want %d", cl, len(body))
		}
	})
	t.Run("stream", func(t *testing.T) {
		gw, _ := newGateway(t, p, mockDep("0", "mock-up"))
		res := openStream(t, t.Context(), gw.URL, nil)
		events, err := sseReader{bufio.NewReader(res.Body)}.all()
		// role chunk, 3 content chunks, finish chunk, [DONE]
		if err != nil || len(events) != 6 || events[5] != "data: [DONE]" {
			t.Fatalf("events = %q, %v, want 6 ending in [DONE]", events, err)
		}
		if !strings.Contains(events[1], `"model":"mock-up"`) {
			t.Errorf("chunk = %s, want model mock-up", events[1])
		}
	})
	t.Run("fail after", func(t *testing.T) {
		gw, _ := newGateway(t, p, mockDep("0", "mock-up"))
		res := openStream(t, t.Context(), gw.URL, map[string]string{mock.HeaderFailAfter: "2"})
		events, err := sseReader{bufio.NewReader(res.Body)}.all()
		if err != nil || len(events) != 4 || events[3] != errorEvent {
			t.Errorf("events = %q, %v, want role, 2 chunks and the error event", events, err)
		}
	})
	t.Run("status fails over", func(t *testing.T) {
		// The header reaches both attempts; a mock that honours it fails,
		// so failover reaches the network deployment.
		up := newUpstream(t, replying(200, "application/json", `{"from":"net"}`))
		gw, _ := newGateway(t, p, mockDep("0", "mock-up"), dep("b", up.URL))
		_, body := post(t, gw, "/v1/chat/completions", "application/json", `{"model":"m"}`, map[string]string{mock.HeaderStatus: "503"})
		if string(body) != `{"from":"net"}` {
			t.Errorf("body = %s, want the network deployment's", body)
		}
		if got := up.requests()[0].Header.Get(mock.HeaderStatus); got != "503" {
			t.Errorf("network upstream got %s = %q, want the client's header passed on", mock.HeaderStatus, got)
		}
	})
	t.Run("latency from deployment", func(t *testing.T) {
		d := mockDep("0", "mock-up")
		d.MockLatency = 80 * time.Millisecond
		gw, _ := newGateway(t, p, d)
		start := time.Now()
		res, _ := post(t, gw, "/v1/embeddings", "application/json", `{"model":"e","input":"x","dimensions":2}`, nil)
		if el := time.Since(start); res.StatusCode != 200 || el < 80*time.Millisecond {
			t.Errorf("status %d after %v, want 200 after at least 80ms", res.StatusCode, el)
		}
	})
	t.Run("deployment timeout", func(t *testing.T) {
		d := mockDep("0", "mock-up")
		d.MockLatency, d.Timeout = 10*time.Second, 50*time.Millisecond
		gw, _ := newGateway(t, p, d)
		res, _ := post(t, gw, "/v1/embeddings", "application/json", `{"model":"e","input":"x"}`, nil)
		if res.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("status = %d, want 504", res.StatusCode)
		}
	})
}

func TestHandlerTransport(t *testing.T) {
	t.Run("chunks arrive as written", func(t *testing.T) {
		proceed := make(chan struct{})
		rt := HandlerTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Custom", "1")
			for i := range 3 {
				_, _ = io.WriteString(w, "data: "+itoa(i)+"\n\n")
				w.(http.Flusher).Flush()
				<-proceed
			}
		}))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://mock.internal/x", strings.NewReader("{}"))
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Custom") != "1" {
			t.Errorf("response = %d %v, want 200 with X-Custom", res.StatusCode, res.Header)
		}
		sse := sseReader{bufio.NewReader(res.Body)}
		for i := range 3 {
			ev, err := sse.next()
			if err != nil || ev != "data: "+itoa(i) {
				t.Fatalf("event %d = %q, %v", i, ev, err)
			}
			proceed <- struct{}{}
		}
		if rest, err := sse.all(); err != nil || len(rest) != 0 {
			t.Errorf("end = %q, %v, want a clean end", rest, err)
		}
	})
	t.Run("panic before headers", func(t *testing.T) {
		rt := HandlerTransport(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://mock.internal/x", nil)
		if res, err := rt.RoundTrip(req); err == nil {
			res.Body.Close()
			t.Error("RoundTrip() error = nil, want the abort")
		}
	})
	t.Run("panic after headers", func(t *testing.T) {
		rt := HandlerTransport(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		}))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://mock.internal/x", nil)
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		if string(b) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("body = %q, %v, want partial and io.ErrUnexpectedEOF", b, err)
		}
	})
	t.Run("cancel reaches handler", func(t *testing.T) {
		handlerDone := make(chan error, 1)
		rt := HandlerTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			select {
			case <-r.Context().Done():
				handlerDone <- r.Context().Err()
			case <-time.After(20 * time.Second):
				handlerDone <- errors.New("not cancelled after 20s")
			}
		}))
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mock.internal/x", nil)
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		cancel()
		if err := <-handlerDone; !errors.Is(err, context.Canceled) {
			t.Errorf("handler saw %v, want context.Canceled", err)
		}
	})
	t.Run("cancel before headers", func(t *testing.T) {
		rt := HandlerTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mock.internal/x", nil)
		go cancel()
		if _, err := rt.RoundTrip(req); !errors.Is(err, context.Canceled) {
			t.Errorf("RoundTrip() error = %v, want context.Canceled", err)
		}
	})
	t.Run("empty handler", func(t *testing.T) {
		rt := HandlerTransport(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://mock.internal/x", nil)
		res, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		if res.StatusCode != 200 || len(b) != 0 || err != nil {
			t.Errorf("response = %d %q %v, want 200 and an empty body", res.StatusCode, b, err)
		}
	})
}
