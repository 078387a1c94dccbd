package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

// splitReader returns s in reads whose lengths come from sizes (cycled; a
// zero gives an empty read, but never two in a row: a reader that returns
// nothing forever is broken), then io.EOF.
type splitReader struct {
	s     []byte
	sizes []byte
	i     int
	empty bool // the last read was empty
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	n := len(r.s)
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	if n == 0 && r.empty {
		n = 1
	}
	r.empty = n == 0
	n = min(n, len(r.s), len(p))
	copy(p, r.s[:n])
	r.s = r.s[n:]
	return n, nil
}

func (r *splitReader) Close() error { return nil }

// readGuarded reads stream through a tracking guardBody in pieces of the
// given sizes, into a buffer of bufSize bytes, and returns what the client
// gets and the usage recorded.
func readGuarded(tb testing.TB, stream, sizes []byte, bufSize int, strip bool) ([]byte, gateway.Usage) {
	tb.Helper()
	c := &call{clientCtx: context.Background(), req: &Request{}, track: true, stripUsage: strip}
	g := &guardBody{rc: &splitReader{s: stream, sizes: sizes}, call: c, log: slog.New(slog.DiscardHandler), sse: true}
	var out bytes.Buffer
	buf := make([]byte, bufSize)
	for reads := 0; ; reads++ {
		if reads > 4*len(stream)+len(sizes)+16 {
			tb.Fatalf("guardBody.Read does not end on %q", stream)
		}
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("guardBody.Read error = %v", err)
		}
	}
	return out.Bytes(), c.usage
}

// FuzzGuardBodyUsage checks the SSE reader the usage capture uses
// (guardBody with usage.FromEvent): whatever the upstream sends and however
// its reads split it, it never panics and ends; a stream of well-formed
// events (the fuzzed data and usage figures framed as chat chunks, with
// the line endings of the input) gives the client the same bytes and
// records the same usage whatever the split points and read buffer size,
// and dropping the usage-only chunk for a client that did not ask for it
// also leaves the other events and the usage unchanged.
func FuzzGuardBodyUsage(f *testing.F) {
	f.Add([]byte(`{"id":"1","choices":[{"delta":{"content":"hi"}}]}`), []byte{1, 7, 0, 3}, uint16(5), uint32(12), uint32(34), uint8(0))
	f.Add([]byte(`{"usage":null}`), []byte{}, uint16(32<<10), uint32(0), uint32(1), uint8(1))
	f.Add([]byte("data: x\n\ndata: {\"usage\":{\"prompt_tokens\":1}}\n\n"), []byte{2}, uint16(1), uint32(7), uint32(0), uint8(2))
	f.Add([]byte("\r\n\r"), []byte{0, 1, 1, 2}, uint16(3), uint32(99), uint32(100), uint8(3))
	f.Fuzz(func(t *testing.T, data, sizes []byte, bufSize uint16, prompt, completion uint32, mode uint8) {
		if len(data) > 4<<10 || len(sizes) > 256 {
			return
		}
		buf := int(bufSize)%(64<<10) + 1
		// Raw input: whatever it is, Read ends and passes on every byte
		// (nothing is stripped for a client that asked for usage).
		if got, _ := readGuarded(t, data, sizes, buf, false); !bytes.Equal(got, data) {
			t.Fatalf("raw stream %q in pieces %v, buffer %d: client got %q", data, sizes, buf, got)
		}
		eol := []string{"\n", "\r\n", "\r"}[mode%3]
		// The fuzzed data as one JSON string, so that every event is
		// well formed whatever it holds.
		content := strings.ReplaceAll(string(data), "\x00", "")
		chunk := `{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":` + jsonString(content) + `}}]}`
		usageChunk := `{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":` +
			itoa(int(prompt)) + `,"completion_tokens":` + itoa(int(completion)) + `,"prompt_tokens_details":{"cached_tokens":` + itoa(int(prompt/2)) + `}}}`
		ev := func(s string) string { return "data: " + s + eol + eol }
		kept := ev(chunk) + ev(chunk)
		done := ev("[DONE]")
		stream := []byte(kept + ev(usageChunk) + done)

		want := gateway.Usage{Reported: true, PromptTokens: int64(prompt), CompletionTokens: int64(completion), CachedTokens: int64(prompt / 2)}
		whole, wholeUsage := readGuarded(t, stream, nil, 64<<10, false)
		if !bytes.Equal(whole, stream) || wholeUsage != want {
			t.Fatalf("unsplit stream %q: client got %q, usage %+v; want the stream and %+v", stream, whole, wholeUsage, want)
		}
		got, u := readGuarded(t, stream, sizes, buf, false)
		if !bytes.Equal(got, stream) || u != wholeUsage {
			t.Fatalf("stream %q in pieces %v, buffer %d: client got %q, usage %+v; want the stream and %+v", stream, sizes, buf, got, u, wholeUsage)
		}
		got, u = readGuarded(t, stream, sizes, buf, true)
		if string(got) != kept+done || u != wholeUsage {
			t.Fatalf("stripped stream %q in pieces %v, buffer %d: client got %q, usage %+v; want %q and %+v", stream, sizes, buf, got, u, kept+done, wholeUsage)
		}
	})
}

// jsonString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
