# Output tokens per tier.
#
# Keys of a limited tier (free, by default) may not ask for more output
# tokens than their tier allows: max_tokens and max_completion_tokens
# (chat, completions) and max_output_tokens (the Responses API), as
# input.request.params gives them. The limit of each tier comes from
# data.json (data.gateway.custom.settings.output_tokens.max_by_tier). A call
# that sets none of these fields is not refused: the model's own default
# applies. null counts as not set. Any other value that is not a number is
# refused, because Rego orders values of different types (`"5000" > 1000`
# is true, `null <= 1000` too) and a lenient server may read "5000" as 5000.
package gateway.custom

_output_tokens := data.gateway.custom.settings.output_tokens

_output_token_fields := ["max_tokens", "max_completion_tokens", "max_output_tokens"]

deny contains msg if {
	limit := _output_tokens.max_by_tier[input.key.metadata.tier]
	some field in _output_token_fields
	asked := input.request.params[field]
	asked != null
	not _within_limit(asked, limit)
	msg := sprintf(
		"The %s tier may ask for at most %v output tokens; %s is %v.",
		[input.key.metadata.tier, limit, field, asked],
	)
}

# _within_limit holds for a number no greater than limit; is_number keeps
# the comparison to numbers.
_within_limit(asked, limit) if {
	is_number(asked)
	asked <= limit
}
