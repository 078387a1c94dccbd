package tests

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The official Node SDK (the npm package openai, pinned in
// tests/node/package.json) against the real gateway. The Go side starts the
// gateway and an upstream whose answers it controls, installs the pinned
// package with npm ci when tests/node/node_modules is missing or older than
// the lock file, and runs node --test with everything the Node tests need in
// one environment variable. The Node side asserts what the openai-go tests
// assert where they overlap: status, error class and envelope, ids, content.

// nodeConfig serves model ids with "/" and ":", an embeddings model, a
// stream that never ends on its own, and gpt-4o, which the ordinary key may
// not use. The frozen team is blocked (403); the rpm key admits one call a
// minute (429 on the second).
const nodeConfig = `
model_list:
  - model_name: openai/gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_base: "{{UP}}", api_key: sk-node-upstream-secret}
  - model_name: openrouter/qwen/qwen3.5-flash-02-23
    litellm_params: {model: openrouter/qwen/qwen3.5-flash-02-23, api_base: "{{UP}}", api_key: sk-node-upstream-secret}
  - model_name: ollama/llama3:8b
    litellm_params: {model: ollama/llama3:8b, api_base: "{{UP}}"}
  - model_name: text-embedding-3-small
    litellm_params: {model: openai/text-embedding-3-small, api_base: "{{UP}}", api_key: sk-node-upstream-secret}
  - model_name: slow-stream
    litellm_params: {model: openai/slow-stream, api_base: "{{UP}}", api_key: sk-node-upstream-secret}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "{{UP}}", api_key: sk-node-upstream-secret}
general_settings:
  master_key: sk-master-test-0000
gateway_settings:
  teams:
    - {team_id: frozen, blocked: true}
  keys:
    - {key: sk-node-ordinary-0001, key_alias: node, models: [openai/gpt-4o-mini, openrouter/qwen/qwen3.5-flash-02-23, "ollama/llama3:8b", text-embedding-3-small, slow-stream]}
    - {key: sk-node-frozen-team-0002, key_alias: node-frozen, team_id: frozen}
    - {key: sk-node-rpm-one-0003, key_alias: node-rpm, models: [openai/gpt-4o-mini], rpm_limit: 1}
`

// nodeEnv is what the Node tests read from REGATE_NODE_E2E.
type nodeEnv struct {
	GatewayURL  string            `json:"gateway_url"`
	UpstreamURL string            `json:"upstream_url"`
	Keys        map[string]string `json:"keys"`
	// Visible is what the ordinary key lists, in any order.
	Visible []string `json:"visible"`
	// Forbidden exists but the ordinary key may not use it; Missing does
	// not exist.
	Forbidden string `json:"forbidden"`
	Missing   string `json:"missing"`
	Chat      string `json:"chat_model"`
	Embedding string `json:"embedding_model"`
	Slow      string `json:"slow_model"`
	// Upstream is the upstream's fixed answers.
	Upstream nodeUpstreamAnswers `json:"upstream"`
}

// nodeUpstreamAnswers are the fixed answers of nodeUpstream.
type nodeUpstreamAnswers struct {
	ChatID        string    `json:"chat_id"`
	ChatReply     string    `json:"chat_reply"`
	StreamParts   []string  `json:"stream_parts"`
	Usage         nodeUsage `json:"usage"`
	ResponseID    string    `json:"response_id"`
	ResponseParts []string  `json:"response_parts"`
	// Vector is the embedding of input 0; input i's is the same with its
	// first component multiplied by i+1.
	Vector []float32 `json:"vector"`
}

type nodeUsage struct {
	Prompt     int `json:"prompt_tokens"`
	Completion int `json:"completion_tokens"`
	Total      int `json:"total_tokens"`
}

var nodeAnswers = nodeUpstreamAnswers{
	ChatID:        "chatcmpl-node-0001",
	ChatReply:     "Hello from the test upstream.",
	StreamParts:   []string{"Hello", " from", " the", " stream."},
	Usage:         nodeUsage{Prompt: 11, Completion: 7, Total: 18},
	ResponseID:    "resp_node_0001",
	ResponseParts: []string{"Hello", " from", " responses."},
	Vector:        []float32{0.5, -0.25, 1, 0.125}, // exact in float32 and base64
}

// nodeUpstreamCall is what the upstream saw of one call, as GET /__calls
// reports it to the Node tests.
type nodeUpstreamCall struct {
	Case           string `json:"case"` // the X-Test-Case header
	Path           string `json:"path"`
	Model          string `json:"model"`
	Stream         bool   `json:"stream"`
	IncludeUsage   bool   `json:"include_usage"`
	EncodingFormat string `json:"encoding_format"`
	ProviderKey    bool   `json:"provider_key"` // Authorization carried the provider's key
	Cancelled      bool   `json:"cancelled"`    // the request's context ended before the answer did
}

// nodeUpstream answers chat, embeddings and responses calls with
// nodeAnswers, and reports its calls on GET /__calls?case=NAME.
type nodeUpstream struct {
	mu    sync.Mutex
	calls []*nodeUpstreamCall
}

func (u *nodeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/__calls" {
		u.mu.Lock()
		out := []nodeUpstreamCall{}
		for _, c := range u.calls {
			if c.Case == r.URL.Query().Get("case") {
				out = append(out, *c)
			}
		}
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
		return
	}
	var req struct {
		Model          string          `json:"model"`
		Stream         bool            `json:"stream"`
		StreamOptions  json.RawMessage `json:"stream_options"`
		EncodingFormat string          `json:"encoding_format"`
		Input          json.RawMessage `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}`, http.StatusBadRequest)
		return
	}
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	_ = json.Unmarshal(req.StreamOptions, &so)
	call := &nodeUpstreamCall{
		Case: r.Header.Get("X-Test-Case"), Path: r.URL.Path, Model: req.Model, Stream: req.Stream,
		IncludeUsage: so.IncludeUsage, EncodingFormat: req.EncodingFormat,
		ProviderKey: r.Header.Get("Authorization") == "Bearer sk-node-upstream-secret",
	}
	u.mu.Lock()
	u.calls = append(u.calls, call)
	u.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions") && req.Model == "slow-stream":
		u.slowStream(w, r, call)
	case strings.HasSuffix(r.URL.Path, "/chat/completions") && req.Stream:
		nodeChatStream(w, req.Model, so.IncludeUsage)
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		writeJSONAnswer(w, map[string]any{
			"id": nodeAnswers.ChatID, "object": "chat.completion", "created": 1700000000, "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop", "logprobs": nil,
				"message": map[string]any{"role": "assistant", "content": nodeAnswers.ChatReply, "refusal": nil},
			}},
			"usage": nodeAnswers.Usage,
		})
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		nodeEmbeddings(w, req.Model, req.EncodingFormat, req.Input)
	case strings.HasSuffix(r.URL.Path, "/responses"):
		nodeResponses(w, req.Model, req.Stream)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprintf(w, `{"error":{"message":"no route %s","type":"invalid_request_error","param":null,"code":null}}`, r.URL.Path)
	}
}

