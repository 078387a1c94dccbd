package rego

import (
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// Spend in the input (DESIGN §6, §11). input.key, input.team and
// input.user carry their limits (from the records, converted once) and,
// when the loaded policy reads them, their spend and budget_reset_at as
// this replica knows them. Spend changes with every call, so a policy that
// reads it is evaluated in full on every call: no specialisation, no memo.

// layerFields are the dynamic fields of a principal layer.
var layerFields = []*ast.Term{kSpend, kResetAt}

// readsSpend reports whether modules read input.key, input.team or
// input.user spend or budget_reset_at, or a field of them they compute.
func readsSpend(modules map[string]*ast.Module) bool {
	found := false
	for _, m := range modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if found || !r.HasPrefix(ast.InputRootRef) || len(r) < 3 {
				return found
			}
			layer := r[1]
			if !layer.Equal(kKey) && !layer.Equal(kTeam) && !layer.Equal(kUser) {
				return false
			}
			if !r[2].IsGround() {
				found = true
				return true
			}
			for _, f := range layerFields {
				if r[2].Equal(f) {
					found = true
				}
			}
			return found
		})
	}
	return found
}

// spendSource holds the engine's SpendReader, set once the limiter exists.
type spendSource struct {
	r atomic.Pointer[gateway.SpendReader]
}

// withSpend returns the principal's terms with each layer's spend and
// budget_reset_at added.
func (e *Engine) withSpend(in *gateway.Input, key, team, user *ast.Term) (*ast.Term, *ast.Term, *ast.Term) {
	p := in.Principal
	if p == nil {
		return key, team, user
	}
	var r gateway.SpendReader
	if rp := e.spend.r.Load(); rp != nil {
		r = *rp
	}
	if p.Key != nil {
		key = addSpend(key, r, gateway.LayerKey, p.Key.ID, p.Key.CreatedAt, &p.Key.Limits, in.Now)
	}
	if p.Team != nil {
		team = addSpend(team, r, gateway.LayerTeam, p.Team.ID, p.Team.CreatedAt, &p.Team.Limits, in.Now)
	}
	if p.User != nil {
		user = addSpend(user, r, gateway.LayerUser, p.User.ID, p.User.CreatedAt, &p.User.Limits, in.Now)
	}
	return key, team, user
}

func addSpend(t *ast.Term, r gateway.SpendReader, layer, id string, created time.Time, lim *gateway.Limits, now time.Time) *ast.Term {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return t
	}
	start, end := lim.Period(created, now)
	spend := 0.0
	if r != nil {
		spend = r.Spend(layer, id, start)
	}
	reset := ast.InternedNullTerm
	if !end.IsZero() {
		reset = timeTerm(end)
	}
	kvs := make([][2]*ast.Term, 0, obj.Len()+2)
	obj.Foreach(func(k, v *ast.Term) { kvs = append(kvs, [2]*ast.Term{k, v}) })
	kvs = append(kvs, [2]*ast.Term{kSpend, ast.FloatNumberTerm(spend)}, [2]*ast.Term{kResetAt, reset})
	return ast.ObjectTerm(kvs...)
}

// SetSpendReader gives the policy the spend of each layer (the limiter's),
// for policies that read input.key.spend and the like.
func (e *Engine) SetSpendReader(r gateway.SpendReader) { e.spend.r.Store(&r) }
