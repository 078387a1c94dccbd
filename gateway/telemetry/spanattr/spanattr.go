// Package spanattr lends the edge, the proxy and the policy decorator a
// reusable buffer for the attributes of one span. A span of the gateway's
// own tracer (telemetry.Provider) keeps the buffer until its span is
// exported, then gives it back; any other span (the OpenTelemetry SDK's)
// copies the attributes, and the buffer goes back to the pool at once.
// Either way recording a span does not also allocate (and later collect)
// the slice that carries them.
package spanattr

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Buf holds up to 12 attributes of one span.
type Buf [12]attribute.KeyValue

var pool = sync.Pool{New: func() any { return new(Buf) }}

// Get takes a buffer from the pool; build the attributes with
// append(buf[:0], …) and hand them to Set (or give the buffer back with
// Put).
func Get() *Buf { return pool.Get().(*Buf) }

// Put clears buf and returns it to the pool.
func Put(buf *Buf) {
	clear(buf[:])
	pool.Put(buf)
}

// Keeper is a span that can keep a buffer and the attributes built in it
// rather than copy them. Keep reports whether it did; if so the buffer is
// the span's, to Put when it is done with it.
type Keeper interface {
	KeepAttributes(buf *Buf, attrs []attribute.KeyValue) bool
}

// Set sets attrs, built in buf, on span, which either keeps buf or copies
// attrs, after which buf goes back to the pool.
func Set(span trace.Span, buf *Buf, attrs []attribute.KeyValue) {
	if k, ok := span.(Keeper); ok && k.KeepAttributes(buf, attrs) {
		return
	}
	span.SetAttributes(attrs...)
	Put(buf)
}