func writeJSONAnswer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeEvent writes one SSE event (with an event: line when name is set)
// and flushes it.
func writeEvent(w http.ResponseWriter, name string, v any) {
	b, _ := json.Marshal(v)
	if name != "" {
		_, _ = fmt.Fprintf(w, "event: %s\n", name)
	}
	writeFlush(w, "data: "+string(b)+"\n\n")
}

func nodeChunk(model string, delta map[string]any, finish any) map[string]any {
	return map[string]any{
		"id": nodeAnswers.ChatID, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
	}
}

// nodeChatStream streams the parts as OpenAI does: a role chunk, one chunk
// per part, a finish chunk, the usage chunk when asked, [DONE].
func nodeChatStream(w http.ResponseWriter, model string, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	writeEvent(w, "", nodeChunk(model, map[string]any{"role": "assistant", "content": ""}, nil))
	for _, p := range nodeAnswers.StreamParts {
		writeEvent(w, "", nodeChunk(model, map[string]any{"content": p}, nil))
	}
	writeEvent(w, "", nodeChunk(model, map[string]any{}, "stop"))
	if includeUsage {
		writeEvent(w, "", map[string]any{
			"id": nodeAnswers.ChatID, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{}, "usage": nodeAnswers.Usage,
		})
	}
	writeFlush(w, "data: [DONE]\n\n")
}

// slowStream sends one chunk and then waits for the gateway to cancel the
// request, which it must do when its client goes away.
func (u *nodeUpstream) slowStream(w http.ResponseWriter, r *http.Request, call *nodeUpstreamCall) {
	w.Header().Set("Content-Type", "text/event-stream")
	writeEvent(w, "", nodeChunk(call.Model, map[string]any{"role": "assistant", "content": "first"}, nil))
	select {
	case <-r.Context().Done():
		u.mu.Lock()
		call.Cancelled = true
		u.mu.Unlock()
	case <-time.After(20 * time.Second):
		writeEvent(w, "", nodeChunk(call.Model, map[string]any{}, "stop"))
		writeFlush(w, "data: [DONE]\n\n")
	}
}

