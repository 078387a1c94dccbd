// Package router chooses which deployment of a model group serves a call
// and keeps what that choice needs (DESIGN §12): calls in flight, recent
// time to first byte, failures and cooldowns, and the requests and tokens
// of the last minute for deployment rpm/tpm caps.
//
// Its state is per deployment and per replica, held in atomics: no call
// waits on a lock another call holds, and calls to different deployments
// share nothing but a read-mostly map from deployment id to its state.
package router

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway"
)

// Routing strategies (router_settings.routing_strategy).
const (
	SimpleShuffle = "simple-shuffle"
	LeastBusy     = "least-busy"
	LatencyBased  = "latency-based-routing"
)

// Defaults of the failure settings, as LiteLLM's.
const (
	DefaultAllowedFails = 3
	DefaultCooldownTime = 5 * time.Second
	// MaxCooldown bounds a cooldown an upstream's Retry-After asks for.
	MaxCooldown = time.Hour
	// failWindow is the span in which failures are counted against
	// allowed_fails.
	failWindow = time.Minute
	// exploreOneIn is how often latency-based routing tries a deployment
	// other than the fastest, so that their figures stay current.
	exploreOneIn = 10
	// ewmaShift weighs a new time to first byte 1/2^ewmaShift.
	ewmaShift = 2
)

// Settings are the router settings of a config (router_settings and
// litellm_settings). The zero value routes as LiteLLM's defaults do.
type Settings struct {
	// Strategy is SimpleShuffle (also for ""), LeastBusy or LatencyBased.
	Strategy string
	// NumRetries bounds the attempts after the first, across the group's
	// deployments; nil tries each deployment once.
	NumRetries *int
	// AllowedFails is how many failures within a minute a deployment may
	// have before it cools down; nil means DefaultAllowedFails.
	AllowedFails *int
	// CooldownTime is how long a deployment cools down; zero means
	// DefaultCooldownTime.
	CooldownTime time.Duration
	// DisableCooldowns turns cooldowns off.
	DisableCooldowns bool
	// Timeout and StreamTimeout are the defaults of deployments that set
	// none (router_settings.timeout / stream_timeout).
	Timeout, StreamTimeout time.Duration
	// Fallbacks, ContextWindowFallbacks and ContentPolicyFallbacks map a
	// model group ("*": any group) to the groups to try, in order, when it
	// is exhausted, overflows its context window, or refuses the content.
	Fallbacks, ContextWindowFallbacks, ContentPolicyFallbacks map[string][]string
	// DefaultFallbacks are tried for a group without fallbacks of its own.
	DefaultFallbacks []string
}

// Fallback kinds, for FallbacksFor and metrics.
const (
	FallbackGeneral       = "fallback"
	FallbackContextWindow = "context_window"
	FallbackContentPolicy = "content_policy"
)

// FallbacksFor returns the groups to try after group failed with kind, as
// LiteLLM picks them: a context-window or content-policy failure uses its
// own list when that setting is present (and nothing else when it names
// no fallback for group), else the general ones; the general ones are
// group's own, else those under "*", else DefaultFallbacks.
func (s *Settings) FallbacksFor(group, kind string) []string {
	var special map[string][]string
	switch kind {
	case FallbackContextWindow:
		special = s.ContextWindowFallbacks
	case FallbackContentPolicy:
		special = s.ContentPolicyFallbacks
	}
	if special != nil {
		return lookup(special, group)
	}
	if l := lookup(s.Fallbacks, group); l != nil {
		return l
	}
	return s.DefaultFallbacks
}

func lookup(m map[string][]string, group string) []string {
	if l, ok := m[group]; ok {
		return l
	}
	return m["*"]
}

// Observer is told about cooldowns; nil means none.
type Observer interface {
	// Cooldown records that d started cooling down; reason is
	// "allowed_fails" or "retry_after".
	Cooldown(d *gateway.Deployment, reason string)
}

