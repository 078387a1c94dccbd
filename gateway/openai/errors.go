package openai

import (
	"encoding/json"
	"io"
	"net/http"
)

// Error types of the OpenAI envelope that the gateway produces.
const (
	// TypeInvalidRequest is the type of client errors.
	TypeInvalidRequest = "invalid_request_error"
	// TypeServer is the type of gateway and upstream failures.
	TypeServer = "server_error"
	// TypeRateLimit is the type of rate-limit errors.
	TypeRateLimit = "rate_limit_error"
)

// ErrorEnvelope is the body of every error response:
// {"error":{"message","type","param","code"}}.
type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of an ErrorEnvelope. Param and Code serialise as a
// string or null, never a number: openai-go turns a number into a string and
// loses the type.
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// String returns a pointer to s, for ErrorBody.Param and ErrorBody.Code.
func String(s string) *string { return &s }

// MarshalEnvelope encodes body as an envelope. It cannot fail: every field is
// a string.
func MarshalEnvelope(body ErrorBody) []byte {
	b, err := json.Marshal(ErrorEnvelope{Error: body})
	if err != nil {
		// Unreachable: strings and string pointers always encode.
		return []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`)
	}
	return b
}

// WriteError writes an error response: Content-Type application/json, the
// status, and the envelope followed by a newline.
func WriteError(w http.ResponseWriter, status int, body ErrorBody) {
	b := MarshalEnvelope(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// IsEnvelope reports whether b is a JSON object with an "error" object whose
// "message" is a string.
func IsEnvelope(b []byte) bool {
	_, _, ok := ParseEnvelope(b)
	return ok
}

// ParseEnvelope reads an error envelope that may not follow OpenAI's shape
// exactly (numeric codes, missing type). ok is false when b is not a JSON
// object with an "error" object holding a string "message". The returned body
// is normalised: numbers in param and code become strings, other non-string
// values become null, and a missing type stays empty. strict reports whether b
// already had that shape (type a string, param and code strings, null or
// absent), so it can be passed on byte for byte.
func ParseEnvelope(b []byte) (body ErrorBody, strict, ok bool) {
	var outer map[string]json.RawMessage
	if json.Unmarshal(b, &outer) != nil {
		return ErrorBody{}, false, false
	}
	rawErr, found := outer["error"]
	if !found {
		return ErrorBody{}, false, false
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(rawErr, &inner) != nil || inner == nil {
		return ErrorBody{}, false, false
	}
	if json.Unmarshal(inner["message"], &body.Message) != nil || !isJSONString(inner["message"]) {
		return ErrorBody{}, false, false
	}
	strict = true
	if raw, found := inner["type"]; found && isJSONString(raw) {
		_ = json.Unmarshal(raw, &body.Type)
	} else {
		strict = false
	}
	var okParam, okCode bool
	body.Param, okParam = stringOrNull(inner["param"])
	body.Code, okCode = stringOrNull(inner["code"])
	return body, strict && okParam && okCode, true
}

// stringOrNull reads raw as a string pointer. It reports false when raw was
// present and neither a string nor null; numbers are converted to their text.
func stringOrNull(raw json.RawMessage) (*string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	if isJSONString(raw) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return &s, true
		}
		return nil, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		s := n.String()
		return &s, false
	}
	return nil, false
}

func isJSONString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }

// SSEDone is the event that ends a chat or completions stream.
const SSEDone = "data: [DONE]\n\n"

// WriteSSEData writes one event: "data: " + data + "\n\n". data must not
// contain a newline; JSON from encoding/json never does.
func WriteSSEData(w io.Writer, data []byte) error {
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	_, err := w.Write(buf)
	return err
}

// WriteSSEError writes the one error event that ends a failed stream:
// data: {"error":{...}}\n\n. The caller closes the stream without [DONE].
func WriteSSEError(w io.Writer, body ErrorBody) error {
	return WriteSSEData(w, MarshalEnvelope(body))
}

// Model is one entry of GET /v1/models and the answer of GET /v1/models/{id}.
// The limits are left out when unknown (zero).
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // always "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// ContextLength and MaxInputTokens are both the input window: agents
	// read the first, LiteLLM users the second.
	ContextLength   int64 `json:"context_length,omitempty"`
	MaxInputTokens  int64 `json:"max_input_tokens,omitempty"`
	MaxOutputTokens int64 `json:"max_output_tokens,omitempty"`
}

// ModelList is the answer of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // always "list"
	Data   []Model `json:"data"`
}
