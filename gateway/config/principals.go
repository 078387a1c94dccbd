package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/catalog"
)

// userRoles are the LiteLLM user roles gateway_settings.users accepts.
var userRoles = []string{
	gateway.RoleProxyAdmin, "proxy_admin_viewer", gateway.RoleInternalUser,
	"internal_user_viewer", "team", "customer",
}

// allowList is an allow-list as read, with lines for its problems.
type allowList struct {
	path    string
	line    int // line of the models key
	entries []string
	lines   []int
}

// aliasTable is an alias table as read, with lines for its problems.
type aliasTable struct {
	path  string
	line  int
	lines map[string]int
}

type teamRec struct {
	team    gateway.Team
	models  allowList
	aliases aliasTable
}

type userRec struct {
	user   gateway.User
	models allowList
}

type keyRec struct {
	path    string
	line    int
	key     gateway.Key
	models  allowList
	aliases aliasTable
	// limitModels are the names of the key's model_* maps.
	limitModels []modelName
}

// principals is gateway_settings as read, before validation against the
// catalog.
type principals struct {
	teams []teamRec
	users []userRec
	keys  []keyRec
}

// strict returns the fields of a gateway_settings mapping, reporting every
// field not in known as an error.
func (p *parser) strict(n *yaml.Node, path string, known ...string) ([]field, bool) {
	fields, ok := p.mapping(n, path)
	if !ok {
		return nil, false
	}
	out := fields[:0]
	for _, f := range fields {
		if !slices.Contains(known, f.key) {
			p.errorf(f.line, "%s: unknown field %q", path, f.key)
			ok = false
			continue
		}
		out = append(out, f)
	}
	return out, ok
}

func (p *parser) gatewaySettings(n *yaml.Node) *principals {
	const path = "gateway_settings"
	fields, _ := p.strict(n, path, "teams", "users", "keys", "policy", "max_request_body_bytes", "trusted_proxies")
	pr := &principals{}
	var keys *field
	for _, f := range fields {
		switch f.key {
		case "teams":
			pr.teams = p.teams(f.value)
		case "users":
			pr.users = p.users(f.value)
		case "keys":
			keys = &f
		case "policy":
			p.policy(f.value)
		case "max_request_body_bytes":
			if v, ok := p.integer(f.value, path+".max_request_body_bytes"); ok {
				if v <= 0 {
					p.errorf(f.line, "%s.max_request_body_bytes: must be positive", path)
				} else {
					p.cfg.MaxRequestBodyBytes = v
				}
			}
		case "trusted_proxies":
			p.trustedProxies(f.value, f.line, path+".trusted_proxies")
		}
	}
	// Keys refer to teams and users, which may come later in the file.
	if keys != nil {
		pr.keys = p.keys(keys.value, pr)
	}
	for _, t := range pr.teams {
		p.cfg.Teams = append(p.cfg.Teams, t.team)
	}
	for _, u := range pr.users {
		p.cfg.Users = append(p.cfg.Users, u.user)
	}
	return pr
}

func (p *parser) policy(n *yaml.Node) {
	const path = "gateway_settings.policy"
	fields, _ := p.strict(n, path, "bundle", "verification", "run_tests", "poll_interval", "file_poll_interval", "decision_log")
	for _, f := range fields {
		fp := path + "." + f.key
		switch f.key {
		case "bundle":
			v := deref(f.value)
			var bundles []string
			if v.Kind == yaml.SequenceNode {
				bundles, _, _ = p.strList(v, fp)
			} else if s, ok := p.str(v, fp); ok && s != "" {
				bundles = []string{s}
			}
			for _, b := range bundles {
				if strings.TrimSpace(b) == "" {
					p.errorf(f.line, "%s: empty bundle location", fp)
					continue
				}
				p.cfg.PolicyBundles = append(p.cfg.PolicyBundles, b)
			}
		case "verification":
			p.verification(f)
		case "run_tests":
			p.cfg.Policy.RunTests, _ = p.boolean(f.value, fp)
		case "poll_interval":
			p.cfg.Policy.PollInterval = p.pollInterval(f, fp)
		case "file_poll_interval":
			p.cfg.Policy.FilePollInterval = p.pollInterval(f, fp)
		case "decision_log":
			p.cfg.Policy.DecisionLog, _ = p.str(f.value, fp)
		}
	}
}

