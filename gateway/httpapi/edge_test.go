package httpapi

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/proxy"
)

// countHandler records how many attributes each record has.
type countHandler struct{ n *int }

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	*h.n = r.NumAttrs()
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestAccessLogAttrsFit: the fullest access line there is — a traced
// inference call by a key with a team and a user, through a fallback,
// with usage — has exactly accessLogAttrs attributes, the capacity
// accessLog's slice starts with, so that the slice never grows.
func TestAccessLogAttrsFit(t *testing.T) {
	var n int
	s := &Server{log: slog.New(countHandler{&n})}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r = r.WithContext(trace.ContextWithSpanContext(r.Context(), sc))
	rc := &reqCtx{
		id: "req_1", class: "inference", operation: "chat.completions", template: "/v1/chat/completions",
		principal: &gateway.Principal{Key: &gateway.Key{Alias: "k"}, Team: &gateway.Team{ID: "t"}, User: &gateway.User{ID: "u"}},
		requested: "fast", resolved: "gpt-4o", decision: "allow", fallbacks: []string{"gpt-4o-mini:ok"},
		upstream: proxy.Outcome{Attempts: 2, Status: 200, TTFB: time.Millisecond,
			Deployment: &gateway.Deployment{ID: "gpt-4o-0", Provider: "openai"}},
	}
	s.accessLog(r, rc, 200, time.Millisecond)
	if n != accessLogAttrs {
		t.Fatalf("the fullest access line has %d attributes; accessLogAttrs is %d", n, accessLogAttrs)
	}
}
