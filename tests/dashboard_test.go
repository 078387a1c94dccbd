package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/regate/gateway/gateway/mock"
)

// dashboardPath is the Grafana dashboard that the compose stack provisions;
// the Helm chart ships a copy of it.
const (
	dashboardPath      = "../deploy/grafana/dashboards/regate.json"
	chartDashboardPath = "../deploy/helm/regate/files/regate-dashboard.json"
)

// dashboardConfig prices the model groups and puts a key in a team with a
// limit of one call a minute and a tiny soft budget, so that the traffic
// below makes every series of the dashboard: spend by team, limited calls,
// soft budgets crossed; nousage is served by an upstream that reports no
// usage.
const dashboardConfig = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, input_cost_per_token: 0.001, output_cost_per_token: 0.002}
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, input_cost_per_token: 0.0001, output_cost_per_token: 0.0002}
  - model_name: nousage
    litellm_params: {model: openai/nousage, api_base: "{{UP}}", api_key: sk-upstream-provider-secret, input_cost_per_token: 0.001}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: research, models: [gpt-4o, nousage]}
    - {team_id: trial, models: [gpt-4o], rpm_limit: 1, max_budget: 100, soft_budget: 0.000001}
  keys:
    - {key: sk-dashboard-research-0001, key_alias: research, team_id: research}
    - {key: sk-dashboard-trial-0002, key_alias: trial, team_id: trial}
`

// selector is one series selector of a PromQL expression: a metric name
// and the label names its matchers name.
type selector struct {
	metric string
	labels []string
}

// promQuery is what a PromQL expression reads: its selectors and the label
// names of its by/without/on/ignoring/group_* clauses.
type promQuery struct {
	selectors []selector
	grouping  []string
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promRange  = regexp.MustCompile(`\[[^\]]*\]`)
	promToken  = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9A-Za-z.]*|=~|!~|!=|==|>=|<=|\S`)
	// Words of PromQL that are neither metrics nor functions.
	promKeywords = map[string]bool{
		"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
		"inf": true, "Inf": true, "nan": true, "NaN": true,
	}
	promGrouping = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
)

// parsePromQL finds the selectors and grouping labels of expr, a PromQL
// expression with Grafana variables ($__rate_interval in ranges, $job in
// matcher values). It handles function calls (rate, histogram_quantile,
// sum by …), label matchers, ranges and binary operators; a selector
// without a metric name ({__name__=…}) is an error, so that every query
// names what it reads.
func parsePromQL(expr string) (promQuery, error) {
	var q promQuery
	s := promString.ReplaceAllString(expr, `""`)
	s = promRange.ReplaceAllString(s, " ")
	toks := promToken.FindAllString(s, -1)
	isIdent := func(t string) bool {
		return t != "" && (t[0] == '_' || t[0] == ':' || (t[0]|0x20 >= 'a' && t[0]|0x20 <= 'z'))
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch {
		case promGrouping[t] && next == "(":
			i += 2
			for ; i < len(toks) && toks[i] != ")"; i++ {
				if isIdent(toks[i]) {
					q.grouping = append(q.grouping, toks[i])
				}
			}
		case promGrouping[t], promKeywords[t]:
		case t == "{":
			return q, fmt.Errorf("a selector without a metric name in %q", expr)
		case t == "$":
			return q, fmt.Errorf("a Grafana variable outside a range or a matcher value in %q", expr)
		case isIdent(t) && (next == "(" || promGrouping[next]):
			// A function, or an aggregation (sum by (…) (…)).
		case isIdent(t):
			sel := selector{metric: t}
			if next == "{" {
				for i += 2; i < len(toks) && toks[i] != "}"; i++ {
					if isIdent(toks[i]) && i+1 < len(toks) && slices.Contains([]string{"=", "!=", "=~", "!~"}, toks[i+1]) {
						if toks[i] == "__name__" {
							return q, fmt.Errorf("%s{__name__=…} in %q: name the metric once", t, expr)
						}
						sel.labels = append(sel.labels, toks[i])
					}
				}
				if i >= len(toks) {
					return q, fmt.Errorf("unclosed matcher of %s in %q", t, expr)
				}
			}
			q.selectors = append(q.selectors, sel)
		}
	}
	return q, nil
}

// labelValuesQuery matches a Grafana variable query label_values(expr, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct {
	where, expr string
	// label is the label a label_values variable lists, "" otherwise.
	label string
}

