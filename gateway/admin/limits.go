package admin

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/regate/gateway/gateway"
)

// limitsRequest holds the budget and rate-limit fields of key, team and
// user writes (DESIGN §11) as sent. A field left out leaves its limit
// unchanged; null clears it (LiteLLM's updates apply the nulls they are
// sent); a value sets it.
type limitsRequest struct {
	MaxBudget           json.RawMessage `json:"max_budget"`
	BudgetDuration      json.RawMessage `json:"budget_duration"`
	SoftBudget          json.RawMessage `json:"soft_budget"`
	RPMLimit            json.RawMessage `json:"rpm_limit"`
	TPMLimit            json.RawMessage `json:"tpm_limit"`
	MaxParallelRequests json.RawMessage `json:"max_parallel_requests"`
}

// modelLimitsRequest holds a key's per-model-group limits as sent, with
// limitsRequest's rules. A map replaces the key's map whole.
type modelLimitsRequest struct {
	ModelRPMLimit  json.RawMessage `json:"model_rpm_limit"`
	ModelTPMLimit  json.RawMessage `json:"model_tpm_limit"`
	ModelMaxBudget json.RawMessage `json:"model_max_budget"`
}

// apply writes the fields sent onto l. A bad value is a 400 naming its
// field, and leaves l unchanged.
func (req *limitsRequest) apply(l *gateway.Limits) error {
	n := *l
	steps := []func() error{
		func() error { return setField(req.MaxBudget, "max_budget", &n.MaxBudget, usd) },
		func() error { return setField(req.SoftBudget, "soft_budget", &n.SoftBudget, usd) },
		func() error { return setPeriod(req.BudgetDuration, "budget_duration", &n.BudgetDuration) },
		func() error { return setField(req.RPMLimit, "rpm_limit", &n.RPMLimit, count) },
		func() error { return setField(req.TPMLimit, "tpm_limit", &n.TPMLimit, count) },
		func() error {
			return setField(req.MaxParallelRequests, "max_parallel_requests", &n.MaxParallelRequests, count)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	*l = n
	return nil
}

// apply writes the maps sent onto m.
func (req *modelLimitsRequest) apply(m *gateway.ModelLimits) error {
	n := *m
	if err := setMap(req.ModelRPMLimit, "model_rpm_limit", &n.RPM, count); err != nil {
		return err
	}
	if err := setMap(req.ModelTPMLimit, "model_tpm_limit", &n.TPM, count); err != nil {
		return err
	}
	if err := setMap(req.ModelMaxBudget, "model_max_budget", &n.Budget, modelBudget); err != nil {
		return err
	}
	*m = n
	return nil
}

// absent reports whether raw was left out; isNull whether it was null.
func absent(raw json.RawMessage) bool { return len(bytes.TrimSpace(raw)) == 0 }

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// setField sets *dst from raw with parse: left out keeps it, null clears it.
func setField[T any](raw json.RawMessage, name string, dst **T, parse func(json.RawMessage, string) (T, error)) error {
	switch {
	case absent(raw):
		return nil
	case isNull(raw):
		*dst = nil
		return nil
	}
	v, err := parse(raw, name)
	if err != nil {
		return err
	}
	*dst = &v
	return nil
}

// setMap sets *dst from a JSON object of values parse reads: left out
// keeps it, null or {} clears it.
func setMap[T any](raw json.RawMessage, name string, dst *map[string]T, parse func(json.RawMessage, string) (T, error)) error {
	switch {
	case absent(raw):
		return nil
	case isNull(raw):
		*dst = nil
		return nil
	}
	var obj map[string]json.RawMessage
	if raw = bytes.TrimSpace(raw); raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return badRequest(name, "Invalid %s: want an object of model groups, got %s.", name, jsonKind(raw))
	}
	m := make(map[string]T, len(obj))
	for model, v := range obj {
		if model == "" {
			return badRequest(name, "Invalid %s: empty model group name.", name)
		}
		x, err := parse(v, name+"."+model)
		if err != nil {
			return err
		}
		m[model] = x
	}
	if len(m) == 0 {
		m = nil
	}
	*dst = m
	return nil
}

// setPeriod sets a budget period: left out keeps it, null or "" clears it,
// else a positive duration such as 1h, 1d or 30d.
func setPeriod(raw json.RawMessage, name string, dst *string) error {
	switch {
	case absent(raw):
		return nil
	case isNull(raw):
		*dst = ""
		return nil
	}
	s, err := period(raw, name)
	if err != nil {
		return err
	}
	*dst = s
	return nil
}

// period reads a budget period; "" is none.
func period(raw json.RawMessage, name string) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest(paramOf(name), "Invalid %s: want a duration such as 1h, 1d or 30d, got %s.", name, jsonKind(bytes.TrimSpace(raw)))
	}
	if s == "" {
		return "", nil
	}
	if d, err := gateway.ParseDuration(s); err != nil || d <= 0 {
		return "", badRequest(paramOf(name), "Invalid %s %q: want a positive number and a unit (s, m, h, d), such as 1h, 1d or 30d.", name, s)
	}
	return s, nil
}

