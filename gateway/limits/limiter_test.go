package limits_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/limits"
	"github.com/regate/gateway/store/memory"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, shared gateway.UsageStore) (*limits.Limiter, *clock) {
	t.Helper()
	c := &clock{t: created}
	if shared == nil {
		shared = memory.NewUsage()
	}
	l := limits.New(limits.Config{Shared: shared, Now: c.now})
	if err := l.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, c
}

func i64(n int64) *int64     { return &n }
func f64(x float64) *float64 { return &x }

// created is when the test principals were made: budget periods start
// from it.
var created = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func principal(key, team, user gateway.Limits) *gateway.Principal {
	return &gateway.Principal{
		Key:  &gateway.Key{ID: "key-1", Limits: key, CreatedAt: created},
		Team: &gateway.Team{ID: "team-1", Limits: team, CreatedAt: created},
		User: &gateway.User{ID: "user-1", Limits: user, CreatedAt: created},
	}
}

// spendNow is a layer's spend in its budget period at now.
func spendNow(l *limits.Limiter, layer, id string, lim gateway.Limits, now time.Time) (float64, time.Time) {
	start, end := lim.Period(created, now)
	return l.Spend(layer, id, start), end
}

func limitErr(t *testing.T, err error) *gateway.LimitError {
	t.Helper()
	var le *gateway.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want a *gateway.LimitError", err)
	}
	return le
}

func TestRPMWindowOnEachLayer(t *testing.T) {
	for _, layer := range []string{gateway.LayerKey, gateway.LayerTeam, gateway.LayerUser} {
		t.Run(layer, func(t *testing.T) {
			l, c := newLimiter(t, nil)
			lim := gateway.Limits{RPMLimit: i64(3)}
			var p *gateway.Principal
			switch layer {
			case gateway.LayerKey:
				p = principal(lim, gateway.Limits{}, gateway.Limits{})
			case gateway.LayerTeam:
				p = principal(gateway.Limits{}, lim, gateway.Limits{})
			default:
				p = principal(gateway.Limits{}, gateway.Limits{}, lim)
			}
			for i := range 3 {
				tk, err := l.Admit(p, "gpt-4o")
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if h := tk.Headers.Requests; !h.Set || h.Limit != 3 || h.Remaining != int64(2-i) {
					t.Errorf("call %d: headers %+v, want limit 3 remaining %d", i, h, 2-i)
				}
				tk.Done(gateway.Usage{}, 0)
				c.add(10 * time.Second)
			}
			_, err := l.Admit(p, "gpt-4o")
			le := limitErr(t, err)
			if le.Layer != layer || le.Kind != gateway.LimitRPM || le.RetryAfter != 30*time.Second {
				t.Errorf("4th call: %+v, want %s rpm, retry after 30s", le, layer)
			}
			c.add(30 * time.Second) // the first call leaves the window
			if _, err := l.Admit(p, "gpt-4o"); err != nil {
				t.Errorf("after the window moved: %v", err)
			}
		})
	}
}

func TestRefusalCountsNothing(t *testing.T) {
	l, _ := newLimiter(t, nil)
	// The key has room; the team does not: the key's window must not count
	// the refused call.
	p := principal(gateway.Limits{RPMLimit: i64(2)}, gateway.Limits{RPMLimit: i64(1)}, gateway.Limits{})
	if _, err := l.Admit(p, "m"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Admit(p, "m"); limitErr(t, err).Layer != gateway.LayerTeam {
			t.Fatalf("want the team's refusal, got %v", err)
		}
	}
	other := principal(gateway.Limits{RPMLimit: i64(2)}, gateway.Limits{}, gateway.Limits{})
	other.Team.ID = "team-2"
	if _, err := l.Admit(other, "m"); err != nil {
		t.Errorf("the key's second call (first ones refused by the team) = %v, want admitted", err)
	}
}

func TestTPM(t *testing.T) {
	l, c := newLimiter(t, nil)
	p := principal(gateway.Limits{TPMLimit: i64(100)}, gateway.Limits{}, gateway.Limits{})
	tk, err := l.Admit(p, "m")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(gateway.Usage{PromptTokens: 60, CompletionTokens: 40, Reported: true}, 0)
	c.add(5 * time.Second)
	_, err = l.Admit(p, "m")
	if le := limitErr(t, err); le.Kind != gateway.LimitTPM || le.RetryAfter != 55*time.Second {
		t.Errorf("at the tpm limit: %+v, want tpm, retry after 55s", le)
	}
	c.add(55 * time.Second)
	tk, err = l.Admit(p, "m")
	if err != nil {
		t.Fatalf("after the tokens left the window: %v", err)
	}
	if h := tk.Headers.Tokens; !h.Set || h.Limit != 100 || h.Remaining != 100 {
		t.Errorf("token headers %+v, want limit 100 remaining 100", h)
	}
}

