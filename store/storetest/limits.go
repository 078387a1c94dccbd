package storetest

import (
	"testing"

	"github.com/regate/gateway/gateway"
)

func ptr[T any](v T) *T { return &v }

// fullLimits sets every limit, with values a careless store could lose: a
// fraction, 0 (which admits nothing and differs from unset) and a count
// past 2^53.
func fullLimits() gateway.Limits {
	return gateway.Limits{
		MaxBudget: ptr(12.345678901), BudgetDuration: "30d", SoftBudget: ptr(0.0),
		RPMLimit: ptr(int64(0)), TPMLimit: ptr(int64(1) << 60), MaxParallelRequests: ptr(int64(7)),
	}
}

func fullModelLimits() gateway.ModelLimits {
	return gateway.ModelLimits{
		RPM: map[string]int64{"gpt-4o": 10, "openai/gpt-5": 0},
		TPM: map[string]int64{"gpt-4o-mini": 100000},
		Budget: map[string]gateway.ModelBudget{
			"gpt-4o":      {BudgetLimit: 5.5, TimePeriod: "1d"},
			"gpt-4o-mini": {BudgetLimit: 0},
		},
	}
}

// testLimits: every limit field of keys, teams and users round-trips
// through create, get, the principal lookup and update, and an update
// clears limits as well as it sets them.
func testLimits(t *testing.T, s gateway.Store) {
	ctx := t.Context()
	team := gateway.Team{ID: "limited-team", Limits: fullLimits()}
	user := gateway.User{ID: "limited-user", Limits: gateway.Limits{MaxBudget: ptr(0.5), BudgetDuration: "1h", RPMLimit: ptr(int64(3))}}
	mustCreateTeam(t, s, &team)
	mustCreateUser(t, s, &user)
	key := newKey("sk-limited-key", team.ID, user.ID)
	key.Limits, key.ModelLimits = fullLimits(), fullModelLimits()
	mustCreateKey(t, s, &key)

	check := func(t *testing.T, what string, k gateway.Key, tm gateway.Team, u gateway.User) {
		t.Helper()
		if d := diffKey(mustGetKey(t, s, k.ID), &k); d != "" {
			t.Errorf("GetKey %s: %s", what, d)
		}
		if d := diffTeam(mustGetTeam(t, s, tm.ID), &tm); d != "" {
			t.Errorf("GetTeam %s: %s", what, d)
		}
		if d := diffUser(mustGetUser(t, s, u.ID), &u); d != "" {
			t.Errorf("GetUser %s: %s", what, d)
		}
		p, err := s.PrincipalByKeyHash(ctx, k.ID)
		if err != nil {
			t.Fatalf("PrincipalByKeyHash %s = %v, want nil", what, err)
		}
		if d := diffKey(p.Key, &k); d != "" {
			t.Errorf("principal key %s: %s", what, d)
		}
		if d := diffTeam(p.Team, &tm); d != "" {
			t.Errorf("principal team %s: %s", what, d)
		}
		if d := diffUser(p.User, &u); d != "" {
			t.Errorf("principal user %s: %s", what, d)
		}
	}
	check(t, "after create", key, team, user)

	t.Run("update sets and clears", func(t *testing.T) {
		k, err := s.UpdateKey(ctx, key.ID, func(k *gateway.Key) error {
			k.Limits.MaxBudget, k.Limits.BudgetDuration, k.Limits.RPMLimit = nil, "", ptr(int64(9))
			k.ModelLimits.RPM, k.ModelLimits.Budget = nil, map[string]gateway.ModelBudget{"gpt-4o": {BudgetLimit: 1}}
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateKey = %v, want nil", err)
		}
		key.Limits.MaxBudget, key.Limits.BudgetDuration, key.Limits.RPMLimit = nil, "", ptr(int64(9))
		key.ModelLimits.RPM, key.ModelLimits.Budget = nil, map[string]gateway.ModelBudget{"gpt-4o": {BudgetLimit: 1}}
		if d := diffKey(k, &key); d != "" {
			t.Errorf("UpdateKey returned %s", d)
		}
		if _, err := s.UpdateTeam(ctx, team.ID, func(t *gateway.Team) error { t.Limits = gateway.Limits{}; return nil }); err != nil {
			t.Fatalf("UpdateTeam = %v, want nil", err)
		}
		team.Limits = gateway.Limits{}
		if _, err := s.UpdateUser(ctx, user.ID, func(u *gateway.User) error { u.Limits.SoftBudget = ptr(0.25); return nil }); err != nil {
			t.Fatalf("UpdateUser = %v, want nil", err)
		}
		user.Limits.SoftBudget = ptr(0.25)
		check(t, "after update", key, team, user)
	})

	t.Run("stored numbers are the store's own", func(t *testing.T) {
		got := mustGetKey(t, s, key.ID)
		*got.Limits.RPMLimit = 1000
		got.ModelLimits.Budget["gpt-4o"] = gateway.ModelBudget{BudgetLimit: 999}
		p, err := s.PrincipalByKeyHash(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		*p.User.Limits.MaxBudget = 1000
		check(t, "after changing returned records", key, team, user)
	})
}
