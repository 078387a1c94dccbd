package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/regate/gateway/gateway/router"
)

// routerDraft collects the router settings of router_settings and
// litellm_settings; router_settings wins where both set a key.
type routerDraft struct {
	strategy                    *string
	numRetries, allowedFails    *int
	cooldown, timeout, streamTO *time.Duration
	disableCooldowns            *bool
	// The fallback maps are nil until a section sets them (fallbackMap
	// never returns nil for a setting it read).
	fallbacks, ctxFallbacks map[string][]string
	policyFallbacks         map[string][]string
	defaultFallbacks        []string
	hasDefault              bool
	// fallbackLines are every name the fallback settings give.
	fallbackLines []fallbackRef
}

// fallbackRef is a name a fallback setting gives, with its line, checked
// once the catalog is built.
type fallbackRef struct {
	name, path string
	line       int
}

// routingStrategies are the routing_strategy values the gateway applies.
var routingStrategies = map[string]bool{router.SimpleShuffle: true, router.LeastBusy: true, router.LatencyBased: true}

// routerSetting applies one key of router_settings or litellm_settings to
// the draft. It returns whether the key is one the gateway applies (a
// note then says how), or ok=false when the key is not a router setting.
func (p *parser) routerSetting(section string, f field) (note string, applied, ok bool) {
	d := &p.router
	first := section == "router_settings"
	path := section + "." + f.key
	switch f.key {
	case "routing_strategy":
		s, sok := p.str(f.value, path)
		if !sok {
			return "invalid", false, true
		}
		if !routingStrategies[s] {
			p.warnf(f.line, "%s: %q is not one the gateway applies; it routes with simple-shuffle", path, s)
			return "strategies applied: simple-shuffle, least-busy, latency-based-routing; others route as simple-shuffle", false, true
		}
		if first || d.strategy == nil {
			d.strategy = &s
		}
		return "deployments chosen by " + s, true, true
	case "num_retries", "allowed_fails":
		v, iok := p.integer(f.value, path)
		if !iok {
			return "invalid", false, true
		}
		if v < 0 || v > 100 {
			p.errorf(f.line, "%s: want an integer from 0 to 100", path)
			return "invalid", false, true
		}
		n := int(v)
		dst, what := &d.numRetries, "attempts after the first, across the group's deployments"
		if f.key == "allowed_fails" {
			dst, what = &d.allowedFails, "failures within a minute before a deployment cools down"
		}
		if first || *dst == nil {
			*dst = &n
		}
		return what, true, true
	case "cooldown_time", "timeout", "stream_timeout", "request_timeout":
		if f.key == "request_timeout" && first {
			return "", false, false
		}
		t, tok := p.timeout(f.value, path)
		if !tok {
			return "invalid", false, true
		}
		dst, what := &d.cooldown, "how long a failing deployment cools down"
		switch f.key {
		case "timeout", "request_timeout":
			dst, what = &d.timeout, "wait for the first byte of deployments without their own timeout"
		case "stream_timeout":
			dst, what = &d.streamTO, "wait for the first byte and silence between events of streams, for deployments without their own"
		}
		if first || *dst == nil {
			*dst = &t
		}
		return what, true, true
	case "disable_cooldowns":
		b, bok := p.boolean(f.value, path)
		if !bok {
			return "invalid", false, true
		}
		if first || d.disableCooldowns == nil {
			d.disableCooldowns = &b
		}
		return "deployments never cool down when true", true, true
	case "fallbacks", "context_window_fallbacks", "content_policy_fallbacks":
		m, mok := p.fallbackMap(f, path)
		if !mok {
			return "invalid", false, true
		}
		dst := &d.fallbacks
		what := "groups tried once a group's deployments are exhausted, each decided by the policy"
		switch f.key {
		case "context_window_fallbacks":
			dst = &d.ctxFallbacks
			what = "groups tried when a call overflows the context window, each decided by the policy"
		case "content_policy_fallbacks":
			dst = &d.policyFallbacks
			what = "groups tried when the upstream refuses the content, each decided by the policy"
		}
		if first || *dst == nil {
			*dst = m
		}
		return what, true, true
	case "default_fallbacks":
		l, lines, lok := p.strList(f.value, path)
		if !lok {
			return "invalid", false, true
		}
		for i, name := range l {
			d.fallbackLines = append(d.fallbackLines, fallbackRef{name: name, path: path, line: lines[i]})
		}
		if first || !d.hasDefault {
			d.defaultFallbacks, d.hasDefault = l, true
		}
		return "groups tried for a group without fallbacks of its own, each decided by the policy", true, true
	}
	return "", false, false
}

