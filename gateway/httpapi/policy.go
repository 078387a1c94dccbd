package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

// Policy is what the policy admin endpoints need of the policy engine.
// The values they return are written as JSON.
type Policy interface {
	// PolicyStatus describes the serving bundles and the last failure
	// (GET /admin/policy/status).
	PolicyStatus() any
	// Explain evaluates the policy for in and reports why it decided as it
	// did (POST /admin/policy/explain).
	Explain(ctx context.Context, in *gateway.Input) (any, error)
}

// policyRoutes are the policy admin endpoints: route class admin, so the
// policy itself decides who may use them (DESIGN §7, §10.12).
func (s *Server) policyRoutes() []route {
	if s.cfg.Policy == nil {
		return nil
	}
	return []route{
		{http.MethodGet, "/admin/policy/status", gateway.RouteAdmin, "policy.status", false, s.adminOnly(s.policyStatus)},
		{http.MethodPost, "/admin/policy/explain", gateway.RouteAdmin, "policy.explain", false, s.adminOnly(s.policyExplain)},
	}
}

// adminOnly authenticates and asks the policy about the admin route before
// running h.
func (s *Server) adminOnly(h func(w http.ResponseWriter, r *http.Request, p *gateway.Principal) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		p, err := s.authenticate(r.Context(), r)
		if err != nil {
			return err
		}
		rc.principal = p
		if err := s.authorizeRequest(r, rc, p, nil, false, false); err != nil {
			return err
		}
		return h(w, r, p)
	}
}

func (s *Server) policyStatus(w http.ResponseWriter, _ *http.Request, _ *gateway.Principal) error {
	return writeJSON(w, http.StatusOK, s.cfg.Policy.PolicyStatus())
}

// explainRequest is the body of POST /admin/policy/explain. Exactly one of
// Key, KeyID and Principal names the caller.
type explainRequest struct {
	// Key is a virtual key in plaintext.
	Key string `json:"key"`
	// KeyID is a key's SHA-256 hash (the admin API's "token").
	KeyID string `json:"key_id"`
	// Principal is a caller written out, for what-if questions about keys
	// that do not exist.
	Principal *explainPrincipal `json:"principal"`
	// Route is the route class; default inference.
	Route string `json:"route"`
	// Operation defaults to chat.completions for inference, and to the
	// route class otherwise.
	Operation string `json:"operation"`
	// Model is the requested model; needed for inference and models.get.
	Model string `json:"model"`
	// Stream is input.request.stream.
	Stream bool `json:"stream"`
	// Now is input.now (RFC 3339); default the current time.
	Now string `json:"now"`
	// Body is the call's JSON body, for input.request.params (and
	// input.request.body, which the answer never shows).
	Body json.RawMessage `json:"body"`
	// ClientIP and Headers are input.request.client_ip and headers.
	ClientIP string            `json:"client_ip"`
	Headers  map[string]string `json:"headers"`
}

// explainPrincipal is a principal written out in an explain request, in the
// shape of the admin API's records.
type explainPrincipal struct {
	Key struct {
		Alias    string            `json:"key_alias"`
		Role     string            `json:"role"`
		Models   []string          `json:"models"`
		Aliases  map[string]string `json:"aliases"`
		TeamID   string            `json:"team_id"`
		UserID   string            `json:"user_id"`
		Metadata map[string]any    `json:"metadata"`
	} `json:"key"`
	Team *struct {
		ID           string            `json:"team_id"`
		Alias        string            `json:"team_alias"`
		Models       []string          `json:"models"`
		ModelAliases map[string]string `json:"model_aliases"`
		Blocked      bool              `json:"blocked"`
		Metadata     map[string]any    `json:"metadata"`
	} `json:"team"`
	User *struct {
		ID       string         `json:"user_id"`
		Email    string         `json:"user_email"`
		Role     string         `json:"user_role"`
		Models   []string       `json:"models"`
		Metadata map[string]any `json:"metadata"`
	} `json:"user"`
}

// principal turns a written-out principal into a gateway.Principal.
func (ep *explainPrincipal) principal() *gateway.Principal {
	k := ep.Key
	p := &gateway.Principal{Key: &gateway.Key{
		ID: "explain", Alias: k.Alias, Role: k.Role, Models: k.Models, Aliases: k.Aliases,
		TeamID: k.TeamID, UserID: k.UserID, Metadata: k.Metadata,
	}}
	if t := ep.Team; t != nil {
		p.Team = &gateway.Team{ID: t.ID, Alias: t.Alias, Models: t.Models, ModelAliases: t.ModelAliases, Blocked: t.Blocked, Metadata: t.Metadata}
		if p.Key.TeamID == "" {
			p.Key.TeamID = t.ID
		}
	}
	if u := ep.User; u != nil {
		p.User = &gateway.User{ID: u.ID, Email: u.Email, Role: u.Role, Models: u.Models, Metadata: u.Metadata}
		if p.Key.UserID == "" {
			p.Key.UserID = u.ID
		}
	}
	return p
}

