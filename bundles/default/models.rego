# The model rule: whether a principal may use a model (DESIGN §5, §10.6).
# Listing (visible_models), retrieving and calling (decision) all ask the one
# helper _permitted, so "listed" and "allowed" cannot drift apart.
#
# Three layers, key, team and user, each hold an allow-list. Every layer that
# restricts must permit. A layer with an empty list (or a null team or user)
# does not restrict. A layer permits when some name of the chain equals an
# entry, or matches an entry containing "*" as a glob ("*" is any run of
# characters, "/" included; everything else is literal), or when an entry is
# one of the model's access groups. Globs match names only, not access groups.
# Special values are never matched as names.
package gateway.authz

# Special values: "*" and "all-proxy-models" permit everything,
# "all-team-models" (key) and "no-default-models" (user) are handled where the
# layer lists are worked out.
_grants_everything := {"*", "all-proxy-models"}

_special := {"*", "all-proxy-models", "all-team-models", "no-default-models"}

_layer_names := ["key", "team", "user"]

# METADATA
# title: Visible models
# description: |
#   The ids of input.candidates the caller may see, decided by the same model
#   rule as decision (_permitted). Custom deny rules do not filter the list
#   (DESIGN §10.10).
# entrypoint: true
visible_models := {input.candidates[i].id | some i in _permitted(input.candidates)}

# METADATA
# title: Layers
# description: |
#   The model rule for input.model, layer by layer: for "key", "team" and
#   "user", whether the layer restricts, whether it allows the model, and the
#   first entry of its list that matched (null when none did). For the
#   explain endpoint; it works entry by entry and costs more than decision.
# entrypoint: true
layers := {l: _layer_report(l, names, groups) |
	some l in _layer_names
} if {
	is_object(_lists)
	names := input.model.names
	groups := input.model.access_groups
}

# _permitted is THE model rule. Given an array of objects with "names" (the
# chain) and "access_groups" (the candidates of a list, or the one model of a
# request) it returns the set of indices the principal may use.
#
# It has two plans with one meaning, and the policy tests run every case
# through both: a few models are checked one by one against the raw lists
# (_permitted_each); a list is narrowed layer by layer with the lists
# compiled once into sets (_permitted_sets), so that the work per candidate
# is a few set lookups.
_permitted(models) := _permitted_each(models) if {
	count(models) <= 4
} else := _permitted_sets(models)

# --- The layer lists -------------------------------------------------------

# _lists holds each layer's effective list; an empty list does not restrict.
# It is undefined when the input is malformed, and then nothing is permitted
# (fail closed).
_lists := {"key": _key_list, "team": _team_list, "user": _user_list}

# A key holding all-team-models permits what its team permits. The team
# layer is checked anyway, so for the model rule such a key does not restrict.
# On a key without a team it permits nothing (DESIGN §10.6).
_key_list := [] if {
	"all-team-models" in input.key.models
	is_object(input.team)
} else := input.key.models if {
	is_array(input.key.models)
}

_key_all_team if {
	"all-team-models" in input.key.models
	_team_key
}

_team_list := input.team.models if {
	is_array(input.team.models)
} else := [] if {
	input.team == null
}

# A team key is a key whose team record is present. A key whose team_id names
# a team that is gone counts as personal: its special values fail closed.
_team_key if is_object(input.team)

# no-default-models on a user: a personal key gets nothing. The one remaining
# entry is special, so the layer restricts and nothing matches. On a team key
# the entry is ignored.
_user_list := ["no-default-models"] if {
	"no-default-models" in input.user.models
	not _team_key
} else := [e | some e in input.user.models; e != "no-default-models"] if {
	is_array(input.user.models)
} else := [] if {
	input.user == null
}

# _open is the set of layers that permit every model.
_open := {l |
	some l, es in _lists
	_opens(es)
}

_opens(es) if {
	count(es) == 0
} else if {
	"*" in es
} else if {
	"all-proxy-models" in es
}

# _restricts is the set of layers with a non-empty list as configured (a key
# with all-team-models restricts: it is bound to its team).
_restricts := {l |
	some l in _layer_names
	count(_configured[l]) > 0
}

_configured := {"key": input.key.models, "team": _team_list, "user": _user_list}

# --- Plan 1: model by model ------------------------------------------------

_permitted_each(models) := {i |
	some i, m in models
	count(m.names) > 0
	probe := array.concat(array.concat(m.names, m.access_groups), ["*", "all-proxy-models"])
	_layer_ok(_key_list, probe, m.names)
	_layer_ok(_team_list, probe, m.names)
	_layer_ok(_user_list, probe, m.names)
}

# _layer_ok tells whether a layer's list es permits a model. probe is what
# an entry may equal to permit it: a chain name, an access group, "*" or
# "all-proxy-models"; the two other special values never match as names.
# The branches are ordered by cost; each stops at its first match. Constants
# are written inline: on this hot path a rule reference costs more than the
# comparison.
_layer_ok(es, probe, names) if {
	count(es) == 0
} else if {
	some e in es
	e in probe
	e != "all-team-models"
	e != "no-default-models"
} else if {
	some e in es
	endswith(e, "*")
	p := trim_suffix(e, "*")
	not contains(p, "*")
	strings.any_prefix_match(names, p)
} else if {
	some e in es
	contains(trim_suffix(e, "*"), "*")
	p := _glob_pattern(e)
	some n in names
	glob.match(p, null, n)
}

