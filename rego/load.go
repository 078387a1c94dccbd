package rego

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/regate/gateway/bundles"
)

// AuthzRoot is the bundle root the default bundle owns (DESIGN §10.11). A
// bundle whose roots overlap it replaces the default bundle; any other bundle
// loads beside it.
const AuthzRoot = "gateway/authz"

// DefaultBundleName names the embedded default bundle in BundleInfo.
const DefaultBundleName = "default"

// ErrMissingEntryPoint means a policy defines no rule for a required entry
// point (DecisionQuery or VisibleModelsQuery).
var ErrMissingEntryPoint = errors.New("policy is missing an entry point")

// ErrVerification means a bundle's signature is missing or does not verify
// against the configured key.
var ErrVerification = errors.New("bundle signature verification failed")

// bannedBuiltins are left out of the capabilities: network access and
// non-deterministic functions. A decision must depend on its input only, so
// that it can be replayed from a decision log; policies read the time from
// input.now.
var bannedBuiltins = []string{
	"http.send",
	"net.lookup_ip_addr",
	"opa.runtime",
	"rand.intn",
	"uuid.rfc4122",
	"time.now_ns",
	"providers.aws.sign_req", // signs for http.send, reads the clock
}

// Capabilities returns the built-ins and features policies may use: this
// OPA version's, without the network and non-deterministic built-ins, and
// with no host allowed for remote schema fetches. A bundle that calls a
// banned built-in fails to compile.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return slices.Contains(bannedBuiltins, b.Name)
	})
	caps.AllowNet = []string{}
	return caps
}

// BundleInfo describes one loaded bundle.
type BundleInfo struct {
	// Name is the manifest's metadata.name, or "bundleN" for the Nth bundle
	// given (from 1), or DefaultBundleName for the default added implicitly.
	Name string `json:"name"`
	// Source is where the bundle was read from: a directory, a tarball, a
	// URL (without query or user info), "embedded" for the default bundle,
	// or "fs" for a file system given to Load.
	Source string `json:"source"`
	// Revision is the manifest's revision, or "sha256:" and the first 16 hex
	// digits of a digest of the bundle's policies and data.
	Revision string `json:"revision"`
	// Roots are the manifest roots ("" means every path).
	Roots []string `json:"roots"`
}

// Sources of bundles that do not come from a configured location.
const (
	// EmbeddedSource is BundleInfo.Source of the embedded default bundle.
	EmbeddedSource = "embedded"
	// FSSource is BundleInfo.Source of a file system given to Load or in
	// Config.Bundles.
	FSSource = "fs"
)

// loadedBundle is one bundle read from its file system.
type loadedBundle struct {
	info   BundleInfo
	bundle *bundle.Bundle
}

// bundleInput is one bundle to read and where it came from.
type bundleInput struct {
	fsys   fs.FS
	source string
}

// readOpts tune readBundles.
type readOpts struct {
	// keepTests keeps the _test.rego files of the bundles given (never those
	// of an implicitly added default).
	keepTests bool
	// verify, when set, requires every bundle given to carry a valid OPA
	// bundle signature (.signatures.json). The embedded default is trusted.
	verify *bundle.VerificationConfig
}

// fsInputs wraps file systems given without a location.
func fsInputs(fss []fs.FS) []bundleInput {
	out := make([]bundleInput, len(fss))
	for i, f := range fss {
		out[i] = bundleInput{fsys: f, source: FSSource}
	}
	return out
}

// readBundles reads ins as bundles. With none given, the default bundle is
// read alone. Otherwise the default bundle is added in front unless one of
// them claims AuthzRoot.
func readBundles(ins []bundleInput, ro readOpts) ([]loadedBundle, error) {
	caps := Capabilities()
	if len(ins) == 0 {
		b, err := readBundle(bundles.Default, caps, readOpts{keepTests: ro.keepTests})
		if err != nil {
			return nil, fmt.Errorf("read default bundle: %w", err)
		}
		return []loadedBundle{named(b, DefaultBundleName, EmbeddedSource)}, nil
	}
	out := make([]loadedBundle, 0, len(ins)+1)
	claimsAuthz := false
	for i, in := range ins {
		if in.fsys == nil {
			return nil, fmt.Errorf("bundle %d: nil file system", i+1)
		}
		b, err := readBundle(in.fsys, caps, ro)
		if err != nil {
			if in.source != FSSource {
				return nil, fmt.Errorf("read bundle %s: %w", in.source, err)
			}
			return nil, fmt.Errorf("read bundle %d: %w", i+1, err)
		}
		for _, r := range *b.Manifest.Roots {
			if bundle.RootPathsOverlap(r, AuthzRoot) {
				claimsAuthz = true
			}
		}
		out = append(out, named(b, fmt.Sprintf("bundle%d", i+1), in.source))
	}
	if !claimsAuthz {
		b, err := readBundle(bundles.Default, caps, readOpts{})
		if err != nil {
			return nil, fmt.Errorf("read default bundle: %w", err)
		}
		out = append([]loadedBundle{named(b, DefaultBundleName, EmbeddedSource)}, out...)
	}
	seen := make(map[string]int, len(out))
	for i := range out {
		n := out[i].info.Name
		seen[n]++
		if seen[n] > 1 {
			out[i].info.Name = fmt.Sprintf("%s#%d", n, seen[n])
		}
	}
	return out, nil
}

