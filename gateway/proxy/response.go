package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/regate/gateway/gateway/openai"
)

// maxHeldEvent bounds the bytes of an unfinished SSE event held back; a
// stream that never ends an event is passed on as it comes.
const maxHeldEvent = 1 << 20

// streamFailed is the event that ends a stream that broke after its headers.
var streamFailed = func() []byte {
	var b bytes.Buffer
	_ = openai.WriteSSEError(&b, openai.ErrorBody{
		Message: "upstream stream failed", Type: openai.TypeServer, Code: openai.String(codeUpstream),
	})
	return b.Bytes()
}()

// modifyResponse turns an upstream 4xx into an error for Serve and prepares a
// successful response for the client.
func (p *Proxy) modifyResponse(res *http.Response) error {
	c := callFrom(res.Request.Context())
	if c == nil {
		return nil
	}
	var deployment string
	if c.served != nil {
		deployment = c.served.ID
	}
	if res.StatusCode >= 400 {
		c.fail(c.served, FailStatus, res.StatusCode)
		return clientError(res, deployment, c.attempts)
	}
	h := res.Header
	// Provider details that are not the client's business, and the
	// upstream's request id, which would collide with the gateway's.
	for _, k := range []string{"Set-Cookie", "Openai-Organization", "Openai-Project", "Alt-Svc"} {
		h.Del(k)
	}
	if v := h.Values("X-Request-Id"); len(v) > 0 {
		h.Del("X-Request-Id")
		h["X-Upstream-Request-Id"] = v
	}
	g := &guardBody{rc: res.Body, call: c, log: p.log, attrs: c.logAttrs()}
	if isSSE(res) {
		// The error event may follow; a declared length would forbid it.
		h.Del("Content-Length")
		res.ContentLength = -1
		g.sse = true
		g.scratch = make([]byte, 32<<10)
	}
	res.Body = g
	return nil
}

// isSSE reports whether res is an event stream the proxy can append an
// event to (not compressed).
func isSSE(res *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if mt != "text/event-stream" {
		return false
	}
	ce := res.Header.Get("Content-Encoding")
	return ce == "" || ce == "identity"
}

// guardBody watches the upstream body for read errors. For an event stream
// it passes on whole events only, and turns a read error into the error
// event followed by a clean end, so the client gets a well-formed stream
// without [DONE]. A client that went away is not an upstream failure.
type guardBody struct {
	rc    io.ReadCloser
	call  *call // for Outcome: first byte, failures
	log   *slog.Logger
	attrs []any
	sse   bool

	scratch []byte // upstream reads
	held    []byte // the unfinished last event
	out     []byte // bytes ready for the client
	outBuf  []byte
	final   error // returned once out is drained
}

func (g *guardBody) Read(p []byte) (int, error) {
	if !g.sse {
		n, err := g.rc.Read(p)
		if n > 0 {
			g.call.firstByte()
		}
		if err != nil && err != io.EOF && g.call.clientCtx.Err() == nil {
			g.log.Warn("upstream body failed", append(g.attrs, "error", err)...)
			g.call.fail(g.call.served, FailStream, 0)
		}
		return n, err
	}
	for {
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			return n, nil
		}
		if g.final != nil {
			return 0, g.final
		}
		n, err := g.rc.Read(g.scratch)
		if n > 0 {
			g.call.firstByte()
			// Only the new bytes (and two before them) can end an event.
			from := max(0, len(g.held)-2)
			g.held = append(g.held, g.scratch[:n]...)
			cut := lastEventEnd(g.held, from)
			if cut == 0 && len(g.held) > maxHeldEvent {
				cut = len(g.held)
			}
			if cut > 0 {
				g.outBuf = append(g.outBuf[:0], g.held[:cut]...)
				g.out = g.outBuf
				g.held = append(g.held[:0], g.held[cut:]...)
			}
		}
		switch {
		case err == io.EOF:
			// A clean end: pass on whatever the upstream sent.
			g.out = append(g.out, g.held...)
			g.held, g.final = nil, io.EOF
		case err != nil && g.call.clientCtx.Err() != nil:
			g.final = err
		case err != nil:
			g.log.Warn("upstream stream failed", append(g.attrs, "error", err)...)
			g.call.fail(g.call.served, FailStream, 0)
			// Drop the unfinished event; end with the error event.
			g.out = append(g.out, streamFailed...)
			g.held, g.final = nil, io.EOF
		}
	}
}

func (g *guardBody) Close() error { return g.rc.Close() }

// lastEventEnd returns the offset just past the last blank line (the end of
// an event) in b[from:], or 0.
func lastEventEnd(b []byte, from int) int {
	end := 0
	for _, sep := range [...]string{"\n\n", "\r\r", "\n\r\n"} {
		if i := bytes.LastIndex(b[from:], []byte(sep)); i >= 0 && from+i+len(sep) > end {
			end = from + i + len(sep)
		}
	}
	return end
}
