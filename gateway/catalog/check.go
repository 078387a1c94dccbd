package catalog

import (
	"fmt"
	"strings"

	"github.com/regate/gateway/gateway"
)

// Alias problem kinds (AliasError.Kind).
const (
	// AliasCycle is a chain in which a name repeats.
	AliasCycle = "cycle"
	// AliasTooDeep is a chain of more than MaxAliasHops alias hops.
	AliasTooDeep = "too_deep"
	// AliasDangling is an alias whose target resolves to nothing.
	AliasDangling = "dangling"
	// AliasInvalid is a malformed alias definition (empty or duplicate name,
	// empty target).
	AliasInvalid = "invalid"
)

// ErrorList is a list of validation problems. New, CheckAliases and
// CheckAllowList return one (or nil); its items are *DeploymentError,
// *AliasError or *EntryError.
type ErrorList []error

// Error prints the problems one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error { return l }

// DeploymentError is a deployment New refuses.
type DeploymentError struct {
	// Index is the deployment's position in the slice given to New.
	Index     int
	ID        string
	ModelName string
	Reason    string
}

// Error names the deployment and the reason.
func (e *DeploymentError) Error() string {
	return fmt.Sprintf("%s (model_name %q): %s", deploymentLabel(e.Index, e.ID), e.ModelName, e.Reason)
}

// AliasError is one problem with an alias or an alias chain.
type AliasError struct {
	// Kind is AliasCycle, AliasTooDeep, AliasDangling or AliasInvalid.
	Kind string
	// Source is the table (gateway.SourceKey, SourceTeam, SourceGlobal) that
	// holds Name.
	Source string
	// Name is the alias the problem is reported for: the first alias of a
	// chain that is too deep or runs into a cycle, the alias whose target
	// resolves to nothing, or the malformed alias.
	Name string
	// Chain is, for AliasCycle, the cycle from its smallest name back to that
	// name; for AliasTooDeep, the whole chain; for AliasDangling, Name and its
	// target.
	Chain []string
	// Reason explains an AliasInvalid problem.
	Reason string
}

// Error describes the problem and names the chain.
func (e *AliasError) Error() string {
	switch e.Kind {
	case AliasCycle:
		return "alias cycle: " + strings.Join(e.Chain, " -> ")
	case AliasTooDeep:
		return fmt.Sprintf("alias chain longer than %d hops: %s", MaxAliasHops, strings.Join(e.Chain, " -> "))
	case AliasDangling:
		from, to := e.Name, ""
		if len(e.Chain) == 2 {
			from, to = e.Chain[0], e.Chain[1]
		}
		return fmt.Sprintf("alias %q -> %q: %s is not a model group, alias or name a wildcard deployment serves", from, to, to)
	default:
		return fmt.Sprintf("alias %q: %s", e.Name, e.Reason)
	}
}

// EntryError is an allow-list entry CheckAllowList refuses.
type EntryError struct {
	// Index is the entry's position in the list.
	Index  int
	Entry  string
	Reason string
}

// Error names the entry and the reason.
func (e *EntryError) Error() string {
	return fmt.Sprintf("allow-list entry %q: %s", e.Entry, e.Reason)
}

// newChainError describes a walk from name that ended in a cycle or went too
// deep; names are the distinct names walked and next the offending target.
func newChainError(st status, source, name string, names []string, next string) *AliasError {
	e := &AliasError{Source: source, Name: name}
	if st == statusTooDeep {
		e.Kind = AliasTooDeep
		e.Chain = append([]string(nil), names...)
		return e
	}
	e.Kind = AliasCycle
	start := 0
	for i, n := range names {
		if n == next {
			start = i
			break
		}
	}
	cycle := names[start:]
	// Rotate to the smallest name so that one cycle reached from several
	// aliases is described once.
	low := 0
	for i, n := range cycle {
		if n < cycle[low] {
			low = i
		}
	}
	e.Chain = make([]string, 0, len(cycle)+1)
	e.Chain = append(e.Chain, cycle[low:]...)
	e.Chain = append(e.Chain, cycle[:low]...)
	e.Chain = append(e.Chain, cycle[low])
	return e
}

