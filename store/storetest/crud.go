package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// nestedMetadata exercises every JSON type, nested.
func nestedMetadata() map[string]any {
	return map[string]any{
		"cost_center": "r&d",
		"limits":      map[string]any{"rpm": 60, "burst": 1.5, "tags": []any{"a", 2, true, nil, map[string]any{"deep": []any{}}}},
		"enabled":     true,
		"nothing":     nil,
		"unicode":     "café ☕ \"quoted\"",
	}
}

func testKeyRoundTrip(t *testing.T, s gateway.Store) {
	seed(t, s)
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		key  gateway.Key
	}{
		{"minimal", gateway.Key{ID: gateway.HashKey("sk-minimal")}},
		{"full", gateway.Key{
			ID: gateway.HashKey("sk-full-key-0001"), Display: gateway.Redact("sk-full-key-0001"),
			Alias: "alice-laptop", Role: gateway.RoleAdmin,
			Models:  []string{"gpt-4o", "openai/*", "all-team-models", "gpt-4o"},
			Aliases: map[string]string{"coder": "gpt-4o", "fast": "gpt-4o-mini"},
			TeamID:  "t1", UserID: "u1", Metadata: nestedMetadata(), Blocked: true,
			// Nanoseconds and a zone: stores keep the instant to the microsecond.
			ExpiresAt: time.Date(2031, 2, 3, 4, 5, 6, 123456789, berlin),
			CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 678000, time.UTC),
		}},
		{"empty lists and maps", gateway.Key{
			ID: gateway.HashKey("sk-empty-things"), Models: []string{}, Aliases: map[string]string{},
			Metadata: map[string]any{}, UserID: "u2",
		}},
		{"team only", gateway.Key{ID: gateway.HashKey("sk-team-only"), TeamID: "t2", Display: "sk-..."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key
			before := time.Now().Add(-time.Minute)
			mustCreateKey(t, s, &k)
			switch {
			case tc.key.CreatedAt.IsZero() && (k.CreatedAt.IsZero() || k.CreatedAt.Before(before)):
				t.Errorf("CreateKey set CreatedAt = %v, want about now", k.CreatedAt)
			case !tc.key.CreatedAt.IsZero() && !k.CreatedAt.Equal(tc.key.CreatedAt):
				t.Errorf("CreateKey changed CreatedAt %v to %v, want it kept", tc.key.CreatedAt, k.CreatedAt)
			}
			want := tc.key
			want.CreatedAt = k.CreatedAt
			if d := diffKey(mustGetKey(t, s, k.ID), &want); d != "" {
				t.Errorf("GetKey after CreateKey: %s", d)
			}
			p, err := s.PrincipalByKeyHash(t.Context(), k.ID)
			if err != nil {
				t.Fatalf("PrincipalByKeyHash = %v, want nil", err)
			}
			if d := diffKey(p.Key, &want); d != "" {
				t.Errorf("PrincipalByKeyHash key: %s", d)
			}
		})
	}
}

