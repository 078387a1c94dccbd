package httpapi

import (
	"reflect"
	"sync"

	"github.com/regate/gateway/gateway"
)

// The rendered model list of GET /v1/models, remembered by the identity of
// the visible set and the candidate list it was rendered from. The policy
// engine answers a principal's repeated lists with the same set (its list
// memo, DESIGN §10.17), so a repeated list is a copy of bytes rather than
// an encoding of every model object, and leaves no garbage behind.

// listCacheSize bounds the lists kept; when full the cache starts over.
// A list is rendered into the cache when its set is met a second time: a
// policy whose lists are not memoised (a fresh set each time) fills it with
// markers only.
const listCacheSize = 256

type listKey struct {
	visible uintptr // the visible set's map, pinned by the entry
	cands   *gateway.CandidateList
}

type renderedList struct {
	visible map[string]struct{} // keeps the map (and so its address) alive
	body    []byte
}

type listCache struct {
	mu sync.Mutex
	m  map[listKey]*renderedList
}

func keyOfList(visible map[string]struct{}, cands *gateway.CandidateList) listKey {
	return listKey{visible: reflect.ValueOf(visible).Pointer(), cands: cands}
}

// get returns the rendered list, or nil; seen reports whether the set was
// met before (then the caller renders it into the cache with put).
func (c *listCache) get(visible map[string]struct{}, cands *gateway.CandidateList) (body []byte, seen bool) {
	k := keyOfList(visible, cands)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		return e.body, true
	}
	c.add(k, &renderedList{visible: visible})
	return nil, false
}

func (c *listCache) put(visible map[string]struct{}, cands *gateway.CandidateList, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(keyOfList(visible, cands), &renderedList{visible: visible, body: body})
}

// add stores e; the caller holds mu.
func (c *listCache) add(k listKey, e *renderedList) {
	if c.m == nil || len(c.m) >= listCacheSize {
		c.m = make(map[listKey]*renderedList)
	}
	c.m[k] = e
}
