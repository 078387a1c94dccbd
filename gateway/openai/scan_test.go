package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

func TestScanJSON(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantModel  string
		wantHas    bool
		wantStream bool
	}{
		{"model and stream", `{"model":"gpt-4o","stream":true}`, "gpt-4o", true, true},
		{"stream false", `{"stream":false,"model":"m"}`, "m", true, false},
		{"stream not a boolean", `{"model":"m","stream":"true"}`, "m", true, false},
		{"stream null", `{"model":"m","stream":null}`, "m", true, false},
		{"no model", `{"messages":[]}`, "", false, false},
		{"empty object", `{}`, "", false, false},
		{"whitespace around", " \r\n\t{ \"model\" : \"a/b:c\" } \n", "a/b:c", true, false},
		{"escaped model", `{"model":"gpt\u002d4o\/x\"q\\"}`, `gpt-4o/x"q\`, true, false},
		{"surrogate pair", `{"model":"\ud83d\ude00"}`, "\U0001F600", true, false},
		{"escaped key", `{"mod\u0065l":"m"}`, "m", true, false},
		{"unicode model", `{"model":"modèle-ü"}`, "modèle-ü", true, false},
		{"empty model", `{"model":""}`, "", true, false},
		{"nested model ignored", `{"tools":[{"model":"x","model":"y"}],"model":"m"}`, "m", true, false},
		{"nested stream ignored", `{"o":{"stream":true}}`, "", false, false},
		{"numbers kept", `{"temperature":1e400,"top_p":0.10000000000000000001,"n":-0,"x":[1.5E+3,2e-2]}`, "", false, false},
		{"literals", `{"a":true,"b":false,"c":null,"d":[],"e":{}}`, "", false, false},
		{"deep nesting", `{"a":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `,"model":"m"}`, "m", true, false},
		{"invalid utf8 outside model", "{\"x\":\"\xff\",\"model\":\"m\"}", "m", true, false},
		{"key differing by more than case", `{"models":"x","model":"m"}`, "m", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ScanJSON([]byte(tc.body))
			if err != nil {
				t.Fatalf("ScanJSON(%q) error = %v, want nil", tc.body, err)
			}
			if f.Model != tc.wantModel || f.HasModel != tc.wantHas || f.Stream != tc.wantStream {
				t.Errorf("ScanJSON(%q) = {Model:%q HasModel:%v Stream:%v}, want {Model:%q HasModel:%v Stream:%v}",
					tc.body, f.Model, f.HasModel, f.Stream, tc.wantModel, tc.wantHas, tc.wantStream)
			}
		})
	}
}

func TestScanJSONErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantParam string
		wantIn    string // substring of the message
	}{
		{"empty", ``, "", "could not parse"},
		{"only whitespace", "  \n", "", "could not parse"},
		{"array", `[{"model":"m"}]`, "", "must be a JSON object"},
		{"string", `"model"`, "", "must be a JSON object"},
		{"null", `null`, "", "must be a JSON object"},
		{"truncated", `{"model":"m"`, "", "could not parse"},
		{"truncated string", `{"model":"m`, "", "could not parse"},
		{"trailing data", `{"model":"m"} {}`, "", "after the top-level object"},
		{"trailing garbage", `{"model":"m"}x`, "", "after the top-level object"},
		{"trailing comma", `{"model":"m",}`, "", "could not parse"},
		{"single quotes", `{'model':'m'}`, "", "could not parse"},
		{"unquoted key", `{model:"m"}`, "", "could not parse"},
		{"missing colon", `{"model" "m"}`, "", "could not parse"},
		{"bad nested", `{"model":"m","x":[1,]}`, "", "could not parse"},
		{"bad nested object", `{"model":"m","x":{"a" 1}}`, "", "could not parse"},
		{"leading zero", `{"n":01}`, "", "could not parse"},
		{"bare minus", `{"n":-}`, "", "could not parse"},
		{"dot without digits", `{"n":1.}`, "", "could not parse"},
		{"exponent without digits", `{"n":1e}`, "", "could not parse"},
		{"plus sign", `{"n":+1}`, "", "could not parse"},
		{"NaN", `{"n":NaN}`, "", "could not parse"},
		{"bad literal", `{"stream":tru}`, "", "could not parse"},
		{"control char in string", "{\"model\":\"a\tb\"}", "", "could not parse"},
		{"bad escape", `{"model":"\x41"}`, "", "could not parse"},
		{"short unicode escape", `{"model":"\u12"}`, "", "could not parse"},
		{"byte order mark", "\ufeff{\"model\":\"m\"}", "", "must be a JSON object"},
		{"too deep", `{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, "", "nesting"},
		{"duplicate model", `{"model":"a","model":"b"}`, "model", `duplicate key "model"`},
		{"duplicate escaped model", `{"model":"a","\u006dodel":"b"}`, "model", `duplicate key "model"`},
		{"duplicate other key", `{"model":"a","messages":[],"messages":[]}`, "messages", `duplicate key "messages"`},
		{"duplicate stream", `{"stream":true,"stream":false}`, "stream", `duplicate key "stream"`},
		// encoding/json reads both keys as "\ufffd".
		{"duplicate after UTF-8 repair", "{\"a\xf8\":1,\"a\xf9\":2}", "a\ufffd", "duplicate key"},
		{"duplicate lone surrogate", "{\"\\udc00\":1,\"\xff\":2}", "\ufffd", "duplicate key"},
		{"model case variant", `{"model":"a","Model":"b"}`, "model", `"Model"`},
		{"model case variant alone", `{"MODEL":"b"}`, "model", `only by case`},
		{"model kelvin-free fold", `{"modeL":"b"}`, "model", `only by case`},
		{"stream long s fold", `{"model":"m","ſtream":true}`, "stream", `only by case`},
		{"stream_options case variant", `{"model":"m","streAm_optIons":{"include_usage":true}}`, "stream_options", `only by case`},
		{"stream_options long s folds", `{"ſtream_optionſ":{}}`, "stream_options", `only by case`},
		{"include_usage case variant", `{"model":"m","stream_options":{"inClude_usAge":true}}`, "stream_options.include_usage", `only by case`},
		{"include_usage beside a variant", `{"stream_options":{"include_usage":true,"include_uſage":false}}`, "stream_options.include_usage", `only by case`},
		{"model number", `{"model":4}`, "model", "must be a string"},
		{"model null", `{"model":null}`, "model", "must be a string"},
		{"model object", `{"model":{"name":"m"}}`, "model", "must be a string"},
		{"model invalid utf8", "{\"model\":\"\xff\"}", "model", "UTF-8"},
		{"model lone surrogate", `{"model":"\ud800"}`, "model", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScanJSON([]byte(tc.body))
			var bad *gateway.BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("ScanJSON(%.60q) error = %v, want *gateway.BadRequestError", tc.body, err)
			}
			if bad.Param != tc.wantParam {
				t.Errorf("ScanJSON(%.60q) Param = %q, want %q", tc.body, bad.Param, tc.wantParam)
			}
			if !strings.Contains(bad.Message, tc.wantIn) {
				t.Errorf("ScanJSON(%.60q) Message = %q, want it to contain %q", tc.body, bad.Message, tc.wantIn)
			}
		})
	}
}

// TestScanJSONManyKeys covers the switch from the linear duplicate check to
// the map.
func TestScanJSONManyKeys(t *testing.T) {
	tests := []struct {
		name    string
		keys    int
		dupAt   int // index whose key repeats key 0; -1 for none
		wantErr bool
	}{
		{"few unique", 5, -1, false},
		{"many unique", 200, -1, false},
		{"duplicate before threshold", 200, 10, true},
		{"duplicate after threshold", 200, 150, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(`{"model":"m"`)
			for i := range tc.keys {
				k := "k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
				if i == tc.dupAt {
					k = "k" + "a" + "0"
				}
				b.WriteString(`,"` + k + `":1`)
			}
			b.WriteString("}")
			_, err := ScanJSON([]byte(b.String()))
			if (err != nil) != tc.wantErr {
				t.Errorf("ScanJSON(%d keys, dup at %d) error = %v, want error %v", tc.keys, tc.dupAt, err, tc.wantErr)
			}
		})
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestReplaceModel(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		model string
		want  string
	}{
		{
			"keeps every other byte",
			"{ \"temperature\" : 1e400,\n\t\"model\":  \"gpt-4o\" ,\"top_p\":0.10000000000000000001,\"zz\":{\"model\":\"x\"}}",
			"gpt-4o-2024-08-06",
			"{ \"temperature\" : 1e400,\n\t\"model\":  \"gpt-4o-2024-08-06\" ,\"top_p\":0.10000000000000000001,\"zz\":{\"model\":\"x\"}}",
		},
		{"escaped source", `{"model":"a\u002fb","x":1}`, "a/b", `{"model":"a/b","x":1}`},
		{"encodes quotes and controls", `{"model":"m"}`, "q\"\\\n\x01", `{"model":"q\"\\\n\u0001"}`},
		{"no html escaping", `{"model":"m"}`, "<a&b>", `{"model":"<a&b>"}`},
		{"line separators escaped", `{"model":"m"}`, "a\u2028b", `{"model":"a\u2028b"}`},
		{"invalid utf8 replaced", `{"model":"m"}`, "a\xffb", `{"model":"a\ufffdb"}`},
		{"unicode kept", `{"model":"m"}`, "modèle", `{"model":"modèle"}`},
		{"inserted first", ` {"messages":[]}`, "m", ` {"model":"m","messages":[]}`},
		{"inserted into empty", `{ }`, "m", `{"model":"m" }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			orig := bytes.Clone(body)
			f, err := ScanJSON(body)
			if err != nil {
				t.Fatalf("ScanJSON(%q) error = %v", tc.body, err)
			}
			got := ReplaceModel(body, f, tc.model)
			if string(got) != tc.want {
				t.Errorf("ReplaceModel(%q, %q) = %q, want %q", tc.body, tc.model, got, tc.want)
			}
			if !bytes.Equal(body, orig) {
				t.Errorf("ReplaceModel modified its input: %q, want %q", body, orig)
			}
			f2, err := ScanJSON(got)
			if err != nil {
				t.Fatalf("ScanJSON(ReplaceModel(...)) error = %v", err)
			}
			wantModel := strings.ToValidUTF8(tc.model, "\ufffd")
			if f2.Model != wantModel {
				t.Errorf("ScanJSON(ReplaceModel(%q, %q)).Model = %q, want %q", tc.body, tc.model, f2.Model, wantModel)
			}
		})
	}
}

