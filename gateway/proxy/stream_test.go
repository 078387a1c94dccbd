package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const errorEvent = `data: {"error":{"message":"upstream stream failed","type":"server_error","param":null,"code":"upstream_error"}}`

// openStream posts a streaming chat request and returns the response.
func openStream(tb testing.TB, ctx context.Context, url string, hdr map[string]string) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("open stream: %v", err)
	}
	tb.Cleanup(func() { res.Body.Close() })
	return res
}

// TestStreamUnbuffered proves that each event reaches the client before the
// upstream writes the next one: the upstream waits for the test to have read
// event i before it sends event i+1.
func TestStreamUnbuffered(t *testing.T) {
	const n = 4
	proceed := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			writeEvent(t, w, `{"i":`+itoa(i)+`}`)
			select {
			case <-proceed:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	gw, _ := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res := openStream(t, ctx, gw.URL, nil)
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	sse := sseReader{bufio.NewReader(res.Body)}
	for i := range n {
		ev, err := sse.next()
		if err != nil {
			t.Fatalf("event %d: %v (a buffered proxy would hang here until the deadline)", i, err)
		}
		if want := `data: {"i":` + itoa(i) + `}`; ev != want {
			t.Fatalf("event %d = %q, want %q", i, ev, want)
		}
		proceed <- struct{}{}
	}
	rest, err := sse.all()
	if err != nil || len(rest) != 1 || rest[0] != "data: [DONE]" {
		t.Errorf("end of stream = %q, %v, want [DONE] and a clean end", rest, err)
	}
}

func TestMidStreamFailure(t *testing.T) {
	tests := []struct {
		name    string
		write   func(w http.ResponseWriter)
		wantPre []string // events before the error event
	}{
		{
			name: "after whole events",
			write: func(w http.ResponseWriter) {
				_, _ = io.WriteString(w, "data: {\"n\":1}\n\ndata: {\"n\":2}\n\n")
			},
			wantPre: []string{`data: {"n":1}`, `data: {"n":2}`},
		},
		{
			name: "inside an event",
			write: func(w http.ResponseWriter) {
				_, _ = io.WriteString(w, "data: {\"n\":1}\n\ndata: {\"n\":")
			},
			wantPre: []string{`data: {"n":1}`},
		},
		{
			name:  "before any event",
			write: func(w http.ResponseWriter) {},
		},
		{
			name: "crlf events",
			write: func(w http.ResponseWriter) {
				_, _ = io.WriteString(w, "data: {\"n\":1}\r\n\r\ndata: {\"n\"")
			},
			wantPre: []string{`data: {"n":1}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Content-Length", "100000") // must not survive
				w.WriteHeader(200)
				tc.write(w)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			})
			gw, result := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
			res := openStream(t, t.Context(), gw.URL, nil)
			if res.StatusCode != 200 {
				t.Fatalf("status = %d, want 200", res.StatusCode)
			}
			events, err := sseReader{bufio.NewReader(res.Body)}.all()
			if err != nil {
				t.Fatalf("stream ended with %v, want a clean end after the error event", err)
			}
			want := append(append([]string(nil), tc.wantPre...), errorEvent)
			if strings.Join(events, "|") != strings.Join(want, "|") {
				t.Errorf("events = %q, want %q", events, want)
			}
			if err := result.get(); err != nil {
				t.Errorf("Serve() = %v, want nil once the stream started", err)
			}
		})
	}
}

// TestPartialEventHeldBack checks that an event split across writes reaches
// the client whole.
func TestPartialEventHeldBack(t *testing.T) {
	proceed := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"a\":1}\n\ndata: {\"b\":")
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "2}\n\ndata: [DONE]\n\n")
	})
	gw, _ := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res := openStream(t, ctx, gw.URL, nil)
	br := bufio.NewReader(res.Body)
	first, err := sseReader{br}.next()
	if err != nil || first != `data: {"a":1}` {
		t.Fatalf("first event = %q, %v", first, err)
	}
	if n := br.Buffered(); n != 0 {
		t.Errorf("%d bytes of the unfinished event reached the client early", n)
	}
	close(proceed)
	rest, err := sseReader{br}.all()
	if err != nil || strings.Join(rest, "|") != `data: {"b":2}|data: [DONE]` {
		t.Errorf("rest = %q, %v, want the whole second event and [DONE]", rest, err)
	}
}

// TestNonStreamFailureAborts checks that a JSON body cut short reaches the
// client as a broken response, never as a short one.
func TestNonStreamFailureAborts(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, `{"choices":[`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	gw, _ := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return // aborted before the headers arrived: also a broken response
	}
	defer res.Body.Close()
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Error("reading the cut body succeeded, want an error")
	}
}

func TestClientCancelStopsUpstream(t *testing.T) {
	upstreamDone := make(chan error, 1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeEvent(t, w, `{"n":1}`)
		select {
		case <-r.Context().Done():
			upstreamDone <- r.Context().Err()
		case <-time.After(20 * time.Second):
			upstreamDone <- errors.New("upstream request still running after 20s")
		}
	})
	gw, _ := newGateway(t, newProxy(t, Config{}), dep("a", up.URL))
	ctx, cancel := context.WithCancel(t.Context())
	res := openStream(t, ctx, gw.URL, nil)
	if ev, err := (sseReader{bufio.NewReader(res.Body)}).next(); err != nil || ev != `data: {"n":1}` {
		t.Fatalf("first event = %q, %v", ev, err)
	}
	cancel()
	if err := <-upstreamDone; !errors.Is(err, context.Canceled) {
		t.Errorf("upstream request ended with %v, want context.Canceled", err)
	}
}

func TestClientCancelBeforeHeaders(t *testing.T) {
	entered := make(chan struct{})
	upstreamDone := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(upstreamDone)
	})
	second := newUpstream(t, replying(200, "application/json", `{}`))
	gw, result := newGateway(t, newProxy(t, Config{}), dep("a", up.URL), dep("b", second.URL))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-entered
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	select {
	case <-upstreamDone:
	case <-time.After(20 * time.Second):
		t.Fatal("upstream request not cancelled after 20s")
	}
	// Serve reports the cancellation once it returns; the gateway handler may
	// still be finishing, so poll briefly.
	deadline := time.Now().Add(10 * time.Second)
	for result.get() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := result.get(); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve() = %v, want an error wrapping context.Canceled", err)
	}
	if n := len(second.requests()); n != 0 {
		t.Errorf("second deployment got %d requests after the client left, want 0", n)
	}
}
