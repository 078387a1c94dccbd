package gateway.custom

_effort_call(team, params, body) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": false, "params": params, "body": body},
	"key": {"id": "k", "metadata": {}},
	"team": team,
	"model": {"requested": "o3", "resolved": "o3", "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

_effort_research := {"id": "research", "metadata": {}}

_effort_applied := {"id": "applied", "metadata": {}}

_effort_denied := "Reasoning effort high is for team research only."

test_reasoning_effort[note] if {
	some tc in [
		{"note": "research, high", "input": _effort_call(_effort_research, {"reasoning_effort": "high"}, null), "want": set()},
		{"note": "applied, high", "input": _effort_call(_effort_applied, {"reasoning_effort": "high"}, null), "want": {_effort_denied}},
		{"note": "no team, high", "input": _effort_call(null, {"reasoning_effort": "high"}, null), "want": {_effort_denied}},
		{"note": "applied, medium", "input": _effort_call(_effort_applied, {"reasoning_effort": "medium"}, null), "want": set()},
		{"note": "applied, no effort", "input": _effort_call(_effort_applied, {}, null), "want": set()},
		{"note": "applied, Responses API reasoning.effort high", "input": _effort_call(_effort_applied, {}, {"reasoning": {"effort": "high"}}), "want": {_effort_denied}},
		{"note": "research, Responses API reasoning.effort high", "input": _effort_call(_effort_research, {}, {"reasoning": {"effort": "high"}}), "want": set()},
		{"note": "applied, Responses API reasoning.effort low", "input": _effort_call(_effort_applied, {}, {"reasoning": {"effort": "low"}}), "want": set()},
		{"note": "applied, Responses API reasoning without effort", "input": _effort_call(_effort_applied, {}, {"reasoning": {"summary": "auto"}}), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}

test_reasoning_effort_other_settings if {
	got := deny with input as _effort_call(_effort_applied, {"reasoning_effort": "medium"}, null)
		with data.gateway.custom.settings.reasoning_effort as {"teams_by_effort": {"high": ["research"], "medium": ["research", "ml"]}}
	got == {"Reasoning effort medium is for team research, ml only."}
}
