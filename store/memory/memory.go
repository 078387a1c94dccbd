// Package memory is the in-memory principal store: the embedded default. It
// is seeded from gateway_settings and is not durable: everything written to
// it is lost when the process exits.
//
// It implements gateway.Store with the same semantics as store/postgres (both
// pass store/storetest): records are normalized on the way in exactly as a
// round trip through PostgreSQL would (times in UTC to the microsecond,
// metadata as decoded JSON, empty lists and maps as nil) and deep-copied on
// the way in and out, so callers can never change stored state.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/regate/gateway/gateway"
)

// Store keeps keys, teams and users in maps guarded by one lock. Stored
// records are replaced whole on write and never mutated in place.
type Store struct {
	mu    sync.RWMutex
	keys  map[string]*gateway.Key // by key hash
	teams map[string]*gateway.Team
	users map[string]*gateway.User

	subMu  sync.Mutex
	subs   []*subscriber
	nextID int
}

type subscriber struct {
	id   int
	fn   func([]gateway.Change)
	done <-chan struct{} // the subscription's context's; ended means skip
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
	n, err := normTeam(&t)
	if err != nil {
		return fmt.Errorf("put team: %w", err)
	}
	s.mu.Lock()
	s.putTeamLocked(n)
	s.mu.Unlock()
	s.publish([]gateway.Change{{Kind: "team", ID: n.ID}})
	return nil
}

// PutUser inserts or replaces a user.
func (s *Store) PutUser(_ context.Context, u gateway.User) error {
	n, err := normUser(&u)
	if err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	s.mu.Lock()
	s.putUserLocked(n)
	s.mu.Unlock()
	s.publish([]gateway.Change{{Kind: "user", ID: n.ID}})
	return nil
}

// PutKey inserts or replaces a key by its hash. Its team and user, when set,
// must exist.
func (s *Store) PutKey(_ context.Context, k gateway.Key) error {
	n, err := normKey(&k)
	if err != nil {
		return fmt.Errorf("put key: %w", err)
	}
	s.mu.Lock()
	err = s.refsExistLocked(n)
	if err == nil {
		s.putKeyLocked(n)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("put key %s: %w", n.Display, err)
	}
	s.publish([]gateway.Change{{Kind: "key", ID: n.ID}})
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
	p := &gateway.Principal{Key: copyKey(k)}
	if t := s.teams[k.TeamID]; t != nil {
		p.Team = copyTeam(t)
	}
	if u := s.users[k.UserID]; u != nil {
		p.User = copyUser(u)
	}
	return p, nil
}

// CreateKey implements gateway.Store. A zero k.CreatedAt is set to now.
func (s *Store) CreateKey(_ context.Context, k *gateway.Key) error {
	n, err := normKey(k)
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	s.mu.Lock()
	err = s.createKeyLocked(n)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("create key %s: %w", n.Display, err)
	}
	k.CreatedAt = n.CreatedAt
	s.publish([]gateway.Change{{Kind: "key", ID: n.ID}})
	return nil
}

func (s *Store) createKeyLocked(n *gateway.Key) error {
	if s.keys[n.ID] != nil {
		return gateway.ErrConflict
	}
	if err := s.refsExistLocked(n); err != nil {
		return err
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.stamp()
	}
	s.putKeyLocked(n)
	return nil
}

// GetKey implements gateway.Store.
func (s *Store) GetKey(_ context.Context, keyHash string) (*gateway.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys[keyHash]
	if k == nil {
		return nil, fmt.Errorf("get key: %w", gateway.ErrNotFound)
	}
	return copyKey(k), nil
}

// UpdateKey implements gateway.Store. fn may not change the key's ID or
// CreatedAt.
func (s *Store) UpdateKey(_ context.Context, keyHash string, fn func(*gateway.Key) error) (*gateway.Key, error) {
	s.mu.Lock()
	old := s.keys[keyHash]
	if old == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("update key: %w", gateway.ErrNotFound)
	}
	k := copyKey(old)
	n, err := func() (*gateway.Key, error) {
		if err := fn(k); err != nil {
			return nil, err
		}
		if k.ID != old.ID {
			return nil, fmt.Errorf("the key hash cannot change")
		}
		k.CreatedAt = old.CreatedAt
		n, err := normKey(k)
		if err != nil {
			return nil, err
		}
		return n, s.refsExistLocked(n)
	}()
	if err == nil {
		s.putKeyLocked(n)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("update key %s: %w", old.Display, err)
	}
	s.publish([]gateway.Change{{Kind: "key", ID: n.ID}})
	return copyKey(n), nil
}

