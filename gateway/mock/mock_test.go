package mock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regate/gateway/gateway/openai"
)

var fixedNow = func() time.Time { return time.Unix(1700000000, 0) }

func newServer(tb testing.TB, cfg Config) *httptest.Server {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	srv := httptest.NewServer(New(cfg))
	tb.Cleanup(srv.Close)
	return srv
}

func do(tb testing.TB, srv *httptest.Server, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return res, b
}

// jsonPath digs into a decoded JSON value: keys for objects, ints for arrays.
func jsonPath(tb testing.TB, body []byte, path ...any) any {
	tb.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				tb.Fatalf("%s: %v is not an object at %q", body, v, k)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				tb.Fatalf("%s: no index %d", body, k)
			}
			v = a[k]
		}
	}
	return v
}

func TestRoutes(t *testing.T) {
	srv := newServer(t, Config{Chunks: 3})
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantType                 string
		path2                    []any // JSON path to a string value
		want                     string
	}{
		{"list models", "GET", "/v1/models", "", 200, "application/json", []any{"data", 0, "id"}, "mock-gpt"},
		{"list models without v1", "GET", "/models", "", 200, "application/json", []any{"object"}, "list"},
		{"get model with slash", "GET", "/v1/models/openrouter/qwen/x:free", "", 200, "application/json", []any{"id"}, "openrouter/qwen/x:free"},
		{"chat", "POST", "/v1/chat/completions", `{"model":"up-1","messages":[{"role":"user","content":"hi"}]}`, 200, "application/json",
			[]any{"choices", 0, "message", "content"}, "Hello from mock model up-1."},
		{"chat model field", "POST", "/chat/completions", `{"model":"up-2","messages":[]}`, 200, "application/json", []any{"model"}, "up-2"},
		{"completions", "POST", "/v1/completions", `{"model":"up-3","prompt":"x"}`, 200, "application/json", []any{"choices", 0, "text"}, "Hello from mock model up-3."},
		{"embeddings", "POST", "/v1/embeddings", `{"model":"emb","input":"x","dimensions":4}`, 200, "application/json", []any{"model"}, "emb"},
		{"responses", "POST", "/v1/responses", `{"model":"up-4","input":"hi"}`, 200, "application/json",
			[]any{"output", 0, "content", 0, "text"}, "Hello from mock model up-4."},
		{"image b64", "POST", "/v1/images/generations", `{"model":"img","prompt":"p"}`, 200, "application/json", []any{"model"}, "img"},
		{"moderations", "POST", "/v1/moderations", `{"model":"mod","input":["a","b"]}`, 200, "application/json", []any{"model"}, "mod"},
		{"moderations default model", "POST", "/v1/moderations", `{"input":"a"}`, 200, "application/json", []any{"model"}, "omni-moderation-latest"},
		{"speech", "POST", "/v1/audio/speech", `{"model":"tts","input":"hi","voice":"alloy"}`, 200, "audio/mpeg", nil, ""},
		{"speech wav", "POST", "/v1/audio/speech", `{"model":"tts","input":"hi","voice":"alloy","response_format":"wav"}`, 200, "audio/wav", nil, ""},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[]}`, 400, "application/json", []any{"error", "param"}, "model"},
		{"bad json", "POST", "/v1/embeddings", `{"model":`, 400, "application/json", []any{"error", "type"}, "invalid_request_error"},
		{"bad embedding input", "POST", "/v1/embeddings", `{"model":"e","input":{}}`, 400, "application/json", []any{"error", "type"}, "invalid_request_error"},
		{"bad dimensions", "POST", "/v1/embeddings", `{"model":"e","input":"x","dimensions":0}`, 400, "application/json", []any{"error", "type"}, "invalid_request_error"},
		{"unknown route", "GET", "/v1/nope", "", 404, "application/json", []any{"error", "type"}, "invalid_request_error"},
		{"wrong method", "GET", "/v1/chat/completions", "", 404, "application/json", []any{"error", "type"}, "invalid_request_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, srv, tc.method, tc.path, tc.body, nil)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s status = %d, want %d (body %s)", tc.method, tc.path, res.StatusCode, tc.wantStatus, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("%s %s Content-Type = %q, want %q", tc.method, tc.path, ct, tc.wantType)
			}
			if tc.wantStatus >= 400 && !openai.IsEnvelope(body) {
				t.Errorf("%s %s body = %s, want an OpenAI error envelope", tc.method, tc.path, body)
			}
			if tc.path2 != nil {
				if got := jsonPath(t, body, tc.path2...); got != tc.want {
					t.Errorf("%s %s %v = %v, want %q", tc.method, tc.path, tc.path2, got, tc.want)
				}
			}
		})
	}
}

func TestModelHeaderAndBytes(t *testing.T) {
	srv := newServer(t, Config{})
	res, body := do(t, srv, "POST", "/v1/audio/speech", `{"model":"tts-up","input":"hi"}`, nil)
	if got := res.Header.Get(HeaderModel); got != "tts-up" {
		t.Errorf("%s = %q, want %q", HeaderModel, got, "tts-up")
	}
	if !bytes.HasPrefix(body, []byte("ID3")) {
		t.Errorf("speech body = %q, want an ID3 prefix", body)
	}
	res, body = do(t, srv, "POST", "/v1/images/generations", `{"model":"img","prompt":"p","n":2,"response_format":"url"}`, nil)
	if res.StatusCode != 200 {
		t.Fatalf("images status = %d", res.StatusCode)
	}
	url, _ := jsonPath(t, body, "data", 1, "url").(string)
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("image url = %.40q, want a PNG data URL (%v)", url, err)
	}
}

func TestEmbeddings(t *testing.T) {
	srv := newServer(t, Config{})
	tests := []struct {
		name     string
		body     string
		wantN    int
		wantDims int
	}{
		{"string", `{"model":"e","input":"hello"}`, 1, DefaultDimensions},
		{"strings", `{"model":"e","input":["a","b","c"],"dimensions":8}`, 3, 8},
		{"tokens", `{"model":"e","input":[1,2,3],"dimensions":3}`, 1, 3},
		{"token arrays", `{"model":"e","input":[[1,2],[3]],"dimensions":5}`, 2, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, srv, "POST", "/v1/embeddings", tc.body, nil)
			if res.StatusCode != 200 {
				t.Fatalf("status = %d, body %s", res.StatusCode, body)
			}
			var out struct {
				Data []struct {
					Index     int       `json:"index"`
					Embedding []float64 `json:"embedding"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Data) != tc.wantN {
				t.Fatalf("len(data) = %d, want %d", len(out.Data), tc.wantN)
			}
			for i, d := range out.Data {
				if d.Index != i || len(d.Embedding) != tc.wantDims {
					t.Errorf("data[%d] = index %d, %d dims, want index %d, %d dims", i, d.Index, len(d.Embedding), i, tc.wantDims)
				}
				var norm float64
				for _, f := range d.Embedding {
					norm += f * f
				}
				if math.Abs(norm-1) > 1e-4 {
					t.Errorf("data[%d] squared norm = %v, want 1", i, norm)
				}
			}
		})
	}
}

