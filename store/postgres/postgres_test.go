package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/store/postgres"
	"github.com/regate/gateway/store/postgres/pgtest"
	"github.com/regate/gateway/store/storetest"
)

// migrated returns the URL of a fresh, migrated database.
func migrated(tb testing.TB) string {
	tb.Helper()
	db := pgtest.Start(tb)
	if err := postgres.Migrate(tb.Context(), db.URL); err != nil {
		tb.Fatalf("Migrate = %v, want nil", err)
	}
	return db.URL
}

// open starts a Store on url, closed when tb ends.
func open(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.New(postgres.Config{URL: url})
	if err != nil {
		tb.Fatalf("New = %v", err)
	}
	if err := s.Start(tb.Context()); err != nil {
		tb.Fatalf("Start = %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// conn is a plain connection to url for inspecting the database.
func conn(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	c, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) gateway.Store { return open(t, migrated(t)) })
}

func TestUsageConformance(t *testing.T) {
	storetest.RunUsage(t, func(t *testing.T) gateway.UsageStore { return open(t, migrated(t)).Usage() })
}

func BenchmarkPrincipalByKeyHash(b *testing.B) {
	storetest.BenchmarkPrincipalByKeyHash(b, open(b, migrated(b)))
}

// changes receives what a subscription delivers.
type changes chan []gateway.Change

func subscribe(tb testing.TB, s gateway.Store) changes {
	tb.Helper()
	ch := make(changes, 100)
	if err := s.Subscribe(tb.Context(), func(c []gateway.Change) { ch <- c }); err != nil {
		tb.Fatalf("Subscribe = %v", err)
	}
	return ch
}

// next waits up to within for a batch.
func (c changes) next(tb testing.TB, within time.Duration, what string) []gateway.Change {
	tb.Helper()
	select {
	case got := <-c:
		return got
	case <-time.After(within):
		tb.Fatalf("%s: nothing delivered within %v", what, within)
		return nil
	}
}

func TestChangesReachOtherReplicas(t *testing.T) {
	url := migrated(t)
	a, b := open(t, url), open(t, url)
	fromA, fromB := subscribe(t, a), subscribe(t, b)
	ctx := t.Context()
	tests := []struct {
		name   string
		writer *postgres.Store
		write  func(s *postgres.Store) error
		want   gateway.Change
	}{
		{"create team through A", a, func(s *postgres.Store) error { return s.CreateTeam(ctx, &gateway.Team{ID: "t1"}) },
			gateway.Change{Kind: "team", ID: "t1"}},
		{"block key through B", b, func(s *postgres.Store) error {
			k := gateway.Key{ID: gateway.HashKey("sk-replica"), TeamID: "t1"}
			if err := s.CreateKey(ctx, &k); err != nil {
				return err
			}
			<-fromA // the create
			<-fromB
			_, err := s.UpdateKey(ctx, k.ID, func(k *gateway.Key) error { k.Blocked = true; return nil })
			return err
		}, gateway.Change{Kind: "key", ID: gateway.HashKey("sk-replica")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(tc.writer); err != nil {
				t.Fatal(err)
			}
			// Each replica hears of the write once: the writer at commit, the
			// other through NOTIFY, within a second.
			for name, c := range map[string]changes{"A": fromA, "B": fromB} {
				got := c.next(t, time.Second, name)
				if len(got) != 1 || got[0] != tc.want {
					t.Errorf("replica %s got %v, want [%v]", name, got, tc.want)
				}
			}
		})
	}
	// No echo of a Store's own notices arrives late.
	time.Sleep(200 * time.Millisecond)
	for name, c := range map[string]changes{"A": fromA, "B": fromB} {
		select {
		case got := <-c:
			t.Errorf("replica %s got an extra batch %v", name, got)
		default:
		}
	}
}

func TestLargeChangeSetFlushesOtherReplicas(t *testing.T) {
	url := migrated(t)
	a, b := open(t, url), open(t, url)
	fromA, fromB := subscribe(t, a), subscribe(t, b)
	keys := make([]gateway.Key, 200) // 200 × ~80 bytes: over NOTIFY's 8000
	for i := range keys {
		keys[i] = gateway.Key{ID: gateway.HashKey(fmt.Sprintf("sk-bulk-%d", i))}
	}
	if err := a.Upsert(t.Context(), nil, nil, keys); err != nil {
		t.Fatalf("Upsert(200 keys) = %v", err)
	}
	if got := fromA.next(t, time.Second, "writer"); len(got) != len(keys) {
		t.Errorf("writer's subscriber got %d changes, want %d", len(got), len(keys))
	}
	if got := fromB.next(t, time.Second, "other replica"); got != nil {
		t.Errorf("other replica got %d changes, want nil (flush everything)", len(got))
	}
}

// listenerPIDs returns the backends of Stores' listen connections.
func listenerPIDs(tb testing.TB, c *pgx.Conn) []int32 {
	tb.Helper()
	rows, err := c.Query(tb.Context(), `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerApplicationName)
	if err != nil {
		tb.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		tb.Fatal(err)
	}
	return pids
}

func TestLostListenerReconnectsAndFlushes(t *testing.T) {
	url := migrated(t)
	a, b := open(t, url), open(t, url)
	got := subscribe(t, a)
	admin := conn(t, url)
	pids := listenerPIDs(t, admin)
	if len(pids) != 2 {
		t.Fatalf("listen connections = %v, want one per Store", pids)
	}
	for _, pid := range pids {
		if _, err := admin.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	}
	if c := got.next(t, 5*time.Second, "after the listen connection was killed"); c != nil {
		t.Fatalf("first delivery after reconnecting = %v, want nil (flush everything)", c)
	}
	// Listening again: another replica's write arrives.
	deadline := time.Now().Add(5 * time.Second)
	for len(listenerPIDs(t, admin)) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // b reconnects on its own schedule
	}
	if err := b.CreateTeam(t.Context(), &gateway.Team{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	want := gateway.Change{Kind: "team", ID: "after"}
	if c := got.next(t, time.Second, "write after reconnect"); len(c) != 1 || c[0] != want {
		t.Errorf("delivery after reconnect = %v, want [%v]", c, want)
	}
}

func TestDatabaseDownAndBack(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	ctx := t.Context()
	if err := postgres.Migrate(ctx, cluster.URL); err != nil {
		t.Fatal(err)
	}
	s := open(t, cluster.URL)
	flushes := subscribe(t, s)
	k := gateway.Key{ID: gateway.HashKey("sk-survivor")}
	if err := s.CreateKey(ctx, &k); err != nil {
		t.Fatal(err)
	}
	<-flushes
	calls := []struct {
		name string
		call func() error
	}{
		{"PrincipalByKeyHash", func() error { _, err := s.PrincipalByKeyHash(ctx, k.ID); return err }},
		{"GetKey", func() error { _, err := s.GetKey(ctx, k.ID); return err }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx, gateway.KeyFilter{}); return err }},
		{"CreateTeam", func() error { return s.CreateTeam(ctx, &gateway.Team{ID: fmt.Sprint(time.Now().UnixNano())}) }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	cluster.Stop(t)
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, gateway.ErrUnavailable) {
			t.Errorf("%s with the database down = %v, want ErrUnavailable", c.name, err)
		}
	}
	cluster.Start(t)
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Errorf("%s after the database came back = %v, want nil", c.name, err)
		}
	}
	// A restart between two calls (failover, a quick restart) breaks the
	// pooled connections; the next calls still succeed.
	// A write goes first the second time.
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {3, 0, 1, 2, 4}} {
		cluster.Stop(t)
		cluster.Start(t)
		for _, i := range order {
			if err := calls[i].call(); err != nil {
				t.Errorf("%s right after a restart = %v, want nil", calls[i].name, err)
			}
		}
	}
	// Creates above were delivered locally; the flush comes after the
	// listener is back (backoff is at most 5 s).
	deadline := time.After(15 * time.Second)
	for {
		select {
		case c := <-flushes:
			if c == nil {
				return
			}
		case <-deadline:
			t.Fatal("no flush-everything delivery after the database came back")
		}
	}
}

func TestStartAgainAfterFailure(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	if err := postgres.Migrate(t.Context(), cluster.URL); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(postgres.Config{URL: cluster.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	cluster.Stop(t)
	if err := s.Start(t.Context()); !errors.Is(err, gateway.ErrUnavailable) {
		t.Fatalf("Start with the database down = %v, want ErrUnavailable", err)
	}
	cluster.Start(t)
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start once the database is up = %v, want nil", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start of a started store = nil, want an error")
	}
}

func TestKeysStoredOnlyAsHashes(t *testing.T) {
	url := migrated(t)
	s := open(t, url)
	ctx := t.Context()
	var plaintexts []string
	key := func(team, user string) gateway.Key {
		p := fmt.Sprintf("sk-%032x", time.Now().UnixNano()*7919+int64(len(plaintexts)))
		plaintexts = append(plaintexts, p)
		return gateway.Key{ID: gateway.HashKey(p), Display: gateway.Redact(p), TeamID: team, UserID: user, Alias: "a key"}
	}
	if err := s.Upsert(ctx, []gateway.Team{{ID: "t"}}, []gateway.User{{ID: "u"}}, []gateway.Key{key("t", "u")}); err != nil {
		t.Fatal(err)
	}
	k1, k2 := key("t", ""), key("", "")
	if err := s.CreateKey(ctx, &k1); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &gateway.User{ID: "v"}, &k2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateKey(ctx, k1.ID, func(k *gateway.Key) error { k.Models = []string{"gpt-4o"}; return nil }); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	c := conn(t, url)
	for _, table := range []string{"keys", "teams", "users"} {
		rows, err := c.Query(ctx, "SELECT row_to_json(r)::text FROM "+table+" r")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		dump.WriteString(strings.Join(lines, "\n"))
	}
	text := dump.String()
	if n := strings.Count(text, "key_hash"); n != len(plaintexts) {
		t.Fatalf("dump has %d keys, want %d:\n%s", n, len(plaintexts), text)
	}
	for _, p := range plaintexts {
		if !strings.Contains(text, gateway.HashKey(p)) {
			t.Errorf("dump lacks the hash of a key")
		}
		// No part of a key beyond its last 4 characters may be stored.
		if secret := p[len("sk-") : len(p)-4]; strings.Contains(text, secret[len(secret)-5:]) {
			t.Errorf("dump contains part of a plaintext key:\n%s", text)
		}
	}
	for i := strings.Index(text, "sk-"); i >= 0; {
		if !strings.HasPrefix(text[i:], "sk-...") {
			t.Errorf("dump has an unredacted key form at %q", text[i:min(i+20, len(text))])
		}
		next := strings.Index(text[i+1:], "sk-")
		if next < 0 {
			break
		}
		i += 1 + next
	}
	// The schema itself refuses plaintext, even written around the store.
	bad := []string{
		`INSERT INTO keys (key_hash) VALUES ('sk-plaintext-key')`,
		`INSERT INTO keys (key_hash, display) VALUES ('` + gateway.HashKey("x") + `', 'sk-plaintext-key')`,
	}
	for _, sql := range bad {
		if _, err := c.Exec(ctx, sql); err == nil {
			t.Errorf("%s succeeded, want a CHECK violation", sql)
		}
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	db := pgtest.Start(t)
	// Several replicas starting at once.
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, db.URL) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d = %v, want nil", i, err)
		}
	}
	cur, latest, err := postgres.SchemaVersion(ctx, db.URL)
	if err != nil || cur != latest || latest < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v; want current = latest ≥ 1", cur, latest, err)
	}
	s := open(t, db.URL)
	if err := s.CreateTeam(ctx, &gateway.Team{ID: "kept"}); err != nil {
		t.Fatal(err)
	}
	// Again, as at every start: nothing changes.
	for range 2 {
		if err := postgres.Migrate(ctx, db.URL); err != nil {
			t.Fatalf("Migrate(current schema) = %v, want nil", err)
		}
	}
	if again, _, err := postgres.SchemaVersion(ctx, db.URL); err != nil || again != cur {
		t.Errorf("SchemaVersion after migrating again = %d, %v; want %d", again, err, cur)
	}
	if _, err := s.GetTeam(ctx, "kept"); err != nil {
		t.Errorf("GetTeam after migrating again = %v, want the team kept", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := t.Context()
	// A port nothing listens on.
	url := "postgres://postgres:secret-password@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	s, err := postgres.New(postgres.Config{URL: url})
	if err != nil {
		t.Fatalf("New = %v, want nil (no I/O)", err)
	}
	if err := s.Start(ctx); !errors.Is(err, gateway.ErrUnavailable) {
		t.Errorf("Start(unreachable) = %v, want ErrUnavailable", err)
	} else if strings.Contains(err.Error(), "secret-password") {
		t.Errorf("Start error shows the password: %v", err)
	}
	if err := postgres.Migrate(ctx, url); !errors.Is(err, gateway.ErrUnavailable) {
		t.Errorf("Migrate(unreachable) = %v, want ErrUnavailable", err)
	}
	if _, err := s.GetKey(ctx, gateway.HashKey("sk-x")); err == nil {
		t.Error("GetKey on a store that did not start = nil, want an error")
	}
	s.Close()
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  postgres.Config
	}{
		{"no URL", postgres.Config{}},
		{"bad URL", postgres.Config{URL: "postgres://user:hunter2@host:notaport/db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.New(tc.cfg)
			if err == nil {
				t.Fatalf("New(%s) = %v, nil; want an error", tc.name, s)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("New error shows the password: %v", err)
			}
		})
	}
}