func testTeamRoundTrip(t *testing.T, s gateway.Store) {
	tests := []struct {
		name string
		team gateway.Team
	}{
		{"minimal", gateway.Team{ID: "minimal"}},
		{"full", gateway.Team{
			ID: "research", Alias: "Research", Models: []string{"default-models", "bedrock/*"},
			ModelAliases: map[string]string{"fast": "gpt-4o-mini"}, Blocked: true,
			Metadata: nestedMetadata(), CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		}},
		{"unusual id", gateway.Team{ID: "Team/With Spaces:ünïcode", Models: []string{}, ModelAliases: map[string]string{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm := tc.team
			mustCreateTeam(t, s, &tm)
			if tm.CreatedAt.IsZero() {
				t.Errorf("CreateTeam left CreatedAt zero")
			}
			want := tc.team
			want.CreatedAt = tm.CreatedAt
			if d := diffTeam(mustGetTeam(t, s, tm.ID), &want); d != "" {
				t.Errorf("GetTeam after CreateTeam: %s", d)
			}
		})
	}
}

func testUserRoundTrip(t *testing.T, s gateway.Store) {
	mustCreateTeam(t, s, &gateway.Team{ID: "t1"})
	tests := []struct {
		name string
		user gateway.User
		key  *gateway.Key
	}{
		{"minimal", gateway.User{ID: "minimal"}, nil},
		{"full", gateway.User{
			ID: "alice", Email: "alice@example.com", Role: gateway.RoleProxyAdmin,
			Models: []string{"no-default-models"}, Metadata: nestedMetadata(),
		}, nil},
		{"with key", gateway.User{ID: "bob", Role: gateway.RoleInternalUser},
			&gateway.Key{ID: gateway.HashKey("sk-bob-first-key"), Display: gateway.Redact("sk-bob-first-key"), TeamID: "t1"}},
		{"with key naming the user", gateway.User{ID: "carol"},
			&gateway.Key{ID: gateway.HashKey("sk-carol-key"), UserID: "carol"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.user
			var k *gateway.Key
			if tc.key != nil {
				kc := *tc.key
				k = &kc
			}
			if err := s.CreateUser(t.Context(), &u, k); err != nil {
				t.Fatalf("CreateUser(%q) = %v, want nil", u.ID, err)
			}
			want := tc.user
			want.CreatedAt = u.CreatedAt
			if d := diffUser(mustGetUser(t, s, u.ID), &want); d != "" {
				t.Errorf("GetUser after CreateUser: %s", d)
			}
			if k == nil {
				return
			}
			if k.UserID != u.ID || k.CreatedAt.IsZero() {
				t.Errorf("CreateUser left its key with UserID %q, CreatedAt %v; want %q and a time", k.UserID, k.CreatedAt, u.ID)
			}
			wantKey := *tc.key
			wantKey.UserID = u.ID
			p, err := s.PrincipalByKeyHash(t.Context(), k.ID)
			if err != nil {
				t.Fatalf("PrincipalByKeyHash(new user's key) = %v, want nil", err)
			}
			if d := diffKey(p.Key, &wantKey); d != "" {
				t.Errorf("new user's key: %s", d)
			}
			if p.User == nil || p.User.ID != u.ID {
				t.Errorf("new user's key principal user = %+v, want %q", p.User, u.ID)
			}
		})
	}
}

func testCreateErrors(t *testing.T, s gateway.Store) {
	seed(t, s)
	ctx := t.Context()
	existing := newKey("sk-existing-key", "t1", "u1")
	mustCreateKey(t, s, &existing)
	tests := []struct {
		name    string
		create  func() error
		wantErr error // nil: any error
		// absent must not exist afterwards.
		absentUser, absentKey string
	}{
		{"duplicate key", func() error { k := newKey("sk-existing-key", "", ""); return s.CreateKey(ctx, &k) }, gateway.ErrConflict, "", ""},
		{"duplicate team", func() error { return s.CreateTeam(ctx, &gateway.Team{ID: "t1"}) }, gateway.ErrConflict, "", ""},
		{"duplicate user", func() error { return s.CreateUser(ctx, &gateway.User{ID: "u1"}, nil) }, gateway.ErrConflict, "", ""},
		{"key of a missing team", func() error { k := newKey("sk-ghost-team", "ghost", "u1"); return s.CreateKey(ctx, &k) },
			gateway.ErrNotFound, "", gateway.HashKey("sk-ghost-team")},
		{"key of a missing user", func() error { k := newKey("sk-ghost-user", "t1", "ghost"); return s.CreateKey(ctx, &k) },
			gateway.ErrNotFound, "", gateway.HashKey("sk-ghost-user")},
		{"key id not a hash", func() error { return s.CreateKey(ctx, &gateway.Key{ID: "sk-plaintext-key"}) }, nil, "", ""},
		{"key id in upper case", func() error {
			k := newKey("sk-upper", "", "")
			k.ID = "A" + k.ID[1:]
			return s.CreateKey(ctx, &k)
		}, nil, "", ""},
		{"display shows too much", func() error {
			k := newKey("sk-display-leak", "", "")
			k.Display = "sk-...y-leak"
			return s.CreateKey(ctx, &k)
		}, nil, "", gateway.HashKey("sk-display-leak")},
		{"display is the plaintext", func() error {
			k := newKey("sk-display-plain", "", "")
			k.Display = "sk-display-plain"
			return s.CreateKey(ctx, &k)
		}, nil, "", gateway.HashKey("sk-display-plain")},
		{"empty team id", func() error { return s.CreateTeam(ctx, &gateway.Team{}) }, nil, "", ""},
		{"empty user id", func() error { return s.CreateUser(ctx, &gateway.User{}, nil) }, nil, "", ""},
		{"user with a key of a missing team", func() error {
			k := newKey("sk-new-user-ghost", "ghost", "")
			return s.CreateUser(ctx, &gateway.User{ID: "new1"}, &k)
		}, gateway.ErrNotFound, "new1", gateway.HashKey("sk-new-user-ghost")},
		{"user with a duplicate key", func() error {
			k := newKey("sk-existing-key", "", "")
			return s.CreateUser(ctx, &gateway.User{ID: "new2"}, &k)
		}, gateway.ErrConflict, "new2", ""},
		{"user with another user's key", func() error {
			k := newKey("sk-someone-elses", "", "u1")
			return s.CreateUser(ctx, &gateway.User{ID: "new3"}, &k)
		}, nil, "new3", gateway.HashKey("sk-someone-elses")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				want := "an error"
				if tc.wantErr != nil {
					want = fmt.Sprintf("an error wrapping %v", tc.wantErr)
				}
				t.Fatalf("create = %v, want %s", err, want)
			}
			if tc.absentUser != "" {
				if _, err := s.GetUser(ctx, tc.absentUser); !errors.Is(err, gateway.ErrNotFound) {
					t.Errorf("GetUser(%q) after the failed create = %v, want ErrNotFound (half-written)", tc.absentUser, err)
				}
			}
			if tc.absentKey != "" {
				if _, err := s.GetKey(ctx, tc.absentKey); !errors.Is(err, gateway.ErrNotFound) {
					t.Errorf("GetKey after the failed create = %v, want ErrNotFound", err)
				}
			}
		})
	}
	// The failed duplicate left the original alone.
	if d := diffKey(mustGetKey(t, s, existing.ID), &existing); d != "" {
		t.Errorf("existing key after duplicate creates: %s", d)
	}
}