// pollInterval reads a policy poll interval: a duration of at least 100ms;
// zero (the engine's default) when unset or invalid.
func (p *parser) pollInterval(f field, fp string) time.Duration {
	s, ok := p.str(f.value, fp)
	if !ok || s == "" {
		return 0
	}
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(f.line, "%s: %v", fp, err)
	case d < 100*time.Millisecond:
		p.errorf(f.line, "%s: %s is too short (at least 100ms)", fp, s)
	default:
		return d
	}
	return 0
}

// bundleAlgorithms are the signature algorithms of OPA's bundle signing.
var bundleAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"}

func (p *parser) verification(f field) {
	const path = "gateway_settings.policy.verification"
	fields, ok := p.strict(f.value, path, "key", "key_id", "algorithm", "scope")
	if !ok && fields == nil {
		return
	}
	v := &BundleVerification{KeyID: DefaultBundleKeyID, Algorithm: "RS256"}
	keyUnset := false
	for _, g := range fields {
		gp := path + "." + g.key
		switch g.key {
		case "key":
			ref, ok := p.envStr(g.value, gp)
			if ok && ref.unset {
				p.errorf(g.line, "%s: environment variable %s is not set", gp, ref.name)
				keyUnset = true
			}
			v.Key = gateway.Secret(ref.value)
		case "key_id":
			if s, ok := p.str(g.value, gp); ok && s != "" {
				v.KeyID = s
			}
		case "algorithm":
			if s, ok := p.str(g.value, gp); ok && s != "" {
				if !slices.Contains(bundleAlgorithms, s) {
					p.errorf(g.line, "%s: unknown algorithm %q (want one of %s)", gp, s, strings.Join(bundleAlgorithms, ", "))
				}
				v.Algorithm = s
			}
		case "scope":
			v.Scope, _ = p.str(g.value, gp)
		}
	}
	if v.Key == "" {
		if keyUnset {
			return
		}
		p.errorf(f.line, "%s: key is required (a PEM public key, a file holding one, or for HS* the shared secret)", path)
		return
	}
	p.cfg.Policy.Verification = v
}

// allowList reads a models field.
func (p *parser) allowList(f field, path string) allowList {
	l := allowList{path: path + ".models", line: f.line}
	l.entries, l.lines, _ = p.strList(f.value, l.path)
	return l
}

// aliasTable reads an alias table field.
func (p *parser) aliasTable(f field, path string) (map[string]string, aliasTable) {
	t := aliasTable{path: path + "." + f.key, line: f.line}
	var m map[string]string
	m, t.lines, _ = p.strMap(f.value, t.path)
	return m, t
}

func (p *parser) teams(n *yaml.Node) []teamRec {
	items, _ := p.sequence(n, "gateway_settings.teams")
	var out []teamRec
	ids := make(map[string]int)
	for i, item := range items {
		path := fmt.Sprintf("gateway_settings.teams[%d]", i)
		fields, ok := p.strict(item, path, append([]string{"team_id", "team_alias", "models", "model_aliases", "blocked", "metadata"}, limitFields...)...)
		if !ok && fields == nil {
			continue
		}
		r := teamRec{models: allowList{path: path + ".models"}, aliases: aliasTable{path: path + ".model_aliases"}}
		for _, f := range fields {
			fp := path + "." + f.key
			switch f.key {
			case "team_id":
				r.team.ID, _ = p.str(f.value, fp)
			case "team_alias":
				r.team.Alias, _ = p.str(f.value, fp)
			case "models":
				r.models = p.allowList(f, path)
				r.team.Models = r.models.entries
			case "model_aliases":
				r.team.ModelAliases, r.aliases = p.aliasTable(f, path)
			case "blocked":
				r.team.Blocked, _ = p.boolean(f.value, fp)
			case "metadata":
				r.team.Metadata, _ = p.metadata(f.value, fp)
			default:
				p.limitField(f, fp, &r.team.Limits)
			}
		}
		if r.team.ID == "" {
			p.errorf(item.Line, "%s: missing team_id", path)
			continue
		}
		if first, dup := ids[r.team.ID]; dup {
			p.errorf(item.Line, "%s: team_id %q is also the id of gateway_settings.teams[%d]", path, r.team.ID, first)
			continue
		}
		ids[r.team.ID] = i
		p.warnSpecials(r.models, gateway.AllTeamModels, "only has a meaning on a key")
		p.warnSpecials(r.models, gateway.NoDefaultModels, "only has a meaning on a user")
		out = append(out, r)
	}
	return out
}

