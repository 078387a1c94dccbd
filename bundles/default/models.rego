# The model rule: whether a principal may use a model (DESIGN §5, §10.6).
# Listing (visible_models), retrieving and calling (decision) all match the
# entries through the one compiled form of the lists (_checks), so "listed"
# and "allowed" cannot drift apart.
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
#   rule as decision (_checks, below). Custom deny rules do not filter the
#   list (DESIGN §10.10).
# entrypoint: true
visible_models := _indexed_visible if {
	_has_index
} else := {input.candidates[i].id |
	some i in _user_hits
	count(input.candidates[i].names) > 0 # an empty chain is permitted nothing
}

_has_index if is_set(input.candidate_index.ids)

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

# The model rule has one meaning in two forms, and the policy tests run every
# case through both. Both read the layer lists compiled once into sets
# (_checks), so that an entry is matched the same way in each:
#
#   - _model_ok(m) checks one model (a request's), layer by layer;
#   - _key_hits, _team_hits and _user_hits narrow the candidate list layer by
#     layer, so that the work per candidate is a few set lookups.
#
# Neither uses else or a function inside a comprehension: the engine
# partially evaluates the entry points once per principal (DESIGN §8), and
# OPA keeps such rules whole instead of specialising them. The principal's
# lists then become constants in the residual policy.

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

# --- One model ------------------------------------------------------------

# _model_ok tells whether the principal may use model m, an object with
# "names" (the chain) and "access_groups".
_model_ok(m) if {
	count(m.names) > 0 # an empty chain is permitted nothing
	_layer_permits("key", m)
	_layer_permits("team", m)
	_layer_permits("user", m)
}

# _layer_permits tells whether layer l permits model m: the layer does not
# restrict, or a chain name or access group is an exact entry, or a chain
# name matches a glob entry. Globs never match access groups; the entry "*"
# is the empty prefix and matches every name.
_layer_permits(l, _) if _open[l]

_layer_permits(l, m) if {
	exact := _checks[l].exact
	count(exact) > 0
	some n in m.names
	n in exact
}

_layer_permits(l, m) if {
	exact := _checks[l].exact
	count(exact) > 0
	some g in m.access_groups
	g in exact
}

_layer_permits(l, m) if {
	ps := _checks[l].prefixes
	count(ps) > 0
	strings.any_prefix_match(m.names, ps)
}

_layer_permits(l, m) if {
	some p in _checks[l].patterns
	some n in m.names
	glob.match(p, null, n)
}

# --- A list ---------------------------------------------------------------

# The indices of input.candidates the key layer permits, then those of them
# the team layer permits, then the user layer. One rule per layer and kind of
# entry: the kinds a layer does not use cost nothing.
_key_hits contains i if {
	_open.key
	some i, _ in input.candidates
}

_key_hits contains i if {
	exact := _checks.key.exact
	count(exact) > 0
	some i, c in input.candidates
	some n in c.names
	n in exact
}

_key_hits contains i if {
	exact := _checks.key.exact
	count(exact) > 0
	some i, c in input.candidates
	some g in c.access_groups
	g in exact
}

_key_hits contains i if {
	ps := _checks.key.prefixes
	count(ps) > 0
	some i, c in input.candidates
	strings.any_prefix_match(c.names, ps)
}

_key_hits contains i if {
	some p in _checks.key.patterns
	some i, c in input.candidates
	some n in c.names
	glob.match(p, null, n)
}

_team_hits contains i if {
	_open.team
	some i in _key_hits
}

_team_hits contains i if {
	exact := _checks.team.exact
	count(exact) > 0
	some i in _key_hits
	some n in input.candidates[i].names
	n in exact
}

_team_hits contains i if {
	exact := _checks.team.exact
	count(exact) > 0
	some i in _key_hits
	some g in input.candidates[i].access_groups
	g in exact
}

_team_hits contains i if {
	ps := _checks.team.prefixes
	count(ps) > 0
	some i in _key_hits
	strings.any_prefix_match(input.candidates[i].names, ps)
}

_team_hits contains i if {
	some p in _checks.team.patterns
	some i in _key_hits
	some n in input.candidates[i].names
	glob.match(p, null, n)
}

_user_hits contains i if {
	_open.user
	some i in _team_hits
}

_user_hits contains i if {
	exact := _checks.user.exact
	count(exact) > 0
	some i in _team_hits
	some n in input.candidates[i].names
	n in exact
}

_user_hits contains i if {
	exact := _checks.user.exact
	count(exact) > 0
	some i in _team_hits
	some g in input.candidates[i].access_groups
	g in exact
}

_user_hits contains i if {
	ps := _checks.user.prefixes
	count(ps) > 0
	some i in _team_hits
	strings.any_prefix_match(input.candidates[i].names, ps)
}

_user_hits contains i if {
	some p in _checks.user.patterns
	some i in _team_hits
	some n in input.candidates[i].names
	glob.match(p, null, n)
}

# --- A list, through the index -------------------------------------------

