// Package usage reads what a call used from the upstream's answer (DESIGN
// §11): the usage object of a JSON answer (chat, completions, embeddings,
// responses) and of the events of a stream (the final chunk of a chat or
// completions stream, response.completed of a responses stream).
//
// It reads only the usage object, found from the end of what it is given,
// and never decodes the rest of an answer: the proxy hands it the last
// bytes of a JSON answer and each event of a stream that mentions usage.
package usage

import (
	"bytes"
	"encoding/json"

	"github.com/regate/gateway/gateway"
)

// TailSize is how many of a JSON answer's last bytes FromTail needs: the
// usage object comes after the choices, data or output (a few fields at
// most follow it).
const TailSize = 16 << 10

// key is the member name searched for.
var key = []byte(`"usage"`)

// wire is a usage object as OpenAI's APIs write it: chat and completions
// (prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens),
// embeddings (prompt_tokens) and responses (input_tokens, output_tokens,
// input_tokens_details.cached_tokens).
type wire struct {
	PromptTokens     *int64   `json:"prompt_tokens"`
	CompletionTokens *int64   `json:"completion_tokens"`
	InputTokens      *int64   `json:"input_tokens"`
	OutputTokens     *int64   `json:"output_tokens"`
	PromptDetails    *details `json:"prompt_tokens_details"`
	InputDetails     *details `json:"input_tokens_details"`
}

type details struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// FromTail returns the usage of a JSON answer whose last bytes are tail:
// the last "usage" member whose value is an object. found is false when
// there is none (or it is malformed).
func FromTail(tail []byte) (u gateway.Usage, found bool) {
	end := len(tail)
	for end > 0 {
		i := bytes.LastIndex(tail[:end], key)
		if i < 0 {
			return gateway.Usage{}, false
		}
		if u, ok := objectAt(tail, i+len(key)); ok {
			return u, true
		}
		end = i
	}
	return gateway.Usage{}, false
}

// FromEvent returns the usage an SSE event carries (its last "usage"
// object), and whether the event is a chat or completions chunk that
// carries only usage (its choices are empty): the chunk an upstream sends
// because the gateway asked for include_usage.
func FromEvent(ev []byte) (u gateway.Usage, found, usageOnly bool) {
	if !bytes.Contains(ev, key) {
		return gateway.Usage{}, false, false
	}
	u, found = FromTail(ev)
	if found {
		usageOnly = emptyChoices(ev)
	}
	return u, found, usageOnly
}

// emptyChoices reports whether ev has a "choices" member that is an empty
// array.
func emptyChoices(ev []byte) bool {
	i := bytes.Index(ev, []byte(`"choices"`))
	if i < 0 {
		return false
	}
	j := skipSpace(ev, i+len(`"choices"`))
	if j >= len(ev) || ev[j] != ':' {
		return false
	}
	j = skipSpace(ev, j+1)
	if j >= len(ev) || ev[j] != '[' {
		return false
	}
	j = skipSpace(ev, j+1)
	return j < len(ev) && ev[j] == ']'
}

// objectAt decodes the usage object that follows a member name ending at
// i (": {…}").
func objectAt(b []byte, i int) (gateway.Usage, bool) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return gateway.Usage{}, false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] != '{' {
		return gateway.Usage{}, false // null, or not a member name
	}
	end := objectEnd(b, i)
	if end < 0 {
		return gateway.Usage{}, false
	}
	f, ok := scan(b[i:end])
	if !ok {
		if f, ok = decode(b[i:end]); !ok {
			return gateway.Usage{}, false
		}
	}
	u := gateway.Usage{Reported: true}
	switch {
	case f.has&(hasPrompt|hasCompletion) != 0:
		u.PromptTokens, u.CompletionTokens = f.prompt, f.completion
		if f.has&hasPromptDetails != 0 {
			u.CachedTokens = f.promptCached
		}
	case f.has&(hasInput|hasOutput) != 0:
		u.PromptTokens, u.CompletionTokens = f.input, f.output
		if f.has&hasInputDetails != 0 {
			u.CachedTokens = f.inputCached
		}
	default:
		return gateway.Usage{}, false
	}
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens < 0 {
		return gateway.Usage{}, false
	}
	return u, true
}

// objectEnd returns the offset just past the object that starts at b[i]
// ('{'), or -1 when it does not end within b.
func objectEnd(b []byte, i int) int {
	depth, inString := 0, false
	for ; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// fields are the members of a usage object that count, and which of them
// it has (a null one it has not, as for encoding/json's pointers).
type fields struct {
	prompt, completion, input, output int64
	promptCached, inputCached         int64
	has                               uint8
}

// Bits of fields.has.
const (
	hasPrompt uint8 = 1 << iota
	hasCompletion
	hasInput
	hasOutput
	hasPromptDetails
	hasInputDetails
)

// decode reads obj with encoding/json, the reference for scan.
func decode(obj []byte) (fields, bool) {
	var w wire
	if err := json.Unmarshal(obj, &w); err != nil {
		return fields{}, false
	}
	var f fields
	set := func(p *int64, dst *int64, bit uint8) {
		if p != nil {
			*dst = *p
			f.has |= bit
		}
	}
	set(w.PromptTokens, &f.prompt, hasPrompt)
	set(w.CompletionTokens, &f.completion, hasCompletion)
	set(w.InputTokens, &f.input, hasInput)
	set(w.OutputTokens, &f.output, hasOutput)
	if w.PromptDetails != nil {
		f.promptCached, f.has = w.PromptDetails.CachedTokens, f.has|hasPromptDetails
	}
	if w.InputDetails != nil {
		f.inputCached, f.has = w.InputDetails.CachedTokens, f.has|hasInputDetails
	}
	return f, true
}
