// Package bundles holds the gateway's default Rego policy bundle and embeds
// it in the binary.
//
// The bundle lives in default/ as plain .rego files with _test.rego tests
// beside them (go tool opa test bundles/). Its manifest claims the root
// gateway/authz; custom bundles rooted elsewhere (typically gateway/custom)
// load beside it, and a bundle that claims gateway/authz replaces it
// (DESIGN §10.11). testdata/ holds sample input documents for opa eval.
package bundles

import (
	"embed"
	"io/fs"
)

//go:embed default/.manifest default/*.rego
var files embed.FS

// Default is the default bundle, rooted at the bundle's top directory (the
// one holding .manifest). It includes the _test.rego files; the engine skips
// them when it loads a bundle for serving.
var Default fs.FS = mustSub(files, "default")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, a programming error.
		panic(err)
	}
	return sub
}
