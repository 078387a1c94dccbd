package gateway

import (
	"errors"
	"fmt"
	"time"
)

// Limits are one layer's budget and rate limits (DESIGN §11), with
// LiteLLM's field names. Keys, teams and users each carry them; every layer
// that limits must have room for a call. A nil field means no limit.
type Limits struct {
	// MaxBudget is max_budget: the spend (USD) at which calls are refused.
	MaxBudget *float64
	// BudgetDuration is budget_duration as written ("30d", "1h"; see
	// ParseDuration): spend returns to 0 at the end of each period. Empty:
	// spend never resets.
	BudgetDuration string
	// SoftBudget is soft_budget: crossing it is logged and counted, never
	// refused.
	SoftBudget *float64
	// RPMLimit is rpm_limit: calls admitted in any 60 s window.
	RPMLimit *int64
	// TPMLimit is tpm_limit: prompt and completion tokens of the calls that
	// finished in the last 60 s.
	TPMLimit *int64
	// MaxParallelRequests is max_parallel_requests: calls in flight.
	MaxParallelRequests *int64
}

// IsZero reports whether l limits nothing.
func (l *Limits) IsZero() bool {
	return l.MaxBudget == nil && l.BudgetDuration == "" && l.SoftBudget == nil &&
		l.RPMLimit == nil && l.TPMLimit == nil && l.MaxParallelRequests == nil
}

// ModelBudget is one entry of a key's model_max_budget: the key's spend on
// one model group is refused past BudgetLimit, and returns to 0 at the end
// of each TimePeriod (as written, like Limits.BudgetDuration; empty: never).
type ModelBudget struct {
	BudgetLimit float64 `json:"budget_limit"`
	TimePeriod  string  `json:"time_period,omitempty"`
}

// ModelLimits are a key's per-model-group limits (DESIGN §11): LiteLLM's
// model_rpm_limit, model_tpm_limit and model_max_budget, each keyed by
// model group.
type ModelLimits struct {
	RPM    map[string]int64
	TPM    map[string]int64
	Budget map[string]ModelBudget
}

// IsZero reports whether m limits nothing.
func (m *ModelLimits) IsZero() bool {
	return len(m.RPM) == 0 && len(m.TPM) == 0 && len(m.Budget) == 0
}

// Layer names, as limit answers and metrics name them.
const (
	LayerKey  = "key"
	LayerTeam = "team"
	LayerUser = "user"
)

// Limit kinds, as limit answers and metrics name them.
const (
	LimitBudget   = "budget"
	LimitRPM      = "rpm"
	LimitTPM      = "tpm"
	LimitParallel = "parallel"
)

// SpendReader reports spend, for the admin API's info and list answers
// and the policy input: what a layer (a key hash, team id or user id) has
// spent in the budget period that began at period (see BudgetPeriod), as
// this replica knows it.
type SpendReader interface {
	Spend(layer, id string, period time.Time) float64
}

// Period is BudgetPeriod for a layer created at created with limits l: its
// budget_duration read with ParseDuration (a malformed one, which the
// config and the admin API refuse, never resets).
func (l *Limits) Period(created, now time.Time) (start, end time.Time) {
	var d time.Duration
	if l.BudgetDuration != "" {
		d, _ = ParseDuration(l.BudgetDuration)
	}
	return BudgetPeriod(created, d, now)
}

// BudgetPeriod returns the budget period that holds now for a layer
// created at anchor whose spend resets every d (DESIGN §11): periods follow
// each other from anchor, so every replica computes the same ones without
// asking another. With d ≤ 0 spend never resets: one period from the Unix
// epoch, whose end is zero.
func BudgetPeriod(anchor time.Time, d time.Duration, now time.Time) (start, end time.Time) {
	if d <= 0 || anchor.IsZero() {
		return time.Unix(0, 0).UTC(), time.Time{}
	}
	if now.Before(anchor) {
		return anchor, anchor.Add(d)
	}
	n := now.Sub(anchor) / d
	start = anchor.Add(n * d)
	return start, start.Add(d)
}

// Usage is what one call used, as the upstream reported it (DESIGN §11).
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	// CachedTokens are the prompt tokens read from the provider's cache
	// (prompt_tokens_details.cached_tokens), part of PromptTokens.
	CachedTokens int64
	// Reported is false when the answer carried no usage: the call counts 0
	// tokens.
	Reported bool
}

// Total is the call's prompt and completion tokens.
func (u Usage) Total() int64 { return u.PromptTokens + u.CompletionTokens }

// Cost is what a call with usage u costs at the deployment's prices
// (DESIGN §11): prompt tokens at the input price, completion tokens at the
// output price, and cached prompt tokens at the cache-read price when there
// is one. Unknown prices cost 0.
func (m *ModelInfo) Cost(u Usage) float64 {
	prompt, cached := u.PromptTokens, int64(0)
	if m.CacheReadCost != nil && u.CachedTokens > 0 && u.CachedTokens <= prompt {
		prompt, cached = prompt-u.CachedTokens, u.CachedTokens
	}
	var usd float64
	if m.InputCost != nil {
		usd += float64(prompt) * m.InputCost.For(u.PromptTokens)
	}
	if cached > 0 {
		usd += float64(cached) * m.CacheReadCost.For(u.PromptTokens)
	}
	if m.OutputCost != nil {
		usd += float64(u.CompletionTokens) * m.OutputCost.For(u.PromptTokens)
	}
	return usd
}

// ErrBudgetExceeded is wrapped by a LimitError of kind LimitBudget.
var ErrBudgetExceeded = errors.New("budget exceeded")

// LimitError refuses a call that a layer has no room for (DESIGN §11). It
// names the layer and the kind of limit, never the principal.
type LimitError struct {
	Layer string // LayerKey, LayerTeam or LayerUser
	Kind  string // LimitBudget, LimitRPM, LimitTPM or LimitParallel
	// Model is the model group of a key's per-model limit; empty otherwise.
	Model string
	// RetryAfter is when the call may succeed again (rate limits), at
	// least one second; zero for budgets.
	RetryAfter time.Duration
	// Rate are the rate-limit headers of the principal's layers.
	Rate RateHeaders
}

// RateHeaders are the values of OpenAI's x-ratelimit-* headers for a
// principal (DESIGN §11): for requests when it has an rpm limit, for tokens
// when it has a tpm limit, each from the layer with the least room left on
// this replica.
type RateHeaders struct {
	Requests, Tokens RateHeader
}

// RateHeader is one trio of x-ratelimit-* values.
type RateHeader struct {
	Set       bool
	Limit     int64
	Remaining int64
	Reset     time.Duration
}

func (e *LimitError) Error() string {
	what := e.Layer
	if e.Model != "" {
		what = fmt.Sprintf("%s (model %s)", e.Layer, e.Model)
	}
	if e.Kind == LimitBudget {
		return fmt.Sprintf("Budget has been exceeded: the %s budget is spent.", what)
	}
	return fmt.Sprintf("Rate limit exceeded: the %s %s limit is reached.", what, limitName(e.Kind))
}

// Unwrap makes a budget refusal match ErrBudgetExceeded.
func (e *LimitError) Unwrap() error {
	if e.Kind == LimitBudget {
		return ErrBudgetExceeded
	}
	return nil
}

func limitName(kind string) string {
	switch kind {
	case LimitRPM:
		return "requests per minute"
	case LimitTPM:
		return "tokens per minute"
	case LimitParallel:
		return "parallel requests"
	}
	return kind
}
