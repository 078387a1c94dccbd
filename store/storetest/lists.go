package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

func testDeleteKeys(t *testing.T, s gateway.Store) {
	seed(t, s)
	ctx := t.Context()
	a, b, c := newKey("sk-delete-a", "t1", ""), newKey("sk-delete-b", "", "u1"), newKey("sk-delete-c", "t1", "u1")
	for _, k := range []*gateway.Key{&a, &b, &c} {
		mustCreateKey(t, s, k)
	}
	ghost := gateway.HashKey("sk-ghost")
	tests := []struct {
		name string
		del  []string
		want []string
	}{
		{"existing and missing, repeated", []string{b.ID, ghost, a.ID, b.ID}, []string{b.ID, a.ID}},
		{"already deleted", []string{a.ID}, nil},
		{"empty", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DeleteKeys(ctx, tc.del)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("DeleteKeys = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, k := range []gateway.Key{a, b} {
		if _, err := s.GetKey(ctx, k.ID); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("GetKey(deleted %s) = %v, want ErrNotFound", k.Display, err)
		}
		if _, err := s.PrincipalByKeyHash(ctx, k.ID); !errors.Is(err, gateway.ErrNotFound) {
			t.Errorf("PrincipalByKeyHash(deleted %s) = %v, want ErrNotFound", k.Display, err)
		}
	}
	mustGetKey(t, s, c.ID)
	// Deleting keys leaves their team and user.
	mustGetTeam(t, s, "t1")
	mustGetUser(t, s, "u1")
}

func testDeleteCascades(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	setup := func(t *testing.T) map[string]gateway.Key {
		t.Helper()
		seed(t, s)
		keys := map[string]gateway.Key{
			"t1u1": newKey("sk-cascade-t1u1", "t1", "u1"),
			"t1":   newKey("sk-cascade-t1", "t1", ""),
			"t2u1": newKey("sk-cascade-t2u1", "t2", "u1"),
			"u1":   newKey("sk-cascade-u1", "", "u1"),
			"u2":   newKey("sk-cascade-u2", "", "u2"),
			"none": newKey("sk-cascade-none", "", ""),
		}
		for _, k := range keys {
			mustCreateKey(t, s, &k)
		}
		return keys
	}
	tests := []struct {
		name     string
		del      func() ([]string, error)
		want     []string
		gone     []string // keys deleted with them
		survives []string
		gonePart func(id string) error
	}{
		{"teams", func() ([]string, error) { return s.DeleteTeams(ctx, []string{"t1", "ghost", "t1"}) },
			[]string{"t1"}, []string{"t1u1", "t1"}, []string{"t2u1", "u1", "u2", "none"},
			func(id string) error { _, err := s.GetTeam(ctx, id); return err }},
		{"users", func() ([]string, error) { return s.DeleteUsers(ctx, []string{"ghost", "u1"}) },
			[]string{"u1"}, []string{"t1u1", "t2u1", "u1"}, []string{"t1", "u2", "none"},
			func(id string) error { _, err := s.GetUser(ctx, id); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := setup(t)
			t.Cleanup(func() {
				_, _ = s.DeleteTeams(ctx, []string{"t1", "t2"})
				_, _ = s.DeleteUsers(ctx, []string{"u1", "u2"})
				_, _ = s.DeleteKeys(ctx, []string{keys["none"].ID})
			})
			got, err := tc.del()
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("delete = %q, %v; want %q", got, err, tc.want)
			}
			for _, id := range tc.want {
				if err := tc.gonePart(id); !errors.Is(err, gateway.ErrNotFound) {
					t.Errorf("get deleted %q = %v, want ErrNotFound", id, err)
				}
			}
			for _, name := range tc.gone {
				if _, err := s.GetKey(ctx, keys[name].ID); !errors.Is(err, gateway.ErrNotFound) {
					t.Errorf("GetKey(%s) after the delete = %v, want ErrNotFound (cascade)", name, err)
				}
			}
			for _, name := range tc.survives {
				if _, err := s.GetKey(ctx, keys[name].ID); err != nil {
					t.Errorf("GetKey(%s) after the delete = %v, want it kept", name, err)
				}
			}
		})
	}
}

