package tests

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/regate/gateway"

// deps lists the non-test dependencies of pkg.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestImportDirection keeps the architecture the folders show: the core
// imports only the standard library, adapters import the core and never each
// other's wiring, and only cmd/ imports everything.
func TestImportDirection(t *testing.T) {
	tests := []struct {
		pkg string
		// allowed lists the only module packages pkg may depend on; other
		// modules are refused when stdlibOnly is set.
		allowed    []string
		stdlibOnly bool
	}{
		{pkg: module + "/gateway", allowed: nil, stdlibOnly: true},
		{pkg: module + "/gateway/catalog", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/modelinfo", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/access", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/openai", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/store/memory", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/mock", allowed: []string{"/gateway", "/gateway/openai"}, stdlibOnly: true},
		{pkg: module + "/gateway/usage", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/router", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/proxy", allowed: []string{"/gateway", "/gateway/openai", "/gateway/mock", "/gateway/usage", "/gateway/router", "/gateway/telemetry/spanattr"}},
		{pkg: module + "/rego", allowed: []string{"/gateway", "/gateway/openai", "/bundles"}},
		{pkg: module + "/gateway/config", allowed: []string{"/gateway", "/gateway/catalog", "/gateway/modelinfo", "/gateway/router"}},
		{pkg: module + "/gateway/authcache", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/limits", allowed: []string{"/gateway"}, stdlibOnly: true},
		{pkg: module + "/gateway/admin", allowed: []string{"/gateway", "/gateway/access"}, stdlibOnly: true},
		{pkg: module + "/gateway/telemetry/spanattr", allowed: nil},
		{pkg: module + "/gateway/telemetry", allowed: []string{"/gateway", "/gateway/proxy", "/gateway/openai", "/gateway/mock", "/gateway/usage", "/gateway/router", "/gateway/telemetry/spanattr"}},
		{pkg: module + "/gateway/httpapi", allowed: []string{"/gateway", "/gateway/openai", "/gateway/proxy", "/gateway/mock", "/gateway/admin", "/gateway/access", "/gateway/limits", "/gateway/usage", "/gateway/router", "/gateway/telemetry/spanattr"}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.pkg, module+"/"), func(t *testing.T) {
			allowed := map[string]bool{tc.pkg: true}
			for _, a := range tc.allowed {
				allowed[module+a] = true
			}
			for _, d := range deps(t, tc.pkg) {
				own := d == module || strings.HasPrefix(d, module+"/")
				switch {
				case own && !allowed[d]:
					t.Errorf("%s imports %s", tc.pkg, d)
				case !own && tc.stdlibOnly:
					t.Errorf("%s imports the non-standard package %s", tc.pkg, d)
				}
			}
		})
	}
}

// TestReleaseBinaryWithoutTemplates keeps text/template, and what came with
// it, out of the release build: about 7 MB of binary and 4 MB of resident
// pages here (docs/DECISIONS.md, "A smaller binary"). gRPC's x/net/trace
// (unless grpcnotrace) and jackc/tern's sprig functions brought it in; OPA
// uses a template package of its own.
func TestReleaseBinaryWithoutTemplates(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", releaseTags, "-deps", "../cmd/gateway").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "text/template" || p == "html/template" {
			t.Errorf("the release build (-tags %s) links %s", releaseTags, p)
		}
	}
}
