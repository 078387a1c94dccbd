// Package mock is an OpenAI-compatible fake provider: chat completions
// (plain and streamed), completions, embeddings, responses, images, audio and
// moderations, answered locally and deterministically. It serves the
// built-in "mock/..." provider of the gateway, cmd/mockupstream, tests and
// benchmarks.
//
// Every answer names the model it was called with (in the JSON body where
// OpenAI has a model field, in the reply text, and in the X-Mock-Model header)
// so that callers can check which upstream model a request reached.
//
// Requests can steer the mock with headers (the gateway forwards them):
//
//	x-mock-latency: 50ms      wait before the first byte (overrides Config.Latency)
//	x-mock-chunks: 10         content chunks of a stream (overrides Config.Chunks)
//	x-mock-chunk-delay: 20ms  wait between stream chunks (overrides Config.ChunkDelay)
//	x-mock-status: 503        answer this status (400-599) with an OpenAI error envelope
//	x-mock-fail-after: 3      streams only: send at most 3 content chunks, then
//	                          abort the connection (no finish chunk, no [DONE])
package mock

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway/openai"
)

// Request headers the mock understands.
const (
	HeaderLatency    = "X-Mock-Latency"
	HeaderChunks     = "X-Mock-Chunks"
	HeaderChunkDelay = "X-Mock-Chunk-Delay"
	HeaderStatus     = "X-Mock-Status"
	HeaderFailAfter  = "X-Mock-Fail-After"
	// HeaderModel is the response header naming the model a request was
	// called with.
	HeaderModel = "X-Mock-Model"
)

// DefaultChunks is the number of content chunks of a stream when
// Config.Chunks is 0.
const DefaultChunks = 5

// maxChunks bounds x-mock-chunks so that one request cannot ask for an
// unbounded answer.
const maxChunks = 100000

// maxBodyBytes bounds request bodies.
const maxBodyBytes = 64 << 20

// Config tunes the mock's defaults. The zero value answers at once with
// DefaultChunks chunks per stream.
type Config struct {
	// Latency is the wait before the first byte of every answer. Default 0.
	Latency time.Duration
	// ChunkDelay is the wait between two content chunks of a stream.
	// Default 0.
	ChunkDelay time.Duration
	// Chunks is the number of content chunks of a stream (and the number of
	// words, at least, of every reply). Default DefaultChunks.
	Chunks int
	// Now returns the time reported in "created" fields; nil means time.Now.
	Now func() time.Time
}

// handler is the mock provider.
type handler struct {
	cfg Config
	mux *http.ServeMux
	seq atomic.Uint64
	png []byte
}

// New returns the mock provider as an http.Handler. Routes are served with
// and without the /v1 prefix.
func New(cfg Config) http.Handler {
	if cfg.Chunks <= 0 {
		cfg.Chunks = DefaultChunks
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux(), png: tinyPNG()}
	routes := []struct {
		pattern string
		fn      func(http.ResponseWriter, *http.Request, controls)
	}{
		{"GET /models", h.listModels},
		{"GET /models/{id...}", h.getModel},
		{"POST /chat/completions", h.chat},
		{"POST /completions", h.completions},
		{"POST /embeddings", h.embeddings},
		{"POST /responses", h.responses},
		{"POST /images/generations", h.images},
		{"POST /audio/speech", h.speech},
		{"POST /audio/transcriptions", h.transcriptions},
		{"POST /moderations", h.moderations},
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		fn := rt.fn
		hf := func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, fn) }
		h.mux.HandleFunc(method+" "+path, hf)
		h.mux.HandleFunc(method+" /v1"+path, hf)
	}
	return h
}

// ServeHTTP routes r; unknown routes get an OpenAI-shaped 404.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, openai.TypeInvalidRequest,
			fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// controls are the per-request settings, from Config and request headers.
type controls struct {
	latency    time.Duration
	chunks     int
	chunkDelay time.Duration
	status     int
	failAfter  int // -1: never
}

