package tests

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// badInputConfig caps bodies at 4 KiB so the limit is cheap to cross.
const badInputConfig = seedConfig + `
  max_request_body_bytes: 4096
`

func multipartBody(t *testing.T, fields map[string][]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	fw, err := mw.CreateFormFile("file", "a.wav")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("RIFF...."))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// TestBadInput: every malformed or unauthorized request gets exactly one
// OpenAI-shaped error, an x-request-id, and never reaches the upstream.
func TestBadInput(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, badInputConfig, up)
	const key = "sk-seed4-ordinary"
	dupMP, dupCT := multipartBody(t, map[string][]string{"model": {"ollama/llama3:8b", "gpt-4o"}})
	noModelMP, noModelCT := multipartBody(t, map[string][]string{"language": {"en"}})

	tests := []struct {
		name         string
		method, path string
		key          string
		contentType  string
		body         []byte
		wantStatus   int
		wantCode     string // "" means null
		wantParam    string
		wantInMsg    string
		notInMsg     string
	}{
		{name: "missing key", method: "POST", path: "/v1/chat/completions", body: chatBody("gpt-4o"), wantStatus: 401},
		{name: "bad key", method: "POST", path: "/v1/chat/completions", key: "sk-not-a-real-key-wxyz", body: chatBody("gpt-4o"),
			wantStatus: 401, wantCode: "invalid_api_key", wantInMsg: "wxyz", notInMsg: "sk-not-a-real"},
		{name: "bad key on list", method: "GET", path: "/v1/models", key: "sk-not-a-real-key-wxyz", wantStatus: 401, wantCode: "invalid_api_key"},
		{name: "unknown model", method: "POST", path: "/v1/chat/completions", key: key, body: chatBody("no-such-model"),
			wantStatus: 404, wantCode: "model_not_found", wantInMsg: "The model `no-such-model` does not exist or you do not have access to it."},
		{name: "forbidden model", method: "POST", path: "/v1/chat/completions", key: key, body: chatBody("gpt-4o"),
			wantStatus: 404, wantCode: "model_not_found", wantInMsg: "The model `gpt-4o` does not exist or you do not have access to it."},
		{name: "malformed JSON", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`{"model": "gpt-4o",`), wantStatus: 400},
		{name: "not an object", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`["gpt-4o"]`), wantStatus: 400},
		{name: "trailing data", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`{"model":"ollama/llama3:8b"} {}`), wantStatus: 400},
		{name: "duplicate model key", method: "POST", path: "/v1/chat/completions", key: key,
			body: []byte(`{"model":"ollama/llama3:8b","messages":[],"model":"gpt-4o"}`), wantStatus: 400, wantInMsg: "model"},
		{name: "duplicate other key", method: "POST", path: "/v1/embeddings", key: key,
			body: []byte(`{"model":"ollama/llama3:8b","input":"a","input":"b"}`), wantStatus: 400, wantInMsg: "input"},
		{name: "missing model", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`{"messages":[]}`), wantStatus: 400, wantParam: "model"},
		{name: "empty model", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`{"model":""}`), wantStatus: 400, wantParam: "model"},
		{name: "model not a string", method: "POST", path: "/v1/chat/completions", key: key, body: []byte(`{"model":42}`), wantStatus: 400, wantParam: "model"},
		{name: "body over the limit", method: "POST", path: "/v1/chat/completions", key: key,
			body: []byte(`{"model":"ollama/llama3:8b","pad":"` + strings.Repeat("x", 5000) + `"}`), wantStatus: 413, wantCode: "request_too_large"},
		{name: "multipart duplicate model", method: "POST", path: "/v1/audio/transcriptions", key: key, contentType: dupCT, body: dupMP, wantStatus: 400},
		{name: "multipart missing model", method: "POST", path: "/v1/audio/transcriptions", key: key, contentType: noModelCT, body: noModelMP, wantStatus: 400, wantParam: "model"},
		{name: "unknown route", method: "GET", path: "/v1/nope", key: key, wantStatus: 404},
		{name: "wrong method", method: "GET", path: "/v1/chat/completions", key: key, wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "delete model as user", method: "DELETE", path: "/v1/models/ollama/llama3:8b", key: key, wantStatus: 403, wantCode: "permission_denied"},
		{name: "delete unknown model as admin", method: "DELETE", path: "/v1/models/nope", key: "sk-master-test-0000", wantStatus: 404, wantCode: "model_not_found"},
		{name: "delete model as admin", method: "DELETE", path: "/v1/models/gpt-4o", key: "sk-master-test-0000", wantStatus: 403, wantCode: "permission_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" && tc.body != nil {
				ct = "application/json"
			}
			before := up.count()
			r := g.do(t, tc.method, tc.path, tc.key, ct, tc.body)
			if r.Status != tc.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, r.Status, r.Body, tc.wantStatus)
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Error("no x-request-id header")
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			e := decodeError(t, r.Body)
			gotCode := ""
			if e.Error.Code != nil {
				gotCode = *e.Error.Code
			}
			if gotCode != tc.wantCode {
				t.Errorf("code = %q, want %q (body %s)", gotCode, tc.wantCode, r.Body)
			}
			if tc.wantParam != "" && (e.Error.Param == nil || *e.Error.Param != tc.wantParam) {
				t.Errorf("param = %v, want %q", e.Error.Param, tc.wantParam)
			}
			if tc.wantInMsg != "" && !strings.Contains(e.Error.Message, tc.wantInMsg) {
				t.Errorf("message = %q, want it to contain %q", e.Error.Message, tc.wantInMsg)
			}
			if tc.notInMsg != "" && strings.Contains(string(r.Body), tc.notInMsg) {
				t.Errorf("body %s echoes %q", r.Body, tc.notInMsg)
			}
			if up.count() != before {
				t.Errorf("the upstream was called for a rejected request")
			}
		})
	}
}

