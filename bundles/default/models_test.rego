package gateway.authz

# Model rule cases for an inference request. Unless a case says otherwise the
# model is gpt-4o: names ["gpt-4o", "openai/gpt-4o"], access group
# default-models; team and user are absent (null).
_model_cases := [
	# Layers that do not restrict.
	{"note": "no lists anywhere", "key": [], "allow": true},
	{"note": "empty team and user lists", "key": [], "team": [], "user": [], "allow": true},
	# Exact names, any name of the chain.
	{"note": "key exact requested name", "key": ["gpt-4o"], "allow": true},
	{"note": "key exact provider model", "key": ["openai/gpt-4o"], "allow": true},
	{"note": "key exact other name", "key": ["gpt-4o-mini"], "allow": false},
	{"note": "lookup is case-sensitive", "key": ["GPT-4O"], "allow": false},
	{"note": "trailing space is another name", "key": ["gpt-4o "], "allow": false},
	# Access groups.
	{"note": "key access group", "key": ["default-models"], "allow": true},
	{"note": "key other access group", "key": ["restricted-models"], "allow": false},
	{"note": "no access groups on the model", "key": ["default-models"], "groups": [], "allow": false},
	# Globs.
	{"note": "key prefix glob", "key": ["openai/*"], "allow": true},
	{"note": "key glob of other provider", "key": ["anthropic/*"], "allow": false},
	{"note": "key suffix glob", "key": ["*/gpt-4o"], "allow": true},
	{"note": "key inner glob", "key": ["open*/gpt-*"], "allow": true},
	{"note": "glob star matches an empty run", "key": ["gpt-4o*"], "allow": true},
	{"note": "glob does not match access groups", "key": ["default-*"], "allow": false},
	{"note": "glob equal to an access group's name", "key": ["team-*"], "groups": ["team-*"], "allow": false},
	{"note": "team glob equal to an access group's name", "key": [], "team": ["*-models"], "groups": ["*-models"], "allow": false},
	{"note": "user star-only group name", "key": [], "user": ["**"], "names": [], "groups": ["**"], "allow": false},
	# Special values.
	{"note": "key star", "key": ["*"], "allow": true},
	{"note": "key all-proxy-models", "key": ["all-proxy-models"], "allow": true},
	{"note": "key star beside a non-matching entry", "key": ["claude", "*"], "allow": true},
	{"note": "key all-team-models, team allows", "key": ["all-team-models"], "team": ["gpt-4o"], "allow": true},
	{"note": "key all-team-models, team denies", "key": ["all-team-models"], "team": ["claude"], "allow": false},
	{"note": "key all-team-models, team does not restrict", "key": ["all-team-models"], "team": [], "allow": true},
	{"note": "key all-team-models without a team", "key": ["all-team-models"], "allow": false},
	{
		"note": "key all-team-models, team_id of a missing team",
		"key": ["all-team-models"],
		"override": {"key": {"team_id": "gone"}},
		"allow": false,
	},
	{"note": "all-team-models is no name on a team", "key": [], "team": ["all-team-models"], "allow": false},
	{
		"note": "special values never match as names",
		"key": ["no-default-models"], "names": ["no-default-models"], "groups": [],
		"allow": false,
	},
	# Team layer, intersection with the key.
	{"note": "team access group", "key": [], "team": ["default-models"], "allow": true},
	{"note": "team other model", "key": [], "team": ["claude"], "allow": false},
	{"note": "key and team both permit", "key": ["gpt-4o"], "team": ["default-models"], "allow": true},
	{"note": "key permits, team does not (intersection)", "key": ["gpt-4o"], "team": ["claude"], "allow": false},
	{"note": "team permits, key does not (intersection)", "key": ["claude"], "team": ["gpt-4o"], "allow": false},
	# User layer, on personal and team keys.
	{"note": "user permits, personal key", "key": [], "user": ["gpt-4o"], "allow": true},
	{"note": "user denies, personal key", "key": [], "user": ["claude"], "allow": false},
	{"note": "user denies, team key", "key": [], "team": ["gpt-4o"], "user": ["claude"], "allow": false},
	{"note": "user glob, team key", "key": ["gpt-4o"], "team": ["default-models"], "user": ["openai/*"], "allow": true},
	{"note": "no-default-models, personal key", "key": [], "user": ["no-default-models"], "allow": false},
	{
		"note": "no-default-models beside a match, personal key",
		"key": ["gpt-4o"], "user": ["no-default-models", "gpt-4o"],
		"allow": false,
	},
	{"note": "no-default-models alone, team key", "key": [], "team": [], "user": ["no-default-models"], "allow": true},
	{
		"note": "no-default-models beside a match, team key",
		"key": [], "team": [], "user": ["no-default-models", "gpt-4o"],
		"allow": true,
	},
	{
		"note": "no-default-models beside a non-match, team key",
		"key": [], "team": [], "user": ["no-default-models", "claude"],
		"allow": false,
	},
	# Fail closed.
	{"note": "empty chain, nothing restricts", "key": [], "names": [], "allow": false},
	{"note": "empty chain, key star", "key": ["*"], "names": [], "allow": false},
	{"note": "model not found, nothing restricts", "key": [], "found": false, "allow": false},
	{"note": "model not found, key star", "key": ["*"], "found": false, "allow": false},
	{"note": "found is not true", "key": [], "override": {"model": {"found": "yes"}}, "allow": false},
	{"note": "model null on inference", "key": [], "override": {"model": null}, "allow": false},
	{"note": "key models null", "key": [], "override": {"key": {"models": null}}, "allow": false},
	{"note": "user models missing", "key": [], "user": [], "override": {"user": {"models": null}}, "allow": false},
]

