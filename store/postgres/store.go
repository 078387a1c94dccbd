package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/gateway"
)

const principalQuery = `
SELECT k.key_hash, k.display, k.alias, k.role, k.models, k.aliases, coalesce(k.team_id, ''),
       coalesce(k.user_id, ''), k.metadata, k.blocked, k.expires_at, k.created_at, k.limits,
       t.team_id, t.alias, t.models, t.model_aliases, t.blocked, t.metadata, t.created_at, t.limits,
       u.user_id, u.email, u.role, u.models, u.metadata, u.created_at, u.limits
FROM keys k
LEFT JOIN teams t ON t.team_id = k.team_id
LEFT JOIN users u ON u.user_id = k.user_id
WHERE k.key_hash = $1`

// PrincipalByKeyHash implements gateway.PrincipalStore with one query.
func (s *Store) PrincipalByKeyHash(ctx context.Context, keyHash string) (*gateway.Principal, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var p *gateway.Principal
	err := s.retry(ctx, func() (err error) {
		p, err = scanPrincipal(s.pool.QueryRow(ctx, principalQuery, keyHash))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key: %w", translate(ctx, err))
	}
	return p, nil
}

func scanPrincipal(row pgx.Row) (*gateway.Principal, error) {
	var (
		k   gateway.Key
		exp *time.Time
		lim limitsDoc
		// Team and user columns are NULL when the key has none.
		tID, tAlias *string
		tModels     []string
		tAliases    map[string]string
		tBlocked    *bool
		tMeta       map[string]any
		tCreated    *time.Time
		tLimits     *limitsDoc
		uID, uEmail *string
		uRole       *string
		uModels     []string
		uMeta       map[string]any
		uCreated    *time.Time
		uLimits     *limitsDoc
	)
	err := row.Scan(&k.ID, &k.Display, &k.Alias, &k.Role, &k.Models, &k.Aliases, &k.TeamID,
		&k.UserID, &k.Metadata, &k.Blocked, &exp, &k.CreatedAt, &lim,
		&tID, &tAlias, &tModels, &tAliases, &tBlocked, &tMeta, &tCreated, &tLimits,
		&uID, &uEmail, &uRole, &uModels, &uMeta, &uCreated, &uLimits)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		k.ExpiresAt = *exp
	}
	k.Limits, k.ModelLimits = lim.limits(), lim.modelLimits()
	normKey(&k)
	p := &gateway.Principal{Key: &k}
	if tID != nil {
		p.Team = &gateway.Team{ID: *tID, Alias: *tAlias, Models: tModels, ModelAliases: tAliases,
			Blocked: *tBlocked, Metadata: tMeta, CreatedAt: *tCreated, Limits: tLimits.limits()}
		normTeam(p.Team)
	}
	if uID != nil {
		p.User = &gateway.User{ID: *uID, Email: *uEmail, Role: *uRole, Models: uModels,
			Metadata: uMeta, CreatedAt: *uCreated, Limits: uLimits.limits()}
		normUser(p.User)
	}
	return p, nil
}

const insertKey = `INSERT INTO keys (key_hash, display, alias, role, models, aliases, team_id, user_id,
	metadata, blocked, expires_at, limits, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now()))
RETURNING created_at`

// CreateKey implements gateway.Store. A zero k.CreatedAt is set to the
// database's time.
func (s *Store) CreateKey(ctx context.Context, k *gateway.Key) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args, err := keyArgs(k)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	var created time.Time
	err = s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		if err := tx.QueryRow(ctx, insertKey, append(args, nullTime(k.CreatedAt))...).Scan(&created); err != nil {
			return nil, translate(ctx, err)
		}
		return []gateway.Change{{Kind: "key", ID: k.ID}}, nil
	})
	if err != nil {
		return fmt.Errorf("create key %s: %w", k.Display, err)
	}
	k.CreatedAt = created.UTC()
	return nil
}

// GetKey implements gateway.Store.
func (s *Store) GetKey(ctx context.Context, keyHash string) (*gateway.Key, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var k *gateway.Key
	err := s.retry(ctx, func() (err error) {
		k, err = scanKey(s.pool.QueryRow(ctx, "SELECT "+keyCols+" FROM keys WHERE key_hash = $1", keyHash))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get key: %w", translate(ctx, err))
	}
	return k, nil
}

// UpdateKey implements gateway.Store: the row is locked while fn runs. fn
// may not change the key's ID; changes to CreatedAt are ignored.
func (s *Store) UpdateKey(ctx context.Context, keyHash string, fn func(*gateway.Key) error) (*gateway.Key, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out *gateway.Key
	err := s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		k, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyCols+" FROM keys WHERE key_hash = $1 FOR UPDATE", keyHash))
		if err != nil {
			return nil, translate(ctx, err)
		}
		if err := fn(k); err != nil {
			return nil, err
		}
		if k.ID != keyHash {
			return nil, errors.New("the key hash cannot change")
		}
		args, err := keyArgs(k)
		if err != nil {
			return nil, err
		}
		out, err = scanKey(tx.QueryRow(ctx, `UPDATE keys SET display = $2, alias = $3, role = $4,
			models = $5, aliases = $6, team_id = $7, user_id = $8, metadata = $9, blocked = $10,
			expires_at = $11, limits = $12, updated_at = now() WHERE key_hash = $1 RETURNING `+keyCols, args...))
		if err != nil {
			return nil, translate(ctx, err)
		}
		return []gateway.Change{{Kind: "key", ID: keyHash}}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update key: %w", err)
	}
	return out, nil
}

// DeleteKeys implements gateway.Store. The deleted hashes come back in the
// order given, without duplicates.
func (s *Store) DeleteKeys(ctx context.Context, keyHashes []string) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(keyHashes) == 0 {
		return nil, nil
	}
	var deleted []string
	err := s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		gone, err := collect(ctx, tx, "DELETE FROM keys WHERE key_hash = ANY($1) RETURNING key_hash", keyHashes)
		if err != nil {
			return nil, err
		}
		deleted = inOrder(keyHashes, gone)
		return changes("key", deleted), nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete keys: %w", err)
	}
	return deleted, nil
}

// ListKeys implements gateway.Store: keys in creation order (ties by hash).
func (s *Store) ListKeys(ctx context.Context, f gateway.KeyFilter) ([]*gateway.Key, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	page, size := f.Page1()
	var out []*gateway.Key
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, "SELECT "+keyCols+` FROM keys
			WHERE ($1 = '' OR team_id = $1) AND ($2 = '' OR user_id = $2)
			ORDER BY created_at, key_hash LIMIT $3 OFFSET $4`,
			f.TeamID, f.UserID, size, (page-1)*size)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gateway.Key, error) { return scanKey(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", translate(ctx, err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// collect runs a query returning one text column with args and returns
// its values.
func collect(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(ctx, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(ctx, err)
	}
	return out, nil
}

// inOrder returns the members of set in the order of want, once each.
func inOrder(want, set []string) []string {
	in := make(map[string]bool, len(set))
	for _, s := range set {
		in[s] = true
	}
	var out []string
	for _, w := range want {
		if in[w] {
			out = append(out, w)
			in[w] = false
		}
	}
	return out
}

func changes(kind string, ids []string) []gateway.Change {
	var ch []gateway.Change
	for _, id := range ids {
		ch = append(ch, gateway.Change{Kind: kind, ID: id})
	}
	return ch
}
