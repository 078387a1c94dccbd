package pgtest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/store/postgres/pgtest"
)

// query runs a one-value query on a fresh connection to url.
func query(tb testing.TB, url, sql string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}

func TestStartGivesEachTestItsOwnDatabase(t *testing.T) {
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a.URL == b.URL || a.Name == b.Name {
		t.Fatalf("Start twice = %q and %q, want two databases", a.URL, b.URL)
	}
	for _, db := range []*pgtest.DB{a, b} {
		got, err := query(t, db.URL, "SELECT current_database()")
		if err != nil || got != db.Name {
			t.Errorf("current_database() on %s = %q, %v; want %q", db.URL, got, err, db.Name)
		}
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := query(t, b.URL, "SELECT 'x' FROM only_in_a"); err == nil {
		t.Error("a table created in one test database is visible in another")
	}
}

func TestClusterStopStart(t *testing.T) {
	c := pgtest.StartCluster(t)
	if got, err := query(t, c.URL, "SELECT current_database()"); err != nil || got != "gateway" {
		t.Fatalf("current_database() = %q, %v; want gateway", got, err)
	}
	db := c.NewDB(t)
	c.Stop(t)
	if _, err := query(t, c.URL, "SELECT 'up'"); err == nil {
		t.Fatal("query after Stop succeeded, want a connection error")
	}
	c.Start(t)
	for _, url := range []string{c.URL, db.URL} {
		if got, err := query(t, url, "SELECT 'up'"); err != nil || got != "up" {
			t.Errorf("query %s after Start = %q, %v; want up", url, got, err)
		}
	}
}

// child runs this test binary again with extra environment, for tests of
// what happens to a whole test process.
func child(t *testing.T, run string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{"PGTEST_CHILD=1"}, env...)...)
	return cmd
}

func TestMissingBinaries(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		pgtest.StartCluster(t)
		t.Fatal("StartCluster without binaries returned a cluster")
	}
	tests := []struct {
		ci       string
		wantFail bool
		wantText string
	}{
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
		{"true", true, "--- FAIL"},
	}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			out, err := child(t, "TestMissingBinaries", pgtest.BinDirEnv+"=/nonexistent", "CI="+tc.ci).CombinedOutput()
			if (err != nil) != tc.wantFail || !strings.Contains(string(out), tc.wantText) ||
				!strings.Contains(string(out), "install postgresql") {
				t.Errorf("test without binaries, CI=%q: exit %v, output:\n%s\nwant %s with install advice", tc.ci, err, out, tc.wantText)
			}
		})
	}
}

// TestServerDiesWithTestBinary kills a test binary that started a cluster
// and checks that its server goes away all the same.
func TestServerDiesWithTestBinary(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		c := pgtest.StartCluster(t)
		fmt.Printf("PORT=%d\n", c.Port)
		time.Sleep(time.Minute) // killed before
		return
	}
	cmd := child(t, "TestServerDiesWithTestBinary")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	port := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "PORT="); ok {
			port = p
			break
		}
	}
	if port == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("child test did not start a cluster (exit %v)", cmd.Wait())
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("cluster of the child not listening on %s: %v", addr, err)
	} else {
		c.Close()
	}
	_ = cmd.Process.Kill() // SIGKILL: no cleanup code of the child runs
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return // the watchdog stopped the server
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("server on %s still up 15 s after its test binary was killed", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