func TestEmbeddingsDeterministicAndBase64(t *testing.T) {
	srv := newServer(t, Config{})
	get := func(body string) []byte {
		_, b := do(t, srv, "POST", "/v1/embeddings", body, nil)
		return b
	}
	a := get(`{"model":"e","input":"same","dimensions":16}`)
	if b := get(`{"model":"e","input":"same","dimensions":16}`); !bytes.Equal(a, b) {
		t.Errorf("same input twice gave %s and %s, want equal", a, b)
	}
	if c := get(`{"model":"e","input":"other","dimensions":16}`); bytes.Equal(jsonBytes(t, a, "data"), jsonBytes(t, c, "data")) {
		t.Error("different inputs gave the same vector")
	}
	b64 := get(`{"model":"e","input":"same","dimensions":16,"encoding_format":"base64"}`)
	s, _ := jsonPath(t, b64, "data", 0, "embedding").(string)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 64 {
		t.Fatalf("base64 embedding = %q (%v), want 64 bytes", s, err)
	}
	want := Vector("e", "same", 16)
	for i := range want {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want[i] {
			t.Errorf("base64 embedding[%d] = %v, want %v", i, got, want[i])
		}
	}
}

func jsonBytes(tb testing.TB, body []byte, key string) []byte {
	tb.Helper()
	b, _ := json.Marshal(jsonPath(tb, body, key))
	return b
}

