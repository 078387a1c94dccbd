package openai

import (
	"encoding/json"
	"slices"
)

// includesUsage reports whether a stream_options object sets
// include_usage to true.
func includesUsage(obj []byte) bool {
	var o struct {
		IncludeUsage json.RawMessage `json:"include_usage"`
	}
	return json.Unmarshal(obj, &o) == nil && string(o.IncludeUsage) == "true"
}

// includeUsageMember is what WithIncludeUsage writes.
const includeUsageMember = `"stream_options":{"include_usage":true}`

// WithIncludeUsage returns body with "stream_options": {"include_usage":
// true}, so that a chat or completions stream ends with a usage chunk
// (DESIGN §11): a copy with the member added first when the body has no
// stream_options, or with include_usage set in the client's stream_options
// (its other options kept). A body that asks for usage already is
// returned as it is. f must come from ScanJSON(body).
func WithIncludeUsage(body []byte, f RequestFields) []byte {
	if f.IncludeUsage {
		return body
	}
	if f.optEnd > 0 {
		opts := map[string]json.RawMessage{}
		if raw := body[f.optStart:f.optEnd]; raw[0] == '{' {
			if err := json.Unmarshal(raw, &opts); err != nil {
				return body // ScanJSON validated it; unreachable
			}
		}
		opts["include_usage"] = json.RawMessage("true")
		enc, err := json.Marshal(opts)
		if err != nil {
			return body
		}
		return slices.Concat(body[:f.optStart], enc, body[f.optEnd:])
	}
	at := f.objStart + 1
	sep := ""
	if f.hasMembers {
		sep = ","
	}
	return slices.Concat(body[:at], []byte(includeUsageMember+sep), body[at:])
}
