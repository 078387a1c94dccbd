package openai

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/regate/gateway/gateway"
)

// includesUsage reports whether a stream_options object (valid JSON, as
// ScanJSON checked) sets include_usage to true, the last of equal keys
// winning as in every common JSON reader. A key that differs from
// "include_usage" only by case is refused: encoding/json would match it
// and Python's json would not, so the gateway could not know whether the
// upstream sends the usage chunk it charges by.
func includesUsage(obj []byte) (bool, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(obj, &o); err != nil {
		return false, parseError("stream_options: %v", err)
	}
	for k := range o {
		if k != "include_usage" && strings.EqualFold(k, "include_usage") {
			return false, &gateway.BadRequestError{
				Param:   "stream_options.include_usage",
				Message: fmt.Sprintf("key %q in stream_options differs from %q only by case", k, "include_usage"),
			}
		}
	}
	return string(o["include_usage"]) == "true", nil
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
