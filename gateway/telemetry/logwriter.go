package telemetry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultLogFlushInterval is how long a log line may wait in a LogWriter
// before it is written (GATEWAY_LOG_FLUSH_INTERVAL).
const DefaultLogFlushInterval = 50 * time.Millisecond

// logFlushBytes is how much a LogWriter holds before it writes at once.
const logFlushBytes = 32 << 10

// LogWriter gathers log lines and writes them to its destination together:
// once a line has waited the flush interval, at once when it holds 32 KiB,
// and on Flush. A gateway under load writes one access-log line per
// request; gathered, they cost one write system call per interval instead
// of one each. Nothing is dropped: a writer that falls behind slows the
// lines' writers, as an unbuffered one does. Lines keep their order.
//
// Use it with NewLogger and Flush it before the process exits; a process
// killed outright loses at most the last interval's lines.
type LogWriter struct {
	mu       sync.Mutex
	w        io.Writer
	interval time.Duration
	buf      []byte
	timer    *time.Timer
	armed    bool
}

// NewLogWriter returns a LogWriter writing to w; an interval of zero or
// less writes every line at once.
func NewLogWriter(w io.Writer, interval time.Duration) *LogWriter {
	lw := &LogWriter{w: w, interval: interval}
	if interval > 0 {
		lw.timer = time.AfterFunc(time.Hour, func() { _ = lw.Flush() })
		lw.timer.Stop()
	}
	return lw
}

// Write queues p (one or more whole lines, as slog handlers write them).
func (lw *LogWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.interval <= 0 {
		return lw.w.Write(p)
	}
	lw.buf = append(lw.buf, p...)
	if len(lw.buf) >= logFlushBytes {
		if err := lw.flushLocked(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if !lw.armed {
		lw.armed = true
		lw.timer.Reset(lw.interval)
	}
	return len(p), nil
}

// Flush writes what is queued.
func (lw *LogWriter) Flush() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.flushLocked()
}

func (lw *LogWriter) flushLocked() error {
	if lw.armed {
		lw.armed = false
		lw.timer.Stop()
	}
	if len(lw.buf) == 0 {
		return nil
	}
	_, err := lw.w.Write(lw.buf)
	if cap(lw.buf) > 4*logFlushBytes { // after a burst of long lines
		lw.buf = nil
	} else {
		lw.buf = lw.buf[:0]
	}
	return err
}

// flushOnWarn is a slog.Handler that writes warnings and errors, and the
// lines queued before them, at once.
type flushOnWarn struct {
	slog.Handler
	w *LogWriter
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.w}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.w}
}