func (h *handler) controls(r *http.Request) (controls, error) {
	c := controls{latency: h.cfg.Latency, chunks: h.cfg.Chunks, chunkDelay: h.cfg.ChunkDelay, failAfter: -1}
	var err error
	if v := r.Header.Get(HeaderLatency); v != "" {
		if c.latency, err = parseDuration(HeaderLatency, v); err != nil {
			return c, err
		}
	}
	if v := r.Header.Get(HeaderChunkDelay); v != "" {
		if c.chunkDelay, err = parseDuration(HeaderChunkDelay, v); err != nil {
			return c, err
		}
	}
	if v := r.Header.Get(HeaderChunks); v != "" {
		if c.chunks, err = parseInt(HeaderChunks, v, 1, maxChunks); err != nil {
			return c, err
		}
	}
	if v := r.Header.Get(HeaderStatus); v != "" {
		if c.status, err = parseInt(HeaderStatus, v, 400, 599); err != nil {
			return c, err
		}
	}
	if v := r.Header.Get(HeaderFailAfter); v != "" {
		if c.failAfter, err = parseInt(HeaderFailAfter, v, 0, maxChunks); err != nil {
			return c, err
		}
	}
	return c, nil
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid %s %q: want a duration such as 50ms", name, v)
	}
	return d, nil
}

func parseInt(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("invalid %s %q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// serve applies the controls common to every route, then runs fn.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, fn func(http.ResponseWriter, *http.Request, controls)) {
	c, err := h.controls(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest, err.Error(), "invalid_mock_control")
		return
	}
	if !sleep(r.Context(), c.latency) {
		return
	}
	if c.status != 0 {
		typ := openai.TypeInvalidRequest
		switch {
		case c.status == http.StatusTooManyRequests:
			typ = openai.TypeRateLimit
		case c.status >= 500:
			typ = openai.TypeServer
		}
		writeError(w, c.status, typ, fmt.Sprintf("Mock error: status %d requested with %s.", c.status, HeaderStatus), "mock_error")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	fn(w, r, c)
}

// sleep waits d or until ctx is done; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg, code string) {
	body := openai.ErrorBody{Message: msg, Type: typ}
	if code != "" {
		body.Code = openai.String(code)
	}
	openai.WriteError(w, status, body)
}

func writeJSON(w http.ResponseWriter, model string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, openai.TypeServer, "mock: cannot encode the answer", "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	if model != "" {
		h.Set(HeaderModel, model)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON body into v; it answers 400 and reports false on error.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request.", "")
		return false
	}
	return true
}

// requireModel answers 400 and reports false when model is empty.
func requireModel(w http.ResponseWriter, model string) bool {
	if model == "" {
		body := openai.ErrorBody{Message: "You must provide a model parameter.", Type: openai.TypeInvalidRequest, Param: openai.String("model")}
		openai.WriteError(w, http.StatusBadRequest, body)
		return false
	}
	return true
}

func (h *handler) id(prefix string) string {
	return prefix + "-mock-" + strconv.FormatUint(h.seq.Add(1), 10)
}

func (h *handler) now() int64 { return h.cfg.Now().Unix() }

// mockModels are listed by GET /models; any other id is served too.
var mockModels = []string{"mock-gpt", "mock-gpt-mini", "mock-embedding", "mock-whisper", "mock-tts", "mock-image"}

func (h *handler) listModels(w http.ResponseWriter, _ *http.Request, _ controls) {
	list := openai.ModelList{Object: "list", Data: make([]openai.Model, 0, len(mockModels))}
	for _, id := range mockModels {
		list.Data = append(list.Data, openai.Model{ID: id, Object: "model", Created: h.now(), OwnedBy: "mock"})
	}
	writeJSON(w, "", list)
}

func (h *handler) getModel(w http.ResponseWriter, r *http.Request, _ controls) {
	id := r.PathValue("id")
	writeJSON(w, id, openai.Model{ID: id, Object: "model", Created: h.now(), OwnedBy: "mock"})
}