func (p *parser) users(n *yaml.Node) []userRec {
	items, _ := p.sequence(n, "gateway_settings.users")
	var out []userRec
	ids := make(map[string]int)
	for i, item := range items {
		path := fmt.Sprintf("gateway_settings.users[%d]", i)
		fields, ok := p.strict(item, path, append([]string{"user_id", "user_email", "models", "user_role", "metadata"}, limitFields...)...)
		if !ok && fields == nil {
			continue
		}
		r := userRec{models: allowList{path: path + ".models"}}
		for _, f := range fields {
			fp := path + "." + f.key
			switch f.key {
			case "user_id":
				r.user.ID, _ = p.str(f.value, fp)
			case "user_email":
				r.user.Email, _ = p.str(f.value, fp)
			case "models":
				r.models = p.allowList(f, path)
				r.user.Models = r.models.entries
			case "user_role":
				role, ok := p.str(f.value, fp)
				if ok && role != "" && !slices.Contains(userRoles, role) {
					p.errorf(f.line, "%s: unknown role %q (want one of %s)", fp, role, strings.Join(userRoles, ", "))
				}
				r.user.Role = role
			case "metadata":
				r.user.Metadata, _ = p.metadata(f.value, fp)
			default:
				p.limitField(f, fp, &r.user.Limits)
			}
		}
		if r.user.Role == "" {
			r.user.Role = gateway.RoleInternalUser
		}
		if r.user.ID == "" {
			p.errorf(item.Line, "%s: missing user_id", path)
			continue
		}
		if first, dup := ids[r.user.ID]; dup {
			p.errorf(item.Line, "%s: user_id %q is also the id of gateway_settings.users[%d]", path, r.user.ID, first)
			continue
		}
		ids[r.user.ID] = i
		p.warnSpecials(r.models, gateway.AllTeamModels, "only has a meaning on a key")
		out = append(out, r)
	}
	return out
}

func (p *parser) keys(n *yaml.Node, pr *principals) []keyRec {
	items, _ := p.sequence(n, "gateway_settings.keys")
	var out []keyRec
	hashes := make(map[string]int)
	for i, item := range items {
		path := fmt.Sprintf("gateway_settings.keys[%d]", i)
		known := append([]string{"key", "key_alias", "user_id", "team_id", "models", "aliases", "blocked", "metadata", "expires", "duration"}, limitFields...)
		fields, ok := p.strict(item, path, append(known, modelLimitFields...)...)
		if !ok && fields == nil {
			continue
		}
		r := keyRec{path: path, line: item.Line, models: allowList{path: path + ".models"}, aliases: aliasTable{path: path + ".aliases"}}
		var plaintext string
		var expires, duration *field
		valid := true
		for _, f := range fields {
			fp := path + "." + f.key
			switch f.key {
			case "key":
				ref, ok := p.envStr(f.value, fp)
				switch {
				case !ok:
					valid = false
				case ref.unset:
					p.errorf(f.line, "%s: environment variable %s is not set", fp, ref.name)
					valid = false
				case !strings.HasPrefix(ref.value, "sk-"):
					p.errorf(f.line, "%s: must start with \"sk-\"", fp)
					valid = false
				case !gateway.KeyChars(ref.value):
					p.errorf(f.line, "%s: must hold only printable ASCII characters without spaces", fp)
					valid = false
				default:
					plaintext = ref.value
				}
			case "key_alias":
				r.key.Alias, _ = p.str(f.value, fp)
			case "user_id":
				r.key.UserID, _ = p.str(f.value, fp)
				if r.key.UserID != "" && !slices.ContainsFunc(pr.users, func(u userRec) bool { return u.user.ID == r.key.UserID }) {
					p.errorf(f.line, "%s: no user %q in gateway_settings.users", fp, r.key.UserID)
				}
			case "team_id":
				r.key.TeamID, _ = p.str(f.value, fp)
				if r.key.TeamID != "" && !slices.ContainsFunc(pr.teams, func(t teamRec) bool { return t.team.ID == r.key.TeamID }) {
					p.errorf(f.line, "%s: no team %q in gateway_settings.teams", fp, r.key.TeamID)
				}
			case "models":
				r.models = p.allowList(f, path)
				r.key.Models = r.models.entries
			case "aliases":
				r.key.Aliases, r.aliases = p.aliasTable(f, path)
			case "blocked":
				r.key.Blocked, _ = p.boolean(f.value, fp)
			case "metadata":
				r.key.Metadata, _ = p.metadata(f.value, fp)
			case "expires":
				expires = &f
			case "duration":
				duration = &f
			default:
				if !p.limitField(f, fp, &r.key.Limits) {
					p.modelLimitField(f, fp, &r.key.ModelLimits, &r.limitModels)
				}
			}
		}
		p.expiry(&r.key, path, expires, duration)
		if plaintext == "" {
			if valid {
				p.errorf(item.Line, "%s: missing key", path)
			}
			continue
		}
		hash := gateway.HashKey(plaintext)
		if first, dup := hashes[hash]; dup {
			p.errorf(item.Line, "%s: same key as gateway_settings.keys[%d]", path, first)
			continue
		}
		hashes[hash] = i
		if p.cfg.MasterKey != "" && plaintext == p.cfg.MasterKey.Reveal() {
			p.errorf(item.Line, "%s: same key as general_settings.master_key", path)
			continue
		}
		r.key.ID = hash
		r.key.Display = gateway.Redact(plaintext)
		p.warnSpecials(r.models, gateway.NoDefaultModels, "only has a meaning on a user")
		if r.key.TeamID == "" {
			p.warnSpecials(r.models, gateway.AllTeamModels, "permits nothing on a key without a team")
		}
		out = append(out, r)
		p.cfg.Keys = append(p.cfg.Keys, SeedKey{Plaintext: gateway.Secret(plaintext), Key: r.key})
	}
	return out
}

