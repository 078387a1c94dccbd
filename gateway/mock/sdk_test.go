package mock

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestOpenAISDK checks the mock's wire format with the official Go SDK.
func TestOpenAISDK(t *testing.T) {
	srv := newServer(t, Config{Chunks: 4})
	client := oai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := t.Context()

	t.Run("chat", func(t *testing.T) {
		res, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model: "sdk-model", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Model != "sdk-model" || res.Choices[0].Message.Content != strings.Join(Reply("sdk-model", 4), "") || res.Usage.TotalTokens == 0 {
			t.Errorf("chat = %+v, want the mock reply for sdk-model with usage", res)
		}
	})
	t.Run("chat stream", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{
			Model: "sdk-model", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
			StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
		})
		var acc oai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		// role, 4 content chunks, finish, usage
		if chunks != 7 || acc.Choices[0].Message.Content != strings.Join(Reply("sdk-model", 4), "") || acc.Usage.TotalTokens == 0 {
			t.Errorf("stream = %d chunks, %q, usage %d; want 7 chunks, the reply and usage", chunks, acc.Choices[0].Message.Content, acc.Usage.TotalTokens)
		}
	})
	t.Run("responses", func(t *testing.T) {
		res, err := client.Responses.New(ctx, responses.ResponseNewParams{
			Model: "sdk-resp", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.OutputText(); got != strings.Join(Reply("sdk-resp", 4), "") {
			t.Errorf("OutputText() = %q, want the mock reply", got)
		}
	})
	t.Run("responses stream", func(t *testing.T) {
		stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
			Model: "sdk-resp", Input: responses.ResponseNewParamsInputUnion{OfString: oai.String("hi")},
		})
		var text, last string
		for stream.Next() {
			ev := stream.Current()
			if ev.Type == "response.output_text.delta" {
				text += ev.Delta
			}
			last = ev.Type
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text != strings.Join(Reply("sdk-resp", 4), "") || last != "response.completed" {
			t.Errorf("stream text %q ending with %q, want the reply ending with response.completed", text, last)
		}
	})
	t.Run("embeddings", func(t *testing.T) {
		for _, format := range []oai.EmbeddingNewParamsEncodingFormat{oai.EmbeddingNewParamsEncodingFormatFloat, oai.EmbeddingNewParamsEncodingFormatBase64} {
			res, err := client.Embeddings.New(ctx, oai.EmbeddingNewParams{
				Model: "sdk-emb", Input: oai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
				Dimensions: oai.Int(8), EncodingFormat: format,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Data) != 2 || res.Model != "sdk-emb" {
				t.Fatalf("%s: embeddings = %+v, want 2 for sdk-emb", format, res)
			}
			if format == oai.EmbeddingNewParamsEncodingFormatFloat && (len(res.Data[1].Embedding) != 8 || float32(res.Data[1].Embedding[0]) != Vector("sdk-emb", "b", 8)[0]) {
				t.Errorf("%s: embedding[1] = %v, want Vector(sdk-emb, b, 8)", format, res.Data[1].Embedding)
			}
		}
	})
	t.Run("moderations", func(t *testing.T) {
		res, err := client.Moderations.New(ctx, oai.ModerationNewParams{
			Input: oai.ModerationNewParamsInputUnion{OfStringArray: []string{"a", "b"}}, Model: "sdk-mod",
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Model != "sdk-mod" || len(res.Results) != 2 || res.Results[0].Flagged {
			t.Errorf("moderation = %+v, want 2 unflagged results from sdk-mod", res)
		}
	})
	t.Run("images", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, oai.ImageGenerateParams{Prompt: "a cat", Model: "sdk-img", N: oai.Int(2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 || res.Data[0].B64JSON == "" {
			t.Errorf("images = %+v, want 2 base64 images", res)
		}
	})
	t.Run("speech", func(t *testing.T) {
		res, err := client.Audio.Speech.New(ctx, oai.AudioSpeechNewParams{
			Model: "sdk-tts", Input: "hi", Voice: oai.AudioSpeechNewParamsVoiceUnion{OfString: oai.String("alloy")},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if !bytes.HasPrefix(b, []byte("ID3")) || res.Header.Get(HeaderModel) != "sdk-tts" {
			t.Errorf("speech = %q (model %q), want mp3 bytes from sdk-tts", b, res.Header.Get(HeaderModel))
		}
	})
	t.Run("transcription", func(t *testing.T) {
		res, err := client.Audio.Transcriptions.New(ctx, oai.AudioTranscriptionNewParams{
			Model: "sdk-whisper", File: oai.File(strings.NewReader("ID3audio"), "a.mp3", "audio/mpeg"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != "Hello from mock model sdk-whisper." {
			t.Errorf("transcription = %q, want the mock text for sdk-whisper", res.Text)
		}
	})
	t.Run("error status", func(t *testing.T) {
		_, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model: "m", Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")},
		}, option.WithHeader(HeaderStatus, "429"))
		var apiErr *oai.Error
		if !asError(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "mock_error" || apiErr.Type != "rate_limit_error" {
			t.Errorf("error = %v, want a 429 *openai.Error with code mock_error", err)
		}
	})
}

func asError(err error, target **oai.Error) bool { return errors.As(err, target) }
