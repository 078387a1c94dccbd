// Package pgtest starts throwaway PostgreSQL servers for tests. It needs the
// server binaries (initdb, pg_ctl, postgres; Debian package postgresql-15)
// and nothing else: no running server, no Docker.
//
// Start hands each test a fresh, empty database on one cluster shared by the
// whole test binary; StartCluster gives a test a private cluster it may stop
// and restart. Without the binaries, tests are skipped, except when the
// environment has CI=true: there they fail, so a CI run can never pass by
// skipping the database.
//
// Every cluster is watched by a small shell process that stops it and removes
// its directory when the test binary exits, however it exits (including
// panics, timeouts and kill -9), so no postgres is left behind.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDirEnv names an environment variable that, when set, is the directory
// holding initdb and pg_ctl; it replaces the search.
const BinDirEnv = "PGTEST_BIN"

// DB is an empty database created for one test.
type DB struct {
	// URL connects to the database as a superuser.
	URL string
	// Name is the database name.
	Name string
}

// Cluster is a running PostgreSQL server in a temporary directory.
type Cluster struct {
	// URL connects as a superuser to the database "gateway", created empty
	// when the cluster starts.
	URL string
	// Port is the TCP port on 127.0.0.1; it stays the same across Stop and
	// Start.
	Port int

	bins    bins
	dir     string // owned by the server's user; removed on cleanup
	runAs   string // user to run server binaries as; empty: the current one
	stopper io.Closer

	mu     sync.Mutex // serializes NewDB
	nextDB int
}

// shared is the cluster Start hands databases out of: one per test binary,
// started on first use and stopped by its watchdog when the binary exits.
var shared struct {
	mu      sync.Mutex
	cluster *Cluster
	err     error
}

// Start returns a fresh, empty database on the test binary's shared cluster.
// The database is dropped when tb ends. It skips tb (fails it when CI=true)
// when the PostgreSQL server binaries are not installed.
func Start(tb testing.TB) *DB {
	tb.Helper()
	shared.mu.Lock()
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = startCluster()
	}
	c, err := shared.cluster, shared.err
	shared.mu.Unlock()
	if err != nil {
		unavailable(tb, err)
	}
	return c.NewDB(tb)
}

// StartCluster starts a private cluster that the test may Stop and Start.
// It is stopped and removed when tb ends. It skips tb (fails it when CI=true)
// when the PostgreSQL server binaries are not installed.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := startCluster()
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(func() { _ = c.stopper.Close() })
	return c
}

// errNoBinaries is the cause of a skip.
var errNoBinaries = errors.New("PostgreSQL server binaries not found; install postgresql-15 (Debian/Ubuntu: apt-get install postgresql-15) or set " + BinDirEnv)

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNoBinaries) && os.Getenv("CI") != "true" {
		tb.Skip(err)
	}
	tb.Fatalf("pgtest: %v", err)
}

// NewDB creates an empty database on c, dropped when tb ends.
func (c *Cluster) NewDB(tb testing.TB) *DB {
	tb.Helper()
	c.mu.Lock()
	c.nextDB++
	name := "test_" + strconv.Itoa(c.nextDB)
	c.mu.Unlock()
	if err := c.exec(tb.Context(), "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// FORCE ends sessions a test left open (PostgreSQL 13+).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return &DB{URL: c.url(name), Name: name}
}

// Stop shuts the server down (fast mode: sessions are ended); the data
// directory and port are kept for Start.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if out, err := c.pgctl("stop", "-m", "fast", "-w").CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
}

// Start starts a stopped server again on the same port and data directory.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
}

func (c *Cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// exec runs one statement in the maintenance database.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// command builds a server-binary command, run as c.runAs when set (initdb
// and pg_ctl refuse to run as root), in its own process group so that a
// terminal's Ctrl-C reaches the test binary, not the server.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func (c *Cluster) pgctl(args ...string) *exec.Cmd {
	return c.command(c.bins.pgctl, append([]string{"-D", c.dataDir()}, args...)...)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) start() error {
	logFile := filepath.Join(c.dir, "server.log")
	out, err := c.pgctl("start", "-w", "-t", "60", "-l", logFile).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(log, 2000))
	}
	return nil
}

// startCluster creates, starts and watches a new cluster.
func startCluster() (*Cluster, error) {
	b, err := findBins()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bins: b}
	if os.Geteuid() == 0 {
		if c.runAs, err = serverUser(); err != nil {
			return nil, err
		}
	}
	if c.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, err
	}
	// The watchdog owns the directory from here on: it removes it when the
	// test binary exits even if setup fails half-way.
	if c.stopper, err = c.watch(); err != nil {
		_ = os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.setup(); err != nil {
		_ = c.stopper.Close()
		return nil, err
	}
	return c, nil
}

