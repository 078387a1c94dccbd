// Package storetest is the conformance suite of gateway.Store: every store
// adapter runs it from its own tests, so the in-memory and PostgreSQL stores
// are held to exactly the same behaviour.
//
// Beyond the port's documentation, the suite pins down:
//   - times (ExpiresAt, CreatedAt) round-trip to the microsecond; a zero
//     CreatedAt is filled in by Create* (also in the caller's record);
//   - empty and nil lists and maps are the same;
//   - metadata round-trips as JSON (nested objects and arrays);
//   - limits round-trip exactly: a limit of 0 is kept apart from no limit,
//     and empty per-model maps are nil;
//   - a key id must be a SHA-256 hex digest and its display form may show
//     at most 4 characters of the key;
//   - ListTeams and ListUsers are sorted by id; ListKeys pages are stable;
//   - DeleteX return the ids that existed, in the order given, once each;
//   - Upsert of unchanged records writes nothing and announces nothing;
//   - a subscriber receives the changes of a write from the same store
//     before the write returns, and its own copy of them.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// Run runs the suite. newStore must return a new, empty, started store for
// the test it is given, and arrange its Close with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) gateway.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s gateway.Store)
	}{
		{"KeyRoundTrip", testKeyRoundTrip},
		{"TeamRoundTrip", testTeamRoundTrip},
		{"UserRoundTrip", testUserRoundTrip},
		{"CreateErrors", testCreateErrors},
		{"Missing", testMissing},
		{"Principal", testPrincipal},
		{"UpdateKey", testUpdateKey},
		{"UpdateTeamAndUser", testUpdateTeamAndUser},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Isolation", testIsolation},
		{"DeleteKeys", testDeleteKeys},
		{"DeleteCascades", testDeleteCascades},
		{"ListKeys", testListKeys},
		{"ListTeamsAndUsers", testListTeamsAndUsers},
		{"Limits", testLimits},
		{"Upsert", testUpsert},
		{"UpsertAtomic", testUpsertAtomic},
		{"Subscribe", testSubscribe},
		{"SubscribeEnds", testSubscribeEnds},
		{"SubscribersGetCopies", testSubscribersGetCopies},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

// BenchmarkPrincipalByKeyHash measures one uncached principal lookup (key,
// team and user) in s, which must be empty.
func BenchmarkPrincipalByKeyHash(b *testing.B, s gateway.Store) {
	ctx := b.Context()
	mustCreateTeam(b, s, &gateway.Team{ID: "bench-team", Models: []string{"gpt-4o", "default-models"},
		ModelAliases: map[string]string{"fast": "gpt-4o-mini"}, Metadata: map[string]any{"cost_center": "r&d"}})
	mustCreateUser(b, s, &gateway.User{ID: "bench-user", Email: "bench@example.com", Role: gateway.RoleInternalUser})
	k := newKey("sk-bench-principal", "bench-team", "bench-user")
	k.Models = []string{"gpt-4o", "openai/*"}
	k.Metadata = map[string]any{"tier": "gold", "limits": map[string]any{"rpm": 60}}
	mustCreateKey(b, s, &k)
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.PrincipalByKeyHash(ctx, k.ID)
		if err != nil || p.Team == nil || p.User == nil {
			b.Fatalf("PrincipalByKeyHash = %+v, %v; want key with team and user", p, err)
		}
	}
}

// errBoom is what update functions return to abort an update.
var errBoom = errors.New("boom")

// newKey is a key for plaintext with its hash and display form.
func newKey(plaintext, team, user string) gateway.Key {
	return gateway.Key{ID: gateway.HashKey(plaintext), Display: gateway.Redact(plaintext), TeamID: team, UserID: user}
}

func mustCreateTeam(tb testing.TB, s gateway.Store, t *gateway.Team) {
	tb.Helper()
	if err := s.CreateTeam(tb.Context(), t); err != nil {
		tb.Fatalf("CreateTeam(%q) = %v, want nil", t.ID, err)
	}
}