// fallbackMap reads LiteLLM's fallback list: [{"group": ["a", "b"]}, ...].
// A group named twice keeps its first list.
func (p *parser) fallbackMap(f field, path string) (map[string][]string, bool) {
	items, ok := p.sequence(f.value, path)
	if !ok {
		return nil, false
	}
	m := make(map[string][]string)
	for i, it := range items {
		ipath := path + "[" + strconv.Itoa(i) + "]"
		fields, ok := p.mapping(it, ipath)
		if !ok {
			return nil, false
		}
		for _, g := range fields {
			gpath := ipath + "." + g.key
			targets, lines, ok := p.strList(g.value, gpath)
			if !ok {
				return nil, false
			}
			if _, dup := m[g.key]; dup {
				p.warnf(g.line, "%s: %q already has fallbacks; this list is ignored", gpath, g.key)
				continue
			}
			m[g.key] = targets
			if g.key != "*" {
				p.router.fallbackLines = append(p.router.fallbackLines, fallbackRef{name: g.key, path: gpath, line: g.line})
			}
			for j, t := range targets {
				p.router.fallbackLines = append(p.router.fallbackLines, fallbackRef{name: t, path: gpath, line: lines[j]})
			}
		}
	}
	return m, true
}

// finishRouter turns the draft into Config.Router and warns about
// fallback names no model group or alias answers to: they are skipped at
// run time (as a fallback the caller may not call is).
func (p *parser) finishRouter() {
	d := &p.router
	s := &p.cfg.Router
	if d.strategy != nil {
		s.Strategy = *d.strategy
	}
	s.NumRetries, s.AllowedFails = d.numRetries, d.allowedFails
	if d.cooldown != nil {
		s.CooldownTime = *d.cooldown
	}
	if d.timeout != nil {
		s.Timeout = *d.timeout
	}
	if d.streamTO != nil {
		s.StreamTimeout = *d.streamTO
	}
	if d.disableCooldowns != nil {
		s.DisableCooldowns = *d.disableCooldowns
	}
	s.Fallbacks, s.ContextWindowFallbacks, s.ContentPolicyFallbacks = d.fallbacks, d.ctxFallbacks, d.policyFallbacks
	s.DefaultFallbacks = d.defaultFallbacks
	// A key set in both sections is router_settings': say so at the
	// litellm_settings one.
	inRouter := make(map[string]bool)
	for _, st := range p.cfg.Settings {
		if k, ok := strings.CutPrefix(st.Name, "router_settings."); ok && st.Applied {
			inRouter[k] = true
		}
	}
	for i := range p.cfg.Settings {
		st := &p.cfg.Settings[i]
		if k, ok := strings.CutPrefix(st.Name, "litellm_settings."); ok && st.Applied && inRouter[k] {
			st.Applied, st.Note = false, "router_settings."+k+" is applied instead"
		}
	}
	if p.cfg.Catalog == nil {
		return
	}
	for _, ref := range d.fallbackLines {
		if res := p.cfg.Catalog.Resolve(ref.name, nil, nil); !res.Found {
			p.warnf(ref.line, "%s: %q names no model group; it is skipped", ref.path, ref.name)
		}
	}
}
