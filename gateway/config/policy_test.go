package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

const policyModels = `
model_list:
  - model_name: m
    litellm_params: { model: mock/m }
gateway_settings:
  policy:
`

func TestPolicySettings(t *testing.T) {
	cfg := mustParse(t, []byte(policyModels+`    bundle: https://bundles.example.com/b.tar.gz
    run_tests: true
    poll_interval: 10s
    file_poll_interval: 1h
    decision_log: stdout
    verification:
      key: os.environ/BUNDLE_SECRET
      algorithm: HS256
      key_id: ci
      scope: prod
`), map[string]string{"BUNDLE_SECRET": "s3cret"})
	p := cfg.Policy
	if !p.RunTests || p.PollInterval != 10*time.Second || p.FilePollInterval != time.Hour || p.DecisionLog != "stdout" {
		t.Errorf("Policy = %+v, want run_tests, 10s, file poll 1h, stdout", p)
	}
	v := p.Verification
	if v == nil || v.Key.Reveal() != "s3cret" || v.Algorithm != "HS256" || v.KeyID != "ci" || v.Scope != "prod" {
		t.Errorf("Policy.Verification = %+v, want the HS256 secret, key id ci, scope prod", v)
	}

	def := mustParse(t, []byte(policyModels+"    verification: {key: \"-----BEGIN PUBLIC KEY-----\\nabc\\n-----END PUBLIC KEY-----\"}\n"), nil)
	if v := def.Policy.Verification; v.Algorithm != "RS256" || v.KeyID != DefaultBundleKeyID {
		t.Errorf("Policy.Verification defaults = %+v, want RS256 and key id %q", v, DefaultBundleKeyID)
	}
}

func TestPolicySettingsProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []wantProblem
	}{
		{"unknown field", "    decisionlog: stdout\n", []wantProblem{{7, `gateway_settings.policy: unknown field "decisionlog"`}}},
		{"bad interval", "    poll_interval: soon\n", []wantProblem{{7, "poll_interval: invalid duration"}}},
		{"interval too short", "    poll_interval: 10ms\n", []wantProblem{{7, "too short"}}},
		{"bad file interval", "    file_poll_interval: soon\n", []wantProblem{{7, "file_poll_interval: invalid duration"}}},
		{"file interval too short", "    file_poll_interval: 50ms\n", []wantProblem{{7, "file_poll_interval: 50ms is too short"}}},
		{"run_tests not a boolean", "    run_tests: yes please\n", []wantProblem{{7, "run_tests: want true or false"}}},
		{"decision_log not a string", "    decision_log: [stdout]\n", []wantProblem{{7, "decision_log: want a string"}}},
		{"verification without key", "    verification: {algorithm: RS256}\n", []wantProblem{{7, "verification: key is required"}}},
		{"unknown algorithm", "    verification: {key: k, algorithm: none}\n", []wantProblem{{7, `unknown algorithm "none"`}}},
		{"unknown verification field", "    verification:\n      key: k\n      keyid: x\n", []wantProblem{{9, `verification: unknown field "keyid"`}}},
		{"unset key variable", "    verification: {key: os.environ/NOPE}\n", []wantProblem{{7, "NOPE is not set"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := parseProblems(t, []byte(policyModels+tc.yaml), nil)
			checkProblems(t, "problems", e.Problems, tc.want)
		})
	}
}

func TestLoadResolvesPolicyPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	data := policyModels + "    decision_log: logs/decisions.log\n    verification: {key: keys/pub.pem}\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if got, want := cfg.Policy.DecisionLog, filepath.Join(dir, "logs/decisions.log"); got != want {
		t.Errorf("Policy.DecisionLog = %q, want %q", got, want)
	}
	if got, want := cfg.Policy.Verification.Key.Reveal(), filepath.Join(dir, "keys/pub.pem"); got != want {
		t.Errorf("Policy.Verification.Key = %q, want %q", got, want)
	}
}
