// Package admin is the LiteLLM-compatible admin API (DESIGN §7, §10.8,
// §10.9, §10.15): keys, teams and users written through gateway.Store, and
// /model/info. Every write is validated before it is stored: allow-list
// entries must name something the catalog knows, alias tables must not form
// cycles, and a key's exact entries must lie within its team's rule.
//
// The package does not serve HTTP itself. The edge authenticates the caller,
// asks the policy whether the route is allowed (route class admin, with the
// endpoint's Operation and Self flag; /model/info is class models.list), then
// calls Endpoint.Handle and writes its result as JSON or maps its error.
//
// Virtual keys are stored only as SHA-256 hashes. The plaintext is returned
// once, by /key/generate or /user/new; every other answer shows the hash (as
// LiteLLM's "token") and a display form with at most the last 4 characters.
package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/regate/gateway/gateway"
)

// Catalog is what the admin API needs of the model catalog
// (*catalog.Catalog implements it).
type Catalog interface {
	gateway.Resolver
	// CheckAllowList validates allow-list entries for a principal with these
	// alias tables; it returns nil or a list of per-entry problems.
	CheckAllowList(entries []string, keyAliases, teamAliases map[string]string) error
	// CheckAliases reports cycles, chains too deep and dangling aliases
	// reachable with these alias tables.
	CheckAliases(keyAliases, teamAliases map[string]string) error
	// IsAccessGroup reports whether a deployment names the access group.
	IsAccessGroup(name string) bool
	// Deployments returns every deployment in config order.
	Deployments() []gateway.Deployment
}

// Config configures an API.
type Config struct {
	// Store holds keys, teams and users. Required.
	Store gateway.Store
	// Catalog validates model names and lists deployments. Required.
	Catalog Catalog
	// Authorizer is the policy: it checks a key's models against its team and
	// filters /model/info. Required.
	Authorizer gateway.Authorizer
	// Reports sums usage for /global/spend/report; nil answers that spend
	// is not recorded.
	Reports SpendReporter
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Rand is the source of key material and generated ids; nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives one line per admin write (never a plaintext key);
	// nil discards.
	Logger *slog.Logger
	// Spend reports the spend and budget reset time that /key/info,
	// /team/info, /user/info and the lists show; nil shows spend 0 and
	// budget_reset_at null.
	Spend gateway.SpendReader
	// Unserved reports whether a name refers only to deployments the
	// gateway loads but does not serve (DESIGN §10.16): allow-list and
	// model limit entries naming one are kept, as in the config, and
	// permit nothing. Nil means none.
	Unserved func(name string) bool
}

// API serves the admin endpoints. Create it with New; it is safe for
// concurrent use.
type API struct {
	store   gateway.Store
	catalog Catalog
	authz   gateway.Authorizer
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	reports SpendReporter
	// spendReader is Config.Spend; nil when not set.
	spendReader gateway.SpendReader
	// unserved is Config.Unserved; never nil.
	unserved func(string) bool
}

