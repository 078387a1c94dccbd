// Package postgres is the durable principal store: keys, teams and users in
// PostgreSQL through pgx, shared by every gateway replica.
//
// The schema is created by the versioned migrations embedded in the binary
// (Migrate). Keys are stored only as SHA-256 hashes; the store never sees a
// plaintext key, and CHECK constraints refuse anything but a hash in the key
// column and more than 4 characters of a key in its display form.
//
// Every write is one transaction, which also sends a NOTIFY on Channel naming
// the records it touched. Each Store LISTENs on a dedicated connection and
// passes what other replicas changed to its subscribers (its own changes it
// passes on directly after commit, before the write returns). When that
// connection is lost, the Store reconnects with backoff and then tells its
// subscribers to flush everything, since notifications may have been missed.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/regate/gateway/gateway"
)

// Channel is the NOTIFY channel on which writes announce their changes.
const Channel = "gateway_changes"

// ListenerApplicationName is the application_name of each Store's listen
// connection, to find it in pg_stat_activity.
const ListenerApplicationName = "regate-gateway-listener"

const defaultConnectTimeout = 5 * time.Second

// DefaultQueryTimeout bounds each store operation when Config.QueryTimeout
// is 0.
const DefaultQueryTimeout = 5 * time.Second

// errQueryTimeout is the cause of a context ended by the query bound: the
// database accepted the work but did not answer in time.
var errQueryTimeout = errors.New("the database did not answer in time")

// Config configures a Store.
type Config struct {
	// URL is the PostgreSQL connection string (URL or key=value form);
	// required. pgx pool parameters such as pool_max_conns are honoured.
	URL string
	// Logger receives connection events; nil discards them. Keys, hashes
	// and payloads are never logged.
	Logger *slog.Logger
	// MaxConns caps the query pool; 0 keeps pgx's default (pool_max_conns
	// from URL, else the larger of 4 and the number of CPUs). The listen
	// connection comes on top.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt; 0 means connect_timeout
	// from URL, else 5 s.
	ConnectTimeout time.Duration
	// QueryTimeout bounds each operation (its queries and transaction) from
	// the moment it asks the pool for a connection: a database that accepts
	// connections but stops answering fails the operation with
	// gateway.ErrUnavailable instead of holding it for as long as the
	// caller waits. 0 means DefaultQueryTimeout; negative, no bound.
	QueryTimeout time.Duration
}

// Store is a gateway.Store on PostgreSQL. Create it with New, then Start it.
type Store struct {
	log       *slog.Logger
	poolCfg   *pgxpool.Config
	listenCfg *pgx.ConnConfig
	src       string // tells this Store's notifications from other replicas'
	timeout   time.Duration

	mu         sync.Mutex // guards Start and Close
	closed     bool
	pool       *pgxpool.Pool // set by a successful Start
	cancel     context.CancelFunc
	listenDone chan struct{}

	subMu  sync.Mutex
	subs   []*subscriber // replaced, never modified in place
	nextID int
}

type subscriber struct {
	id   int
	fn   func([]gateway.Change)
	done <-chan struct{} // the subscription's context's; ended means skip
}

var errNotStarted = errors.New("postgres store not started")

// New checks cfg and returns a Store. It does no I/O.
func New(cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres store: URL is required")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx redacts the password in parse errors.
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	switch {
	case cfg.ConnectTimeout > 0:
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	case pc.ConnConfig.ConnectTimeout == 0:
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	lc := pc.ConnConfig.Copy()
	lc.RuntimeParams["application_name"] = ListenerApplicationName
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	timeout := cfg.QueryTimeout
	if timeout == 0 {
		timeout = DefaultQueryTimeout
	}
	return &Store{log: log, poolCfg: pc, listenCfg: lc, src: hex.EncodeToString(id[:]), timeout: timeout}, nil
}

// bound returns ctx limited to the store's query timeout; translate tells
// an operation ended by it (gateway.ErrUnavailable) from one whose caller
// gave up.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, s.timeout, errQueryTimeout)
}

// Start opens the query pool and the listen connection and starts
// listening for other replicas' changes. It fails, with an error wrapping
// gateway.ErrUnavailable, when the database cannot be reached; it may be
// called again after a failure. ctx bounds only the start itself.
func (s *Store) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("postgres store: closed")
	case s.pool != nil:
		return errors.New("postgres store: already started")
	}
	return s.start(ctx)
}

