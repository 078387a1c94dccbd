package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regate/gateway/gateway"
)

// CreateTeam implements gateway.Store. A zero t.CreatedAt is set to the
// database's time.
func (s *Store) CreateTeam(ctx context.Context, t *gateway.Team) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args, err := teamArgs(t)
	if err != nil {
		return fmt.Errorf("create team: %w", err)
	}
	var created time.Time
	err = s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		err := tx.QueryRow(ctx, `INSERT INTO teams (team_id, alias, models, model_aliases, blocked,
			metadata, limits, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))
			RETURNING created_at`, append(args, nullTime(t.CreatedAt))...).Scan(&created)
		if err != nil {
			return nil, translate(ctx, err)
		}
		return []gateway.Change{{Kind: "team", ID: t.ID}}, nil
	})
	if err != nil {
		return fmt.Errorf("create team %q: %w", t.ID, err)
	}
	t.CreatedAt = created.UTC()
	return nil
}

// GetTeam implements gateway.Store.
func (s *Store) GetTeam(ctx context.Context, id string) (*gateway.Team, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var t *gateway.Team
	err := s.retry(ctx, func() (err error) {
		t, err = scanTeam(s.pool.QueryRow(ctx, "SELECT "+teamCols+" FROM teams WHERE team_id = $1", id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get team %q: %w", id, translate(ctx, err))
	}
	return t, nil
}

// UpdateTeam implements gateway.Store: the row is locked while fn runs. fn
// may not change the team's ID; changes to CreatedAt are ignored.
func (s *Store) UpdateTeam(ctx context.Context, id string, fn func(*gateway.Team) error) (*gateway.Team, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out *gateway.Team
	err := s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		t, err := scanTeam(tx.QueryRow(ctx, "SELECT "+teamCols+" FROM teams WHERE team_id = $1 FOR UPDATE", id))
		if err != nil {
			return nil, translate(ctx, err)
		}
		if err := fn(t); err != nil {
			return nil, err
		}
		if t.ID != id {
			return nil, errors.New("the team id cannot change")
		}
		args, err := teamArgs(t)
		if err != nil {
			return nil, err
		}
		out, err = scanTeam(tx.QueryRow(ctx, `UPDATE teams SET alias = $2, models = $3,
			model_aliases = $4, blocked = $5, metadata = $6, limits = $7, updated_at = now()
			WHERE team_id = $1 RETURNING `+teamCols, args...))
		if err != nil {
			return nil, translate(ctx, err)
		}
		return []gateway.Change{{Kind: "team", ID: id}}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update team %q: %w", id, err)
	}
	return out, nil
}

// DeleteTeams implements gateway.Store. The changes announced name the
// deleted keys as well as the teams.
func (s *Store) DeleteTeams(ctx context.Context, ids []string) ([]string, error) {
	return s.deleteOwners(ctx, "team", ids)
}

// DeleteUsers implements gateway.Store. The changes announced name the
// deleted keys as well as the users.
func (s *Store) DeleteUsers(ctx context.Context, ids []string) ([]string, error) {
	return s.deleteOwners(ctx, "user", ids)
}

// deleteOwners deletes teams or users with their keys. The keys are
// deleted explicitly (ON DELETE CASCADE is the safety net) to learn their
// hashes for the change notice.
func (s *Store) deleteOwners(ctx context.Context, kind string, ids []string) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(ids) == 0 {
		return nil, nil
	}
	table, col := "teams", "team_id"
	if kind == "user" {
		table, col = "users", "user_id"
	}
	var deleted []string
	err := s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		keys, err := collect(ctx, tx, "DELETE FROM keys WHERE "+col+" = ANY($1) RETURNING key_hash", ids)
		if err != nil {
			return nil, err
		}
		gone, err := collect(ctx, tx, "DELETE FROM "+table+" WHERE "+col+" = ANY($1) RETURNING "+col, ids)
		if err != nil {
			return nil, err
		}
		deleted = inOrder(ids, gone)
		slices.Sort(keys)
		return append(changes(kind, deleted), changes("key", keys)...), nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete %ss: %w", kind, err)
	}
	return deleted, nil
}

