package config

import (
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/regate/gateway/gateway"
)

// limitFields are the budget and rate-limit fields of keys, teams and users
// (DESIGN §11), with LiteLLM's names.
var limitFields = []string{"max_budget", "budget_duration", "soft_budget", "rpm_limit", "tpm_limit", "max_parallel_requests"}

// modelLimitFields are the per-model-group limit fields of keys.
var modelLimitFields = []string{"model_rpm_limit", "model_tpm_limit", "model_max_budget"}

// modelName is a model group named by a key's model_* map, with where it
// was written, to be checked against the catalog once it is built.
type modelName struct {
	path string // the map's path
	name string
	line int
}

// limitField reads f into l when it is one of limitFields and reports
// whether it was. A null value leaves the limit unset.
func (p *parser) limitField(f field, fp string, l *gateway.Limits) bool {
	switch f.key {
	case "max_budget":
		l.MaxBudget = p.usd(f.value, fp)
	case "soft_budget":
		l.SoftBudget = p.usd(f.value, fp)
	case "budget_duration":
		l.BudgetDuration = p.period(f.value, fp)
	case "rpm_limit":
		l.RPMLimit = p.count(f.value, fp)
	case "tpm_limit":
		l.TPMLimit = p.count(f.value, fp)
	case "max_parallel_requests":
		l.MaxParallelRequests = p.count(f.value, fp)
	default:
		return false
	}
	return true
}

// modelLimitField reads f into m when it is one of modelLimitFields and
// reports whether it was; the model names it holds are added to names.
func (p *parser) modelLimitField(f field, fp string, m *gateway.ModelLimits, names *[]modelName) bool {
	switch f.key {
	case "model_rpm_limit":
		m.RPM = p.countMap(f.value, fp, names)
	case "model_tpm_limit":
		m.TPM = p.countMap(f.value, fp, names)
	case "model_max_budget":
		m.Budget = p.budgetMap(f.value, fp, names)
	default:
		return false
	}
	return true
}

// usd reads an amount in USD: a number ≥ 0. Null is unset.
func (p *parser) usd(n *yaml.Node, path string) *float64 {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil ||
		v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		p.errorf(n.Line, "%s: want a number of USD, at least 0, got %s", path, describeValue(n))
		return nil
	}
	return &v
}

// count reads a limit that counts calls or tokens: an integer ≥ 0 (0
// admits nothing, as in LiteLLM). Null is unset.
func (p *parser) count(n *yaml.Node, path string) *int64 {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || v < 0 {
		p.errorf(n.Line, "%s: want a whole number, at least 0, got %s", path, describeValue(n))
		return nil
	}
	return &v
}

// period reads a budget period: a positive duration like 30d. Null and ""
// are unset (spend never resets).
func (p *parser) period(n *yaml.Node, path string) string {
	s, ok := p.str(n, path)
	if !ok || s == "" {
		return ""
	}
	if d, err := ParseDuration(s); err != nil || d <= 0 {
		p.errorf(deref(n).Line, "%s: want a positive duration like 1h, 1d or 30d, got %q", path, s)
		return ""
	}
	return s
}

// countMap reads a {model-group: n} map of counts. Empty is nil.
func (p *parser) countMap(n *yaml.Node, path string, names *[]modelName) map[string]int64 {
	fields, ok := p.mapping(n, path)
	if !ok || len(fields) == 0 {
		return nil
	}
	m := make(map[string]int64, len(fields))
	for _, f := range fields {
		*names = append(*names, modelName{path: path, name: f.key, line: f.line})
		if v := p.count(f.value, path+"."+f.key); v != nil {
			m[f.key] = *v
		} else if isNull(f.value) {
			p.errorf(f.line, "%s.%s: want a whole number, at least 0, got null", path, f.key)
		}
	}
	return m
}

// budgetMap reads model_max_budget: {model-group: {budget_limit,
// time_period}}, or {model-group: budget_limit}.
func (p *parser) budgetMap(n *yaml.Node, path string, names *[]modelName) map[string]gateway.ModelBudget {
	fields, ok := p.mapping(n, path)
	if !ok || len(fields) == 0 {
		return nil
	}
	m := make(map[string]gateway.ModelBudget, len(fields))
	for _, f := range fields {
		*names = append(*names, modelName{path: path, name: f.key, line: f.line})
		fp := path + "." + f.key
		if v := deref(f.value); v.Kind == yaml.ScalarNode && (v.Tag == "!!int" || v.Tag == "!!float") {
			// LiteLLM's older form: a budget that never resets.
			if usd := p.usd(v, fp); usd != nil {
				m[f.key] = gateway.ModelBudget{BudgetLimit: *usd}
			}
			continue
		}
		g, ok := p.strict(f.value, fp, "budget_limit", "time_period")
		if !ok {
			continue
		}
		var b gateway.ModelBudget
		limit := false
		for _, h := range g {
			switch h.key {
			case "budget_limit":
				limit = true
				if v := p.usd(h.value, fp+".budget_limit"); v != nil {
					b.BudgetLimit = *v
				} else if isNull(h.value) {
					p.errorf(h.line, "%s.budget_limit: want a number of USD, at least 0, got null", fp)
				}
			case "time_period":
				b.TimePeriod = p.period(h.value, fp+".time_period")
			}
		}
		if !limit {
			p.errorf(f.line, "%s: missing budget_limit", fp)
		}
		m[f.key] = b
	}
	return m
}

// modelLimitProblems reports the names of a key's model_* maps that name
// no model: each must resolve, with the key's and its team's aliases, to a
// model group (a model group, an alias or a name a wildcard deployment
// serves; not an access group or a glob).
func (p *parser) modelLimitProblems(names []modelName, keyAliases, teamAliases map[string]string, unserved func(string) bool) {
	for _, n := range names {
		if n.name != "" && !p.cfg.Catalog.Resolve(n.name, keyAliases, teamAliases).Found && unserved(n.name) {
			p.warnf(n.line, "%s: %q names only deployments that are not served; its limits apply to nothing", n.path, n.name)
			continue
		}
		if n.name == "" || !p.cfg.Catalog.Resolve(n.name, keyAliases, teamAliases).Found {
			p.errorf(n.line, "%s: %q is not a model group, an alias or a name a wildcard deployment serves", n.path, n.name)
		}
	}
}
