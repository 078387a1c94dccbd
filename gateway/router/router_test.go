package router

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)} }

func deps(ids ...string) []gateway.Deployment {
	out := make([]gateway.Deployment, len(ids))
	for i, id := range ids {
		out[i] = gateway.Deployment{ID: id, ModelName: "g"}
	}
	return out
}

func first(r *Router, ds []gateway.Deployment) string {
	o := r.Order(ds, nil)
	if len(o) == 0 {
		return ""
	}
	return ds[o[0]].ID
}

func TestOrderIsAPermutation(t *testing.T) {
	for _, strategy := range []string{SimpleShuffle, LeastBusy, LatencyBased} {
		r := New(Config{Settings: Settings{Strategy: strategy}})
		ds := deps("a", "b", "c", "d")
		ds[1].Weight, ds[2].Weight = 2, 1 // a and d weigh nothing beside them
		for range 200 {
			o := r.Order(ds, nil)
			s := slices.Sorted(slices.Values(o))
			if !slices.Equal(s, []int{0, 1, 2, 3}) {
				t.Fatalf("%s: order %v is not a permutation of the group", strategy, o)
			}
			if strategy == SimpleShuffle && (o[2] != 0 && o[2] != 3 || o[3] != 0 && o[3] != 3) {
				t.Fatalf("order %v: deployments without a weight must come after weighted ones", o)
			}
		}
	}
}

func TestShuffleWeights(t *testing.T) {
	r := New(Config{})
	for _, tc := range []struct {
		name string
		set  func(ds []gateway.Deployment)
		want float64 // share of "a" first
	}{
		{"equal", func([]gateway.Deployment) {}, 0.5},
		{"weight", func(ds []gateway.Deployment) { ds[0].Weight, ds[1].Weight = 1, 4 }, 0.2},
		{"rpm", func(ds []gateway.Deployment) { ds[0].RPM, ds[1].RPM = 3000, 1000 }, 0.75},
		{"tpm", func(ds []gateway.Deployment) { ds[0].TPM, ds[1].TPM = 1e6, 1e6 }, 0.5},
		{"weight wins over rpm", func(ds []gateway.Deployment) { ds[0].Weight, ds[1].Weight, ds[0].RPM = 1, 1, 1e6 }, 0.5},
	} {
		ds := deps("a", "b")
		tc.set(ds)
		n := 0
		const draws = 20000
		for range draws {
			if first(r, ds) == "a" {
				n++
			}
		}
		// Binomial(20000, p): sd under 0.004; 0.02 is 5 sd.
		if got := float64(n) / draws; got < tc.want-0.02 || got > tc.want+0.02 {
			t.Errorf("%s: a first in %.3f of draws, want %.2f", tc.name, got, tc.want)
		}
	}
}

func TestCooldownAfterAllowedFails(t *testing.T) {
	c := newClock()
	two := 2
	r := New(Config{Settings: Settings{AllowedFails: &two, CooldownTime: 10 * time.Second}, Now: c.now})
	ds := deps("a", "b")
	a := &ds[0]
	for i := range 2 {
		if r.Fail(a, 0) {
			t.Fatalf("failure %d cooled a down; allowed_fails is 2", i+1)
		}
	}
	if !r.Fail(a, 0) || !r.Cooling(a) {
		t.Fatal("the third failure within a minute did not cool a down")
	}
	for range 50 {
		if o := r.Order(ds, nil); !slices.Equal(o, []int{1}) {
			t.Fatalf("while a cools, order = %v, want only b", o)
		}
	}
	c.add(10*time.Second + time.Millisecond)
	if r.Cooling(a) {
		t.Fatal("a still cooling after cooldown_time")
	}
	// Failures more than a minute apart never add up.
	for range 5 {
		if r.Fail(a, 0) {
			t.Fatal("failures a minute apart cooled a down")
		}
		c.add(61 * time.Second)
	}
}

func TestEveryDeploymentCooling(t *testing.T) {
	c := newClock()
	r := New(Config{Now: c.now})
	ds := deps("a", "b")
	r.Fail(&ds[0], 30*time.Second)
	r.Fail(&ds[1], 30*time.Second)
	if o := r.Order(ds, nil); len(o) != 2 {
		t.Errorf("every deployment cooling: order = %v, want both tried", o)
	}
}

func TestRetryAfterCoolsAtOnce(t *testing.T) {
	c := newClock()
	r := New(Config{Now: c.now})
	ds := deps("a")
	if !r.Fail(&ds[0], 3*time.Second) || !r.Cooling(&ds[0]) {
		t.Fatal("a Retry-After did not cool the deployment at once")
	}
	c.add(3*time.Second + time.Millisecond)
	if r.Cooling(&ds[0]) {
		t.Error("still cooling after the Retry-After")
	}
	if !r.Fail(&ds[0], 100*time.Hour) {
		t.Fatal("no cooldown")
	}
	c.add(MaxCooldown + time.Second)
	if r.Cooling(&ds[0]) {
		t.Error("a Retry-After beyond MaxCooldown was not bounded")
	}
	off := New(Config{Settings: Settings{DisableCooldowns: true}, Now: c.now})
	if off.Fail(&ds[0], time.Minute) || off.Cooling(&ds[0]) {
		t.Error("disable_cooldowns: a deployment cooled down")
	}
}