// New returns an API for cfg.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("admin: Config.Store is required")
	case cfg.Catalog == nil:
		return nil, errors.New("admin: Config.Catalog is required")
	case cfg.Authorizer == nil:
		return nil, errors.New("admin: Config.Authorizer is required")
	}
	a := &API{
		store:   cfg.Store,
		catalog: cfg.Catalog,
		authz:   cfg.Authorizer,
		now:     cfg.Now,
		rand:    cfg.Rand,
		log:     cfg.Logger,
		reports: cfg.Reports,

		spendReader: cfg.Spend,
		unserved:    cfg.Unserved,
	}
	if a.unserved == nil {
		a.unserved = func(string) bool { return false }
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// Endpoint is one admin route.
type Endpoint struct {
	// Method and Path are the HTTP method and the path ("POST",
	// "/key/generate"). Paths carry no /v1 prefix unless LiteLLM's does
	// (/v1/model/info).
	Method, Path string
	// Operation names the route for the policy (input.request.operation),
	// e.g. "key.generate".
	Operation string
	// Self reports whether the request concerns the caller's own key: only
	// key.info sets it (?key= absent, or the caller's key or its hash). Nil
	// means never.
	Self func(p *gateway.Principal, r *http.Request) bool
	// Handle serves the request for an authorized caller. Its result is
	// written as JSON with status 200; its error goes to the edge's mapper.
	Handle func(ctx context.Context, p *gateway.Principal, r *http.Request) (any, error)
}

// Operation names for the policy.
const (
	OpKeyGenerate = "key.generate"
	OpKeyInfo     = "key.info"
	OpKeyUpdate   = "key.update"
	OpKeyDelete   = "key.delete"
	OpKeyList     = "key.list"
	OpKeyBlock    = "key.block"
	OpKeyUnblock  = "key.unblock"
	OpTeamNew     = "team.new"
	OpTeamInfo    = "team.info"
	OpTeamUpdate  = "team.update"
	OpTeamDelete  = "team.delete"
	OpTeamList    = "team.list"
	OpTeamBlock   = "team.block"
	OpTeamUnblock = "team.unblock"
	OpUserNew     = "user.new"
	OpUserInfo    = "user.info"
	OpUserUpdate  = "user.update"
	OpUserDelete  = "user.delete"
	OpUserList    = "user.list"
	// OpModelInfo is /model/info and /v1/model/info. Unlike the others it
	// belongs to route class models.list: every key may call it, and the
	// answer is filtered by the model rule.
	OpModelInfo = "model.info"
)

// Endpoints returns every admin route, /model/info and /v1/model/info
// included.
func (a *API) Endpoints() []Endpoint {
	get, post := http.MethodGet, http.MethodPost
	return []Endpoint{
		{Method: post, Path: "/key/generate", Operation: OpKeyGenerate, Handle: a.keyGenerate},
		{Method: get, Path: "/key/info", Operation: OpKeyInfo, Self: selfKey, Handle: a.keyInfo},
		{Method: post, Path: "/key/update", Operation: OpKeyUpdate, Handle: a.keyUpdate},
		{Method: post, Path: "/key/delete", Operation: OpKeyDelete, Handle: a.keyDelete},
		{Method: get, Path: "/key/list", Operation: OpKeyList, Handle: a.keyList},
		{Method: post, Path: "/key/block", Operation: OpKeyBlock, Handle: a.keyBlock(true)},
		{Method: post, Path: "/key/unblock", Operation: OpKeyUnblock, Handle: a.keyBlock(false)},
		{Method: post, Path: "/team/new", Operation: OpTeamNew, Handle: a.teamNew},
		{Method: get, Path: "/team/info", Operation: OpTeamInfo, Handle: a.teamInfo},
		{Method: post, Path: "/team/update", Operation: OpTeamUpdate, Handle: a.teamUpdate},
		{Method: post, Path: "/team/delete", Operation: OpTeamDelete, Handle: a.teamDelete},
		{Method: get, Path: "/team/list", Operation: OpTeamList, Handle: a.teamList},
		{Method: post, Path: "/team/block", Operation: OpTeamBlock, Handle: a.teamBlock(true)},
		{Method: post, Path: "/team/unblock", Operation: OpTeamUnblock, Handle: a.teamBlock(false)},
		{Method: post, Path: "/user/new", Operation: OpUserNew, Handle: a.userNew},
		{Method: get, Path: "/user/info", Operation: OpUserInfo, Handle: a.userInfo},
		{Method: post, Path: "/user/update", Operation: OpUserUpdate, Handle: a.userUpdate},
		{Method: post, Path: "/user/delete", Operation: OpUserDelete, Handle: a.userDelete},
		{Method: get, Path: "/user/list", Operation: OpUserList, Handle: a.userList},
		{Method: get, Path: "/model/info", Operation: OpModelInfo, Handle: a.modelInfo},
		{Method: get, Path: "/v1/model/info", Operation: OpModelInfo, Handle: a.modelInfo},
		{Method: get, Path: "/global/spend/report", Operation: OpSpendReport, Handle: a.spendReport},
	}
}

// selfKey reports whether a /key/info request asks about the caller's own
// key: no ?key= (or an empty one), or the caller's plaintext key or its hash.
func selfKey(p *gateway.Principal, r *http.Request) bool {
	if p == nil || p.Key == nil || p.Key.ID == "" {
		return false
	}
	k := r.URL.Query().Get("key")
	if k == "" {
		return true
	}
	return k == p.Key.ID || gateway.HashKey(k) == p.Key.ID
}
