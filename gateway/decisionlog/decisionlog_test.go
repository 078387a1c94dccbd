package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/rego"
)

// fakeAuthz answers every decision the same way.
type fakeAuthz struct {
	d   gateway.Decision
	err error
}

func (f fakeAuthz) Decide(context.Context, *gateway.Input) (gateway.Decision, error) {
	return f.d, f.err
}

func (f fakeAuthz) VisibleModels(context.Context, *gateway.Input) (map[string]struct{}, error) {
	return map[string]struct{}{"b": {}, "a": {}}, f.err
}

// blockingWriter blocks every Write until release is closed; entered, when
// set, is closed at the first Write.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.entered != nil {
		w.once.Do(func() { close(w.entered) })
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func input() *gateway.Input {
	return &gateway.Input{
		Request: gateway.RequestInfo{ID: "req-1", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions", Stream: true},
		Principal: &gateway.Principal{
			Key:  &gateway.Key{ID: gateway.HashKey("sk-secret-key-1234"), Alias: "laptop", Display: "sk-...1234"},
			Team: &gateway.Team{ID: "research"},
			User: &gateway.User{ID: "alice", Email: "alice@example.com"},
		},
		Model:      &gateway.Resolution{Requested: "fast", Found: true, Names: []string{"fast", "gpt-4o", "openai/gpt-4o"}, Resolved: "gpt-4o"},
		Candidates: &gateway.CandidateList{Items: []gateway.Candidate{{ID: "a"}, {ID: "b"}, {ID: "c"}}},
		Now:        time.Now(),
	}
}

func TestEvents(t *testing.T) {
	var out bytes.Buffer
	deny := gateway.Decision{Status: 404, Code: "model_not_found", Reasons: []string{"user: no entry matches"}}
	l, err := New(Config{Authorizer: fakeAuthz{d: deny}, Output: &out, Revision: func() string { return "rev-1" }})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	if d, err := l.Decide(t.Context(), input()); err != nil || d.Status != 404 {
		t.Fatalf("Decide() = %+v, %v; want the wrapped decision", d, err)
	}
	if ids, err := l.VisibleModels(t.Context(), input()); err != nil || len(ids) != 2 {
		t.Fatalf("VisibleModels() = %v, %v; want the wrapped answer", ids, err)
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	dec := json.NewDecoder(&out)
	var evs []Event
	for dec.More() {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 2 || l.Written() != 2 {
		t.Fatalf("%d events (Written %d), want 2", len(evs), l.Written())
	}
	d, v := evs[0], evs[1]
	if d.Query != QueryDecision || d.Allow || d.Status != 404 || d.Code != "model_not_found" || d.Reasons[0] != "user: no entry matches" ||
		d.KeyAlias != "laptop" || d.KeyHash != gateway.HashKey("sk-secret-key-1234") || d.Team != "research" || d.User != "alice" ||
		d.Requested != "fast" || d.Resolved != "gpt-4o" || len(d.Chain) != 3 || !d.Stream || d.Revision != "rev-1" || d.RequestID != "req-1" {
		t.Errorf("decision event = %+v", d)
	}
	if v.Query != QueryVisibleModels || !v.Allow || v.Candidates != 3 || len(v.Visible) != 2 || v.Visible[0] != "a" {
		t.Errorf("visible_models event = %+v, want 2 of 3 candidates, sorted", v)
	}
	if d.DecisionID == "" || d.DecisionID == v.DecisionID {
		t.Errorf("decision ids %q and %q, want two different ids", d.DecisionID, v.DecisionID)
	}
	if bytes.Contains(out.Bytes(), []byte("sk-secret")) || bytes.Contains(out.Bytes(), []byte("alice@example.com")) {
		t.Error("the log holds the key or the user's email")
	}
}

func TestEvaluationErrorIsLogged(t *testing.T) {
	var out bytes.Buffer
	l, _ := New(Config{Authorizer: fakeAuthz{err: errors.New("boom")}, Output: &out})
	l.Start()
	_, _ = l.Decide(t.Context(), input())
	_ = l.Close(t.Context())
	var ev Event
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil || ev.Error != "boom" || ev.Allow {
		t.Errorf("event = %+v, %v; want the error and a deny", ev, err)
	}
}

// TestFullQueueDrops blocks the writer: decisions go on at full speed and
// the events that do not fit are counted, not waited for.
func TestFullQueueDrops(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	const queue = 4
	l, _ := New(Config{Authorizer: fakeAuthz{d: gateway.Decision{Allow: true, Status: 200}}, Output: w, QueueSize: queue})
	l.Start()
	// One event gets the writer stuck in Write.
	_, _ = l.Decide(context.Background(), input())
	<-w.entered
	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			_, _ = l.Decide(context.Background(), input())
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("decisions blocked on a stuck decision log")
	}
	if got := l.Dropped(); got != n-queue {
		t.Errorf("Dropped() = %d, want %d (all but the queue's %d)", got, n-queue, queue)
	}
	close(w.release)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := l.Written(); got != queue+1 {
		t.Errorf("Written() = %d, want %d", got, queue+1)
	}
	// After Close, events are dropped, never a panic.
	_, _ = l.Decide(context.Background(), input())
	if got := l.Dropped(); got != n-queue+1 {
		t.Errorf("after Close: Dropped() = %d, want %d", got, n-queue+1)
	}
}

func TestNewRequires(t *testing.T) {
	if _, err := New(Config{Output: io.Discard}); err == nil {
		t.Error("New without Authorizer: error = nil")
	}
	if _, err := New(Config{Authorizer: fakeAuthz{}}); err == nil {
		t.Error("New without Output: error = nil")
	}
}

// benchInput is a realistic call: a team key with allow-lists on every
// layer and an alias.
func benchInput() *gateway.Input {
	return &gateway.Input{
		Request: gateway.RequestInfo{ID: "req-bench", Route: gateway.RouteInference, Operation: "chat.completions", Method: "POST", Path: "/v1/chat/completions"},
		Principal: &gateway.Principal{
			Key:  &gateway.Key{ID: gateway.HashKey("sk-bench"), Alias: "bench", Models: []string{"fast", "gpt-4o-mini"}, TeamID: "research", UserID: "alice"},
			Team: &gateway.Team{ID: "research", Models: []string{"default-models", "openai/*"}},
			User: &gateway.User{ID: "alice", Role: gateway.RoleInternalUser, Models: []string{"gpt-4o", "fast"}},
		},
		Model: &gateway.Resolution{
			Requested: "fast", Found: true, Resolved: "gpt-4o",
			Chain:        []gateway.ChainLink{{Name: "fast", Kind: gateway.LinkAlias, Source: gateway.SourceTeam}, {Name: "gpt-4o", Kind: gateway.LinkModelGroup}, {Name: "openai/gpt-4o", Kind: gateway.LinkProviderModel}},
			Names:        []string{"fast", "gpt-4o", "openai/gpt-4o"},
			AccessGroups: []string{"default-models"},
		},
		Now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
	}
}

// BenchmarkDecide compares one decision of the default policy without a
// decision log, with one writing to io.Discard, and with one whose writer
// is stuck (every event dropped at a full queue).
func BenchmarkDecide(b *testing.B) {
	eng, err := rego.New(rego.Config{})
	if err != nil {
		b.Fatal(err)
	}
	stuck := &blockingWriter{release: make(chan struct{})}
	b.Cleanup(func() { close(stuck.release) })
	cases := []struct {
		name string
		out  io.Writer // nil: no decision log
	}{
		{"off", nil},
		{"on", io.Discard},
		{"full-queue", stuck},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			var authz gateway.Authorizer = eng
			var l *Logger
			if bc.out != nil {
				l, _ = New(Config{Authorizer: eng, Output: bc.out, Revision: eng.Revision})
				l.Start()
				authz = l
			}
			in := benchInput()
			ctx := context.Background()
			// Warm up: the principal's specialised policy (built off the
			// request path, milliseconds, once). With the stuck writer,
			// also fill the queue, so that every measured event is dropped.
			if !eng.Specialise(ctx, in) {
				b.Fatal("the bench principal was not specialised")
			}
			warm := 1
			if bc.out == stuck {
				warm = DefaultQueueSize + 1
			}
			for range warm {
				if _, err := authz.Decide(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			var dropped0 uint64
			if l != nil {
				dropped0 = l.Dropped()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if d, err := authz.Decide(ctx, in); err != nil || !d.Allow {
					b.Fatalf("Decide() = %+v, %v", d, err)
				}
			}
			b.StopTimer()
			if l != nil {
				b.ReportMetric(float64(l.Dropped()-dropped0)/float64(b.N), "dropped/op")
				if bc.out == io.Discard {
					_ = l.Close(ctx)
				}
			}
		})
	}
}