func TestCaps(t *testing.T) {
	c := newClock()
	r := New(Config{Now: c.now, Share: func(n int64) int64 { return n / 2 }})
	ds := deps("a", "b")
	ds[0].RPM, ds[1].TPM = 4, 100
	// a's share of 4 rpm on one of two replicas is 2.
	for range 2 {
		r.Start(&ds[0])
		r.End(&ds[0], 0)
	}
	if o := r.Order(ds, nil); !slices.Equal(o, []int{1}) {
		t.Errorf("a at its rpm share: order = %v, want only b", o)
	}
	r.Start(&ds[1])
	r.End(&ds[1], 50) // b's share of 100 tpm is 50
	if o := r.Order(ds, nil); len(o) != 0 {
		t.Errorf("both capped: order = %v, want none", o)
	}
	c.add(61 * time.Second)
	if o := r.Order(ds, nil); len(o) != 2 {
		t.Errorf("a minute later: order = %v, want both", o)
	}
}

func TestLeastBusyAndFastest(t *testing.T) {
	r := New(Config{Settings: Settings{Strategy: LeastBusy}})
	ds := deps("a", "b", "c")
	r.Start(&ds[0])
	r.Start(&ds[0])
	r.Start(&ds[2])
	for range 50 {
		if got := first(r, ds); got != "b" {
			t.Fatalf("least-busy chose %s, want b (none in flight)", got)
		}
	}
	lat := New(Config{Settings: Settings{Strategy: LatencyBased}})
	lat.FirstByte(&ds[0], 50*time.Millisecond)
	lat.FirstByte(&ds[1], 5*time.Millisecond)
	lat.FirstByte(&ds[2], 90*time.Millisecond)
	n := 0
	for range 2000 {
		if first(lat, ds) == "b" {
			n++
		}
	}
	// The fastest first, but for about one call in exploreOneIn.
	if n < 1700 || n > 1950 {
		t.Errorf("latency-based chose the fastest %d times of 2000, want about 1800", n)
	}
}

func TestAttempts(t *testing.T) {
	zero, three := 0, 3
	for _, tc := range []struct {
		retries *int
		n, want int
	}{{nil, 3, 3}, {&zero, 3, 1}, {&three, 2, 4}} {
		r := New(Config{Settings: Settings{NumRetries: tc.retries}})
		if got := r.Attempts(tc.n); got != tc.want {
			t.Errorf("Attempts(%d) with num_retries %v = %d, want %d", tc.n, tc.retries, got, tc.want)
		}
	}
}

func TestFallbacksFor(t *testing.T) {
	s := Settings{
		Fallbacks:              map[string][]string{"a": {"b"}, "*": {"any"}},
		ContextWindowFallbacks: map[string][]string{"a": {"big"}},
		DefaultFallbacks:       []string{"default"},
	}
	for _, tc := range []struct {
		group, kind string
		want        []string
	}{
		{"a", FallbackGeneral, []string{"b"}},
		{"x", FallbackGeneral, []string{"any"}},
		{"a", FallbackContextWindow, []string{"big"}},
		// context_window_fallbacks is set but names nothing for x: none,
		// as LiteLLM does.
		{"x", FallbackContextWindow, nil},
		// No content_policy_fallbacks at all: the general ones.
		{"a", FallbackContentPolicy, []string{"b"}},
	} {
		if got := s.FallbacksFor(tc.group, tc.kind); !slices.Equal(got, tc.want) {
			t.Errorf("FallbacksFor(%s, %s) = %v, want %v", tc.group, tc.kind, got, tc.want)
		}
	}
	s.Fallbacks = nil
	if got := s.FallbacksFor("x", FallbackGeneral); !slices.Equal(got, []string{"default"}) {
		t.Errorf("no fallbacks: %v, want default_fallbacks", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ms, secs string
		want     time.Duration
	}{
		{"", "2", 2 * time.Second},
		{"", "1.5", 1500 * time.Millisecond},
		{"250", "9", 250 * time.Millisecond},
		{"", now.Add(30 * time.Second).Format(time.RFC1123), 30 * time.Second},
		{"", "soon", 0},
		{"", "-3", 0},
		{"", "NaN", 0},
		{"", "", 0},
	} {
		if got := ParseRetryAfter(tc.ms, tc.secs, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q, %q) = %v, want %v", tc.ms, tc.secs, got, tc.want)
		}
	}
}

// BenchmarkOrder is the routing work of one call over three weighted
// deployments, with calls on every core.
func BenchmarkOrder(b *testing.B) {
	r := New(Config{})
	ds := deps("a", "b", "c")
	ds[0].Weight, ds[1].Weight, ds[2].Weight = 1, 2, 3
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var buf [8]int
		for pb.Next() {
			o := r.Order(ds, buf[:0])
			d := &ds[o[0]]
			r.Start(d)
			r.FirstByte(d, time.Millisecond)
			r.End(d, 100)
		}
	})
}

// TestConcurrentCalls runs the router's whole call cycle from many
// goroutines at once (for the race detector) and checks that the counts
// add up.
func TestConcurrentCalls(t *testing.T) {
	r := New(Config{Settings: Settings{Strategy: LeastBusy}})
	ds := deps("a", "b", "c")
	ds[0].RPM, ds[1].TPM = 1e9, 1e12
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var buf [8]int
			for range 2000 {
				o := r.Order(ds, buf[:0])
				d := &ds[o[0]]
				r.Start(d)
				r.FirstByte(d, time.Millisecond)
				if o[0] == 2 {
					r.Fail(d, 0)
				}
				r.End(d, 10)
			}
		})
	}
	wg.Wait()
	for i := range ds {
		if n := r.InFlight(&ds[i]); n != 0 {
			t.Errorf("%s: %d in flight after every call ended", ds[i].ID, n)
		}
	}
}