# The model rule has three forms (one model, a list, a list through the
# index); every case goes through all three.
test_model_rule_both_plans[note] if {
	some tc in _model_cases
	inp := _t_input(tc)
	is_object(inp.model)
	note := tc.note
	m := {"id": "m", "names": inp.model.names, "access_groups": inp.model.access_groups}
	each := _t_plan_each([m]) with input as inp
	sets := _t_plan_sets([m]) with input as inp
	each == sets
	indexed := _t_plan_indexed([m]) with input as inp
	indexed == {"m" | some _ in each}
	_t_plan_ok(tc, inp, each)
}

# _t_plan_each is the one-model form over ms, _t_plan_sets the list form
# (the list is input.candidates): the indices of ms each permits.
_t_plan_each(ms) := {i | some i, m in ms; _model_ok(m)}

_t_plan_sets(ms) := {i | some i in hits; count(ms[i].names) > 0} if {
	hits := _user_hits with input.candidates as ms
}

# _t_plan_indexed is the list form through input.candidate_index: the ids
# of ms it permits.
_t_plan_indexed(ms) := ids if {
	ids := {id | some id in _indexed_visible} with input.candidates as ms
		with input.candidate_index as _t_index(ms)
}

# _t_index builds input.candidate_index for a list as the gateway does
# (rego/input.go, candidateIndex; rego/globindex.go): the globs are those of
# the input's key, team and user lists.
_t_index(cands) := {
	"ids": {c.id | some c in cands; count(c.names) > 0},
	"names": {n: {c.id | some c in cands; n in c.names} |
		some c0 in cands
		some n in c0.names
	},
	"access_groups": {g: {c.id | some c in cands; count(c.names) > 0; g in c.access_groups} |
		some c0 in cands
		count(c0.names) > 0
		some g in c0.access_groups
	},
	"globs": {g: {c.id | some c in cands; some n in c.names; glob.match(_glob_pattern(g), null, n)} |
		some g in _t_input_globs
	},
}

_t_input_globs contains e if {
	some layer in ["key", "team", "user"]
	some e in input[layer].models
	contains(e, "*")
	e != "*"
}

# The model rule does not look at found; decision does.
_t_plan_ok(tc, _, got) if {
	tc.allow
	got == {0}
}

_t_plan_ok(tc, inp, got) if {
	not tc.allow
	inp.model.found == true
	got == set()
}

