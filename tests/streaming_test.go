package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseChunk is one chat.completion.chunk event carrying text.
func sseChunk(model, text string) string {
	return fmt.Sprintf(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":%q,"choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", model, text)
}

// writeFlush writes one event and flushes it to the wire.
func writeFlush(w http.ResponseWriter, s string) {
	_, _ = fmt.Fprint(w, s)
	w.(http.Flusher).Flush()
}

const streamKey = "sk-seed4-ordinary"
const streamModel = "openrouter/qwen/qwen3.5-flash-02-23"

// TestStreamingUnbuffered proves the gateway forwards each event as the
// upstream sends it: the upstream does not send event n+1 until the client
// has received event n, so any buffering would deadlock into the timeout.
func TestStreamingUnbuffered(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const n = 4
	received := make(chan int, n)
	up.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for i := range n {
			writeFlush(w, sseChunk("qwen/qwen3.5-flash-02-23", fmt.Sprintf("part%d ", i)))
			select {
			case <-received:
			case <-time.After(10 * time.Second):
				return // the client never saw event i: the gateway buffered
			case <-r.Context().Done():
				return
			}
		}
		writeFlush(w, "data: [DONE]\n\n")
	}))

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := g.client(streamKey)
	stream := c.Chat.Completions.NewStreaming(ctx, chatParams(streamModel))
	var got strings.Builder
	events := 0
	for stream.Next() {
		chunk := stream.Current()
		if len(chunk.Choices) > 0 {
			got.WriteString(chunk.Choices[0].Delta.Content)
		}
		events++
		received <- events
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream error after %d events: %v", events, err)
	}
	if events != n || got.String() != "part0 part1 part2 part3 " {
		t.Errorf("stream = %d events %q, want %d events %q", events, got.String(), n, "part0 part1 part2 part3 ")
	}
	if m := up.last(t).Model; m != "qwen/qwen3.5-flash-02-23" {
		t.Errorf("upstream model = %q, want qwen/qwen3.5-flash-02-23", m)
	}
}

// TestStreamingEndsOnDone checks the raw framing: one data line per event,
// [DONE] last, no comments or event lines.
func TestStreamingEndsOnDone(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	body := []byte(`{"model":"` + streamModel + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	r := g.do(t, http.MethodPost, "/v1/chat/completions", streamKey, "application/json", body)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream = %d %q %s, want 200 text/event-stream", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	events := strings.Split(strings.TrimSuffix(string(r.Body), "\n\n"), "\n\n")
	if len(events) < 2 || events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("stream does not end with data: [DONE]: %q", r.Body)
	}
	for _, ev := range events {
		if !strings.HasPrefix(ev, "data: ") || strings.Contains(ev, "\n") {
			t.Errorf("event %q is not one data line", ev)
		}
	}
}

// TestStreamingUpstreamFailureMidStream: the upstream dies after two
// events; the client gets both, then an error, and no [DONE].
func TestStreamingUpstreamFailureMidStream(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	up.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeFlush(w, sseChunk("m", "one "))
		writeFlush(w, sseChunk("m", "two "))
		panic(http.ErrAbortHandler) // drop the connection mid-stream
	}))

	c := g.client(streamKey)
	stream := c.Chat.Completions.NewStreaming(t.Context(), chatParams(streamModel))
	events := 0
	for stream.Next() {
		events++
	}
	if events != 2 {
		t.Errorf("events before the failure = %d, want 2", events)
	}
	if stream.Err() == nil {
		t.Fatal("stream.Err() = nil after an upstream failure mid-stream, want an error")
	}

	// On the wire: the two events, one error event, no [DONE].
	body := []byte(`{"model":"` + streamModel + `","stream":true,"messages":[]}`)
	r := g.do(t, http.MethodPost, "/v1/chat/completions", streamKey, "application/json", body)
	raw := string(r.Body)
	if strings.Contains(raw, "[DONE]") || !strings.HasSuffix(raw, "\n\n") {
		t.Errorf("raw stream = %q, want no [DONE] and a complete last event", raw)
	}
	evs := strings.Split(strings.TrimSuffix(raw, "\n\n"), "\n\n")
	if last := evs[len(evs)-1]; !strings.HasPrefix(last, `data: {"error":`) {
		t.Errorf("last event = %q, want a data: {\"error\":...} event", last)
	}
}

// TestStreamingClientCancelReachesUpstream: when the client goes away, the
// upstream request's context is cancelled.
func TestStreamingClientCancelReachesUpstream(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	upstreamDone := make(chan struct{})
	up.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeFlush(w, sseChunk("m", "first "))
		select {
		case <-r.Context().Done():
			close(upstreamDone)
		case <-time.After(20 * time.Second):
		}
	}))

	ctx, cancel := context.WithCancel(t.Context())
	c := g.client(streamKey)
	stream := c.Chat.Completions.NewStreaming(ctx, chatParams(streamModel))
	if !stream.Next() {
		t.Fatalf("no first event: %v", stream.Err())
	}
	cancel()
	select {
	case <-upstreamDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled within 10s of the client cancelling")
	}
	_ = stream.Close()
}
