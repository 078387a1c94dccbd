package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/usage"
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

// streamSilent is the event that ends a stream whose upstream went silent
// for longer than its stream_timeout.
var streamSilent = func() []byte {
	var b bytes.Buffer
	_ = openai.WriteSSEError(&b, openai.ErrorBody{
		Message: "upstream stream went silent for longer than its stream_timeout", Type: openai.TypeServer, Code: openai.String(codeUpstreamTimeout),
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
		return clientError(res, deployment, c.req.PriorAttempts+c.attempts)
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
	// What served the answer (DESIGN §12): the model group and how many
	// deployments were tried.
	if g := c.req.Group; g != "" {
		h.Set("X-Gateway-Model-Group", g)
	}
	h.Set("X-Gateway-Attempts", strconv.Itoa(c.req.PriorAttempts+c.attempts))
	g := &guardBody{rc: res.Body, call: c, log: p.log}
	if isSSE(res) {
		// The error event may follow; a declared length would forbid it.
		h.Del("Content-Length")
		res.ContentLength = -1
		g.sse = true
	}
	res.Body = g
	return nil
}

// isSSE reports whether res is an event stream the proxy can append an
// event to (not compressed).
func isSSE(res *http.Response) bool {
	// The media type alone, as mime.ParseMediaType would return it, without
	// the map of parameters that allocates on every response.
	mt, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
		return false
	}
	ce := res.Header.Get("Content-Encoding")
	return ce == "" || ce == "identity"
}

// guardBody watches the upstream body for read errors. For an event stream
// it passes on whole events only, and turns a read error into the error
// event followed by a clean end, so the client gets a well-formed stream
// without [DONE]. A client that went away is not an upstream failure.
//
// Events are read straight into the caller's buffer (the ReverseProxy's
// pooled copy buffer): a read that ends with a whole event, as the reads
// of a provider flushing event by event do, is passed on in place. Only
// the bytes of an unfinished event are held back, in a buffer of their
// own, until the rest arrives.
type guardBody struct {
	rc   io.ReadCloser
	call *call // for Outcome: first byte, failures
	log  *slog.Logger
	sse  bool

	held  []byte // the unfinished last event
	out   []byte // bytes ready for the client, before any new read
	final error  // returned once out is drained

	tail []byte // the last bytes of a JSON answer, for its usage
}

func (g *guardBody) Read(p []byte) (int, error) {
	if !g.sse {
		n, err := g.rc.Read(p)
		if n > 0 {
			g.call.firstByte()
			if g.call.track {
				g.keepTail(p[:n])
			}
		}
		if err == io.EOF && g.call.track {
			if u, ok := usage.FromTail(g.tail); ok {
				g.call.usage = u
			}
			g.tail = nil
		}
		if err != nil && err != io.EOF && g.call.clientCtx.Err() == nil {
			g.log.Warn("upstream body failed", append(g.call.logAttrs(), "error", err)...)
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
		if len(g.held) > 0 {
			g.readHeld(p)
			continue
		}
		n, err := g.rc.Read(p)
		cut := 0
		if n > 0 {
			g.call.firstByte()
			cut = lastEventEnd(p[:n], 0)
			if cut < n {
				g.held = append(g.held, p[cut:n]...)
			}
		}
		if err != nil {
			g.end(err)
		}
		if cut > 0 {
			if cut = g.scan(p[:cut]); cut > 0 {
				return cut, nil
			}
		}
	}
}

// keepTail keeps the last usage.TailSize bytes (at least) of a JSON answer.
func (g *guardBody) keepTail(b []byte) {
	if len(b) >= usage.TailSize {
		g.tail = append(g.tail[:0], b[len(b)-usage.TailSize:]...)
		return
	}
	if len(g.tail)+len(b) > 2*usage.TailSize {
		keep := usage.TailSize - len(b)
		g.tail = append(g.tail[:0], g.tail[len(g.tail)-keep:]...)
	}
	g.tail = append(g.tail, b...)
}

// scan reads the usage of the whole events in b, and drops from b the
// usage-only chunk of a stream whose client did not ask for it. It returns
// the length of what is left in b.
func (g *guardBody) scan(b []byte) int {
	if !g.call.track || !bytes.Contains(b, usageKey) {
		return len(b)
	}
	n, start := 0, 0
	for start < len(b) {
		end := nextEventEnd(b, start)
		ev := b[start:end]
		keep := true
		if u, found, usageOnly := usage.FromEvent(ev); found {
			g.call.usage = u
			keep = !(usageOnly && g.call.stripUsage)
		}
		if keep {
			n += copy(b[n:], ev)
		}
		start = end
	}
	return n
}

var usageKey = []byte(`"usage"`)

// nextEventEnd returns the offset just past the first event end (a blank
// line) at or after from, or len(b).
func nextEventEnd(b []byte, from int) int {
	for i := from + 1; i < len(b); i++ {
		c, prev := b[i], b[i-1]
		switch {
		case c == '\n' && prev == '\n', c == '\r' && prev == '\r':
			return i + 1
		case c == '\n' && prev == '\r' && i-2 >= from && b[i-2] == '\n':
			return i + 1
		}
	}
	return len(b)
}

// readHeld reads more of the unfinished event in held, using p as the read
// buffer, and moves what now ends an event to out.
func (g *guardBody) readHeld(p []byte) {
	n, err := g.rc.Read(p)
	if n > 0 {
		// Only the new bytes (and two before them) can end an event.
		from := max(0, len(g.held)-2)
		g.held = append(g.held, p[:n]...)
		cut := lastEventEnd(g.held, from)
		if cut == 0 && len(g.held) > maxHeldEvent {
			cut = len(g.held)
		}
		if cut > 0 {
			g.out = g.held[:g.scan(g.held[:cut])]
			g.held = bytes.Clone(g.held[cut:]) // nil when nothing is left
		}
	}
	if err != nil {
		g.end(err)
	}
}

// end records the upstream read error err, after which Read returns what
// out holds and then final.
func (g *guardBody) end(err error) {
	switch {
	case err == io.EOF:
		// A clean end: pass on whatever the upstream sent.
		g.out = append(g.out, g.held[:g.scan(g.held)]...)
		g.final = io.EOF
	case g.call.clientCtx.Err() != nil:
		g.final = err
	case errors.Is(err, errStreamSilent):
		g.log.Warn("upstream stream went silent", append(g.call.logAttrs(), "error", err)...)
		g.call.fail(g.call.served, FailTimeout, 0)
		g.out = append(g.out, streamSilent...)
		g.final = io.EOF
	default:
		g.log.Warn("upstream stream failed", append(g.call.logAttrs(), "error", err)...)
		g.call.fail(g.call.served, FailStream, 0)
		// Drop the unfinished event; end with the error event.
		g.out = append(g.out, streamFailed...)
		g.final = io.EOF
	}
	g.held = nil
}

func (g *guardBody) Close() error { return g.rc.Close() }

// lastEventEnd returns the offset just past the last blank line (the end of
// an event: "\n\n", "\r\r" or "\n\r\n", the end of "\r\n\r\n") that starts
// in b[from:], or 0. It looks back from the end, so an event that ends its
// read costs a comparison or two.
func lastEventEnd(b []byte, from int) int {
	for i := len(b) - 1; i > from; i-- {
		c, prev := b[i], b[i-1]
		switch {
		case c == '\n' && prev == '\n', c == '\r' && prev == '\r':
			return i + 1
		case c == '\n' && prev == '\r' && i-2 >= from && b[i-2] == '\n':
			return i + 1
		}
	}
	return 0
}
