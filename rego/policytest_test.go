package rego

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// writeDir writes files into dir (creating it), replacing each file
// atomically (write, then rename) as careful tools do.
func writeDir(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			tb.Fatal(err)
		}
	}
}

// tarball builds an OPA bundle tarball from files; sign, when set, signs it
// with OPA's bundle signing (key id "default").
func tarball(tb testing.TB, files map[string]string, sign *bundle.SigningConfig) []byte {
	tb.Helper()
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	loader, err := bundle.NewFSLoader(m)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := bundle.NewCustomReader(loader).WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(true).Read()
	if err != nil {
		tb.Fatalf("read bundle: %v", err)
	}
	if sign != nil {
		if err := b.GenerateSignature(sign, "default", false); err != nil {
			tb.Fatalf("GenerateSignature: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).DisableFormat(true).Write(b); err != nil {
		tb.Fatalf("write bundle: %v", err)
	}
	return buf.Bytes()
}

// pausedBundle is a gateway.custom bundle denying one model by name.
func pausedBundle(revision, deniedModel string) map[string]string {
	return map[string]string{
		".manifest": `{"roots": ["gateway/custom"], "revision": "` + revision + `"}`,
		"custom.rego": `package gateway.custom

deny contains "model ` + deniedModel + ` is paused" if input.model.requested == "` + deniedModel + `"
`,
	}
}