# --- Plan 2: set by set ----------------------------------------------------

_permitted_sets(models) := {i |
	some i, m in _keep(_keep(_keep(models, "key"), "team"), "user")
	count(m.names) > 0 # an empty chain is permitted nothing
}

# _keep narrows s to the models layer l permits. s is the array of models or
# an object from index to model (the survivors of a previous layer); both
# iterate as index, model.
_keep(s, l) := s if {
	_open[l]
} else := {i: s[i] | some i in _hits(s, _checks[l])}

# _checks compiles the list of each layer that restricts into exact entries
# (model, alias and access-group names), literal prefixes of "prefix*"
# globs (the common glob, matched with strings.any_prefix_match), and
# glob.match patterns for the other globs.
_checks := {l: _compile(es) |
	some l, es in _lists
	not _open[l]
}

_compile(es) := {"exact": exact, "prefixes": prefixes, "patterns": patterns} if {
	entries := {e | some e in es} - _special
	globs := {e | some e in entries; contains(e, "*")}
	exact := entries - globs
	prefixes := {p |
		some e in globs
		p := trim_suffix(e, "*")
		not contains(p, "*")
	}
	patterns := {_glob_pattern(e) |
		some e in globs
		contains(trim_suffix(e, "*"), "*")
	}
}

# _hits are the indices of s with a chain name or access group among the
# exact entries, or a chain name matching a glob entry.
_hits(s, chk) := (_exact_hits(s, chk.exact) | _prefix_hits(s, chk.prefixes)) | _pattern_hits(s, chk.patterns)

_exact_hits(s, exact) := set() if {
	count(exact) == 0
} else := {i |
	some i, m in s
	some n in m.names
	exact[n]
} | {i |
	some i, m in s
	some g in m.access_groups
	exact[g]
}

_prefix_hits(s, prefixes) := set() if {
	count(prefixes) == 0
} else := {i |
	some i, m in s
	strings.any_prefix_match(m.names, prefixes)
}

_pattern_hits(s, patterns) := set() if {
	count(patterns) == 0
} else := {i |
	some i, m in s
	some n in m.names
	some p in patterns
	glob.match(p, null, n)
}

# _glob_pattern turns an allow-list entry into a glob.match pattern (used with
# null delimiters): "*" stays a wildcard, every other character is literal.
_glob_pattern(e) := replace(glob.quote_meta(e), "\\*", "*")

# --- Reports ---------------------------------------------------------------

# _layer_allows is one layer's verdict on one model, as the model rule sees
# it.
_layer_allows(l, names, groups) if {
	count(names) > 0
	_layer_ok(_lists[l], array.concat(array.concat(names, groups), ["*", "all-proxy-models"]), names)
}

# _entry_permits tells whether one configured entry permits the model. It is
# the per-entry form of the layer test, used only to report matched entries;
# the policy tests check that it agrees with _permitted.
_entry_permits(_, e, _, _) if _grants_everything[e]

_entry_permits(_, e, names, groups) if {
	not _special[e]
	not contains(e, "*")
	some x in array.concat(names, groups)
	x == e
}

_entry_permits(_, e, names, _) if {
	not _special[e]
	contains(e, "*")
	some n in names
	glob.match(_glob_pattern(e), null, n)
}

_entry_permits("key", "all-team-models", names, groups) if {
	_key_all_team
	_layer_allows("team", names, groups)
}

# _layer_report is one layer's entry in layers. It is computed entry by entry
# so that matched_entry is the first entry in list order, and so that
# all-team-models reports the team's verdict.
_layer_report(l, names, groups) := {"restricts": r, "allowed": a, "matched_entry": _first(matched)} if {
	es := _configured[l]
	r := l in _restricts
	matched := [e | some e in es; _entry_permits(l, e, names, groups)]
	a := _report_allowed(r, matched, names)
}

_report_allowed(restricts, matched, names) := false if {
	count(names) == 0
} else if {
	not restricts
} else := count(matched) > 0

_first(xs) := xs[0] if {
	count(xs) > 0
} else := null

# Reasons say which layer decided. An allowed model gets one fixed reason
# (every layer that restricts permits it); a denied one a verdict per layer,
# not entry by entry (that is what layers is for), to keep decisions cheap.

# _denied_layer_reason describes a layer of a model that was not allowed.
_denied_layer_reason(l, model) := concat("", [l, ": does not restrict"]) if {
	not _restricts[l]
} else := concat("", [l, ": no-default-models on a personal key"]) if {
	l == "user"
	_user_list == ["no-default-models"]
} else := concat("", [l, ": permits"]) if {
	_layer_allows(l, model.names, model.access_groups)
} else := concat("", [l, ": no entry matches"])
