# Free-tier keys.
#
# Keys whose metadata says tier "free" may not stream, and may not use
# models of the premium access groups. The tier is read from the key's
# metadata (gateway_settings.keys[].metadata or /key/generate's metadata);
# the restricted tiers and premium groups come from data.json
# (data.gateway.custom.settings.tiers).
package gateway.custom

_tiers := data.gateway.custom.settings.tiers

# _restricted holds for a key whose tier is one of the restricted tiers.
_restricted if input.key.metadata.tier in _tiers.restricted_tiers

deny contains "Streaming is not available on the free tier; send stream: false." if {
	_restricted
	input.request.stream == true
}

deny contains msg if {
	_restricted
	some group in input.model.access_groups
	group in _tiers.premium_groups
	msg := sprintf("The model `%s` is a premium model; the free tier cannot use it.", [input.model.requested])
}