// setup runs initdb, configures a fast, local-only server and starts it.
func (c *Cluster) setup() error {
	if c.runAs != "" {
		if err := chown(c.dir, c.runAs); err != nil {
			return err
		}
	}
	out, err := c.command(c.bins.initdb, "-D", c.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, tail(out, 2000))
	}
	// A port that was free when picked can be taken before the server binds
	// it; try a few.
	for attempt := 0; ; attempt++ {
		if c.Port, err = freePort(); err != nil {
			return err
		}
		if err := c.configure(); err != nil {
			return err
		}
		err = c.start()
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE gateway"); err != nil {
		return fmt.Errorf("create database gateway: %w", err)
	}
	c.URL = c.url("gateway")
	return nil
}

// configure writes the server settings: TCP on loopback only, the socket in
// the cluster's own directory, and durability traded for speed.
func (c *Cluster) configure() error {
	settings := []string{
		"port = " + strconv.Itoa(c.Port),
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + c.dir + "'",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"shared_buffers = 16MB",
		"max_connections = 100",
		"log_min_messages = warning",
	}
	conf := filepath.Join(c.dataDir(), "postgresql.auto.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(settings, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if c.runAs != "" {
		return chown(conf, c.runAs)
	}
	return nil
}

// watch starts the watchdog: a shell that waits for its stdin to close, then
// stops the server and removes the directory. Its stdin is a pipe whose only
// writer is this process, so it closes when the returned Closer is closed or
// when the process exits by any means.
func (c *Cluster) watch() (io.Closer, error) {
	stop := shellQuote(c.bins.pgctl) + " -D " + shellQuote(c.dataDir()) + " stop -m immediate -w >/dev/null 2>&1"
	if c.runAs != "" {
		stop = "runuser -u " + shellQuote(c.runAs) + " -- " + stop
	}
	script := "cat >/dev/null; if [ -f " + shellQuote(filepath.Join(c.dataDir(), "postmaster.pid")) + " ]; then " +
		stop + "; fi; rm -rf " + shellQuote(c.dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	return &watchdog{w: w, cmd: cmd}, nil
}

type watchdog struct {
	once sync.Once
	w    io.Closer
	cmd  *exec.Cmd
}

// Close tells the watchdog to stop the server and waits until it has.
func (d *watchdog) Close() error {
	var err error
	d.once.Do(func() {
		_ = d.w.Close()
		err = d.cmd.Wait()
	})
	return err
}

type bins struct{ initdb, pgctl string }

// findBins looks for initdb and pg_ctl: in $PGTEST_BIN when set, otherwise
// in the Debian layout (newest version first), where dpkg put
// postgresql-NN packages, and on PATH.
func findBins() (bins, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		b := bins{initdb: filepath.Join(d, "initdb"), pgctl: filepath.Join(d, "pg_ctl")}
		if executable(b.initdb) && executable(b.pgctl) {
			return b, nil
		}
		return bins{}, fmt.Errorf("%s=%s: %w", BinDirEnv, d, errNoBinaries)
	}
	var dirs []string
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(debian, func(a, b string) int { return versionOf(b) - versionOf(a) })
	dirs = append(dirs, debian...)
	dirs = append(dirs, dpkgDirs()...)
	for _, d := range dirs {
		b := bins{initdb: filepath.Join(d, "initdb"), pgctl: filepath.Join(d, "pg_ctl")}
		if executable(b.initdb) && executable(b.pgctl) {
			return b, nil
		}
	}
	// PATH: resolve symlinks so that pg_ctl is taken from initdb's folder.
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			b := bins{initdb: real, pgctl: filepath.Join(filepath.Dir(real), "pg_ctl")}
			if executable(b.pgctl) {
				return b, nil
			}
		}
	}
	return bins{}, errNoBinaries
}

// versionOf extracts NN from /usr/lib/postgresql/NN/bin.
func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// dpkgDirs asks dpkg where installed postgresql-NN packages put initdb.
func dpkgDirs() []string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Package}\n", "postgresql-[0-9]*").Output()
	if err != nil {
		return nil
	}
	var dirs []string
	for _, pkg := range strings.Fields(string(out)) {
		files, err := exec.Command("dpkg-query", "-L", pkg).Output()
		if err != nil {
			continue
		}
		for _, f := range strings.Split(string(files), "\n") {
			if strings.HasSuffix(f, "/bin/initdb") {
				dirs = append(dirs, filepath.Dir(f))
			}
		}
	}
	return dirs
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// serverUser picks the account to run the server as when running as root.
func serverUser() (string, error) {
	if _, err := exec.LookPath("runuser"); err != nil {
		return "", fmt.Errorf("running as root needs runuser to start PostgreSQL as another user: %w", err)
	}
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", errors.New("running as root and neither the postgres nor the nobody user exists to run PostgreSQL")
}

func chown(path, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
