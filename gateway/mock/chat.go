package mock

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/regate/gateway/gateway/openai"
)

// fillerWords extend a reply when more chunks are asked for than it has words.
var fillerWords = []string{"This", "reply", "is", "generated", "locally."}

// Reply returns the mock's answer for model split into n chunks (n < 1 is
// taken as 1): "Hello from mock model <model>." extended with filler words
// until it has at least n words. The chunks concatenate to the full text.
func Reply(model string, n int) []string {
	n = max(n, 1)
	words := []string{"Hello", "from", "mock", "model", model + "."}
	for i := 0; len(words) < n; i++ {
		words = append(words, fillerWords[i%len(fillerWords)])
	}
	chunks := make([]string, n)
	for i := range n {
		lo, hi := i*len(words)/n, (i+1)*len(words)/n
		var b strings.Builder
		for j := lo; j < hi; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[j])
		}
		chunks[i] = b.String()
	}
	return chunks
}

// tokens estimates a token count the way people do by eye: four bytes each.
func tokens(n int) int { return max(1, (n+3)/4) }

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func newUsage(prompt, completion int) usage {
	return usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatRequest struct {
	Model         string            `json:"model"`
	Messages      []json.RawMessage `json:"messages"`
	Stream        bool              `json:"stream"`
	StreamOptions *streamOptions    `json:"stream_options"`
}

type chatMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             usage        `json:"usage"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is omitted unless include_usage was asked for; then it is null
	// on every chunk but the last, as OpenAI does.
	Usage *usage `json:"usage,omitempty"`
}

func promptBytes(msgs []json.RawMessage) int {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return n
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request, c controls) {
	var req chatRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	parts := Reply(req.Model, c.chunks)
	text := strings.Join(parts, "")
	u := newUsage(tokens(promptBytes(req.Messages)), tokens(len(text)))
	id, created := h.id("chatcmpl"), h.now()
	if !req.Stream {
		writeJSON(w, req.Model, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: []chatChoice{{Message: chatMessage{Role: "assistant", Content: text}, FinishReason: "stop"}},
			Usage:   u, SystemFingerprint: "fp_mock",
		})
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	chunk := func(delta chunkDelta, finish *string) any {
		ch := chatChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model, SystemFingerprint: "fp_mock",
			Choices: []chunkChoice{{Delta: delta, FinishReason: finish}},
		}
		if includeUsage {
			return struct {
				chatChunk
				Usage *usage `json:"usage"`
			}{chatChunk: ch}
		}
		return ch
	}
	empty, stop := "", "stop"
	s := h.startStream(w, r, req.Model, c)
	s.event(chunk(chunkDelta{Role: "assistant", Content: &empty}, nil))
	for i, p := range parts {
		s.content(i, chunk(chunkDelta{Content: &p}, nil))
	}
	s.trailer("", chunk(chunkDelta{}, &stop))
	if includeUsage {
		s.trailer("", chatChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model, SystemFingerprint: "fp_mock",
			Choices: []chunkChoice{}, Usage: &u,
		})
	}
	s.done()
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
}

type completionChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

func (h *handler) completions(w http.ResponseWriter, r *http.Request, c controls) {
	var req completionRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	parts := Reply(req.Model, c.chunks)
	text := strings.Join(parts, "")
	u := newUsage(tokens(len(req.Prompt)), tokens(len(text)))
	id, created := h.id("cmpl"), h.now()
	stop := "stop"
	if !req.Stream {
		writeJSON(w, req.Model, completion{
			ID: id, Object: "text_completion", Created: created, Model: req.Model,
			Choices: []completionChoice{{Text: text, FinishReason: &stop}}, Usage: &u,
		})
		return
	}
	s := h.startStream(w, r, req.Model, c)
	for i, p := range parts {
		s.content(i, completion{ID: id, Object: "text_completion", Created: created, Model: req.Model,
			Choices: []completionChoice{{Text: p}}})
	}
	s.trailer("", completion{ID: id, Object: "text_completion", Created: created, Model: req.Model,
		Choices: []completionChoice{{FinishReason: &stop}}})
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		s.trailer("", completion{ID: id, Object: "text_completion", Created: created, Model: req.Model,
			Choices: []completionChoice{}, Usage: &u})
	}
	s.done()
}

type responsesRequest struct {
	Model  string          `json:"model"`
	Input  json.RawMessage `json:"input"`
	Stream bool            `json:"stream"`
}

type outputText struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

type outputMessage struct {
	Type    string       `json:"type"`
	ID      string       `json:"id"`
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

type responseUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type response struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	CreatedAt int64           `json:"created_at"`
	Status    string          `json:"status"`
	Model     string          `json:"model"`
	Output    []outputMessage `json:"output"`
	Usage     *responseUsage  `json:"usage"`
}

type responseEvent struct {
	Type           string    `json:"type"`
	SequenceNumber int       `json:"sequence_number"`
	Response       *response `json:"response,omitempty"`
	ItemID         string    `json:"item_id,omitempty"`
	OutputIndex    *int      `json:"output_index,omitempty"`
	ContentIndex   *int      `json:"content_index,omitempty"`
	Delta          *string   `json:"delta,omitempty"`
	Text           *string   `json:"text,omitempty"`
}

// responses serves a minimal Responses API: one assistant message. A stream
// sends response.created, one response.output_text.delta per chunk,
// response.output_text.done and response.completed, each as an "event:" and
// a "data:" line, and no [DONE] (as OpenAI does for this API).
func (h *handler) responses(w http.ResponseWriter, r *http.Request, c controls) {
	var req responsesRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	parts := Reply(req.Model, c.chunks)
	text := strings.Join(parts, "")
	in, out := tokens(len(req.Input)), tokens(len(text))
	msgID := h.id("msg")
	final := response{
		ID: h.id("resp"), Object: "response", CreatedAt: h.now(), Status: "completed", Model: req.Model,
		Output: []outputMessage{{Type: "message", ID: msgID, Status: "completed", Role: "assistant",
			Content: []outputText{{Type: "output_text", Text: text, Annotations: []any{}}}}},
		Usage: &responseUsage{InputTokens: in, OutputTokens: out, TotalTokens: in + out},
	}
	if !req.Stream {
		writeJSON(w, req.Model, final)
		return
	}
	started := final
	started.Status, started.Output, started.Usage = "in_progress", []outputMessage{}, nil
	zero, seq := 0, 0
	next := func() int { seq++; return seq - 1 }
	s := h.startStream(w, r, req.Model, c)
	s.named("response.created", responseEvent{Type: "response.created", SequenceNumber: next(), Response: &started})
	for i, p := range parts {
		s.namedContent(i, "response.output_text.delta", responseEvent{
			Type: "response.output_text.delta", SequenceNumber: next(), ItemID: msgID,
			OutputIndex: &zero, ContentIndex: &zero, Delta: &p,
		})
	}
	s.trailer("response.output_text.done", responseEvent{
		Type: "response.output_text.done", SequenceNumber: next(), ItemID: msgID,
		OutputIndex: &zero, ContentIndex: &zero, Text: &text,
	})
	s.trailer("response.completed", responseEvent{Type: "response.completed", SequenceNumber: next(), Response: &final})
}

// stream writes server-sent events, flushing each one. After a write error
// (the client left) or a finished fail-after budget it writes nothing more.
type stream struct {
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	c      controls
	failed bool
}

func (h *handler) startStream(w http.ResponseWriter, r *http.Request, model string, c controls) *stream {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set(HeaderModel, model)
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, r: r, rc: http.NewResponseController(w), c: c}
	_ = s.rc.Flush()
	return s
}

// content writes content chunk i, honouring the chunk delay and fail-after.
func (s *stream) content(i int, v any) { s.namedContent(i, "", v) }

func (s *stream) namedContent(i int, name string, v any) {
	if s.failed {
		return
	}
	if s.c.failAfter >= 0 && i >= s.c.failAfter {
		// Simulate a provider dropping the connection mid-stream.
		panic(http.ErrAbortHandler)
	}
	if i > 0 && !sleep(s.r.Context(), s.c.chunkDelay) {
		s.failed = true
		return
	}
	s.named(name, v)
}

func (s *stream) event(v any) { s.named("", v) }

// trailer writes an event that follows the content chunks. A fail-after
// budget not used up by the content fails here, right after the last chunk.
func (s *stream) trailer(name string, v any) {
	if !s.failed && s.c.failAfter >= 0 {
		panic(http.ErrAbortHandler)
	}
	s.named(name, v)
}

func (s *stream) named(name string, v any) {
	if s.failed {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.failed = true
		return
	}
	if name != "" {
		if _, err := s.w.Write([]byte("event: " + name + "\n")); err != nil {
			s.failed = true
			return
		}
	}
	if openai.WriteSSEData(s.w, b) != nil || s.rc.Flush() != nil {
		s.failed = true
	}
}

// done ends a chat or completions stream with [DONE].
func (s *stream) done() {
	if s.failed {
		return
	}
	if s.c.failAfter >= 0 {
		panic(http.ErrAbortHandler)
	}
	if _, err := s.w.Write([]byte(openai.SSEDone)); err == nil {
		_ = s.rc.Flush()
	}
}