func TestTranscriptions(t *testing.T) {
	srv := newServer(t, Config{})
	tests := []struct {
		name       string
		model      string
		withFile   bool
		format     string
		wantStatus int
		want       string
	}{
		{"json", "whisper-up", true, "", 200, `{"text":"Hello from mock model whisper-up."}` + "\n"},
		{"text", "w", true, "text", 200, "Hello from mock model w.\n"},
		{"no file", "w", false, "", 400, ""},
		{"no model", "", true, "", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			if tc.withFile {
				fw, _ := mw.CreateFormFile("file", "a.mp3")
				_, _ = fw.Write([]byte("ID3audio"))
			}
			if tc.model != "" {
				_ = mw.WriteField("model", tc.model)
			}
			if tc.format != "" {
				_ = mw.WriteField("response_format", tc.format)
			}
			_ = mw.Close()
			res, err := srv.Client().Post(srv.URL+"/v1/audio/transcriptions", mw.FormDataContentType(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tc.wantStatus, body)
			}
			if tc.want != "" && string(body) != tc.want {
				t.Errorf("body = %q, want %q", body, tc.want)
			}
		})
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct{ name, data string }

// readSSE parses a stream strictly: only "event:" and "data:" lines and
// blank lines separating events. It returns the events and the read error
// that ended the stream, if any.
func readSSE(tb testing.TB, r io.Reader) ([]sseEvent, error) {
	tb.Helper()
	var (
		events []sseEvent
		cur    sseEvent
		open   bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if !open {
				tb.Fatalf("blank line outside an event")
			}
			events = append(events, cur)
			cur, open = sseEvent{}, false
		case strings.HasPrefix(line, "data: "):
			if cur.data != "" {
				tb.Fatalf("two data lines in one event: %q", line)
			}
			cur.data, open = strings.TrimPrefix(line, "data: "), true
		case strings.HasPrefix(line, "event: "):
			cur.name, open = strings.TrimPrefix(line, "event: "), true
		default:
			tb.Fatalf("unexpected SSE line %q", line)
		}
	}
	if open {
		tb.Fatalf("stream ended inside an event")
	}
	return events, sc.Err()
}

func postStream(tb testing.TB, srv *httptest.Server, path, body string, hdr map[string]string) (*http.Response, []sseEvent, error) {
	tb.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	events, err := readSSE(tb, res.Body)
	return res, events, err
}

func TestChatStream(t *testing.T) {
	srv := newServer(t, Config{Chunks: 4})
	tests := []struct {
		name         string
		body         string
		hdr          map[string]string
		wantChunks   int
		includeUsage bool
	}{
		{"default chunks", `{"model":"up","stream":true,"messages":[]}`, nil, 4, false},
		{"header chunks", `{"model":"up","stream":true,"messages":[]}`, map[string]string{HeaderChunks: "12"}, 12, false},
		{"usage", `{"model":"up","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, nil, 4, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, events, err := postStream(t, srv, "/v1/chat/completions", tc.body, tc.hdr)
			if err != nil {
				t.Fatalf("stream read error = %v", err)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type = %q, want text/event-stream", ct)
			}
			if len(events) == 0 || events[len(events)-1].data != "[DONE]" {
				t.Fatalf("last event = %v, want [DONE]", events)
			}
			var content strings.Builder
			contentChunks, usageChunks := 0, 0
			for i, ev := range events[:len(events)-1] {
				var ch struct {
					Object  string `json:"object"`
					Model   string `json:"model"`
					Choices []struct {
						Delta struct {
							Role    string  `json:"role"`
							Content *string `json:"content"`
						} `json:"delta"`
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
					Usage *struct {
						TotalTokens int `json:"total_tokens"`
					} `json:"usage"`
				}
				if err := json.Unmarshal([]byte(ev.data), &ch); err != nil {
					t.Fatalf("event %d %q: %v", i, ev.data, err)
				}
				if ch.Object != "chat.completion.chunk" || ch.Model != "up" {
					t.Errorf("event %d object, model = %q, %q, want chat.completion.chunk, up", i, ch.Object, ch.Model)
				}
				hasUsageKey := strings.Contains(ev.data, `"usage":`)
				if hasUsageKey != tc.includeUsage {
					t.Errorf("event %d has usage key = %v, want %v", i, hasUsageKey, tc.includeUsage)
				}
				if ch.Usage != nil {
					usageChunks++
					if len(ch.Choices) != 0 || ch.Usage.TotalTokens == 0 {
						t.Errorf("usage event %q, want empty choices and a total", ev.data)
					}
					continue
				}
				if d := ch.Choices[0].Delta; d.Content != nil && *d.Content != "" {
					contentChunks++
					content.WriteString(*d.Content)
				}
			}
			if contentChunks != tc.wantChunks {
				t.Errorf("content chunks = %d, want %d", contentChunks, tc.wantChunks)
			}
			if want := strings.Join(Reply("up", tc.wantChunks), ""); content.String() != want {
				t.Errorf("content = %q, want %q", content.String(), want)
			}
			if !strings.HasPrefix(content.String(), "Hello from mock model up.") {
				t.Errorf("content = %q, want it to start with the greeting", content.String())
			}
			if wantUsage := map[bool]int{true: 1}[tc.includeUsage]; usageChunks != wantUsage {
				t.Errorf("usage chunks = %d, want %d", usageChunks, wantUsage)
			}
		})
	}
}

func TestOtherStreams(t *testing.T) {
	srv := newServer(t, Config{Chunks: 3})
	t.Run("completions", func(t *testing.T) {
		_, events, err := postStream(t, srv, "/v1/completions", `{"model":"c","prompt":"x","stream":true}`, nil)
		if err != nil || len(events) != 5 || events[4].data != "[DONE]" {
			t.Fatalf("events = %v (%v), want 3 chunks, a finish chunk and [DONE]", events, err)
		}
		var text string
		for _, ev := range events[:3] {
			s, _ := jsonPath(t, []byte(ev.data), "choices", 0, "text").(string)
			text += s
		}
		if want := strings.Join(Reply("c", 3), ""); text != want {
			t.Errorf("text = %q, want %q", text, want)
		}
	})
	t.Run("responses", func(t *testing.T) {
		_, events, err := postStream(t, srv, "/v1/responses", `{"model":"r","input":"x","stream":true}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ev := range events {
			names = append(names, ev.name)
			if typ, _ := jsonPath(t, []byte(ev.data), "type").(string); typ != ev.name {
				t.Errorf("event %q has type %q", ev.name, typ)
			}
		}
		want := "response.created,response.output_text.delta,response.output_text.delta,response.output_text.delta,response.output_text.done,response.completed"
		if got := strings.Join(names, ","); got != want {
			t.Errorf("events = %s, want %s", got, want)
		}
	})
}

