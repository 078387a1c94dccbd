package telemetry

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BatchOptions are the Provider's batching settings: the OpenTelemetry
// batch span processor's, with its defaults for zero values.
type BatchOptions struct {
	// ScheduleDelay is the longest a span waits before its batch is
	// exported (OTEL_BSP_SCHEDULE_DELAY, default 5 s).
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export (OTEL_BSP_EXPORT_TIMEOUT, default 30 s).
	ExportTimeout time.Duration
	// MaxQueueSize spans wait at most; more are dropped
	// (OTEL_BSP_MAX_QUEUE_SIZE, default 2048).
	MaxQueueSize int
	// MaxExportBatchSize spans go in one export at most, and a queue this
	// long is exported at once (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default
	// 512; never more than MaxQueueSize).
	MaxExportBatchSize int
}

// batchOptionsFromEnv reads OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT
// (milliseconds), OTEL_BSP_MAX_QUEUE_SIZE and OTEL_BSP_MAX_EXPORT_BATCH_SIZE
// through env, as the SDK's batch processor does: a value that is not a
// positive integer leaves the default (normalised fills it in).
func batchOptionsFromEnv(env func(string) (string, bool)) BatchOptions {
	num := func(key string) int {
		v, _ := env(key)
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0
		}
		return n
	}
	o := BatchOptions{
		ScheduleDelay:      time.Duration(num("OTEL_BSP_SCHEDULE_DELAY")) * time.Millisecond,
		ExportTimeout:      time.Duration(num("OTEL_BSP_EXPORT_TIMEOUT")) * time.Millisecond,
		MaxQueueSize:       num("OTEL_BSP_MAX_QUEUE_SIZE"),
		MaxExportBatchSize: num("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
	}
	return o.normalised()
}

// normalised fills zero settings with the defaults and keeps a batch no
// larger than the queue, as the SDK does.
func (o BatchOptions) normalised() BatchOptions {
	if o.ScheduleDelay <= 0 {
		o.ScheduleDelay = sdktrace.DefaultScheduleDelay * time.Millisecond
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = sdktrace.DefaultExportTimeout * time.Millisecond
	}
	if o.MaxQueueSize <= 0 {
		o.MaxQueueSize = sdktrace.DefaultMaxQueueSize
	}
	if o.MaxExportBatchSize <= 0 {
		o.MaxExportBatchSize = sdktrace.DefaultMaxExportBatchSize
	}
	if o.MaxExportBatchSize > o.MaxQueueSize {
		o.MaxExportBatchSize = min(sdktrace.DefaultMaxExportBatchSize, o.MaxQueueSize)
	}
	return o
}

// spanQueue holds ended spans until a goroutine encodes and exports them:
// at most every schedule delay, or as soon as a full batch waits. It drops
// spans when the queue is full. This is the OpenTelemetry batch span
// processor but for two things that matter here:
//
//   - A span's data is copied into the current batch as it ends (its
//     attributes included, so that their buffer goes back to the pool at
//     once), and the batch is encoded to OTLP in one pass when it is
//     exported. Encoding each span as it ended, on the request's
//     goroutine, was half of what tracing cost in the real binary
//     (BenchmarkOpsTelemetryProcess, tracing alone: 12% of the gateway's
//     CPU per chat call that way, 6% this way, measured side by side on
//     2026-12-04), though a hot loop encodes a span in about 0.3 µs. The
//     likely reason: between a request's network and policy work the
//     encoder's code and the attributes' keys were cold every time,
//     where a batch encodes in a loop that keeps them warm.
//   - The SDK's processor hands every span to its goroutine over a
//     channel, so a mostly idle gateway wakes that goroutine, and often an
//     operating-system thread to run it, four times per chat call. This
//     appends under a lock and wakes its goroutine only when a batch is
//     full, the delay is up, or a flush or shutdown asks.
type spanQueue struct {
	opts BatchOptions
	x    *Exporter
	res  *resource.Resource
	enc  spanEncoder // the exporting goroutine's

	mu      sync.Mutex
	cur     *spanBatch   // filling
	full    []*spanBatch // waiting for export, in order
	free    []*spanBatch // exported, to reuse
	queued  int          // spans in cur and full
	closed  bool
	dropped uint64

	wake    chan struct{}      // a full batch waits; capacity 1, so wake-ups coalesce
	flush   chan chan struct{} // export what is queued, then close the channel
	stop    chan struct{}
	stopped chan struct{} // closed when the goroutine has exported the rest

	stopOnce sync.Once
}

// spanBatch is up to MaxExportBatchSize ended spans, in the order they
// ended, and their encoding by scope once exported.
type spanBatch struct {
	spans  []spanData           // kv points into attrs
	attrs  []attribute.KeyValue // the spans' attributes, back to back
	scopes []scopeGroup         // encoded only
}

