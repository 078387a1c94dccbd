// Package proxy forwards authorized inference calls to upstream providers.
//
// It is one httputil.ReverseProxy (with Rewrite) whose transport tries the
// deployments of a model group in the order the router gives (DESIGN §12:
// weighted shuffle, least busy or fastest; capped deployments left out,
// cooling ones last): a connection error, a timeout before the response
// headers, a 429 or a 5xx moves on to the next deployment, up to
// num_retries attempts after the first. Nothing reaches the client until
// an attempt answers, so failover never shows. Each attempt gets its own
// URL, provider credential and a body whose "model" is the deployment's
// upstream model; client credentials never leave the gateway.
//
// Streams are copied unbuffered. A stream that breaks after its headers were
// sent, or stays silent longer than its stream_timeout, ends with one
// OpenAI error event and no [DONE]. An answer that is not a stream is cut
// (the client sees an incomplete response) when its body stays silent
// longer than the deployment's timeout or grows past
// Config.MaxResponseBytes; either way the upstream call is cancelled.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/mock"
	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/router"
)

// DefaultAttemptTimeout bounds the wait for an upstream's response headers
// when neither the deployment nor Config sets a timeout. Reasoning models can
// think for minutes before the first byte of a non-streamed answer.
const DefaultAttemptTimeout = 10 * time.Minute

// DefaultMaxResponseBytes bounds the bytes read of an upstream answer that
// is not a stream when Config.MaxResponseBytes is zero.
const DefaultMaxResponseBytes = 64 << 20

// Config configures a Proxy. The zero value is ready to use.
type Config struct {
	// Transport carries requests to network upstreams. Nil means
	// NewTransport(). No overall timeout is applied: streams are long.
	Transport http.RoundTripper
	// Logger receives failed attempts and broken streams (never keys or
	// bodies). Nil discards.
	Logger *slog.Logger
	// AttemptTimeout bounds the time from sending an attempt to receiving its
	// response headers, for deployments whose Timeout is zero. Zero means
	// DefaultAttemptTimeout; negative means no limit.
	AttemptTimeout time.Duration
	// Mock serves the built-in "mock" provider in-process. Nil means
	// mock.New(mock.Config{}).
	Mock http.Handler
	// TracerProvider makes one client span per call (attempts, time to
	// first byte) and propagates W3C trace context upstream. Nil means no
	// tracing and no cost.
	TracerProvider trace.TracerProvider
	// Observer is called once per call, after it ended, with its outcome
	// (metrics). Nil means none.
	Observer func(*Outcome)
	// Router orders deployments and keeps their state. Nil means
	// router.New with LiteLLM's defaults.
	Router *router.Router
	// MaxResponseBytes bounds the bytes read of an upstream answer to a
	// call that is not a stream: past it the answer is cut (the client
	// sees an incomplete response) and the upstream call is cancelled.
	// Streams are not bounded by it. Zero means DefaultMaxResponseBytes;
	// negative means no limit.
	MaxResponseBytes int64
}

// NewTransport returns the default upstream transport: a clone of
// http.DefaultTransport (so HTTPS_PROXY and friends still apply) tuned for
// many concurrent calls to few hosts.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ForceAttemptHTTP2 = true
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.ResponseHeaderTimeout = 0 // per attempt, see Config.AttemptTimeout
	return t
}

// Proxy forwards inference calls upstream. It is safe for concurrent use.
type Proxy struct {
	rp             *httputil.ReverseProxy
	network        http.RoundTripper
	mock           http.RoundTripper
	log            *slog.Logger
	attemptTimeout time.Duration
	maxResponse    int64 // 0: no limit
	tracer         trace.Tracer
	observe        func(*Outcome)
	router         *router.Router
	// spanNames holds the upstream span name of each operation.
	spanNames sync.Map // string → string
}

// New returns a Proxy. It does no I/O.
func New(cfg Config) (*Proxy, error) {
	p := &Proxy{network: cfg.Transport, log: cfg.Logger, attemptTimeout: cfg.AttemptTimeout, observe: cfg.Observer, router: cfg.Router, maxResponse: cfg.MaxResponseBytes}
	if p.router == nil {
		p.router = router.New(router.Config{})
	}
	if cfg.TracerProvider != nil {
		p.tracer = cfg.TracerProvider.Tracer(tracerName)
	}
	if p.network == nil {
		p.network = NewTransport()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case p.attemptTimeout == 0:
		p.attemptTimeout = DefaultAttemptTimeout
	case p.attemptTimeout < 0:
		p.attemptTimeout = 0
	}
	switch {
	case p.maxResponse == 0:
		p.maxResponse = DefaultMaxResponseBytes
	case p.maxResponse < 0:
		p.maxResponse = 0
	}
	h := cfg.Mock
	if h == nil {
		h = mock.New(mock.Config{})
	}
	p.mock = HandlerTransport(h)
	p.rp = &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: failover{p},
		// ReverseProxy flushes every write of text/event-stream responses
		// and of responses without a Content-Length by itself; a response
		// with a declared length is not a stream and needs no flushing.
		FlushInterval:  0,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   errorHandler,
		// The proxy logs failures itself, with the deployment; the
		// ReverseProxy's own messages are kept for debugging.
		ErrorLog:   slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BufferPool: bufferPool{},
	}
	return p, nil
}

