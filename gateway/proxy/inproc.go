package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// errAborted is the body error of an in-process handler that panicked, as a
// dropped connection reads over the network.
var errAborted = fmt.Errorf("in-process upstream aborted the response: %w", io.ErrUnexpectedEOF)

// HandlerTransport returns a RoundTripper that answers requests by running h
// in-process, without a network. The response is returned as soon as h
// writes its headers (or flushes, writes or returns) and its body is a pipe,
// so streamed chunks arrive as h writes them. Closing the body or cancelling
// the request context makes h's further writes fail. A panic in h, including
// http.ErrAbortHandler, reads as an aborted connection: an error from
// RoundTrip before the headers, io.ErrUnexpectedEOF from the body after.
func HandlerTransport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	sreq := req.Clone(ctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.Host = req.URL.Host
	sreq.RemoteAddr = "127.0.0.1:0"
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	if sreq.Proto == "" {
		sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/1.1", 1, 1
	}
	pr, pw := io.Pipe()
	w := &pipeResponseWriter{header: make(http.Header), pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				if !w.committed {
					w.err = errAborted
					close(w.ready)
				}
				pw.CloseWithError(errAborted)
				return
			}
			w.commit(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, context.Cause(ctx)
	}
	if w.err != nil {
		pr.Close()
		return nil, w.err
	}
	res := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if cl, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
		res.ContentLength = cl
	}
	return res, nil
}

// pipeResponseWriter is the http.ResponseWriter of an in-process handler.
// Only the handler's goroutine uses it; RoundTrip reads status and sent
// after ready is closed.
type pipeResponseWriter struct {
	header    http.Header
	pw        *io.PipeWriter
	ready     chan struct{}
	committed bool
	status    int
	sent      http.Header
	err       error
}

func (w *pipeResponseWriter) Header() http.Header { return w.header }

// commit sends the headers once.
func (w *pipeResponseWriter) commit(status int) {
	if w.committed {
		return
	}
	w.committed = true
	w.status = status
	w.sent = w.header.Clone()
	close(w.ready)
}

func (w *pipeResponseWriter) WriteHeader(status int) {
	if status >= 100 && status < 200 {
		return // informational answers are not passed on
	}
	w.commit(status)
}

func (w *pipeResponseWriter) Write(b []byte) (int, error) {
	if !w.committed {
		if w.header.Get("Content-Type") == "" {
			w.header.Set("Content-Type", http.DetectContentType(b))
		}
		w.commit(http.StatusOK)
	}
	n, err := w.pw.Write(b)
	if errors.Is(err, io.ErrClosedPipe) {
		err = fmt.Errorf("in-process client closed the response: %w", err)
	}
	return n, err
}

// Flush sends the headers if they were not sent; written bytes are always
// delivered at once, since the pipe has no buffer.
func (w *pipeResponseWriter) Flush() { w.commit(http.StatusOK) }