func TestParallel(t *testing.T) {
	l, _ := newLimiter(t, nil)
	p := principal(gateway.Limits{}, gateway.Limits{}, gateway.Limits{MaxParallelRequests: i64(2)})
	a, _ := l.Admit(p, "m")
	b, _ := l.Admit(p, "m")
	if _, err := l.Admit(p, "m"); limitErr(t, err).Kind != gateway.LimitParallel {
		t.Fatalf("third call in flight: %v, want parallel", err)
	}
	a.Done(gateway.Usage{}, 0)
	a.Done(gateway.Usage{}, 0) // twice: no effect
	if _, err := l.Admit(p, "m"); err != nil {
		t.Errorf("after one ended: %v", err)
	}
	b.Done(gateway.Usage{}, 0)
}

func TestBudgetAndReset(t *testing.T) {
	l, c := newLimiter(t, nil)
	p := principal(gateway.Limits{}, gateway.Limits{MaxBudget: f64(1), BudgetDuration: "1d", SoftBudget: f64(0.5)}, gateway.Limits{})
	tk, err := l.Admit(p, "m")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(gateway.Usage{PromptTokens: 10}, 0.6)
	if s, reset := spendNow(l, gateway.LayerTeam, "team-1", p.Team.Limits, c.now()); math.Abs(s-0.6) > 1e-9 || !reset.Equal(created.Add(24*time.Hour)) {
		t.Errorf("team spend = %v resetting %v, want 0.6 resetting a day after the team was made", s, reset)
	}
	tk, _ = l.Admit(p, "m")
	tk.Done(gateway.Usage{}, 0.5)
	_, err = l.Admit(p, "m")
	if le := limitErr(t, err); le.Kind != gateway.LimitBudget || le.Layer != gateway.LayerTeam || !errors.Is(err, gateway.ErrBudgetExceeded) {
		t.Errorf("over budget: %+v", le)
	}
	c.add(24 * time.Hour)
	if _, err := l.Admit(p, "m"); err != nil {
		t.Errorf("after the budget period: %v", err)
	}
	if s, _ := spendNow(l, gateway.LayerTeam, "team-1", p.Team.Limits, c.now()); s != 0 {
		t.Errorf("spend after reset = %v, want 0", s)
	}
}

func TestModelLimits(t *testing.T) {
	l, _ := newLimiter(t, nil)
	p := principal(gateway.Limits{}, gateway.Limits{}, gateway.Limits{})
	p.Key.ModelLimits = gateway.ModelLimits{RPM: map[string]int64{"gpt-4o": 1}, Budget: map[string]gateway.ModelBudget{"mini": {BudgetLimit: 0.1}}}
	if _, err := l.Admit(p, "gpt-4o"); err != nil {
		t.Fatal(err)
	}
	_, err := l.Admit(p, "gpt-4o")
	if le := limitErr(t, err); le.Model != "gpt-4o" || le.Kind != gateway.LimitRPM {
		t.Errorf("second gpt-4o call: %+v", le)
	}
	tk, err := l.Admit(p, "mini")
	if err != nil {
		t.Fatal(err)
	}
	tk.Done(gateway.Usage{}, 0.2)
	if _, err := l.Admit(p, "mini"); limitErr(t, err).Kind != gateway.LimitBudget {
		t.Errorf("mini over its budget: %v", err)
	}
	if _, err := l.Admit(p, "other"); err != nil {
		t.Errorf("a model without limits: %v", err)
	}
}

// failing is a usage store whose syncs fail until ok is set.
type failing struct {
	gateway.UsageStore
	mu sync.Mutex
	ok bool
}

func (f *failing) Sync(ctx context.Context, r string, d gateway.UsageDelta, since time.Time) (gateway.UsageView, error) {
	f.mu.Lock()
	ok := f.ok
	f.mu.Unlock()
	if !ok {
		return gateway.UsageView{}, errors.New("database down")
	}
	return f.UsageStore.Sync(ctx, r, d, since)
}