// Request is one inference call to forward.
type Request struct {
	// Operation names the call for logs ("chat.completions").
	Operation string
	// Path is the upstream path relative to a deployment's base URL, such as
	// "/chat/completions".
	Path string
	// Body is the complete client body.
	Body []byte
	// Fields are Body's fields from openai.ScanJSON; unused for multipart.
	Fields openai.RequestFields
	// Multipart is true for multipart/form-data bodies.
	Multipart bool
	// ContentType is the client's Content-Type, needed for multipart.
	ContentType string
	// Stream is the body's stream flag.
	Stream bool
	// Deployments serve the resolved model group in config order, with
	// UpstreamModel set.
	Deployments []gateway.Deployment
	// Group is the model group the deployments serve, reported in the
	// X-Gateway-Model-Group header.
	Group string
	// PriorAttempts counts the attempts made for the same client call
	// before this one (at groups fallen back from), for the
	// X-Gateway-Attempts header.
	PriorAttempts int
	// Outcome, when not nil, is filled in before Serve returns.
	Outcome *Outcome
}

// call is the state of one Serve call, carried in the request context from
// Serve through the ReverseProxy to the transport and back.
type call struct {
	req *Request
	// order holds the indexes of req.Deployments in the order to try
	// them; buf backs it for the usual small groups.
	order     []int
	buf       [8]int
	clientCtx context.Context
	// bodies caches the rewritten body per upstream model.
	bodies map[string][]byte
	// served is the deployment whose response is being copied.
	served *gateway.Deployment
	// attempts counts the attempts made; attemptStart is when the
	// current one started.
	attempts     int
	attemptStart time.Time
	// err is the error Serve returns; set when nothing was written.
	err error

	// For Outcome: start of Serve, first body byte, last deployment
	// tried, its status, failures; span is nil without tracing.
	start, first time.Time
	last         *gateway.Deployment
	status       int
	failures     []Attempt
	span         trace.Span
	method       string
	// trace is the upstream call's span context, sent upstream; invalid
	// without tracing.
	trace trace.SpanContext

	// track is set for the operations whose answers report usage; usage
	// is what the answer reported.
	track bool
	usage gateway.Usage
	// stripUsage is set for a chat or completions stream whose client did
	// not ask for usage: the upstream is asked for it (usageBody, with
	// usageFields), and the usage-only chunk is not passed on.
	stripUsage  bool
	usageBody   []byte
	usageFields openai.RequestFields
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// Serve forwards the call and copies the answer to w.
//
// It returns an error only when nothing was written to w: a
// *gateway.BadRequestError for a body it cannot rewrite, an *UpstreamError
// for an upstream 4xx or when every deployment failed, or an error wrapping
// context.Canceled when the client went away first. The caller writes the
// error response.
//
// Once the response has started, failures are reported in-band: an SSE
// stream ends with one error event and no [DONE]; any other body is cut off
// with panic(http.ErrAbortHandler), as httputil.ReverseProxy does, so that
// the client sees an incomplete response rather than a short one.
//
// The caller must have read r.Body completely (its bytes are req.Body), so
// that a client disconnect cancels r.Context() and with it the upstream call.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, req Request) error {
	if len(req.Deployments) == 0 {
		return ErrNoDeployments
	}
	c := &call{req: &req, start: time.Now(), method: r.Method}
	c.order = p.router.Order(req.Deployments, c.buf[:0])
	if len(c.order) == 0 {
		if req.Outcome != nil {
			*req.Outcome = Outcome{Operation: req.Operation, Stream: req.Stream}
		}
		return atCapacity()
	}
	c.trackUsage()
	var ctx context.Context
	ctx, c.span = p.startSpan(r.Context(), &req)
	if p.tracer != nil {
		c.trace = trace.SpanContextFromContext(ctx)
	}
	c.clientCtx = ctx
	// Deferred: a body cut after the response started ends ServeHTTP with
	// panic(http.ErrAbortHandler), and the call must still be finished.
	defer p.finish(c, &req)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
	return c.err
}

