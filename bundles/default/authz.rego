# METADATA
# title: Gateway default authorization policy
# description: |
#   The decision for every request the gateway serves (DESIGN §6). Route
#   rules, then the model rule (models.rego), then the custom deny rules of
#   package gateway.custom, which can only narrow. Anything not explicitly
#   allowed is denied.
# scope: package
package gateway.authz

# METADATA
# title: Decision
# description: |
#   {"allow", "status", "code", "message", "reasons"}. reasons go to logs and
#   the explain endpoint, never to clients. The default is a deny.
# entrypoint: true
default decision := {
	"allow": false,
	"status": 403,
	"code": "permission_denied",
	"message": "You are not allowed to perform this request.",
	"reasons": ["default: no rule allowed the request"],
}

# decision has no else chain: OPA cannot partially evaluate ordered rules,
# and the engine specialises this rule for each principal (the key, team and
# user known, the request unknown). The order of the branches is written out
# instead: the allow rule comes first, then each deny requires that no allow
# and no earlier deny applies. An allowed request is recognised with a
# constant answer (no reasons are built on the allow path).
decision := {"allow": true, "status": 200, "code": "", "message": "", "reasons": [reason]} if {
	reason := _allow_reason
}

# Every deny applies only when no allow does; the denials are one rule so
# that an allowed request checks that once.
decision := _denial if not _allow_reason

_denial := _deny(401, "invalid_api_key", "Authentication required.", ["key: missing"]) if {
	not _key_present
}

_denial := _deny(401, "invalid_api_key", "The API key is blocked or expired.", ["key: blocked or expired"]) if {
	is_object(input.key)
	not _key_usable
}

_denial := _deny(403, "permission_denied", "The team of this key is blocked.", ["team: blocked"]) if {
	_key_usable
	input.team.blocked == true
}

_denial := _deny(403, "permission_denied", "This route needs an admin key.", ["admin: role admin or proxy_admin required"]) if {
	_key_usable
	not input.team.blocked == true
	_admin_denied
}

_denial := _deny(404, "model_not_found", _model_not_found_message, _model_reasons) if {
	_key_usable
	not input.team.blocked == true
	_model_denied
}

_denial := _deny(403, "policy_denied", concat("; ", msgs), [concat("", ["custom: ", m]) | some m in msgs]) if {
	_key_usable
	not input.team.blocked == true
	not _admin_denied
	not _model_denied
	_custom_denied
	msgs := sort({sprintf("%v", [m]) | some m in data.gateway.custom.deny})
}

# _allow_reason is the reason of an allowed request, one rule per route
# class; undefined when the request is not allowed.
_allow_reason := "health: open to everyone" if {
	input.request.route == "health"
}

_allow_reason := "model: every layer that restricts permits it" if {
	input.request.route == "inference"
	_principal_usable
	_model_allowed
	not _custom_denied
}

_allow_reason := "model: every layer that restricts permits it" if {
	input.request.route == "models.get"
	_principal_usable
	_model_allowed
	not _custom_denied
}

_allow_reason := "models.list: open to every valid key; the list is filtered by visible_models" if {
	input.request.route == "models.list"
	_principal_usable
	not _custom_denied
}

_allow_reason := reason if {
	input.request.route == "admin"
	_principal_usable
	reason := _admin_reason
	not _custom_denied
}

_admin_denied if {
	input.request.route == "admin"
	not _admin_reason
}

_model_denied if {
	input.request.route in {"inference", "models.get"}
	not _model_allowed
}

# _principal_usable holds when the key is usable (which needs a key object)
# and its team, if any, is not blocked.
_principal_usable if {
	_key_usable
	_team_usable
}

_team_usable if input.team == null

_team_usable if input.team.blocked == false

_deny(status, code, message, reasons) := {
	"allow": false,
	"status": status,
	"code": code,
	"message": message,
	"reasons": reasons,
}

# The gateway answers 401 for blocked and expired keys before asking the
# policy; this is the same rule once more, in case a caller did not.
_key_usable if {
	input.key.blocked == false
	input.key.expired == false
}

# An input written by hand may leave key.expired out (the gateway always
# sets it, from expires_at and the request's time): then expires_at and
# input.now decide.
_key_usable if {
	input.key.blocked == false
	not _expired_given
	input.key.expires_at == null
}

_key_usable if {
	input.key.blocked == false
	not _expired_given
	time.parse_rfc3339_ns(input.now) < time.parse_rfc3339_ns(input.key.expires_at)
}

_expired_given if "expired" in object.keys(input.key)

# _admin_reason is why an admin route is allowed; undefined when it is not.
_admin_reason := "admin: key role admin" if {
	input.key.role == "admin"
}

_admin_reason := "admin: user role proxy_admin" if {
	not input.key.role == "admin"
	input.user.role == "proxy_admin"
}

_admin_reason := "admin: key reading its own key info" if {
	not input.key.role == "admin"
	not input.user.role == "proxy_admin"
	input.request.operation == "key.info"
	input.request.self == true
}

# _model_allowed is _model_ok(input.model) written out layer by layer, so
# that the engine's per-principal residual checks each layer once (a rule
# per layer) instead of once per combination of the layers' entry kinds.
# found is checked last: a model that does not exist goes through the same
# layer checks as one that exists, so that the time of a denial does not
# tell which models exist (DESIGN §2). It is read through object.get rather
# than as input.model.found == true: OPA's rule index would otherwise skip
# this rule's body for a model not found, and a denial would take less time
# for a name that does not exist than for one the caller may not use.
_model_allowed if {
	count(input.model.names) > 0 # an empty chain is permitted nothing
	_model_key_ok
	_model_team_ok
	_model_user_ok
	object.get(input.model, "found", false) == true
}

_requested := r if {
	r := input.model.requested
	is_string(r)
}

_requested := "" if not _requested_is_string

_model_not_found_message := concat("", ["The model `", _requested, "` does not exist or you do not have access to it."])

# A model that does not exist gets each layer's verdict on its name too:
# working them out costs what it costs for a forbidden model, so that the
# time of the one 404 does not tell the two apart (DESIGN §2). The first
# two rules are one (a model not found, whatever its chain) split on the
# chain being empty, as the last two are, so that a forbidden and a
# nonexistent model test the same number of conditions.
_model_reasons := array.concat(["model: not found"], _layer_reasons) if {
	_model_unfound
	count(object.get(input.model, "names", [])) > 0
}

_model_reasons := array.concat(["model: not found"], _layer_reasons) if {
	_model_unfound
	count(object.get(input.model, "names", [])) == 0
}

_model_reasons := ["model: empty chain"] if {
	not _model_unfound
	_model_empty
}

_model_reasons := _layer_reasons if {
	not _model_unfound
	not _model_empty
}

_layer_reasons := [_denied_layer_reason("key"), _denied_layer_reason("team"), _denied_layer_reason("user")]

# Helpers for negations: OPA evaluates the references in a negated call
# before the negation, so "not f(input.x)" fails when input.x is undefined.
_key_present if is_object(input.key)

_model_unfound if input.model.found != true

_model_empty if count(input.model.names) == 0

_requested_is_string if is_string(input.model.requested)

# _custom_denied holds when data.gateway.custom.deny has any element; it is
# the cheap test of the allow path (without a custom bundle the reference is
# undefined and nothing is denied). The deny's messages are its strings, and
# other values formatted with sprintf("%v"); a deny that is not a
# collection makes a custom bundle fail to compile. They are collected in
# _denial itself, without helper rules or functions, so that the engine can
# specialise policies with custom rules per principal too.
_custom_denied if {
	some _ in data.gateway.custom.deny
}
