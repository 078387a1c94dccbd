package rego

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

// CustomLayer is Layer.Layer of the custom rules' report in an Explanation.
const CustomLayer = "custom"

// Explanation is the answer of POST /admin/policy/explain (DESIGN §10.12):
// what the policy decided for one input, and why, layer by layer.
type Explanation struct {
	// Revision is the policy revision that answered.
	Revision string `json:"revision"`
	// Input is the input document the gateway built, as JSON values.
	Input any `json:"input"`
	// Decision is data.gateway.authz.decision, as the gateway evaluates it.
	Decision gateway.Decision `json:"decision"`
	// Error is the evaluation error when the decision failed closed.
	Error string `json:"error,omitempty"`
	// Chain is the alias chain of input.model; empty without a model.
	Chain []gateway.ChainLink `json:"chain"`
	// Layers reports the model rule for the key, team and user layers (when
	// the input names a model and the policy defines the layers rule), then
	// the custom layer: whether package gateway.custom has deny rules,
	// whether none denied, and the messages of those that did.
	Layers []ExplainLayer `json:"layers"`
	// Custom lists the deny messages of package gateway.custom, sorted;
	// empty when none denied.
	Custom []string `json:"custom"`
	// Visible lists the ids of input.candidates the caller may see, for a
	// models.list input with candidates; nil otherwise.
	Visible []string `json:"visible,omitempty"`
}

// ExplainLayer is one layer of an Explanation.
type ExplainLayer struct {
	Layer
	// DeniedBy lists the messages of the rules that denied, for the custom
	// layer; empty otherwise.
	DeniedBy []string `json:"denied_by,omitempty"`
}

// Explain evaluates the policy for in as a request would, and reports the
// input document, the decision, the alias chain and each layer's verdict. It
// is for the explain endpoint: slower than Decide, never on the request path.
func (e *Engine) Explain(ctx context.Context, in *gateway.Input) (Explanation, error) {
	if in == nil {
		return Explanation{}, errors.New("explain: nil input")
	}
	st := e.cur.Load()
	x := Explanation{Revision: st.revision, Chain: []gateway.ChainLink{}, Layers: []ExplainLayer{}, Custom: []string{}}
	v, err := e.inputValue(in)
	if err != nil {
		return x, fmt.Errorf("explain: %w", err)
	}
	if x.Input, err = ast.JSON(v); err != nil {
		return x, fmt.Errorf("explain: input: %w", err)
	}
	if in.Model != nil {
		x.Chain = append(x.Chain, in.Model.Chain...)
	}
	x.Decision, err = e.Decide(ctx, in)
	if err != nil {
		x.Error = err.Error()
	}
	if in.Model != nil && st.layers != nil {
		ls, err := e.Layers(ctx, in)
		switch {
		case err == nil:
			for _, l := range ls {
				x.Layers = append(x.Layers, ExplainLayer{Layer: l})
			}
		case !errors.Is(err, ErrUndefined):
			return x, fmt.Errorf("explain: %w", err)
		}
	}
	custom := ExplainLayer{Layer: Layer{Layer: CustomLayer, Allowed: true}}
	if st.custom != nil {
		custom.Restricts = true
		t, err := e.eval(ctx, st.custom, v)
		switch {
		case errors.Is(err, ErrUndefined):
		case err != nil:
			return x, fmt.Errorf("explain: custom rules: %w", err)
		default:
			x.Custom = denyMessages(t)
		}
		if len(x.Custom) > 0 {
			custom.Allowed = false
			custom.DeniedBy = x.Custom
		}
	}
	x.Layers = append(x.Layers, custom)
	if in.Candidates != nil {
		vis, err := e.VisibleModels(ctx, in)
		if err != nil {
			return x, fmt.Errorf("explain: %w", err)
		}
		x.Visible = make([]string, 0, len(vis))
		for id := range vis {
			x.Visible = append(x.Visible, id)
		}
		slices.Sort(x.Visible)
	}
	return x, nil
}

// denyMessages turns the custom deny set into sorted strings, formatting
// non-strings the way the default policy does.
func denyMessages(t *ast.Term) []string {
	out := []string{} // [] in JSON, never null
	add := func(m *ast.Term) {
		if s, ok := m.Value.(ast.String); ok {
			out = append(out, string(s))
		} else {
			out = append(out, m.String())
		}
	}
	switch v := t.Value.(type) {
	case ast.Set:
		v.Foreach(add)
	case *ast.Array:
		v.Foreach(add)
	default:
		add(t)
	}
	slices.Sort(out)
	return out
}
