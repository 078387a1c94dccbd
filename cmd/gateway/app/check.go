package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/access"
	"github.com/regate/gateway/gateway/config"
)

// CheckPrincipals validates each configured key against its team with the
// policy itself (DESIGN §10.7). The config package has already checked that
// every allow-list entry names something. Entries that name only
// deployments the gateway does not serve (config.Config.UnservedName) are
// left out of the comparison: they permit nothing, and the config package
// has warned about them.
func CheckPrincipals(ctx context.Context, cfg *config.Config, authz gateway.Authorizer) error {
	teams := make(map[string]*gateway.Team, len(cfg.Teams))
	for i := range cfg.Teams {
		teams[cfg.Teams[i].ID] = &cfg.Teams[i]
	}
	var errs []error
	for i := range cfg.Keys {
		k := &cfg.Keys[i].Key
		if k.TeamID == "" {
			continue
		}
		if slices.ContainsFunc(k.Models, cfg.UnservedName) {
			kc := *k
			kc.Models = slices.DeleteFunc(slices.Clone(k.Models), cfg.UnservedName)
			if len(kc.Models) == 0 {
				continue // an empty list would not restrict; nothing left to compare
			}
			k = &kc
		}
		if err := access.KeyWithinTeam(ctx, cfg.Catalog, authz, k, teams[k.TeamID], cfg.Catalog.IsAccessGroup); err != nil {
			name := k.Alias
			if name == "" {
				name = k.Display
			}
			errs = append(errs, fmt.Errorf("gateway_settings.keys[%d] (%s): %w", i, name, err))
		}
	}
	return errors.Join(errs...)
}
