package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/regate/gateway/gateway"
)

// modelInfo serves /model/info and /v1/model/info. An admin (a caller the
// policy admits to admin routes) sees every deployment, wildcard ones
// included. Anyone else sees the deployments of the exact model groups it
// may use by the model rule: the candidates of GET /v1/models, filtered by
// the policy's visible_models, each resolved to its model group. A group
// reached only through an alias still counts: the caller can use its
// deployments. Names served by wildcard deployments are left out for
// non-admins, so patterns are never revealed. Each deployment shows its
// whole effective model_info (limits, prices, the configured fields the
// gateway does not read); provider keys are never shown.
func (a *API) modelInfo(ctx context.Context, p *gateway.Principal, r *http.Request) (any, error) {
	id := r.URL.Query().Get("litellm_model_id")
	admin, err := a.isAdmin(ctx, p, r)
	if err != nil {
		return nil, err
	}
	var groups map[string]struct{}
	if !admin {
		if groups, err = a.permittedGroups(ctx, p, r); err != nil {
			return nil, err
		}
	}
	resp := ModelInfoResponse{Data: []ModelInfo{}}
	for _, d := range a.catalog.Deployments() {
		if id != "" && d.ID != id {
			continue
		}
		if !admin {
			if strings.Contains(d.ModelName, "*") {
				continue
			}
			if _, ok := groups[d.ModelName]; !ok {
				continue
			}
		}
		resp.Data = append(resp.Data, ModelInfo{
			ModelName: d.ModelName,
			LiteLLMParams: LiteLLMParams{
				Model:      d.ProviderModel,
				APIBase:    d.APIBase,
				APIVersion: d.APIVersion,
			},
			ModelInfo: ModelMeta{
				ID:              d.ID,
				AccessGroups:    nonNilList(d.AccessGroups),
				Provider:        d.Provider,
				LiteLLMProvider: d.Provider,
				Info:            d.Info,
			},
		})
	}
	return resp, nil
}

// isAdmin asks the policy whether p may use admin routes, as it would for
// any admin route. A deny is an answer, not an error.
func (a *API) isAdmin(ctx context.Context, p *gateway.Principal, r *http.Request) (bool, error) {
	d, err := a.authz.Decide(ctx, &gateway.Input{
		Request:   a.requestInfo(r, gateway.RouteAdmin),
		Principal: p,
		Now:       a.now(),
	})
	if err != nil {
		// Fail closed: the caller gets the filtered view.
		a.log.Warn("admin: model info admin check failed", "error", err)
		return false, nil
	}
	return d.Allow, nil
}

// permittedGroups returns the exact model groups p may use.
func (a *API) permittedGroups(ctx context.Context, p *gateway.Principal, r *http.Request) (map[string]struct{}, error) {
	ka, ta := p.KeyAliases(), p.TeamAliases()
	cands := a.catalog.Candidates(ka, ta)
	visible, err := a.authz.VisibleModels(ctx, &gateway.Input{
		Request:    a.requestInfo(r, gateway.RouteModelsList),
		Principal:  p,
		Candidates: cands,
		Now:        a.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("model info: visible models: %w", err)
	}
	groups := make(map[string]struct{}, len(visible))
	for _, c := range cands.Items {
		if _, ok := visible[c.ID]; !ok {
			continue
		}
		res := a.catalog.Resolve(c.ID, ka, ta)
		if res.Found && res.Wildcard == "" {
			groups[res.Resolved] = struct{}{}
		}
	}
	return groups, nil
}

func (a *API) requestInfo(r *http.Request, route string) gateway.RequestInfo {
	return gateway.RequestInfo{
		ID:        r.Header.Get("X-Request-Id"),
		Route:     route,
		Operation: OpModelInfo,
		Method:    r.Method,
		Path:      r.URL.Path,
	}
}