func mustCreateUser(tb testing.TB, s gateway.Store, u *gateway.User) {
	tb.Helper()
	if err := s.CreateUser(tb.Context(), u, nil); err != nil {
		tb.Fatalf("CreateUser(%q) = %v, want nil", u.ID, err)
	}
}

func mustCreateKey(tb testing.TB, s gateway.Store, k *gateway.Key) {
	tb.Helper()
	if err := s.CreateKey(tb.Context(), k); err != nil {
		tb.Fatalf("CreateKey(%s) = %v, want nil", k.Display, err)
	}
}

func mustGetKey(tb testing.TB, s gateway.Store, hash string) *gateway.Key {
	tb.Helper()
	k, err := s.GetKey(tb.Context(), hash)
	if err != nil {
		tb.Fatalf("GetKey(%.8s…) = %v, want nil", hash, err)
	}
	return k
}

func mustGetTeam(tb testing.TB, s gateway.Store, id string) *gateway.Team {
	tb.Helper()
	t, err := s.GetTeam(tb.Context(), id)
	if err != nil {
		tb.Fatalf("GetTeam(%q) = %v, want nil", id, err)
	}
	return t
}

func mustGetUser(tb testing.TB, s gateway.Store, id string) *gateway.User {
	tb.Helper()
	u, err := s.GetUser(tb.Context(), id)
	if err != nil {
		tb.Fatalf("GetUser(%q) = %v, want nil", id, err)
	}
	return u
}

// seed creates teams "t1" and "t2" and users "u1" and "u2".
func seed(tb testing.TB, s gateway.Store) {
	tb.Helper()
	for _, id := range []string{"t1", "t2"} {
		mustCreateTeam(tb, s, &gateway.Team{ID: id})
	}
	for _, id := range []string{"u1", "u2"} {
		mustCreateUser(tb, s, &gateway.User{ID: id})
	}
}

