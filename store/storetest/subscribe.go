package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

func testSubscribe(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	r := subscribe(t, ctx, s)
	k1 := newKey("sk-sub-k1", "t1", "")
	k2 := newKey("sk-sub-k2", "t1", "u1")
	k3 := newKey("sk-sub-k3", "t2", "")
	team := func(id string) gateway.Change { return gateway.Change{Kind: "team", ID: id} }
	user := func(id string) gateway.Change { return gateway.Change{Kind: "user", ID: id} }
	key := func(k gateway.Key) gateway.Change { return gateway.Change{Kind: "key", ID: k.ID} }
	writes := []struct {
		name string
		do   func() error
		want []gateway.Change
	}{
		{"CreateTeam", func() error { return s.CreateTeam(ctx, &gateway.Team{ID: "t1"}) }, []gateway.Change{team("t1")}},
		{"CreateUser with a key", func() error { return s.CreateUser(ctx, &gateway.User{ID: "u1"}, &k2) },
			[]gateway.Change{user("u1"), key(k2)}},
		{"CreateKey", func() error { return s.CreateKey(ctx, &k1) }, []gateway.Change{key(k1)}},
		{"UpdateKey", func() error {
			_, err := s.UpdateKey(ctx, k1.ID, func(k *gateway.Key) error { k.Blocked = true; return nil })
			return err
		}, []gateway.Change{key(k1)}},
		{"UpdateTeam", func() error {
			_, err := s.UpdateTeam(ctx, "t1", func(t *gateway.Team) error { t.Models = []string{"x"}; return nil })
			return err
		}, []gateway.Change{team("t1")}},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, "u1", func(u *gateway.User) error { u.Email = "u1@example.com"; return nil })
			return err
		}, []gateway.Change{user("u1")}},
		{"Upsert", func() error { return s.Upsert(ctx, []gateway.Team{{ID: "t2"}}, nil, []gateway.Key{k3}) },
			[]gateway.Change{team("t2"), key(k3)}},
		{"DeleteKeys", func() error { _, err := s.DeleteKeys(ctx, []string{k1.ID}); return err }, []gateway.Change{key(k1)}},
		{"DeleteTeams names the cascaded keys", func() error { _, err := s.DeleteTeams(ctx, []string{"t2"}); return err },
			[]gateway.Change{team("t2"), key(k3)}},
		{"DeleteUsers names the cascaded keys", func() error { _, err := s.DeleteUsers(ctx, []string{"u1"}); return err },
			[]gateway.Change{user("u1"), key(k2)}},
	}
	for _, tc := range writes {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err != nil {
				t.Fatalf("%s = %v, want nil", tc.name, err)
			}
			if got := r.next(t, tc.name); !contains(got, tc.want) {
				t.Errorf("%s: subscriber got %v, want %v", tc.name, got, tc.want)
			}
		})
	}

	// Writes that change nothing announce nothing: the next batch after
	// each is the marker's.
	mustCreateTeam(t, s, &gateway.Team{ID: "marker"})
	r.next(t, "create marker")
	teams, users, keys := seedConfig()
	if err := s.Upsert(ctx, teams, users, keys); err != nil {
		t.Fatal(err)
	}
	r.next(t, "seed")
	silent := []struct {
		name string
		do   func()
	}{
		{"failed UpdateTeam", func() {
			_, _ = s.UpdateTeam(ctx, "marker", func(t *gateway.Team) error { t.Alias = "x"; return errBoom })
		}},
		{"failed CreateTeam", func() { _ = s.CreateTeam(ctx, &gateway.Team{ID: "marker"}) }},
		{"failed Upsert", func() {
			_ = s.Upsert(ctx, []gateway.Team{{ID: "never"}}, nil, []gateway.Key{newKey("sk-never", "ghost", "")})
		}},
		{"unchanged Upsert", func() { _ = s.Upsert(ctx, teams, users, keys) }},
		{"DeleteKeys of missing keys", func() { _, _ = s.DeleteKeys(ctx, []string{gateway.HashKey("sk-ghost")}) }},
	}
	for i, tc := range silent {
		t.Run(tc.name, func(t *testing.T) {
			tc.do()
			_, err := s.UpdateTeam(ctx, "marker", func(t *gateway.Team) error { t.Metadata = map[string]any{"i": i}; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if got := r.next(t, tc.name); !slices.Equal(got, []gateway.Change{team("marker")}) {
				t.Errorf("after %s the next change batch = %v, want only the marker's %v", tc.name, got, team("marker"))
			}
		})
	}
}

func testSubscribeEnds(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	ended, cancel := context.WithCancel(ctx)
	gone := subscribe(t, ended, s)
	live := subscribe(t, ctx, s)
	mustCreateTeam(t, s, &gateway.Team{ID: "before"})
	gone.next(t, "before cancel")
	live.next(t, "before cancel")
	cancel()
	// Subscribing with an ended context never delivers (an error is fine).
	dead := &recorder{ch: make(chan []gateway.Change, 10)}
	_ = s.Subscribe(ended, func(ch []gateway.Change) { dead.ch <- ch })

	for _, id := range []string{"after-1", "after-2"} {
		mustCreateTeam(t, s, &gateway.Team{ID: id})
		live.next(t, id)
	}
	for name, r := range map[string]*recorder{"ended subscription": gone, "subscription with an ended context": dead} {
		select {
		case ch := <-r.ch:
			t.Errorf("%s received %v, want nothing", name, ch)
		default:
		}
	}
}

func testSubscribersGetCopies(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	firsts := make(chan gateway.Change, 2)
	for range 2 {
		err := s.Subscribe(ctx, func(ch []gateway.Change) {
			if len(ch) > 0 {
				firsts <- ch[0]
				ch[0].ID = "mutated by a subscriber"
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mustCreateTeam(t, s, &gateway.Team{ID: "shared"})
	for range 2 {
		select {
		case got := <-firsts:
			if got != (gateway.Change{Kind: "team", ID: "shared"}) {
				t.Errorf("subscriber got %v, want its own unmodified copy of team shared", got)
			}
		case <-time.After(deliveryTimeout):
			t.Fatalf("no change delivered within %v", deliveryTimeout)
		}
	}
}

func testPing(t *testing.T, s gateway.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}
