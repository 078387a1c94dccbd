package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/proxy"
)

// authorize asks the policy about this request. Anything but an allow is an
// error: a model deny becomes the one model_not_found error (identical for
// unknown and forbidden models), other denies keep the policy's status and
// code, and an evaluation failure is a deny reported as a server error.
func (s *Server) authorize(r *http.Request, rc *reqCtx, p *gateway.Principal, res *gateway.Resolution, stream bool) error {
	return s.authorizeRequest(r, rc, p, res, stream, false)
}

// authorizeRequest is authorize with request.self set.
func (s *Server) authorizeRequest(r *http.Request, rc *reqCtx, p *gateway.Principal, res *gateway.Resolution, stream, self bool) error {
	in := s.policyInput(r, rc, res, rc.body, stream, self)
	in.Principal = p
	result, err := s.decide(r, in)
	rc.decision = result
	return err
}

// policyInput is the policy's input for request r of rc's principal about
// model res (nil on routes that name none), with body as the call's body.
func (s *Server) policyInput(r *http.Request, rc *reqCtx, res *gateway.Resolution, body []byte, stream, self bool) *gateway.Input {
	return &gateway.Input{
		Request: gateway.RequestInfo{
			ID: rc.id, Route: rc.class, Operation: rc.operation,
			Method: r.Method, Path: r.URL.Path, Stream: stream, Self: self,
			Body: body, ContentType: rc.contentType,
			ClientIP: s.clientIP(r), Header: r.Header,
		},
		Principal: rc.principal,
		Model:     res,
		Now:       s.cfg.Now(),
	}
}

// decide asks the policy about in and returns the result for the access
// log ("allow", "deny" or "error") and, unless it allowed, the error to
// answer with.
func (s *Server) decide(r *http.Request, in *gateway.Input) (string, error) {
	d, err := s.cfg.Authorizer.Decide(r.Context(), in)
	if err != nil {
		return "error", fmt.Errorf("%w: %w", errPolicy, err)
	}
	if d.Allow {
		return "allow", nil
	}
	if res := in.Model; res != nil && (d.Code == gateway.CodeModelNotFound || d.Status == http.StatusNotFound) {
		return "deny", &gateway.ModelNotFoundError{Model: res.Requested}
	}
	return "deny", &gateway.DeniedError{Decision: d}
}

// inference authenticates, reads the body and its model, resolves the alias
// chain, asks the policy and proxies a permitted call.
func (s *Server) inference(path string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		p, err := s.authenticate(r.Context(), r)
		if err != nil {
			return err
		}
		rc.principal = p
		// Read the whole body first: the model must be known before the
		// upstream is chosen, and a fully read body lets a client
		// disconnect cancel r.Context().
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		ct := r.Header.Get("Content-Type")
		rc.body, rc.contentType = body, ct
		preq := proxy.Request{Operation: rc.operation, Path: path, Body: body, ContentType: ct}
		var model string
		if mt, _, _ := mime.ParseMediaType(ct); mt == "multipart/form-data" {
			preq.Multipart = true
			if model, err = openai.ScanMultipart(body, ct); err != nil {
				return err
			}
		} else {
			if preq.Fields, err = openai.ScanJSON(body); err != nil {
				return err
			}
			model, preq.Stream = preq.Fields.Model, preq.Fields.Stream
		}
		if model == "" {
			return &gateway.BadRequestError{Param: "model", Message: "You must provide a model parameter."}
		}
		rc.requested = model
		res := s.cfg.Resolver.Resolve(model, p.KeyAliases(), p.TeamAliases())
		if err := s.authorize(r, rc, p, &res, preq.Stream); err != nil {
			return err
		}
		if !res.Found || len(res.Deployments) == 0 {
			// The policy must never allow this; fail closed if it does.
			return &gateway.ModelNotFoundError{Model: model}
		}
		rc.resolved = res.Resolved
		// Limits come after the policy: a call it refuses never counts
		// and never learns a limit (DESIGN §11).
		var tk *limits.Ticket
		if s.cfg.Limiter != nil {
			if tk, err = s.cfg.Limiter.Admit(p, res.Resolved); err != nil {
				return err
			}
			setRateHeaders(w.Header(), tk.Headers)
			defer s.account(rc, tk)
		}
		preq.Deployments, preq.Group = res.Deployments, res.Resolved
		preq.Outcome = &rc.upstream
		err = s.cfg.Upstream.Serve(w, r, preq)
		if err != nil && s.cfg.Fallbacks != nil {
			err = s.fallback(w, r, rc, &preq, tk, err)
		}
		return err
	}
}

// account ends an admitted call: its usage, priced at the deployment that
// served it, goes to the limiter and the access log.
func (s *Server) account(rc *reqCtx, tk *limits.Ticket) {
	u := rc.upstream.Usage
	var cost float64
	d := rc.upstream.Deployment
	ok := d != nil && rc.upstream.Status >= 200 && rc.upstream.Status < 300
	if ok {
		cost = d.Info.Cost(u)
	}
	rc.usage, rc.cost = u, cost
	tk.Done(u, cost)
	if ok && s.cfg.UsageObserver != nil {
		team := ""
		if p := rc.principal; p != nil && p.Team != nil {
			team = p.Team.ID
		}
		s.cfg.UsageObserver.ObserveUsage(d, team, u, cost)
	}
}

// peekRate writes the principal's x-ratelimit-* headers on an answer the
// policy allowed, without counting a call (DESIGN §11).
func (s *Server) peekRate(w http.ResponseWriter, p *gateway.Principal) {
	if s.cfg.Limiter != nil {
		setRateHeaders(w.Header(), s.cfg.Limiter.Peek(p))
	}
}