// DeleteKeys implements gateway.Store. The deleted hashes come back in the
// order given, without duplicates.
func (s *Store) DeleteKeys(_ context.Context, keyHashes []string) ([]string, error) {
	s.mu.Lock()
	var deleted []string
	for _, h := range keyHashes {
		if s.keys[h] != nil {
			delete(s.keys, h)
			deleted = append(deleted, h)
		}
	}
	s.mu.Unlock()
	s.publish(changes("key", deleted))
	return deleted, nil
}

// ListKeys implements gateway.Store: keys in creation order (ties by hash).
func (s *Store) ListKeys(_ context.Context, f gateway.KeyFilter) ([]*gateway.Key, error) {
	s.mu.RLock()
	var all []*gateway.Key
	for _, k := range s.keys {
		if (f.TeamID == "" || k.TeamID == f.TeamID) && (f.UserID == "" || k.UserID == f.UserID) {
			all = append(all, k)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *gateway.Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	page, size := f.Page1()
	start := (page - 1) * size
	if start >= len(all) {
		return nil, nil
	}
	all = all[start:min(start+size, len(all))]
	out := make([]*gateway.Key, len(all))
	for i, k := range all {
		out[i] = copyKey(k)
	}
	return out, nil
}

// CreateTeam implements gateway.Store. A zero t.CreatedAt is set to now.
func (s *Store) CreateTeam(_ context.Context, t *gateway.Team) error {
	n, err := normTeam(t)
	if err != nil {
		return fmt.Errorf("create team: %w", err)
	}
	s.mu.Lock()
	exists := s.teams[n.ID] != nil
	if !exists {
		if n.CreatedAt.IsZero() {
			n.CreatedAt = s.stamp()
		}
		s.putTeamLocked(n)
	}
	s.mu.Unlock()
	if exists {
		return fmt.Errorf("create team %q: %w", n.ID, gateway.ErrConflict)
	}
	t.CreatedAt = n.CreatedAt
	s.publish([]gateway.Change{{Kind: "team", ID: n.ID}})
	return nil
}

// GetTeam implements gateway.Store.
func (s *Store) GetTeam(_ context.Context, id string) (*gateway.Team, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.teams[id]
	if t == nil {
		return nil, fmt.Errorf("get team %q: %w", id, gateway.ErrNotFound)
	}
	return copyTeam(t), nil
}

// UpdateTeam implements gateway.Store. fn may not change the team's ID or
// CreatedAt.
func (s *Store) UpdateTeam(_ context.Context, id string, fn func(*gateway.Team) error) (*gateway.Team, error) {
	s.mu.Lock()
	old := s.teams[id]
	if old == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("update team %q: %w", id, gateway.ErrNotFound)
	}
	t := copyTeam(old)
	n, err := func() (*gateway.Team, error) {
		if err := fn(t); err != nil {
			return nil, err
		}
		if t.ID != old.ID {
			return nil, fmt.Errorf("the team id cannot change")
		}
		t.CreatedAt = old.CreatedAt
		return normTeam(t)
	}()
	if err == nil {
		s.putTeamLocked(n)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("update team %q: %w", id, err)
	}
	s.publish([]gateway.Change{{Kind: "team", ID: id}})
	return copyTeam(n), nil
}

// DeleteTeams implements gateway.Store. The changes published name the
// deleted keys as well as the teams.
func (s *Store) DeleteTeams(_ context.Context, ids []string) ([]string, error) {
	s.mu.Lock()
	var deleted []string
	for _, id := range ids {
		if s.teams[id] != nil {
			delete(s.teams, id)
			deleted = append(deleted, id)
		}
	}
	keys := s.deleteKeysOfLocked(func(k *gateway.Key) bool { return slices.Contains(deleted, k.TeamID) })
	s.mu.Unlock()
	s.publish(append(changes("team", deleted), changes("key", keys)...))
	return deleted, nil
}

// ListTeams implements gateway.Store: teams sorted by id.
func (s *Store) ListTeams(_ context.Context) ([]*gateway.Team, error) {
	s.mu.RLock()
	out := make([]*gateway.Team, 0, len(s.teams))
	for _, t := range s.teams {
		out = append(out, copyTeam(t))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *gateway.Team) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateUser implements gateway.Store. A key without a UserID is given
// u.ID; a key naming another user is an error. Zero CreatedAt fields are
// set to now.
func (s *Store) CreateUser(_ context.Context, u *gateway.User, k *gateway.Key) error {
	n, err := normUser(u)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	var nk *gateway.Key
	if k != nil {
		if k.UserID != "" && k.UserID != u.ID {
			return fmt.Errorf("create user %q: its key belongs to user %q", u.ID, k.UserID)
		}
		kc := *k
		kc.UserID = u.ID
		if nk, err = normKey(&kc); err != nil {
			return fmt.Errorf("create user %q: key: %w", u.ID, err)
		}
	}
	s.mu.Lock()
	err = func() error {
		if s.users[n.ID] != nil {
			return gateway.ErrConflict
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = s.stamp()
		}
		s.users[n.ID] = n
		if nk != nil {
			if err := s.createKeyLocked(nk); err != nil {
				delete(s.users, n.ID)
				return fmt.Errorf("key %s: %w", nk.Display, err)
			}
		}
		return nil
	}()
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("create user %q: %w", n.ID, err)
	}
	u.CreatedAt = n.CreatedAt
	ch := []gateway.Change{{Kind: "user", ID: n.ID}}
	if nk != nil {
		k.UserID, k.CreatedAt = nk.UserID, nk.CreatedAt
		ch = append(ch, gateway.Change{Kind: "key", ID: nk.ID})
	}
	s.publish(ch)
	return nil
}

// GetUser implements gateway.Store.
func (s *Store) GetUser(_ context.Context, id string) (*gateway.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[id]
	if u == nil {
		return nil, fmt.Errorf("get user %q: %w", id, gateway.ErrNotFound)
	}
	return copyUser(u), nil
}

// UpdateUser implements gateway.Store. fn may not change the user's ID or
// CreatedAt.
func (s *Store) UpdateUser(_ context.Context, id string, fn func(*gateway.User) error) (*gateway.User, error) {
	s.mu.Lock()
	old := s.users[id]
	if old == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("update user %q: %w", id, gateway.ErrNotFound)
	}
	u := copyUser(old)
	n, err := func() (*gateway.User, error) {
		if err := fn(u); err != nil {
			return nil, err
		}
		if u.ID != old.ID {
			return nil, fmt.Errorf("the user id cannot change")
		}
		u.CreatedAt = old.CreatedAt
		return normUser(u)
	}()
	if err == nil {
		s.putUserLocked(n)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("update user %q: %w", id, err)
	}
	s.publish([]gateway.Change{{Kind: "user", ID: id}})
	return copyUser(n), nil
}

