package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// pieces reads s in pieces of at most n bytes, then returns end.
type pieces struct {
	s   string
	n   int
	end error
}

func (r *pieces) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, r.end
	}
	n := copy(p, r.s[:min(r.n, len(r.s))])
	r.s = r.s[n:]
	return n, nil
}

func (r *pieces) Close() error { return nil }

func TestLastEventEnd(t *testing.T) {
	tests := []struct {
		b    string
		from int
		want int
	}{
		{"", 0, 0},
		{"data: a", 0, 0},
		{"data: a\n", 0, 0},
		{"data: a\n\n", 0, 9},
		{"data: a\n\ndata: b", 0, 9},
		{"data: a\n\ndata: b\n\n", 0, 18},
		{"data: a\r\n\r\n", 0, 11},
		{"data: a\r\n\r", 0, 0},
		{"data: a\r\r", 0, 9},
		{"data: a\n\r\n", 0, 10},
		{"\n\n", 0, 2},
		{"\n\n", 1, 0}, // the blank line starts before from
		{"a\n\r\n", 2, 0},
		{"a\n\r\n", 1, 4},
	}
	for _, tc := range tests {
		if got := lastEventEnd([]byte(tc.b), tc.from); got != tc.want {
			t.Errorf("lastEventEnd(%q, %d) = %d, want %d", tc.b, tc.from, got, tc.want)
		}
	}
}

// TestGuardBodyWholeEvents reads a stream through guardBody in pieces of
// every size and with small and large read buffers: the bytes come through
// unchanged and every read but the last ends an event.
func TestGuardBodyWholeEvents(t *testing.T) {
	const stream = "data: {\"n\":1}\n\ndata: {\"n\":22}\r\n\r\n: comment\n\ndata: {\"n\":333}\r\rdata: [DONE]\n\n"
	for _, size := range []int{5, 16, 32 << 10} {
		for n := 1; n <= len(stream); n++ {
			g := &guardBody{rc: &pieces{s: stream, n: n, end: io.EOF}, call: &call{clientCtx: context.Background(), req: &Request{}}, sse: true}
			var got strings.Builder
			buf := make([]byte, size)
			for {
				k, err := g.Read(buf)
				got.Write(buf[:k])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("size %d, pieces of %d: Read: %v", size, n, err)
				}
				if k > 0 && size > 16 && lastEventEnd([]byte(got.String()), 0) != got.Len() {
					t.Fatalf("size %d, pieces of %d: a read ended inside an event: %q", size, n, got.String())
				}
			}
			if got.String() != stream {
				t.Fatalf("size %d, pieces of %d: got %q, want %q", size, n, got.String(), stream)
			}
		}
	}
}

// TestGuardBodyBrokenStream drops the unfinished event of a stream that
// breaks and ends with the error event.
func TestGuardBodyBrokenStream(t *testing.T) {
	const stream = "data: {\"n\":1}\n\ndata: {\"n\":2"
	for n := 1; n <= len(stream); n++ {
		c := &call{clientCtx: context.Background(), req: &Request{}}
		g := &guardBody{rc: &pieces{s: stream, n: n, end: errors.New("connection reset")}, call: c, log: slog.New(slog.DiscardHandler), sse: true}
		b, err := io.ReadAll(g)
		if err != nil {
			t.Fatalf("pieces of %d: ReadAll: %v", n, err)
		}
		if want := "data: {\"n\":1}\n\n" + string(streamFailed); string(b) != want {
			t.Fatalf("pieces of %d: got %q, want %q", n, b, want)
		}
		if len(c.failures) != 1 || c.failures[0].Kind != FailStream {
			t.Errorf("pieces of %d: failures = %v, want one %s", n, c.failures, FailStream)
		}
	}
}

func TestIsSSE(t *testing.T) {
	tests := []struct {
		contentType, encoding string
		want                  bool
	}{
		{"text/event-stream", "", true},
		{"text/event-stream; charset=utf-8", "", true},
		{"Text/Event-Stream ;charset=utf-8", "", true},
		{" text/event-stream", "identity", true},
		{"text/event-stream", "gzip", false},
		{"text/event-streams", "", false},
		{"text/event-stream x", "", false},
		{"application/json", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		res := &http.Response{Header: http.Header{}}
		res.Header.Set("Content-Type", tc.contentType)
		if tc.encoding != "" {
			res.Header.Set("Content-Encoding", tc.encoding)
		}
		if got := isSSE(res); got != tc.want {
			t.Errorf("isSSE(Content-Type %q, Content-Encoding %q) = %v, want %v", tc.contentType, tc.encoding, got, tc.want)
		}
	}
}
