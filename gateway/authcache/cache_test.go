package authcache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// flakyStore is a principal store whose backend can be taken away.
type flakyStore struct {
	keys  map[string]*gateway.Principal
	down  atomic.Bool
	calls atomic.Int64
}

func (s *flakyStore) PrincipalByKeyHash(_ context.Context, h string) (*gateway.Principal, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:5432: connection refused")
	}
	if p, ok := s.keys[h]; ok {
		return p, nil
	}
	return nil, gateway.ErrNotFound
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func principal(id, team, user string) *gateway.Principal {
	return &gateway.Principal{Key: &gateway.Key{ID: id, TeamID: team, UserID: user}}
}

func newCache(t *testing.T) (*Cache, *flakyStore, *clock) {
	t.Helper()
	st := &flakyStore{keys: map[string]*gateway.Principal{
		"k1": principal("k1", "t1", "u1"),
		"k2": principal("k2", "t2", "u2"),
	}}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c, err := New(Config{Store: st, Size: 100, TTL: time.Minute, NegTTL: 5 * time.Second, StaleFor: 5 * time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return c, st, clk
}

func TestCacheHitsAndTTL(t *testing.T) {
	c, st, clk := newCache(t)
	ctx := t.Context()
	for range 3 {
		if _, err := c.PrincipalByKeyHash(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("store calls after 3 lookups = %d, want 1", n)
	}
	clk.advance(61 * time.Second)
	if _, err := c.PrincipalByKeyHash(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("store calls after the TTL = %d, want 2", n)
	}
}

func TestCacheInvalidate(t *testing.T) {
	tests := []struct {
		name     string
		changes  []gateway.Change
		wantGone []string
		wantKept []string
	}{
		{"key", []gateway.Change{{Kind: "key", ID: "k1"}}, []string{"k1"}, []string{"k2"}},
		{"team", []gateway.Change{{Kind: "team", ID: "t2"}}, []string{"k2"}, []string{"k1"}},
		{"user", []gateway.Change{{Kind: "user", ID: "u1"}}, []string{"k1"}, []string{"k2"}},
		{"flush", nil, []string{"k1", "k2"}, nil},
		{"unknown kind flushes", []gateway.Change{{Kind: "model", ID: "x"}}, []string{"k1", "k2"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, st, _ := newCache(t)
			ctx := t.Context()
			for _, k := range []string{"k1", "k2"} {
				if _, err := c.PrincipalByKeyHash(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			c.Invalidate(tc.changes)
			for _, k := range tc.wantGone {
				before := st.calls.Load()
				_, _ = c.PrincipalByKeyHash(ctx, k)
				if st.calls.Load() == before {
					t.Errorf("%s still cached after Invalidate(%v)", k, tc.changes)
				}
			}
			for _, k := range tc.wantKept {
				before := st.calls.Load()
				_, _ = c.PrincipalByKeyHash(ctx, k)
				if st.calls.Load() != before {
					t.Errorf("%s dropped by Invalidate(%v)", k, tc.changes)
				}
			}
		})
	}
}

func TestCacheNegativeEntryInvalidatedOnCreate(t *testing.T) {
	c, st, _ := newCache(t)
	ctx := t.Context()
	if _, err := c.PrincipalByKeyHash(ctx, "k3"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("unknown key error = %v, want ErrNotFound", err)
	}
	st.keys["k3"] = principal("k3", "", "")
	c.Invalidate([]gateway.Change{{Kind: "key", ID: "k3"}})
	if _, err := c.PrincipalByKeyHash(ctx, "k3"); err != nil {
		t.Fatalf("created key after invalidation: %v", err)
	}
}

func TestCacheStoreDown(t *testing.T) {
	c, st, clk := newCache(t)
	ctx := t.Context()
	if _, err := c.PrincipalByKeyHash(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	clk.advance(2 * time.Minute) // past the TTL, within TTL+StaleFor

	if p, err := c.PrincipalByKeyHash(ctx, "k1"); err != nil || p.Key.ID != "k1" {
		t.Errorf("cached key while the store is down = %v, %v; want it served", p, err)
	}
	if _, err := c.PrincipalByKeyHash(ctx, "k2"); !errors.Is(err, gateway.ErrUnavailable) {
		t.Errorf("uncached key while the store is down: error = %v, want ErrUnavailable", err)
	}
	clk.advance(5 * time.Minute) // past TTL+StaleFor
	if _, err := c.PrincipalByKeyHash(ctx, "k1"); !errors.Is(err, gateway.ErrUnavailable) {
		t.Errorf("cached key beyond the stale bound: error = %v, want ErrUnavailable", err)
	}
	st.down.Store(false)
	if _, err := c.PrincipalByKeyHash(ctx, "k2"); err != nil {
		t.Errorf("after the store returns: %v", err)
	}
	if s := c.Stats(); s.Stale != 1 {
		t.Errorf("Stats().Stale = %d, want 1", s.Stale)
	}
}

func TestCacheBounded(t *testing.T) {
	st := &flakyStore{keys: map[string]*gateway.Principal{}}
	c, _ := New(Config{Store: st, Size: 10})
	for i := range 50 {
		_, _ = c.PrincipalByKeyHash(t.Context(), string(rune('a'+i)))
	}
	if n := c.Stats().Size; n > 10 {
		t.Errorf("cache size = %d, want at most 10", n)
	}
}

func BenchmarkCachedLookup(b *testing.B) {
	st := &flakyStore{keys: map[string]*gateway.Principal{"k1": principal("k1", "t", "u")}}
	c, _ := New(Config{Store: st})
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.PrincipalByKeyHash(ctx, "k1"); err != nil {
			b.Fatal(err)
		}
	}
}