// expiry sets ExpiresAt from expires (RFC 3339) or duration (from now).
func (p *parser) expiry(k *gateway.Key, path string, expires, duration *field) {
	if expires != nil && duration != nil {
		p.errorf(duration.line, "%s: set expires or duration, not both", path)
		return
	}
	if expires != nil {
		s, ok := p.str(expires.value, path+".expires")
		if !ok || s == "" {
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			p.errorf(expires.line, "%s.expires: want an RFC 3339 time like 2027-01-31T00:00:00Z", path)
			return
		}
		k.ExpiresAt = t
	}
	if duration != nil {
		s, ok := p.str(duration.value, path+".duration")
		if !ok || s == "" {
			return
		}
		d, err := ParseDuration(s)
		if err != nil || d <= 0 {
			p.errorf(duration.line, "%s.duration: want a positive duration like 30d", path)
			return
		}
		k.ExpiresAt = p.now.Add(d)
	}
}

// warnSpecials warns about a special allow-list value where it has no or a
// surprising meaning.
func (p *parser) warnSpecials(l allowList, special, why string) {
	for i, e := range l.entries {
		if e == special {
			p.warnf(l.lines[i], "%s: %q %s", l.path, special, why)
		}
	}
}

// validatePrincipals checks alias tables and allow-lists against the catalog.
// What names only unserved deployments (DESIGN §10.16) warns instead: such
// an alias is dropped from its table, such an allow-list entry is kept and
// permits nothing (dropping it could leave an empty list, which does not
// restrict).
func (p *parser) validatePrincipals(pr *principals) {
	c := p.cfg.Catalog
	global := messages(c.CheckAliases(nil, nil))
	teamAliases := make(map[string]map[string]string)
	teamProblems := make(map[string]map[string]bool)
	teamDropped := make(map[string]map[string]bool)
	for _, t := range pr.teams {
		dropped := maps.Clone(p.droppedGlobal)
		p.dropAliases(t.team.ModelAliases, t.aliases, gateway.SourceTeam, dropped, func() error {
			return c.CheckAliases(nil, t.team.ModelAliases)
		})
		teamDropped[t.team.ID] = dropped
		teamAliases[t.team.ID] = t.team.ModelAliases
		err := c.CheckAliases(nil, t.team.ModelAliases)
		teamProblems[t.team.ID] = messages(err)
		p.aliasProblems(err, t.aliases, gateway.SourceTeam, global)
		p.allowListProblems(c.CheckAllowList(t.models.entries, nil, t.team.ModelAliases), t.models, p.unservedIn(dropped))
	}
	for _, u := range pr.users {
		p.allowListProblems(c.CheckAllowList(u.models.entries, nil, nil), u.models, p.unservedIn(p.droppedGlobal))
	}
	for _, k := range pr.keys {
		ta := teamAliases[k.key.TeamID]
		known := global
		if tp := teamProblems[k.key.TeamID]; tp != nil {
			known = tp
		}
		dropped := teamDropped[k.key.TeamID]
		if dropped == nil {
			dropped = p.droppedGlobal
		}
		dropped = maps.Clone(dropped)
		p.dropAliases(k.key.Aliases, k.aliases, gateway.SourceKey, dropped, func() error {
			return c.CheckAliases(k.key.Aliases, ta)
		})
		unserved := p.unservedIn(dropped)
		p.aliasProblems(c.CheckAliases(k.key.Aliases, ta), k.aliases, gateway.SourceKey, known)
		p.allowListProblems(c.CheckAllowList(k.models.entries, k.key.Aliases, ta), k.models, unserved)
		p.modelLimitProblems(k.limitModels, k.key.Aliases, ta, unserved)
	}
}

