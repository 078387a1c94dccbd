package telemetry

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/proxy"
)

// OtherLabel stands for every label value outside a bounded set: a model
// group the catalog does not configure, an unknown method, an empty route
// class.
const OtherLabel = "other"

// MetricsConfig configures NewMetrics. Every func is optional (nil reads
// as zero) and is called at scrape time, so it must be cheap and safe for
// concurrent use.
type MetricsConfig struct {
	// ModelGroups are the configured model group names (wildcard patterns
	// included): the only values the model_group label takes; anything
	// else is OtherLabel.
	ModelGroups []string
	// Version is reported by gateway_build_info.
	Version string
	// PrincipalCache reports the principal cache's counters since start.
	PrincipalCache func() (hits, misses, stale uint64)
	// BundleReloads reports policy bundle reloads since start.
	BundleReloads func() (ok, failed uint64)
	// DecisionLogDropped reports decision-log events dropped since start.
	DecisionLogDropped func() uint64
}

// Metrics holds the gateway's Prometheus metrics in a registry of its own
// (no global state). It is safe for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	groups map[string]bool

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	policyDuration  *prometheus.HistogramVec
	decisions       *prometheus.CounterVec
	upstreamDur     *prometheus.HistogramVec
	upstreamTTFB    *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
	cooldowns       *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec

	// The series of each label set seen, so that a request looks its
	// series up once instead of hashing its label values per metric
	// (WithLabelValues). Every label set is bounded, so these are too.
	requestSeries  sync.Map // requestKey → *requestSeries
	decisionSeries sync.Map // [2]string{class, result} → prometheus.Counter
	upstreamSeries sync.Map // [2]string{provider, model name} → *upstreamSeries
	policyDecision prometheus.Observer
	policyVisible  prometheus.Observer

	usage usageMetrics
}

