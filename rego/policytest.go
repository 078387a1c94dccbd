package rego

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule.
type TestResult struct {
	// Name is the package-qualified rule: "data.gateway.authz.test_routes".
	Name string
	// Location is file:line of the rule.
	Location string
	// Passed is true when the test and all its cases passed.
	Passed bool
	// Err is set when the test could not be evaluated.
	Err error
	// Cases counts the cases of a table test (rules like test_x[note]).
	Cases int
	// FailedCases names the failing cases of a table test.
	FailedCases []string
}

// String is one line in the style of opa test.
func (r TestResult) String() string {
	switch {
	case r.Passed:
		return r.Name + ": PASS"
	case r.Err != nil:
		return fmt.Sprintf("%s: ERROR (%s): %v", r.Name, r.Location, r.Err)
	case len(r.FailedCases) > 0:
		return fmt.Sprintf("%s: FAIL (%s): %s", r.Name, r.Location, strings.Join(r.FailedCases, "; "))
	default:
		return fmt.Sprintf("%s: FAIL (%s)", r.Name, r.Location)
	}
}

// RunTests compiles fsys the way Load does (same capabilities, Rego v1, the
// default bundle beside bundles that do not replace it) but keeping the
// _test.rego files of the bundles given, runs every test and returns the
// results sorted by name. With no bundles given it tests bundles.Default.
// The error reports a bundle that does not load or compile, not failing
// tests.
func RunTests(ctx context.Context, fsys ...fs.FS) ([]TestResult, error) {
	return runTests(ctx, fsInputs(fsys))
}

// runTests is RunTests for bundles with their sources.
func runTests(ctx context.Context, ins []bundleInput) ([]TestResult, error) {
	lbs, err := readBundles(ins, readOpts{keepTests: true})
	if err != nil {
		return nil, err
	}
	m := make(map[string]*bundle.Bundle, len(lbs))
	for _, lb := range lbs {
		m[lb.info.Name] = lb.bundle
	}
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer store.Abort(ctx, txn)
	compiler := newCompiler(Capabilities()).WithEnablePrintStatements(true)
	ch, err := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetBundles(m).
		CapturePrintOutput(true).
		SetTimeout(30*time.Second).
		RunTests(ctx, txn)
	if err != nil {
		return nil, fmt.Errorf("compile tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{
			Name:   r.Package + "." + r.Name,
			Passed: r.Pass(),
			Err:    r.Error,
		}
		if r.Location != nil {
			tr.Location = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		r.SubResults.Iter(func(path []string, sr *tester.SubResult) bool {
			if len(sr.SubResults) > 0 {
				return true // an inner node; its leaves are counted
			}
			tr.Cases++
			if sr.Fail {
				tr.FailedCases = append(tr.FailedCases, strings.Join(path, " / "))
			}
			return true
		})
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
