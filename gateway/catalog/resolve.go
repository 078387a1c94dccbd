package catalog

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/regate/gateway/gateway"
)

// status is how an alias walk ended.
type status int

const (
	statusFound status = iota
	statusNotFound
	statusCycle
	statusTooDeep
)

// Resolve follows the alias chain of name for a caller with the given key and
// team alias tables (either may be nil) and returns the model group it
// reaches (DESIGN §5, §10.1–§10.5).
//
// Each hop looks the current name up in the key's aliases, then the team's,
// then the global aliases; a name with no alias is looked up as an exact
// model group, then as a name a wildcard deployment serves. Lookup is exact
// and case-sensitive. A '*' in a requested name is a literal character: such
// a name is never served by a wildcard deployment. A name that repeats in the
// chain (a cycle) or more than MaxAliasHops alias hops end the walk with
// Found false.
//
// The slices of the returned Resolution may be shared with other callers and
// must not be modified.
func (c *Catalog) Resolve(name string, keyAliases, teamAliases map[string]string) gateway.Resolution {
	r, static := c.static[name]
	if static && ((len(keyAliases) == 0 && len(teamAliases) == 0) || !overridden(c.hops[name], keyAliases, teamAliases)) {
		return *r
	}
	if !static {
		// A name outside the static table that the caller's tables do not
		// alias resolves the same for every caller: as a name a wildcard
		// deployment serves, or not at all. It is cached as a caller's
		// without tables.
		_, byKey := keyAliases[name]
		_, byTeam := teamAliases[name]
		if !byKey && !byTeam {
			keyAliases, teamAliases = nil, nil
		}
	}
	return c.resolveCached(name, keyAliases, teamAliases)
}

// resolutionCacheSize bounds resolutionCache; when it is full it starts
// over.
const resolutionCacheSize = 4096

// resolutionCache remembers the resolutions outside the static table:
// names a wildcard deployment serves (cached with no alias tables) and
// names resolved through a caller's own alias tables, keyed on the tables'
// identity (stores hand out immutable records, so a key's or team's table
// is the same map from request to request); as in aliasedLists, an entry
// keeps its maps alive and their contents are compared as a guard. Requests
// for one model then get the same lists: besides skipping the walk, that
// lets the policy engine recognise the model (its decision memo and
// request-shape specialisations key on the lists' identity). Names not
// found are kept too: a forbidden model (a static resolution, the same
// lists every time) and a model that does not exist must cost the same
// when asked again, or the time of a 404 tells which models exist
// (DESIGN §2; tests/timing_test.go). A flood of new names only makes the
// cache start over.
type resolutionCache struct {
	mu sync.RWMutex
	m  map[resolutionKey]cachedResolution
}

type resolutionKey struct {
	key, team uintptr
	name      string
}

type cachedResolution struct {
	key, team map[string]string
	res       *gateway.Resolution
}

// resolveCached resolves name through the caller's tables (nil for none),
// through c.resolutions.
func (c *Catalog) resolveCached(name string, keyAliases, teamAliases map[string]string) gateway.Resolution {
	a := &c.resolutions
	id := resolutionKey{mapID(keyAliases), mapID(teamAliases), name}
	hit := func() (*gateway.Resolution, bool) {
		e, ok := a.m[id]
		return e.res, ok && maps.Equal(e.key, keyAliases) && maps.Equal(e.team, teamAliases)
	}
	a.mu.RLock()
	r, ok := hit()
	a.mu.RUnlock()
	if ok {
		return *r
	}
	res, _, _ := c.walk(name, keyAliases, teamAliases)
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := hit(); ok { // another request was first: share its lists
		return *r
	}
	if a.m == nil || len(a.m) >= resolutionCacheSize {
		a.m = make(map[resolutionKey]cachedResolution)
	}
	r = new(gateway.Resolution) // a copy: res itself stays off the heap when not kept
	*r = res
	a.m[id] = cachedResolution{key: keyAliases, team: teamAliases, res: r}
	return res
}

// overridden reports whether one of names has a key or team alias.
func overridden(names []string, keyAliases, teamAliases map[string]string) bool {
	for _, n := range names {
		if _, ok := keyAliases[n]; ok {
			return true
		}
		if _, ok := teamAliases[n]; ok {
			return true
		}
	}
	return false
}

// lookupAlias finds the alias for name with key, team, global precedence.
func (c *Catalog) lookupAlias(name string, keyAliases, teamAliases map[string]string) (target, source string, hidden, ok bool) {
	if target, ok := keyAliases[name]; ok {
		return target, gateway.SourceKey, false, true
	}
	if target, ok := teamAliases[name]; ok {
		return target, gateway.SourceTeam, false, true
	}
	if a, ok := c.global[name]; ok {
		return a.Target, gateway.SourceGlobal, a.Hidden, true
	}
	return "", "", false, false
}

