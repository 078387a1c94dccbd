package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/mock"
	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/router"
)

// Providers with their own wire conventions.
const (
	providerAzure = "azure"
	providerMock  = "mock"
)

// mockBase is the base URL of in-process mock deployments without api_base.
const mockBase = "http://mock.internal/v1"

// Error codes of the envelopes the proxy builds.
const (
	codeUpstream        = "upstream_error"
	codeUpstreamTimeout = "upstream_timeout"
	codeRateLimit       = "rate_limit_exceeded"
)

// Read limits for upstream error bodies.
const (
	maxFailureBody = 64 << 10
	maxClientBody  = 1 << 20
	maxMessage     = 512
)

// errAttemptTimeout is the cancel cause of an attempt that ran out of time.
var errAttemptTimeout = errors.New("attempt timed out before response headers")

// failover is the ReverseProxy's transport: it tries the call's deployments
// in order and returns the first response that is not a retryable failure.
type failover struct{ p *Proxy }

func (f failover) RoundTrip(out *http.Request) (*http.Response, error) {
	c := callFrom(out.Context())
	if c == nil {
		return nil, errors.New("proxy: request did not come through Serve")
	}
	p := f.p
	ds := c.req.Deployments
	n := p.router.Attempts(len(c.order))
	var last *failure
	for i := range n {
		d := &ds[c.order[i%len(c.order)]]
		c.attempts = i + 1
		c.last = d
		c.attemptStart = time.Now()
		p.router.Start(d)
		res, fail, err := p.attempt(out, c, d)
		if err != nil {
			p.router.End(d, 0)
			return nil, err
		}
		if fail == nil {
			c.served = d // router.End follows in finish, after the body
			c.status = res.StatusCode
			return res, nil
		}
		p.router.End(d, 0)
		fail.deployment = d.ID
		c.status = fail.status
		c.fail(d, fail.kind(), fail.status)
		var retryAfter time.Duration
		if fail.status == http.StatusTooManyRequests {
			retryAfter = router.ParseRetryAfter(fail.header.Get("Retry-After-Ms"), fail.header.Get("Retry-After"), time.Now())
		}
		cooled := p.router.Fail(d, retryAfter)
		p.log.Warn("upstream attempt failed",
			"operation", c.req.Operation, "model_group", d.ModelName, "deployment", d.ID,
			"provider", d.Provider, "attempt", i+1, "of", n,
			"status", fail.status, "error", fail.err, "cooldown", cooled)
		last = fail
	}
	return nil, last.upstreamError(c.req.PriorAttempts + n)
}

// atCapacity is the answer when every deployment of a group is at its
// rpm or tpm cap: a 429 the client may retry.
func atCapacity() *UpstreamError {
	return &UpstreamError{
		Status: http.StatusTooManyRequests,
		Body: openai.MarshalEnvelope(openai.ErrorBody{
			Message: "The model is at capacity; retry shortly.", Type: openai.TypeRateLimit, Code: openai.String(codeRateLimit),
		}),
		Retryable: true,
		Header:    http.Header{"Retry-After": []string{"1"}},
		Err:       ErrAtCapacity,
	}
}

// failure is one failed attempt.
type failure struct {
	err        error // ErrUpstreamUnavailable, ErrUpstreamTimeout or ErrUpstreamStatus, wrapped
	status     int   // upstream status; 0 for transport failures
	body       []byte
	header     http.Header
	deployment string
}

