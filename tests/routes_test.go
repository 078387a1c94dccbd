package tests

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestInferenceRoutes: every OpenAI inference route is served with and
// without the /v1 prefix, authorized by the model rule and proxied with the
// upstream model name.
func TestInferenceRoutes(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	const key = "sk-seed4-ordinary" // allows ollama/llama3:8b, not gpt-4o
	mp, mpCT := multipartBody(t, map[string][]string{"model": {"ollama/llama3:8b"}})
	mpDenied, mpDeniedCT := multipartBody(t, map[string][]string{"model": {"gpt-4o"}})

	routes := []struct {
		path, ct         string
		body, deniedBody []byte
	}{
		{"/chat/completions", "application/json", chatBody("ollama/llama3:8b"), chatBody("gpt-4o")},
		{"/completions", "application/json", []byte(`{"model":"ollama/llama3:8b","prompt":"hi"}`), []byte(`{"model":"gpt-4o","prompt":"hi"}`)},
		{"/embeddings", "application/json", []byte(`{"model":"ollama/llama3:8b","input":"hi"}`), []byte(`{"model":"gpt-4o","input":"hi"}`)},
		{"/responses", "application/json", []byte(`{"model":"ollama/llama3:8b","input":"hi"}`), []byte(`{"model":"gpt-4o","input":"hi"}`)},
		{"/images/generations", "application/json", []byte(`{"model":"ollama/llama3:8b","prompt":"a cat"}`), []byte(`{"model":"gpt-4o","prompt":"a cat"}`)},
		{"/audio/speech", "application/json", []byte(`{"model":"ollama/llama3:8b","input":"hi","voice":"alloy"}`), []byte(`{"model":"gpt-4o","input":"hi","voice":"alloy"}`)},
		{"/audio/transcriptions", "", mp, mpDenied},
		{"/moderations", "application/json", []byte(`{"model":"ollama/llama3:8b","input":"hi"}`), []byte(`{"model":"gpt-4o","input":"hi"}`)},
	}
	for _, rt := range routes {
		for _, prefix := range []string{"/v1", ""} {
			t.Run(prefix+rt.path, func(t *testing.T) {
				ct, deniedCT := rt.ct, rt.ct
				if ct == "" {
					ct, deniedCT = mpCT, mpDeniedCT
				}
				r := g.do(t, http.MethodPost, prefix+rt.path, key, ct, rt.body)
				if r.Status != http.StatusOK {
					t.Fatalf("POST %s = %d %s, want 200", prefix+rt.path, r.Status, r.Body)
				}
				call := up.last(t)
				// An ollama api_base without a path gets /v1 (Ollama's
				// OpenAI-compatible root).
				if call.Path != "/v1"+rt.path {
					t.Errorf("upstream path = %q, want %q", call.Path, "/v1"+rt.path)
				}
				if rt.ct != "" && call.Model != "llama3:8b" {
					t.Errorf("upstream model = %q, want llama3:8b", call.Model)
				}
				if rt.ct == "" && !bytes.Contains(call.Body, []byte("\r\n\r\nllama3:8b\r\n")) {
					t.Errorf("upstream multipart body lacks the rewritten model part:\n%s", call.Body)
				}
				before := up.count()
				r = g.do(t, http.MethodPost, prefix+rt.path, key, deniedCT, rt.deniedBody)
				if r.Status != http.StatusNotFound || up.count() != before {
					t.Errorf("forbidden model on %s = %d (upstream calls %d→%d), want 404 and no upstream call", prefix+rt.path, r.Status, before, up.count())
				}
			})
		}
	}
}

// TestSDKEmbeddingsAndTranscription drives the JSON and multipart routes
// through openai-go.
func TestSDKEmbeddingsAndTranscription(t *testing.T) {
	up := startUpstream(t)
	g := startGateway(t, seedConfig, up)
	c := g.client("sk-seed4-ordinary")

	emb, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
		Model: "ollama/llama3:8b",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	})
	if err != nil {
		t.Fatalf("Embeddings.New: %v", err)
	}
	if len(emb.Data) != 1 || len(emb.Data[0].Embedding) == 0 {
		t.Errorf("Embeddings.New = %d vectors, want 1 non-empty", len(emb.Data))
	}
	if m := up.last(t).Model; m != "llama3:8b" {
		t.Errorf("upstream model = %q, want llama3:8b", m)
	}

	tr, err := c.Audio.Transcriptions.New(t.Context(), openai.AudioTranscriptionNewParams{
		Model: "ollama/llama3:8b",
		File:  openai.File(strings.NewReader("RIFF fake audio"), "a.wav", "audio/wav"),
	})
	if err != nil {
		t.Fatalf("Audio.Transcriptions.New: %v", err)
	}
	if tr.Text == "" {
		t.Error("transcription text is empty")
	}
	if !bytes.Contains(up.last(t).Body, []byte("llama3:8b")) {
		t.Error("the upstream multipart body does not carry the upstream model")
	}
}
