package rego

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// query is one prepared query: the value of a rule (or any reference),
// compiled once and evaluated with OPA's evaluator (topdown) directly.
//
// The rego package's PreparedEvalQuery does the same with more around it:
// per evaluation it builds an evaluation context, result sets and
// expression values, and a query option per feature the gateway does not
// use (metrics, tracers, print hooks, inter-query caches, resolvers). That
// costs about 2 µs an evaluation, a tenth of a decision; so the engine
// keeps only what its queries need. Every compile-time check (capabilities,
// banned built-ins, Rego v1) is the compiler's, so nothing is lost.
type query struct {
	compiler *ast.Compiler
	qc       ast.QueryCompiler
	body     ast.Body // "__result__ = <ref>", compiled
	store    storage.Store
}

// resultVar captures the value of the query's reference: a false value is a
// result, and an undefined one none.
var resultVar = ast.Var("__result__")

// prepareRef prepares the query for the value of ref under c and s.
func prepareRef(c *ast.Compiler, s storage.Store, ref ast.Ref) (*query, error) {
	qc := c.QueryCompiler()
	body, err := qc.Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(resultVar), ast.NewTerm(ref))))
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", ref, err)
	}
	return &query{compiler: c, qc: qc, body: body, store: s}, nil
}

// prepare prepares the query for the value of the reference named by ref
// (for example DecisionQuery).
func prepare(c *ast.Compiler, s storage.Store, ref string) (*query, error) {
	r, err := ast.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", ref, err)
	}
	return prepareRef(c, s, r)
}

// noMetrics is the shared no-op metrics of every evaluation: OPA would
// otherwise allocate a set of timers per evaluation that nobody reads.
var noMetrics = metrics.NoOp()

// run evaluates q with input and returns the reference's value, or
// ErrUndefined; cancel stops the evaluation.
func (q *query) run(ctx context.Context, input ast.Value, cancel topdown.Cancel) (*ast.Term, error) {
	txn, err := q.store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer q.store.Abort(ctx, txn)
	var out *ast.Term
	err = topdown.NewQuery(q.body).
		WithQueryCompiler(q.qc).
		WithCompiler(q.compiler).
		WithStore(q.store).
		WithTransaction(txn).
		WithInput(ast.NewTerm(input)).
		WithMetrics(noMetrics).
		WithCancel(cancel).
		Iter(ctx, func(r topdown.QueryResult) error {
			if out == nil {
				out = r[resultVar]
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, ErrUndefined
	}
	return out, nil
}
