package gateway.custom

_schema_call(requested, resolved, params, body) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": false, "params": params, "body": body},
	"key": {"id": "k", "metadata": {}},
	"team": null,
	"model": {"requested": requested, "resolved": resolved, "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

test_structured_output[note] if {
	some tc in [
		{"note": "json_schema, listed model", "input": _schema_call("gpt-4o", "gpt-4o", {"response_format": "json_schema"}, null), "want": set()},
		{"note": "json_schema, alias of a listed model", "input": _schema_call("smart", "gpt-4o", {"response_format": "json_schema"}, null), "want": set()},
		{"note": "json_schema, other model", "input": _schema_call("gpt-4o-mini", "gpt-4o-mini", {"response_format": "json_schema"}, null), "want": {"The model `gpt-4o-mini` does not support a json_schema response format."}},
		{"note": "json_object, other model", "input": _schema_call("gpt-4o-mini", "gpt-4o-mini", {"response_format": "json_object"}, null), "want": set()},
		{"note": "no response_format", "input": _schema_call("gpt-4o-mini", "gpt-4o-mini", {}, null), "want": set()},
		{"note": "Responses API text.format json_schema, other model", "input": _schema_call("gpt-4o-mini", "gpt-4o-mini", {}, {"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}), "want": {"The model `gpt-4o-mini` does not support a json_schema response format."}},
		{"note": "Responses API text.format json_schema, listed model", "input": _schema_call("gpt-4o", "gpt-4o", {}, {"text": {"format": {"type": "json_schema"}}}), "want": set()},
		{"note": "Responses API text without format", "input": _schema_call("gpt-4o-mini", "gpt-4o-mini", {}, {"text": {"verbosity": "low"}}), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}