// policyExplain answers POST /admin/policy/explain: the input document the
// gateway would build for the request described, the decision, the chain
// and each layer's verdict.
func (s *Server) policyExplain(w http.ResponseWriter, r *http.Request, _ *gateway.Principal) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	var req explainRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &gateway.BadRequestError{Message: "Invalid explain request: " + err.Error()}
	}
	named := 0
	for _, set := range []bool{req.Key != "", req.KeyID != "", req.Principal != nil} {
		if set {
			named++
		}
	}
	if named != 1 {
		return &gateway.BadRequestError{Param: "key", Message: "Give exactly one of key, key_id and principal."}
	}
	if req.Route == "" {
		req.Route = gateway.RouteInference
	}
	switch req.Route {
	case gateway.RouteInference, gateway.RouteModelsGet, gateway.RouteModelsList, gateway.RouteAdmin, gateway.RouteHealth:
	default:
		return &gateway.BadRequestError{Param: "route", Message: fmt.Sprintf("Unknown route class %q.", req.Route)}
	}
	if req.Model == "" && (req.Route == gateway.RouteInference || req.Route == gateway.RouteModelsGet) {
		return &gateway.BadRequestError{Param: "model", Message: "A model is needed for route " + req.Route + "."}
	}
	now := s.cfg.Now()
	if req.Now != "" {
		if now, err = time.Parse(time.RFC3339Nano, req.Now); err != nil {
			return &gateway.BadRequestError{Param: "now", Message: "now must be an RFC 3339 time."}
		}
	}
	p, err := s.explainPrincipal(r.Context(), &req)
	if err != nil {
		return err
	}
	op := req.Operation
	if op == "" {
		op = req.Route
		if req.Route == gateway.RouteInference {
			op = "chat.completions"
		}
	}
	in := &gateway.Input{
		Request: gateway.RequestInfo{
			ID: requestCtx(r).id + "-explain", Route: req.Route, Operation: op,
			Method: explainMethod(req.Route), Path: explainPath(req.Route, req.Model), Stream: req.Stream,
			ClientIP: req.ClientIP,
		},
		Principal: p,
		Now:       now,
	}
	if len(req.Body) > 0 && string(req.Body) != "null" {
		if _, err := openai.ScanJSON(req.Body); err != nil {
			return &gateway.BadRequestError{Param: "body", Message: "body must be the call's JSON object."}
		}
		in.Request.Body, in.Request.ContentType = req.Body, "application/json"
	}
	if len(req.Headers) > 0 {
		in.Request.Header = make(map[string][]string, len(req.Headers))
		for k, v := range req.Headers {
			in.Request.Header[k] = []string{v}
		}
	}
	if req.Model != "" {
		res := s.cfg.Resolver.Resolve(req.Model, p.KeyAliases(), p.TeamAliases())
		in.Model = &res
	}
	if req.Route == gateway.RouteModelsList {
		in.Candidates = s.cfg.Resolver.Candidates(p.KeyAliases(), p.TeamAliases())
	}
	x, err := s.cfg.Policy.Explain(r.Context(), in)
	if err != nil {
		return fmt.Errorf("%w: %w", errPolicy, err)
	}
	return writeJSON(w, http.StatusOK, x)
}

// explainPrincipal finds the principal an explain request names.
func (s *Server) explainPrincipal(ctx context.Context, req *explainRequest) (*gateway.Principal, error) {
	if req.Principal != nil {
		return req.Principal.principal(), nil
	}
	hash := req.KeyID
	if req.Key != "" {
		hash = gateway.HashKey(req.Key)
	}
	if hash == s.masterHash {
		return &gateway.Principal{Key: &gateway.Key{ID: hash, Alias: "master_key", Role: gateway.RoleAdmin}}, nil
	}
	p, err := s.cfg.Store.PrincipalByKeyHash(ctx, hash)
	switch {
	case errors.Is(err, gateway.ErrNotFound) || err == nil && (p == nil || p.Key == nil):
		id := req.KeyID
		if req.Key != "" {
			id = gateway.Redact(req.Key)
		}
		return nil, &gateway.NotFoundError{Kind: "key", ID: id}
	case err != nil:
		return nil, fmt.Errorf("explain: %w", err)
	}
	return p, nil
}

// explainMethod and explainPath fill in input.request as the route would.
func explainMethod(route string) string {
	if route == gateway.RouteInference {
		return http.MethodPost
	}
	return http.MethodGet
}

func explainPath(route, model string) string {
	switch route {
	case gateway.RouteInference:
		return "/v1/chat/completions"
	case gateway.RouteModelsGet:
		return "/v1/models/" + model
	case gateway.RouteModelsList:
		return "/v1/models"
	case gateway.RouteHealth:
		return "/health/liveliness"
	}
	return "/admin/policy/explain"
}
