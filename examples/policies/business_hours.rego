# Business hours for some teams.
#
# Members of the listed teams (interns, by default) may call models only
# on working days between start_hour and end_hour in the configured time
# zone (data.gateway.custom.settings.business_hours). Listing and
# retrieving models stay open; only inference is refused. The time is
# input.now, never the clock, so a decision can be replayed from its
# input.
package gateway.custom

_hours := data.gateway.custom.settings.business_hours

deny contains msg if {
	input.request.route == "inference"
	input.team.id in _hours.teams
	not _within_hours
	msg := sprintf(
		"Team %s may call models on %s from %02d:00 to %02d:00 (%s).",
		[input.team.id, concat(", ", _hours.days), _hours.start_hour, _hours.end_hour, _hours.time_zone],
	)
}

# _within_hours holds when input.now falls on a working day, inside the
# hours, in the configured time zone. A missing or malformed input.now is
# outside (fail closed).
_within_hours if {
	ns := time.parse_rfc3339_ns(input.now)
	time.weekday([ns, _hours.time_zone]) in _hours.days
	[hour, _, _] := time.clock([ns, _hours.time_zone])
	hour >= _hours.start_hour
	hour < _hours.end_hour
}
