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

// Polling defaults (Config.PollInterval, Config.FilePollInterval).
const (
	// DefaultPollInterval is how often bundle-service URLs are polled.
	DefaultPollInterval = 30 * time.Second
	// DefaultFilePollInterval is how often directories and tarballs are
	// checked for changes (a stat of each file; nothing is read unless one
	// changed).
	DefaultFilePollInterval = time.Second
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
				_ = e.poll(ctx, false) // failures are logged and kept in Status
			}
		}
	}()
}

// Close stops the watcher started by Start and waits for it.
func (e *Engine) Close() {
	e.watch.mu.Lock()
	stop, done := e.watch.stop, e.watch.done
	e.watch.stop = nil
	e.watch.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Reload reads every source now (on SIGHUP), whether or not it seems to
// have changed, and swaps in the result when it differs from what serves.
// URL sources are asked at once, ignoring their backoff. On any failure the
// current policy keeps serving; the error is also in Status.
func (e *Engine) Reload(ctx context.Context) error {
	return e.poll(ctx, true)
}

// poll reads the sources that are due and installs a new policy when one of
// them changed.
func (e *Engine) poll(ctx context.Context, force bool) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	now := time.Now()
	var (
		errs    []error
		changed []*source
		fresh   = map[*source]fs.FS{}
	)
	for _, src := range e.sources {
		if src.kind == SourceURL && !force && now.Before(src.next) {
			continue
		}
		fsys, err := src.fetch(ctx, e.client, force)
		switch {
		case errors.Is(err, ErrNotModified):
			src.fetched(nil)
		case err != nil:
			src.fetched(err)
			e.status.failed(err)
			e.log.Warn("policy bundle fetch failed; the last good bundle keeps serving",
				"source", src.name(), "error", err, "retry_in", time.Until(src.next).Round(time.Millisecond))
			errs = append(errs, err)
		default:
			src.fetched(nil)
			fresh[src] = fsys
			changed = append(changed, src)
		}
	}
	if len(changed) > 0 {
		err := e.install(ctx, e.inputs(fresh))
		for _, src := range changed {
			src.loadErr = err
			if err == nil {
				src.good = fresh[src]
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, src := range e.sources {
		err := src.fetchErr
		if err == nil {
			err = src.loadErr
		}
		e.status.setSource(src.name(), err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("reload policy: %w", errors.Join(errs...))
	}
	return nil
}

// fetched records the outcome of a fetch and schedules the next poll: the
// interval after a success, an exponential backoff with jitter after
// consecutive failures.
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
