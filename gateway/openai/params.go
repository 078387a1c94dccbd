package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
)

// contentKeys are top-level request fields that carry prompt content: they
// never appear in Params, whatever their type.
var contentKeys = map[string]bool{
	"messages": true, "input": true, "prompt": true, "instructions": true,
	"audio": true, "image": true, "images": true, "file": true, "files": true,
	"suffix": true, "mask": true,
}

// Params are the fields of a request body that steer a call but carry no
// prompt content (DESIGN §6, input.request.params): every top-level scalar
// as given (numbers as json.Number), metadata and stream_options as given
// (and the Responses API's reasoning object, {"effort", "summary"}),
// tools reduced to tool_names (function names; hosted tools by their type),
// tool_choice and response_format reduced to their type (or the string
// given). messages, input, prompt, instructions and file contents never
// appear. A multipart body gives its non-file form fields, as strings. A
// body that is neither gives none.
func Params(body []byte, contentType string) map[string]any {
	return ParamsOf(body, contentType, nil)
}

// ParamsOf is Params limited to the names in want ("tool_names" for the
// tools); nil wants them all.
func ParamsOf(body []byte, contentType string, want map[string]bool) map[string]any {
	out := map[string]any{}
	if len(body) == 0 {
		return out
	}
	if mt, p, err := mime.ParseMediaType(contentType); err == nil && mt == "multipart/form-data" {
		formParams(out, body, p["boundary"])
		return out
	}
	ms, err := Members(body)
	if err != nil {
		return out
	}
	for _, m := range ms {
		if contentKeys[m.Key] {
			continue
		}
		if want != nil {
			name := m.Key
			if name == "tools" {
				name = "tool_names"
			}
			if !want[name] {
				continue
			}
		}
		switch m.Kind {
		case "string", "number", "bool", "null":
			if v, ok := decode(m.Raw); ok {
				out[m.Key] = v
			}
			continue
		}
		switch m.Key {
		case "metadata", "stream_options", "reasoning":
			if v, ok := decode(m.Raw); ok {
				out[m.Key] = v
			}
		case "tools":
			out["tool_names"] = toolNames(m.Raw)
		case "tool_choice", "response_format":
			if t := typeOf(m.Raw); t != "" {
				out[m.Key] = t
			}
		}
	}
	return out
}

// decode reads a JSON value with numbers as json.Number.
func decode(raw []byte) (any, bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	if raw[0] != '{' && raw[0] != '[' && raw[0] != '"' {
		return json.Number(raw), true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// toolNames lists the tools of a call: function names (function.name in
// chat, name in the Responses API), hosted tools by their type.
func toolNames(raw []byte) []any {
	var tools []struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	names := []any{}
	if err := json.Unmarshal(raw, &tools); err != nil {
		return names
	}
	for _, t := range tools {
		switch {
		case t.Function != nil && t.Function.Name != "":
			names = append(names, t.Function.Name)
		case t.Name != "":
			names = append(names, t.Name)
		case t.Type != "":
			names = append(names, t.Type)
		}
	}
	return names
}

// typeOf is the type of a tool_choice or response_format object, or the
// string given; empty when there is none.
func typeOf(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return ""
	}
	return o.Type
}

// formParams adds a multipart body's non-file fields.
func formParams(out map[string]any, body []byte, boundary string) {
	if boundary == "" {
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err != nil {
			return
		}
		name := part.FormName()
		if name == "" || part.FileName() != "" || contentKeys[name] {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, 64<<10))
		if err != nil {
			return
		}
		out[name] = string(v)
	}
}