_t_plan_ok(tc, inp, _) if {
	not tc.allow
	inp.model.found != true
}

test_model_rule[note] if {
	some tc in _model_cases
	note := tc.note
	d := _t_decision(tc)
	d.allow == tc.allow
	_t_model_status_ok(tc, d)
}

_t_model_status_ok(tc, d) if {
	tc.allow
	d.status == 200
}

_t_model_status_ok(tc, d) if {
	not tc.allow
	object.subset(d, _t_not_found(_t_requested(tc)))
}

_t_requested(tc) := r if {
	r := _t_input(tc).model.requested
	is_string(r)
} else := ""

# The glob rules: "*" is any run of characters, "/" included; every other
# character, ".", "?", "[", "{" and "\" among them, is literal.
_glob_cases := [
	{"entry": "bedrock/*", "name": "bedrock/anthropic.claude", "match": true},
	{"entry": "bedrock/*", "name": "bedrockz/x", "match": false},
	{"entry": "bedrock/*", "name": "bedrock", "match": false},
	{"entry": "openai/*", "name": "openai/org/team/model", "match": true},
	{"entry": "openai/*", "name": "azure/openai/gpt-4o", "match": false},
	{"entry": "openai/*", "name": "openai/gpt-4o.2024.v1", "match": true},
	{"entry": "x*z", "name": "x.y/w.z", "match": true},
	{"entry": "*/gpt-4o", "name": "a.b/gpt-4o", "match": true},
	{"entry": "a.b*", "name": "a.bc", "match": true},
	{"entry": "a.b*", "name": "axbc", "match": false},
	{"entry": "gpt-4?*", "name": "gpt-4o", "match": false},
	{"entry": "gpt-4?*", "name": "gpt-4?-mini", "match": true},
	{"entry": "[ab]*", "name": "a", "match": false},
	{"entry": "[ab]*", "name": "[ab]x", "match": true},
	{"entry": "{a,b}*", "name": "a", "match": false},
	{"entry": "{a,b}*", "name": "{a,b}", "match": true},
	{"entry": "a\\*", "name": "a\\x", "match": true},
	{"entry": "a\\*", "name": "ax", "match": false},
	{"entry": "*-mini", "name": "gpt-4o-mini", "match": true},
	{"entry": "*-mini", "name": "gpt-4o-mini-2024", "match": false},
	{"entry": "*.*", "name": "a.b", "match": true},
	{"entry": "*.*", "name": "ab", "match": false},
	{"entry": "x*y*z", "name": "x/y/z", "match": true},
	{"entry": "x*y*z", "name": "xz", "match": false},
	{"entry": "**", "name": "anything/at/all", "match": true},
]

test_glob_literal[note] if {
	some tc in _glob_cases
	note := sprintf("%s ~ %s", [tc.entry, tc.name])
	c := {"key": [tc.entry], "names": [tc.name], "groups": []}
	d := _t_decision(c)
	d.allow == tc.match
	r := layers.key with input as _t_input(c)
	r.allowed == tc.match
}