// newSpanQueue starts a queue exporting through x; shutdown stops it.
func newSpanQueue(opts BatchOptions, x *Exporter, res *resource.Resource) *spanQueue {
	q := &spanQueue{
		opts:    opts.normalised(),
		x:       x,
		res:     res,
		wake:    make(chan struct{}, 1),
		flush:   make(chan chan struct{}),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go q.run()
	return q
}

// add copies the ended span s into the current batch, or drops it when
// the queue is full or shut down. s may be reused once add returns.
func (q *spanQueue) add(s *span) {
	q.mu.Lock()
	if q.closed || q.queued >= q.opts.MaxQueueSize {
		q.dropped++
		q.mu.Unlock()
		return
	}
	if q.cur == nil {
		if n := len(q.free); n > 0 {
			q.cur, q.free = q.free[n-1], q.free[:n-1]
		} else {
			// Sized for a full batch at once (within reason): a few large
			// allocations rather than a slice doubling its way up.
			q.cur = &spanBatch{spans: make([]spanData, 0, min(q.opts.MaxExportBatchSize, 1024))}
		}
	}
	b := q.cur
	lo := len(b.attrs)
	b.attrs = append(b.attrs, s.kv...)
	b.spans = append(b.spans, s.spanData)
	// An earlier span's kv may still point into the array attrs had before
	// this append grew it; that array is kept alive by it and unchanged.
	b.spans[len(b.spans)-1].kv = b.attrs[lo:len(b.attrs):len(b.attrs)]
	q.queued++
	full := len(b.spans) >= q.opts.MaxExportBatchSize
	if full {
		q.full = append(q.full, b)
		q.cur = nil
	}
	q.mu.Unlock()
	if full {
		select {
		case q.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// droppedCount is the number of spans dropped so far.
func (q *spanQueue) droppedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// run exports when a batch is full, the delay is up or a flush is asked
// for, until shutdown; then it exports what is left.
func (q *spanQueue) run() {
	defer close(q.stopped)
	timer := time.NewTimer(q.opts.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-q.stop:
			q.exportQueued(true)
			return
		case <-timer.C:
			q.exportQueued(true)
		case <-q.wake:
			q.exportQueued(false)
		case flushed := <-q.flush:
			q.exportQueued(true)
			close(flushed)
		}
		timer.Reset(q.opts.ScheduleDelay)
	}
}

// exportQueued exports the full batches and, with all, the one filling,
// in order, and keeps their buffers for reuse.
func (q *spanQueue) exportQueued(all bool) {
	q.mu.Lock()
	batches := q.full
	q.full = nil
	if all && q.cur != nil {
		batches = append(batches, q.cur)
		q.cur = nil
	}
	for _, b := range batches {
		q.queued -= len(b.spans)
	}
	q.mu.Unlock()
	for _, b := range batches {
		q.encode(b)
		q.export(b)
		clear(b.spans) // let go of what the spans referenced
		clear(b.attrs)
		b.spans, b.attrs = b.spans[:0], b.attrs[:0]
		b.scopes = b.scopes[:0] // slot reuses each scope's buffer
	}
	q.mu.Lock()
	q.free = append(q.free, batches...)
	if extra := len(q.free) - q.opts.MaxQueueSize/q.opts.MaxExportBatchSize - 1; extra > 0 {
		clear(q.free[len(q.free)-extra:]) // a burst's buffers are not kept
		q.free = q.free[:len(q.free)-extra]
	}
	q.mu.Unlock()
}

// encode writes the batch's spans to OTLP, grouped by scope.
func (q *spanQueue) encode(b *spanBatch) {
	for i := range b.spans {
		d := &b.spans[i]
		scope := &d.tracer.scope
		var sg *scopeGroup
		var fresh bool
		b.scopes, sg, fresh = slot(b.scopes, func(sg *scopeGroup) bool { return sg.of == scope })
		if fresh {
			sg.scope, sg.of, sg.encoded = *scope, scope, sg.encoded[:0]
		}
		sg.encoded = q.enc.appendSpan(sg.encoded, d)
	}
}

// export sends one batch within the export timeout; errors go to the
// OpenTelemetry error handler, as the SDK's processor reports them.
func (q *spanQueue) export(b *spanBatch) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), q.opts.ExportTimeout, errors.New("span export timed out"))
	defer cancel()
	if err := q.x.exportEncoded(ctx, q.res, b.scopes); err != nil {
		otel.Handle(err)
	}
}

// forceFlush exports everything queued before the call and waits for it,
// or for ctx.
func (q *spanQueue) forceFlush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	flushed := make(chan struct{})
	select {
	case q.flush <- flushed:
	case <-q.stopped: // shut down: nothing is queued
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown stops queueing and exports what is queued, waiting at most
// until ctx is done. Later calls do nothing.
func (q *spanQueue) shutdown(ctx context.Context) error {
	var err error
	q.stopOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		close(q.stop)
		select {
		case <-q.stopped:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}