// usd reads an amount in USD: a number, at least 0.
func usd(raw json.RawMessage, name string) (float64, error) {
	v, ok := jsonNumber(raw)
	if !ok || v < 0 {
		return 0, badRequest(paramOf(name), "Invalid %s: want a number of USD, at least 0, or null, got %s.", name, describeRaw(raw))
	}
	return v, nil
}

// count reads a limit on calls or tokens: a whole number, at least 0. 0
// admits nothing, as in LiteLLM.
func count(raw json.RawMessage, name string) (int64, error) {
	v, ok := jsonNumber(raw)
	if !ok || v < 0 || v != math.Trunc(v) || v >= 1<<63 {
		return 0, badRequest(paramOf(name), "Invalid %s: want a whole number, at least 0, or null, got %s.", name, describeRaw(raw))
	}
	if n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err == nil {
		return n, nil // exact beyond 2^53
	}
	return int64(v), nil
}

// modelBudget reads one entry of model_max_budget: {"budget_limit": 5.0,
// "time_period": "1d"}. budget_limit may also be a string holding a number,
// as LiteLLM's documentation writes it; time_period may be left out (the
// budget never resets). A bare number is LiteLLM's older form of a budget
// that never resets.
func modelBudget(raw json.RawMessage, name string) (gateway.ModelBudget, error) {
	if _, ok := jsonNumber(raw); ok {
		v, err := usd(raw, name)
		return gateway.ModelBudget{BudgetLimit: v}, err
	}
	var obj struct {
		BudgetLimit json.RawMessage `json:"budget_limit"`
		TimePeriod  json.RawMessage `json:"time_period"`
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return gateway.ModelBudget{}, badRequest(paramOf(name), "Invalid %s: want an object such as {\"budget_limit\": 5.0, \"time_period\": \"1d\"} or a number, got %s.", name, describeRaw(raw))
	}
	var b gateway.ModelBudget
	limit := bytes.TrimSpace(obj.BudgetLimit)
	if len(limit) > 0 && limit[0] == '"' {
		var s string
		if json.Unmarshal(limit, &s) == nil {
			limit = json.RawMessage(strings.TrimSpace(s))
		}
	}
	if absent(limit) || isNull(limit) {
		return b, badRequest(paramOf(name), "Invalid %s: budget_limit is required.", name)
	}
	var err error
	if b.BudgetLimit, err = usd(limit, name+".budget_limit"); err != nil {
		return b, err
	}
	if !absent(obj.TimePeriod) && !isNull(obj.TimePeriod) {
		if b.TimePeriod, err = period(obj.TimePeriod, name+".time_period"); err != nil {
			return b, err
		}
	}
	return b, nil
}