// setRateHeaders writes OpenAI's x-ratelimit-* headers.
func setRateHeaders(h http.Header, rh gateway.RateHeaders) {
	set := func(kind string, v *gateway.RateHeader) {
		if !v.Set {
			return
		}
		h.Set("X-Ratelimit-Limit-"+kind, strconv.FormatInt(v.Limit, 10))
		h.Set("X-Ratelimit-Remaining-"+kind, strconv.FormatInt(v.Remaining, 10))
		h.Set("X-Ratelimit-Reset-"+kind, resetString(v.Reset))
	}
	set("Requests", &rh.Requests)
	set("Tokens", &rh.Tokens)
}

// resetString writes a reset time as OpenAI does: "1s", "6m0s", "20ms".
func resetString(d time.Duration) string {
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

// listModels answers GET /v1/models with the candidates the model rule
// permits, decided in one policy evaluation.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	p, err := s.authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	rc.principal = p
	if err := s.authorize(r, rc, p, nil, false); err != nil {
		return err
	}
	cands := s.cfg.Resolver.Candidates(p.KeyAliases(), p.TeamAliases())
	in := &gateway.Input{
		Request: gateway.RequestInfo{
			ID: rc.id, Route: rc.class, Operation: rc.operation, Method: r.Method, Path: r.URL.Path,
		},
		Principal:  p,
		Candidates: cands,
		Now:        s.cfg.Now(),
	}
	visible, err := s.cfg.Authorizer.VisibleModels(r.Context(), in)
	if err != nil {
		return fmt.Errorf("%w: %w", errPolicy, err)
	}
	s.peekRate(w, p)
	body, seen := s.lists.get(visible, cands)
	if body == nil {
		list := openai.ModelList{Object: "list", Data: make([]openai.Model, 0, len(visible))}
		for _, c := range cands.Items {
			if _, ok := visible[c.ID]; ok {
				list.Data = append(list.Data, s.modelObject(c.ID, c.OwnedBy, c.MaxInputTokens, c.MaxOutputTokens))
			}
		}
		if body, err = encodeJSON(list); err != nil {
			return err
		}
		if seen {
			s.lists.put(visible, cands, body)
		}
	}
	return writeBody(w, http.StatusOK, body)
}

// pathModel returns the {model} path variable, percent-decoded once, so
// "openrouter%2Fqwen" and "openrouter/qwen" name the same model.
func pathModel(r *http.Request) string {
	raw := mux.Vars(r)["model"]
	if m, err := url.PathUnescape(raw); err == nil {
		return m
	}
	return raw
}

// getModel answers GET /v1/models/{model}: 200 exactly when an inference
// call with that model would be authorized.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	p, err := s.authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	rc.principal = p
	model := pathModel(r)
	rc.requested = model
	res := s.cfg.Resolver.Resolve(model, p.KeyAliases(), p.TeamAliases())
	if err := s.authorize(r, rc, p, &res, false); err != nil {
		return err
	}
	if !res.Found {
		return &gateway.ModelNotFoundError{Model: model}
	}
	rc.resolved = res.Resolved
	s.peekRate(w, p)
	maxIn, maxOut := gateway.GroupLimits(res.Deployments)
	return writeJSON(w, http.StatusOK, s.modelObject(model, OwnedBy(res), maxIn, maxOut))
}

// modelObject is the model object of id, with the limits of the
// deployments serving it when known (DESIGN §7).
func (s *Server) modelObject(id, ownedBy string, maxInput, maxOutput int64) openai.Model {
	return openai.Model{
		ID: id, Object: "model", Created: s.created, OwnedBy: ownedBy,
		ContextLength: maxInput, MaxInputTokens: maxInput, MaxOutputTokens: maxOutput,
	}
}

// deleteModel answers DELETE /v1/models/{model}. Models come from the
// configuration, so nothing is deleted: non-admins get the policy's 403,
// admins a 404 for unknown models and a 403 otherwise.
func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	p, err := s.authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	rc.principal = p
	model := pathModel(r)
	rc.requested = model
	res := s.cfg.Resolver.Resolve(model, p.KeyAliases(), p.TeamAliases())
	if err := s.authorize(r, rc, p, &res, false); err != nil {
		return err
	}
	if !res.Found {
		return &gateway.ModelNotFoundError{Model: model}
	}
	return &gateway.DeniedError{Decision: gateway.Decision{
		Status:  http.StatusForbidden,
		Code:    gateway.CodePermissionDenied,
		Message: "Models are defined in the gateway configuration and cannot be deleted through the API.",
	}}
}

// OwnedBy is the owned_by of a model object, as the catalog reports it in
// the list: "gateway" for an alias, else the provider of the first
// deployment serving it.
func OwnedBy(res gateway.Resolution) string {
	if len(res.Chain) > 0 && res.Chain[0].Kind == gateway.LinkAlias {
		return "gateway"
	}
	if len(res.Deployments) > 0 && res.Deployments[0].Provider != "" {
		return res.Deployments[0].Provider
	}
	return "gateway"
}

// metrics serves the Prometheus scrape.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ *reqCtx) error {
	s.cfg.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) liveliness(w http.ResponseWriter, _ *http.Request, _ *reqCtx) error {
	return writeJSON(w, http.StatusOK, "I'm alive!")
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request, _ *reqCtx) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			s.log.Warn("not ready", "error", err)
			openai.WriteError(w, http.StatusServiceUnavailable, openai.ErrorBody{
				Message: "The gateway is not ready.", Type: typeServer, Code: str("not_ready"),
			})
			return nil
		}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := encodeJSON(v)
	if err != nil {
		return err
	}
	return writeBody(w, status, b)
}

// encodeJSON is v as a response body: JSON and a newline.
func encodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return append(b, '\n'), nil
}

// writeBody writes an encoded JSON response.
func writeBody(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}