// unservedIn returns whether a name refers only to unserved deployments, or
// to an alias in dropped.
func (p *parser) unservedIn(dropped map[string]bool) func(string) bool {
	return func(name string) bool { return dropped[name] || p.cfg.unservedOnly(name) }
}

// dropAliases deletes from table, with a warning each, the aliases of
// source whose target names only unserved deployments or aliases dropped
// so, until none is left; check reports the table's alias problems.
func (p *parser) dropAliases(table map[string]string, lines aliasTable, source string, dropped map[string]bool, check func() error) {
	for len(table) > 0 {
		drop := p.unservedAliases(check(), source, dropped)
		if len(drop) == 0 {
			return
		}
		for _, name := range slices.Sorted(maps.Keys(drop)) {
			e := drop[name]
			delete(table, name)
			p.warnf(aliasErrorLine(e, lines, source), "%s.%s: dropped: its target %q names only deployments that are not served", lines.path, name, e.Chain[1])
		}
	}
}

// aliasProblems reports the problems of err not already in known, at the
// line of the alias they concern when it is in table.
func (p *parser) aliasProblems(err error, table aliasTable, source string, known map[string]bool) {
	for _, e := range asList(err) {
		if known[e.Error()] {
			continue
		}
		line := table.line
		if ae, ok := e.(*catalog.AliasError); ok {
			line = aliasErrorLine(ae, table, source)
		}
		p.errorf(line, "%s: %s", table.path, e.Error())
	}
}

// aliasErrorLine is the line of the alias of table a problem concerns: the
// alias it is reported for, else the first alias of its chain defined in
// table, else the table itself.
func aliasErrorLine(e *catalog.AliasError, table aliasTable, source string) int {
	if e.Source == source {
		if l, ok := table.lines[e.Name]; ok {
			return l
		}
	}
	for _, name := range e.Chain {
		if l, ok := table.lines[name]; ok {
			return l
		}
	}
	return table.line
}

func (p *parser) allowListProblems(err error, l allowList, unserved func(string) bool) {
	for _, e := range asList(err) {
		line := l.line
		ee, isEntry := e.(*catalog.EntryError)
		if isEntry && ee.Index < len(l.lines) {
			line = l.lines[ee.Index]
		}
		if isEntry && unserved(ee.Entry) {
			p.warnf(line, "%s: allow-list entry %q names only deployments that are not served; kept, it permits nothing", l.path, ee.Entry)
			continue
		}
		p.errorf(line, "%s: %s", l.path, e.Error())
	}
}

func messages(err error) map[string]bool {
	m := make(map[string]bool)
	for _, e := range asList(err) {
		m[e.Error()] = true
	}
	return m
}

// trustedProxies parses gateway_settings.trusted_proxies: IP addresses and
// CIDR ranges of the proxies whose X-Forwarded-For the gateway believes
// (DESIGN §6, input.request.client_ip).
func (p *parser) trustedProxies(n *yaml.Node, line int, path string) {
	entries, _, ok := p.strList(n, path)
	if !ok {
		return
	}
	for i, e := range entries {
		pfx, err := ParseTrustedProxy(e)
		if err != nil {
			p.errorf(line, "%s[%d]: %v", path, i, err)
			continue
		}
		p.cfg.TrustedProxies = append(p.cfg.TrustedProxies, pfx)
	}
}

// ParseTrustedProxy reads an IP address ("10.0.0.1", "::1") or a CIDR range
// ("10.0.0.0/8") as a prefix.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
