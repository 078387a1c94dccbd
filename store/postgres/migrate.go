package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// migrationFiles are the versioned schema migrations, applied in the order
// of their numeric prefix. A released migration is never edited; changes
// are new files.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// VersionTable is the table in which tern records the schema version.
const VersionTable = "gateway_schema_version"

// migrateLock is the pg_advisory_lock key that serializes Migrate across
// replicas. tern v2 takes its own advisory lock as well; holding ours over
// the whole run keeps that guarantee independent of tern's internals.
const migrateLock = int64(0x7265676174650001) // "regate" + 1

// Migrate applies the pending embedded migrations to the database at url.
// It is safe to call from several replicas at once (they queue on an
// advisory lock) and a no-op when the schema is current.
func Migrate(ctx context.Context, url string) error {
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

	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("migrate: %w", translate(ctx, err))
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", translate(ctx, err))
	}
	return nil
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
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return 0, 0, err
	}
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	err = conn.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&current)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", translate(ctx, err))
	}
	return current, int32(len(names)), nil
}