// ListTeams implements gateway.Store: teams sorted by id.
func (s *Store) ListTeams(ctx context.Context) ([]*gateway.Team, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var out []*gateway.Team
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, "SELECT "+teamCols+" FROM teams ORDER BY team_id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gateway.Team, error) { return scanTeam(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", translate(ctx, err))
	}
	return out, nil
}

// CreateUser implements gateway.Store. A key without a UserID is given
// u.ID; a key naming another user is an error. Zero CreatedAt fields are
// set to the database's time.
func (s *Store) CreateUser(ctx context.Context, u *gateway.User, k *gateway.Key) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	args, err := userArgs(u)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	var kargs []any
	if k != nil {
		if k.UserID != "" && k.UserID != u.ID {
			return fmt.Errorf("create user %q: its key belongs to user %q", u.ID, k.UserID)
		}
		kc := *k
		kc.UserID = u.ID
		if kargs, err = keyArgs(&kc); err != nil {
			return fmt.Errorf("create user %q: key: %w", u.ID, err)
		}
		kargs = append(kargs, nullTime(k.CreatedAt))
	}
	var uCreated, kCreated time.Time
	err = s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		err := tx.QueryRow(ctx, `INSERT INTO users (user_id, email, role, models, metadata, limits,
			created_at) VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now())) RETURNING created_at`,
			append(args, nullTime(u.CreatedAt))...).Scan(&uCreated)
		if err != nil {
			return nil, translate(ctx, err)
		}
		ch := []gateway.Change{{Kind: "user", ID: u.ID}}
		if k == nil {
			return ch, nil
		}
		if err := tx.QueryRow(ctx, insertKey, kargs...).Scan(&kCreated); err != nil {
			return nil, fmt.Errorf("key %s: %w", k.Display, translate(ctx, err))
		}
		return append(ch, gateway.Change{Kind: "key", ID: k.ID}), nil
	})
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	u.CreatedAt = uCreated.UTC()
	if k != nil {
		k.UserID, k.CreatedAt = u.ID, kCreated.UTC()
	}
	return nil
}

// GetUser implements gateway.Store.
func (s *Store) GetUser(ctx context.Context, id string) (*gateway.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var u *gateway.User
	err := s.retry(ctx, func() (err error) {
		u, err = scanUser(s.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE user_id = $1", id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get user %q: %w", id, translate(ctx, err))
	}
	return u, nil
}

// UpdateUser implements gateway.Store: the row is locked while fn runs. fn
// may not change the user's ID; changes to CreatedAt are ignored.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*gateway.User) error) (*gateway.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out *gateway.User
	err := s.write(ctx, func(tx pgx.Tx) ([]gateway.Change, error) {
		u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE user_id = $1 FOR UPDATE", id))
		if err != nil {
			return nil, translate(ctx, err)
		}
		if err := fn(u); err != nil {
			return nil, err
		}
		if u.ID != id {
			return nil, errors.New("the user id cannot change")
		}
		args, err := userArgs(u)
		if err != nil {
			return nil, err
		}
		out, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET email = $2, role = $3, models = $4,
			metadata = $5, limits = $6, updated_at = now() WHERE user_id = $1 RETURNING `+userCols, args...))
		if err != nil {
			return nil, translate(ctx, err)
		}
		return []gateway.Change{{Kind: "user", ID: id}}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update user %q: %w", id, err)
	}
	return out, nil
}

// ListUsers implements gateway.Store: users sorted by id.
func (s *Store) ListUsers(ctx context.Context) ([]*gateway.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.pool == nil {
		return nil, errNotStarted
	}
	var out []*gateway.User
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, "SELECT "+userCols+" FROM users ORDER BY user_id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gateway.User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", translate(ctx, err))
	}
	return out, nil
}
