package rego

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

var (
	kAllow        = ast.StringTerm("allow")
	kStatus       = ast.StringTerm("status")
	kCode         = ast.StringTerm("code")
	kMessage      = ast.StringTerm("message")
	kReasons      = ast.StringTerm("reasons")
	kRestricts    = ast.StringTerm("restricts")
	kAllowed      = ast.StringTerm("allowed")
	kMatchedEntry = ast.StringTerm("matched_entry")
)

// parseDecision checks a decision's shape. allow must be a boolean and
// status an integer: 2xx for an allow, 4xx or 5xx for a deny. code and
// message, when present, are strings; reasons an array of strings. A deny
// with an empty code or message gets the generic one.
func parseDecision(t *ast.Term) (gateway.Decision, error) {
	var d gateway.Decision
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return d, fmt.Errorf("%w: decision is %s, not an object", ErrMalformed, ast.ValueName(t.Value))
	}
	allow, ok := field(obj, kAllow).(ast.Boolean)
	if !ok {
		return d, fmt.Errorf("%w: decision.allow is not a boolean", ErrMalformed)
	}
	d.Allow = bool(allow)
	n, ok := field(obj, kStatus).(ast.Number)
	if !ok {
		return d, fmt.Errorf("%w: decision.status is not a number", ErrMalformed)
	}
	status, ok := n.Int()
	if !ok {
		return d, fmt.Errorf("%w: decision.status %s is not an integer", ErrMalformed, n)
	}
	if d.Allow && (status < 200 || status > 299) || !d.Allow && (status < 400 || status > 599) {
		return d, fmt.Errorf("%w: decision.status %d does not fit allow=%t", ErrMalformed, status, d.Allow)
	}
	d.Status = status
	var err error
	if d.Code, err = optString(obj, kCode); err != nil {
		return d, err
	}
	if d.Message, err = optString(obj, kMessage); err != nil {
		return d, err
	}
	if r := field(obj, kReasons); r != nil {
		arr, ok := r.(*ast.Array)
		if !ok {
			return d, fmt.Errorf("%w: decision.reasons is not an array", ErrMalformed)
		}
		d.Reasons = make([]string, 0, arr.Len())
		for i := range arr.Len() {
			s, ok := arr.Elem(i).Value.(ast.String)
			if !ok {
				return d, fmt.Errorf("%w: decision.reasons[%d] is not a string", ErrMalformed, i)
			}
			d.Reasons = append(d.Reasons, string(s))
		}
	}
	if !d.Allow {
		generic := failClosed()
		if d.Code == "" {
			d.Code = generic.Code
		}
		if d.Message == "" {
			d.Message = generic.Message
		}
	}
	return d, nil
}

// parseVisible turns a set (or array) of ids into a map, keeping only ids
// that are candidates.
func parseVisible(t *ast.Term, candidate func(id string) bool) (map[string]struct{}, error) {
	out := make(map[string]struct{})
	add := func(x *ast.Term) error {
		s, ok := x.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%w: visible_models holds a %s", ErrMalformed, ast.ValueName(x.Value))
		}
		if candidate(string(s)) {
			out[string(s)] = struct{}{}
		}
		return nil
	}
	switch v := t.Value.(type) {
	case ast.Set:
		if err := v.Iter(add); err != nil {
			return map[string]struct{}{}, err
		}
	case *ast.Array:
		for i := range v.Len() {
			if err := add(v.Elem(i)); err != nil {
				return map[string]struct{}{}, err
			}
		}
	default:
		return out, fmt.Errorf("%w: visible_models is %s, not a set", ErrMalformed, ast.ValueName(t.Value))
	}
	return out, nil
}

// parseLayers reads the layers object, in layerOrder.
func parseLayers(t *ast.Term) ([]Layer, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("%w: layers is %s, not an object", ErrMalformed, ast.ValueName(t.Value))
	}
	out := make([]Layer, 0, len(layerOrder))
	for _, name := range layerOrder {
		lt := obj.Get(ast.StringTerm(name))
		if lt == nil {
			return nil, fmt.Errorf("%w: layers.%s is missing", ErrMalformed, name)
		}
		lo, ok := lt.Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("%w: layers.%s is not an object", ErrMalformed, name)
		}
		r, ok1 := field(lo, kRestricts).(ast.Boolean)
		a, ok2 := field(lo, kAllowed).(ast.Boolean)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: layers.%s needs boolean restricts and allowed", ErrMalformed, name)
		}
		l := Layer{Layer: name, Restricts: bool(r), Allowed: bool(a)}
		switch m := field(lo, kMatchedEntry).(type) {
		case ast.String:
			l.MatchedEntry = string(m)
		case ast.Null, nil:
		default:
			return nil, fmt.Errorf("%w: layers.%s.matched_entry is %s", ErrMalformed, name, ast.ValueName(m))
		}
		out = append(out, l)
	}
	return out, nil
}

// field returns the value under k, or nil.
func field(obj ast.Object, k *ast.Term) ast.Value {
	if v := obj.Get(k); v != nil {
		return v.Value
	}
	return nil
}

// optString returns the string under k, "" when absent.
func optString(obj ast.Object, k *ast.Term) (string, error) {
	switch v := field(obj, k).(type) {
	case nil:
		return "", nil
	case ast.String:
		return string(v), nil
	default:
		return "", fmt.Errorf("%w: decision.%s is not a string", ErrMalformed, k.Value.(ast.String))
	}
}
