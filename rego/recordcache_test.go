package rego

import (
	"errors"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regate/gateway/gateway"
)

func TestRecordCache(t *testing.T) {
	var c recordCache[gateway.Team]
	calls := 0
	convert := func(tm *gateway.Team) (*ast.Term, error) {
		calls++
		return teamTerm(tm)
	}
	a := &gateway.Team{ID: "a", Models: []string{"gpt-4o"}}
	first, err := c.get(a, convert)
	if err != nil {
		t.Fatalf("get(a) error = %v", err)
	}
	again, err := c.get(a, convert)
	if err != nil || again != first || calls != 1 {
		t.Errorf("get(a) again = %p, %v after %d conversions, want the cached %p after 1", again, err, calls, first)
	}
	// A changed record is a new pointer: it is converted, never served the
	// old conversion.
	b := &gateway.Team{ID: "a", Models: []string{"claude"}}
	got, err := c.get(b, convert)
	if err != nil {
		t.Fatalf("get(b) error = %v", err)
	}
	want, _ := teamTerm(b)
	if got == first || got.Value.Compare(want.Value) != 0 {
		t.Errorf("get(changed record) = %v, want %v", got, want)
	}
}

func TestRecordCacheBounded(t *testing.T) {
	var c recordCache[gateway.User]
	for range recordCacheSize * 2 {
		if _, err := c.get(&gateway.User{ID: "u"}, userTerm); err != nil {
			t.Fatalf("get() error = %v", err)
		}
	}
	n := 0
	c.m.Range(func(_, _ any) bool { n++; return true })
	if n > recordCacheSize || n == 0 {
		t.Errorf("cache holds %d records, want 1 to %d", n, recordCacheSize)
	}
}

func TestRecordCacheSkipsErrors(t *testing.T) {
	var c recordCache[gateway.Key]
	k := &gateway.Key{ID: "k"}
	boom := errors.New("boom")
	if _, err := c.get(k, func(*gateway.Key) (*ast.Term, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("get(failing conversion) error = %v, want %v", err, boom)
	}
	got, err := c.get(k, liveKeyTerm)
	if err != nil || got == nil {
		t.Errorf("get(k) after a failed conversion = %v, %v; want a conversion", got, err)
	}
}

// TestDecideSeesChangedRecords: a store replaces a record whole on write,
// and the engine must decide on the new one.
func TestDecideSeesChangedRecords(t *testing.T) {
	e := newEngine(t)
	in := &gateway.Input{
		Request:   request(gateway.RouteInference),
		Principal: principal([]string{"gpt-4o"}, nil, nil),
		Model:     resolution("gpt-4o", []string{"gpt-4o"}),
		Now:       testNow,
	}
	if d, err := e.Decide(t.Context(), in); err != nil || !d.Allow {
		t.Fatalf("Decide(key allowed gpt-4o) = %+v, %v, want allow", d, err)
	}
	changed := *in.Principal.Key
	changed.Models = []string{"claude"}
	in.Principal = &gateway.Principal{Key: &changed}
	if d, err := e.Decide(t.Context(), in); err != nil || d.Allow {
		t.Errorf("Decide(key changed to claude) = %+v, %v, want deny", d, err)
	}
	changed2 := changed
	changed2.Blocked = true
	changed2.Models = []string{"gpt-4o"}
	in.Principal = &gateway.Principal{Key: &changed2}
	if d, err := e.Decide(t.Context(), in); err != nil || d.Allow || d.Status != 401 {
		t.Errorf("Decide(key blocked) = %+v, %v, want 401", d, err)
	}
}
