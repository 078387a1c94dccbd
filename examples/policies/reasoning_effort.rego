# Reasoning effort by team.
#
# A reasoning effort listed in data.json (high, by default) is for the
# teams listed with it (research); everyone else, keys without a team
# included, may ask for the other efforts. Chat and completions send it as
# reasoning_effort (input.request.params); the Responses API as
# reasoning.effort, an object params leaves out, so that one is read from
# input.request.body. Settings:
# data.gateway.custom.settings.reasoning_effort.teams_by_effort.
package gateway.custom

_reasoning := data.gateway.custom.settings.reasoning_effort

deny contains msg if {
	some effort in _reasoning_efforts
	teams := _reasoning.teams_by_effort[effort]
	not _team_in(teams)
	msg := sprintf("Reasoning effort %s is for team %s only.", [effort, concat(", ", teams)])
}

# _team_in holds when the caller's team is one of teams. A helper, because
# `not input.team.id in teams` is undefined, not true, when the key has no
# team (OPA v1.22.2), and the rule would not fire.
_team_in(teams) if input.team.id in teams

# _reasoning_efforts are the efforts a call asks for, in either API's form.
_reasoning_efforts contains input.request.params.reasoning_effort

_reasoning_efforts contains input.request.body.reasoning.effort
