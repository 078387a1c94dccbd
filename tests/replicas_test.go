package tests

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/cmd/gateway/app"
	"github.com/regate/gateway/store/postgres/pgtest"
)

// propagation waits until check(B) holds, polling every millisecond, and
// returns how long it took; it fails the test past the 1 s deadline.
func propagation(t *testing.T, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: replica B still answers the old way after 1s", what)
		}
		time.Sleep(time.Millisecond)
	}
	d := time.Since(start)
	t.Logf("%s reached replica B in %v", what, d.Round(100*time.Microsecond))
	return d
}

// TestReplicaRevocationUnderOneSecond: two gateways on one database; a key
// blocked, narrowed or deleted through A is refused by B within 1 s, while
// B's cache TTL (1 minute) would otherwise keep serving it.
func TestReplicaRevocationUnderOneSecond(t *testing.T) {
	url := pgtest.Start(t).URL
	up := startUpstream(t)
	a := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: url})
	b := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: url})

	status := func(key, model string) int {
		return b.do(t, http.MethodPost, "/v1/chat/completions", key, "application/json", chatBody(model)).Status
	}
	warm := func(key, model string) {
		t.Helper()
		if s := status(key, model); s != 200 {
			t.Fatalf("replica B: chat %q = %d before the change, want 200", model, s)
		}
	}
	var worst time.Duration
	record := func(d time.Duration) {
		if d > worst {
			worst = d
		}
	}

	k := genKey(t, a, map[string]any{"models": []string{"gpt-4o", "gpt-4o-mini"}})
	warm(k, "gpt-4o")
	mustJSON(t, a.admin(t, http.MethodPost, "/key/block", map[string]any{"key": k}), &struct{}{})
	record(propagation(t, "block", func() bool { return status(k, "gpt-4o") == 401 }))

	mustJSON(t, a.admin(t, http.MethodPost, "/key/unblock", map[string]any{"key": k}), &struct{}{})
	record(propagation(t, "unblock", func() bool { return status(k, "gpt-4o") == 200 }))

	mustJSON(t, a.admin(t, http.MethodPost, "/key/update", map[string]any{"key": k, "models": []string{"gpt-4o-mini"}}), &struct{}{})
	record(propagation(t, "narrow key", func() bool { return status(k, "gpt-4o") == 404 }))
	if s := status(k, "gpt-4o-mini"); s != 200 {
		t.Errorf("after narrowing, the remaining model = %d, want 200", s)
	}

	var team struct {
		TeamID string `json:"team_id"`
	}
	mustJSON(t, a.admin(t, http.MethodPost, "/team/new", map[string]any{"models": []string{"gpt-4o", "gpt-4o-mini"}}), &team)
	tk := genKey(t, a, map[string]any{"team_id": team.TeamID})
	warm(tk, "gpt-4o")
	mustJSON(t, a.admin(t, http.MethodPost, "/team/update", map[string]any{"team_id": team.TeamID, "models": []string{"gpt-4o-mini"}}), &struct{}{})
	record(propagation(t, "narrow team", func() bool { return status(tk, "gpt-4o") == 404 }))

	mustJSON(t, a.admin(t, http.MethodPost, "/key/delete", map[string]any{"keys": []string{k}}), &struct{}{})
	record(propagation(t, "delete", func() bool { return status(k, "gpt-4o-mini") == 401 }))
	t.Logf("worst propagation: %v", worst.Round(100*time.Microsecond))
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dumpDatabase returns every row of every table of the public schema as
// JSON text.
func dumpDatabase(t *testing.T, url string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 3 {
		t.Fatalf("public tables = %v, want keys, teams, users at least", tables)
	}
	var dump strings.Builder
	for _, tbl := range tables {
		var s *string
		q := fmt.Sprintf(`SELECT string_agg(row_to_json(t)::text, E'\n') FROM %s t`, pgx.Identifier{tbl}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != nil {
			dump.WriteString(*s + "\n")
		}
	}
	return dump.String()
}

// TestRestartKeepsPrincipalsAndNoPlaintext: keys, teams and users survive a
// restart, and plaintext keys appear neither in the database nor in the logs
// (at debug level).
func TestRestartKeepsPrincipalsAndNoPlaintext(t *testing.T) {
	url := pgtest.Start(t).URL
	up := startUpstream(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := app.Options{DatabaseURL: url, Logger: log}

	g1 := startGatewayWith(t, seedConfig, up, opts)
	mustJSON(t, g1.admin(t, http.MethodPost, "/team/new", map[string]any{"team_id": "durable", "models": []string{"gpt-4o"}}), &struct{}{})
	var user struct {
		Key string `json:"key"`
	}
	mustJSON(t, g1.admin(t, http.MethodPost, "/user/new", map[string]any{"user_id": "erin"}), &user)
	k := genKey(t, g1, map[string]any{"team_id": "durable", "user_id": "erin", "key_alias": "erin-durable"})
	plaintexts := []string{k, user.Key, "sk-seed1-user-narrows-team", "sk-seed5-default-models", "sk-master-test-0000"}
	if s, _ := chatUpstreamModel(t, g1, up, k, "gpt-4o"); s != 200 {
		t.Fatalf("chat before restart = %d", s)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g1.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}

	g2 := startGatewayWith(t, seedConfig, up, opts)
	if s, _ := chatUpstreamModel(t, g2, up, k, "gpt-4o"); s != 200 {
		t.Errorf("chat after restart = %d, want 200", s)
	}
	if s, _ := chatUpstreamModel(t, g2, up, user.Key, "gpt-4o"); s != 200 {
		t.Errorf("user key after restart = %d, want 200", s)
	}
	for _, path := range []string{"/team/info?team_id=durable", "/user/info?user_id=erin"} {
		if r := g2.admin(t, http.MethodGet, path, nil); r.Status != 200 {
			t.Errorf("GET %s after restart = %d, want 200", path, r.Status)
		}
	}

	dump := dumpDatabase(t, url)
	if !strings.Contains(dump, "erin-durable") {
		t.Fatalf("database dump lacks the key alias; the dump is not what it should be:\n%s", dump)
	}
	all := logs.String()
	if !strings.Contains(all, "erin-durable") && !strings.Contains(all, "request") {
		t.Fatalf("no logs captured")
	}
	for _, p := range plaintexts {
		if strings.Contains(dump, p) {
			t.Errorf("plaintext key %s… is in the database", p[:8])
		}
		if strings.Contains(all, p) {
			t.Errorf("plaintext key %s… is in the logs", p[:8])
		}
	}
}

// TestDatabaseOutage: with the database stopped, cached keys keep working,
// unknown keys get 503 and readiness fails; when it returns, new keys work
// without a restart.
func TestDatabaseOutage(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	up := startUpstream(t)
	g := startGatewayWith(t, seedConfig, up, app.Options{DatabaseURL: cluster.URL})

	cached := genKey(t, g, map[string]any{"models": []string{"gpt-4o"}})
	unused := genKey(t, g, map[string]any{"models": []string{"gpt-4o"}})
	if s, _ := chatUpstreamModel(t, g, up, cached, "gpt-4o"); s != 200 {
		t.Fatalf("chat before the outage = %d", s)
	}

	cluster.Stop(t)
	if s, _ := chatUpstreamModel(t, g, up, cached, "gpt-4o"); s != 200 {
		t.Errorf("cached key during the outage: chat = %d, want 200", s)
	}
	r := g.do(t, http.MethodPost, "/v1/chat/completions", unused, "application/json", chatBody("gpt-4o"))
	if r.Status != 503 {
		t.Errorf("uncached key during the outage = %d %s, want 503", r.Status, r.Body)
	} else {
		decodeError(t, r.Body)
	}
	if r := g.do(t, http.MethodGet, "/health/readiness", "", "", nil); r.Status != 503 {
		t.Errorf("readiness during the outage = %d, want 503", r.Status)
	}
	if r := g.admin(t, http.MethodPost, "/key/generate", map[string]any{}); r.Status != 503 {
		t.Errorf("admin write during the outage = %d %s, want 503", r.Status, r.Body)
	}

	cluster.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for g.do(t, http.MethodGet, "/health/readiness", "", "", nil).Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readiness did not recover within 30s of the database returning")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fresh := genKey(t, g, map[string]any{"models": []string{"gpt-4o"}})
	for _, k := range []string{fresh, unused} {
		if s, _ := chatUpstreamModel(t, g, up, k, "gpt-4o"); s != 200 {
			t.Errorf("key after the database returned: chat = %d, want 200", s)
		}
	}
}
