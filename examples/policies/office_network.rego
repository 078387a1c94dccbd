# Office networks for some teams.
#
# Members of the listed teams (finance, by default) may reach the gateway
# only from the office networks: input.request.client_ip must fall in one
# of the CIDR ranges of data.json
# (data.gateway.custom.settings.office_network). It applies to every route
# custom rules are consulted for, listing included. Behind a load balancer
# or reverse proxy, list it in gateway_settings.trusted_proxies: client_ip
# is then the caller's address from X-Forwarded-For, not the balancer's.
# Other teams and keys without a team are not concerned. A missing or
# malformed client_ip is outside every range (fail closed).
package gateway.custom

_office := data.gateway.custom.settings.office_network

deny contains msg if {
	input.team.id in _office.teams
	not _from_office
	msg := sprintf("Team %s may call models only from the office network.", [input.team.id])
}

_from_office if {
	some cidr in _office.cidrs
	net.cidr_contains(cidr, input.request.client_ip)
}
