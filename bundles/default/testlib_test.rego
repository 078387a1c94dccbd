# Helpers shared by the policy tests: they build input documents shaped
# exactly like the gateway's (DESIGN §6). A test case is an object with
# optional fields:
#
#   key, team, user   allow-lists; team and user default to null (absent)
#   names, groups     the model's chain names and access groups
#   requested         the requested name (default: names[0])
#   found             whether the name resolved (default true)
#   route, operation  the route class and operation
#   override          an object merged over the built input (object.union)
package gateway.authz

_t_now := "2026-11-24T12:00:00Z"

_t_default_names := ["gpt-4o", "openai/gpt-4o"]

_t_input(tc) := object.union(
	{
		"request": {
			"id": "req-1",
			"route": object.get(tc, "route", "inference"),
			"operation": object.get(tc, "operation", "chat.completions"),
			"method": "POST",
			"path": "/v1/chat/completions",
			"stream": false,
			"self": false,
		},
		"key": _t_key(object.get(tc, "key", []), object.get(tc, "team", null)),
		"team": _t_team(object.get(tc, "team", null)),
		"user": _t_user(object.get(tc, "user", null)),
		"model": _t_model(tc),
		"candidates": object.get(tc, "candidates", []),
		"now": _t_now,
	},
	object.get(tc, "override", {}),
)

_t_key(models, team) := {
	"id": "3f1c0ffee",
	"alias": "test-key",
	"role": "",
	"models": models,
	"aliases": {},
	"team_id": _t_team_id(team),
	"user_id": "alice",
	"metadata": {},
	"blocked": false,
	"expires_at": null,
}

_t_team_id(null) := null

_t_team_id(team) := "research" if team != null

_t_team(null) := null

_t_team(models) := {
	"id": "research",
	"alias": "Research",
	"models": models,
	"model_aliases": {},
	"blocked": false,
	"metadata": {},
} if {
	models != null
}

_t_user(null) := null

_t_user(models) := {
	"id": "alice",
	"email": "alice@example.com",
	"role": "internal_user",
	"models": models,
	"metadata": {},
} if {
	models != null
}

_t_model(tc) := {
	"requested": object.get(tc, "requested", _t_first(names)),
	"found": object.get(tc, "found", true),
	"chain": [{"name": n, "kind": "model_group"} | some n in names],
	"names": names,
	"resolved": _t_first(names),
	"wildcard": null,
	"access_groups": object.get(tc, "groups", ["default-models"]),
} if {
	names := object.get(tc, "names", _t_default_names)
}

_t_first(xs) := xs[0] if {
	count(xs) > 0
} else := ""

_t_decision(tc) := d if {
	d := decision with input as _t_input(tc)
}

# _t_not_found is the one 404 every forbidden or unknown model gets.
_t_not_found(model) := {
	"status": 404,
	"code": "model_not_found",
	"message": concat("", ["The model `", model, "` does not exist or you do not have access to it."]),
}

# _t_outcome keeps the client-visible fields of a decision.
_t_outcome(d) := {"allow": d.allow, "status": d.status, "code": d.code, "message": d.message}
