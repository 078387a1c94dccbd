// Package limits admits calls under the budgets and rate limits of keys,
// teams and users (DESIGN §11), and counts what they use and spend.
//
// The request path touches only this replica's memory: each limited layer
// (a key, a team, a user, a key's model group) has an entity with its own
// lock holding a sliding window of admissions (rpm), one of tokens (tpm),
// the calls in flight and the spend of the current budget period. A
// background loop syncs with the Shared store once a second: it hands over
// the spend and the daily usage counted since the last sync, and takes back
// the spend of every layer as all replicas together have it, and the number
// of live replicas. Rate limits are split between the replicas: each admits
// its share of a limit (limit / replicas, the remainder going to the first
// replicas), so that replicas never need each other on the request path and
// a burst spread over them admits the limit and no more.
package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway"
)

// DefaultSyncInterval is how often a Limiter syncs with its Shared store
// when Config.SyncInterval is zero.
const DefaultSyncInterval = time.Second

// Observer is told about refusals and soft budgets, for metrics. Calls
// happen on the request path and must be cheap.
type Observer interface {
	// Limited counts a call refused by layer's limit of kind.
	Limited(layer, kind string)
	// SoftBudget counts a layer whose spend crossed its soft budget.
	SoftBudget(layer string)
}

// Config configures a Limiter.
type Config struct {
	// Shared is the state shared with other replicas. Required: the memory
	// store's keeps it in this process.
	Shared gateway.UsageStore
	// SyncInterval is how often the Limiter syncs; zero means
	// DefaultSyncInterval.
	SyncInterval time.Duration
	// Logger receives soft budget alerts and sync failures; nil discards.
	Logger *slog.Logger
	// Observer receives refusals and soft budgets; nil means none.
	Observer Observer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Limiter admits calls and counts their usage. Create it with New, start
// its sync loop with Start and flush it with Close.
type Limiter struct {
	shared   gateway.UsageStore
	every    time.Duration
	log      *slog.Logger
	obs      Observer
	now      func() time.Time
	replica  string
	entities sync.Map // entKey → *entity
	view     atomic.Pointer[view]
	since    time.Time // the last sync's watermark; sync goroutine only
	syncMu   sync.Mutex
	stop     chan struct{}
	done     chan struct{}
}

// view is what the last sync said of the cluster.
type view struct {
	replicas, rank int64
}

// New builds a Limiter; it does no I/O.
func New(cfg Config) *Limiter {
	l := &Limiter{shared: cfg.Shared, every: cfg.SyncInterval, log: cfg.Logger, obs: cfg.Observer, now: cfg.Now}
	if l.every <= 0 {
		l.every = DefaultSyncInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	l.replica = hex.EncodeToString(id[:])
	l.view.Store(&view{replicas: 1})
	return l
}

// Start syncs once — so that spend and reset times written before a
// restart, and the other replicas, are known before the first call — then
// syncs every SyncInterval until Close.
func (l *Limiter) Start(ctx context.Context) error {
	if err := l.Sync(ctx); err != nil {
		return err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.loop()
	return nil
}

func (l *Limiter) loop() {
	defer close(l.done)
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*l.every)
			if err := l.Sync(ctx); err != nil {
				l.log.Warn("limits: sync failed; usage is kept for the next one", "error", err)
			}
			cancel()
		}
	}
}

// Close stops the sync loop and hands the last usage over (SIGTERM).
func (l *Limiter) Close(ctx context.Context) error {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	err := l.Sync(ctx)
	if l.shared != nil {
		if lerr := l.shared.Leave(ctx, l.replica); err == nil {
			err = lerr
		}
	}
	return err
}

// entKey identifies a limited layer: a key, team or user by id, or a key's
// model group.
type entKey struct {
	layer string
	id    string
	model string
}

// entity is one layer's state on this replica.
type entity struct {
	mu       sync.Mutex
	rpm      admissions
	tpm      tokens
	inflight int64

	// Spend of the budget period that began at period (unix ns; started
	// once it is known): global is what the shared store last said (this
	// replica's flushed spend included), flushing what a sync in progress
	// hands over, local what is not handed over yet.
	period                  int64
	started                 bool
	global, flushing, local float64
	softCrossed             bool

	// daily holds, on key entities, the usage not handed over yet.
	daily map[dailyKey]*gateway.UsageCounts
}

func (l *Limiter) entity(k entKey) *entity {
	if e, ok := l.entities.Load(k); ok {
		return e.(*entity)
	}
	e, _ := l.entities.LoadOrStore(k, &entity{})
	return e.(*entity)
}

// spend is the entity's spend in its current period. The caller holds mu.
func (e *entity) spend() float64 { return e.global + e.flushing + e.local }

// roll moves the entity to the budget period that holds now, for a layer
// created at anchor whose budget resets every d (gateway.BudgetPeriod):
// a new period starts with no spend. The caller holds mu.
func (e *entity) roll(now time.Time, d time.Duration, anchor time.Time) {
	start, _ := gateway.BudgetPeriod(anchor, d, now)
	e.enter(start.UnixNano())
}

// enter moves the entity to the period that began at p, unless it is in
// that one or a later one already. The caller holds mu.
func (e *entity) enter(p int64) {
	if e.started && p <= e.period {
		return
	}
	if e.started {
		e.global, e.flushing, e.local = 0, 0, 0
		e.softCrossed = false
	}
	e.period, e.started = p, true
}

// Spend implements gateway.SpendReader with this replica's view.
func (l *Limiter) Spend(layer, id string, period time.Time) float64 {
	v, ok := l.entities.Load(entKey{layer: layer, id: id})
	if !ok {
		return 0
	}
	e := v.(*entity)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.period < period.UnixNano() {
		return 0 // the period asked for has not been spent in yet
	}
	return e.spend()
}

// share is this replica's part of limit: limit / replicas, the remainder
// going one each to the first replicas by rank.
func (l *Limiter) share(limit int64) int64 {
	v := l.view.Load()
	if v.replicas <= 1 {
		return limit
	}
	s := limit / v.replicas
	if v.rank < limit%v.replicas {
		s++
	}
	return s
}

// parseDuration reads a budget period as written; a malformed one (the
// config and admin API refuse them) never resets.
func parseDuration(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := gateway.ParseDuration(s)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// Share returns this replica's share of a per-minute limit shared by
// every replica (a deployment's rpm or tpm cap, DESIGN §12).
func (l *Limiter) Share(limit int64) int64 { return l.share(limit) }
