package gateway.custom

_call(team, now) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": false},
	"key": {"id": "k", "metadata": {}},
	"team": team,
	"model": {"requested": "gpt-4o", "access_groups": []},
	"now": now,
}

_interns := {"id": "interns", "metadata": {}}

_research := {"id": "research", "metadata": {}}

_message := "Team interns may call models on Monday, Tuesday, Wednesday, Thursday, Friday from 09:00 to 18:00 (Europe/Berlin)."

# Europe/Berlin is UTC+1 in November (CET), UTC+2 in July (CEST).
test_business_hours[note] if {
	some tc in [
		{"note": "Tuesday 10:00 CET", "input": _call(_interns, "2026-11-24T09:00:00Z"), "denied": false},
		{"note": "Tuesday 08:59 CET", "input": _call(_interns, "2026-11-24T07:59:59Z"), "denied": true},
		{"note": "Tuesday 09:00 CET", "input": _call(_interns, "2026-11-24T08:00:00Z"), "denied": false},
		{"note": "Tuesday 17:59 CET", "input": _call(_interns, "2026-11-24T16:59:00Z"), "denied": false},
		{"note": "Tuesday 18:00 CET", "input": _call(_interns, "2026-11-24T17:00:00Z"), "denied": true},
		{"note": "Saturday noon", "input": _call(_interns, "2026-11-28T11:00:00Z"), "denied": true},
		{"note": "July, 17:30 CEST is 15:30 UTC", "input": _call(_interns, "2026-07-14T15:30:00Z"), "denied": false},
		{"note": "July, 18:30 CEST is 16:30 UTC", "input": _call(_interns, "2026-07-14T16:30:00Z"), "denied": true},
		{"note": "offset in input.now", "input": _call(_interns, "2026-11-24T20:00:00+09:00"), "denied": false},
		{"note": "malformed now fails closed", "input": _call(_interns, "yesterday"), "denied": true},
		{"note": "another team at night", "input": _call(_research, "2026-11-24T23:00:00Z"), "denied": false},
		{"note": "no team at night", "input": _call(null, "2026-11-24T23:00:00Z"), "denied": false},
	]
	note := tc.note
	denied := _message in deny with input as tc.input
	denied == tc.denied
}

test_listing_stays_open if {
	list_input := object.union(_call(_interns, "2026-11-28T23:00:00Z"), {"request": {"route": "models.list", "stream": false}})
	count(deny) == 0 with input as list_input
}