func TestControls(t *testing.T) {
	srv := newServer(t, Config{Chunks: 3})
	chat := `{"model":"m","stream":true,"messages":[]}`
	t.Run("status", func(t *testing.T) {
		for _, st := range []int{400, 429, 503} {
			res, body := do(t, srv, "POST", "/v1/chat/completions", chat, map[string]string{HeaderStatus: strconv.Itoa(st)})
			if res.StatusCode != st || !openai.IsEnvelope(body) {
				t.Errorf("x-mock-status %d: got %d %s, want %d with an envelope", st, res.StatusCode, body, st)
			}
		}
	})
	t.Run("invalid controls", func(t *testing.T) {
		for _, h := range []map[string]string{
			{HeaderStatus: "200"}, {HeaderStatus: "x"}, {HeaderLatency: "soon"}, {HeaderLatency: "-1s"},
			{HeaderChunks: "0"}, {HeaderChunkDelay: "1"}, {HeaderFailAfter: "-1"},
		} {
			res, body := do(t, srv, "POST", "/v1/chat/completions", chat, h)
			if res.StatusCode != 400 || jsonPath(t, body, "error", "code") != "invalid_mock_control" {
				t.Errorf("%v: got %d %s, want 400 invalid_mock_control", h, res.StatusCode, body)
			}
		}
	})
	t.Run("latency", func(t *testing.T) {
		start := time.Now()
		res, _ := do(t, srv, "GET", "/v1/models", "", map[string]string{HeaderLatency: "60ms"})
		if el := time.Since(start); res.StatusCode != 200 || el < 60*time.Millisecond {
			t.Errorf("x-mock-latency 60ms: status %d after %v, want 200 after at least 60ms", res.StatusCode, el)
		}
	})
	t.Run("chunk delay", func(t *testing.T) {
		start := time.Now()
		_, events, err := postStream(t, srv, "/v1/chat/completions", chat, map[string]string{HeaderChunkDelay: "25ms", HeaderChunks: "4"})
		// Three waits between four chunks.
		if el := time.Since(start); err != nil || el < 75*time.Millisecond || len(events) != 7 {
			t.Errorf("chunk delay: %d events after %v (%v), want 7 after at least 75ms", len(events), el, err)
		}
	})
	t.Run("fail after", func(t *testing.T) {
		for _, n := range []int{0, 2, 3} {
			_, events, err := postStream(t, srv, "/v1/chat/completions", chat, map[string]string{HeaderFailAfter: strconv.Itoa(n)})
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("fail-after %d: read error = %v, want unexpected EOF", n, err)
			}
			// The role chunk, then n content chunks.
			if len(events) != n+1 {
				t.Errorf("fail-after %d: %d events, want %d", n, len(events), n+1)
			}
			for _, ev := range events {
				if ev.data == "[DONE]" {
					t.Errorf("fail-after %d: got [DONE]", n)
				}
			}
		}
	})
	t.Run("latency cut by client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/models", nil)
		req.Header.Set(HeaderLatency, "10s")
		start := time.Now()
		_, err := srv.Client().Do(req)
		if err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("request with 10s latency and 30ms deadline: err %v after %v, want a deadline error soon", err, time.Since(start))
		}
	})
}

func TestReply(t *testing.T) {
	tests := []struct {
		model string
		n     int
		want  []string
	}{
		{"m", 1, []string{"Hello from mock model m."}},
		{"m", 0, []string{"Hello from mock model m."}},
		{"m", 2, []string{"Hello from", " mock model m."}},
		{"m", 5, []string{"Hello", " from", " mock", " model", " m."}},
		{"m", 7, []string{"Hello", " from", " mock", " model", " m.", " This", " reply"}},
	}
	for _, tc := range tests {
		if got := Reply(tc.model, tc.n); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Reply(%q, %d) = %q, want %q", tc.model, tc.n, got, tc.want)
		}
	}
}