# layers reports each layer; the reasons of a decision are built from it.
_layer_cases := [
	{
		"note": "key matched, others open",
		"tc": {"key": ["claude", "openai/gpt-4o"], "team": [], "user": null},
		"want": {
			"key": {"restricts": true, "allowed": true, "matched_entry": "openai/gpt-4o"},
			"team": {"restricts": false, "allowed": true, "matched_entry": null},
			"user": {"restricts": false, "allowed": true, "matched_entry": null},
		},
	},
	{
		"note": "first entry in list order is reported",
		"tc": {"key": ["openai/*", "gpt-4o", "default-models"]},
		"want": {
			"key": {"restricts": true, "allowed": true, "matched_entry": "openai/*"},
			"team": {"restricts": false, "allowed": true, "matched_entry": null},
			"user": {"restricts": false, "allowed": true, "matched_entry": null},
		},
	},
	{
		"note": "team denies",
		"tc": {"key": ["*"], "team": ["claude"], "user": ["default-models"]},
		"want": {
			"key": {"restricts": true, "allowed": true, "matched_entry": "*"},
			"team": {"restricts": true, "allowed": false, "matched_entry": null},
			"user": {"restricts": true, "allowed": true, "matched_entry": "default-models"},
		},
	},
	{
		"note": "all-team-models reports the team's verdict",
		"tc": {"key": ["all-team-models"], "team": ["claude"]},
		"want": {
			"key": {"restricts": true, "allowed": false, "matched_entry": null},
			"team": {"restricts": true, "allowed": false, "matched_entry": null},
			"user": {"restricts": false, "allowed": true, "matched_entry": null},
		},
	},
	{
		"note": "no-default-models on a personal key",
		"tc": {"key": [], "user": ["no-default-models", "gpt-4o"]},
		"want": {
			"key": {"restricts": false, "allowed": true, "matched_entry": null},
			"team": {"restricts": false, "allowed": true, "matched_entry": null},
			"user": {"restricts": true, "allowed": false, "matched_entry": null},
		},
	},
	{
		"note": "empty chain allows nowhere",
		"tc": {"key": [], "names": []},
		"want": {
			"key": {"restricts": false, "allowed": false, "matched_entry": null},
			"team": {"restricts": false, "allowed": false, "matched_entry": null},
			"user": {"restricts": false, "allowed": false, "matched_entry": null},
		},
	},
]

test_layers[note] if {
	some c in _layer_cases
	note := c.note
	got := layers with input as _t_input(c.tc)
	got == c.want
}

test_layers_undefined_for_malformed_input if {
	not layers with input as _t_input({"key": [], "override": {"key": {"models": null}}})
}

# The fast rule (_permitted, _layer_allows) and the per-entry report
# (layers) are two forms of one rule: they must agree on every case.
test_layers_agree_with_model_rule[note] if {
	some tc in array.concat(_model_cases, _seed_layer_cases)
	inp := _t_input(tc)
	is_object(inp.model)
	note := tc.note
	names := inp.model.names
	groups := inp.model.access_groups
	rep := _t_layers(inp)
	fast := _t_model_permitted(names, groups) with input as inp
	fast == _t_every_allowed(rep)
	team := _t_layer_permits("team", names, groups) with input as inp
	team == _t_layer_agrees(rep, "team")
	user := _t_layer_permits("user", names, groups) with input as inp
	user == _t_layer_agrees(rep, "user")
}

_seed_layer_cases := [
	{"note": "alias chain, key names target", "key": ["b"], "team": ["b"], "names": ["a", "b"], "groups": []},
	{"note": "alias chain, key names alias", "key": ["a"], "names": ["a", "b"], "groups": []},
]

# _t_layers is null where layers is undefined (malformed input): there the
# fast rule must deny too.
_t_layers(inp) := rep if {
	rep := layers with input as inp
} else := null

_t_every_allowed(rep) if {
	rep != null
	every l in ["key", "team", "user"] {
		rep[l].allowed
	}
} else := false

_t_layer_agrees(rep, l) := x if {
	is_object(rep)
	x := rep[l].allowed
} else := false

_t_model_permitted(names, groups) if {
	_model_ok({"names": names, "access_groups": groups})
} else := false

_t_layer_permits(l, names, groups) if {
	_layer_allows(l, names, groups)
} else := false

_t_candidates := [
	{"id": "gpt-4o", "names": ["gpt-4o", "openai/gpt-4o"], "access_groups": ["default-models"]},
	{"id": "gpt-4o-mini", "names": ["gpt-4o-mini", "openai/gpt-4o-mini"], "access_groups": ["default-models"]},
	{"id": "o1-mini", "names": ["o1-mini", "openai/o1-mini"], "access_groups": ["restricted-models"]},
	{"id": "claude", "names": ["claude", "anthropic/claude-sonnet-4"], "access_groups": []},
	{"id": "fast", "names": ["fast", "gpt-4o-mini", "openai/gpt-4o-mini"], "access_groups": ["default-models"]},
	{"id": "empty", "names": [], "access_groups": ["default-models"]},
]

