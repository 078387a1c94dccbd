package usage

import (
	"testing"

	"github.com/regate/gateway/gateway"
)

// Usage objects as the APIs write them.
const (
	chatUsage      = `{"prompt_tokens":8,"completion_tokens":49,"total_tokens":57,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
	responsesUsage = `{"input_tokens": 36, "input_tokens_details": {"cached_tokens": 12}, "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}`
	chatAnswer     = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":` + chatUsage + `}`
)

// TestScanPlainForms checks that scan reads the forms upstreams write by
// itself, as encoding/json does.
func TestScanPlainForms(t *testing.T) {
	for _, obj := range []string{
		chatUsage,
		responsesUsage,
		`{"prompt_tokens":5,"total_tokens":5}`, // embeddings
		"{\n  \"prompt_tokens\" : 0 ,\r\n\t\"completion_tokens\":123456789012345678}",
		`{"prompt_tokens":1,"completion_tokens":2,"extra":[1,-2.5e+3,"s",true,false,null,{"a":[]},[]],"x":{}}`,
		`{"prompt_tokens_details":{},"prompt_tokens":1}`,
		`{}`,
	} {
		f, ok := scan([]byte(obj))
		if !ok {
			t.Errorf("scan(%s) declined; want it read without encoding/json", obj)
			continue
		}
		if g, gok := decode([]byte(obj)); !gok || g != f {
			t.Errorf("scan(%s) = %+v; encoding/json reads %+v (%v)", obj, f, g, gok)
		}
	}
}

// TestScanDeclines checks the forms scan leaves to encoding/json, and that
// FromTail reads them as before.
func TestScanDeclines(t *testing.T) {
	tests := []struct {
		obj  string
		want gateway.Usage
		ok   bool
	}{
		{`{"prompt_tokens":1,"prompt_tokens":2,"completion_tokens":3}`, gateway.Usage{Reported: true, PromptTokens: 2, CompletionTokens: 3}, true},
		{`{"Prompt_Tokens":4,"completion_tokens":5}`, gateway.Usage{Reported: true, PromptTokens: 4, CompletionTokens: 5}, true},
		{`{"prompt_tokens":null,"input_tokens":7}`, gateway.Usage{Reported: true, PromptTokens: 7}, true},
		{`{"prompt_tokens":-1,"completion_tokens":5}`, gateway.Usage{}, false},
		{`{"prompt_tokens":1.0,"completion_tokens":5}`, gateway.Usage{}, false},
		{`{"prompt_tokens":1e2,"completion_tokens":5}`, gateway.Usage{}, false},
		{`{"prompt_tokens":"8"}`, gateway.Usage{}, false},
		{`{"prompt_tokens":012}`, gateway.Usage{}, false},
		{`{"prompt_tokens":1234567890123456789}`, gateway.Usage{Reported: true, PromptTokens: 1234567890123456789}, true},
		{`{"prompt_tokens":1,"note":"caf\u00e9"}`, gateway.Usage{Reported: true, PromptTokens: 1}, true},
		{`{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":{"audio_tokens":1}}`, gateway.Usage{Reported: true, PromptTokens: 1, CachedTokens: 2}, true},
		{`{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":null}`, gateway.Usage{Reported: true, PromptTokens: 1}, true},
		{`{"prompt_tokens":1,}`, gateway.Usage{}, false},
	}
	for _, tc := range tests {
		if _, ok := scan([]byte(tc.obj)); ok {
			t.Errorf("scan(%s) answered; want it left to encoding/json", tc.obj)
		}
		u, ok := FromTail([]byte(`{"usage":` + tc.obj + `}`))
		if u != tc.want || ok != tc.ok {
			t.Errorf("FromTail(usage %s) = %+v, %v; want %+v, %v", tc.obj, u, ok, tc.want, tc.ok)
		}
	}
}

func TestFromTail(t *testing.T) {
	u, ok := FromTail([]byte(chatAnswer))
	if want := (gateway.Usage{Reported: true, PromptTokens: 8, CompletionTokens: 49, CachedTokens: 3}); !ok || u != want {
		t.Errorf("chat answer: %+v, %v; want %+v", u, ok, want)
	}
	u, ok = FromTail([]byte(`{"type":"response.completed","response":{"usage":` + responsesUsage + `}}`))
	if want := (gateway.Usage{Reported: true, PromptTokens: 36, CompletionTokens: 87, CachedTokens: 12}); !ok || u != want {
		t.Errorf("responses event: %+v, %v; want %+v", u, ok, want)
	}
	answer := []byte(chatAnswer)
	if n := testing.AllocsPerRun(100, func() { FromTail(answer) }); n != 0 {
		t.Errorf("FromTail of a chat answer allocates %v times, want 0", n)
	}
}

// FuzzScanUsage checks scan against encoding/json: wherever scan reads an
// object, encoding/json reads it too, with the same members.
func FuzzScanUsage(f *testing.F) {
	for _, s := range []string{chatUsage, responsesUsage, `{"prompt_tokens":1,"prompt_tokens":2}`, `{"a":[{"b":[]}],"prompt_tokens":0}`,
		`{"prompt_tokens":01}`, `{"x":"\u0041","completion_tokens":9}`, `{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		got, ok := scan(obj)
		if !ok {
			return
		}
		want, wok := decode(obj)
		if !wok || got != want {
			t.Fatalf("scan(%q) = %+v; encoding/json: %+v, %v", obj, got, want, wok)
		}
	})
}

// BenchmarkScan compares scan with encoding/json on a chat answer's usage
// object.
func BenchmarkScan(b *testing.B) {
	obj := []byte(chatUsage)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scan(obj)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decode(obj)
		}
	})
}
