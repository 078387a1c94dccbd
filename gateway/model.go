package gateway

import "time"

// Chain link kinds (DESIGN §6, §10.3).
const (
	LinkAlias         = "alias"
	LinkModelGroup    = "model_group"
	LinkProviderModel = "provider_model"
)

// Alias sources, in resolution order.
const (
	SourceKey    = "key"
	SourceTeam   = "team"
	SourceGlobal = "global"
)

// Deployment is one upstream that serves a model group: one model_list entry.
type Deployment struct {
	// ID identifies the deployment within the catalog: model_info.id when
	// set, else its model_list index ("0", "1", ...; "<index>-1", ... when
	// an explicit id took the index), so generated ids never equal explicit
	// ones.
	ID string
	// ModelName is the model group (model_name), possibly a wildcard pattern.
	ModelName string
	// ProviderModel is litellm_params.model as configured ("openai/gpt-4o",
	// "openai/*").
	ProviderModel string
	// Provider is the provider prefix ("openai", "mock", "azure", ...).
	Provider string
	// UpstreamModel is the model name sent upstream. For a deployment returned
	// by a wildcard resolution it is already substituted (DESIGN §10.5).
	UpstreamModel string
	// APIBase is the upstream base URL, without a trailing slash.
	APIBase string
	// APIKey is the provider credential; empty for none.
	APIKey Secret
	// APIVersion is the Azure api-version query parameter.
	APIVersion string
	// AccessGroups lists model_info.access_groups.
	AccessGroups []string
	// MockLatency delays the built-in mock provider's answers.
	MockLatency time.Duration
	// Timeout bounds one upstream attempt before the first byte; zero means the
	// proxy default.
	Timeout time.Duration
	// StreamTimeout bounds, for a streamed call, the wait for the first
	// byte and any silence between two events; zero means Timeout for the
	// first byte and no bound on silence.
	StreamTimeout time.Duration
	// Weight, RPM and TPM are litellm_params.weight, rpm and tpm: the
	// router's weights for simple-shuffle, and RPM and TPM also caps on
	// the calls and tokens per minute this deployment is sent (DESIGN §12).
	Weight   float64
	RPM, TPM int64
	// Info is the deployment's limits and prices. As configured, it holds
	// what model_info and litellm_params give; the catalog fills in the rest
	// from the built-in catalog for the deployment's provider and upstream
	// model (for a wildcard deployment, per name served).
	Info ModelInfo
}

// ChainLink is one name a request passed through on its way to a deployment.
type ChainLink struct {
	Name string `json:"name"`
	// Kind is LinkAlias, LinkModelGroup or LinkProviderModel.
	Kind string `json:"kind"`
	// Source is where an alias came from (SourceKey, SourceTeam, SourceGlobal);
	// empty for other kinds.
	Source string `json:"source,omitempty"`
}

// Resolution is the outcome of resolving a requested model name for one
// principal (DESIGN §5, §10.2–§10.5).
type Resolution struct {
	Requested string
	// Found is false when the name resolves to no model group. Chain and Names
	// then hold what was resolved before the dead end.
	Found bool
	Chain []ChainLink
	// Names holds the distinct concrete names of the chain, in order: the
	// requested name, alias targets, the model group, and the provider model
	// of every deployment of the group. Wildcard patterns never appear here.
	Names []string
	// Resolved is the model group (a concrete name, also for wildcard matches).
	Resolved string
	// Wildcard is the pattern of the wildcard deployment serving Resolved, or
	// empty.
	Wildcard string
	// AccessGroups is the union of the access groups of the serving
	// deployments.
	AccessGroups []string
	// Deployments serve Resolved, in config order, with UpstreamModel
	// substituted.
	Deployments []Deployment
	// Hidden is true when the requested name is a hidden global alias.
	Hidden bool
}

// Candidate is one id the caller might see in GET /v1/models, with what the
// model rule needs to decide about it.
type Candidate struct {
	ID           string
	Names        []string
	AccessGroups []string
	// OwnedBy is reported as owned_by in the model list.
	OwnedBy string
	// MaxInputTokens and MaxOutputTokens are the limits of the deployments
	// serving the id, as Limits works them out; 0 when unknown.
	MaxInputTokens  int64
	MaxOutputTokens int64
}

// CandidateList is an immutable list of candidates. The catalog shares one
// list between callers whose key and team have no aliases of their own, so
// adapters may cache derived forms keyed by the list's identity.
type CandidateList struct {
	Items []Candidate
	// Base, when not nil, is the list this one was made from (the shared
	// list, for a caller with aliases), and Redone holds, sorted and
	// without repeats, the ids whose presence or item may differ between
	// the two: every id outside Redone that is in either list is in both,
	// with equal items. Adapters may derive their forms of this list from
	// Base's instead of converting every item again.
	Base   *CandidateList
	Redone []string
}

// Resolver resolves model names against the configured catalog.
type Resolver interface {
	// Resolve follows the alias chain of name for a caller with the given key
	// and team alias tables (either may be nil).
	Resolve(name string, keyAliases, teamAliases map[string]string) Resolution
	// Candidates returns the ids a caller with these alias tables may be
	// shown, each resolved. Hidden aliases and wildcard patterns are left out.
	Candidates(keyAliases, teamAliases map[string]string) *CandidateList
}
