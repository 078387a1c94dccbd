package gateway.custom

_dlp_call(operation, body) := {
	"request": {"route": "inference", "operation": operation, "stream": false, "body": body},
	"key": {"id": "k", "metadata": {}},
	"team": null,
	"model": {"requested": "gpt-4o", "resolved": "gpt-4o", "access_groups": []},
	"now": "2026-11-24T09:00:00Z",
}

_dlp_chat(messages) := _dlp_call("chat.completions", {"model": "gpt-4o", "messages": messages})

_dlp_responses(prompt) := _dlp_call("responses", {"model": "gpt-4o", "input": prompt})

_dlp_denied(marker) := sprintf("The prompt contains the marker %s; it may not be sent to a model.", [marker])

test_data_loss[note] if {
	some tc in [
		{"note": "chat, plain prompt", "input": _dlp_chat([{"role": "user", "content": "hello"}]), "want": set()},
		{"note": "chat, marker in the user message", "input": _dlp_chat([{"role": "user", "content": "see CONFIDENTIAL//NO-AI below"}]), "want": {_dlp_denied("CONFIDENTIAL//NO-AI")}},
		{"note": "chat, marker in lower case", "input": _dlp_chat([{"role": "user", "content": "about project-nightjar"}]), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "chat, marker in the system message", "input": _dlp_chat([{"role": "system", "content": "PROJECT-NIGHTJAR"}, {"role": "user", "content": "hi"}]), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "chat, marker in a text part", "input": _dlp_chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}, {"type": "text", "text": "PROJECT-NIGHTJAR"}]}]), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "chat, both markers", "input": _dlp_chat([{"role": "user", "content": "CONFIDENTIAL//NO-AI PROJECT-NIGHTJAR"}]), "want": {_dlp_denied("CONFIDENTIAL//NO-AI"), _dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "chat, null content", "input": _dlp_chat([{"role": "assistant", "content": null, "tool_calls": []}]), "want": set()},
		{"note": "chat, no messages", "input": _dlp_call("chat.completions", {"model": "gpt-4o"}), "want": set()},
		{"note": "responses, input string with the marker", "input": _dlp_responses("summarise CONFIDENTIAL//NO-AI"), "want": {_dlp_denied("CONFIDENTIAL//NO-AI")}},
		{"note": "responses, input string without", "input": _dlp_responses("summarise this"), "want": set()},
		{"note": "responses, message item", "input": _dlp_responses([{"role": "user", "content": "PROJECT-NIGHTJAR"}]), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "responses, input_text part", "input": _dlp_responses([{"role": "user", "content": [{"type": "input_text", "text": "PROJECT-NIGHTJAR"}]}]), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "completions, prompt string", "input": _dlp_call("completions", {"model": "gpt-4o", "prompt": "PROJECT-NIGHTJAR"}), "want": {_dlp_denied("PROJECT-NIGHTJAR")}},
		{"note": "marker outside the prompt", "input": _dlp_call("chat.completions", {"model": "gpt-4o", "messages": [], "metadata": {"tag": "PROJECT-NIGHTJAR"}}), "want": set()},
		{"note": "no body (multipart or none)", "input": _dlp_call("audio.transcriptions", null), "want": set()},
	]
	note := tc.note
	got := deny with input as tc.input
	got == tc.want
}