func TestFailedSyncLosesNothing(t *testing.T) {
	mem := memory.NewUsage()
	f := &failing{UsageStore: mem, ok: true}
	l, c := newLimiter(t, f)
	p := principal(gateway.Limits{}, gateway.Limits{}, gateway.Limits{})
	tk, _ := l.Admit(p, "m")
	tk.Done(gateway.Usage{PromptTokens: 7, CompletionTokens: 3}, 0.25)
	f.mu.Lock()
	f.ok = false
	f.mu.Unlock()
	if err := l.Sync(t.Context()); err == nil {
		t.Fatal("Sync succeeded against a failing store")
	}
	f.mu.Lock()
	f.ok = true
	f.mu.Unlock()
	day := c.now().Truncate(24 * time.Hour)
	rows, err := l.Report(t.Context(), day, day, "key")
	if err != nil || len(rows) != 1 || rows[0].Requests != 1 || rows[0].PromptTokens != 7 || math.Abs(rows[0].Spend-0.25) > 1e-9 {
		t.Errorf("Report after a failed sync = %+v, %v; want the call once", rows, err)
	}
	if s, _ := spendNow(l, gateway.LayerKey, "key-1", p.Key.Limits, c.now()); math.Abs(s-0.25) > 1e-9 {
		t.Errorf("spend = %v, want 0.25 once", s)
	}
}

// twoReplicas is a usage store that says there are n replicas.
type replicas struct {
	gateway.UsageStore
	n, rank int
}

func (r replicas) Sync(ctx context.Context, id string, d gateway.UsageDelta, since time.Time) (gateway.UsageView, error) {
	v, err := r.UsageStore.Sync(ctx, id, d, since)
	v.Replicas, v.Rank = r.n, r.rank
	return v, err
}

func TestShares(t *testing.T) {
	// 10 calls a minute over 3 replicas: 4, 3, 3.
	for rank, want := range []int{4, 3, 3} {
		l, _ := newLimiter(t, replicas{memory.NewUsage(), 3, rank})
		p := principal(gateway.Limits{RPMLimit: i64(10)}, gateway.Limits{}, gateway.Limits{})
		n := 0
		for range 20 {
			if _, err := l.Admit(p, "m"); err == nil {
				n++
			}
		}
		if n != want {
			t.Errorf("rank %d admitted %d, want %d", rank, n, want)
		}
	}
}

func TestRestartKeepsSpend(t *testing.T) {
	mem := memory.NewUsage()
	l1, c := newLimiter(t, mem)
	p := principal(gateway.Limits{MaxBudget: f64(1), BudgetDuration: "30d"}, gateway.Limits{}, gateway.Limits{})
	tk, _ := l1.Admit(p, "m")
	tk.Done(gateway.Usage{}, 1.5)
	if err := l1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	l2 := limits.New(limits.Config{Shared: mem, Now: c.now})
	if err := l2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer l2.Close(context.Background())
	if s, _ := spendNow(l2, gateway.LayerKey, "key-1", p.Key.Limits, c.now()); math.Abs(s-1.5) > 1e-9 {
		t.Errorf("spend after restart = %v, want 1.5 before any call", s)
	}
	if _, err := l2.Admit(p, "m"); limitErr(t, err).Kind != gateway.LimitBudget {
		t.Errorf("over budget after restart: %v", err)
	}
}

// TestLargeRPM: limits above the exact log are counted per second and
// still never admit more than the limit in 60 s.
func TestLargeRPM(t *testing.T) {
	l, c := newLimiter(t, nil)
	p := principal(gateway.Limits{RPMLimit: i64(5000)}, gateway.Limits{}, gateway.Limits{})
	for i := range 5000 {
		if _, err := l.Admit(p, "m"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i%100 == 99 {
			c.add(time.Second) // 50 s of calls
		}
	}
	if _, err := l.Admit(p, "m"); limitErr(t, err).Kind != gateway.LimitRPM {
		t.Fatalf("call 5001 within the window: %v", err)
	}
	c.add(11 * time.Second) // the first second's calls leave the window
	n := 0
	for range 200 {
		if _, err := l.Admit(p, "m"); err == nil {
			n++
		}
	}
	if n != 100 {
		t.Errorf("after the first second left the window: admitted %d, want 100", n)
	}
}
