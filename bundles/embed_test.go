package bundles

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	raw, err := fs.ReadFile(Default, ".manifest")
	if err != nil {
		t.Fatalf("ReadFile(.manifest) error = %v", err)
	}
	var m struct {
		Roots       []string `json:"roots"`
		RegoVersion int      `json:"rego_version"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf(".manifest: %v", err)
	}
	if !slices.Equal(m.Roots, []string{"gateway/authz"}) || m.RegoVersion != 1 {
		t.Errorf(".manifest roots, rego_version = %v, %d, want [gateway/authz], 1", m.Roots, m.RegoVersion)
	}
	names, err := fs.Glob(Default, "*.rego")
	if err != nil {
		t.Fatalf("Glob(*.rego) error = %v", err)
	}
	for _, want := range []string{"authz.rego", "models.rego", "authz_test.rego", "models_test.rego"} {
		if !slices.Contains(names, want) {
			t.Errorf("Default holds %v, want %s among them", names, want)
		}
	}
	for _, n := range names {
		data, err := fs.ReadFile(Default, n)
		if err != nil {
			t.Fatalf("ReadFile(%s) error = %v", n, err)
		}
		if !strings.Contains(string(data), "package gateway.authz\n") {
			t.Errorf("%s is not in package gateway.authz, the manifest's only root", n)
		}
	}
}