// diffKey describes how got differs from want, or returns "". A zero
// want.CreatedAt is not compared.
func diffKey(got, want *gateway.Key) string {
	var d diffs
	d.eq("ID", got.ID, want.ID)
	d.eq("Display", got.Display, want.Display)
	d.eq("Alias", got.Alias, want.Alias)
	d.eq("Role", got.Role, want.Role)
	d.list("Models", got.Models, want.Models)
	d.strMap("Aliases", got.Aliases, want.Aliases)
	d.eq("TeamID", got.TeamID, want.TeamID)
	d.eq("UserID", got.UserID, want.UserID)
	d.json("Metadata", got.Metadata, want.Metadata)
	d.eq("Blocked", got.Blocked, want.Blocked)
	d.time("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.limits("Limits", got.Limits, want.Limits)
	d.modelLimits("ModelLimits", got.ModelLimits, want.ModelLimits)
	if !want.CreatedAt.IsZero() {
		d.time("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	return d.String()
}

func diffTeam(got, want *gateway.Team) string {
	var d diffs
	d.eq("ID", got.ID, want.ID)
	d.eq("Alias", got.Alias, want.Alias)
	d.list("Models", got.Models, want.Models)
	d.strMap("ModelAliases", got.ModelAliases, want.ModelAliases)
	d.eq("Blocked", got.Blocked, want.Blocked)
	d.json("Metadata", got.Metadata, want.Metadata)
	d.limits("Limits", got.Limits, want.Limits)
	if !want.CreatedAt.IsZero() {
		d.time("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	return d.String()
}

func diffUser(got, want *gateway.User) string {
	var d diffs
	d.eq("ID", got.ID, want.ID)
	d.eq("Email", got.Email, want.Email)
	d.eq("Role", got.Role, want.Role)
	d.list("Models", got.Models, want.Models)
	d.json("Metadata", got.Metadata, want.Metadata)
	d.limits("Limits", got.Limits, want.Limits)
	if !want.CreatedAt.IsZero() {
		d.time("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	return d.String()
}

// diffs collects field differences.
type diffs []string

// String lists the differences; empty when there are none.
func (d diffs) String() string {
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint([]string(d))
}

func (d *diffs) add(field string, got, want any) {
	*d = append(*d, fmt.Sprintf("%s = %#v, want %#v", field, got, want))
}

func (d *diffs) eq(field string, got, want any) {
	if got != want {
		d.add(field, got, want)
	}
}

// list compares lists, treating nil and empty alike.
func (d *diffs) list(field string, got, want []string) {
	if len(got) != 0 || len(want) != 0 {
		if !slices.Equal(got, want) {
			d.add(field, got, want)
		}
	}
}

func (d *diffs) strMap(field string, got, want map[string]string) {
	if len(got) != 0 || len(want) != 0 {
		if !maps.Equal(got, want) {
			d.add(field, got, want)
		}
	}
}

// limits compares limits by value: set or not, and the number.
func (d *diffs) limits(field string, got, want gateway.Limits) {
	if !reflect.DeepEqual(got, want) {
		d.add(field, fmt.Sprintf("%+v", showLimits(got)), fmt.Sprintf("%+v", showLimits(want)))
	}
}

// modelLimits compares per-model limits, treating nil and empty maps alike.
func (d *diffs) modelLimits(field string, got, want gateway.ModelLimits) {
	if !maps.Equal(got.RPM, want.RPM) || !maps.Equal(got.TPM, want.TPM) || !maps.Equal(got.Budget, want.Budget) {
		d.add(field, got, want)
	}
}

// showLimits spells out the numbers behind the pointers of l.
func showLimits(l gateway.Limits) map[string]any {
	m := map[string]any{"budget_duration": l.BudgetDuration}
	for name, p := range map[string]*float64{"max_budget": l.MaxBudget, "soft_budget": l.SoftBudget} {
		if p != nil {
			m[name] = *p
		}
	}
	for name, p := range map[string]*int64{"rpm_limit": l.RPMLimit, "tpm_limit": l.TPMLimit, "max_parallel_requests": l.MaxParallelRequests} {
		if p != nil {
			m[name] = *p
		}
	}
	return m
}

// json compares objects as JSON documents.
func (d *diffs) json(field string, got, want map[string]any) {
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(jsonNorm(got), jsonNorm(want)) {
		d.add(field, got, want)
	}
}

// time compares instants at the microsecond precision stores keep.
func (d *diffs) time(field string, got, want time.Time) {
	if !got.Equal(want.Truncate(time.Microsecond)) {
		d.add(field, got.String(), want.Truncate(time.Microsecond).String())
	}
}

// jsonNorm is v after a JSON round trip.
func jsonNorm(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// recorder collects the change batches of a subscription.
type recorder struct {
	ch chan []gateway.Change
}

func subscribe(tb testing.TB, ctx context.Context, s gateway.Store) *recorder {
	tb.Helper()
	r := &recorder{ch: make(chan []gateway.Change, 1000)}
	if err := s.Subscribe(ctx, func(ch []gateway.Change) { r.ch <- ch }); err != nil {
		tb.Fatalf("Subscribe = %v, want nil", err)
	}
	return r
}

// deliveryTimeout bounds how long a change may take to reach a subscriber.
const deliveryTimeout = 5 * time.Second

// next returns the next batch, failing tb after deliveryTimeout.
func (r *recorder) next(tb testing.TB, what string) []gateway.Change {
	tb.Helper()
	select {
	case ch := <-r.ch:
		return ch
	case <-time.After(deliveryTimeout):
		tb.Fatalf("%s: no change delivered within %v", what, deliveryTimeout)
		return nil
	}
}

// contains reports whether got names every change in want.
func contains(got, want []gateway.Change) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