func testMissing(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	ghost := gateway.HashKey("sk-never-created")
	called := false
	tests := []struct {
		name string
		call func() error
	}{
		{"GetKey", func() error { _, err := s.GetKey(ctx, ghost); return err }},
		{"GetTeam", func() error { _, err := s.GetTeam(ctx, "ghost"); return err }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "ghost"); return err }},
		{"PrincipalByKeyHash", func() error { _, err := s.PrincipalByKeyHash(ctx, ghost); return err }},
		{"PrincipalByKeyHash(not a hash)", func() error { _, err := s.PrincipalByKeyHash(ctx, "sk-x"); return err }},
		{"UpdateKey", func() error {
			_, err := s.UpdateKey(ctx, ghost, func(*gateway.Key) error { called = true; return nil })
			return err
		}},
		{"UpdateTeam", func() error {
			_, err := s.UpdateTeam(ctx, "ghost", func(*gateway.Team) error { called = true; return nil })
			return err
		}},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, "ghost", func(*gateway.User) error { called = true; return nil })
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called = false
			if err := tc.call(); !errors.Is(err, gateway.ErrNotFound) {
				t.Errorf("%s(missing) = %v, want ErrNotFound", tc.name, err)
			}
			if called {
				t.Errorf("%s(missing) called the update function", tc.name)
			}
		})
	}
	deletes := []struct {
		name string
		del  func() ([]string, error)
	}{
		{"DeleteKeys", func() ([]string, error) { return s.DeleteKeys(ctx, []string{ghost}) }},
		{"DeleteTeams", func() ([]string, error) { return s.DeleteTeams(ctx, []string{"ghost"}) }},
		{"DeleteUsers", func() ([]string, error) { return s.DeleteUsers(ctx, []string{"ghost"}) }},
		{"DeleteKeys(none)", func() ([]string, error) { return s.DeleteKeys(ctx, nil) }},
	}
	for _, tc := range deletes {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.del(); err != nil || len(got) != 0 {
				t.Errorf("%s(missing) = %q, %v; want nothing deleted and no error", tc.name, got, err)
			}
		})
	}
}

