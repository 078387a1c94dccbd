package rego

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

// What a call asks for (DESIGN §6, second part): input.request.params,
// body, client_ip and headers. Each is built only when the loaded policy
// reads it (inputReads), so a policy that reads none of them pays nothing.

// credentialHeaders never appear in input.request.headers.
var credentialHeaders = map[string]bool{
	"authorization": true, "api-key": true, "x-api-key": true, "cookie": true, "proxy-authorization": true,
}

// paramsTerm is input.request.params (openai.Params), with only the names
// in want when the policy reads only those (nil: all of them).
func paramsTerm(r *gateway.RequestInfo, want map[string]bool) *ast.Term {
	if len(r.Body) == 0 {
		return ast.InternedEmptyObject
	}
	v, err := ast.InterfaceToValue(openai.ParamsOf(r.Body, r.ContentType, want))
	if err != nil {
		return ast.InternedEmptyObject
	}
	return ast.NewTerm(v)
}

// jsonTerm converts a JSON value; nil when it does not parse.
func jsonTerm(raw []byte) *ast.Term {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil
	}
	return ast.NewTerm(v)
}

// bodyTerm is input.request.body: the whole parsed JSON body (null when
// there is none or it is not JSON).
func bodyTerm(r *gateway.RequestInfo) *ast.Term {
	if len(r.Body) == 0 || (r.Body[0] != '{' && !bytes.HasPrefix(bytes.TrimSpace(r.Body), []byte("{"))) {
		return ast.InternedNullTerm
	}
	if t := jsonTerm(bytes.TrimSpace(r.Body)); t != nil {
		return t
	}
	return ast.InternedNullTerm
}

// headersTerm is input.request.headers: lower-case names, the first value
// of each, credentials left out.
func headersTerm(r *gateway.RequestInfo) *ast.Term {
	kvs := make([][2]*ast.Term, 0, len(r.Header))
	for k, vs := range r.Header {
		name := strings.ToLower(k)
		if credentialHeaders[name] || len(vs) == 0 {
			continue
		}
		kvs = append(kvs, [2]*ast.Term{ast.StringTerm(name), ast.StringTerm(vs[0])})
	}
	return ast.ObjectTerm(kvs...)
}

// paramNames returns the names of input.request.params that modules read,
// or nil when they read params as a whole or by a name they compute.
func paramNames(modules map[string]*ast.Module) map[string]bool {
	names := map[string]bool{}
	all := false
	params := ast.MustParseRef("input.request.params")
	for _, m := range modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if all || !r.HasPrefix(ast.InputRootRef) {
				return all
			}
			g := r.GroundPrefix()
			switch {
			case len(g) < 3 && (len(g) < 2 || g[1].Equal(kRequest)):
				all = true // input, or input.request, read whole or by a computed name
			case g.HasPrefix(params) && len(g) == 3:
				all = true
			case g.HasPrefix(params):
				if s, ok := g[3].Value.(ast.String); ok {
					names[string(s)] = true
				} else {
					all = true
				}
			}
			return all
		})
	}
	if all {
		return nil
	}
	return names
}