func testListKeys(t *testing.T, s gateway.Store) {
	seed(t, s)
	ctx := t.Context()
	names := []struct{ plain, team, user string }{
		{"sk-list-1", "t1", "u1"}, {"sk-list-2", "t1", "u1"}, {"sk-list-3", "t1", "u2"},
		{"sk-list-4", "t2", "u1"}, {"sk-list-5", "", "u2"}, {"sk-list-6", "", ""},
	}
	byHash := map[string]gateway.Key{}
	for _, n := range names {
		k := newKey(n.plain, n.team, n.user)
		mustCreateKey(t, s, &k)
		byHash[k.ID] = k
	}
	filters := []struct {
		name string
		f    gateway.KeyFilter
		want int
	}{
		{"all", gateway.KeyFilter{}, 6},
		{"team", gateway.KeyFilter{TeamID: "t1"}, 3},
		{"user", gateway.KeyFilter{UserID: "u1"}, 3},
		{"team and user", gateway.KeyFilter{TeamID: "t1", UserID: "u1"}, 2},
		{"unknown team", gateway.KeyFilter{TeamID: "ghost"}, 0},
		{"page beyond the end", gateway.KeyFilter{Page: 2}, 0},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListKeys(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Fatalf("ListKeys(%+v) = %d keys, %v; want %d", tc.f, len(got), err, tc.want)
			}
			for _, k := range got {
				want, ok := byHash[k.ID]
				if !ok {
					t.Fatalf("ListKeys(%+v) returned unknown key %s", tc.f, k.Display)
				}
				if (tc.f.TeamID != "" && k.TeamID != tc.f.TeamID) || (tc.f.UserID != "" && k.UserID != tc.f.UserID) {
					t.Errorf("ListKeys(%+v) returned %s of team %q user %q", tc.f, k.Display, k.TeamID, k.UserID)
				}
				if d := diffKey(k, &want); d != "" {
					t.Errorf("ListKeys(%+v) record: %s", tc.f, d)
				}
			}
		})
	}
	t.Run("paging", func(t *testing.T) {
		all, err := s.ListKeys(ctx, gateway.KeyFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 2, 4, 5} {
			var paged []string
			for page := 0; page <= 7; page++ { // page 0 means 1
				got, err := s.ListKeys(ctx, gateway.KeyFilter{Page: page, Size: size})
				if err != nil || len(got) > size {
					t.Fatalf("ListKeys(page %d, size %d) = %d keys, %v; want at most %d", page, size, len(got), err, size)
				}
				if page == 0 {
					continue
				}
				for _, k := range got {
					paged = append(paged, k.ID)
				}
			}
			var want []string
			for _, k := range all {
				want = append(want, k.ID)
			}
			if !slices.Equal(paged, want) {
				t.Errorf("pages of size %d = %q, want the full list in order %q", size, paged, want)
			}
		}
		first, err := s.ListKeys(ctx, gateway.KeyFilter{Page: 0, Size: 2})
		if err != nil || len(first) != 2 || first[0].ID != all[0].ID {
			t.Errorf("ListKeys(page 0) = %d keys, %v; want page 1", len(first), err)
		}
	})
}

