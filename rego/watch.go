package rego

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync"
	"time"
)

// Polling defaults (Config.PollInterval, Config.FilePollInterval,
// Config.FetchTimeout).
const (
	// DefaultPollInterval is how often bundle-service URLs are polled.
	DefaultPollInterval = 30 * time.Second
	// DefaultFilePollInterval is how often directories and tarballs are
	// checked for changes (a stat of each file; nothing is read unless one
	// changed).
	DefaultFilePollInterval = time.Second
	// DefaultFetchTimeout bounds one fetch of a bundle-service URL: the
	// request, the answer and its body.
	DefaultFetchTimeout = 30 * time.Second
	// MaxPollBackoff caps the delay between failed polls of a URL.
	MaxPollBackoff = 2 * time.Minute
)

// watcher is the background poll loop Start runs.
type watcher struct {
	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// Start watches the configured sources in the background until Close or
// until ctx ends: directories and tarballs every FilePollInterval, URLs
// every PollInterval with backoff after failures. A changed bundle is
// compiled, checked and swapped in; a bad one is refused and the last good
// policy keeps serving. Start without sources does nothing; a second Start
// is a no-op.
func (e *Engine) Start(ctx context.Context) {
	if len(e.sources) == 0 {
		return
	}
	e.watch.mu.Lock()
	defer e.watch.mu.Unlock()
	if e.watch.stop != nil {
		return
	}
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.watch.stop = stop
	e.watch.done = make(chan struct{})
	tick := e.pollEvery
	for _, src := range e.sources {
		if src.kind != SourceURL {
			tick = min(tick, e.fileEvery)
		}
	}
	go func() {
		defer close(e.watch.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.tick() // failures are logged and kept in Status
			}
		}
	}()
}

// Close stops the watcher started by Start, cancels the fetches under way
// and waits for them.
func (e *Engine) Close() {
	e.watch.mu.Lock()
	stop, done := e.watch.stop, e.watch.done
	e.watch.stop = nil
	e.watch.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	e.stopFetches()
	e.fetches.Wait()
}

// Reload reads every source now (on SIGHUP), whether or not it seems to
// have changed, and swaps in what it read when it differs from what serves.
// URL sources are asked at once, ignoring their backoff.
//
// Each source is fetched in a goroutine of its own, bounded by
// Config.FetchTimeout, and its bundle is loaded as soon as it arrives: a
// source that hangs delays neither the others nor later reloads. A source
// whose fetch is already under way is fetched again right after it, so
// that what Reload reports was read after it was called; reloads that come
// meanwhile share that fetch. Reload returns when every source has been
// read and loaded, or refused, or when ctx ends (the fetches go on). On any
// failure the current policy keeps serving; the error is also in Status.
func (e *Engine) Reload(ctx context.Context) error {
	chs := make([]<-chan error, len(e.sources))
	for i, src := range e.sources {
		chs[i] = e.reloadSource(src)
	}
	var errs []error
	for _, ch := range chs {
		select {
		case err := <-ch:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("reload policy: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("reload policy: %w", errors.Join(errs...))
	}
	return nil
}

// tick starts a poll of each source that is due and not being fetched
// already, without waiting for it.
func (e *Engine) tick() {
	now := time.Now()
	for _, src := range e.sources {
		src.mu.Lock()
		if !src.running && (src.kind != SourceURL || !now.Before(src.next)) {
			e.startFetch(src, false, now)
		}
		src.mu.Unlock()
	}
}

// reloadSource asks for a forced fetch of src that starts now, or right
// after the one under way. The channel receives its outcome.
func (e *Engine) reloadSource(src *source) <-chan error {
	ch := make(chan error, 1)
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.running {
		src.again = true
		src.pending = append(src.pending, ch)
		return ch
	}
	src.waiters = append(src.waiters, ch)
	e.startFetch(src, true, time.Now())
	return ch
}

// startFetch runs the fetches of src in a goroutine until no reload asks
// for another. The caller holds src.mu and has checked that none runs.
func (e *Engine) startFetch(src *source, force bool, now time.Time) {
	src.running, src.startedAt = true, now
	e.fetches.Add(1)
	go func() {
		defer e.fetches.Done()
		for {
			err := e.refresh(src, force)
			src.mu.Lock()
			for _, ch := range src.waiters {
				ch <- err
			}
			src.waiters = nil
			if !src.again {
				src.running = false
				src.mu.Unlock()
				return
			}
			src.waiters, src.pending, src.again = src.pending, nil, false
			src.startedAt, force = time.Now(), true
			src.mu.Unlock()
		}
	}()
}

// refresh fetches src within the fetch timeout and, when it read a new
// bundle, compiles it with the others' current ones and swaps the result
// in. It records the outcome for Status.
func (e *Engine) refresh(src *source, force bool) error {
	ctx, cancel := context.WithTimeout(e.fetchCtx, e.fetchTimeout)
	fsys, err := src.fetch(ctx, e.client, force)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (fetch timeout %s)", err, e.fetchTimeout)
	}
	notModified := errors.Is(err, ErrNotModified)
	src.mu.Lock()
	if notModified {
		src.fetched(nil)
	} else {
		src.fetched(err)
	}
	next := src.next
	src.mu.Unlock()
	switch {
	case notModified:
		err = nil
	case err != nil:
		e.status.failed(err)
		e.log.Warn("policy bundle fetch failed; the last good bundle keeps serving",
			"source", src.name(), "error", err, "retry_in", time.Until(next).Round(time.Millisecond))
	}
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	if err == nil && !notModified {
		err = e.install(e.fetchCtx, e.inputs(map[*source]fs.FS{src: fsys}))
		src.loadErr = err
		if err == nil {
			src.good = fsys
		}
	}
	serr := err
	if serr == nil {
		serr = src.loadErr
	}
	e.status.setSource(src.name(), serr)
	return err
}

// fetching lists the fetches under way, for Status.
func (e *Engine) fetching() []FetchStatus {
	out := []FetchStatus{}
	for _, src := range e.sources {
		src.mu.Lock()
		if src.running {
			out = append(out, FetchStatus{Source: src.name(), StartedAt: src.startedAt})
		}
		src.mu.Unlock()
	}
	return out
}

// fetched records the outcome of a fetch and schedules the next poll: the
// interval after a success, an exponential backoff with jitter after
// consecutive failures. The caller holds s.mu.
func (s *source) fetched(err error) {
	s.fetchErr = err
	d := s.interval
	if err != nil {
		s.failures++
		d = min(s.interval<<min(s.failures, 6), max(MaxPollBackoff, s.interval))
	} else {
		s.failures = 0
	}
	// ±10% jitter, so that replicas do not poll in step.
	d += time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	s.next = time.Now().Add(d)
}
