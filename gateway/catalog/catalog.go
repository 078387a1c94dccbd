// Package catalog holds the configured models: model groups and their
// deployments, wildcard deployments, access groups and global aliases. It
// resolves a requested model name through the alias chain to the deployments
// that serve it (DESIGN §5, §10.1–§10.5), lists the candidate ids for
// GET /v1/models, and validates alias tables and allow-lists.
//
// A Catalog is immutable after New and safe for concurrent use. Resolve and
// Candidates return slices that may be shared between calls: treat every
// slice in a returned Resolution or CandidateList as read-only.
package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/regate/gateway/gateway"
)

// MaxAliasHops is the longest alias chain Resolve follows; a chain with more
// alias hops is too deep (DESIGN §5).
const MaxAliasHops = 8

// OwnerGateway is Candidate.OwnedBy for an id whose first hop is an alias: an
// alias is a name the gateway's operator made up, so it is owned by the
// gateway rather than by the provider it currently points at.
const OwnerGateway = "gateway"

// Alias is one global alias (router_settings.model_group_alias).
type Alias struct {
	// Name is the name clients send.
	Name string
	// Target is the name Name stands for: a model group, another alias, or a
	// name a wildcard deployment serves.
	Target string
	// Hidden aliases are callable and retrievable but left out of listings.
	Hidden bool
}

var _ gateway.Resolver = (*Catalog)(nil)

// InfoLookup returns what a built-in catalog knows of a provider's model
// (limits, prices), or false when it knows nothing.
type InfoLookup func(provider, upstreamModel string) (gateway.ModelInfo, bool)

// Catalog is the immutable model catalog. It implements gateway.Resolver.
type Catalog struct {
	deployments []gateway.Deployment
	// info fills in what deployments do not configure; nil for nothing,
	// and nil after New when no wildcard deployment looks names up.
	info InfoLookup

	groups     map[string]*group
	groupNames []string
	wildcards  []*wildcard // most specific first
	// decoy is the wildcard whose serving a name not found mimics (the
	// first that substitutes names, else the first); nil without wildcards.
	decoy *wildcard

	global map[string]Alias

	accessGroups     map[string]struct{}
	accessGroupNames []string

	// static holds the resolution, for a caller without alias tables of its
	// own, of every exact model group and every global alias.
	static map[string]*gateway.Resolution
	// hops lists, for every static id, the names its resolution looked up:
	// the alias names and the final name. A caller whose key or team alias
	// table holds one of them resolves that id differently.
	hops map[string][]string
	// dependents maps a name to the static ids whose hops include it.
	dependents map[string][]string
	// shared is the candidate list of every caller without alias tables;
	// sharedIndex maps its ids to their positions.
	shared      *gateway.CandidateList
	sharedIndex map[string]int
	// aliased caches the lists of callers with alias tables.
	aliased aliasedLists
	// resolutions caches the resolutions outside static.
	resolutions resolutionCache
}

// group is one exact model group with its precomputed chain tail.
type group struct {
	tail         []gateway.ChainLink // model_group link, then provider models
	names        []string            // group name, then distinct provider models
	accessGroups []string
	deployments  []gateway.Deployment
	at           []int // positions in Catalog.deployments, while New runs
}

// wildcard is the set of deployments sharing one wildcard pattern.
type wildcard struct {
	pattern      string
	lits         []string // pattern split at '*': len(lits) == stars+1
	prefixLen    int      // len(lits[0])
	stars        int
	literalLen   int // total length of the literal text
	order        int // index of the first deployment with this pattern
	deployments  []gateway.Deployment
	accessGroups []string
	// substitute reports, per deployment, whether its ProviderModel has '*'.
	substitute []bool
}

