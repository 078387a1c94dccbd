# Tools some teams may not use.
#
# Members of the listed teams may not give a model the listed tools (by
# default, interns: shell, and the Responses API's hosted local_shell). The
# tools come from input.request.params.tool_names: function names
# (function.name in chat, name in the Responses API) and hosted tools by
# their type. Names are compared in lower case, so "Shell" is "shell"; list
# them in lower case in data.json
# (data.gateway.custom.settings.tools.forbidden_by_team).
package gateway.custom

_tools := data.gateway.custom.settings.tools

deny contains msg if {
	forbidden := _tools.forbidden_by_team[input.team.id]
	some name in input.request.params.tool_names
	lower(name) in forbidden
	msg := sprintf("Team %s may not give models the tool `%s`.", [input.team.id, name])
}