// attempt sends the call to one deployment. It returns a response to pass
// on, or a failure to fail over from, or an error that ends the call (the
// client went away, or the body cannot be rewritten).
func (p *Proxy) attempt(out *http.Request, c *call, d *gateway.Deployment) (*http.Response, *failure, error) {
	timeout := p.firstByteTimeout(c, d)
	ctx, cancel := context.WithCancelCause(out.Context())
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(timeout, func() { cancel(errAttemptTimeout) })
	}
	areq, err := p.attemptRequest(ctx, out, c, d)
	if err != nil {
		if timer != nil {
			timer.Stop()
		}
		cancel(nil)
		var bad *gateway.BadRequestError
		if errors.As(err, &bad) {
			return nil, nil, err
		}
		return nil, &failure{err: fmt.Errorf("%w: %w", ErrUpstreamUnavailable, err)}, nil
	}
	rt := p.network
	if d.Provider == providerMock {
		rt = p.mock
	}
	res, err := rt.RoundTrip(areq)
	timedOut := timer != nil && !timer.Stop()
	if err != nil {
		cancel(nil)
		if cerr := c.clientCtx.Err(); cerr != nil {
			return nil, nil, fmt.Errorf("proxy: client went away: %w", cerr)
		}
		if timedOut || isTimeout(err) {
			return nil, &failure{err: fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)}, nil
		}
		return nil, &failure{err: fmt.Errorf("%w: %w", ErrUpstreamUnavailable, err)}, nil
	}
	if timedOut {
		// Headers and the timer arrived together; the body is cancelled.
		res.Body.Close()
		cancel(nil)
		return nil, &failure{err: fmt.Errorf("%w: %w", ErrUpstreamTimeout, errAttemptTimeout)}, nil
	}
	if s := res.StatusCode; s == http.StatusTooManyRequests || s >= 500 || (s >= 300 && s < 400) {
		body, _ := io.ReadAll(io.LimitReader(res.Body, maxFailureBody))
		res.Body.Close()
		cancel(nil)
		return nil, &failure{
			err:    fmt.Errorf("%w: %d", ErrUpstreamStatus, s),
			status: s, body: body, header: passHeaders(res.Header),
		}, nil
	}
	res.Body = &cancelOnClose{ReadCloser: res.Body, cancel: cancel}
	if silence := p.silence(c, d, timeout); silence > 0 {
		serr := errStreamSilent
		if !c.req.Stream {
			serr = errBodySilent
		}
		res.Body = newSilenceGuard(res.Body, silence, cancel, serr)
	}
	if !c.req.Stream && p.maxResponse > 0 {
		res.Body = &limitBody{ReadCloser: res.Body, left: p.maxResponse, cancel: cancel}
	}
	return res, nil, nil
}

// firstByteTimeout bounds the wait for d's response headers: for a
// stream its stream_timeout, else its timeout; else the router's
// defaults, else Config.AttemptTimeout.
func (p *Proxy) firstByteTimeout(c *call, d *gateway.Deployment) time.Duration {
	s := p.router.Settings()
	if c.req.Stream {
		if d.StreamTimeout > 0 {
			return d.StreamTimeout
		}
		if d.Timeout <= 0 && s.StreamTimeout > 0 {
			return s.StreamTimeout
		}
	}
	switch {
	case d.Timeout > 0:
		return d.Timeout
	case s.Timeout > 0:
		return s.Timeout
	}
	return p.attemptTimeout
}

// silence is the longest an answer from d may go without a byte: for a
// stream its stream_timeout, else the router's, 0 for no bound; for any
// other answer firstByte, the timeout that bounded the wait for its
// headers, so that a body that stalls after its headers is cut too.
func (p *Proxy) silence(c *call, d *gateway.Deployment, firstByte time.Duration) time.Duration {
	if !c.req.Stream {
		return firstByte
	}
	if d.StreamTimeout > 0 {
		return d.StreamTimeout
	}
	return p.router.Settings().StreamTimeout
}

