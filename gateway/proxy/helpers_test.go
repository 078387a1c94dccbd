package proxy

import (
	"bufio"
	"errors"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

// recorded is what an upstream received.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// upstream is a real HTTP server standing in for a provider.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

// newUpstream starts an upstream that records each request, then runs h.
func newUpstream(tb testing.TB, h http.HandlerFunc) *upstream {
	tb.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		h(w, r)
	}))
	tb.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

// replying answers every request with status, content type and body.
func replying(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// refusedURL is a base URL where nothing listens.
func refusedURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// dep is an OpenAI-style deployment of group "group" at base.
func dep(id, base string) gateway.Deployment {
	return gateway.Deployment{
		ID: id, ModelName: "group", ProviderModel: "openai/up-" + id, Provider: "openai",
		UpstreamModel: "up-" + id, APIBase: base + "/v1", APIKey: gateway.Secret("sk-provider-secret-" + id),
	}
}

func newProxy(tb testing.TB, cfg Config) *Proxy {
	tb.Helper()
	p, err := New(cfg)
	if err != nil {
		tb.Fatalf("New() error = %v", err)
	}
	return p
}

// served is what the test gateway saw of Serve's result.
type served struct {
	mu  sync.Mutex
	err error
}

func (s *served) get() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// newGateway starts a minimal edge in front of p: it reads and scans the
// body like gateway/httpapi does, calls Serve with deployments and maps the
// returned error.
func newGateway(tb testing.TB, p *Proxy, deployments ...gateway.Deployment) (*httptest.Server, *served) {
	tb.Helper()
	inOrder(deployments)
	res := &served{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		ct := r.Header.Get("Content-Type")
		req := Request{
			Operation: "test", Path: strings.TrimPrefix(r.URL.Path, "/v1"), Body: body,
			ContentType: ct, Deployments: deployments,
		}
		if mt, _, _ := mime.ParseMediaType(ct); mt == "multipart/form-data" {
			req.Multipart = true
			_, err = openai.ScanMultipart(body, ct)
		} else {
			req.Fields, err = openai.ScanJSON(body)
			req.Stream = req.Fields.Stream
		}
		if err == nil {
			err = p.Serve(w, r, req)
		}
		res.mu.Lock()
		res.err = err
		res.mu.Unlock()
		writeTestError(w, err)
	}))
	tb.Cleanup(srv.Close)
	return srv, res
}

// inOrder makes the router try ds in the order given, unless a test set
// weights itself: weights 2^-200 apart leave a later deployment no chance
// in float64 while an earlier one is undrawn.
func inOrder(ds []gateway.Deployment) {
	for i := range ds {
		if ds[i].Weight > 0 {
			return
		}
	}
	for i := range ds {
		ds[i].Weight = math.Ldexp(1, -200*i)
	}
}

// writeTestError is a small stand-in for httpapi's error mapper.
func writeTestError(w http.ResponseWriter, err error) {
	var (
		ue  *UpstreamError
		bad *gateway.BadRequestError
	)
	switch {
	case err == nil:
	case errors.As(err, &ue):
		for k, v := range ue.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ue.Status)
		_, _ = w.Write(ue.Body)
	case errors.As(err, &bad):
		openai.WriteError(w, http.StatusBadRequest, openai.ErrorBody{Message: bad.Message, Type: openai.TypeInvalidRequest})
	default:
		openai.WriteError(w, http.StatusInternalServerError, openai.ErrorBody{Message: "test gateway: " + err.Error(), Type: openai.TypeServer})
	}
}

func post(tb testing.TB, srv *httptest.Server, path, contentType, body string, hdr map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("POST %s: read body: %v", path, err)
	}
	return res, b
}

// sseReader reads server-sent events one at a time.
type sseReader struct{ r *bufio.Reader }

// next returns the next event's lines joined by "\n", or the read error.
func (s sseReader) next() (string, error) {
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if line != "" || len(lines) > 0 {
				return strings.Join(append(lines, line), "\n"), io.ErrUnexpectedEOF
			}
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, line)
	}
}

// all reads the remaining events and the error that ended the stream (nil
// for a clean end).
func (s sseReader) all() ([]string, error) {
	var events []string
	for {
		ev, err := s.next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

// writeEvent writes one "data:" event to w and flushes it.
func writeEvent(tb testing.TB, w http.ResponseWriter, data string) {
	tb.Helper()
	if _, err := io.WriteString(w, "data: "+data+"\n\n"); err != nil {
		return
	}
	w.(http.Flusher).Flush()
}
