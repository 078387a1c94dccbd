package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/access"
)

// userRoles are the user roles LiteLLM knows.
var userRoles = []string{
	gateway.RoleProxyAdmin, "proxy_admin_viewer",
	gateway.RoleInternalUser, "internal_user_viewer",
	"team", "customer",
}

// deleteAll deletes the records of kind with ids, all or none: every id
// must name a record (as LiteLLM refuses a partial delete), else the error
// names the first that does not.
func deleteAll[T any](ctx context.Context, kind string, ids []string, get func(context.Context, string) (T, error), del func(context.Context, []string) ([]string, error)) ([]string, error) {
	for _, id := range ids {
		if _, err := get(ctx, id); err != nil {
			return nil, storeError("get", kind, id, err)
		}
	}
	deleted, err := del(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("delete %ss: %w", kind, err)
	}
	return deleted, nil
}

// storeError translates a store error for a record of kind and id into the
// error the edge maps: missing → *gateway.NotFoundError, duplicate →
// *gateway.ConflictError; others (ErrUnavailable included) are wrapped.
func storeError(op, kind, id string, err error) error {
	switch {
	case errors.Is(err, gateway.ErrNotFound):
		return &gateway.NotFoundError{Kind: kind, ID: id}
	case errors.Is(err, gateway.ErrConflict):
		return &gateway.ConflictError{Kind: kind, ID: id}
	default:
		return fmt.Errorf("%s %s %s: %w", op, kind, id, err)
	}
}

// problems joins the messages of a validation error (a catalog ErrorList or
// a single error) for a client.
func problems(err error) string {
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		var msgs []string
		for _, e := range list.Unwrap() {
			msgs = append(msgs, e.Error())
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

// aliasProblems reports the alias problems reachable with the tables
// (keyAliases, teamAliases) that are not already reachable with (baseKey,
// baseTeam): the problems a write would introduce. Problems of the
// configuration itself (a dangling global alias, say) therefore never block
// an unrelated write.
func (a *API) aliasProblems(keyAliases, teamAliases, baseKey, baseTeam map[string]string) []string {
	err := a.catalog.CheckAliases(keyAliases, teamAliases)
	if err == nil {
		return nil
	}
	known := make(map[string]struct{})
	if base := a.catalog.CheckAliases(baseKey, baseTeam); base != nil {
		for _, e := range unwrapAll(base) {
			known[e.Error()] = struct{}{}
		}
	}
	var out []string
	for _, e := range unwrapAll(err) {
		if _, ok := known[e.Error()]; !ok {
			out = append(out, e.Error())
		}
	}
	return out
}

func unwrapAll(err error) []error {
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		return list.Unwrap()
	}
	return []error{err}
}

// validateKey checks a key about to be stored; team is the key's team (nil
// for none). Alias tables first, since allow-list entries may name aliases.
func (a *API) validateKey(ctx context.Context, k *gateway.Key, team *gateway.Team) error {
	var teamAliases map[string]string
	if team != nil {
		teamAliases = team.ModelAliases
	}
	if ps := a.aliasProblems(k.Aliases, teamAliases, nil, teamAliases); len(ps) > 0 {
		return badRequest("aliases", "Invalid aliases: %s.", strings.Join(ps, "; "))
	}
	if err := a.catalog.CheckAllowList(a.served(k.Models), k.Aliases, teamAliases); err != nil {
		return badRequest("models", "Invalid models: %s.", problems(err))
	}
	if err := a.checkModelLimits(k.ModelLimits, k.Aliases, teamAliases); err != nil {
		return err
	}
	if team == nil {
		return nil
	}
	// The team's own blocked flag must not make every entry look outside
	// the team's list: blocking is checked per request.
	probe := *team
	probe.Blocked = false
	kp := *k
	kp.Models = a.served(k.Models)
	if err := access.KeyWithinTeam(ctx, a.catalog, a.authz, &kp, &probe, a.catalog.IsAccessGroup); err != nil {
		if errors.Unwrap(err) != nil {
			// A policy evaluation failure, not a refusal.
			return fmt.Errorf("validate key models: %w", err)
		}
		return badRequest("models", "Invalid models: %s.", err.Error())
	}
	return nil
}

// served drops the entries that name only unserved deployments: they are
// kept, as the config keeps them, and permit nothing (DESIGN §10.16).
func (a *API) served(models []string) []string {
	if !slices.ContainsFunc(models, a.unserved) {
		return models
	}
	return slices.DeleteFunc(slices.Clone(models), a.unserved)
}

// validateTeam checks a team about to be stored.
func (a *API) validateTeam(t *gateway.Team) error {
	if ps := a.aliasProblems(nil, t.ModelAliases, nil, nil); len(ps) > 0 {
		return badRequest("model_aliases", "Invalid model_aliases: %s.", strings.Join(ps, "; "))
	}
	if err := a.catalog.CheckAllowList(a.served(t.Models), nil, t.ModelAliases); err != nil {
		return badRequest("models", "Invalid models: %s.", problems(err))
	}
	return nil
}

// validateTeamKeys checks that the team's new alias table forms no cycle or
// dead end with the alias tables of its keys.
func (a *API) validateTeamKeys(t *gateway.Team, keys []*gateway.Key) error {
	for _, k := range keys {
		if len(k.Aliases) == 0 {
			continue
		}
		if ps := a.aliasProblems(k.Aliases, t.ModelAliases, nil, t.ModelAliases); len(ps) > 0 {
			return badRequest("model_aliases", "Invalid model_aliases: with the aliases of key %s of this team: %s.", k.Display, strings.Join(ps, "; "))
		}
	}
	return nil
}

// validateUser checks a user about to be stored.
func (a *API) validateUser(u *gateway.User) error {
	if !validRole(u.Role) {
		return badRequest("user_role", "Invalid user_role %q: want one of %s.", u.Role, strings.Join(userRoles, ", "))
	}
	if err := a.catalog.CheckAllowList(a.served(u.Models), nil, nil); err != nil {
		return badRequest("models", "Invalid models: %s.", problems(err))
	}
	return nil
}

func validRole(r string) bool {
	for _, x := range userRoles {
		if r == x {
			return true
		}
	}
	return false
}

// teamFor returns the team a key refers to, nil for none. A team that does
// not exist is a 400: the request is wrong, not the URL.
func (a *API) teamFor(ctx context.Context, id string) (*gateway.Team, error) {
	if id == "" {
		return nil, nil
	}
	t, err := a.store.GetTeam(ctx, id)
	if errors.Is(err, gateway.ErrNotFound) {
		return nil, badRequest("team_id", "Invalid team_id %q: no such team.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get team %s: %w", id, err)
	}
	return t, nil
}

// checkUser checks that a user a key refers to exists.
func (a *API) checkUser(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	_, err := a.store.GetUser(ctx, id)
	if errors.Is(err, gateway.ErrNotFound) {
		return badRequest("user_id", "Invalid user_id %q: no such user.", id)
	}
	if err != nil {
		return fmt.Errorf("get user %s: %w", id, err)
	}
	return nil
}
