package gateway.custom

_office_call(team, route, client_ip) := {
	"request": {"route": route, "operation": "chat.completions", "stream": false, "client_ip": client_ip},
	"key": {"id": "k", "metadata": {}},
	"team": team,
	"model": {"requested": "gpt-4o", "resolved": "gpt-4o", "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

_office_finance := {"id": "finance", "metadata": {}}

_office_denied := "Team finance may call models only from the office network."

test_office_network[note] if {
	some tc in [
		{"note": "finance, first office network", "input": _office_call(_office_finance, "inference", "10.20.3.4"), "want": set()},
		{"note": "finance, second office network", "input": _office_call(_office_finance, "inference", "192.0.2.200"), "want": set()},
		{"note": "finance, just outside", "input": _office_call(_office_finance, "inference", "10.21.0.1"), "want": {_office_denied}},
		{"note": "finance, elsewhere", "input": _office_call(_office_finance, "inference", "203.0.113.7"), "want": {_office_denied}},
		{"note": "finance, loopback", "input": _office_call(_office_finance, "inference", "127.0.0.1"), "want": {_office_denied}},
		{"note": "finance, IPv6", "input": _office_call(_office_finance, "inference", "2001:db8::1"), "want": {_office_denied}},
		{"note": "finance, listing from elsewhere", "input": _office_call(_office_finance, "models.list", "203.0.113.7"), "want": {_office_denied}},
		{"note": "finance, malformed client_ip", "input": _office_call(_office_finance, "inference", "not-an-ip"), "want": {_office_denied}},
		{"note": "finance, empty client_ip", "input": _office_call(_office_finance, "inference", ""), "want": {_office_denied}},
		{"note": "finance, no client_ip", "input": object.remove(_office_call(_office_finance, "inference", ""), ["request"]), "want": {_office_denied}},
		{"note": "research, elsewhere", "input": _office_call({"id": "research", "metadata": {}}, "inference", "203.0.113.7"), "want": set()},
		{"note": "no team, elsewhere", "input": _office_call(null, "inference", "203.0.113.7"), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}

test_office_network_ipv6_range if {
	got := deny with input as _office_call(_office_finance, "inference", "2001:db8::1")
		with data.gateway.custom.settings.office_network as {"teams": ["finance"], "cidrs": ["2001:db8::/32"]}
	got == set()
}
