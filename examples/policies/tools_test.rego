package gateway.custom

# Tuesday 10:00 in Berlin: inside the interns' business hours.
_tools_call(team, params) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": false, "params": params},
	"key": {"id": "k", "metadata": {}},
	"team": team,
	"model": {"requested": "gpt-4o", "resolved": "gpt-4o", "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

_tools_interns := {"id": "interns", "metadata": {}}

test_tools[note] if {
	some tc in [
		{"note": "interns, shell", "input": _tools_call(_tools_interns, {"tool_names": ["shell"]}), "want": {"Team interns may not give models the tool `shell`."}},
		{"note": "interns, Shell in another case", "input": _tools_call(_tools_interns, {"tool_names": ["search", "Shell"]}), "want": {"Team interns may not give models the tool `Shell`."}},
		{"note": "interns, hosted local_shell", "input": _tools_call(_tools_interns, {"tool_names": ["web_search", "local_shell"]}), "want": {"Team interns may not give models the tool `local_shell`."}},
		{"note": "interns, other tools", "input": _tools_call(_tools_interns, {"tool_names": ["search", "shell_history"]}), "want": set()},
		{"note": "interns, no tools", "input": _tools_call(_tools_interns, {"tool_names": []}), "want": set()},
		{"note": "interns, no tool_names field", "input": _tools_call(_tools_interns, {"max_tokens": 10}), "want": set()},
		{"note": "research, shell", "input": _tools_call({"id": "research", "metadata": {}}, {"tool_names": ["shell"]}), "want": set()},
		{"note": "no team, shell", "input": _tools_call(null, {"tool_names": ["shell"]}), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}
