package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/proxy"
	"github.com/regate/gateway/gateway/router"
)

// Results of a fallback target, for metrics and the access log.
const (
	fallbackServed  = "served"
	fallbackFailed  = "failed"
	fallbackDenied  = "denied"
	fallbackLimited = "limited"
)

// fallback tries the fallbacks of the call's model group after Serve
// failed with err, before anything was written (DESIGN §12). Each target
// is resolved and decided by the policy for the same principal exactly as
// a direct call to it would be: a target the caller may not call, or that
// names nothing, is skipped and never named to it; so is one its limits
// have no room for. The first target that answers serves the call, and
// its limits and spend are charged for it. When none does, the answer is
// the error of the group asked for, so that nothing about the fallbacks
// shows.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request, rc *reqCtx, preq *proxy.Request, tk *limits.Ticket, err error) error {
	kind := fallbackKind(err)
	if kind == "" || r.Context().Err() != nil {
		return err
	}
	group := preq.Group
	targets := s.cfg.Fallbacks.FallbacksFor(group, kind)
	if len(targets) == 0 {
		return err
	}
	p := rc.principal
	attempts := rc.upstream.Attempts + preq.PriorAttempts
	first := err
	for _, name := range targets {
		if name == group || r.Context().Err() != nil {
			continue
		}
		res := s.cfg.Resolver.Resolve(name, p.KeyAliases(), p.TeamAliases())
		if res.Found && res.Resolved == group {
			continue // an alias of the group that just failed
		}
		body, berr := fallbackBody(preq, name)
		if berr != nil {
			return first
		}
		if !s.fallbackAllowed(r, rc, preq, &res, body, group) {
			s.noteFallback(rc, group, kind, name, fallbackDenied)
			continue
		}
		if lerr := tk.Retarget(p, res.Resolved); lerr != nil {
			s.noteFallback(rc, group, kind, name, fallbackLimited)
			continue
		}
		next := *preq
		next.Deployments, next.Group, next.PriorAttempts, next.Body = res.Deployments, res.Resolved, attempts, body
		if !next.Multipart {
			if next.Fields, err = openai.ScanJSON(body); err != nil {
				return first
			}
		}
		err = s.cfg.Upstream.Serve(w, r, next)
		attempts = rc.upstream.Attempts + next.PriorAttempts
		if err == nil {
			rc.resolved = res.Resolved
			s.noteFallback(rc, group, kind, name, fallbackServed)
			return nil
		}
		s.noteFallback(rc, group, kind, name, fallbackFailed)
		if errors.Is(err, context.Canceled) || fallbackKind(err) == "" {
			// The client left, or the target refused the call itself
			// (a 4xx of a model the caller may call): that is its answer.
			return err
		}
	}
	return first
}

// fallbackAllowed decides a fallback target as a direct call to it: the
// same request, body naming the target. The decision log records it with
// the group fallen back from.
func (s *Server) fallbackAllowed(r *http.Request, rc *reqCtx, preq *proxy.Request, res *gateway.Resolution, body []byte, from string) bool {
	// Asked also for a name that resolves to nothing, as a direct call
	// would be: the policy's answer is what refuses it.
	in := s.policyInput(r, rc, res, body, preq.Stream, false)
	in.Request.FallbackFrom = from
	result, _ := s.decide(r, in)
	return result == "allow" && res.Found && len(res.Deployments) > 0
}

// fallbackBody is the client's body naming model instead.
func fallbackBody(preq *proxy.Request, model string) ([]byte, error) {
	if preq.Multipart {
		return openai.ReplaceMultipartModel(preq.Body, preq.ContentType, model)
	}
	if !preq.Fields.HasModel || preq.Fields.Model == model {
		return preq.Body, nil
	}
	return openai.ReplaceModel(preq.Body, preq.Fields, model), nil
}

// noteFallback counts a fallback target and keeps it for the access log.
func (s *Server) noteFallback(rc *reqCtx, group, kind, target, result string) {
	rc.fallbacks = append(rc.fallbacks, target+":"+result)
	if s.cfg.FallbackObserver != nil {
		s.cfg.FallbackObserver.ObserveFallback(group, kind, result)
	}
}

// fallbackKind says which fallbacks an error of Serve calls for: the
// general ones once the group is exhausted (every attempt failed with a
// connection error, a timeout, a 429 or a 5xx, or every deployment is at
// its cap), the context-window or content-policy ones when the upstream
// refused the call for that; "" for any other error.
func fallbackKind(err error) string {
	var ue *proxy.UpstreamError
	if !errors.As(err, &ue) {
		return ""
	}
	switch {
	case errors.Is(ue, proxy.ErrUpstreamUnavailable), errors.Is(ue, proxy.ErrUpstreamTimeout),
		errors.Is(ue, proxy.ErrAtCapacity), ue.Status == http.StatusTooManyRequests, ue.Status >= 500:
		return router.FallbackGeneral
	case ue.Status < 400:
		return ""
	}
	eb, _, ok := openai.ParseEnvelope(ue.Body)
	if !ok {
		return ""
	}
	code := ""
	if eb.Code != nil {
		code = *eb.Code
	}
	msg := strings.ToLower(eb.Message)
	switch {
	case code == "context_length_exceeded", strings.Contains(msg, "maximum context length"),
		strings.Contains(msg, "context length exceeded"), strings.Contains(msg, "context_length_exceeded"):
		return router.FallbackContextWindow
	case code == "content_policy_violation", code == "content_filter":
		return router.FallbackContentPolicy
	}
	return ""
}