// dashboardQueries returns every PromQL expression of a Grafana dashboard:
// the targets of its panels (rows' panels included) and its query
// variables.
func dashboardQueries(tb testing.TB, raw []byte) []dashboardQuery {
	tb.Helper()
	var d struct {
		Title      string           `json:"title"`
		UID        string           `json:"uid"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		tb.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" {
		tb.Errorf("%s: title %q, uid %q: want both", dashboardPath, d.Title, d.UID)
	}
	var out []dashboardQuery
	ids := map[int]string{}
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				tb.Errorf("panels %q and %q share the id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				tb.Errorf("panel %q has no query", p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					tb.Errorf("panel %q target %s has no expr", p.Title, t.RefID)
				}
				out = append(out, dashboardQuery{where: fmt.Sprintf("panel %q %s", p.Title, t.RefID), expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// Grafana writes a query variable's query as a string or as
		// {"query": "…"}.
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			var o struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &o); err != nil {
				tb.Fatalf("variable %s: query %s: %v", v.Name, v.Query, err)
			}
			s = o.Query
		}
		m := labelValuesQuery.FindStringSubmatch(s)
		if m == nil {
			tb.Errorf("variable %s: query %q is not label_values(metric{…}, label)", v.Name, s)
			continue
		}
		out = append(out, dashboardQuery{where: "variable " + v.Name, expr: m[1], label: m[2]})
	}
	return out
}

type dashboardPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// exposedLabels returns the label names of metric as a PromQL query sees
// it on /metrics: a family, or a histogram's or summary's _bucket, _sum or
// _count series. ok is false when /metrics has no such series.
func exposedLabels(fams map[string]*dto.MetricFamily, metric string) (labels map[string]bool, ok bool) {
	collect := func(f *dto.MetricFamily, extra ...string) map[string]bool {
		m := map[string]bool{}
		for _, s := range f.GetMetric() {
			for _, lp := range s.GetLabel() {
				m[lp.GetName()] = true
			}
		}
		for _, e := range extra {
			m[e] = true
		}
		return m
	}
	if f, ok := fams[metric]; ok && len(f.GetMetric()) > 0 {
		return collect(f), true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(metric, suffix)
		f, ok := fams[base]
		if !cut || !ok || len(f.GetMetric()) == 0 {
			continue
		}
		switch t := f.GetType(); {
		case t == dto.MetricType_HISTOGRAM && suffix == "_bucket":
			return collect(f, "le"), true
		case t == dto.MetricType_HISTOGRAM || (t == dto.MetricType_SUMMARY && suffix != "_bucket"):
			return collect(f), true
		}
	}
	return nil, false
}

// targetLabels are added by Prometheus when it scrapes, not by the gateway.
var targetLabels = []string{"job", "instance"}

// TestDashboardMetricsExist checks the Grafana dashboard against the real
// gateway: it makes traffic of every kind the dashboard shows (allowed,
// denied, upstream failure, stream, answer without usage, listing, priced calls of
// a team, a call over a rate limit, a soft budget crossed), then every
// metric a query of the dashboard names must be on /metrics, with the
// labels its matchers and by-clauses name.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if chart, err := os.ReadFile(chartDashboardPath); err != nil || !bytes.Equal(chart, raw) {
		t.Errorf("%s differs from %s (err %v): copy the dashboard into the chart", chartDashboardPath, dashboardPath, err)
	}
	queries := dashboardQueries(t, raw)

	up := startUpstream(t)
	mockUp, noUsage := mock.New(mock.Config{}), usageUpstream()
	up.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(body, &req) == nil && req.Model == "nousage" {
			noUsage.ServeHTTP(w, r)
			return
		}
		mockUp.ServeHTTP(w, r)
	}))
	g := startGateway(t, dashboardConfig, up)
	const research, trial = "sk-dashboard-research-0001", "sk-dashboard-trial-0002"
	calls := []struct {
		name, method, path, key string
		body                    []byte
		header                  map[string]string
		want                    int
	}{
		{"allowed", http.MethodPost, "/v1/chat/completions", research, opsChatBody("gpt-4o", false), nil, 200},
		{"denied", http.MethodPost, "/v1/chat/completions", research, opsChatBody("gpt-4o-mini", false), nil, 404},
		{"upstream error", http.MethodPost, "/v1/chat/completions", research, opsChatBody("gpt-4o", false), map[string]string{"X-Mock-Status": "503"}, 503},
		{"stream", http.MethodPost, "/v1/chat/completions", research, opsChatBody("gpt-4o", true), nil, 200},
		{"answer without usage", http.MethodPost, "/v1/chat/completions", research, opsChatBody("nousage", false), nil, 200},
		{"listing", http.MethodGet, "/v1/models", research, nil, nil, 200},
		{"trial within its limit", http.MethodPost, "/v1/chat/completions", trial, opsChatBody("gpt-4o", false), nil, 200},
		{"trial over its limit", http.MethodPost, "/v1/chat/completions", trial, opsChatBody("gpt-4o", false), nil, 429},
	}
	for _, c := range calls {
		if status, _, body := opsCall(t, g, c.method, c.path, c.key, c.body, c.header); status != c.want {
			t.Fatalf("%s: status %d, want %d: %s", c.name, status, c.want, body)
		}
	}
	fams := scrape(t, g)

	named := map[string]bool{}
	for _, q := range queries {
		pq, err := parsePromQL(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(pq.selectors) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		available := map[string]bool{"le": true}
		for _, l := range targetLabels {
			available[l] = true
		}
		missing := false
		for _, sel := range pq.selectors {
			named[sel.metric] = true
			labels, ok := exposedLabels(fams, sel.metric)
			if !ok {
				t.Errorf("%s: metric %s is not exposed on /metrics (query %q)", q.where, sel.metric, q.expr)
				missing = true
				continue
			}
			for _, l := range sel.labels {
				if !labels[l] && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: %s has no label %q (query %q)", q.where, sel.metric, l, q.expr)
				}
			}
			for l := range labels {
				available[l] = true
			}
		}
		for _, l := range append(pq.grouping, q.label) {
			if l != "" && !available[l] && !missing {
				t.Errorf("%s: groups or lists by %q, which none of its metrics has (query %q)", q.where, l, q.expr)
			}
		}
	}

	// What issue 17 asks the dashboard to show.
	for _, m := range []string{
		"gateway_requests_total", "gateway_request_duration_seconds_bucket",
		"gateway_policy_decisions_total", "gateway_policy_evaluation_duration_seconds_bucket",
		"gateway_upstream_duration_seconds_bucket", "gateway_upstream_ttfb_seconds_bucket",
		"gateway_upstream_errors_total", "gateway_tokens_total", "gateway_spend_usd_total",
		"gateway_limited_total", "gateway_bundle_reloads_total", "gateway_bundle_reload_failures_total",
	} {
		if !named[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
	var names []string
	for n := range named {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d queries name %d metrics: %s", len(queries), len(names), strings.Join(names, " "))
}

// TestParsePromQL pins the parser the dashboard test relies on.
func TestParsePromQL(t *testing.T) {
	tests := []struct {
		name, expr    string
		want          []selector
		wantGrouping  []string
		wantErrSubstr string
	}{
		{"rate by", `sum by (route) (rate(gateway_requests_total{job=~"$job"}[$__rate_interval]))`,
			[]selector{{"gateway_requests_total", []string{"job"}}}, []string{"route"}, ""},
		{"histogram quantile", `histogram_quantile(0.95, sum by (le, model_group) (rate(gateway_upstream_ttfb_seconds_bucket{job=~"$job", model_group=~"$model_group"}[5m])))`,
			[]selector{{"gateway_upstream_ttfb_seconds_bucket", []string{"job", "model_group"}}}, []string{"le", "model_group"}, ""},
		{"ratio with matcher values that look like names", `sum(rate(a_total{status=~"5..|rate(x)"}[1m])) / sum(rate(b_count[1m])) * 3600`,
			[]selector{{"a_total", []string{"status"}}, {"b_count", nil}}, nil, ""},
		{"aggregation clause after", `sum(x_total) without (instance) > bool 0 offset 5m`,
			[]selector{{"x_total", nil}}, []string{"instance"}, ""},
		{"bare metric", `go_goroutines`, []selector{{"go_goroutines", nil}}, nil, ""},
		{"name matcher", `{__name__="x"}`, nil, nil, "without a metric name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePromQL(tc.expr)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("parsePromQL(%q) error = %v, want one with %q", tc.expr, err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePromQL(%q) error = %v", tc.expr, err)
			}
			if fmt.Sprint(got.selectors) != fmt.Sprint(tc.want) || fmt.Sprint(got.grouping) != fmt.Sprint(tc.wantGrouping) {
				t.Errorf("parsePromQL(%q) = %v by %v, want %v by %v", tc.expr, got.selectors, got.grouping, tc.want, tc.wantGrouping)
			}
		})
	}
}
