package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/gateway"
)

// The upserts leave a row alone (no write, no change notice) when nothing
// but created_at would change, so every replica seeding the same
// configuration at start writes nothing. A replaced row keeps its
// created_at.
const (
	upsertTeam = `INSERT INTO teams (team_id, alias, models, model_aliases, blocked, metadata, limits, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))
ON CONFLICT (team_id) DO UPDATE SET alias = excluded.alias, models = excluded.models,
	model_aliases = excluded.model_aliases, blocked = excluded.blocked, metadata = excluded.metadata,
	limits = excluded.limits, updated_at = now()
WHERE (teams.alias, teams.models, teams.model_aliases, teams.blocked, teams.metadata, teams.limits)
	IS DISTINCT FROM (excluded.alias, excluded.models, excluded.model_aliases, excluded.blocked, excluded.metadata,
	excluded.limits)`

	upsertUser = `INSERT INTO users (user_id, email, role, models, metadata, limits, created_at)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))
ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, role = excluded.role,
	models = excluded.models, metadata = excluded.metadata, limits = excluded.limits, updated_at = now()
WHERE (users.email, users.role, users.models, users.metadata, users.limits)
	IS DISTINCT FROM (excluded.email, excluded.role, excluded.models, excluded.metadata, excluded.limits)`

	upsertKey = `INSERT INTO keys (key_hash, display, alias, role, models, aliases, team_id, user_id,
	metadata, blocked, expires_at, limits, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now()))
ON CONFLICT (key_hash) DO UPDATE SET display = excluded.display, alias = excluded.alias,
	role = excluded.role, models = excluded.models, aliases = excluded.aliases,
	team_id = excluded.team_id, user_id = excluded.user_id, metadata = excluded.metadata,
	blocked = excluded.blocked, expires_at = excluded.expires_at, limits = excluded.limits,
	updated_at = now()
WHERE (keys.display, keys.alias, keys.role, keys.models, keys.aliases, keys.team_id, keys.user_id,
	keys.metadata, keys.blocked, keys.expires_at, keys.limits)
	IS DISTINCT FROM (excluded.display, excluded.alias, excluded.role, excluded.models, excluded.aliases,
	excluded.team_id, excluded.user_id, excluded.metadata, excluded.blocked, excluded.expires_at,
	excluded.limits)`
)

// Upsert implements gateway.Store in one transaction: teams, then users,
// then keys, sent as one batch. A key whose team or user exists neither in
// the database nor in the batch fails the whole call with ErrNotFound.
func (s *Store) Upsert(ctx context.Context, teams []gateway.Team, users []gateway.User, keys []gateway.Key) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	type item struct {
		change gateway.Change
		what   string // for errors
	}
	var (
		b     pgx.Batch
		items []item
	)
	for i := range teams {
		t := &teams[i]
		args, err := teamArgs(t)
		if err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		b.Queue(upsertTeam, append(args, nullTime(t.CreatedAt))...)
		items = append(items, item{gateway.Change{Kind: "team", ID: t.ID}, fmt.Sprintf("team %q", t.ID)})
	}
	for i := range users {
		u := &users[i]
		args, err := userArgs(u)
		if err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		b.Queue(upsertUser, append(args, nullTime(u.CreatedAt))...)
		items = append(items, item{gateway.Change{Kind: "user", ID: u.ID}, fmt.Sprintf("user %q", u.ID)})
	}
	for i := range keys {
		k := &keys[i]
		args, err := keyArgs(k)
		if err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		b.Queue(upsertKey, append(args, nullTime(k.CreatedAt))...)
		items = append(items, item{gateway.Change{Kind: "key", ID: k.ID}, "key " + k.Display})
	}
	if len(items) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx pgx.Tx) (ch []gateway.Change, err error) {
		res := tx.SendBatch(ctx, &b)
		defer func() {
			if cerr := res.Close(); err == nil && cerr != nil {
				ch, err = nil, translate(ctx, cerr)
			}
		}()
		for _, it := range items {
			tag, err := res.Exec()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", it.what, translate(ctx, err))
			}
			if tag.RowsAffected() > 0 {
				ch = append(ch, it.change)
			}
		}
		return ch, nil
	})
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	return nil
}
