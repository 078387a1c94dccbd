// Package memory is the in-memory principal store: the embedded default. It
// is seeded from gateway_settings and is not durable: everything written to
// it is lost when the process exits.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/regate/gateway/gateway"
)

// Store keeps keys, teams and users in maps guarded by one lock. Records are
// replaced whole on write and never mutated in place, so a Principal handed
// out stays consistent after later writes.
type Store struct {
	mu    sync.RWMutex
	keys  map[string]*gateway.Key // by key hash
	teams map[string]*gateway.Team
	users map[string]*gateway.User
}

// New returns an empty store.
func New() *Store {
	return &Store{
		keys:  make(map[string]*gateway.Key),
		teams: make(map[string]*gateway.Team),
		users: make(map[string]*gateway.User),
	}
}

// PutTeam inserts or replaces a team.
func (s *Store) PutTeam(_ context.Context, t gateway.Team) error {
	if t.ID == "" {
		return fmt.Errorf("put team: empty team id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.teams[t.ID] = &t
	return nil
}

// PutUser inserts or replaces a user.
func (s *Store) PutUser(_ context.Context, u gateway.User) error {
	if u.ID == "" {
		return fmt.Errorf("put user: empty user id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &u
	return nil
}

// PutKey inserts or replaces a key by its hash. Its team and user, when set,
// must exist.
func (s *Store) PutKey(_ context.Context, k gateway.Key) error {
	if len(k.ID) != 64 {
		return fmt.Errorf("put key: id must be a sha-256 hex digest")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.TeamID != "" && s.teams[k.TeamID] == nil {
		return fmt.Errorf("put key %s: team %q: %w", k.Display, k.TeamID, gateway.ErrNotFound)
	}
	if k.UserID != "" && s.users[k.UserID] == nil {
		return fmt.Errorf("put key %s: user %q: %w", k.Display, k.UserID, gateway.ErrNotFound)
	}
	s.keys[k.ID] = &k
	return nil
}

// PrincipalByKeyHash implements gateway.PrincipalStore.
func (s *Store) PrincipalByKeyHash(_ context.Context, keyHash string) (*gateway.Principal, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys[keyHash]
	if k == nil {
		return nil, fmt.Errorf("key: %w", gateway.ErrNotFound)
	}
	p := &gateway.Principal{Key: k}
	if k.TeamID != "" {
		p.Team = s.teams[k.TeamID]
	}
	if k.UserID != "" {
		p.User = s.users[k.UserID]
	}
	return p, nil
}
