package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regate/gateway/gateway"
)

// usageMetrics are the metrics of DESIGN §11: tokens, spend, calls refused
// by a limit, soft budgets crossed and answers without usage.
type usageMetrics struct {
	tokens     *prometheus.CounterVec
	spend      *prometheus.CounterVec
	limited    *prometheus.CounterVec
	soft       *prometheus.CounterVec
	unreported *prometheus.CounterVec
}

func newUsageMetrics() (usageMetrics, []prometheus.Collector) {
	u := usageMetrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tokens_total",
			Help: "Tokens the upstreams reported, by model group and type (prompt, completion).",
		}, []string{"model_group", "type"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_spend_usd_total",
			Help: "Spend in USD at the serving deployment's prices, by model group and team (empty: keys without a team).",
		}, []string{"model_group", "team"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_limited_total",
			Help: "Calls refused by a budget or rate limit, by layer (key, team, user) and kind (budget, rpm, tpm, parallel).",
		}, []string{"layer", "kind"}),
		soft: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_soft_budget_crossed_total",
			Help: "Soft budgets crossed (alerts; calls go on), by layer.",
		}, []string{"layer"}),
		unreported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_usage_unreported_total",
			Help: "Successful upstream answers that reported no usage (counted as 0 tokens), by model group.",
		}, []string{"model_group"}),
	}
	return u, []prometheus.Collector{u.tokens, u.spend, u.limited, u.soft, u.unreported}
}

// ObserveUsage counts one call's tokens and spend. d is the deployment that
// served it.
func (m *Metrics) ObserveUsage(d *gateway.Deployment, team string, u gateway.Usage, cost float64) {
	_, group := m.deploymentLabels(d)
	if !u.Reported {
		m.usage.unreported.WithLabelValues(group).Inc()
		return
	}
	m.usage.tokens.WithLabelValues(group, "prompt").Add(float64(u.PromptTokens))
	m.usage.tokens.WithLabelValues(group, "completion").Add(float64(u.CompletionTokens))
	if cost > 0 {
		m.usage.spend.WithLabelValues(group, team).Add(cost)
	}
}

// Limited counts a call refused by a limit (limits.Observer).
func (m *Metrics) Limited(layer, kind string) { m.usage.limited.WithLabelValues(layer, kind).Inc() }

// SoftBudget counts a soft budget crossed (limits.Observer).
func (m *Metrics) SoftBudget(layer string) { m.usage.soft.WithLabelValues(layer).Inc() }