func testPrincipal(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	mustCreateTeam(t, s, &gateway.Team{ID: "research", Alias: "Research", Models: []string{"default-models"}})
	mustCreateUser(t, s, &gateway.User{ID: "alice", Email: "alice@example.com", Models: []string{"gpt-4o"}})
	keys := map[string]gateway.Key{
		"team and user": newKey("sk-team-and-user", "research", "alice"),
		"personal":      newKey("sk-personal-key", "", "alice"),
		"team only":     newKey("sk-team-only-key", "research", ""),
		"neither":       newKey("sk-lonely-key-01", "", ""),
	}
	for _, k := range keys {
		mustCreateKey(t, s, &k)
	}
	tests := []struct {
		name             string
		wantTeam, wantUs string
	}{
		{"team and user", "research", "alice"},
		{"personal", "", "alice"},
		{"team only", "research", ""},
		{"neither", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := keys[tc.name]
			p, err := s.PrincipalByKeyHash(ctx, k.ID)
			if err != nil {
				t.Fatalf("PrincipalByKeyHash = %v, want nil", err)
			}
			if p.Key == nil || p.Key.ID != k.ID {
				t.Fatalf("PrincipalByKeyHash key = %+v, want %s", p.Key, k.Display)
			}
			switch {
			case tc.wantTeam == "" && p.Team != nil:
				t.Errorf("PrincipalByKeyHash team = %+v, want nil", p.Team)
			case tc.wantTeam != "" && (p.Team == nil || p.Team.ID != tc.wantTeam || p.Team.Alias != "Research" ||
				len(p.Team.Models) != 1 || p.Team.Models[0] != "default-models"):
				t.Errorf("PrincipalByKeyHash team = %+v, want %q with its alias and models", p.Team, tc.wantTeam)
			}
			switch {
			case tc.wantUs == "" && p.User != nil:
				t.Errorf("PrincipalByKeyHash user = %+v, want nil", p.User)
			case tc.wantUs != "" && (p.User == nil || p.User.ID != tc.wantUs || p.User.Email != "alice@example.com" ||
				len(p.User.Models) != 1 || p.User.Models[0] != "gpt-4o"):
				t.Errorf("PrincipalByKeyHash user = %+v, want %q with its email and models", p.User, tc.wantUs)
			}
		})
	}
	// A later write to the team shows in the next lookup.
	if _, err := s.UpdateTeam(ctx, "research", func(t *gateway.Team) error { t.Blocked = true; return nil }); err != nil {
		t.Fatalf("UpdateTeam = %v", err)
	}
	p, err := s.PrincipalByKeyHash(ctx, keys["team only"].ID)
	if err != nil || p.Team == nil || !p.Team.Blocked {
		t.Errorf("PrincipalByKeyHash after blocking the team = %+v, %v; want a blocked team", p, err)
	}
}

