// Package authcache is the per-replica principal cache in front of the
// store. Writes from any replica invalidate it through the store's change
// subscription (PostgreSQL LISTEN/NOTIFY); a TTL bounds staleness should a
// notification ever be lost. When the store is unreachable, principals
// already cached keep working for a bounded time, and unknown keys get
// gateway.ErrUnavailable (503), never a 200.
package authcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regate/gateway/gateway"
)

// Defaults for Config.
const (
	DefaultSize     = 10000
	DefaultTTL      = time.Minute
	DefaultNegTTL   = 5 * time.Second
	DefaultStaleFor = 5 * time.Minute
)

// Config configures a Cache.
type Config struct {
	// Store is the backing store. Required.
	Store gateway.PrincipalStore
	// Size bounds the number of cached keys; 0 means DefaultSize.
	Size int
	// TTL is how long an entry is served without asking the store; 0 means
	// DefaultTTL. Invalidation normally removes entries long before.
	TTL time.Duration
	// NegTTL is how long an unknown key is remembered as unknown; 0 means
	// DefaultNegTTL. Creating the key invalidates it at once.
	NegTTL time.Duration
	// StaleFor is how long past its TTL a cached principal keeps working
	// while the store is unreachable; 0 means DefaultStaleFor.
	StaleFor time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

type entry struct {
	p       *gateway.Principal // nil: the key is unknown
	fetched time.Time
}

// Cache implements gateway.PrincipalStore over another PrincipalStore.
type Cache struct {
	cfg Config

	mu      sync.RWMutex
	entries map[string]entry
	// gen increases on every invalidation, so a lookup that raced with one
	// does not store what it read before it.
	gen uint64

	hits, misses, stale atomic.Uint64
}

// New returns a cache; it does no I/O.
func New(cfg Config) (*Cache, error) {
	if cfg.Store == nil {
		return nil, errors.New("authcache: Store is required")
	}
	if cfg.Size <= 0 {
		cfg.Size = DefaultSize
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.NegTTL <= 0 {
		cfg.NegTTL = DefaultNegTTL
	}
	if cfg.StaleFor <= 0 {
		cfg.StaleFor = DefaultStaleFor
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: make(map[string]entry)}, nil
}

// PrincipalByKeyHash implements gateway.PrincipalStore.
func (c *Cache) PrincipalByKeyHash(ctx context.Context, keyHash string) (*gateway.Principal, error) {
	now := c.cfg.Now()
	c.mu.RLock()
	e, ok := c.entries[keyHash]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		ttl := c.cfg.TTL
		if e.p == nil {
			ttl = c.cfg.NegTTL
		}
		if now.Sub(e.fetched) < ttl {
			c.hits.Add(1)
			if e.p == nil {
				return nil, gateway.ErrNotFound
			}
			return e.p, nil
		}
	}
	c.misses.Add(1)
	p, err := c.cfg.Store.PrincipalByKeyHash(ctx, keyHash)
	switch {
	case err == nil:
		c.put(keyHash, entry{p: p, fetched: now}, gen)
		return p, nil
	case errors.Is(err, gateway.ErrNotFound):
		c.put(keyHash, entry{fetched: now}, gen)
		return nil, err
	case ok && e.p != nil && now.Sub(e.fetched) < c.cfg.TTL+c.cfg.StaleFor && ctx.Err() == nil:
		// The store cannot answer; a principal we knew keeps working for a
		// bounded time.
		c.stale.Add(1)
		return e.p, nil
	default:
		if !errors.Is(err, gateway.ErrUnavailable) && ctx.Err() == nil {
			err = errors.Join(gateway.ErrUnavailable, err)
		}
		return nil, err
	}
}

func (c *Cache) put(keyHash string, e entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return // invalidated while we read: what we read may be stale
	}
	if _, ok := c.entries[keyHash]; !ok && len(c.entries) >= c.cfg.Size {
		for k := range c.entries { // evict an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[keyHash] = e
}

// Invalidate drops what changes touched: a key by its hash, a team's or a
// user's keys by scanning. A nil slice flushes everything.
func (c *Cache) Invalidate(changes []gateway.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if changes == nil {
		clear(c.entries)
		return
	}
	var teams, users map[string]bool
	for _, ch := range changes {
		switch ch.Kind {
		case "key":
			delete(c.entries, ch.ID)
		case "team":
			if teams == nil {
				teams = map[string]bool{}
			}
			teams[ch.ID] = true
		case "user":
			if users == nil {
				users = map[string]bool{}
			}
			users[ch.ID] = true
		default:
			clear(c.entries)
			return
		}
	}
	if teams == nil && users == nil {
		return
	}
	for k, e := range c.entries {
		if e.p == nil || e.p.Key == nil {
			continue
		}
		if teams[e.p.Key.TeamID] || users[e.p.Key.UserID] {
			delete(c.entries, k)
		}
	}
}

// Stats are the cache's counters since start.
type Stats struct {
	Hits, Misses, Stale uint64
	Size                int
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(), Size: n}
}
