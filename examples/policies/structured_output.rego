# Structured output only where it is supported.
#
# A json_schema response format is accepted only for the model groups
# listed in data.json
# (data.gateway.custom.settings.structured_output.json_schema_models),
# matched on input.model.resolved, so an alias of a listed group is
# accepted too. Chat sends it as response_format (input.request.params has
# its type); the Responses API as text.format, an object params leaves
# out, so that one is read from input.request.body. json_object and text
# formats are not concerned.
package gateway.custom

_structured := data.gateway.custom.settings.structured_output

deny contains msg if {
	"json_schema" in _response_formats
	not _json_schema_model
	msg := sprintf("The model `%s` does not support a json_schema response format.", [input.model.requested])
}

# _response_formats are the response format types a call asks for.
_response_formats contains input.request.params.response_format

_response_formats contains input.request.body.text.format.type

# _json_schema_model holds for a listed model group. A helper, because
# `not input.model.resolved in …` is undefined, not true, when the field
# is missing (OPA v1.22.2).
_json_schema_model if input.model.resolved in _structured.json_schema_models