func testUpdateKey(t *testing.T, s gateway.Store) {
	seed(t, s)
	ctx := t.Context()
	orig := newKey("sk-update-me-0001", "t1", "u1")
	orig.Models = []string{"gpt-4o"}
	orig.Metadata = map[string]any{"v": 1}
	mustCreateKey(t, s, &orig)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		fn      func(k *gateway.Key) error
		wantErr error // nil with fail set: any error
		fail    bool
		change  func(k *gateway.Key) // applied to the expected record on success
	}{
		{"changes fields", func(k *gateway.Key) error {
			k.Models = append(k.Models, "gpt-4o-mini")
			k.Aliases = map[string]string{"fast": "gpt-4o-mini"}
			k.Metadata["v"] = 2
			k.Metadata["nested"] = map[string]any{"x": []any{1, "y"}}
			k.Blocked, k.ExpiresAt, k.Alias = true, exp, "renamed"
			return nil
		}, nil, false, func(k *gateway.Key) {
			k.Models = []string{"gpt-4o", "gpt-4o-mini"}
			k.Aliases = map[string]string{"fast": "gpt-4o-mini"}
			k.Metadata = map[string]any{"v": 2, "nested": map[string]any{"x": []any{1, "y"}}}
			k.Blocked, k.ExpiresAt, k.Alias = true, exp, "renamed"
		}},
		{"moves to another team and clears the user", func(k *gateway.Key) error {
			k.TeamID, k.UserID = "t2", ""
			return nil
		}, nil, false, func(k *gateway.Key) { k.TeamID, k.UserID = "t2", "" }},
		{"ignores CreatedAt", func(k *gateway.Key) error {
			k.CreatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			return nil
		}, nil, false, func(*gateway.Key) {}},
		{"fn error writes nothing", func(k *gateway.Key) error {
			k.Models, k.Blocked = []string{"changed"}, !k.Blocked
			return errBoom
		}, errBoom, true, nil},
		{"missing team writes nothing", func(k *gateway.Key) error {
			k.TeamID, k.Alias = "ghost", "changed"
			return nil
		}, gateway.ErrNotFound, true, nil},
		{"missing user writes nothing", func(k *gateway.Key) error {
			k.UserID, k.Alias = "ghost", "changed"
			return nil
		}, gateway.ErrNotFound, true, nil},
		{"hash cannot change", func(k *gateway.Key) error {
			k.ID = gateway.HashKey("sk-another")
			return nil
		}, nil, true, nil},
		{"display may not leak", func(k *gateway.Key) error {
			k.Display = "sk-update-me-0001"
			return nil
		}, nil, true, nil},
	}
	want := mustGetKey(t, s, orig.ID)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called, seenDiff := false, ""
			got, err := s.UpdateKey(ctx, orig.ID, func(k *gateway.Key) error {
				called, seenDiff = true, diffKey(k, want)
				return tc.fn(k)
			})
			if !called {
				t.Fatal("UpdateKey did not call fn")
			}
			if seenDiff != "" {
				t.Errorf("UpdateKey passed fn a record that is not the current one: %s", seenDiff)
			}
			if tc.fail {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("UpdateKey = %+v, %v; want an error (%v)", got, err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("UpdateKey = %v, want nil", err)
				}
				next := *want
				tc.change(&next)
				want = &next
				if d := diffKey(got, want); d != "" {
					t.Errorf("UpdateKey returned: %s", d)
				}
			}
			if d := diffKey(mustGetKey(t, s, orig.ID), want); d != "" {
				t.Errorf("GetKey after UpdateKey: %s", d)
			}
		})
	}
}