# The gateway passes input.candidate_index beside the list: the ids of the
# candidates with a non-empty chain, sets of those ids by chain name
# ("names") and by access group ("access_groups"), and, for each glob in the
# caller's key, team and user lists, the set of ids with a chain name the
# glob matches ("globs"; matched once per candidate list, rego/globindex.go).
# A layer's permitted ids are then unions of index entries, and the visible
# ids the intersection of the layers: set operations instead of a visit to
# every candidate, whatever the globs look like. A glob the index lacks is
# matched by visiting the list. Inputs without an index (opa eval on a
# hand-written input) take the narrowing above; the policy tests check that
# all forms agree.
_indexed_visible := intersection({s | some _, s in sets}) if {
	restricting := {l | some l in _layer_names; not _open[l]}
	sets := {l: _indexed_layer(l) | some l in restricting}
	count(sets) == count(restricting) # fail closed: every layer that restricts is worked out
	count(sets) > 0
} else := input.candidate_index.ids if {
	count(_open) == 3
}

# _indexed_layer(l) is the set of ids layer l permits, for a layer that
# restricts: one union of the index's sets for its entries. Exact entries
# are looked up with object.filter (a built-in, not an iteration per entry).
_indexed_layer(l) := union((((by_name | by_group) | by_glob) | {scanned})) if {
	not _open[l]
	es := _lists[l]
	ix := input.candidate_index
	indexed := object.filter(ix.globs, es)
	not_exact := _special | {g | some g, _ in indexed}
	by_name := {s | some s in object.remove(object.filter(ix.names, es), not_exact)}
	by_group := {s | some s in object.remove(object.filter(ix.access_groups, es), not_exact)}
	by_glob := {s | some s in indexed}
	scanned := _scanned_globs(es, indexed)
}

# _scanned_globs are the ids matched by globs in es that the index lacks
# (an index made for other lists): they are matched by visiting the list.
# Counting stars tells at once, without a visit to each entry, whether
# there are any: every star of es is in a glob of the index, or in "*"
# (the layer would be open then).
_scanned_globs(es, indexed) := set() if {
	strings.count(concat("", es), "*") == sum([strings.count(g, "*") | some g, _ in indexed])
} else := {cand.id |
	unindexed := {_glob_pattern(e) |
		some e in es
		contains(e, "*")
		not _special[e]
		not indexed[e]
	}
	some cand in input.candidates
	count(cand.names) > 0
	some p in unindexed
	some n in cand.names
	glob.match(p, null, n)
}

# --- Compiled lists ----------------------------------------------------------

# _checks compiles the list of each layer that restricts into exact entries
# (model, alias and access-group names) and its globs (looked up in the
# candidate index), and, for the forms that match names one by one, literal
# prefixes of "prefix*" globs (the common glob, matched with
# strings.any_prefix_match) and glob.match patterns for the other globs.
_checks := {l: _compile(es) |
	some l, es in _lists
	not _open[l]
}

_compile(es) := {
	"exact": exact,
	"globs": globs,
	"prefixes": prefixes,
	"patterns": patterns,
} if {
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

# _glob_pattern turns an allow-list entry into a glob.match pattern (used with
# null delimiters): "*" stays a wildcard, every other character is literal.
_glob_pattern(e) := replace(glob.quote_meta(e), "\\*", "*")

# --- Reports ---------------------------------------------------------------

# _layer_allows is one layer's verdict on one model, as the model rule sees
# it.
_layer_allows(l, names, groups) if {
	count(names) > 0
	_layer_permits(l, {"names": names, "access_groups": groups})
}

# _entry_permits tells whether one configured entry permits the model. It is
# the per-entry form of the layer test, used only to report matched entries;
# the policy tests check that it agrees with _model_ok.
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

# _denied_layer_reason describes layer l for input.model, a model that was
# not allowed.
_denied_layer_reason(l) := concat("", [l, ": does not restrict"]) if {
	not _restricts[l]
}

_denied_layer_reason(l) := concat("", [l, ": no-default-models on a personal key"]) if {
	_restricts[l]
	_no_default_models(l)
}

_denied_layer_reason(l) := concat("", [l, ": permits"]) if {
	_restricts[l]
	not _no_default_models(l)
	_model_layer_allows(l)
}

_denied_layer_reason(l) := concat("", [l, ": no entry matches"]) if {
	_restricts[l]
	not _no_default_models(l)
	not _model_layer_allows(l)
}

_no_default_models("user") if _user_list == ["no-default-models"]

# _model_key_ok, _model_team_ok and _model_user_ok are the layers' verdicts
# on input.model (authz.rego's _model_allowed).
_model_key_ok if _layer_permits("key", input.model)

_model_team_ok if _layer_permits("team", input.model)

_model_user_ok if _layer_permits("user", input.model)

# _model_layer_allows(l) is _layer_allows(l, ...) for input.model, through
# the rules _model_allowed has already evaluated (OPA keeps their values
# for the evaluation), so that a denial matches the chain once per layer.
_model_layer_allows("key") if {
	count(input.model.names) > 0
	_model_key_ok
}

_model_layer_allows("team") if {
	count(input.model.names) > 0
	_model_team_ok
}

_model_layer_allows("user") if {
	count(input.model.names) > 0
	_model_user_ok
}
