package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/examples"
)

// FuzzParse feeds the config loader arbitrary documents. It never panics
// and ends (aliases and merge keys cannot expand without end);
// a config it refuses gives an *Error whose every problem names its line
// (DESIGN §4: an error comes "with its line"), and that prints as
// "file:line: message".
func FuzzParse(f *testing.F) {
	f.Add(examples.Config)
	for _, name := range []string{"load_balancer.yaml", "multi_provider.yaml", "proxy_server.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "litellm", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "model_list: [", "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\n  - model_name: a\n    litellm_params: {model: openai/a}\n",
		"gateway_settings:\n  modles: []\n", "a: 1\na: 2\n", "router_settings:\n  model_group_alias: {x: y, y: x}\n",
		"model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n    model_info: {id: d}\n  - model_name: n\n    litellm_params: {model: mock/n}\n    model_info: {id: d}\n",
		"gateway_settings:\n  keys: [{key: sk-12345678901, models: [nowhere], duration: 30x}]\n",
		"x: &a [*a]\n", "- 1\n", "\t", "model_list: {}\n", "general_settings: {master_key: os.environ/NOPE}\n",
		"a: !!binary zz\n", "%YAML 1.1\n---\na: 1\n...\n---\nb: 2\n",
		"model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, weight: 2, rpm: 5, stream_timeout: 1}\n    tpm: 9\n" +
			"router_settings:\n  routing_strategy: least-busy\n  num_retries: 2\n  fallbacks: [{a: [b]}, {\"*\": [a]}]\n" +
			"litellm_settings:\n  default_fallbacks: [a]\n  context_window_fallbacks: [{a: [a]}]\n  request_timeout: 3\n",
	} {
		f.Add([]byte(s))
	}
	env := envFrom(map[string]string{"OPENAI_API_KEY": "sk-openai", "GATEWAY_MASTER_KEY": "sk-master", "ALICE_KEY": "sk-alice-000000"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		// A parse that does not end is a failure too (the fuzzer alone
		// only stalls on it): report the input.
		var (
			cfg  *Config
			err  error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			cfg, err = parse(data, env, testNow)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("parse(%q) has not ended after 20s", data)
		}
		if err == nil {
			if cfg == nil {
				t.Fatalf("parse(%q) = nil, nil", data)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("parse(%q) error %T, want *Error", data, err)
		}
		if len(e.Problems) == 0 {
			t.Fatalf("parse(%q) = an *Error without problems", data)
		}
		// YAML counts CR, NEL and the Unicode separators as line breaks
		// too: bound lines by the bytes.
		lines := len(data) + 1
		for _, p := range e.Problems {
			if p.Line < 1 || p.Line > lines {
				t.Fatalf("parse(%q): problem %q has line %d, want 1..%d", data, p.Message, p.Line, lines)
			}
		}
		for _, l := range strings.Split(e.Error(), "\n") {
			if !strings.HasPrefix(l, "config.yaml:") || strings.HasPrefix(l, "config.yaml: ") {
				t.Fatalf("parse(%q): error line %q does not name its line", data, l)
			}
		}
	})
}