func TestReplaceModelStaleFields(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields RequestFields
		want   string
	}{
		{"zero fields rescans", `{"x":1,"model":"a"}`, RequestFields{}, `{"x":1,"model":"b"}`},
		{"fields of another body rescan", `{"model":"a"}`, mustScan(t, `{"xxxxxxxxxx":1,"model":"q"}`), `{"model":"b"}`},
		{"invalid body unchanged", `{"model":`, RequestFields{}, `{"model":`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplaceModel([]byte(tc.body), tc.fields, "b"); string(got) != tc.want {
				t.Errorf("ReplaceModel(%q, stale, %q) = %q, want %q", tc.body, "b", got, tc.want)
			}
		})
	}
}

func mustScan(tb testing.TB, body string) RequestFields {
	tb.Helper()
	f, err := ScanJSON([]byte(body))
	if err != nil {
		tb.Fatalf("ScanJSON(%q) error = %v", body, err)
	}
	return f
}

func benchBody(tb testing.TB, size int) []byte {
	tb.Helper()
	content := strings.Repeat("The quick brown fox jumps over the lazy dog. ", size/45+1)[:size]
	msgs := []map[string]string{
		{"role": "system", "content": "You are a helpful assistant."},
		{"role": "user", "content": content},
	}
	b, err := json.Marshal(map[string]any{
		"model": "gpt-4o", "messages": msgs, "stream": true, "temperature": 0.7,
		"stream_options": map[string]bool{"include_usage": true}, "max_tokens": 512,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func BenchmarkScanJSON(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"2KB", 1800}, {"1MB", 1 << 20}} {
		body := benchBody(b, size.n)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ScanJSON(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(size.name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run(size.name+"/ReplaceModel", func(b *testing.B) {
			f, err := ScanJSON(body)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_ = ReplaceModel(body, f, "gpt-4o-2024-08-06")
			}
		})
	}
}