// New builds a catalog from deployments in config order and the global
// aliases. It refuses malformed deployments (empty names, a provider model
// with more '*' than its model name, duplicate ids) and malformed global
// aliases (empty or duplicate names, cycles, chains over MaxAliasHops). A
// global alias whose target resolves to nothing is accepted here; CheckAliases
// reports it. The returned error, when not nil, is an ErrorList.
func New(deployments []gateway.Deployment, aliases []Alias) (*Catalog, error) {
	return NewWithInfo(deployments, aliases, nil)
}

// NewWithInfo is New with a built-in catalog: each deployment's Info, as
// configured, overrides field by field what info knows of its provider and
// upstream model. A wildcard deployment whose provider model has a '*' is
// looked up per name it serves, in Resolve.
func NewWithInfo(deployments []gateway.Deployment, aliases []Alias, info InfoLookup) (*Catalog, error) {
	c := &Catalog{
		info:         info,
		groups:       make(map[string]*group),
		global:       make(map[string]Alias, len(aliases)),
		accessGroups: make(map[string]struct{}),
	}
	var errs ErrorList
	errs = append(errs, c.addDeployments(deployments)...)
	errs = append(errs, c.addAliases(aliases)...)
	if len(errs) > 0 {
		return nil, errs
	}
	for _, a := range sortedKeys(c.global) {
		res, st, next := c.walk(a, nil, nil)
		if st == statusCycle || st == statusTooDeep {
			errs = append(errs, newChainError(st, gateway.SourceGlobal, a, res.Names, next))
		}
	}
	if len(errs) > 0 {
		return nil, dedupe(errs)
	}
	c.precompute()
	if i := slices.IndexFunc(c.wildcards, func(w *wildcard) bool { return slices.Contains(w.substitute, true) }); i >= 0 {
		c.decoy = c.wildcards[i]
	} else {
		// Only a wildcard deployment whose provider model has a '*' looks
		// names up after this; without one, the built-in catalog behind
		// info can be collected.
		c.info = nil
		if len(c.wildcards) > 0 {
			c.decoy = c.wildcards[0]
		}
	}
	return c, nil
}