// Config configures a Router.
type Config struct {
	Settings Settings
	// Share returns this replica's share of a deployment's rpm or tpm cap;
	// nil keeps the whole cap (one replica).
	Share func(int64) int64
	// Observer is told about cooldowns; may be nil.
	Observer Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Router orders a group's deployments for each call and tracks their
// state. It is safe for concurrent use.
type Router struct {
	s            Settings
	share        func(int64) int64
	obs          Observer
	now          func() time.Time
	allowedFails int64
	cooldown     time.Duration
	states       sync.Map // deployment id → *state
}

// New returns a Router.
func New(cfg Config) *Router {
	r := &Router{s: cfg.Settings, share: cfg.Share, obs: cfg.Observer, now: cfg.Now,
		allowedFails: DefaultAllowedFails, cooldown: DefaultCooldownTime}
	if r.now == nil {
		r.now = time.Now
	}
	if r.share == nil {
		r.share = func(n int64) int64 { return n }
	}
	if a := cfg.Settings.AllowedFails; a != nil {
		r.allowedFails = int64(*a)
	}
	if cfg.Settings.CooldownTime > 0 {
		r.cooldown = cfg.Settings.CooldownTime
	}
	return r
}

// Settings returns the router's settings.
func (r *Router) Settings() *Settings { return &r.s }

// state is one deployment's routing state on this replica.
type state struct {
	inflight  atomic.Int64
	ttfb      atomic.Int64 // moving average, ns; 0 until measured
	coolUntil atomic.Int64 // unix ns
	failStart atomic.Int64 // unix ns: start of the current failure minute
	fails     atomic.Int64
	reqs      minute // attempts started, for the rpm cap
	toks      minute // tokens used, for the tpm cap
}

func (r *Router) state(id string) *state {
	if v, ok := r.states.Load(id); ok {
		return v.(*state)
	}
	v, _ := r.states.LoadOrStore(id, new(state))
	return v.(*state)
}

// Attempts returns how many attempts a call to a group of n deployments
// may make: NumRetries+1, else one per deployment.
func (r *Router) Attempts(n int) int {
	if p := r.s.NumRetries; p != nil {
		return max(*p, 0) + 1
	}
	return n
}

// Order writes into buf the indexes of ds in the order to try them and
// returns it: deployments at their rpm or tpm cap are left out, cooling
// ones too unless every other one is cooling or capped, and the rest are
// ordered by the routing strategy. Empty means every deployment is at its
// cap.
func (r *Router) Order(ds []gateway.Deployment, buf []int) []int {
	buf = buf[:0]
	if len(ds) == 1 && ds[0].RPM == 0 && ds[0].TPM == 0 {
		return append(buf, 0) // nothing to choose, cooling or not
	}
	now := r.now().UnixNano()
	var coolBuf [8]int
	cooling := coolBuf[:0]
	for i := range ds {
		d := &ds[i]
		st := r.state(d.ID)
		switch {
		case r.capped(d, st, now):
		case st.coolUntil.Load() > now:
			cooling = append(cooling, i)
		default:
			buf = append(buf, i)
		}
	}
	if len(buf) == 0 {
		buf = append(buf, cooling...)
	}
	if len(buf) < 2 {
		return buf
	}
	switch r.s.Strategy {
	case LeastBusy:
		r.leastBusy(ds, buf)
	case LatencyBased:
		r.fastest(ds, buf)
	default:
		shuffle(ds, buf)
	}
	return buf
}

// capped reports whether d is at its rpm or tpm cap.
func (r *Router) capped(d *gateway.Deployment, st *state, now int64) bool {
	return (d.RPM > 0 && st.reqs.sum(now) >= r.share(d.RPM)) ||
		(d.TPM > 0 && st.toks.sum(now) >= r.share(d.TPM))
}

// shuffle orders idx at random, weighted as simple-shuffle weighs: by
// weight when a deployment sets one, else by rpm, else by tpm, else
// equally. A deployment without the field weighs nothing beside ones with
// it, and is tried after them.
func shuffle(ds []gateway.Deployment, idx []int) {
	field := func(d *gateway.Deployment) float64 { return 1 }
	switch {
	case slices.ContainsFunc(idx, func(i int) bool { return ds[i].Weight > 0 }):
		field = func(d *gateway.Deployment) float64 { return d.Weight }
	case slices.ContainsFunc(idx, func(i int) bool { return ds[i].RPM > 0 }):
		field = func(d *gateway.Deployment) float64 { return float64(d.RPM) }
	case slices.ContainsFunc(idx, func(i int) bool { return ds[i].TPM > 0 }):
		field = func(d *gateway.Deployment) float64 { return float64(d.TPM) }
	}
	// Draw without replacement: each place goes to a deployment with
	// probability its weight over the weight still undrawn.
	for k := 0; k < len(idx)-1; k++ {
		var total float64
		for _, i := range idx[k:] {
			total += field(&ds[i])
		}
		if total <= 0 {
			rest := idx[k:]
			rand.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
			return
		}
		x := rand.Float64() * total
		pick := len(idx) - 1
		for j := k; j < len(idx); j++ {
			w := field(&ds[idx[j]])
			if x < w {
				pick = j
				break
			}
			x -= w
		}
		idx[k], idx[pick] = idx[pick], idx[k]
	}
}

// leastBusy orders idx by calls in flight, fewest first, ties at random.
func (r *Router) leastBusy(ds []gateway.Deployment, idx []int) {
	r.orderBy(ds, idx, func(st *state) int64 { return st.inflight.Load() })
}

// fastest orders idx by recent time to first byte, unmeasured deployments
// first so that they get measured; one call in exploreOneIn puts another
// deployment first.
func (r *Router) fastest(ds []gateway.Deployment, idx []int) {
	r.orderBy(ds, idx, func(st *state) int64 { return st.ttfb.Load() })
	if rand.IntN(exploreOneIn) == 0 {
		j := 1 + rand.IntN(len(idx)-1)
		idx[0], idx[j] = idx[j], idx[0]
	}
}

// orderBy orders idx by a figure of each deployment's state, lowest
// first, ties at random.
func (r *Router) orderBy(ds []gateway.Deployment, idx []int, figure func(*state) int64) {
	rand.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
	var buf [16]int64
	key := buf[:0]
	for _, i := range idx {
		key = append(key, figure(r.state(ds[i].ID)))
	}
	sortBy(idx, key)
}

// sortBy sorts idx by key (parallel slices) with an insertion sort: groups
// are small, and it is stable, so shuffled ties stay shuffled.
func sortBy(idx []int, key []int64) {
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && key[j] < key[j-1]; j-- {
			key[j], key[j-1] = key[j-1], key[j]
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// Start records an attempt to d starting: one more call in flight and one
// more request in its minute. End must follow.
func (r *Router) Start(d *gateway.Deployment) {
	st := r.state(d.ID)
	st.inflight.Add(1)
	if d.RPM > 0 {
		st.reqs.add(r.now().UnixNano(), 1)
	}
}

// FirstByte records d's time to first byte.
func (r *Router) FirstByte(d *gateway.Deployment, ttfb time.Duration) {
	st := r.state(d.ID)
	for {
		old := st.ttfb.Load()
		v := int64(ttfb)
		if old > 0 {
			v = old + (int64(ttfb)-old)>>ewmaShift
		}
		if st.ttfb.CompareAndSwap(old, max(v, 1)) {
			return
		}
	}
}

// End records the end of an attempt to d that used tokens.
func (r *Router) End(d *gateway.Deployment, tokens int64) {
	st := r.state(d.ID)
	st.inflight.Add(-1)
	if tokens > 0 && d.TPM > 0 {
		st.toks.add(r.now().UnixNano(), tokens)
	}
}

// Fail records a failed attempt to d (a connection error, a timeout, a 429
// or a 5xx). retryAfter is the upstream's Retry-After, 0 when none: it
// cools d down for that long at once. Otherwise more than allowed_fails
// failures within a minute cool d down for cooldown_time. It reports
// whether d started cooling down.
func (r *Router) Fail(d *gateway.Deployment, retryAfter time.Duration) bool {
	if r.s.DisableCooldowns {
		return false
	}
	st := r.state(d.ID)
	now := r.now().UnixNano()
	if retryAfter > 0 {
		r.cool(d, st, now, min(retryAfter, MaxCooldown), "retry_after")
		return true
	}
	start := st.failStart.Load()
	if now-start > int64(failWindow) && st.failStart.CompareAndSwap(start, now) {
		st.fails.Store(0)
	}
	if st.fails.Add(1) > r.allowedFails {
		st.fails.Store(0)
		r.cool(d, st, now, r.cooldown, "allowed_fails")
		return true
	}
	return false
}

func (r *Router) cool(d *gateway.Deployment, st *state, now int64, d2 time.Duration, reason string) {
	until := now + int64(d2)
	for {
		old := st.coolUntil.Load()
		if old >= until || st.coolUntil.CompareAndSwap(old, until) {
			break
		}
	}
	if r.obs != nil {
		r.obs.Cooldown(d, reason)
	}
}

// Cooling reports whether d is cooling down.
func (r *Router) Cooling(d *gateway.Deployment) bool {
	return r.state(d.ID).coolUntil.Load() > r.now().UnixNano()
}

// InFlight returns d's calls in flight on this replica.
func (r *Router) InFlight(d *gateway.Deployment) int64 { return r.state(d.ID).inflight.Load() }

// minute counts per second over the last 60 seconds, without a lock: a
// count racing with the reuse of its bucket for a new second may be lost,
// which a cap tolerates.
type minute struct {
	sec [60]atomic.Int64
	n   [60]atomic.Int64
}

func (m *minute) add(now, n int64) {
	s := now / int64(time.Second)
	i := s % int64(len(m.sec))
	if old := m.sec[i].Load(); old != s && m.sec[i].CompareAndSwap(old, s) {
		m.n[i].Store(0)
	}
	m.n[i].Add(n)
}

func (m *minute) sum(now int64) int64 {
	s := now / int64(time.Second)
	var total int64
	for i := range m.sec {
		if sec := m.sec[i].Load(); sec > s-int64(len(m.sec)) && sec <= s {
			total += m.n[i].Load()
		}
	}
	return total
}

// ParseRetryAfter reads an upstream's Retry-After-Ms or Retry-After
// (seconds or an HTTP date) header values; 0 when absent or unreadable.
func ParseRetryAfter(ms, secs string, now time.Time) time.Duration {
	if ms != "" {
		if v, ok := parseFloat(ms); ok && v > 0 {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	if secs == "" {
		return 0
	}
	if v, ok := parseFloat(secs); ok {
		if v > 0 {
			return time.Duration(v * float64(time.Second))
		}
		return 0
	}
	if t, err := time.Parse(time.RFC1123, secs); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func parseFloat(s string) (float64, bool) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}