// Operations whose answers report usage (DESIGN §11).
const (
	opChat        = "chat.completions"
	opCompletions = "completions"
	opEmbeddings  = "embeddings"
	opResponses   = "responses"
)

// trackUsage decides how the call's usage is read. A chat or completions
// stream whose client did not ask for usage is asked for it upstream, and
// the usage-only chunk is kept from the client, whose stream is otherwise
// what the upstream sent.
func (c *call) trackUsage() {
	r := c.req
	switch r.Operation {
	case opChat, opCompletions, opEmbeddings, opResponses:
		c.track = !r.Multipart
	}
	if !c.track || !r.Stream || r.Fields.IncludeUsage || (r.Operation != opChat && r.Operation != opCompletions) {
		return
	}
	b := openai.WithIncludeUsage(r.Body, r.Fields)
	f, err := openai.ScanJSON(b)
	if err != nil {
		return // the body scanned before; unreachable
	}
	c.stripUsage, c.usageBody, c.usageFields = true, b, f
}

// strippedRequestHeaders never reach an upstream: client credentials and
// organisation headers (a stray OpenAI-Organization makes OpenAI answer 401),
// cookies, and Expect (the body is already in hand).
var strippedRequestHeaders = []string{
	"Authorization", "Api-Key", "X-Api-Key", "Openai-Organization", "Openai-Project",
	"Cookie", "Proxy-Authorization", "Expect", "Content-Length",
}

// rewrite prepares the outbound request common to all attempts. The
// ReverseProxy has already removed hop-by-hop and X-Forwarded-* headers; the
// transport sets URL, credential and body per attempt.
//
// For a streamed call the client's Accept-Encoding is dropped too: the
// transport then negotiates gzip itself and decompresses, so the proxy sees
// plain events it can end with an error event, and flushing is not at the
// mercy of a compressor.
func rewrite(pr *httputil.ProxyRequest) {
	for _, k := range strippedRequestHeaders {
		pr.Out.Header.Del(k)
	}
	if c := callFrom(pr.In.Context()); c != nil && c.req.Stream {
		pr.Out.Header.Del("Accept-Encoding")
	}
	pr.Out.Host = ""
}

// errorHandler records the error for Serve instead of writing a response, so
// that the caller's one error mapper answers.
func errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if c := callFrom(r.Context()); c != nil {
		c.err = err
		return
	}
	// Unreachable through Serve; answer rather than leave the client hanging.
	openai.WriteError(w, http.StatusBadGateway, openai.ErrorBody{
		Message: "The upstream provider could not be reached.", Type: openai.TypeServer, Code: openai.String(codeUpstream),
	})
}

// Sentinel errors. An *UpstreamError wraps the first three and
// ErrAtCapacity.
var (
	// ErrUpstreamUnavailable: no connection could be made to the upstream.
	ErrUpstreamUnavailable = errors.New("upstream unavailable")
	// ErrUpstreamTimeout: the upstream did not send response headers in time.
	ErrUpstreamTimeout = errors.New("upstream timeout")
	// ErrUpstreamStatus: the upstream answered with an error status.
	ErrUpstreamStatus = errors.New("upstream error status")
	// ErrNoDeployments: Serve was called without deployments.
	ErrNoDeployments = errors.New("proxy: no deployments to call")
	// ErrAtCapacity: every deployment of the group is at its rpm or tpm
	// cap.
	ErrAtCapacity = errors.New("every deployment is at its rpm or tpm cap")
)

// UpstreamError is an upstream failure to send to the client as is. Body is
// an OpenAI error envelope.
type UpstreamError struct {
	// Status is the HTTP status to answer.
	Status int
	// Body is the JSON envelope to send.
	Body []byte
	// Retryable is true when a client may retry (timeouts, connection
	// failures, 408, 409, 429, 5xx).
	Retryable bool
	// Header holds upstream headers worth passing on (Retry-After,
	// Retry-After-Ms); nil when there are none.
	Header http.Header
	// Deployment is the ID of the deployment of the last attempt.
	Deployment string
	// Attempts is the number of deployments tried.
	Attempts int
	// Err is the cause: ErrUpstreamUnavailable, ErrUpstreamTimeout or
	// ErrUpstreamStatus, possibly wrapping a transport error.
	Err error
}

// Error describes the failure for logs; clients get Body.
func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream call failed after %d attempts (last deployment %s, answering %d): %v",
		e.Attempts, e.Deployment, e.Status, e.Err)
}

// Unwrap returns the cause.
func (e *UpstreamError) Unwrap() error { return e.Err }

// bufferPool recycles the ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