// kind is the failure's kind for Outcome.
func (f *failure) kind() string {
	switch {
	case f.status != 0:
		return FailStatus
	case errors.Is(f.err, ErrUpstreamTimeout):
		return FailTimeout
	default:
		return FailUnavailable
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// attemptRequest builds the request to deployment d: its URL, its
// credential instead of the client's, and the body with d's upstream model.
func (p *Proxy) attemptRequest(ctx context.Context, out *http.Request, c *call, d *gateway.Deployment) (*http.Request, error) {
	u, err := upstreamURL(d, c.req.Path, out.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	body, err := c.body(d.UpstreamModel)
	if err != nil {
		return nil, err
	}
	areq := out.Clone(ctx)
	areq.URL, areq.Host = u, ""
	areq.ContentLength = int64(len(body))
	if len(body) == 0 {
		areq.Body, areq.GetBody = http.NoBody, nil
	} else {
		areq.Body = io.NopCloser(bytes.NewReader(body))
		areq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	h := areq.Header
	h.Del("Transfer-Encoding")
	if key := d.APIKey.Reveal(); key != "" {
		if d.Provider == providerAzure {
			h.Set("Api-Key", key)
		} else {
			h.Set("Authorization", "Bearer "+key)
		}
	}
	if d.Provider == providerMock && d.MockLatency > 0 && h.Get(mock.HeaderLatency) == "" {
		h.Set(mock.HeaderLatency, d.MockLatency.String())
	}
	setTraceContext(areq.Header, c.trace)
	return areq, nil
}

// upstreamURL is the deployment's base URL joined with path, carrying the
// client's query. Azure OpenAI addresses the deployment in the path and
// requires api-version.
func upstreamURL(d *gateway.Deployment, path, rawQuery string) (*url.URL, error) {
	base := strings.TrimRight(d.APIBase, "/")
	if base == "" {
		if d.Provider != providerMock {
			return nil, fmt.Errorf("deployment %s has no api_base", d.ID)
		}
		base = mockBase
	}
	full := base + path
	if d.Provider == providerAzure {
		full = base + "/openai/deployments/" + url.PathEscape(d.UpstreamModel) + path
	}
	u, err := url.Parse(full)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("deployment %s: invalid api_base", d.ID)
	}
	u.RawQuery = rawQuery
	if d.Provider == providerAzure && d.APIVersion != "" {
		q := u.Query()
		q.Set("api-version", d.APIVersion)
		u.RawQuery = q.Encode()
	}
	return u, nil
}

// body returns the request body with model as its "model", computed once per
// upstream model.
func (c *call) body(model string) ([]byte, error) {
	r := c.req
	if b, ok := c.bodies[model]; ok {
		return b, nil
	}
	var (
		b   []byte
		err error
	)
	switch {
	case r.Multipart:
		b, err = openai.ReplaceMultipartModel(r.Body, r.ContentType, model)
		if err != nil {
			return nil, err
		}
	default:
		f := r.Fields
		b = r.Body
		if c.stripUsage {
			b, f = c.usageBody, c.usageFields
		}
		if f.HasModel && f.Model != model {
			b = openai.ReplaceModel(b, f, model)
		}
	}
	if c.bodies == nil {
		c.bodies = make(map[string][]byte, 1)
	}
	c.bodies[model] = b
	return b, nil
}

// passHeaders returns the upstream error headers worth passing on.
func passHeaders(h http.Header) http.Header {
	var out http.Header
	for _, k := range []string{"Retry-After", "Retry-After-Ms"} {
		if v := h.Values(k); len(v) > 0 {
			if out == nil {
				out = make(http.Header, 2)
			}
			out[k] = v
		}
	}
	return out
}

// upstreamError turns the last failure into the client's answer.
func (f *failure) upstreamError(attempts int) *UpstreamError {
	e := &UpstreamError{Retryable: true, Header: f.header, Deployment: f.deployment, Attempts: attempts, Err: f.err}
	switch {
	case errors.Is(f.err, ErrUpstreamTimeout):
		e.Status = http.StatusGatewayTimeout
		e.Body = openai.MarshalEnvelope(openai.ErrorBody{
			Message: "The upstream provider did not answer in time.", Type: openai.TypeServer, Code: openai.String(codeUpstreamTimeout),
		})
	case f.status >= 300 && f.status < 400:
		e.Status, e.Retryable = http.StatusBadGateway, false
		e.Body = openai.MarshalEnvelope(openai.ErrorBody{
			Message: "The upstream provider answered with an unexpected redirect.", Type: openai.TypeServer, Code: openai.String(codeUpstream),
		})
	case f.status != 0:
		e.Status = f.status
		typ, code, msg := openai.TypeServer, codeUpstream, fmt.Sprintf("The upstream provider returned HTTP %d.", f.status)
		if f.status == http.StatusTooManyRequests {
			typ, code, msg = openai.TypeRateLimit, codeRateLimit, "The upstream provider is rate limiting requests."
		}
		e.Body = envelopeFrom(f.body, openai.ErrorBody{Message: msg, Type: typ, Code: openai.String(code)}, false)
	default:
		e.Status = http.StatusBadGateway
		e.Body = openai.MarshalEnvelope(openai.ErrorBody{
			Message: "The upstream provider could not be reached.", Type: openai.TypeServer, Code: openai.String(codeUpstream),
		})
	}
	return e
}

// clientError turns an upstream 4xx (other than 429) into the client's
// answer: same status, the upstream's envelope when it has one.
func clientError(res *http.Response, deployment string, attempts int) *UpstreamError {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxClientBody))
	s := res.StatusCode
	fallback := openai.ErrorBody{
		Message: fmt.Sprintf("The upstream provider returned HTTP %d.", s),
		Type:    openai.TypeInvalidRequest,
	}
	return &UpstreamError{
		Status:     s,
		Body:       envelopeFrom(body, fallback, true),
		Retryable:  s == http.StatusRequestTimeout || s == http.StatusConflict,
		Header:     passHeaders(res.Header),
		Deployment: deployment,
		Attempts:   attempts,
		Err:        fmt.Errorf("%w: %d", ErrUpstreamStatus, s),
	}
}

// envelopeFrom returns an upstream error body as an OpenAI envelope: as is
// when it already is one, normalised when it is one in a looser shape, and
// otherwise fallback, whose message is replaced by the upstream text when
// useText is set and the text is not empty.
func envelopeFrom(body []byte, fallback openai.ErrorBody, useText bool) []byte {
	if eb, strict, ok := openai.ParseEnvelope(body); ok {
		if strict {
			return body
		}
		if eb.Type == "" {
			eb.Type = fallback.Type
		}
		return openai.MarshalEnvelope(eb)
	}
	if useText {
		if text := truncate(strings.TrimSpace(string(body)), maxMessage); text != "" {
			fallback.Message = text
		}
	}
	return openai.MarshalEnvelope(fallback)
}

// truncate shortens s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// logAttrs are the attributes that identify a call in logs.
func (c *call) logAttrs() []any {
	attrs := []any{"operation", c.req.Operation, "stream", c.req.Stream}
	if d := c.served; d != nil {
		attrs = append(attrs, "model_group", d.ModelName, "deployment", d.ID, "provider", d.Provider)
	}
	return attrs
}

// errStreamSilent ends a stream whose upstream sent nothing for longer
// than its stream_timeout.
var errStreamSilent = errors.New("upstream stream silent for longer than stream_timeout")

// errBodySilent cuts an answer that is not a stream whose body sent
// nothing for longer than its timeout.
var errBodySilent = errors.New("upstream answer silent for longer than its timeout")

// errResponseTooLarge cuts an answer that is not a stream past
// Config.MaxResponseBytes.
var errResponseTooLarge = errors.New("upstream answer larger than the response limit")

// silenceGuard cancels an attempt whose body sends nothing for longer
// than limit, and then fails every read with err. The timer is reset by
// each read that brings bytes.
type silenceGuard struct {
	io.ReadCloser
	limit time.Duration
	err   error
	timer *time.Timer
	fired atomic.Bool
}

func newSilenceGuard(rc io.ReadCloser, limit time.Duration, cancel context.CancelCauseFunc, err error) *silenceGuard {
	g := &silenceGuard{ReadCloser: rc, limit: limit, err: err}
	g.timer = time.AfterFunc(limit, func() {
		g.fired.Store(true)
		cancel(err)
	})
	return g
}

func (g *silenceGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if g.fired.Load() {
		return 0, g.err
	}
	if n > 0 {
		g.timer.Reset(g.limit)
	}
	return n, err
}

func (g *silenceGuard) Close() error {
	g.timer.Stop()
	return g.ReadCloser.Close()
}

// limitBody cancels an attempt whose body goes past left bytes, and then
// fails every read with errResponseTooLarge.
type limitBody struct {
	io.ReadCloser
	left   int64
	cancel context.CancelCauseFunc
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 {
			return 0, err
		}
		b.cancel(errResponseTooLarge)
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
