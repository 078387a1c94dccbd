package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/proxy"
)

// reqCtx carries what the edge and handlers learn about one request, for the
// access log and the policy input.
type reqCtx struct {
	id        string
	class     string
	operation string
	principal *gateway.Principal
	requested string
	resolved  string
	decision  string
	template  string        // the matched route template
	upstream  proxy.Outcome // filled in by the proxy for inference calls
	// usage and cost of an admitted inference call, once it ended.
	usage gateway.Usage
	cost  float64
	// body and contentType of an inference call, for the policy.
	body        []byte
	contentType string
	span        trace.Span // the recorded server span; nil without one
	// fallbacks are the fallback targets tried, "name:result".
	fallbacks []string
}

type ctxKey struct{}

// requestCtx returns the request's reqCtx; the edge always installs one.
func requestCtx(r *http.Request) *reqCtx {
	if rc, ok := r.Context().Value(ctxKey{}).(*reqCtx); ok {
		return rc
	}
	return &reqCtx{}
}

// edge runs around every request, matched or not: request id, body limit,
// panic recovery and the access log.
func (s *Server) edge(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rc := &reqCtx{id: requestID(r.Header.Get("X-Request-Id"))}
	rw := &statusWriter{ResponseWriter: w}
	rw.Header().Set("X-Request-Id", rc.id)
	ctx, span := s.startServerSpan(r)
	if span != nil {
		rc.span = span
		defer span.End() // after the access log and metrics below
	}
	r = r.WithContext(context.WithValue(ctx, ctxKey{}, rc))

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				// The proxy aborts a response that broke after it started;
				// log it, then let net/http drop the connection.
				s.accessLog(r, rc, rw.status, time.Since(start))
				s.observe(r, rc, max(rw.status, http.StatusOK), time.Since(start))
				panic(v)
			}
			s.log.Error("panic serving request", "request_id", rc.id, "panic", v)
			if !rw.wrote {
				s.writeError(rw, r, errInternal)
			}
		}
		d := time.Since(start)
		s.accessLog(r, rc, rw.status, d)
		s.observe(r, rc, max(rw.status, http.StatusOK), d)
	}()

	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.writeError(rw, r, &gateway.BodyTooLargeError{Limit: s.cfg.MaxBodyBytes})
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.MaxBodyBytes)
	}
	s.router.ServeHTTP(rw, r)
}

// accessLogAttrs is the most attributes an access line has (a traced,
// fallen-back inference call by a key with a team and a user). accessLog's
// slice starts with that capacity, so that it never grows: it stays on the
// stack. At 20 it grew, by 1.75 KB, on every traced inference call
// (TestAccessLogAttrsFit).
const accessLogAttrs = 23

func (s *Server) accessLog(r *http.Request, rc *reqCtx, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	attrs := make([]slog.Attr, 0, accessLogAttrs)
	attrs = append(attrs,
		slog.String("request_id", rc.id),
		slog.String("method", r.Method),
		slog.String("route", rc.class),
		slog.String("operation", rc.operation),
		slog.Int("status", status),
		slog.Duration("duration", d),
	)
	if id := traceID(r.Context()); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	if rc.template != "" {
		attrs = append(attrs, slog.String("http_route", rc.template))
	}
	if p := rc.principal; p != nil && p.Key != nil {
		attrs = append(attrs, slog.String("key_alias", p.Key.Alias))
		if p.Team != nil {
			attrs = append(attrs, slog.String("team", p.Team.ID))
		}
		if p.User != nil {
			attrs = append(attrs, slog.String("user", p.User.ID))
		}
	}
	if rc.requested != "" {
		attrs = append(attrs, slog.String("model", rc.requested), slog.String("resolved_model", rc.resolved))
	}
	if rc.decision != "" {
		attrs = append(attrs, slog.String("decision", rc.decision))
	}
	if len(rc.fallbacks) > 0 {
		attrs = append(attrs, slog.Any("fallbacks", rc.fallbacks))
	}
	if u := &rc.upstream; u.Attempts > 0 {
		attrs = append(attrs, slog.Int("upstream_status", u.Status), slog.Int("upstream_attempts", u.Attempts))
		if u.Deployment != nil {
			attrs = append(attrs, slog.String("provider", u.Deployment.Provider), slog.String("deployment", u.Deployment.ID))
		}
		if u.TTFB > 0 {
			attrs = append(attrs, slog.Duration("upstream_ttfb", u.TTFB))
		}
		attrs = append(attrs,
			slog.Int64("prompt_tokens", rc.usage.PromptTokens),
			slog.Int64("completion_tokens", rc.usage.CompletionTokens),
			slog.Float64("cost_usd", rc.cost),
		)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// requestID keeps a client-supplied id when it is short and plain, and makes
// a new one otherwise, so ids are safe to log and echo.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = c == '-' || c == '_' || c == '.' || c == ':' ||
				('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		}
		if ok {
			return in
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// statusWriter records the status and whether anything was written, and
// passes Flush through so streams stay unbuffered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status = http.StatusOK
		w.wrote = true
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status = http.StatusOK
		w.wrote = true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