// walk resolves name. For statusCycle and statusTooDeep, next is the alias
// target that repeated or went one hop too far.
func (c *Catalog) walk(name string, keyAliases, teamAliases map[string]string) (res gateway.Resolution, st status, next string) {
	res.Requested = name
	cur := name
	for {
		target, source, hidden, ok := c.lookupAlias(cur, keyAliases, teamAliases)
		if !ok {
			break
		}
		if len(res.Chain) == 0 {
			res.Hidden = hidden
		}
		res.Chain = append(res.Chain, gateway.ChainLink{Name: cur, Kind: gateway.LinkAlias, Source: source})
		res.Names = append(res.Names, cur)
		if slices.Contains(res.Names, target) {
			return res, statusCycle, target
		}
		if len(res.Chain) > MaxAliasHops {
			res.Names = append(res.Names, target)
			return res, statusTooDeep, target
		}
		cur = target
	}
	if g := c.groups[cur]; g != nil {
		res.Found = true
		res.Resolved = cur
		res.AccessGroups = g.accessGroups
		res.Deployments = g.deployments
		if len(res.Chain) == 0 {
			res.Chain = g.tail
			res.Names = g.names
			return res, statusFound, ""
		}
		res.Chain = append(res.Chain, g.tail...)
		for _, n := range g.names {
			res.Names = appendDistinct(res.Names, n)
		}
		return res, statusFound, ""
	}
	if !strings.Contains(cur, "*") {
		var buf [4]string
		for _, w := range c.wildcards {
			if caps, ok := w.match(cur, buf[:0]); ok {
				c.serveWildcard(&res, w, cur, caps)
				return res, statusFound, ""
			}
		}
		c.mimicServing(cur)
	}
	res.Names = appendDistinct(res.Names, cur)
	return res, statusNotFound, ""
}

// mimicServing does for name, which nothing serves, the work of serving it
// through c.decoy (copying its deployments, substituting, looking the
// upstream model up in the built-in catalog) and throws the result away. A
// name a wildcard serves is resolved anew the first time it is asked, and
// that work (about 3 µs with a built-in catalog lookup, through the real
// binary) would otherwise make the first 404 for a forbidden name slower
// than the first for a name that does not exist (DESIGN §2), as a login
// that hashes a dummy password for an unknown user. Both resolutions are
// cached afterwards.
func (c *Catalog) mimicServing(name string) {
	w := c.decoy
	if w == nil {
		return
	}
	var scratch gateway.Resolution
	c.serveWildcard(&scratch, w, name, []string{name[min(w.prefixLen, len(name)):]})
}

// serveWildcard completes res for name, served by the deployments of w with
// captures caps.
func (c *Catalog) serveWildcard(res *gateway.Resolution, w *wildcard, name string, caps []string) {
	res.Found = true
	res.Resolved = name
	res.Wildcard = w.pattern
	res.AccessGroups = w.accessGroups
	res.Chain = append(res.Chain, gateway.ChainLink{Name: name, Kind: gateway.LinkModelGroup})
	res.Names = appendDistinct(res.Names, name)
	firstProvider := len(res.Chain)
	deps := make([]gateway.Deployment, len(w.deployments))
	copy(deps, w.deployments)
	for i := range deps {
		q := deps[i].ProviderModel
		if w.substitute[i] {
			q = substitute(q, caps)
			deps[i].UpstreamModel = UpstreamModel(deps[i].Provider, q)
			deps[i].Info = c.effectiveInfo(deps[i].Provider, deps[i].UpstreamModel, deps[i].Info)
		}
		if !slices.ContainsFunc(res.Chain[firstProvider:], func(l gateway.ChainLink) bool { return l.Name == q }) {
			res.Chain = append(res.Chain, gateway.ChainLink{Name: q, Kind: gateway.LinkProviderModel})
		}
		res.Names = appendDistinct(res.Names, q)
	}
	res.Deployments = deps
}

// match reports whether name matches the pattern and appends to caps the
// text each '*' matched. Every '*' matches at least one character; with
// several, each but the last matches as little as possible. It runs in time
// linear in len(name) for a fixed pattern.
func (w *wildcard) match(name string, caps []string) ([]string, bool) {
	lits := w.lits
	if len(name) < w.literalLen+w.stars || !strings.HasPrefix(name, lits[0]) {
		return nil, false
	}
	rest := name[len(lits[0]):]
	last := len(lits) - 1
	for i := 1; i < last; i++ {
		if len(rest) == 0 {
			return nil, false
		}
		j := strings.Index(rest[1:], lits[i])
		if j < 0 {
			return nil, false
		}
		j++
		caps = append(caps, rest[:j])
		rest = rest[j+len(lits[i]):]
	}
	suffix := lits[last]
	if len(rest) < len(suffix)+1 || !strings.HasSuffix(rest, suffix) {
		return nil, false
	}
	return append(caps, rest[:len(rest)-len(suffix)]), true
}

// servedByWildcard reports whether some wildcard deployment serves name.
func (c *Catalog) servedByWildcard(name string) bool {
	if strings.Contains(name, "*") {
		return false
	}
	var buf [4]string
	for _, w := range c.wildcards {
		if _, ok := w.match(name, buf[:0]); ok {
			return true
		}
	}
	return false
}

// substitute replaces the '*'s of q, in order, with caps.
func substitute(q string, caps []string) string {
	var b strings.Builder
	n := 0
	for _, cp := range caps {
		n += len(cp)
	}
	b.Grow(len(q) + n)
	i := 0
	for j := 0; j < len(q); j++ {
		if q[j] == '*' && i < len(caps) {
			b.WriteString(caps[i])
			i++
			continue
		}
		b.WriteByte(q[j])
	}
	return b.String()
}

func appendDistinct(names []string, name string) []string {
	if slices.Contains(names, name) {
		return names
	}
	return append(names, name)
}