func (c *Catalog) addDeployments(deployments []gateway.Deployment) []error {
	var errs []error
	ids := make(map[string]int)
	byPattern := make(map[string]*wildcard)
	c.deployments = make([]gateway.Deployment, 0, len(deployments))
	for i, d := range deployments {
		fail := func(reason string) {
			errs = append(errs, &DeploymentError{Index: i, ID: d.ID, ModelName: d.ModelName, Reason: reason})
		}
		pStars := strings.Count(d.ModelName, "*")
		qStars := strings.Count(d.ProviderModel, "*")
		switch {
		case d.ModelName == "":
			fail("empty model_name")
			continue
		case d.ProviderModel == "":
			fail("empty provider model")
			continue
		case qStars > pStars:
			fail(fmt.Sprintf("provider model %q has more '*' than model_name", d.ProviderModel))
			continue
		}
		if d.ID != "" {
			if j, ok := ids[d.ID]; ok {
				fail(fmt.Sprintf("duplicate deployment id %q (also deployment %d)", d.ID, j))
				continue
			}
			ids[d.ID] = i
		}
		d.AccessGroups = uniqueSorted(d.AccessGroups)
		if d.UpstreamModel == "" && qStars == 0 {
			d.UpstreamModel = UpstreamModel(d.Provider, d.ProviderModel)
		}
		if qStars == 0 {
			d.Info = c.effectiveInfo(d.Provider, d.UpstreamModel, d.Info)
		}
		c.deployments = append(c.deployments, d)
		for _, ag := range d.AccessGroups {
			c.accessGroups[ag] = struct{}{}
		}
		if pStars == 0 {
			g := c.groups[d.ModelName]
			if g == nil {
				g = &group{}
				c.groups[d.ModelName] = g
			}
			g.at = append(g.at, len(c.deployments)-1)
			continue
		}
		w := byPattern[d.ModelName]
		if w == nil {
			lits := strings.Split(d.ModelName, "*")
			w = &wildcard{
				pattern:    d.ModelName,
				lits:       lits,
				prefixLen:  len(lits[0]),
				stars:      pStars,
				literalLen: len(d.ModelName) - pStars,
				order:      i,
			}
			byPattern[d.ModelName] = w
			c.wildcards = append(c.wildcards, w)
		}
		w.deployments = append(w.deployments, d)
		w.substitute = append(w.substitute, qStars > 0)
	}
	for name, g := range c.groups {
		g.deployments = c.groupDeployments(g.at)
		g.at = nil
		c.groupNames = append(c.groupNames, name)
		g.tail = append(g.tail, gateway.ChainLink{Name: name, Kind: gateway.LinkModelGroup})
		g.names = append(g.names, name)
		var ags []string
		for _, d := range g.deployments {
			ags = append(ags, d.AccessGroups...)
			if !slices.ContainsFunc(g.tail[1:], func(l gateway.ChainLink) bool { return l.Name == d.ProviderModel }) {
				g.tail = append(g.tail, gateway.ChainLink{Name: d.ProviderModel, Kind: gateway.LinkProviderModel})
			}
			if !slices.Contains(g.names, d.ProviderModel) {
				g.names = append(g.names, d.ProviderModel)
			}
		}
		g.tail = slices.Clip(g.tail)
		g.names = slices.Clip(g.names)
		g.accessGroups = uniqueSorted(ags)
	}
	sort.Strings(c.groupNames)
	for _, w := range c.wildcards {
		var ags []string
		for _, d := range w.deployments {
			ags = append(ags, d.AccessGroups...)
		}
		w.accessGroups = uniqueSorted(ags)
	}
	// Most specific first: longest literal prefix, then fewest '*', then most
	// literal text, then config order.
	sort.SliceStable(c.wildcards, func(i, j int) bool {
		a, b := c.wildcards[i], c.wildcards[j]
		if a.prefixLen != b.prefixLen {
			return a.prefixLen > b.prefixLen
		}
		if a.stars != b.stars {
			return a.stars < b.stars
		}
		if a.literalLen != b.literalLen {
			return a.literalLen > b.literalLen
		}
		return a.order < b.order
	})
	c.accessGroupNames = sortedKeys(c.accessGroups)
	return errs
}

// groupDeployments returns the deployments at positions at (ascending) of
// c.deployments. Adjacent ones, as a group's usually are, share
// c.deployments' array, which nothing changes after New, instead of a copy
// per group (about 250 bytes per deployment).
func (c *Catalog) groupDeployments(at []int) []gateway.Deployment {
	first, last := at[0], at[len(at)-1]
	if last-first == len(at)-1 {
		return c.deployments[first : last+1 : last+1]
	}
	out := make([]gateway.Deployment, len(at))
	for i, j := range at {
		out[i] = c.deployments[j]
	}
	return out
}

func (c *Catalog) addAliases(aliases []Alias) []error {
	var errs []error
	for _, a := range aliases {
		switch {
		case a.Name == "":
			errs = append(errs, &AliasError{Kind: AliasInvalid, Source: gateway.SourceGlobal, Name: a.Name, Reason: "empty alias name"})
		case a.Target == "":
			errs = append(errs, &AliasError{Kind: AliasInvalid, Source: gateway.SourceGlobal, Name: a.Name, Reason: "empty target"})
		default:
			if _, dup := c.global[a.Name]; dup {
				errs = append(errs, &AliasError{Kind: AliasInvalid, Source: gateway.SourceGlobal, Name: a.Name, Reason: "defined twice"})
				continue
			}
			c.global[a.Name] = a
		}
	}
	return errs
}

