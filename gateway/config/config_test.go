package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/examples"
)

// testNow is the clock of parses in tests.
var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// doc drops the leading newline of a raw string literal so that line 1 is the
// first line of the YAML.
func doc(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// mustParse parses a config that must load.
func mustParse(tb testing.TB, data []byte, env map[string]string) *Config {
	tb.Helper()
	cfg, err := parse(data, envFrom(env), testNow)
	if err != nil {
		tb.Fatalf("parse() error:\n%v", err)
	}
	return cfg
}

// parseProblems parses a config that must fail and returns its problems.
func parseProblems(tb testing.TB, data []byte, env map[string]string) *Error {
	tb.Helper()
	cfg, err := parse(data, envFrom(env), testNow)
	if err == nil {
		tb.Fatalf("parse() = %+v, nil; want an error", cfg)
	}
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("parse() error %T, want *Error", err)
	}
	return e
}

// wantProblem is a problem a test expects: its line and a part of its
// message.
type wantProblem struct {
	line int
	text string
}

// checkProblems compares problems (or warnings) with the expected ones, in
// order.
func checkProblems(tb testing.TB, what string, got []Problem, want []wantProblem) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("%s = %d:\n%s\nwant %d: %v", what, len(got), formatProblems(got), len(want), want)
		return
	}
	for i, w := range want {
		if got[i].Line != w.line || !strings.Contains(got[i].Message, w.text) {
			tb.Errorf("%s[%d] = line %d: %q, want line %d containing %q", what, i, got[i].Line, got[i].Message, w.line, w.text)
		}
	}
}

func formatProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  ")
		b.WriteString((&Error{File: "config.yaml", Problems: []Problem{p}}).Error())
		b.WriteByte('\n')
	}
	return b.String()
}

func warningsAsProblems(ws []Warning) []Problem {
	out := make([]Problem, len(ws))
	for i, w := range ws {
		out[i] = Problem(w)
	}
	return out
}

