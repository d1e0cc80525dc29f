package cache

import (
	"sync"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// near is the in-process cache: a bounded LRU of resolved policies keyed by
// the canonical query, each entry tagged with the store revision it was
// resolved at. An entry answers only at its own revision, so a revision bump
// makes every older entry unreachable at once; purge frees them.
type near struct {
	mu    sync.Mutex
	max   int
	items map[string]*nearEntry
	// head.next is the most recently used entry, head.prev the least.
	head nearEntry
}

type nearEntry struct {
	key        string
	rev        uint64
	expires    int64 // unix nanoseconds; 0 never
	policy     authz.Policy
	prev, next *nearEntry
}

func newNear(max int) *near {
	n := &near{max: max, items: make(map[string]*nearEntry, min(max, 1<<16))}
	n.head.next, n.head.prev = &n.head, &n.head
	return n
}

// get returns the policy cached for key at rev, unexpired at now.
func (n *near) get(key string, rev uint64, now int64) (authz.Policy, bool) {
	n.mu.Lock()
	e, ok := n.items[key]
	if !ok || e.rev != rev || (e.expires != 0 && now >= e.expires) {
		n.mu.Unlock()
		return authz.Policy{}, false
	}
	n.unlink(e)
	n.pushFront(e)
	p := e.policy
	n.mu.Unlock()
	return p, true
}

// put stores p for key at rev, evicting the least recently used entry when
// full. An entry of a newer revision is never replaced by an older one.
func (n *near) put(key string, rev uint64, expires int64, p authz.Policy) {
	if n.max <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.items[key]; ok {
		if e.rev > rev {
			return
		}
		e.rev, e.expires, e.policy = rev, expires, p
		n.unlink(e)
		n.pushFront(e)
		return
	}
	if len(n.items) >= n.max {
		last := n.head.prev
		n.unlink(last)
		delete(n.items, last.key)
	}
	e := &nearEntry{key: key, rev: rev, expires: expires, policy: p}
	n.items[key] = e
	n.pushFront(e)
}

// purge drops every entry older than rev.
func (n *near) purge(rev uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, e := range n.items {
		if e.rev < rev {
			n.unlink(e)
			delete(n.items, k)
		}
	}
}

func (n *near) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.items)
}

func (n *near) unlink(e *nearEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (n *near) pushFront(e *nearEntry) {
	e.prev, e.next = &n.head, n.head.next
	n.head.next.prev = e
	n.head.next = e
}