type requestKey struct {
	class, method string
	status        int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type upstreamSeries struct {
	duration, ttfb  prometheus.Observer
	provider, group string // the label values
}

// Histogram buckets in seconds. Model calls take from milliseconds to
// minutes; a policy decision takes tens of microseconds.
var (
	requestBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	policyBuckets  = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, 1}
	ttfbBuckets    = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// NewMetrics builds the registry: the gateway's metrics, Go runtime and
// process metrics, and gateway_build_info.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	m := &Metrics{reg: prometheus.NewRegistry(), groups: make(map[string]bool, len(cfg.ModelGroups))}
	for _, g := range cfg.ModelGroups {
		m.groups[g] = true
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_requests_total",
		Help: "HTTP requests by route class, method and status.",
	}, []string{"route", "method", "status"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_request_duration_seconds",
		Help:    "HTTP request duration (for streams, until the end of the stream) by route class and method.",
		Buckets: requestBuckets,
	}, []string{"route", "method"})
	m.policyDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_policy_evaluation_duration_seconds",
		Help:    "Policy evaluation duration by query (decision, visible_models).",
		Buckets: policyBuckets,
	}, []string{"query"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_policy_decisions_total",
		Help: "Policy decisions by route class and result (allow, deny, error).",
	}, []string{"route", "result"})
	m.upstreamDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_upstream_duration_seconds",
		Help:    "Upstream call duration including failover (for streams, until the end) by provider and model group.",
		Buckets: requestBuckets,
	}, []string{"provider", "model_group"})
	m.upstreamTTFB = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gateway_upstream_ttfb_seconds",
		Help:    "Time to the first response body byte from the upstream, by provider and model group.",
		Buckets: ttfbBuckets,
	}, []string{"provider", "model_group"})
	m.cooldowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_deployment_cooldowns_total",
		Help: "Deployments cooled down by provider, model group and reason (allowed_fails, retry_after).",
	}, []string{"provider", "model_group", "reason"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_fallbacks_total",
		Help: "Fallback targets tried by the model group fallen back from, kind (fallback, context_window, content_policy) and result (served, failed, denied, limited).",
	}, []string{"model_group", "kind", "result"})
	m.upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_upstream_errors_total",
		Help: "Upstream failures by provider, model group and kind (unavailable, timeout, status_3xx, status_4xx, status_429, status_5xx, stream).",
	}, []string{"provider", "model_group", "kind"})

	m.policyDecision = m.policyDuration.WithLabelValues(queryDecision)
	m.policyVisible = m.policyDuration.WithLabelValues(queryVisibleModels)

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gateway_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(orDefault(cfg.Version, "devel"), runtime.Version()).Set(1)

	cache := cfg.PrincipalCache
	if cache == nil {
		cache = func() (uint64, uint64, uint64) { return 0, 0, 0 }
	}
	reloads := cfg.BundleReloads
	if reloads == nil {
		reloads = func() (uint64, uint64) { return 0, 0 }
	}
	dropped := cfg.DecisionLogDropped
	if dropped == nil {
		dropped = func() uint64 { return 0 }
	}
	counterFunc := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.requests, m.requestDuration, m.policyDuration, m.decisions,
		m.upstreamDur, m.upstreamTTFB, m.upstreamErrors, m.cooldowns, m.fallbacks, buildInfo,
		counterFunc("gateway_principal_cache_hits_total", "Principal lookups answered by the cache.",
			func() float64 { h, _, _ := cache(); return float64(h) }),
		counterFunc("gateway_principal_cache_misses_total", "Principal lookups that asked the store.",
			func() float64 { _, mi, _ := cache(); return float64(mi) }),
		counterFunc("gateway_principal_cache_stale_total", "Cached principals served past their TTL while the store was unreachable.",
			func() float64 { _, _, s := cache(); return float64(s) }),
		counterFunc("gateway_bundle_reloads_total", "Policy bundles loaded and swapped in after start.",
			func() float64 { ok, _ := reloads(); return float64(ok) }),
		counterFunc("gateway_bundle_reload_failures_total", "Policy bundle reloads that failed; the last good bundle kept serving.",
			func() float64 { _, f := reloads(); return float64(f) }),
		counterFunc("gateway_decision_log_dropped_total", "Decision-log events dropped because the log could not keep up.",
			func() float64 { return float64(dropped()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	var usage []prometheus.Collector
	m.usage, usage = newUsageMetrics()
	cs = append(cs, usage...)
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Registry is the registry behind Handler, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one HTTP request. class is its route class, empty
// for unmatched requests.
func (m *Metrics) ObserveRequest(class, method string, status int, d time.Duration) {
	k := requestKey{orDefault(class, OtherLabel), boundedMethod(method), status}
	rs := series(&m.requestSeries, k, func() *requestSeries {
		return &requestSeries{
			count:    m.requests.WithLabelValues(k.class, k.method, strconv.Itoa(status)),
			duration: m.requestDuration.WithLabelValues(k.class, k.method),
		}
	})
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

// ObservePolicy records one policy evaluation: query is "decision" or
// "visible_models", result "allow", "deny" or "error".
func (m *Metrics) ObservePolicy(query, class, result string, d time.Duration) {
	if query != queryDecision {
		m.policyVisible.Observe(d.Seconds())
		return
	}
	m.policyDecision.Observe(d.Seconds())
	k := [2]string{orDefault(class, OtherLabel), result}
	series(&m.decisionSeries, k, func() prometheus.Counter { return m.decisions.WithLabelValues(k[0], k[1]) }).Inc()
}

// ObserveUpstream records one upstream call; it is the proxy's Observer.
func (m *Metrics) ObserveUpstream(o *proxy.Outcome) {
	for _, f := range o.Failures {
		s := m.upstream(f.Deployment)
		m.upstreamErrors.WithLabelValues(s.provider, s.group, failureKind(f)).Inc()
	}
	if o.Deployment == nil {
		return
	}
	s := m.upstream(o.Deployment)
	s.duration.Observe(o.Duration.Seconds())
	if o.TTFB > 0 {
		s.ttfb.Observe(o.TTFB.Seconds())
	}
}

// Cooldown counts a deployment cooling down; it is the router's Observer.
func (m *Metrics) Cooldown(d *gateway.Deployment, reason string) {
	provider, group := m.deploymentLabels(d)
	m.cooldowns.WithLabelValues(provider, group, reason).Inc()
}

// ObserveFallback counts one fallback target tried after group failed.
func (m *Metrics) ObserveFallback(group, kind, result string) {
	if !m.groups[group] {
		group = OtherLabel
	}
	m.fallbacks.WithLabelValues(group, kind, result).Inc()
}

// upstream returns the upstream series of deployment d. Deployments come
// from the configuration, so their provider and model names are bounded.
func (m *Metrics) upstream(d *gateway.Deployment) *upstreamSeries {
	var k [2]string
	if d != nil {
		k = [2]string{d.Provider, d.ModelName}
	}
	return series(&m.upstreamSeries, k, func() *upstreamSeries {
		provider, group := m.deploymentLabels(d)
		return &upstreamSeries{
			duration: m.upstreamDur.WithLabelValues(provider, group),
			ttfb:     m.upstreamTTFB.WithLabelValues(provider, group),
			provider: provider, group: group,
		}
	})
}

// series returns the series cached under key in cache, made by newSeries
// the first time.
func series[K comparable, V any](cache *sync.Map, key K, newSeries func() V) V {
	if v, ok := cache.Load(key); ok {
		return v.(V)
	}
	v, _ := cache.LoadOrStore(key, newSeries())
	return v.(V)
}

// deploymentLabels returns the provider and model group labels of d. The
// provider comes from the config; a model group the catalog does not
// configure is OtherLabel.
func (m *Metrics) deploymentLabels(d *gateway.Deployment) (string, string) {
	if d == nil {
		return OtherLabel, OtherLabel
	}
	group := d.ModelName
	if !m.groups[group] {
		group = OtherLabel
	}
	return orDefault(d.Provider, OtherLabel), group
}

func failureKind(f proxy.Attempt) string {
	if f.Kind != proxy.FailStatus {
		return f.Kind
	}
	switch s := f.Status; {
	case s == http.StatusTooManyRequests:
		return "status_429"
	case s >= 500:
		return "status_5xx"
	case s >= 400:
		return "status_4xx"
	default:
		return "status_3xx"
	}
}

// boundedMethod keeps label values to the methods the gateway serves.
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut,
		http.MethodPatch, http.MethodHead, http.MethodOptions:
		return m
	}
	return OtherLabel
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
