// Package decisionlog records one JSON event per policy decision (DESIGN §3
// step 7): who asked, for which route and model, along which alias chain,
// what the policy answered and why, under which bundle revision, and how
// long the evaluation took.
//
// Logger decorates a gateway.Authorizer, so the edge needs no change: it
// times each evaluation, builds the event from the Input and the answer, and
// hands it to a bounded queue. One goroutine wakes up every FlushInterval and
// encodes and writes the queued events. When the queue is full the event is
// dropped and counted (Dropped), so a slow destination never slows a
// request.
//
// Events never hold a secret or a prompt: keys appear as their SHA-256 hash
// and alias, and only the model name is read from the request.
package decisionlog

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
)

// Defaults of Config.
const (
	// DefaultQueueSize is the queue length when Config.QueueSize is zero.
	DefaultQueueSize = 8192
	// DefaultFlushInterval is how often the writer wakes up when
	// Config.FlushInterval is zero.
	DefaultFlushInterval = 50 * time.Millisecond
)

// Queries an event can record.
const (
	QueryDecision      = "decision"
	QueryVisibleModels = "visible_models"
)

// Event is one decision, as written (one JSON object per line).
type Event struct {
	DecisionID string    `json:"decision_id"`
	RequestID  string    `json:"request_id"`
	Time       time.Time `json:"time"`
	// Query is QueryDecision or QueryVisibleModels.
	Query     string `json:"query"`
	Route     string `json:"route"`
	Operation string `json:"operation"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Stream    bool   `json:"stream"`
	// KeyHash is the SHA-256 of the key (its id), never the key.
	KeyHash  string `json:"key_hash"`
	KeyAlias string `json:"key_alias"`
	Team     string `json:"team"`
	User     string `json:"user"`
	// Requested, Chain, Resolved and Found describe input.model; Chain is
	// the chain's names (input.model.names).
	Requested string   `json:"requested_model"`
	Chain     []string `json:"chain"`
	Resolved  string   `json:"resolved_model"`
	Found     bool     `json:"found"`
	// Allow, Status, Code and Reasons are the decision; for a
	// visible_models event Allow is true unless the evaluation failed.
	Allow   bool     `json:"allow"`
	Status  int      `json:"status,omitempty"`
	Code    string   `json:"code,omitempty"`
	Reasons []string `json:"reasons"`
	// Visible lists the permitted ids of a visible_models event (sorted),
	// and Candidates how many were asked about.
	Visible    []string `json:"visible,omitempty"`
	Candidates int      `json:"candidates,omitempty"`
	// Error is the evaluation error of a decision that failed closed.
	Error string `json:"error,omitempty"`
	// Revision is the policy bundle revision that decided.
	Revision string `json:"bundle_revision"`
	// EvalMicros is the evaluation time in microseconds.
	EvalMicros float64 `json:"eval_us"`

	// Params are the call's input.request.params (never its body or
	// prompt), and ClientIP its input.request.client_ip.
	Params   map[string]any `json:"params,omitempty"`
	ClientIP string         `json:"client_ip,omitempty"`
	// FallbackFrom is, for a fallback target's decision, the model group
	// fallen back from (DESIGN §12); the policy did not see it.
	FallbackFrom string `json:"fallback_from,omitempty"`

	visible map[string]struct{} // turned into Visible by the writer
	// body and contentType are the call's, turned into Params by the
	// writer and dropped.
	body        []byte
	contentType string
}

// Config configures a Logger.
type Config struct {
	// Authorizer is the policy being logged. Required.
	Authorizer gateway.Authorizer
	// Output receives the events, one JSON object per line. Required.
	Output io.Writer
	// QueueSize bounds the events waiting to be written; zero means
	// DefaultQueueSize. Events beyond it within one FlushInterval are
	// dropped.
	QueueSize int
	// FlushInterval is how often the writer wakes up to write what is
	// queued; zero means DefaultFlushInterval. The writer sleeps in between,
	// so a decision never wakes it: queueing an event is a channel send.
	FlushInterval time.Duration
	// Revision returns the serving policy revision; nil leaves it empty.
	Revision func() string
	// Logger receives write errors (once per run of failures); nil discards.
	Logger *slog.Logger
}

// Logger is a gateway.Authorizer that logs every decision of the one it
// wraps. Create it with New, call Start before use and Close when done.
type Logger struct {
	authz    gateway.Authorizer
	out      io.Writer
	revision func() string
	log      *slog.Logger

	queue   chan *Event
	every   time.Duration
	dropped atomic.Uint64
	written atomic.Uint64

	startOnce sync.Once
	closeOnce sync.Once
	closing   chan struct{} // closed by Close, after the queue
	done      chan struct{}
}

var _ gateway.Authorizer = (*Logger)(nil)

// New checks cfg. It starts nothing; Start does.
func New(cfg Config) (*Logger, error) {
	switch {
	case cfg.Authorizer == nil:
		return nil, errors.New("decisionlog: Config.Authorizer is required")
	case cfg.Output == nil:
		return nil, errors.New("decisionlog: Config.Output is required")
	}
	n := cfg.QueueSize
	if n <= 0 {
		n = DefaultQueueSize
	}
	l := &Logger{
		authz: cfg.Authorizer, out: cfg.Output, revision: cfg.Revision, log: cfg.Logger,
		queue: make(chan *Event, n), closing: make(chan struct{}), done: make(chan struct{}), every: cfg.FlushInterval,
	}
	if l.every <= 0 {
		l.every = DefaultFlushInterval
	}
	if l.revision == nil {
		l.revision = func() string { return "" }
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// Start runs the writer goroutine. Later calls do nothing.
func (l *Logger) Start() {
	l.startOnce.Do(func() { go l.run() })
}

// Close stops accepting events, writes those queued and waits until they
// are written or ctx ends. Events decided after Close are dropped.
func (l *Logger) Close(ctx context.Context) error {
	l.Start() // a Logger never started still drains its queue
	l.closeOnce.Do(func() {
		close(l.queue)
		close(l.closing)
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dropped counts events dropped because the queue was full (or the Logger
// closed). A nil Logger (no decision log) reports 0.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Written counts events written to Output. A nil Logger reports 0.
func (l *Logger) Written() uint64 {
	if l == nil {
		return 0
	}
	return l.written.Load()
}

// Decide evaluates the wrapped policy and logs the decision.
func (l *Logger) Decide(ctx context.Context, in *gateway.Input) (gateway.Decision, error) {
	start := time.Now()
	d, err := l.authz.Decide(ctx, in)
	took := time.Since(start)
	ev := l.event(in, QueryDecision, start, took, err)
	ev.Allow, ev.Status, ev.Code, ev.Reasons = d.Allow, d.Status, d.Code, d.Reasons
	l.enqueue(ev)
	return d, err
}

// VisibleModels evaluates the wrapped policy's list filter and logs it. The
// returned map is shared read-only with the writer, which sorts its keys.
func (l *Logger) VisibleModels(ctx context.Context, in *gateway.Input) (map[string]struct{}, error) {
	start := time.Now()
	ids, err := l.authz.VisibleModels(ctx, in)
	took := time.Since(start)
	ev := l.event(in, QueryVisibleModels, start, took, err)
	ev.Allow = err == nil
	if in != nil && in.Candidates != nil {
		ev.Candidates = len(in.Candidates.Items)
	}
	ev.visible = ids
	l.enqueue(ev)
	return ids, err
}

// event fills in what the input says. It copies nothing large: slices are
// shared read-only with the writer.
func (l *Logger) event(in *gateway.Input, query string, start time.Time, took time.Duration, err error) *Event {
	ev := &Event{Time: start, Query: query, Revision: l.revision(), EvalMicros: float64(took.Nanoseconds()) / 1e3}
	if err != nil {
		ev.Error = err.Error()
	}
	if in == nil {
		return ev
	}
	r := &in.Request
	ev.RequestID, ev.Route, ev.Operation, ev.Method, ev.Path, ev.Stream = r.ID, r.Route, r.Operation, r.Method, r.Path, r.Stream
	ev.ClientIP, ev.body, ev.contentType = r.ClientIP, r.Body, r.ContentType
	ev.FallbackFrom = r.FallbackFrom
	if p := in.Principal; p != nil {
		if p.Key != nil {
			ev.KeyHash, ev.KeyAlias = p.Key.ID, p.Key.Alias
		}
		if p.Team != nil {
			ev.Team = p.Team.ID
		}
		if p.User != nil {
			ev.User = p.User.ID
		}
	}
	if m := in.Model; m != nil {
		ev.Requested, ev.Chain, ev.Resolved, ev.Found = m.Requested, m.Names, m.Resolved, m.Found
	}
	return ev
}

// enqueue hands ev to the writer without blocking; a full queue drops it.
func (l *Logger) enqueue(ev *Event) {
	defer func() {
		// Sending on the queue closed by Close panics: count it as dropped.
		if recover() != nil {
			l.dropped.Add(1)
		}
	}()
	select {
	case l.queue <- ev:
	default:
		l.dropped.Add(1)
	}
}

// run wakes up every FlushInterval, writes every queued event and flushes,
// until the queue is closed; then it writes the rest.
func (l *Logger) run() {
	defer close(l.done)
	w := bufio.NewWriterSize(l.out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	failing := false
	report := func(err error) {
		if !failing {
			l.log.Error("decision log write failed", "error", err)
		}
		failing = true
	}
	// drain writes what is queued now; it reports whether the queue is
	// closed.
	drain := func() bool {
		defer func() {
			if err := w.Flush(); err != nil {
				report(err)
			} else {
				failing = false
			}
		}()
		for {
			select {
			case ev, ok := <-l.queue:
				if !ok {
					return true
				}
				ev.finish()
				if err := enc.Encode(ev); err != nil {
					report(err)
					continue
				}
				l.written.Add(1)
			default:
				return false
			}
		}
	}
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if drain() {
				return
			}
		case <-l.closing:
			for !drain() {
			}
			return
		}
	}
}

// finish fills in what is cheaper to compute off the request path: the
// event id and the sorted visible ids.
func (ev *Event) finish() {
	var b [12]byte
	_, _ = rand.Read(b[:])
	ev.DecisionID = hex.EncodeToString(b[:])
	if ev.visible != nil {
		ev.Visible = make([]string, 0, len(ev.visible))
		for id := range ev.visible {
			ev.Visible = append(ev.Visible, id)
		}
		slices.Sort(ev.Visible)
		ev.visible = nil
	}
	if len(ev.body) > 0 {
		ev.Params = openai.Params(ev.body, ev.contentType)
		ev.body = nil
	}
	if ev.Reasons == nil {
		ev.Reasons = []string{}
	}
	if ev.Chain == nil {
		ev.Chain = []string{}
	}
}