func (s *Store) start(ctx context.Context) error {
	pool, err := pgxpool.NewWithConfig(ctx, s.poolCfg)
	if err != nil {
		return fmt.Errorf("postgres store: %w", err)
	}
	// Listen before Start returns, so no change committed afterwards is
	// missed.
	conn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return fmt.Errorf("postgres store: listen: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.pool, s.cancel, s.listenDone = pool, cancel, make(chan struct{})
	go s.listen(lctx, conn)
	return nil
}

// Close stops listening and closes every connection. Subscriptions end.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.pool == nil {
		return
	}
	s.cancel()
	<-s.listenDone
	s.pool.Close()
}

// Ping implements gateway.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return errNotStarted
	}
	err := s.retry(ctx, func() error { return s.pool.Ping(ctx) })
	if err != nil {
		return fmt.Errorf("ping: %w", translate(ctx, err))
	}
	return nil
}

// Subscribe implements gateway.Store. fn is called after this Store's own
// writes by the writing goroutine, before the write method returns, and for
// other replicas' writes by the listen goroutine, with nil after the listen
// connection was lost and restored. Calls may be concurrent.
func (s *Store) Subscribe(ctx context.Context, fn func([]gateway.Change)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.subMu.Lock()
	s.nextID++
	id := s.nextID
	s.subs = append(slices.Clip(s.subs), &subscriber{id: id, fn: fn, done: ctx.Done()})
	s.subMu.Unlock()
	context.AfterFunc(ctx, func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(sub *subscriber) bool { return sub.id == id })
	})
	return nil
}

// dispatch hands changes to every subscriber, each its own copy; nil means
// flush everything.
func (s *Store) dispatch(ch []gateway.Change) {
	s.subMu.Lock()
	subs := s.subs
	s.subMu.Unlock()
	for _, sub := range subs {
		select {
		case <-sub.done: // ended; AfterFunc removes it soon
		default:
			sub.fn(slices.Clone(ch))
		}
	}
}

// write runs fn in one transaction, announces the changes it returns with
// NOTIFY in the same transaction, and passes them to local subscribers
// after commit.
func (s *Store) write(ctx context.Context, fn func(pgx.Tx) ([]gateway.Change, error)) error {
	if s.pool == nil {
		return errNotStarted
	}
	var tx pgx.Tx
	// A connection broken while idle in the pool (a database restart)
	// fails at BEGIN, before anything was written: safe to retry.
	err := s.retry(ctx, func() (err error) {
		tx, err = s.pool.Begin(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("begin: %w", translate(ctx, err))
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	ch, err := fn(tx)
	if err != nil {
		return err
	}
	if len(ch) > 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, encodeNotice(s.src, ch)); err != nil {
			return fmt.Errorf("notify: %w", translate(ctx, err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", translate(ctx, err))
	}
	if len(ch) > 0 {
		s.dispatch(ch)
	}
	return nil
}

// retry runs f, and once more after resetting the pool when f failed on a
// pooled connection that had broken (the database restarted or dropped
// it). It does not retry when connecting itself failed: the database is
// down, and callers should hear so at once.
func (s *Store) retry(ctx context.Context, f func() error) error {
	err := f()
	if err == nil || ctx.Err() != nil || !brokenConn(err) {
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return err
	}
	s.pool.Reset()
	return f()
}

// translate maps driver errors onto the gateway's sentinels: no rows →
// ErrNotFound, unique violation → ErrConflict, foreign key violation →
// ErrNotFound (the referenced team or user), a connection failure →
// ErrUnavailable. The driver error stays in the chain for logs.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return gateway.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %w", gateway.ErrConflict, err)
		case pgErr.Code == "23503":
			return fmt.Errorf("%w: %w", gateway.ErrNotFound, err)
		case unavailableState(pgErr.Code):
			return fmt.Errorf("%w: %w", gateway.ErrUnavailable, err)
		}
		return err
	}
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errQueryTimeout) {
			return fmt.Errorf("%w: %w: %w", gateway.ErrUnavailable, errQueryTimeout, err)
		}
		return err // the caller gave up; the database is not known to be down
	}
	if brokenConn(err) {
		return fmt.Errorf("%w: %w", gateway.ErrUnavailable, err)
	}
	return err
}

// unavailableState reports SQLSTATEs meaning the server cannot serve now:
// connection exceptions, shutdown, crash recovery, too many connections.
func unavailableState(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return len(code) == 5 && code[:2] == "08"
}

// brokenConn reports errors of the connection rather than of the query.
func brokenConn(err error) bool {
	var (
		ce     *pgconn.ConnectError
		netErr net.Error
		pgErr  *pgconn.PgError
	)
	switch {
	case errors.As(err, &pgErr):
		return unavailableState(pgErr.Code)
	case errors.As(err, &ce), errors.As(err, &netErr):
		return true
	case pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
