// Package access holds checks that ask the policy about allow-lists before
// they are stored (DESIGN §10.7), so configuration load and admin writes use
// the same rule as requests do.
package access

import (
	"context"
	"fmt"
	"strings"

	"github.com/regate/gateway/gateway"
)

// special reports whether entry is one of the special allow-list values.
func special(entry string) bool {
	switch entry {
	case gateway.AllModels, gateway.AllProxyModels, gateway.AllTeamModels, gateway.NoDefaultModels:
		return true
	}
	return false
}

// KeyWithinTeam checks that every exact entry of a key's allow-list names a
// model its team permits. Globs, access groups and special values are not
// compared with the team's list: the runtime intersection narrows them.
// isAccessGroup reports whether a name is an access group.
func KeyWithinTeam(ctx context.Context, r gateway.Resolver, a gateway.Authorizer, k *gateway.Key, t *gateway.Team, isAccessGroup func(string) bool) error {
	if k == nil || t == nil || len(t.Models) == 0 {
		return nil
	}
	// Ask about the team alone: a key that does not restrict, no user.
	probe := &gateway.Principal{
		Key:  &gateway.Key{ID: k.ID, Alias: k.Alias, TeamID: t.ID, Aliases: k.Aliases},
		Team: t,
	}
	for _, e := range k.Models {
		if special(e) || strings.Contains(e, "*") || isAccessGroup(e) {
			continue
		}
		res := r.Resolve(e, k.Aliases, t.ModelAliases)
		d, err := a.Decide(ctx, &gateway.Input{
			Request:   gateway.RequestInfo{Route: gateway.RouteInference, Operation: "validate.key_models"},
			Principal: probe,
			Model:     &res,
		})
		if err != nil {
			return fmt.Errorf("check key models against team %q: %w", t.ID, err)
		}
		if !d.Allow {
			return fmt.Errorf("models entry %q is not permitted by team %q", e, t.ID)
		}
	}
	return nil
}