func testUpdateTeamAndUser(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	team := gateway.Team{ID: "t1", Alias: "One", Models: []string{"a"}}
	mustCreateTeam(t, s, &team)
	user := gateway.User{ID: "u1", Email: "one@example.com", Models: []string{"a"}}
	mustCreateUser(t, s, &user)
	k := newKey("sk-team-user-update", "t1", "u1")
	mustCreateKey(t, s, &k)

	got, err := s.UpdateTeam(ctx, "t1", func(t *gateway.Team) error {
		t.Alias, t.Models, t.Blocked = "Uno", nil, true
		t.ModelAliases = map[string]string{"x": "y"}
		t.Metadata = map[string]any{"k": "v"}
		t.CreatedAt = time.Time{}
		return nil
	})
	wantTeam := gateway.Team{ID: "t1", Alias: "Uno", Blocked: true, ModelAliases: map[string]string{"x": "y"},
		Metadata: map[string]any{"k": "v"}, CreatedAt: team.CreatedAt}
	if err != nil {
		t.Fatalf("UpdateTeam = %v, want nil", err)
	}
	for what, tm := range map[string]*gateway.Team{"returned": got, "stored": mustGetTeam(t, s, "t1")} {
		if d := diffTeam(tm, &wantTeam); d != "" {
			t.Errorf("UpdateTeam %s: %s", what, d)
		}
	}
	if _, err := s.UpdateTeam(ctx, "t1", func(t *gateway.Team) error { t.Alias = "changed"; return errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("UpdateTeam(fn fails) = %v, want the fn's error", err)
	}
	if _, err := s.UpdateTeam(ctx, "t1", func(t *gateway.Team) error { t.ID = "t9"; return nil }); err == nil {
		t.Error("UpdateTeam(changing the id) = nil, want an error")
	}
	if d := diffTeam(mustGetTeam(t, s, "t1"), &wantTeam); d != "" {
		t.Errorf("team after failed updates: %s", d)
	}

	gotU, err := s.UpdateUser(ctx, "u1", func(u *gateway.User) error {
		u.Email, u.Role, u.Models = "uno@example.com", gateway.RoleProxyAdmin, []string{"b", "c"}
		u.Metadata = map[string]any{"n": 1.25}
		return nil
	})
	wantUser := gateway.User{ID: "u1", Email: "uno@example.com", Role: gateway.RoleProxyAdmin,
		Models: []string{"b", "c"}, Metadata: map[string]any{"n": 1.25}, CreatedAt: user.CreatedAt}
	if err != nil {
		t.Fatalf("UpdateUser = %v, want nil", err)
	}
	for what, u := range map[string]*gateway.User{"returned": gotU, "stored": mustGetUser(t, s, "u1")} {
		if d := diffUser(u, &wantUser); d != "" {
			t.Errorf("UpdateUser %s: %s", what, d)
		}
	}
	if _, err := s.UpdateUser(ctx, "u1", func(u *gateway.User) error { u.Email = "changed"; return errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("UpdateUser(fn fails) = %v, want the fn's error", err)
	}
	if _, err := s.UpdateUser(ctx, "u1", func(u *gateway.User) error { u.ID = "u9"; return nil }); err == nil {
		t.Error("UpdateUser(changing the id) = nil, want an error")
	}
	if d := diffUser(mustGetUser(t, s, "u1"), &wantUser); d != "" {
		t.Errorf("user after failed updates: %s", d)
	}
	// Updating a team or user leaves its keys alone.
	if _, err := s.GetKey(ctx, k.ID); err != nil {
		t.Errorf("GetKey after updating its team and user = %v, want nil", err)
	}
}

func testConcurrentUpdates(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	mustCreateTeam(t, s, &gateway.Team{ID: "counter", Metadata: map[string]any{"n": 0}})
	const writers = 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			_, err := s.UpdateTeam(ctx, "counter", func(t *gateway.Team) error {
				n, _ := t.Metadata["n"].(float64)
				if i, ok := t.Metadata["n"].(int); ok {
					n = float64(i)
				}
				t.Metadata = map[string]any{"n": n + 1}
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent UpdateTeam = %v, want nil", err)
		}
	}
	got := mustGetTeam(t, s, "counter").Metadata["n"]
	if n, ok := got.(float64); !ok || n != writers {
		t.Errorf("counter after %d concurrent increments = %v, want %d (updates were lost)", writers, got, writers)
	}
}

func testIsolation(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	// Each call returns new records, sharing nothing with earlier ones.
	mkTeam := func() gateway.Team {
		return gateway.Team{ID: "t1", Models: []string{"a"}, ModelAliases: map[string]string{"x": "y"},
			Metadata: map[string]any{"nested": map[string]any{"list": []any{"v"}}}}
	}
	mkUser := func() gateway.User {
		return gateway.User{ID: "u1", Models: []string{"a"}, Metadata: map[string]any{"nested": map[string]any{"k": "v"}}}
	}
	mkKey := func() gateway.Key {
		k := newKey("sk-isolated-key-1", "t1", "u1")
		k.Models = []string{"a"}
		k.Aliases = map[string]string{"x": "y"}
		k.Metadata = map[string]any{"nested": map[string]any{"list": []any{"v"}}}
		return k
	}
	team, user, k := mkTeam(), mkUser(), mkKey()
	mustCreateTeam(t, s, &team)
	mustCreateUser(t, s, &user)
	mustCreateKey(t, s, &k)
	wantKey, wantTeam, wantUser := mkKey(), mkTeam(), mkUser()
	wantKey.CreatedAt, wantTeam.CreatedAt, wantUser.CreatedAt = k.CreatedAt, team.CreatedAt, user.CreatedAt

	mutateKey := func(k *gateway.Key) {
		if len(k.Models) > 0 {
			k.Models[0] = "mutated"
		}
		k.Aliases["x"] = "mutated"
		k.Metadata["nested"].(map[string]any)["list"].([]any)[0] = "mutated"
		k.Blocked = true
	}
	mutateTeam := func(t *gateway.Team) {
		t.Models[0] = "mutated"
		t.ModelAliases["x"] = "mutated"
		t.Metadata["nested"].(map[string]any)["list"].([]any)[0] = "mutated"
	}
	mutateUser := func(u *gateway.User) {
		u.Models[0] = "mutated"
		u.Metadata["nested"].(map[string]any)["k"] = "mutated"
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		if d := diffKey(mustGetKey(t, s, k.ID), &wantKey); d != "" {
			t.Errorf("key after mutating %s: %s", when, d)
		}
		if d := diffTeam(mustGetTeam(t, s, "t1"), &wantTeam); d != "" {
			t.Errorf("team after mutating %s: %s", when, d)
		}
		if d := diffUser(mustGetUser(t, s, "u1"), &wantUser); d != "" {
			t.Errorf("user after mutating %s: %s", when, d)
		}
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T)
	}{
		{"the records given to Create", func(*testing.T) { mutateKey(&k); mutateTeam(&team); mutateUser(&user) }},
		{"records returned by Get", func(t *testing.T) {
			mutateKey(mustGetKey(t, s, k.ID))
			mutateTeam(mustGetTeam(t, s, "t1"))
			mutateUser(mustGetUser(t, s, "u1"))
		}},
		{"a principal", func(t *testing.T) {
			p, err := s.PrincipalByKeyHash(ctx, wantKey.ID)
			if err != nil {
				t.Fatal(err)
			}
			mutateKey(p.Key)
			mutateTeam(p.Team)
			mutateUser(p.User)
		}},
		{"listed records", func(t *testing.T) {
			keys, _ := s.ListKeys(ctx, gateway.KeyFilter{})
			teams, _ := s.ListTeams(ctx)
			users, _ := s.ListUsers(ctx)
			if len(keys) != 1 || len(teams) != 1 || len(users) != 1 {
				t.Fatalf("lists = %d keys, %d teams, %d users; want 1 each", len(keys), len(teams), len(users))
			}
			mutateKey(keys[0])
			mutateTeam(teams[0])
			mutateUser(users[0])
		}},
		{"records returned by Update", func(t *testing.T) {
			gk, err := s.UpdateKey(ctx, wantKey.ID, func(*gateway.Key) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			mutateKey(gk)
			gt, err := s.UpdateTeam(ctx, "t1", func(*gateway.Team) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			mutateTeam(gt)
			gu, err := s.UpdateUser(ctx, "u1", func(*gateway.User) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			mutateUser(gu)
		}},
		{"the record in a failed Update", func(*testing.T) {
			_, _ = s.UpdateKey(ctx, wantKey.ID, func(k *gateway.Key) error { mutateKey(k); return errBoom })
			_, _ = s.UpdateTeam(ctx, "t1", func(t *gateway.Team) error { mutateTeam(t); return errBoom })
			_, _ = s.UpdateUser(ctx, "u1", func(u *gateway.User) error { mutateUser(u); return errBoom })
		}},
		{"the records given to Upsert", func(t *testing.T) {
			teams := []gateway.Team{mkTeam()}
			if err := s.Upsert(ctx, teams, nil, nil); err != nil {
				t.Fatal(err)
			}
			mutateTeam(&teams[0])
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.mutate(t)
			check(t, tc.name)
		})
	}
}
