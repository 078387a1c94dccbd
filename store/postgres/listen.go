package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/regate/gateway/gateway"
)

const (
	// maxPayload keeps NOTIFY payloads under PostgreSQL's 8000-byte limit;
	// a larger change set is announced as "flush everything".
	maxPayload = 7900
	// idleCheck is how long the listener waits for a notification before it
	// pings, so that a connection dropped without a FIN is noticed.
	idleCheck = 30 * time.Second
	// Reconnect backoff bounds (each delay jittered to 50–100%).
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// notice is a NOTIFY payload.
type notice struct {
	// Src is the sending Store, so it can skip its own notices.
	Src string `json:"src"`
	// All asks every replica to flush everything.
	All bool `json:"all,omitempty"`
	// Changes are [kind, id] pairs.
	Changes [][2]string `json:"c,omitempty"`
}

func encodeNotice(src string, ch []gateway.Change) string {
	n := notice{Src: src, Changes: make([][2]string, len(ch))}
	for i, c := range ch {
		n.Changes[i] = [2]string{c.Kind, c.ID}
	}
	b, err := json.Marshal(n)
	if err != nil || len(b) > maxPayload {
		b, _ = json.Marshal(notice{Src: src, All: true})
	}
	return string(b)
}

// decodeNotice returns the changes a payload names, nil for "flush
// everything", and whether src sent it.
func decodeNotice(payload, src string) (ch []gateway.Change, own bool, err error) {
	var n notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return nil, false, err
	}
	if n.Src == src {
		return nil, true, nil
	}
	if n.All || len(n.Changes) == 0 {
		return nil, false, nil
	}
	ch = make([]gateway.Change, len(n.Changes))
	for i, c := range n.Changes {
		ch[i] = gateway.Change{Kind: c[0], ID: c[1]}
	}
	return ch, false, nil
}

// connectListener opens the dedicated listen connection (never one from the
// query pool: LISTEN belongs to a session).
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return nil, translate(ctx, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, translate(ctx, err)
	}
	return conn, nil
}

// listen passes other replicas' notices to subscribers until ctx ends,
// reconnecting when the connection is lost.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	for {
		if conn == nil {
			if conn = s.reconnect(ctx); conn == nil {
				return
			}
			// Notices sent while disconnected are lost: whatever any
			// replica changed meanwhile must be reloaded.
			s.log.Info("store: notification connection restored; flushing cached principals")
			s.dispatch(nil)
		}
		wctx, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			s.handle(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if pgconn.Timeout(err) && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, defaultConnectTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		s.log.Warn("store: notification connection lost; reconnecting", "err", err)
		closeConn(conn)
		conn = nil
	}
}

// reconnect opens a new listen connection, with jittered exponential
// backoff; nil when ctx ended first.
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	delay := minBackoff
	for attempt := 1; ; attempt++ {
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		conn, err := s.connectListener(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "store: cannot reconnect the notification connection", "attempt", attempt, "err", err)
		delay = min(2*delay, maxBackoff)
	}
}

// handle passes one notice on.
func (s *Store) handle(payload string) {
	ch, own, err := decodeNotice(payload, s.src)
	if err != nil {
		// Something else writes on the channel: flush to be safe.
		s.log.Warn("store: unreadable change notice; flushing cached principals", "err", err)
	}
	if own {
		return // passed to subscribers at commit already
	}
	s.dispatch(ch)
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
