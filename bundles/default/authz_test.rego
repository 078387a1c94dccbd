package gateway.authz

_t_admin_key := {"key": {"role": "admin"}}

_t_blocked_team := {"team": {"blocked": true}}

# Route rules: each case names the client-visible outcome it expects.
_route_cases := [
	# health
	{"note": "health without a key", "tc": {"route": "health", "override": {"key": null}}, "want": _t_ok},
	{"note": "health with a blocked team", "tc": {"route": "health", "team": [], "override": _t_blocked_team}, "want": _t_ok},
	# authentication, in case the edge did not check
	{"note": "inference without a key", "tc": {"override": {"key": null}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "models.list without a key", "tc": {"route": "models.list", "override": {"key": null}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "blocked key", "tc": {"override": {"key": {"blocked": true}}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "expired key", "tc": {"override": {"key": {"expires_at": "2026-11-24T11:59:59Z"}}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "key expiring now", "tc": {"override": {"key": {"expires_at": _t_now}}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "key not yet expired", "tc": {"override": {"key": {"expires_at": "2026-11-24T12:00:01Z"}}}, "want": _t_ok},
	{"note": "unparsable expiry", "tc": {"override": {"key": {"expires_at": "tomorrow"}}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "key.expired as the gateway sets it", "tc": {"override": {"key": {"expires_at": "2026-11-24T12:00:01Z", "expired": true}}}, "want": _t_denied(401, "invalid_api_key")},
	{"note": "key.expired false", "tc": {"override": {"key": {"expires_at": "2026-11-24T12:00:01Z", "expired": false}}}, "want": _t_ok},
	{"note": "key.expired not a boolean", "tc": {"override": {"key": {"expired": "no"}}}, "want": _t_denied(401, "invalid_api_key")},
	# blocked team, every route class but health
	{"note": "blocked team, inference", "tc": {"team": [], "override": _t_blocked_team}, "want": _t_denied(403, "permission_denied")},
	{"note": "blocked team, models.list", "tc": {"route": "models.list", "team": [], "override": _t_blocked_team}, "want": _t_denied(403, "permission_denied")},
	{"note": "blocked team, models.get", "tc": {"route": "models.get", "team": [], "override": _t_blocked_team}, "want": _t_denied(403, "permission_denied")},
	{
		"note": "blocked team, admin key",
		"tc": {"route": "admin", "team": [], "override": object.union(_t_blocked_team, _t_admin_key)},
		"want": _t_denied(403, "permission_denied"),
	},
	{
		"note": "blocked team beats a forbidden model",
		"tc": {"key": ["claude"], "team": [], "override": _t_blocked_team},
		"want": _t_denied(403, "permission_denied"),
	},
	{"note": "team not blocked", "tc": {"team": [], "override": {"team": {"blocked": false}}}, "want": _t_ok},
	# admin
	{"note": "admin route, ordinary key", "tc": {"route": "admin", "operation": "key.generate"}, "want": _t_denied(403, "permission_denied")},
	{"note": "admin route, master key", "tc": {"route": "admin", "operation": "key.generate", "override": _t_admin_key}, "want": _t_ok},
	{
		"note": "admin route, proxy_admin user",
		"tc": {"route": "admin", "operation": "team.new", "user": [], "override": {"user": {"role": "proxy_admin"}}},
		"want": _t_ok,
	},
	{
		"note": "admin route, internal_user",
		"tc": {"route": "admin", "operation": "team.new", "user": []},
		"want": _t_denied(403, "permission_denied"),
	},
	{
		"note": "key reads its own key info",
		"tc": {"route": "admin", "operation": "key.info", "override": {"request": {"self": true}}},
		"want": _t_ok,
	},
	{
		"note": "key reads another key's info",
		"tc": {"route": "admin", "operation": "key.info", "override": {"request": {"self": false}}},
		"want": _t_denied(403, "permission_denied"),
	},
	{
		"note": "self does not open other admin operations",
		"tc": {"route": "admin", "operation": "key.update", "override": {"request": {"self": true}}},
		"want": _t_denied(403, "permission_denied"),
	},
	{
		"note": "self must be the boolean true",
		"tc": {"route": "admin", "operation": "key.info", "override": {"request": {"self": "true"}}},
		"want": _t_denied(403, "permission_denied"),
	},
	{"note": "admin role is case-sensitive", "tc": {"route": "admin", "override": {"key": {"role": "Admin"}}}, "want": _t_denied(403, "permission_denied")},
	# models.list and models.get
	{"note": "models.list, restricted key", "tc": {"route": "models.list", "key": ["claude"]}, "want": _t_ok},
	{"note": "models.get, permitted model", "tc": {"route": "models.get", "key": ["gpt-4o"]}, "want": _t_ok},
	{"note": "models.get, forbidden model", "tc": {"route": "models.get", "key": ["claude"]}, "want": _t_denied(404, "model_not_found")},
	# unknown input
	{"note": "unknown route class", "tc": {"route": "debug"}, "want": _t_denied(403, "permission_denied")},
	{"note": "route missing", "tc": {"override": {"request": {"route": null}}}, "want": _t_denied(403, "permission_denied")},
]

_t_ok := {"allow": true, "status": 200, "code": ""}

_t_denied(status, code) := {"allow": false, "status": status, "code": code}

test_routes[note] if {
	some c in _route_cases
	note := c.note
	d := _t_decision(c.tc)
	object.subset(d, c.want)
}

test_missing_input_denies if {
	d := decision with input as {}
	d.allow == false
	d.status == 401
}

test_no_input_denies if {
	not decision.allow
}

# A forbidden model and an unknown one give the same client-visible answer.
test_forbidden_and_unknown_are_identical[note] if {
	some c in [
		{"note": "inference", "route": "inference"},
		{"note": "models.get", "route": "models.get"},
	]
	note := c.note
	forbidden := _t_decision({"route": c.route, "key": ["claude"], "requested": "gpt-5", "names": ["gpt-5"]})
	unknown := _t_decision({"route": c.route, "key": [], "requested": "gpt-5", "names": ["gpt-5"], "found": false})
	_t_outcome(forbidden) == _t_outcome(unknown)
	_t_outcome(unknown) == object.union(_t_not_found("gpt-5"), {"allow": false})
}

test_not_found_message_keeps_the_requested_name if {
	d := _t_decision({"key": ["x"], "requested": "openrouter/qwen/qwen3.5:free`", "names": ["openrouter/qwen/qwen3.5:free`"]})
	d.message == "The model `openrouter/qwen/qwen3.5:free`` does not exist or you do not have access to it."
}

test_not_found_without_model if {
	d := _t_decision({"override": {"model": null}})
	object.subset(d, _t_not_found(""))
}

# A hand-written model not found, with or without names: the same 404,
# with the layers' verdicts in its reasons.
test_not_found_without_names if {
	every names in [[], "absent"] {
		model := object.filter({"requested": "x", "found": false, "names": names, "access_groups": []}, _t_keys_unless(names))
		d := decision with input as _t_input({"key": ["x"]}) with input.model as model
		object.subset(d, _t_not_found("x"))
		d.reasons == ["model: not found", "key: no entry matches", "team: does not restrict", "user: does not restrict"]
	}
}

_t_keys_unless(names) := ["requested", "found", "access_groups"] if names == "absent"

_t_keys_unless(names) := ["requested", "found", "names", "access_groups"] if names != "absent"

# Custom rules (package gateway.custom) narrow on every route class but
# health, after the model rule.
_custom_cases := [
	{"note": "inference", "tc": {}, "want": _t_denied(403, "policy_denied")},
	{"note": "models.list", "tc": {"route": "models.list"}, "want": _t_denied(403, "policy_denied")},
	{"note": "models.get", "tc": {"route": "models.get"}, "want": _t_denied(403, "policy_denied")},
	{"note": "admin with master key", "tc": {"route": "admin", "override": _t_admin_key}, "want": _t_denied(403, "policy_denied")},
	{"note": "health is never denied", "tc": {"route": "health"}, "want": _t_ok},
	{"note": "forbidden model stays 404", "tc": {"key": ["claude"]}, "want": _t_denied(404, "model_not_found")},
	{"note": "unknown model stays 404", "tc": {"found": false}, "want": _t_denied(404, "model_not_found")},
	{"note": "admin denial stays 403 permission_denied", "tc": {"route": "admin"}, "want": _t_denied(403, "permission_denied")},
]

test_custom_deny[note] if {
	some c in _custom_cases
	note := c.note
	d := decision with input as _t_input(c.tc)
		with data.gateway.custom.deny as {"streaming is off on weekends", "b: budget exceeded"}
	object.subset(d, c.want)
}

test_custom_deny_message if {
	d := decision with input as _t_input({})
		with data.gateway.custom.deny as {"z last", "a first", "m middle"}
	d.message == "a first; m middle; z last"
	d.reasons == ["custom: a first", "custom: m middle", "custom: z last"]
}

test_custom_deny_empty_allows if {
	d := decision with input as _t_input({}) with data.gateway.custom.deny as set()
	d.allow == true
}

test_custom_deny_non_strings if {
	d := decision with input as _t_input({}) with data.gateway.custom.deny as {42}
	d.code == "policy_denied"
	d.message == "42"
}

# Reasons say which layer decided.
_reason_cases := [
	{
		"note": "allowed by key entry",
		"tc": {"key": ["gpt-4o"], "team": [], "user": ["default-models"]},
		"want": ["model: every layer that restricts permits it"],
	},
	{
		"note": "denied by team",
		"tc": {"key": ["gpt-4o"], "team": ["claude"]},
		"want": ["key: permits", "team: no entry matches", "user: does not restrict"],
	},
	{
		"note": "denied by key and user",
		"tc": {"key": ["claude"], "team": ["*"], "user": ["anthropic/*"]},
		"want": ["key: no entry matches", "team: permits", "user: no entry matches"],
	},
	{
		"note": "key star, team denies",
		"tc": {"key": ["*"], "team": ["claude"]},
		"want": ["key: permits", "team: no entry matches", "user: does not restrict"],
	},
	{
		"note": "key all-team-models, team denies",
		"tc": {"key": ["all-team-models"], "team": ["openai/o1-*"]},
		"want": ["key: permits", "team: no entry matches", "user: does not restrict"],
	},
	{
		"note": "all-team-models without a team",
		"tc": {"key": ["all-team-models"]},
		"want": ["key: no entry matches", "team: does not restrict", "user: does not restrict"],
	},
	{
		"note": "no-default-models",
		"tc": {"key": [], "user": ["no-default-models"]},
		"want": ["key: does not restrict", "team: does not restrict", "user: no-default-models on a personal key"],
	},
	# An unknown model gets the layers' verdicts on its name too (the same
	# work as a forbidden model's denial: DESIGN §2, no timing difference).
	{
		"note": "unknown model",
		"tc": {"found": false},
		"want": ["model: not found", "key: does not restrict", "team: does not restrict", "user: does not restrict"],
	},
	{
		"note": "unknown model, key restricts",
		"tc": {"found": false, "key": ["claude"]},
		"want": ["model: not found", "key: no entry matches", "team: does not restrict", "user: does not restrict"],
	},
	{"note": "empty chain", "tc": {"names": []}, "want": ["model: empty chain"]},
	{"note": "models.list", "tc": {"route": "models.list", "key": ["claude"]}, "want": ["models.list: open to every valid key; the list is filtered by visible_models"]},
	{"note": "master key", "tc": {"route": "admin", "override": _t_admin_key}, "want": ["admin: key role admin"]},
	{
		"note": "own key info",
		"tc": {"route": "admin", "operation": "key.info", "override": {"request": {"self": true}}},
		"want": ["admin: key reading its own key info"],
	},
	{"note": "blocked team", "tc": {"team": [], "override": _t_blocked_team}, "want": ["team: blocked"]},
]

test_reasons[note] if {
	some c in _reason_cases
	note := c.note
	d := _t_decision(c.tc)
	d.reasons == c.want
}

# Every decision is well formed: the engine refuses anything else.
test_decision_shape[note] if {
	some c in array.concat(_route_cases, _reason_cases)
	note := c.note
	d := _t_decision(c.tc)
	is_boolean(d.allow)
	is_number(d.status)
	is_string(d.code)
	is_string(d.message)
	every r in d.reasons {
		is_string(r)
	}
	count(object.keys(d)) == 5
}