// jsonNumber reads raw as a finite JSON number.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	var v float64
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &v) != nil {
		return 0, false
	}
	return v, !math.IsInf(v, 0) && !math.IsNaN(v)
}

// describeRaw names a JSON value for a message: a number as written, else
// its kind.
func describeRaw(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == 'n':
		return "null"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw)
	}
	return jsonKind(raw)
}

// paramOf is the top-level field a nested name belongs to
// (model_max_budget.gpt-4o.budget_limit → model_max_budget).
func paramOf(name string) string {
	p, _, _ := strings.Cut(name, ".")
	return p
}

// checkModelLimits checks that every model group a key's model_* maps
// name resolves, with the key's and its team's aliases, to a model group:
// a model group, an alias or a name a wildcard deployment serves (as in
// gateway_settings).
func (a *API) checkModelLimits(m gateway.ModelLimits, keyAliases, teamAliases map[string]string) error {
	fields := []struct {
		name  string
		names []string
	}{
		{"model_rpm_limit", sortedNames(m.RPM)},
		{"model_tpm_limit", sortedNames(m.TPM)},
		{"model_max_budget", sortedNames(m.Budget)},
	}
	for _, f := range fields {
		for _, model := range f.names {
			if !a.catalog.Resolve(model, keyAliases, teamAliases).Found && !a.unserved(model) {
				return badRequest(f.name, "Invalid %s: %q is not a model group, an alias or a name a wildcard deployment serves.", f.name, model)
			}
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Limits are the budget and rate limits of a key, team or user as the
// admin API shows them (DESIGN §11), null when unset, with the layer's
// read-only spend in its current budget period.
type Limits struct {
	MaxBudget           *float64 `json:"max_budget"`
	BudgetDuration      *string  `json:"budget_duration"`
	SoftBudget          *float64 `json:"soft_budget"`
	RPMLimit            *int64   `json:"rpm_limit"`
	TPMLimit            *int64   `json:"tpm_limit"`
	MaxParallelRequests *int64   `json:"max_parallel_requests"`
	// Spend is what the layer has spent (USD) since its budget period
	// began, as the Config's SpendReader reports it; 0 without one.
	Spend float64 `json:"spend"`
	// BudgetResetAt is when spend returns to 0 (RFC 3339), null when it
	// never does or nothing reports it.
	BudgetResetAt *string `json:"budget_reset_at"`
}

// ModelLimits are a key's limits per model group as the admin API shows
// them: {} when none.
type ModelLimits struct {
	ModelRPMLimit  map[string]int64               `json:"model_rpm_limit"`
	ModelTPMLimit  map[string]int64               `json:"model_tpm_limit"`
	ModelMaxBudget map[string]gateway.ModelBudget `json:"model_max_budget"`
}

// limitsView shows l with the spend of the layer's record id, created at
// created, in its current budget period.
func (a *API) limitsView(l gateway.Limits, layer, id string, created time.Time) Limits {
	v := Limits{
		MaxBudget: copyPtr(l.MaxBudget), BudgetDuration: optString(l.BudgetDuration),
		SoftBudget: copyPtr(l.SoftBudget), RPMLimit: copyPtr(l.RPMLimit), TPMLimit: copyPtr(l.TPMLimit),
		MaxParallelRequests: copyPtr(l.MaxParallelRequests),
	}
	start, end := l.Period(created, a.now())
	v.BudgetResetAt = optTime(end)
	if a.spendReader != nil && id != "" {
		v.Spend = a.spendReader.Spend(layer, id, start)
	}
	return v
}

func modelLimitsView(m gateway.ModelLimits) ModelLimits {
	return ModelLimits{
		ModelRPMLimit:  nonNilMap(m.RPM),
		ModelTPMLimit:  nonNilMap(m.TPM),
		ModelMaxBudget: nonNilMap(m.Budget),
	}
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
