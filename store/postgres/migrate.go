package postgres

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the versioned schema migrations, applied in the order
// of their numeric prefix. A released migration is never edited; changes
// are new files.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// VersionTable is the table that records the schema version: one row, one
// int4 column, as jackc/tern (which applied the migrations before) keeps
// it, so databases it migrated carry on where they are.
const VersionTable = "gateway_schema_version"

// migrateLock is the pg_advisory_lock key that serializes Migrate across
// replicas.
const migrateLock = int64(0x7265676174650001) // "regate" + 1

// downMarker ends the part of a migration file that Migrate applies; what
// follows it undoes the migration by hand (tern's convention).
const downMarker = "---- create above / drop below ----"

// migrationName is a migration file's name: its version, "_", a name.
var migrationName = regexp.MustCompile(`\A([0-9]+)_.+\.sql\z`)

// migration is one schema step: the version it leads to and its SQL.
type migration struct {
	version int32
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Versions
// run from 1 without a gap or a duplicate.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		v, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		up, _, _ := strings.Cut(string(body), downMarker)
		ms = append(ms, migration{version: int32(v), name: e.Name(), sql: up})
	}
	// ReadDir sorts by name; the numeric prefix decides.
	slices.SortStableFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i, m := range ms {
		if m.version != int32(i+1) {
			return nil, fmt.Errorf("migration %s: version %d where %d was expected (a gap or a duplicate)", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// Migrate applies the pending embedded migrations to the database at url,
// each in a transaction of its own that also records its version. It is
// safe to call from several replicas at once (they queue on an advisory
// lock) and a no-op when the schema is current. A database whose version
// is newer than the newest embedded migration is refused: this binary is
// older than the schema.
func Migrate(ctx context.Context, url string) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := connect(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", translate(ctx, err))
	}
	// Session-level lock: closing the connection releases it too, so a
	// failed unlock is harmless.
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock) }()

	// The statements tern runs, so that either can find the other's table.
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+VersionTable+"(version int4 NOT NULL);\n"+
		"INSERT INTO "+VersionTable+"(version) SELECT 0 WHERE 0 = (SELECT count(*) FROM "+VersionTable+")"); err != nil {
		return fmt.Errorf("migrate: version table: %w", translate(ctx, err))
	}
	var current int32
	if err := conn.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&current); err != nil {
		return fmt.Errorf("migrate: version: %w", translate(ctx, err))
	}
	if current < 0 || current > int32(len(ms)) {
		return fmt.Errorf("migrate: the database's schema version is %d, this binary knows versions 0 to %d", current, len(ms))
	}
	for _, m := range ms[current:] {
		if err := apply(ctx, conn, m); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.name, translate(ctx, err))
		}
	}
	return nil
}

// apply runs one migration and records its version, in one transaction.
func apply(ctx context.Context, conn *pgx.Conn, m migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// No arguments: the simple protocol, so a file may hold several
		// statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		// A migration may have changed settings such as search_path.
		if _, err := tx.Exec(ctx, "RESET ALL"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE "+VersionTable+" SET version = $1", m.version)
		return err
	})
}

// connect opens a single connection (not from a pool) to url.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, translate(ctx, err)
	}
	return conn, nil
}

// SchemaVersion returns the schema version of the database at url and the
// version the embedded migrations lead to.
func SchemaVersion(ctx context.Context, url string) (current, latest int32, err error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ms, err := migrations()
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	err = conn.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&current)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", translate(ctx, err))
	}
	return current, int32(len(ms)), nil
}
