package cache

import (
	"sync"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// near is the in-process cache: a bounded LRU of resolved policies keyed by
// the canonical query, each entry tagged with the store epoch and revision
// it was resolved at. An entry answers only at its own epoch and revision,
// so a revision bump or a new epoch makes every older entry unreachable at
// once; purge frees them.
type near struct {
	mu    sync.Mutex
	max   int
	items map[string]*nearEntry
	// head.next is the most recently used entry, head.prev the least.
	head nearEntry
}

type nearEntry struct {
	key        string
	epoch      string
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

// get returns the policy cached for key at g, unexpired at now.
func (n *near) get(key string, g *generation, now int64) (authz.Policy, bool) {
	n.mu.Lock()
	e, ok := n.items[key]
	if !ok || e.rev != g.rev || e.epoch != g.epoch || (e.expires != 0 && now >= e.expires) {
		n.mu.Unlock()
		return authz.Policy{}, false
	}
	n.unlink(e)
	n.pushFront(e)
	p := e.policy
	n.mu.Unlock()
	return p, true
}

// put stores p for key at epoch and rev, evicting the least recently used
// entry when full. An entry of a newer revision of the same epoch is never
// replaced by an older one.
func (n *near) put(key, epoch string, rev uint64, expires int64, p authz.Policy) {
	if n.max <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.items[key]; ok {
		if e.epoch == epoch && e.rev > rev {
			return
		}
		e.epoch, e.rev, e.expires, e.policy = epoch, rev, expires, p
		n.unlink(e)
		n.pushFront(e)
		return
	}
	if len(n.items) >= n.max {
		last := n.head.prev
		n.unlink(last)
		delete(n.items, last.key)
	}
	e := &nearEntry{key: key, epoch: epoch, rev: rev, expires: expires, policy: p}
	n.items[key] = e
	n.pushFront(e)
}

// purge drops every entry of another epoch or older than rev.
func (n *near) purge(epoch string, rev uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, e := range n.items {
		if e.epoch != epoch || e.rev < rev {
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