// DeleteUsers implements gateway.Store. The changes published name the
// deleted keys as well as the users.
func (s *Store) DeleteUsers(_ context.Context, ids []string) ([]string, error) {
	s.mu.Lock()
	var deleted []string
	for _, id := range ids {
		if s.users[id] != nil {
			delete(s.users, id)
			deleted = append(deleted, id)
		}
	}
	keys := s.deleteKeysOfLocked(func(k *gateway.Key) bool { return slices.Contains(deleted, k.UserID) })
	s.mu.Unlock()
	s.publish(append(changes("user", deleted), changes("key", keys)...))
	return deleted, nil
}

// ListUsers implements gateway.Store: users sorted by id.
func (s *Store) ListUsers(_ context.Context) ([]*gateway.User, error) {
	s.mu.RLock()
	out := make([]*gateway.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, copyUser(u))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *gateway.User) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Upsert implements gateway.Store. A record equal to the stored one (apart
// from CreatedAt) is left alone and not reported as a change, so seeding the
// same configuration again writes nothing; a replaced record keeps its
// original CreatedAt.
func (s *Store) Upsert(_ context.Context, teams []gateway.Team, users []gateway.User, keys []gateway.Key) error {
	nt := make([]*gateway.Team, len(teams))
	nu := make([]*gateway.User, len(users))
	nk := make([]*gateway.Key, len(keys))
	var err error
	for i := range teams {
		if nt[i], err = normTeam(&teams[i]); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	for i := range users {
		if nu[i], err = normUser(&users[i]); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	for i := range keys {
		if nk[i], err = normKey(&keys[i]); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	s.mu.Lock()
	// Check every reference first so that a bad batch writes nothing.
	for _, k := range nk {
		if err := s.refsExistIn(k, nt, nu); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("upsert key %s: %w", k.Display, err)
		}
	}
	now := s.stamp()
	var ch []gateway.Change
	for _, t := range nt {
		if old := s.teams[t.ID]; old != nil {
			if t.CreatedAt = old.CreatedAt; reflect.DeepEqual(old, t) {
				continue
			}
		} else if t.CreatedAt.IsZero() {
			t.CreatedAt = now
		}
		s.putTeamLocked(t)
		ch = append(ch, gateway.Change{Kind: "team", ID: t.ID})
	}
	for _, u := range nu {
		if old := s.users[u.ID]; old != nil {
			if u.CreatedAt = old.CreatedAt; reflect.DeepEqual(old, u) {
				continue
			}
		} else if u.CreatedAt.IsZero() {
			u.CreatedAt = now
		}
		s.putUserLocked(u)
		ch = append(ch, gateway.Change{Kind: "user", ID: u.ID})
	}
	for _, k := range nk {
		if old := s.keys[k.ID]; old != nil {
			if k.CreatedAt = old.CreatedAt; reflect.DeepEqual(old, k) {
				continue
			}
		} else if k.CreatedAt.IsZero() {
			k.CreatedAt = now
		}
		s.putKeyLocked(k)
		ch = append(ch, gateway.Change{Kind: "key", ID: k.ID})
	}
	s.mu.Unlock()
	s.publish(ch)
	return nil
}

// Subscribe implements gateway.Store. fn is called by the writing goroutine
// after the write is applied and before the write method returns, outside
// the store's lock (so concurrent writes mean concurrent calls); there is no
// other replica, so it never receives nil.
func (s *Store) Subscribe(ctx context.Context, fn func([]gateway.Change)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.subMu.Lock()
	s.nextID++
	id := s.nextID
	// Clip: the slice is replaced, never modified in place, because publish
	// iterates over snapshots of it without the lock.
	s.subs = append(slices.Clip(s.subs), &subscriber{id: id, fn: fn, done: ctx.Done()})
	s.subMu.Unlock()
	context.AfterFunc(ctx, func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(sub *subscriber) bool { return sub.id == id })
	})
	return nil
}

// Ping implements gateway.Store; memory always answers.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements gateway.Store; there is nothing to release.
func (s *Store) Close() {}

// publish hands changes to every subscriber, each its own copy.
func (s *Store) publish(ch []gateway.Change) {
	if len(ch) == 0 {
		return
	}
	s.subMu.Lock()
	subs := s.subs // replaced, never modified in place
	s.subMu.Unlock()
	for _, sub := range subs {
		select {
		case <-sub.done: // ended; AfterFunc removes it soon
		default:
			sub.fn(slices.Clone(ch))
		}
	}
}

func (s *Store) putTeamLocked(t *gateway.Team) {
	if old := s.teams[t.ID]; old != nil && t.CreatedAt.IsZero() {
		t.CreatedAt = old.CreatedAt
	} else if t.CreatedAt.IsZero() {
		t.CreatedAt = s.stamp()
	}
	s.teams[t.ID] = t
}

func (s *Store) putUserLocked(u *gateway.User) {
	if old := s.users[u.ID]; old != nil && u.CreatedAt.IsZero() {
		u.CreatedAt = old.CreatedAt
	} else if u.CreatedAt.IsZero() {
		u.CreatedAt = s.stamp()
	}
	s.users[u.ID] = u
}

func (s *Store) putKeyLocked(k *gateway.Key) {
	if old := s.keys[k.ID]; old != nil && k.CreatedAt.IsZero() {
		k.CreatedAt = old.CreatedAt
	} else if k.CreatedAt.IsZero() {
		k.CreatedAt = s.stamp()
	}
	s.keys[k.ID] = k
}

// refsExistLocked reports a key's missing team or user.
func (s *Store) refsExistLocked(k *gateway.Key) error {
	return s.refsExistIn(k, nil, nil)
}

// refsExistIn reports a key's team or user that is neither stored nor in
// the batch being written.
func (s *Store) refsExistIn(k *gateway.Key, teams []*gateway.Team, users []*gateway.User) error {
	if k.TeamID != "" && s.teams[k.TeamID] == nil &&
		!slices.ContainsFunc(teams, func(t *gateway.Team) bool { return t.ID == k.TeamID }) {
		return fmt.Errorf("team %q: %w", k.TeamID, gateway.ErrNotFound)
	}
	if k.UserID != "" && s.users[k.UserID] == nil &&
		!slices.ContainsFunc(users, func(u *gateway.User) bool { return u.ID == k.UserID }) {
		return fmt.Errorf("user %q: %w", k.UserID, gateway.ErrNotFound)
	}
	return nil
}

// deleteKeysOfLocked deletes the keys match selects and returns their
// hashes, sorted.
func (s *Store) deleteKeysOfLocked(match func(*gateway.Key) bool) []string {
	var deleted []string
	for h, k := range s.keys {
		if match(k) {
			delete(s.keys, h)
			deleted = append(deleted, h)
		}
	}
	slices.Sort(deleted)
	return deleted
}

// stamp is the creation time of a new record, as PostgreSQL would store it.
func (s *Store) stamp() time.Time { return normTime(time.Now()) }

func changes(kind string, ids []string) []gateway.Change {
	var ch []gateway.Change
	for _, id := range ids {
		ch = append(ch, gateway.Change{Kind: kind, ID: id})
	}
	return ch
}
