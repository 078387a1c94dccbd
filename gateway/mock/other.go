package mock

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"strconv"

	"github.com/regate/gateway/gateway/openai"
)

// DefaultDimensions is the length of an embedding when the request does not
// set dimensions (text-embedding-3-small's).
const DefaultDimensions = 1536

// maxDimensions bounds the dimensions parameter.
const maxDimensions = 16384

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embeddingList struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// embeddingInputs splits the input parameter into the texts to embed: a
// string, an array of strings, an array of token ids, or an array of such
// arrays. Token arrays are embedded by their JSON text.
func embeddingInputs(raw json.RawMessage) ([]string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, true
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil && len(ss) > 0 {
		return ss, true
	}
	var toks []int64
	if json.Unmarshal(raw, &toks) == nil && len(toks) > 0 {
		return []string{string(raw)}, true
	}
	var nested []json.RawMessage
	if json.Unmarshal(raw, &nested) == nil && len(nested) > 0 {
		out := make([]string, 0, len(nested))
		for _, n := range nested {
			if json.Unmarshal(n, &toks) != nil || len(toks) == 0 {
				return nil, false
			}
			out = append(out, string(n))
		}
		return out, true
	}
	return nil, false
}

// Vector returns the mock's deterministic unit-length embedding of text for
// model.
func Vector(model, text string, dims int) []float32 {
	seed := sha256.Sum256([]byte(model + "\x00" + text))
	state := binary.LittleEndian.Uint64(seed[:8])
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		// splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		f := float64(z>>11)/float64(1<<53)*2 - 1
		v[i] = float32(f)
		norm += f * f
	}
	norm = math.Sqrt(norm)
	if norm > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / norm)
		}
	}
	return v
}

func (h *handler) embeddings(w http.ResponseWriter, r *http.Request, _ controls) {
	var req embeddingRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	inputs, ok := embeddingInputs(req.Input)
	if !ok {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest,
			"input must be a string, an array of strings, or an array of token arrays.", "")
		return
	}
	dims := DefaultDimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > maxDimensions {
			writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest,
				fmt.Sprintf("dimensions must be between 1 and %d.", maxDimensions), "")
			return
		}
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, "encoding_format must be float or base64.", "")
		return
	}
	out := embeddingList{Object: "list", Model: req.Model, Data: make([]embedding, len(inputs))}
	for i, in := range inputs {
		v := Vector(req.Model, in, dims)
		var e any = v
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(buf)
		}
		out.Data[i] = embedding{Object: "embedding", Index: i, Embedding: e}
		out.Usage.PromptTokens += tokens(len(in))
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	writeJSON(w, req.Model, out)
}

// tinyPNG encodes a 1×1 PNG.
func tinyPNG() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: 0x10, G: 0xa3, B: 0x7f, A: 0xff})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // writing to a bytes.Buffer cannot fail
	return buf.Bytes()
}

type imageRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              *int   `json:"n"`
	ResponseFormat string `json:"response_format"`
}

