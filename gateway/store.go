package gateway

import (
	"context"
	"errors"
)

// ErrConflict is returned by stores when a record with the same id exists.
var ErrConflict = errors.New("already exists")

// KeyFilter selects keys in Store.ListKeys. Zero fields do not filter.
type KeyFilter struct {
	TeamID string
	UserID string
	// Page is 1-based; 0 means 1. Size 0 means 100; at most 1000.
	Page, Size int
}

// Page1 returns the 1-based page and the page size with defaults applied.
func (f KeyFilter) Page1() (page, size int) {
	page, size = f.Page, f.Size
	if page < 1 {
		page = 1
	}
	if size <= 0 {
		size = 100
	}
	if size > 1000 {
		size = 1000
	}
	return page, size
}

// Change names records a write touched, for principal cache invalidation.
// Kind is "key" (ID is the key hash), "team" or "user".
type Change struct {
	Kind string
	ID   string
}

// Store is the persistent home of keys, teams and users: the port the admin
// API writes through and authentication reads from. Every method is one
// transaction; updates run fn on a copy of the current record inside that
// transaction and store the result only when fn returns nil. Records handed
// out are never mutated afterwards. Missing records are errors wrapping
// ErrNotFound, duplicates ErrConflict; an unreachable backend wraps
// ErrUnavailable.
type Store interface {
	PrincipalStore

	CreateKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, keyHash string) (*Key, error)
	UpdateKey(ctx context.Context, keyHash string, fn func(*Key) error) (*Key, error)
	// DeleteKeys deletes the keys that exist and returns their hashes.
	DeleteKeys(ctx context.Context, keyHashes []string) ([]string, error)
	ListKeys(ctx context.Context, f KeyFilter) ([]*Key, error)

	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, id string) (*Team, error)
	UpdateTeam(ctx context.Context, id string, fn func(*Team) error) (*Team, error)
	// DeleteTeams deletes the teams that exist, with their keys, and returns
	// the deleted team ids.
	DeleteTeams(ctx context.Context, ids []string) ([]string, error)
	ListTeams(ctx context.Context) ([]*Team, error)

	// CreateUser creates a user and, when k is not nil, a key for it, in one
	// transaction.
	CreateUser(ctx context.Context, u *User, k *Key) error
	GetUser(ctx context.Context, id string) (*User, error)
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (*User, error)
	// DeleteUsers deletes the users that exist, with their keys, and returns
	// the deleted user ids.
	DeleteUsers(ctx context.Context, ids []string) ([]string, error)
	ListUsers(ctx context.Context) ([]*User, error)

	// Upsert writes seed principals from the configuration idempotently:
	// teams and users are created or replaced, keys created or replaced by
	// hash, in one transaction.
	Upsert(ctx context.Context, teams []Team, users []User, keys []Key) error

	// Subscribe calls fn after every committed write, from any replica
	// sharing the backend, with the records it touched. A nil Change slice
	// means "anything may have changed" (for example after a lost
	// notification connection): flush everything. fn must not block. The
	// subscription ends when ctx ends.
	Subscribe(ctx context.Context, fn func([]Change)) error

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close()
}
