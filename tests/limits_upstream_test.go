package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Usage the usage upstream reports for every call: 100 prompt tokens (20
// of them cached) and 50 completion tokens.
const (
	upPrompt     = 100
	upCached     = 20
	upCompletion = 50
)

// usageUpstream answers like OpenAI with fixed usage, for chat (JSON and
// streams, with the usage chunk only when asked for), completions,
// embeddings and responses (JSON and streams). The upstream model picks a
// behaviour: "nousage" reports no usage, "broken" cuts its stream after
// the first chunk, "slow" streams its chunks 100 ms apart.
func usageUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model         string `json:"model"`
			Stream        bool   `json:"stream"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		withUsage := req.Model != "nousage"
		chatUsage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d}}`,
			upPrompt, upCompletion, upPrompt+upCompletion, upCached)
		respUsage := fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d,"input_tokens_details":{"cached_tokens":%d}}`,
			upPrompt, upCompletion, upPrompt+upCompletion, upCached)
		if !withUsage {
			chatUsage, respUsage = "null", "null"
		}
		path := strings.TrimPrefix(r.URL.Path, "/v1")
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			flush := func(s string) {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
				if req.Model == "slow" {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if path == "/responses" {
				flush(`event: response.created` + "\n" + `data: {"type":"response.created","response":{"id":"resp_1","usage":null}}` + "\n\n")
				flush(`event: response.output_text.delta` + "\n" + `data: {"type":"response.output_text.delta","delta":"Hi"}` + "\n\n")
				flush(`event: response.completed` + "\n" + `data: {"type":"response.completed","response":{"id":"resp_1","usage":` + respUsage + `}}` + "\n\n")
				return
			}
			include := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
			usageField := ""
			if include {
				usageField = `,"usage":null`
			}
			for i, part := range []string{"Hello", " there"} {
				flush(`data: {"id":"c1","object":"chat.completion.chunk","model":"` + req.Model + `","choices":[{"index":0,"delta":{"content":"` + part + `"}}]` + usageField + "}\n\n")
				if i == 0 && req.Model == "broken" {
					panic(http.ErrAbortHandler)
				}
			}
			if include && withUsage {
				flush(`data: {"id":"c1","object":"chat.completion.chunk","model":"` + req.Model + `","choices":[],"usage":` + chatUsage + "}\n\n")
			}
			flush("data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch path {
		case "/embeddings":
			u := fmt.Sprintf(`{"prompt_tokens":%d,"total_tokens":%d}`, upPrompt, upPrompt)
			if !withUsage {
				u = "null"
			}
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"`+req.Model+`","usage":`+u+`}`)
		case "/responses":
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":`+respUsage+`,"metadata":{}}`)
		case "/completions":
			_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"text_completion","model":"`+req.Model+`","choices":[{"text":"Hi","index":0,"finish_reason":"stop"}],"usage":`+chatUsage+`}`)
		default:
			_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","model":"`+req.Model+`","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":`+chatUsage+`,"system_fingerprint":"fp"}`)
		}
	})
}
