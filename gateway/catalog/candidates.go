package catalog

import (
	"maps"
	"reflect"
	"sort"
	"sync"

	"github.com/regate/gateway/gateway"
)

// Candidates returns the ids a caller with these alias tables may be shown in
// GET /v1/models, each resolved for that caller (DESIGN §5 "Listing"): every
// exact model group, every global alias, and every alias of the caller's team
// and key. An id is included when it resolves and its resolution is not a
// hidden global alias; wildcard patterns are never candidates. Items are
// sorted by id, and ids are unique.
//
// A caller without alias tables of its own gets one list shared by all such
// callers, built in New, so adapters may cache forms derived from it by
// pointer. A caller with aliases gets a new list: its aliases can change how
// global aliases and even model group names resolve. The list is read-only.
func (c *Catalog) Candidates(keyAliases, teamAliases map[string]string) *gateway.CandidateList {
	if len(keyAliases) == 0 && len(teamAliases) == 0 {
		return c.shared
	}
	return c.aliased.get(keyAliases, teamAliases, c.build)
}

// build makes the candidate list of a caller with alias tables.
func (c *Catalog) build(keyAliases, teamAliases map[string]string) *gateway.CandidateList {
	redo := make(map[string]struct{}, len(keyAliases)+len(teamAliases))
	mark := func(aliases map[string]string) {
		for name := range aliases {
			redo[name] = struct{}{}
			for _, id := range c.dependents[name] {
				redo[id] = struct{}{}
			}
		}
	}
	mark(keyAliases)
	mark(teamAliases)

	redone := make([]string, 0, len(redo))
	fresh := make([]gateway.Candidate, 0, len(redo))
	for id := range redo {
		redone = append(redone, id)
		res, _, _ := c.walk(id, keyAliases, teamAliases)
		if cand, ok := candidate(id, &res); ok {
			fresh = append(fresh, cand)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].ID < fresh[j].ID })

	// Positions in the shared list whose id is redone, ascending.
	skip := make([]int, 0, len(redo))
	for id := range redo {
		if i, ok := c.sharedIndex[id]; ok {
			skip = append(skip, i)
		}
	}
	sort.Ints(skip)

	shared := c.shared.Items
	items := make([]gateway.Candidate, 0, len(shared)-len(skip)+len(fresh))
	i, j := 0, 0
	for i < len(shared) || j < len(fresh) {
		if len(skip) > 0 && skip[0] == i {
			skip = skip[1:]
			i++
			continue
		}
		if j >= len(fresh) || (i < len(shared) && shared[i].ID < fresh[j].ID) {
			items = append(items, shared[i])
			i++
			continue
		}
		items = append(items, fresh[j])
		j++
	}
	sort.Strings(redone)
	return &gateway.CandidateList{Items: items, Base: c.shared, Redone: redone}
}

// aliasedCacheSize bounds the lists kept for callers with alias tables.
// When the cache is full it starts over.
const aliasedCacheSize = 256

// aliasedLists caches the candidate lists of callers with alias tables, so
// that a key's repeated listings get the same list (and adapters' caches by
// list pointer hit). Stores hand out immutable records, so a key's or
// team's alias table is the same map from request to request; the cache
// keys on the maps' identity and, because a cached entry keeps its maps
// alive (no other map can take their address), checks their contents too
// only as a guard.
type aliasedLists struct {
	mu sync.Mutex
	m  map[[2]uintptr]aliasedList
}

type aliasedList struct {
	key, team map[string]string
	list      *gateway.CandidateList
}

func (a *aliasedLists) get(key, team map[string]string, build func(key, team map[string]string) *gateway.CandidateList) *gateway.CandidateList {
	id := [2]uintptr{mapID(key), mapID(team)}
	a.mu.Lock()
	e, ok := a.m[id]
	a.mu.Unlock()
	if ok && maps.Equal(e.key, key) && maps.Equal(e.team, team) {
		return e.list
	}
	l := build(key, team)
	a.mu.Lock()
	if a.m == nil || len(a.m) >= aliasedCacheSize {
		a.m = make(map[[2]uintptr]aliasedList)
	}
	a.m[id] = aliasedList{key: key, team: team, list: l}
	a.mu.Unlock()
	return l
}

// mapID is the identity of a map; 0 for a nil map.
func mapID(m map[string]string) uintptr {
	if m == nil {
		return 0
	}
	return reflect.ValueOf(m).Pointer()
}

// candidate turns the resolution of id into a listing candidate, or reports
// false when id is not listed (not found, or a hidden global alias).
func candidate(id string, res *gateway.Resolution) (gateway.Candidate, bool) {
	if !res.Found || res.Hidden {
		return gateway.Candidate{}, false
	}
	owner := OwnerGateway
	if res.Chain[0].Kind != gateway.LinkAlias && len(res.Deployments) > 0 && res.Deployments[0].Provider != "" {
		owner = res.Deployments[0].Provider
	}
	maxIn, maxOut := gateway.GroupLimits(res.Deployments)
	return gateway.Candidate{
		ID:              id,
		Names:           res.Names,
		AccessGroups:    res.AccessGroups,
		OwnedBy:         owner,
		MaxInputTokens:  maxIn,
		MaxOutputTokens: maxOut,
	}, true
}
