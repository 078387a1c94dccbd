package gateway.custom

_tokens_call(tier, params) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": false, "params": params},
	"key": {"id": "k", "metadata": {"tier": tier}},
	"team": null,
	"model": {"requested": "gpt-4o-mini", "resolved": "gpt-4o-mini", "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

_tokens_denied(field, value) := sprintf("The free tier may ask for at most 1000 output tokens; %s is %v.", [field, value])

test_output_tokens[note] if {
	some tc in [
		{"note": "free, max_tokens 1000", "input": _tokens_call("free", {"max_tokens": 1000}), "want": set()},
		{"note": "free, max_tokens 1001", "input": _tokens_call("free", {"max_tokens": 1001}), "want": {_tokens_denied("max_tokens", 1001)}},
		{"note": "free, max_completion_tokens 1000", "input": _tokens_call("free", {"max_completion_tokens": 1000}), "want": set()},
		{"note": "free, max_completion_tokens 4096", "input": _tokens_call("free", {"max_completion_tokens": 4096}), "want": {_tokens_denied("max_completion_tokens", 4096)}},
		{"note": "free, Responses API max_output_tokens 2000", "input": _tokens_call("free", {"max_output_tokens": 2000}), "want": {_tokens_denied("max_output_tokens", 2000)}},
		{"note": "free, both fields over", "input": _tokens_call("free", {"max_tokens": 1500, "max_completion_tokens": 2000}), "want": {
			_tokens_denied("max_tokens", 1500),
			_tokens_denied("max_completion_tokens", 2000),
		}},
		{"note": "free, one field within, one over", "input": _tokens_call("free", {"max_tokens": 10, "max_completion_tokens": 2000}), "want": {_tokens_denied("max_completion_tokens", 2000)}},
		{"note": "free, a fraction over", "input": _tokens_call("free", {"max_tokens": 1000.5}), "want": {_tokens_denied("max_tokens", 1000.5)}},
		{"note": "free, no field set", "input": _tokens_call("free", {"temperature": 0.2}), "want": set()},
		{"note": "free, no params at all", "input": object.remove(_tokens_call("free", {}), ["request"]), "want": set()},
		{"note": "free, null is not set", "input": _tokens_call("free", {"max_tokens": null}), "want": set()},
		{"note": "free, a string is not a number", "input": _tokens_call("free", {"max_tokens": "5000"}), "want": {_tokens_denied("max_tokens", "5000")}},
		{"note": "free, a small string is refused too", "input": _tokens_call("free", {"max_tokens": "10"}), "want": {_tokens_denied("max_tokens", "10")}},
		{"note": "free, a boolean", "input": _tokens_call("free", {"max_tokens": true}), "want": {_tokens_denied("max_tokens", true)}},
		{"note": "pro, max_tokens 5000", "input": _tokens_call("pro", {"max_tokens": 5000}), "want": set()},
		{"note": "no metadata", "input": json.patch(_tokens_call("free", {"max_tokens": 5000}), [{"op": "replace", "path": "/key/metadata", "value": {}}]), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}

test_output_tokens_other_settings if {
	got := deny with input as _tokens_call("trial", {"max_tokens": 300})
		with data.gateway.custom.settings.output_tokens as {"max_by_tier": {"trial": 256, "free": 1000}}
	got == {"The trial tier may ask for at most 256 output tokens; max_tokens is 300."}
}
