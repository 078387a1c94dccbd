package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/store/postgres/pgtest"
)

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	files, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(files) || len(ms) < 3 {
		t.Fatalf("%d migrations from %d files, want one per file (at least 3)", len(ms), len(files))
	}
	for i, m := range ms {
		if m.version != int32(i+1) {
			t.Errorf("migration %d (%s) has version %d", i, m.name, m.version)
		}
		if strings.Contains(m.sql, downMarker) || strings.Contains(m.sql, "DROP") {
			t.Errorf("%s: the part applied holds its undo part:\n%s", m.name, m.sql)
		}
		if !strings.Contains(m.sql, "CREATE TABLE") && !strings.Contains(m.sql, "ALTER TABLE") {
			t.Errorf("%s: nothing applied:\n%s", m.name, m.sql)
		}
	}
}

// version reads the recorded schema version.
func version(t *testing.T, conn *pgx.Conn) int32 {
	t.Helper()
	var v int32
	if err := conn.QueryRow(t.Context(), "SELECT version FROM "+VersionTable).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// tableExists reports whether the table name exists.
func tableExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A database that tern migrated part of the way (its version table, as tern
// creates it, and the first migration applied) is taken up where it is:
// the first migration is not run again, the others are.
func TestMigrateContinuesTernSchema(t *testing.T) {
	ctx := t.Context()
	db := pgtest.Start(t)
	conn, err := connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	// tern v2's statements for a new version table, then migration 1.
	if _, err := conn.Exec(ctx, `
    create table if not exists `+VersionTable+`(version int4 not null);

    insert into `+VersionTable+`(version)
    select 0
    where 0=(select count(*) from `+VersionTable+`);
  `); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, ms[0].sql); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "update "+VersionTable+" set version=$1", int32(1)); err != nil {
		t.Fatal(err)
	}

	if err := Migrate(ctx, db.URL); err != nil {
		t.Fatalf("Migrate(at version 1) = %v, want nil (migration 1 run again would fail: its tables exist)", err)
	}
	if v := version(t, conn); v != int32(len(ms)) {
		t.Errorf("version = %d, want %d", v, len(ms))
	}
	var rows int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+VersionTable).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("version table rows = %d, %v; want 1", rows, err)
	}
	for _, table := range []string{"gateway_spend", "gateway_usage_daily", "gateway_replicas"} {
		if !tableExists(t, conn, table) {
			t.Errorf("table %s missing after Migrate", table)
		}
	}
	var limits string
	if err := conn.QueryRow(ctx, "SELECT column_default FROM information_schema.columns WHERE table_name = 'keys' AND column_name = 'limits'").Scan(&limits); err != nil {
		t.Errorf("keys.limits (migration 2): %v", err)
	}
}

// migratedConn returns a new database, migrated, and a connection to it
// that is closed when t ends.
func migratedConn(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	ctx := t.Context()
	db := pgtest.Start(t)
	if err := Migrate(ctx, db.URL); err != nil {
		t.Fatal(err)
	}
	conn, err := connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db.URL, conn
}

// A schema newer than the binary's migrations is refused and left alone.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	url, conn := migratedConn(t)
	latest := version(t, conn)
	if _, err := conn.Exec(ctx, "UPDATE "+VersionTable+" SET version = $1", latest+1); err != nil {
		t.Fatal(err)
	}
	err := Migrate(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "schema version is") {
		t.Errorf("Migrate(newer schema) = %v, want a refusal naming the version", err)
	}
	if v := version(t, conn); v != latest+1 {
		t.Errorf("version after the refusal = %d, want %d", v, latest+1)
	}
}

// A migration that fails leaves nothing behind: neither its first
// statements nor a new version.
func TestMigrationFailureRollsBack(t *testing.T) {
	ctx := t.Context()
	_, conn := migratedConn(t)
	before := version(t, conn)
	bad := migration{version: before + 1, name: "999_bad.sql", sql: "CREATE TABLE half_done (x int);\nSELECT 1/0;"}
	if err := apply(ctx, conn, bad); err == nil {
		t.Fatal("apply(a failing migration) = nil, want its error")
	}
	if tableExists(t, conn, "half_done") {
		t.Error("the failed migration's first statement was kept")
	}
	if v := version(t, conn); v != before {
		t.Errorf("version after a failed migration = %d, want %d", v, before)
	}
	// The settings a migration changes do not outlive it.
	set := migration{version: before + 1, name: "999_path.sql", sql: "SET search_path TO nowhere;"}
	if err := apply(ctx, conn, set); err != nil {
		t.Fatal(err)
	}
	var path string
	if err := conn.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil || strings.Contains(path, "nowhere") {
		t.Errorf("search_path after a migration = %q, %v; want it reset", path, err)
	}
}