func nodeEmbeddings(w http.ResponseWriter, model, format string, input json.RawMessage) {
	var inputs []string
	if json.Unmarshal(input, &inputs) != nil {
		var one string
		_ = json.Unmarshal(input, &one)
		inputs = []string{one}
	}
	data := make([]any, len(inputs))
	for i := range inputs {
		vec := append([]float32{nodeAnswers.Vector[0] * float32(i+1)}, nodeAnswers.Vector[1:]...)
		var emb any = vec
		if format == "base64" {
			b := make([]byte, 4*len(vec))
			for j, f := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSONAnswer(w, map[string]any{
		"object": "list", "data": data, "model": model,
		"usage": map[string]int{"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
	})
}

// nodeResponse is a Responses API object with text as its one output.
func nodeResponse(model, status, text string, withUsage bool) map[string]any {
	output := []any{}
	if text != "" {
		output = append(output, map[string]any{
			"type": "message", "id": "msg_node_0001", "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}},
		})
	}
	res := map[string]any{
		"id": nodeAnswers.ResponseID, "object": "response", "created_at": 1700000000, "status": status,
		"model": model, "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{},
	}
	if withUsage {
		res["usage"] = map[string]any{
			"input_tokens": nodeAnswers.Usage.Prompt, "output_tokens": nodeAnswers.Usage.Completion,
			"total_tokens": nodeAnswers.Usage.Total,
		}
	}
	return res
}

// nodeResponses answers the Responses API, streamed as OpenAI does it
// (event: and data: lines) when asked.
func nodeResponses(w http.ResponseWriter, model string, stream bool) {
	text := strings.Join(nodeAnswers.ResponseParts, "")
	if !stream {
		writeJSONAnswer(w, nodeResponse(model, "completed", text, true))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	seq := 0
	ev := func(typ string, fields map[string]any) {
		fields["type"] = typ
		fields["sequence_number"] = seq
		seq++
		writeEvent(w, typ, fields)
	}
	ev("response.created", map[string]any{"response": nodeResponse(model, "in_progress", "", false)})
	for _, p := range nodeAnswers.ResponseParts {
		ev("response.output_text.delta", map[string]any{"item_id": "msg_node_0001", "output_index": 0, "content_index": 0, "delta": p})
	}
	ev("response.output_text.done", map[string]any{"item_id": "msg_node_0001", "output_index": 0, "content_index": 0, "text": text})
	ev("response.completed", map[string]any{"response": nodeResponse(model, "completed", text, true)})
}

// TestNodeSDK runs tests/node/sdk.test.mjs with node --test against the
// real gateway.
func TestNodeSDK(t *testing.T) {
	nodeBin, npmBin := nodeTools(t)
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, npmBin, dir)

	up := startUpstream(t)
	up.setHandler(&nodeUpstream{})
	g := startGateway(t, nodeConfig, up)
	env, err := json.Marshal(nodeEnv{
		GatewayURL:  g.URL,
		UpstreamURL: up.URL,
		Keys: map[string]string{
			"ordinary": "sk-node-ordinary-0001",
			"blocked":  "sk-node-frozen-team-0002",
			"rpm":      "sk-node-rpm-one-0003",
			"invalid":  "sk-node-not-a-key-wxyz",
		},
		Visible:   []string{"openai/gpt-4o-mini", "openrouter/qwen/qwen3.5-flash-02-23", "ollama/llama3:8b", "text-embedding-3-small", "slow-stream"},
		Forbidden: "gpt-4o",
		Missing:   "openai/no-such-model",
		Chat:      "openai/gpt-4o-mini",
		Embedding: "text-embedding-3-small",
		Slow:      "slow-stream",
		Upstream:  nodeAnswers,
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "--test", "--test-reporter=spec", "sdk.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(nodeChildEnv(), "REGATE_NODE_E2E="+string(env), "NO_COLOR=1")
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test sdk.test.mjs failed after %s (%v):\n%s", time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("node --test sdk.test.mjs passed in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
}

// nodeChildEnv is this process's environment without OPENAI_* variables,
// which the SDK would read (base URL, organization, project, log level).
func nodeChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENAI_") {
			env = append(env, kv)
		}
	}
	return env
}

// nodeMinMajor is the oldest Node.js the tests run on. openai@6.49.0
// supports Node.js 20 and later; Debian 12's nodejs package, which .ci/run
// installs when node is missing, is 18.20, and the tests pass on it too.
const nodeMinMajor = 18

// nodeTools finds node and npm. Without them (or with a Node.js older than
// nodeMinMajor) the test skips, except under CI=true, where it fails.
func nodeTools(t *testing.T) (node, npm string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; the Node SDK tests need Node.js >= " + strconv.Itoa(nodeMinMajor) +
			" with npm (Debian: apt-get install nodejs npm; .ci/run installs them when node is missing)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node not found in PATH")
	}
	npm, err = exec.LookPath("npm")
	if err != nil {
		unavailable("npm not found in PATH")
	}
	out, err := exec.CommandContext(t.Context(), node, "--version").Output()
	if err != nil {
		unavailable("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	if err != nil || major < nodeMinMajor {
		unavailable("node %s is too old", v)
	}
	return node, npm
}

// npmStamp, in node_modules, holds the SHA-256 of the package-lock.json
// that npm ci installed.
const npmStamp = ".regate-lock-sha256"

// npmCI installs tests/node's locked packages with npm ci when
// node_modules is missing or was installed from another lock file.
func npmCI(t *testing.T, npm, dir string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", npmStamp)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("npm ci in %s took %s", dir, time.Since(start).Round(time.Millisecond))
}
