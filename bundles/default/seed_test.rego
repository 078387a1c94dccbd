package gateway.authz

# The five seed cases of the product issue (DESIGN §1).

# 1. GET /v1/models must not list what the user's allow-list forbids: the
# user layer applies to team keys too, and the layers intersect (LiteLLM
# takes the first non-empty list instead).
_seed1_candidates := [
	{"id": "gpt-4o", "names": ["gpt-4o", "openai/gpt-4o"], "access_groups": ["default-models"]},
	{"id": "gpt-4o-mini", "names": ["gpt-4o-mini", "openai/gpt-4o-mini"], "access_groups": ["default-models"]},
	{"id": "claude", "names": ["claude", "anthropic/claude-sonnet-4"], "access_groups": ["default-models"]},
]

_seed1_cases := [
	{"note": "user narrows a team key", "key": [], "team": ["default-models"], "user": ["gpt-4o"], "want": {"gpt-4o"}},
	{"note": "user narrows a personal key", "key": ["default-models"], "user": ["claude"], "want": {"claude"}},
	{"note": "key, team and user intersect", "key": ["gpt-4o", "claude"], "team": ["default-models"], "user": ["openai/*"], "want": {"gpt-4o"}},
	{"note": "first non-empty list is not enough", "key": ["gpt-4o-mini"], "team": ["gpt-4o"], "want": set()},
]

test_seed1_list_respects_every_layer[note] if {
	some tc in _seed1_cases
	note := tc.note
	got := visible_models with input as _t_input(object.union(tc, {"route": "models.list", "candidates": _seed1_candidates}))
	got == tc.want
}

# 2. An alias is permitted when key and team allow only its target.
# 3. An alias is permitted when the key allows only the alias name.
_seed23_cases := [
	{
		"note": "2: key and team name only the target",
		"key": ["openrouter/qwen/qwen3.5-flash-02-23"],
		"team": ["openrouter/qwen/qwen3.5-flash-02-23"],
		"requested": "AgentX-LLM",
		"names": ["AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"],
		"groups": [],
		"allow": true,
	},
	{
		"note": "2: key names another target",
		"key": ["openrouter/qwen/qwen3-max"],
		"team": ["openrouter/qwen/qwen3.5-flash-02-23"],
		"requested": "AgentX-LLM",
		"names": ["AgentX-LLM", "openrouter/qwen/qwen3.5-flash-02-23"],
		"groups": [],
		"allow": false,
	},
	{
		"note": "3: key names only the alias",
		"key": ["Qwen/Qwen3-Coder-480B-A35B-Instruct"],
		"requested": "Qwen/Qwen3-Coder-480B-A35B-Instruct",
		"names": ["Qwen/Qwen3-Coder-480B-A35B-Instruct", "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16"],
		"groups": [],
		"allow": true,
	},
	{
		"note": "3: alias name is exact, not a prefix",
		"key": ["Qwen/Qwen3-Coder-480B-A35B-Instruct"],
		"requested": "Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16",
		"names": ["Qwen/Qwen3-Coder-480B-A35B-Instruct-bfloat16"],
		"groups": [],
		"allow": false,
	},
]

test_seed23_alias_chain[note] if {
	some tc in _seed23_cases
	some route in ["inference", "models.get"]
	note := concat(" / ", [tc.note, route])
	d := _t_decision(object.union(tc, {"route": route}))
	d.allow == tc.allow
}

# 4. models.get is open to ordinary keys, subject to the model rule only.
_seed4_cases := [
	{"note": "unrestricted ordinary key", "key": [], "allow": true},
	{"note": "ordinary key allowed the model", "key": ["gpt-4o"], "allow": true},
	{"note": "ordinary key not allowed the model", "key": ["claude"], "allow": false},
	{"note": "model id with slashes and colon", "key": ["openrouter/*"], "requested": "openrouter/qwen/qwen3:free", "names": ["openrouter/qwen/qwen3:free"], "allow": true},
]

test_seed4_models_get_for_ordinary_keys[note] if {
	some tc in _seed4_cases
	note := tc.note
	d := _t_decision(object.union(tc, {"route": "models.get", "operation": "models.retrieve"}))
	d.allow == tc.allow
	_t_model_status_ok(tc, d)
}

# 5. Access groups and wildcards: openai/* serves default-models and the more
# specific openai/o1-* serves restricted-models.
_seed5_cases := [
	{
		"note": "gpt-4 through default-models",
		"key": ["default-models"],
		"names": ["openai/gpt-4"],
		"groups": ["default-models"],
		"allow": true,
	},
	{
		"note": "o1-mini is served by the restricted wildcard",
		"key": ["default-models"],
		"names": ["openai/o1-mini"],
		"groups": ["restricted-models"],
		"allow": false,
	},
	{
		"note": "o1-mini with restricted-models",
		"key": ["default-models", "restricted-models"],
		"names": ["openai/o1-mini"],
		"groups": ["restricted-models"],
		"allow": true,
	},
]

test_seed5_access_groups_and_wildcards[note] if {
	some tc in _seed5_cases
	some route in ["inference", "models.get"]
	note := concat(" / ", [tc.note, route])
	d := _t_decision(object.union(tc, {"route": route}))
	d.allow == tc.allow
	_t_model_status_ok(tc, d)
}
