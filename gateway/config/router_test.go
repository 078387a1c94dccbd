package config

import (
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/router"
)

func TestRouterSettings(t *testing.T) {
	cfg := mustParse(t, doc(`
model_list:
  - model_name: a
    litellm_params: {model: openai/a, weight: 2.5, rpm: 60, stream_timeout: 1.5}
    tpm: 1000
  - model_name: b
    litellm_params: {model: openai/b}
litellm_settings:
  num_retries: 1
  request_timeout: 30
  default_fallbacks: [b]
  context_window_fallbacks: [{"a": ["b"]}]
router_settings:
  routing_strategy: least-busy
  num_retries: 4
  allowed_fails: 0
  cooldown_time: 2.5
  stream_timeout: 20
  disable_cooldowns: false
  fallbacks: [{"a": ["b", "nowhere"]}, {"*": ["b"]}]
`), nil)
	s := cfg.Router
	if s.Strategy != router.LeastBusy || s.NumRetries == nil || *s.NumRetries != 4 || s.AllowedFails == nil || *s.AllowedFails != 0 ||
		s.CooldownTime != 2500*time.Millisecond || s.Timeout != 30*time.Second || s.StreamTimeout != 20*time.Second {
		t.Errorf("Router = %+v, want router_settings over litellm_settings", s)
	}
	if !slices.Equal(s.Fallbacks["a"], []string{"b", "nowhere"}) || !slices.Equal(s.Fallbacks["*"], []string{"b"}) ||
		!slices.Equal(s.ContextWindowFallbacks["a"], []string{"b"}) || s.ContentPolicyFallbacks != nil || !slices.Equal(s.DefaultFallbacks, []string{"b"}) {
		t.Errorf("fallbacks = %v / %v / %v / %v", s.Fallbacks, s.ContextWindowFallbacks, s.ContentPolicyFallbacks, s.DefaultFallbacks)
	}
	d := cfg.Deployments[0]
	if d.Weight != 2.5 || d.RPM != 60 || d.TPM != 1000 || d.StreamTimeout != 1500*time.Millisecond {
		t.Errorf("deployment = weight %v rpm %d tpm %d stream_timeout %v", d.Weight, d.RPM, d.TPM, d.StreamTimeout)
	}
	checkProblems(t, "warnings", warningsAsProblems(cfg.Warnings), []wantProblem{
		{19, `router_settings.fallbacks[0].a: "nowhere" names no model group; it is skipped`},
	})
	var notApplied []string
	for _, st := range cfg.Settings {
		if !st.Applied {
			notApplied = append(notApplied, st.String())
		}
	}
	if want := []string{"litellm_settings.num_retries: not applied (router_settings.num_retries is applied instead)"}; !slices.Equal(notApplied, want) {
		t.Errorf("not applied = %q, want %q", notApplied, want)
	}
}

func TestRouterSettingErrors(t *testing.T) {
	e := parseProblems(t, doc(`
model_list:
  - model_name: a
    litellm_params: {model: openai/a, weight: 0, rpm: -1}
    tpm: lots
router_settings:
  num_retries: many
  allowed_fails: -2
  cooldown_time: soon
  fallbacks: {"a": ["b"]}
  default_fallbacks: [[x]]
  routing_strategy: usage-based-routing-v2
`), nil)
	checkProblems(t, "problems", e.Problems, []wantProblem{
		{3, "model_list[0].litellm_params.weight: want a positive number"},
		{3, "model_list[0].litellm_params.rpm: want a positive integer"},
		{4, "model_list[0].tpm: want an integer"},
		{6, "router_settings.num_retries: want an integer"},
		{7, "router_settings.allowed_fails: want an integer from 0 to 100"},
		{8, "router_settings.cooldown_time: want a positive number of seconds"},
		{9, "router_settings.fallbacks: want a list"},
		{10, "router_settings.default_fallbacks[0]: want a string"},
	})
}
