# Data-loss markers in prompts.
#
# A call whose prompt contains one of the markers of data.json
# (data.gateway.custom.settings.data_loss.markers; compared in lower case)
# is refused before it leaves: chat messages' content (a string, or its
# text parts), the Responses API's input (a string, or message items with
# such content) and the completions prompt string. It reads
# input.request.body, the whole parsed body: with this rule loaded every
# call's body is parsed for the policy, a cost that grows with the body.
# The message names the marker, never the prompt; decision logs never
# record the body.
package gateway.custom

_data_loss := data.gateway.custom.settings.data_loss

deny contains msg if {
	some text in _prompt_texts
	some marker in _data_loss.markers
	contains(lower(text), lower(marker))
	msg := sprintf("The prompt contains the marker %s; it may not be sent to a model.", [marker])
}

# _prompt_texts are the strings of a call's prompt.
_prompt_texts contains text if {
	some message in input.request.body.messages
	some text in _content_texts(message.content)
}

_prompt_texts contains input.request.body.input if is_string(input.request.body.input)

_prompt_texts contains text if {
	some item in input.request.body.input
	some text in _content_texts(item.content)
}

_prompt_texts contains input.request.body.prompt if is_string(input.request.body.prompt)

# _content_texts are the strings of a message's content: the content
# itself, or the text of each of its parts.
_content_texts(content) := {content} if is_string(content)

_content_texts(content) := {part.text | some part in content; is_string(part.text)} if is_array(content)
