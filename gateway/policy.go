package gateway

import (
	"context"
	"time"
)

// Route classes (DESIGN §3).
const (
	RouteInference  = "inference"
	RouteModelsList = "models.list"
	RouteModelsGet  = "models.get"
	RouteAdmin      = "admin"
	RouteHealth     = "health"
)

// RequestInfo describes the HTTP request to the policy.
type RequestInfo struct {
	ID        string
	Route     string
	Operation string
	Method    string
	Path      string
	Stream    bool
	// Self is true when an admin-class request concerns the caller's own key
	// (a key reading its own /key/info).
	Self bool

	// What the call asks for (DESIGN §6, second part). The policy adapter
	// builds input.request.params, body, client_ip and headers from these
	// only when the loaded policy reads them.

	// Body is the body of an inference call (JSON, or multipart form data
	// as ContentType says); nil otherwise.
	Body        []byte
	ContentType string
	// ClientIP is the caller's address: the peer, or, behind trusted
	// proxies, the right-most X-Forwarded-For entry that is not one.
	ClientIP string
	// Header is the request's header; credentials are left out when the
	// adapter converts it.
	Header map[string][]string

	// FallbackFrom is, for the decision on a fallback target, the model
	// group fallen back from (DESIGN §12). It is for the decision log
	// only: the policy never sees it, so that a fallback is decided
	// exactly as a direct call.
	FallbackFrom string
}

// Input is everything the policy sees for one decision (DESIGN §6). Adapters
// turn it into the JSON-shaped input document.
type Input struct {
	Request   RequestInfo
	Principal *Principal
	// Model is nil on routes that name no model.
	Model *Resolution
	// Candidates is nil except for visible-model evaluations.
	Candidates *CandidateList
	Now        time.Time
}

// Decision is the policy's answer (data.gateway.authz.decision).
type Decision struct {
	Allow   bool     `json:"allow"`
	Status  int      `json:"status"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Reasons []string `json:"reasons"`
}

// Policy decision codes the default bundle uses.
const (
	CodeModelNotFound    = "model_not_found"
	CodePermissionDenied = "permission_denied"
	CodePolicyDenied     = "policy_denied"
)

// Authorizer evaluates the policy. Implementations fail closed: any error or
// malformed result is a deny.
type Authorizer interface {
	// Decide evaluates data.gateway.authz.decision.
	Decide(ctx context.Context, in *Input) (Decision, error)
	// VisibleModels evaluates data.gateway.authz.visible_models over
	// in.Candidates in one evaluation and returns the permitted ids.
	VisibleModels(ctx context.Context, in *Input) (map[string]struct{}, error)
}

// PrincipalStore looks up principals by key hash.
type PrincipalStore interface {
	// PrincipalByKeyHash returns the key with its team and user, or an error
	// wrapping ErrNotFound.
	PrincipalByKeyHash(ctx context.Context, keyHash string) (*Principal, error)
}