// TestHeadersNeverForwarded: client credentials and organization headers
// never reach the upstream; the provider key does.
func TestHeadersNeverForwarded(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(chatBody("gpt-4o")))
	req.Header.Set("Authorization", "Bearer sk-master-test-0000")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("OpenAI-Organization", "org-client")
	req.Header.Set("OpenAI-Project", "proj-client")
	req.Header.Set("X-Api-Key", "sk-also-client")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat = %d, want 200", resp.StatusCode)
	}
	h := up.last(t).Header
	if got := h.Get("Authorization"); got != "Bearer sk-upstream-provider-secret" {
		t.Errorf("upstream Authorization = %q, want the provider key", got)
	}
	for _, name := range []string{"OpenAI-Organization", "OpenAI-Project", "X-Api-Key", "Api-Key"} {
		if v := h.Get(name); v != "" {
			t.Errorf("upstream received %s: %q", name, v)
		}
	}
}

// TestBodyPreservedExceptModel: the upstream gets the client's bytes with
// only the model value replaced.
func TestBodyPreservedExceptModel(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	// The upstream need not parse 1e400; it only records what arrived.
	up.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","choices":[]}`))
	}))
	in := `{ "temperature": 0.10000000000000000001, "model" : "AgentX-LLM", "big": 1e400, "x_unknown": {"model": "inner"}, "messages": [] }`
	r := g.do(t, http.MethodPost, "/v1/chat/completions", "sk-master-test-0000", "application/json", []byte(in))
	if r.Status != 200 {
		t.Fatalf("chat = %d %s", r.Status, r.Body)
	}
	want := strings.Replace(in, `"AgentX-LLM"`, `"qwen/qwen3.5-flash-02-23"`, 1)
	if got := string(up.last(t).Body); got != want {
		t.Errorf("upstream body =\n%s\nwant\n%s", got, want)
	}
}