// CheckAliases follows, as Resolve does for a caller with these tables, the
// chain of every alias the caller can reach (its key's, its team's and the
// global ones) and reports cycles, chains over MaxAliasHops hops and aliases
// whose target resolves to nothing, each once. It returns nil or an
// ErrorList of *AliasError.
func (c *Catalog) CheckAliases(keyAliases, teamAliases map[string]string) error {
	var errs ErrorList
	for _, table := range []struct {
		source  string
		aliases map[string]string
	}{{gateway.SourceKey, keyAliases}, {gateway.SourceTeam, teamAliases}} {
		for _, name := range sortedKeys(table.aliases) {
			switch {
			case name == "":
				errs = append(errs, &AliasError{Kind: AliasInvalid, Source: table.source, Name: name, Reason: "empty alias name"})
			case table.aliases[name] == "":
				errs = append(errs, &AliasError{Kind: AliasInvalid, Source: table.source, Name: name, Reason: "empty target"})
			}
		}
	}
	starts := make(map[string]struct{}, len(keyAliases)+len(teamAliases)+len(c.global))
	for _, m := range []map[string]string{keyAliases, teamAliases} {
		for name := range m {
			starts[name] = struct{}{}
		}
	}
	for name := range c.global {
		starts[name] = struct{}{}
	}
	for _, name := range sortedKeys(starts) {
		if name == "" {
			continue
		}
		res, st, next := c.walk(name, keyAliases, teamAliases)
		switch st {
		case statusCycle, statusTooDeep:
			errs = append(errs, newChainError(st, res.Chain[0].Source, name, res.Names, next))
		case statusNotFound:
			last := res.Chain[len(res.Chain)-1]
			if res.Requested == "" || last.Name == "" {
				continue
			}
			target := finalName(&res)
			if target == "" {
				continue // reported as an empty target above
			}
			errs = append(errs, &AliasError{Kind: AliasDangling, Source: last.Source, Name: last.Name, Chain: []string{last.Name, target}})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return dedupe(errs)
}

// CheckAllowList validates an allow-list of a principal whose key and team
// have the given alias tables (DESIGN §10.7). An entry containing '*' is a
// glob and accepted; any other entry must be a special value, an access
// group, a model group, an alias visible to the principal (key, team or
// global, hidden ones included) or a name some wildcard deployment serves.
// It returns nil or an ErrorList of *EntryError, one per refused entry.
func (c *Catalog) CheckAllowList(entries []string, keyAliases, teamAliases map[string]string) error {
	var errs ErrorList
	for i, e := range entries {
		if reason := c.checkEntry(e, keyAliases, teamAliases); reason != "" {
			errs = append(errs, &EntryError{Index: i, Entry: e, Reason: reason})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (c *Catalog) checkEntry(e string, keyAliases, teamAliases map[string]string) string {
	if e == "" {
		return "empty entry"
	}
	if strings.Contains(e, "*") {
		return ""
	}
	switch e {
	case gateway.AllProxyModels, gateway.AllTeamModels, gateway.NoDefaultModels:
		return ""
	}
	if c.IsAccessGroup(e) {
		return ""
	}
	if _, ok := c.groups[e]; ok {
		return ""
	}
	if _, ok := keyAliases[e]; ok {
		return ""
	}
	if _, ok := teamAliases[e]; ok {
		return ""
	}
	if _, ok := c.global[e]; ok {
		return ""
	}
	if c.servedByWildcard(e) {
		return ""
	}
	return "not a model group, alias, access group, special value or name a wildcard deployment serves"
}

// dedupe drops problems whose message repeats an earlier one.
func dedupe(errs ErrorList) ErrorList {
	seen := make(map[string]struct{}, len(errs))
	out := errs[:0]
	for _, err := range errs {
		msg := err.Error()
		if _, dup := seen[msg]; dup {
			continue
		}
		seen[msg] = struct{}{}
		out = append(out, err)
	}
	return out
}

// Unpriced returns the positions, in Deployments, of the deployments whose
// calls have no price: none configured and none built in. A deployment
// whose upstream model is filled in per name served (a '*' in its provider
// model) counts only when it configures no price and covered(provider) is
// false; otherwise the built-in catalog may price the names it serves.
func (c *Catalog) Unpriced(covered func(provider string) bool) []int {
	var out []int
	for i := range c.deployments {
		d := &c.deployments[i]
		if d.Info.Priced() {
			continue
		}
		if strings.Contains(d.ProviderModel, "*") && covered != nil && covered(d.Provider) {
			continue
		}
		out = append(out, i)
	}
	return out
}