_visible_cases := [
	{"note": "nothing restricts", "key": [], "want": {"gpt-4o", "gpt-4o-mini", "o1-mini", "claude", "fast"}},
	{"note": "key star", "key": ["*"], "want": {"gpt-4o", "gpt-4o-mini", "o1-mini", "claude", "fast"}},
	{"note": "key access group", "key": ["default-models"], "want": {"gpt-4o", "gpt-4o-mini", "fast"}},
	{"note": "key glob", "key": ["anthropic/*"], "want": {"claude"}},
	{"note": "alias listed through its target", "key": ["gpt-4o-mini"], "want": {"gpt-4o-mini", "fast"}},
	{"note": "alias name only", "key": ["fast"], "want": {"fast"}},
	{"note": "team narrows key", "key": ["default-models"], "team": ["gpt-4o"], "want": {"gpt-4o"}},
	{"note": "user narrows team key", "key": [], "team": ["*"], "user": ["claude"], "want": {"claude"}},
	{"note": "no-default-models, personal key", "key": [], "user": ["no-default-models"], "want": set()},
	{"note": "all-team-models without a team", "key": ["all-team-models"], "want": set()},
	{"note": "no key", "key": [], "override": {"key": null}, "want": set()},
]

test_visible_models[note] if {
	some tc in _visible_cases
	note := tc.note
	inp := _t_input(object.union(tc, {"candidates": _t_candidates}))
	got := visible_models with input as inp
	got == tc.want
	each := _t_plan_each(_t_candidates) with input as inp
	sets := _t_plan_sets(_t_candidates) with input as inp
	each == sets
	ix := _t_index(_t_candidates) with input as inp
	indexed := visible_models with input as object.union(inp, {"candidate_index": ix})
	indexed == tc.want
}

# A glob the index lacks (an index made for other lists) is matched by
# visiting the list, with the same answer.
test_visible_models_glob_missing_from_index[note] if {
	some tc in _glob_index_cases
	note := tc.note
	inp := _t_input(object.union(tc, {"candidates": _t_candidates}))
	full := _t_index(_t_candidates) with input as inp
	partial := object.union(full, {"globs": {}})
	got := visible_models with input as object.union(inp, {"candidate_index": partial})
	got == tc.want
	want := visible_models with input as inp
	got == want
}

_glob_index_cases := [
	{"note": "prefix glob", "key": ["openai/*"], "want": {"gpt-4o", "gpt-4o-mini", "o1-mini", "fast"}},
	{"note": "prefix glob not ending in a separator", "key": ["gpt-4o*"], "want": {"gpt-4o", "gpt-4o-mini", "fast"}},
	{"note": "inner glob", "key": ["*/gpt-*"], "want": {"gpt-4o", "gpt-4o-mini", "fast"}},
	{"note": "two inner stars", "key": ["open*/o*-m*"], "want": {"o1-mini"}},
	{"note": "team glob narrows key", "key": [], "team": ["claude*"], "want": {"claude"}},
]

# The core invariant (DESIGN §2): a listed id can be retrieved, and what can be
# retrieved can be called. Checked for every visible-models case and candidate.
test_listed_iff_retrievable[note] if {
	some tc in _visible_cases
	some c in _t_candidates
	count(c.names) > 0
	note := concat(" / ", [tc.note, c.id])
	listed := c.id in visible_models with input as _t_input(object.union(tc, {"candidates": _t_candidates}))
	one := object.union(tc, {"names": c.names, "groups": c.access_groups, "requested": c.id})
	get := _t_decision(object.union(one, {"route": "models.get", "operation": "models.retrieve"}))
	call := _t_decision(one)
	listed == get.allow
	get.allow == call.allow
}

test_visible_models_empty_without_candidates if {
	visible_models == set() with input as _t_input({"key": []})
}

test_visible_models_ignore_custom_deny if {
	got := visible_models with input as _t_input({"key": [], "candidates": _t_candidates})
		with data.gateway.custom.deny as {"no streaming"}
	count(got) == 5
}
