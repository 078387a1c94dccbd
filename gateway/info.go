package gateway

// ModelInfo is what is known about a deployment's model: its limits and
// prices, from the deployment's model_info and litellm_params, else from the
// built-in catalog (DESIGN §7, §11). Zero limits and nil prices are unknown.
type ModelInfo struct {
	// MaxInputTokens is the input window, reported as context_length and
	// max_input_tokens.
	MaxInputTokens int64
	// MaxOutputTokens is the most tokens one answer may have. A config that
	// gives only LiteLLM's legacy max_tokens sets it from that.
	MaxOutputTokens int64
	// MaxTokens is LiteLLM's legacy max_tokens as configured, shown as
	// given.
	MaxTokens int64
	// InputCost, OutputCost, CacheReadCost and CacheWriteCost price prompt
	// tokens, completion tokens, cached prompt tokens read and prompt tokens
	// written to the cache.
	InputCost      *Price
	OutputCost     *Price
	CacheReadCost  *Price
	CacheWriteCost *Price
	// Catalog names the built-in catalog entry that supplied some of the
	// values ("openai/gpt-4o-mini": catalog provider, then model id); empty
	// when none did.
	Catalog string
	// Extra holds the other model_info fields as configured (mode,
	// base_model, supports_*, …), JSON values, for /model/info. The gateway
	// does not read them.
	Extra map[string]any
}

// Price is a price in USD per token.
type Price struct {
	// PerToken applies when no tier does.
	PerToken float64
	// Tiers, by ascending Above, replace PerToken for a whole call whose
	// prompt has more than Above tokens; the last such tier applies. As in
	// the catalog's tiered prices, a tier's rate applies to every token of
	// the call, not only to those past its threshold.
	Tiers []PriceTier
}

// PriceTier is one tier of a Price.
type PriceTier struct {
	Above    int64
	PerToken float64
}

// For returns the price per token of a call whose prompt has promptTokens
// tokens.
func (p *Price) For(promptTokens int64) float64 {
	rate := p.PerToken
	for _, t := range p.Tiers {
		if promptTokens > t.Above {
			rate = t.PerToken
		}
	}
	return rate
}

// Override returns m with every field o knows replacing m's: limits o sets
// (non-zero), prices o sets (non-nil), and o's Extra fields over m's.
// Catalog is kept from m unless o names one.
func (m ModelInfo) Override(o ModelInfo) ModelInfo {
	if o.MaxInputTokens != 0 {
		m.MaxInputTokens = o.MaxInputTokens
	}
	if o.MaxOutputTokens != 0 {
		m.MaxOutputTokens = o.MaxOutputTokens
	}
	if o.MaxTokens != 0 {
		m.MaxTokens = o.MaxTokens
	}
	dst, src := m.PriceFields(), o.PriceFields()
	for i := range dst {
		if *src[i].Price != nil {
			*dst[i].Price = *src[i].Price
		}
	}
	if o.Catalog != "" {
		m.Catalog = o.Catalog
	}
	if len(o.Extra) > 0 {
		extra := make(map[string]any, len(m.Extra)+len(o.Extra))
		for k, v := range m.Extra {
			extra[k] = v
		}
		for k, v := range o.Extra {
			extra[k] = v
		}
		m.Extra = extra
	}
	return m
}

// PriceField is one price of a ModelInfo with LiteLLM's name for it.
type PriceField struct {
	Name  string
	Price **Price
}

// PriceFields returns m's four prices with LiteLLM's names
// (input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
// cache_creation_input_token_cost), always in that order.
func (m *ModelInfo) PriceFields() [4]PriceField {
	return [4]PriceField{
		{"input_cost_per_token", &m.InputCost},
		{"output_cost_per_token", &m.OutputCost},
		{"cache_read_input_token_cost", &m.CacheReadCost},
		{"cache_creation_input_token_cost", &m.CacheWriteCost},
	}
}

// Priced reports whether the cost of a call can be worked out: an input or
// an output price is known.
func (m *ModelInfo) Priced() bool { return m.InputCost != nil || m.OutputCost != nil }

// GroupLimits returns the input window and output limit a model served by
// deployments can promise: for each, the smallest known value among the
// deployments (a client that stays within it fits whichever deployment
// answers), 0 when none knows it.
func GroupLimits(deployments []Deployment) (maxInput, maxOutput int64) {
	for i := range deployments {
		info := &deployments[i].Info
		maxInput = smallestKnown(maxInput, info.MaxInputTokens)
		maxOutput = smallestKnown(maxOutput, info.MaxOutputTokens)
	}
	return maxInput, maxOutput
}

func smallestKnown(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}