// isVerifyErr tells OPA's signature verification errors from the others
// its bundle reader returns; OPA has no sentinel for them.
func isVerifyErr(err error) bool {
	msg := err.Error()
	for _, s := range []string{"signature", "digest mismatch", "verification key", "scope mismatch", "JWT"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isTest tells a Rego test file by its name.
func isTest(p string) bool { return strings.HasSuffix(p, "_test.rego") }

// readBundle reads one bundle and checks that it is plain Rego v1.
func readBundle(fsys fs.FS, caps *ast.Capabilities, ro readOpts) (*bundle.Bundle, error) {
	loader, err := bundle.NewFSLoader(fsys)
	if err != nil {
		return nil, err
	}
	// SlashRooted: OPA's default format for a root of "." turns
	// ".signatures.json" into "/signatures.json", and signed bundles would
	// then look unsigned.
	loader = loader.WithPathFormat(bundle.SlashRooted)
	if !ro.keepTests && ro.verify == nil {
		loader = loader.WithFilter(func(_ string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && isTest(info.Name())
		})
	}
	r := bundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(caps).
		WithProcessAnnotations(true).
		WithSizeLimitBytes(MaxBundleBytes)
	if ro.verify != nil {
		// The signature covers every file, tests included: they are read
		// and verified, then dropped below.
		r = r.WithBundleVerificationConfig(ro.verify).WithSkipBundleVerification(false)
	} else {
		r = r.WithSkipBundleVerification(true)
	}
	b, err := r.Read()
	if err != nil {
		if ro.verify != nil && isVerifyErr(err) {
			return nil, fmt.Errorf("%w: %w", ErrVerification, err)
		}
		return nil, err
	}
	if ro.verify != nil && !ro.keepTests {
		b.Modules = slices.DeleteFunc(b.Modules, func(m bundle.ModuleFile) bool { return isTest(m.Path) })
	}
	b.Manifest.Init()
	if v := b.RegoVersion(ast.RegoV1); v != ast.RegoV1 {
		return nil, fmt.Errorf("manifest declares %s: only Rego v1 is accepted", v)
	}
	for pattern, v := range b.Manifest.FileRegoVersions {
		if v != ast.RegoV1.Int() {
			return nil, fmt.Errorf("manifest declares rego_version %d for %q: only Rego v1 is accepted", v, pattern)
		}
	}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return nil, errors.New("wasm and plan modules are not supported")
	}
	return &b, nil
}

// named fills in the bundle's BundleInfo.
func named(b *bundle.Bundle, fallback, source string) loadedBundle {
	name := fallback
	if n, ok := b.Manifest.Metadata["name"].(string); ok && n != "" {
		name = n
	}
	rev := b.Manifest.Revision
	if rev == "" {
		rev = digest(b)
	}
	return loadedBundle{
		info:   BundleInfo{Name: name, Source: source, Revision: rev, Roots: slices.Clone(*b.Manifest.Roots)},
		bundle: b,
	}
}

// digest is a content revision for bundles whose manifest names none.
func digest(b *bundle.Bundle) string {
	h := sha256.New()
	mods := slices.Clone(b.Modules)
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	for _, m := range mods {
		fmt.Fprintf(h, "%s\x00%d\x00", m.Path, len(m.Raw))
		h.Write(m.Raw)
	}
	if data, err := json.Marshal(b.Data); err == nil {
		h.Write(data)
	}
	roots, _ := json.Marshal(b.Manifest.Roots)
	h.Write(roots)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// newCompiler returns a compiler with the engine's capabilities.
func newCompiler(caps *ast.Capabilities) *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(caps).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(false)
}

// activate compiles the bundles into a fresh compiler and store. Roots must
// be disjoint, and every module must sit under its bundle's roots.
func activate(ctx context.Context, lbs []loadedBundle) (*ast.Compiler, storage.Store, error) {
	caps := Capabilities()
	compiler := newCompiler(caps)
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	m := make(map[string]*bundle.Bundle, len(lbs))
	for _, lb := range lbs {
		m[lb.info.Name] = lb.bundle
	}
	err = bundle.Activate(&bundle.ActivateOpts{
		Ctx:           ctx,
		Store:         store,
		Txn:           txn,
		Compiler:      compiler,
		Metrics:       metrics.New(),
		Bundles:       m,
		ParserOptions: ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: caps},
	})
	if err != nil {
		store.Abort(ctx, txn)
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	if err := store.Commit(ctx, txn); err != nil {
		return nil, nil, fmt.Errorf("commit store: %w", err)
	}
	for _, q := range []string{DecisionQuery, VisibleModelsQuery} {
		if len(compiler.GetRulesExact(ast.MustParseRef(q))) == 0 {
			return nil, nil, fmt.Errorf("%w: no rule defines %s", ErrMissingEntryPoint, q)
		}
	}
	return compiler, store, nil
}