func testListTeamsAndUsers(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	if teams, err := s.ListTeams(ctx); err != nil || len(teams) != 0 {
		t.Fatalf("ListTeams(empty store) = %d, %v; want none", len(teams), err)
	}
	if users, err := s.ListUsers(ctx); err != nil || len(users) != 0 {
		t.Fatalf("ListUsers(empty store) = %d, %v; want none", len(users), err)
	}
	// Created out of order; listed by id, byte order.
	ids := []string{"b", "a", "B", "c-2", "c-10", "ä"}
	for _, id := range ids {
		mustCreateTeam(t, s, &gateway.Team{ID: id, Alias: "team " + id})
		mustCreateUser(t, s, &gateway.User{ID: id, Email: id + "@example.com"})
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	teams, err := s.ListTeams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tm := range teams {
		got = append(got, tm.ID)
		if tm.Alias != "team "+tm.ID {
			t.Errorf("ListTeams team %q alias = %q, want %q", tm.ID, tm.Alias, "team "+tm.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListTeams = %q, want %q", got, want)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, u := range users {
		got = append(got, u.ID)
		if u.Email != u.ID+"@example.com" {
			t.Errorf("ListUsers user %q email = %q", u.ID, u.Email)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListUsers = %q, want %q", got, want)
	}
}

// seedConfig is what a configuration file would seed.
func seedConfig() ([]gateway.Team, []gateway.User, []gateway.Key) {
	teams := []gateway.Team{{ID: "research", Alias: "Research", Models: []string{"default-models"},
		ModelAliases: map[string]string{"fast": "gpt-4o-mini"}, Metadata: map[string]any{"n": 1},
		Limits: gateway.Limits{MaxBudget: ptr(100.0), BudgetDuration: "30d"}}}
	users := []gateway.User{{ID: "alice", Email: "alice@example.com", Role: gateway.RoleInternalUser,
		Limits: gateway.Limits{RPMLimit: ptr(int64(60))}}}
	k1 := newKey("sk-seed-alice-1", "research", "alice")
	k1.Alias, k1.Models = "alice-laptop", []string{"gpt-4o"}
	k1.Limits, k1.ModelLimits = fullLimits(), fullModelLimits()
	k2 := newKey("sk-seed-alice-2", "", "alice")
	k2.ExpiresAt = time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)
	return teams, users, []gateway.Key{k1, k2}
}

func testUpsert(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	teams, users, keys := seedConfig()
	if err := s.Upsert(ctx, teams, users, keys); err != nil {
		t.Fatalf("Upsert(new) = %v, want nil", err)
	}
	snapshot := func() (*gateway.Team, *gateway.User, []*gateway.Key) {
		return mustGetTeam(t, s, "research"), mustGetUser(t, s, "alice"),
			[]*gateway.Key{mustGetKey(t, s, keys[0].ID), mustGetKey(t, s, keys[1].ID)}
	}
	team0, user0, keys0 := snapshot()
	if d := diffTeam(team0, &teams[0]); d != "" || team0.CreatedAt.IsZero() {
		t.Errorf("team after Upsert: %s (CreatedAt %v)", d, team0.CreatedAt)
	}
	if d := diffUser(user0, &users[0]); d != "" {
		t.Errorf("user after Upsert: %s", d)
	}
	for i := range keys {
		if d := diffKey(keys0[i], &keys[i]); d != "" {
			t.Errorf("key %d after Upsert: %s", i, d)
		}
	}
	// An admin-created key of the seeded team is not the seed's business.
	extra := newKey("sk-admin-made-key", "research", "")
	mustCreateKey(t, s, &extra)

	t.Run("again is a no-op", func(t *testing.T) {
		teams, users, keys := seedConfig()
		if err := s.Upsert(ctx, teams, users, keys); err != nil {
			t.Fatalf("Upsert(same) = %v, want nil", err)
		}
		team1, user1, keys1 := snapshot()
		if d := diffTeam(team1, team0); d != "" {
			t.Errorf("team after a second Upsert: %s", d)
		}
		if d := diffUser(user1, user0); d != "" {
			t.Errorf("user after a second Upsert: %s", d)
		}
		for i := range keys1 {
			if d := diffKey(keys1[i], keys0[i]); d != "" {
				t.Errorf("key %d after a second Upsert: %s", i, d)
			}
		}
	})
	t.Run("replaces whole records", func(t *testing.T) {
		teams, users, keys := seedConfig()
		teams[0].Alias, teams[0].ModelAliases, teams[0].Blocked = "R&D", nil, true
		users[0].Email = "alice@new.example.com"
		keys[0].Models, keys[0].TeamID, keys[0].Alias = nil, "", ""
		keys[1].ExpiresAt = time.Time{}
		teams[0].Limits.MaxBudget, users[0].Limits = ptr(50.0), gateway.Limits{}
		keys[0].Limits.RPMLimit, keys[0].ModelLimits.TPM = nil, nil
		keys[1].Limits.TPMLimit = ptr(int64(0))
		if err := s.Upsert(ctx, teams, users, keys); err != nil {
			t.Fatalf("Upsert(changed) = %v, want nil", err)
		}
		team1, user1, keys1 := snapshot()
		teams[0].CreatedAt, users[0].CreatedAt = team0.CreatedAt, user0.CreatedAt
		if d := diffTeam(team1, &teams[0]); d != "" {
			t.Errorf("team after a changing Upsert: %s", d)
		}
		if d := diffUser(user1, &users[0]); d != "" {
			t.Errorf("user after a changing Upsert: %s", d)
		}
		for i := range keys {
			keys[i].CreatedAt = keys0[i].CreatedAt
			if d := diffKey(keys1[i], &keys[i]); d != "" {
				t.Errorf("key %d after a changing Upsert: %s", i, d)
			}
		}
		if _, err := s.GetKey(ctx, extra.ID); err != nil {
			t.Errorf("GetKey(admin-made key of the upserted team) = %v, want it kept", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if err := s.Upsert(ctx, nil, nil, nil); err != nil {
			t.Errorf("Upsert(nothing) = %v, want nil", err)
		}
	})
}

func testUpsertAtomic(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	tests := []struct {
		name    string
		teams   []gateway.Team
		users   []gateway.User
		keys    []gateway.Key
		wantErr error // nil: any error
	}{
		{"key of a missing team",
			[]gateway.Team{{ID: "new-team"}}, []gateway.User{{ID: "new-user"}},
			[]gateway.Key{newKey("sk-atomic-ok", "new-team", "new-user"), newKey("sk-atomic-bad", "ghost", "")},
			gateway.ErrNotFound},
		{"key of a missing user",
			[]gateway.Team{{ID: "new-team"}}, []gateway.User{{ID: "new-user"}},
			[]gateway.Key{newKey("sk-atomic-ok", "new-team", "new-user"), newKey("sk-atomic-bad", "", "ghost")},
			gateway.ErrNotFound},
		{"key id not a hash",
			[]gateway.Team{{ID: "new-team"}}, []gateway.User{{ID: "new-user"}},
			[]gateway.Key{newKey("sk-atomic-ok", "new-team", "new-user"), {ID: "sk-plaintext"}},
			nil},
		{"empty team id",
			[]gateway.Team{{ID: "new-team"}, {}}, []gateway.User{{ID: "new-user"}},
			[]gateway.Key{newKey("sk-atomic-ok", "new-team", "new-user")},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Upsert(ctx, tc.teams, tc.users, tc.keys)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Upsert = %v, want an error (%v)", err, tc.wantErr)
			}
			if _, err := s.GetTeam(ctx, "new-team"); !errors.Is(err, gateway.ErrNotFound) {
				t.Errorf("GetTeam(new-team) after a failed Upsert = %v, want ErrNotFound (half-written)", err)
			}
			if _, err := s.GetUser(ctx, "new-user"); !errors.Is(err, gateway.ErrNotFound) {
				t.Errorf("GetUser(new-user) after a failed Upsert = %v, want ErrNotFound (half-written)", err)
			}
			if _, err := s.GetKey(ctx, gateway.HashKey("sk-atomic-ok")); !errors.Is(err, gateway.ErrNotFound) {
				t.Errorf("GetKey(ok key) after a failed Upsert = %v, want ErrNotFound (half-written)", err)
			}
		})
	}
}