// precompute resolves every exact group and global alias for a caller
// without alias tables, indexes which names each resolution depends on, and
// builds the shared candidate list.
func (c *Catalog) precompute() {
	ids := make([]string, 0, len(c.groupNames)+len(c.global))
	ids = append(ids, c.groupNames...)
	for name := range c.global {
		if _, isGroup := c.groups[name]; !isGroup {
			ids = append(ids, name)
		}
	}
	sort.Strings(ids)
	c.static = make(map[string]*gateway.Resolution, len(ids))
	c.hops = make(map[string][]string, len(ids))
	c.dependents = make(map[string][]string)
	items := make([]gateway.Candidate, 0, len(ids))
	for _, id := range ids {
		res, _, _ := c.walk(id, nil, nil)
		c.static[id] = &res
		hops := make([]string, 0, len(res.Chain)+1)
		for _, l := range res.Chain {
			if l.Kind == gateway.LinkAlias {
				hops = append(hops, l.Name)
			}
		}
		hops = append(hops, finalName(&res))
		c.hops[id] = hops
		for _, h := range hops {
			if !slices.Contains(c.dependents[h], id) {
				c.dependents[h] = append(c.dependents[h], id)
			}
		}
		if cand, ok := candidate(id, &res); ok {
			items = append(items, cand)
		}
	}
	c.shared = &gateway.CandidateList{Items: items}
	c.sharedIndex = make(map[string]int, len(items))
	for i, cand := range items {
		c.sharedIndex[cand.ID] = i
	}
}

// effectiveInfo is configured over what c.info knows of the model.
func (c *Catalog) effectiveInfo(provider, upstreamModel string, configured gateway.ModelInfo) gateway.ModelInfo {
	if c.info == nil {
		return configured
	}
	builtin, ok := c.info(provider, upstreamModel)
	if !ok {
		return configured
	}
	return builtin.Override(configured)
}

// finalName is the name a resolution looked up as a model group: the target
// of its last alias hop, or the requested name.
func finalName(res *gateway.Resolution) string {
	if res.Found {
		return res.Resolved
	}
	if n := len(res.Names); n > 0 {
		return res.Names[n-1]
	}
	return res.Requested
}

// ModelGroups returns the exact (non-wildcard) model group names, sorted.
func (c *Catalog) ModelGroups() []string { return slices.Clone(c.groupNames) }

// AccessGroups returns every access group named by a deployment, sorted.
func (c *Catalog) AccessGroups() []string { return slices.Clone(c.accessGroupNames) }

// IsAccessGroup reports whether some deployment names the access group name.
func (c *Catalog) IsAccessGroup(name string) bool {
	_, ok := c.accessGroups[name]
	return ok
}

// Deployments returns every deployment in config order, with its effective
// Info. For a deployment whose provider model has a '*', UpstreamModel and
// Info are as configured; the real upstream model, and what the built-in
// catalog knows of it, are filled in per request in Resolution.Deployments.
func (c *Catalog) Deployments() []gateway.Deployment {
	out := slices.Clone(c.deployments)
	for i := range out {
		out[i].AccessGroups = slices.Clone(out[i].AccessGroups)
	}
	return out
}

// Aliases returns the global aliases sorted by name.
func (c *Catalog) Aliases() []Alias {
	out := make([]Alias, 0, len(c.global))
	for _, name := range sortedKeys(c.global) {
		out = append(out, c.global[name])
	}
	return out
}

// UpstreamModel returns providerModel without its "provider/" prefix when it
// has one, and providerModel unchanged otherwise. The config package uses it
// to split litellm_params.model, and Resolve to derive the upstream model of
// a wildcard deployment after substitution.
func UpstreamModel(provider, providerModel string) string {
	if provider != "" && len(providerModel) > len(provider) &&
		providerModel[len(provider)] == '/' && strings.HasPrefix(providerModel, provider) {
		return providerModel[len(provider)+1:]
	}
	return providerModel
}

func uniqueSorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Clip(slices.Compact(out))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// deploymentLabel names a deployment in messages.
func deploymentLabel(index int, id string) string {
	if id == "" || id == strconv.Itoa(index) {
		return "deployment " + strconv.Itoa(index)
	}
	return fmt.Sprintf("deployment %d (id %q)", index, id)
}
