// Package spanattr lends the edge, the proxy and the policy decorator a
// reusable buffer for the attributes of one span. The OpenTelemetry SDK
// copies the attributes it is given, so the buffer goes back to a pool at
// once: recording a span then does not also allocate (and later collect)
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

// Set sets attrs, built in buf, on span and returns buf to the pool.
func Set(span trace.Span, buf *Buf, attrs []attribute.KeyValue) {
	span.SetAttributes(attrs...)
	Put(buf)
}