func TestExampleConfig(t *testing.T) {
	t.Setenv("GATEWAY_MASTER_KEY", "sk-test-master-key")
	cfg, err := Load("../../examples/config.yaml")
	if err != nil {
		t.Fatalf("Load(examples/config.yaml) error:\n%v", err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("Load(examples/config.yaml) warnings:\n%s", formatProblems(warningsAsProblems(cfg.Warnings)))
	}
	if cfg.MasterKey.Reveal() != "sk-test-master-key" {
		t.Errorf("MasterKey = %v, want the GATEWAY_MASTER_KEY value", cfg.MasterKey)
	}
	for _, d := range cfg.Deployments {
		if d.Provider != ProviderMock {
			t.Errorf("deployment %s (%s) provider = %q, want only mock deployments in the demo", d.ID, d.ModelName, d.Provider)
		}
	}
	if len(cfg.Teams) != 2 || len(cfg.Users) != 3 || len(cfg.Keys) < 4 {
		t.Errorf("example has %d teams, %d users, %d keys; want 2, 3, at least 4", len(cfg.Teams), len(cfg.Users), len(cfg.Keys))
	}
	res := cfg.Catalog.Resolve("AgentX-LLM", nil, nil)
	if !res.Found || res.Resolved != "openrouter/qwen/qwen3.5-flash-02-23" {
		t.Errorf("Resolve(AgentX-LLM) = %+v, want the qwen model group", res)
	}
	for _, name := range []string{"openai/o1-mini", "openai/gpt-4.1", "legacy-gpt-4", "text-embedding-3-small"} {
		if res := cfg.Catalog.Resolve(name, nil, nil); !res.Found {
			t.Errorf("Resolve(%q) not found in the example", name)
		}
	}
	raw, err := os.ReadFile("../../examples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(examples.Config) != string(raw) {
		t.Errorf("examples.Config differs from examples/config.yaml")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	data := doc(`
model_list:
  - model_name: m
    litellm_params: { model: mock/m }
gateway_settings:
  policy:
    bundle: [./bundles/custom, /abs/bundle, "https://bundles.example.com/b.tar.gz"]
`)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	want := []string{filepath.Join(dir, "bundles/custom"), "/abs/bundle", "https://bundles.example.com/b.tar.gz"}
	if !slices.Equal(cfg.PolicyBundles, want) {
		t.Errorf("Load().PolicyBundles = %q, want %q", cfg.PolicyBundles, want)
	}
	if cfg.MaxRequestBodyBytes != DefaultMaxRequestBodyBytes {
		t.Errorf("Load().MaxRequestBodyBytes = %d, want %d", cfg.MaxRequestBodyBytes, DefaultMaxRequestBodyBytes)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, doc(`
model_list:
  - model_name: m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("Load(bad) error = %v, want it to start with %q", err, bad+":2: ")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "config.yaml", Problems: []Problem{
		{Line: 12, Message: `gateway_settings.teams[0]: unknown field "modles"`},
		{Line: 0, Message: "something global"},
	}}
	want := "config.yaml:12: gateway_settings.teams[0]: unknown field \"modles\"\nconfig.yaml: something global"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (Warning{Line: 3, Message: "x: ignored"}).String(); got != "line 3: x: ignored" {
		t.Errorf("Warning.String() = %q, want %q", got, "line 3: x: ignored")
	}
}

// TestYAMLErrorLines: the YAML errors the library reports without a line
// (on the first line, and its reader's wherever they are) still name one.
func TestYAMLErrorLines(t *testing.T) {
	tests := []struct {
		name, data string
		want       wantProblem
	}{
		{"tab on line 1", "\tmodel_list: []\n", wantProblem{1, "cannot start any token"}},
		{"control character", "model_list: []\nrouter_settings: {}\nx: \x01\n", wantProblem{3, "control characters"}},
		{"invalid UTF-8", "model_list: []\n\nx: \xff\n", wantProblem{3, "UTF-8"}},
		{"numbered by the library", "model_list: []\nb: @x\n", wantProblem{2, "cannot start any token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, []byte(tc.data), nil)
			checkProblems(t, "problems", e.Problems, []wantProblem{tc.want})
		})
	}
}

// TestAliasExpansion: aliases and merge keys that refer to what contains
// them, or that expand exponentially, are problems, not a stack overflow
// or a parse that never ends.
func TestAliasExpansion(t *testing.T) {
	laughs := "gateway_settings:\n  keys:\n  - key: sk-12345678901\n    metadata:\n      l0: &l0 [a, b, c, d, e, f, g, h, i, j]\n"
	for i := 1; i < 9; i++ {
		laughs += fmt.Sprintf("      l%d: &l%d [%s*l%d]\n", i, i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), i-1)
	}
	mergeLaughs := "m0: &m0 {x: 1, y: 2}\n"
	for i := 1; i < 40; i++ {
		mergeLaughs += fmt.Sprintf("m%d: &m%d {<<: [*m%d, *m%d]}\n", i, i, i-1, i-1)
	}
	mergeLaughs += "general_settings:\n  <<: *m39\n"
	tests := []struct {
		name, data, want string
	}{
		{"root merges itself", "&a {<<: *a}\n", "refers to a value that contains it"},
		{"section merges itself", "general_settings: &a\n  <<: [*a, *a]\n", "refers to a value that contains it"},
		{"metadata holds itself", "gateway_settings:\n  keys: [{key: sk-12345678901, metadata: &a {x: [*a, *a]}}]\n", "refers to a value that contains it"},
		{"values expand exponentially", laughs, "expand to too many values"},
		{"merges expand exponentially", mergeLaughs, "expand to too many values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, []byte(tc.data), nil)
			if len(e.Problems) == 0 || !strings.Contains(e.Problems[0].Message, tc.want) || e.Problems[0].Line < 1 {
				t.Errorf("problems = %v, want one with a line containing %q", e.Problems, tc.want)
			}
		})
	}
	// Aliases used a few times are fine.
	mustParse(t, doc(`
gateway_settings:
  keys: [{key: sk-12345678901, metadata: {x: &b [1], y: *b, z: [*b, *b]}}]
`), nil)
}

func TestParseNilEnvUsesEnvironment(t *testing.T) {
	t.Setenv("CONFIG_TEST_MASTER", "sk-from-env")
	cfg, err := Parse(doc(`
general_settings:
  master_key: os.environ/CONFIG_TEST_MASTER
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MasterKey.Reveal() != "sk-from-env" {
		t.Errorf("Parse(nil env).MasterKey = %v, want the environment's value", cfg.MasterKey)
	}
}

// TestNoSecretsInMessages checks that key material never appears in problems
// or warnings.
func TestNoSecretsInMessages(t *testing.T) {
	secrets := []string{"notsk-secret-value-1", "sk-provider-secret-2", "sk-dup-secret-3333", "sk-master-secret-4444"}
	data := doc(`
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_key: sk-provider-secret-2
      temperature: 0.2
general_settings:
  master_key: sk-master-secret-4444
  database_url: postgres://user:pw@host/db
gateway_settings:
  keys:
    - key: notsk-secret-value-1
    - key: sk-dup-secret-3333
    - key: sk-dup-secret-3333
    - key: sk-master-secret-4444
    - key: sk-provider-secret-2
      models: [nope]
`)
	e := parseProblems(t, data, nil)
	all := e.Error()
	for _, w := range e.Warnings {
		all += "\n" + w.String()
	}
	for _, s := range append(secrets, "user:pw") {
		if strings.Contains(all, s) {
			t.Errorf("problems or warnings contain the secret %q:\n%s", s, all)
		}
	}
	checkProblems(t, "problems", e.Problems, []wantProblem{
		{12, `gateway_settings.keys[0].key: must start with "sk-"`},
		{14, "gateway_settings.keys[2]: same key as gateway_settings.keys[1]"},
		{15, "gateway_settings.keys[3]: same key as general_settings.master_key"},
		{17, `gateway_settings.keys[4].models: allow-list entry "nope"`},
	})
}