type imageData struct {
	B64JSON       string `json:"b64_json,omitempty"`
	URL           string `json:"url,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

func (h *handler) images(w http.ResponseWriter, r *http.Request, _ controls) {
	var req imageRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if n < 1 || n > 10 {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, "n must be between 1 and 10.", "")
		return
	}
	b64 := base64.StdEncoding.EncodeToString(h.png)
	data := make([]imageData, n)
	for i := range data {
		if req.ResponseFormat == "url" {
			data[i].URL = "data:image/png;base64," + b64
		} else {
			data[i].B64JSON = b64
		}
	}
	writeJSON(w, req.Model, struct {
		Created int64       `json:"created"`
		Data    []imageData `json:"data"`
		// Model is not in OpenAI's image object; the mock adds it so that
		// callers can see which model was asked for.
		Model string `json:"model"`
	}{h.now(), data, req.Model})
}

// speechFormats maps response_format to a content type and a few bytes that
// start like such a file.
var speechFormats = map[string]struct {
	contentType string
	magic       []byte
}{
	"mp3":  {"audio/mpeg", []byte{'I', 'D', '3', 4, 0, 0, 0, 0, 0, 0, 0xff, 0xfb, 0x90, 0x64}},
	"opus": {"audio/ogg", []byte("OggS\x00\x02")},
	"aac":  {"audio/aac", []byte{0xff, 0xf1, 0x50, 0x80}},
	"flac": {"audio/flac", []byte("fLaC")},
	"wav":  {"audio/wav", []byte("RIFF\x24\x00\x00\x00WAVE")},
	"pcm":  {"audio/pcm", []byte{0, 0, 0, 0, 0, 0, 0, 0}},
}

type speechRequest struct {
	Model          string `json:"model"`
	Input          string `json:"input"`
	Voice          any    `json:"voice"`
	ResponseFormat string `json:"response_format"`
}

func (h *handler) speech(w http.ResponseWriter, r *http.Request, _ controls) {
	var req speechRequest
	if !decode(w, r, &req) || !requireModel(w, req.Model) {
		return
	}
	if req.ResponseFormat == "" {
		req.ResponseFormat = "mp3"
	}
	f, ok := speechFormats[req.ResponseFormat]
	if !ok {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, "unsupported response_format.", "")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(f.magic)))
	hd.Set(HeaderModel, req.Model)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.magic)
}

// maxFormMemory is the part of a multipart upload kept in memory.
const maxFormMemory = 8 << 20

func (h *handler) transcriptions(w http.ResponseWriter, r *http.Request, _ controls) {
	if err := r.ParseMultipartForm(maxFormMemory); err != nil {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, "We could not parse the multipart body of your request.", "")
		return
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	model := r.FormValue("model")
	if !requireModel(w, model) {
		return
	}
	if _, ok := r.MultipartForm.File["file"]; !ok {
		body := openai.ErrorBody{Message: "You must provide a file.", Type: openai.TypeInvalidRequest, Param: openai.String("file")}
		openai.WriteError(w, http.StatusBadRequest, body)
		return
	}
	text := "Hello from mock model " + model + "."
	switch r.FormValue("response_format") {
	case "", "json":
		writeJSON(w, model, map[string]string{"text": text})
	case "verbose_json":
		writeJSON(w, model, map[string]any{"task": "transcribe", "language": "english", "duration": 1.0, "text": text})
	default: // text, srt, vtt
		hd := w.Header()
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		hd.Set(HeaderModel, model)
		_, _ = w.Write([]byte(text + "\n"))
	}
}

// moderationCategories are OpenAI's moderation categories.
var moderationCategories = []string{
	"harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
	"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
	"violence", "violence/graphic",
}

type moderationRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

type moderationResult struct {
	Flagged        bool               `json:"flagged"`
	Categories     map[string]bool    `json:"categories"`
	CategoryScores map[string]float64 `json:"category_scores"`
}

// moderations flags nothing. The model is optional, as in OpenAI's API.
func (h *handler) moderations(w http.ResponseWriter, r *http.Request, _ controls) {
	var req moderationRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Model == "" {
		req.Model = "omni-moderation-latest"
	}
	var (
		one   string
		many  []json.RawMessage
		count int
	)
	switch {
	case json.Unmarshal(req.Input, &one) == nil:
		count = 1
	case json.Unmarshal(req.Input, &many) == nil && len(many) > 0:
		count = len(many)
	default:
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, "input must be a string or a non-empty array.", "")
		return
	}
	results := make([]moderationResult, count)
	for i := range results {
		res := moderationResult{Categories: map[string]bool{}, CategoryScores: map[string]float64{}}
		for _, c := range moderationCategories {
			res.Categories[c] = false
			res.CategoryScores[c] = 0
		}
		results[i] = res
	}
	writeJSON(w, req.Model, struct {
		ID      string             `json:"id"`
		Model   string             `json:"model"`
		Results []moderationResult `json:"results"`
	}{h.id("modr"), req.Model, results})
}
