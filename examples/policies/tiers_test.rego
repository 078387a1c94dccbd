package gateway.custom

_free_key := {"id": "k1", "metadata": {"tier": "free"}}

_paid_key := {"id": "k2", "metadata": {"tier": "pro"}}

_chat(key, stream, groups) := {
	"request": {"route": "inference", "operation": "chat.completions", "stream": stream},
	"key": key,
	"team": null,
	"model": {"requested": "m", "access_groups": groups},
	"now": "2026-11-24T12:00:00Z",
}

test_tiers[note] if {
	some tc in [
		{"note": "free, plain call", "input": _chat(_free_key, false, ["default-models"]), "want": set()},
		{"note": "free, streaming", "input": _chat(_free_key, true, ["default-models"]), "want": {"Streaming is not available on the free tier; send stream: false."}},
		{"note": "free, premium model", "input": _chat(_free_key, false, ["premium"]), "want": {"The model `m` is a premium model; the free tier cannot use it."}},
		{"note": "free, premium and streaming", "input": _chat(_free_key, true, ["premium", "other"]), "want": {
			"Streaming is not available on the free tier; send stream: false.",
			"The model `m` is a premium model; the free tier cannot use it.",
		}},
		{"note": "paid, premium and streaming", "input": _chat(_paid_key, true, ["premium"]), "want": set()},
		{"note": "no tier, premium", "input": _chat({"id": "k3", "metadata": {}}, true, ["premium"]), "want": set()},
		{"note": "list route, free key", "input": {"request": {"route": "models.list", "stream": false}, "key": _free_key, "model": null}, "want": set()},
	]
	note := tc.note
	_tier_denies with input as tc.input == tc.want
}

# _tier_denies is the deny set without the business-hours rule's messages.
_tier_denies := {m | some m in deny; not startswith(m, "Team ")}

test_other_settings if {
	msgs := deny with input as _chat({"metadata": {"tier": "trial"}}, true, ["gold"])
		with data.gateway.custom.settings.tiers as {"restricted_tiers": ["trial"], "premium_groups": ["gold"]}
	count(msgs) == 2
}
