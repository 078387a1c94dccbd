package httpapi

import (
	"testing"

	"github.com/regate/gateway/gateway"
)

// TestListCache: a set is rendered into the cache when met again, found by
// identity, and an equal but different set is not taken for it.
func TestListCache(t *testing.T) {
	var c listCache
	cands := &gateway.CandidateList{}
	a := map[string]struct{}{"m": {}}
	b := map[string]struct{}{"m": {}}
	if body, seen := c.get(a, cands); body != nil || seen {
		t.Fatalf("first get = %q, %t", body, seen)
	}
	if body, seen := c.get(a, cands); body != nil || !seen {
		t.Fatalf("second get = %q, %t; want seen", body, seen)
	}
	c.put(a, cands, []byte("list-a"))
	if body, _ := c.get(a, cands); string(body) != "list-a" {
		t.Errorf("get after put = %q", body)
	}
	if body, seen := c.get(b, cands); body != nil || seen {
		t.Errorf("an equal set of another identity = %q, %t", body, seen)
	}
	if body, _ := c.get(a, &gateway.CandidateList{}); body != nil {
		t.Errorf("another candidate list = %q", body)
	}
}
