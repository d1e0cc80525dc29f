package login

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/replay"
)

// Replay protection of the signed dialects (Standard Webhooks for the
// native callers and Supabase, ZITADEL-Signature): a signed request is
// accepted once within its tolerance window. Each verifier remembers the
// ids it accepted in a replay.Store: with a shared store (the Redis store:
// runtime/replay/redis) every node and every restart refuses what one node
// accepted; without one (file or in-memory store, one node) an in-process
// ReplayCache per verifier does. A store that cannot answer (Redis down or
// hung, the in-process cache full) refuses the request with 503/504: never
// let a signed request through unchecked (fail closed, whatever
// store.on_unavailable says: a snapshot cannot answer whether an id was
// seen).

// ReplayCaches are a server's replay state, by verifier, living as long as
// the server so that rebuilt handlers (a configuration reload) keep what
// the old ones saw: the shared store when there is one, else one
// in-process cache per verifier. Create it with NewReplayCaches or
// NewSharedReplayCaches.
type ReplayCaches struct {
	mu      sync.Mutex
	m       map[string]*ReplayCache
	shared  replay.Store
	metrics *hooks.Metrics
}

// NewReplayCaches returns in-process caches; m, when not nil, exposes each
// cache's fill and capacity (claimsmith_webhook_replay_ids and
// claimsmith_webhook_replay_capacity) and the refusals
// (claimsmith_webhook_replay_refusals_total), by verifier.
func NewReplayCaches(m *hooks.Metrics) *ReplayCaches {
	return &ReplayCaches{m: map[string]*ReplayCache{}, metrics: m}
}

// NewSharedReplayCaches keeps every verifier's ids in s (under the
// verifier's name), shared with every node using the same store.
func NewSharedReplayCaches(m *hooks.Metrics, s replay.Store) *ReplayCaches {
	rc := NewReplayCaches(m)
	rc.shared = s
	return rc
}

// guard returns the replay check of the verifier named key, its in-process
// cache bounded to capacity (created on first use); a fresh unobserved
// cache when rc is nil.
func (rc *ReplayCaches) guard(key string, capacity int) *replayGuard {
	if rc == nil {
		return &replayGuard{store: NewReplayCache(capacity)}
	}
	g := &replayGuard{}
	if rc.metrics != nil {
		g.replayed, g.failed = rc.metrics.ReplayRefusals(key)
	}
	if rc.shared != nil {
		g.store, g.scope = rc.shared, key+":"
		return g
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c, ok := rc.m[key]
	if !ok {
		c = NewReplayCache(capacity)
		if rc.metrics != nil {
			c.observe(rc.metrics.ReplayGauges(key))
		}
		rc.m[key] = c
	}
	c.Resize(capacity)
	g.store = c
	return g
}

// replayGuard is one verifier's replay check.
type replayGuard struct {
	store replay.Store
	// scope prefixes ids in a shared store (several verifiers share it,
	// and two callers may use the same ids).
	scope string
	// replayed and failed count refusals (nil: not counted).
	replayed, failed prometheus.Counter
}

// forgetTimeout bounds the Forget of a failed request's id; it runs on a
// context detached from the request's, which may be cancelled already.
const forgetTimeout = 2 * time.Second

// remember accepts id once until the end of its window: a replay is an
// authentication failure (401, naming scheme), a store that cannot answer
// refuses the request (503/504).
func (g *replayGuard) remember(ctx context.Context, scheme, id string, now, until time.Time) error {
	fresh, err := g.store.Remember(ctx, g.scope+id, now, until)
	if err != nil {
		inc(g.failed)
		return &signedRefusal{fmt.Errorf("replay check: %w", err)}
	}
	if !fresh {
		inc(g.replayed)
		return &signedRefusal{hooks.AuthFailure(scheme, "message %q was already received (replay)", truncate(id, 64))}
	}
	return nil
}

// forget drops id again (see WebhookVerifier.Release). A failure leaves the
// id remembered: the retry is then refused as a replay, never a request
// accepted twice.
func (g *replayGuard) forget(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forgetTimeout)
	defer cancel()
	_ = g.store.Forget(ctx, g.scope+id)
}

// signedRefusal is a refusal of a request whose signature matched (a
// replay, or a replay store that could not answer): a dialect trying its
// callers' secrets in turn stops at it — another caller sharing the secret
// must not accept what this one refused.
type signedRefusal struct{ err error }

func (e *signedRefusal) Error() string { return e.err.Error() }
func (e *signedRefusal) Unwrap() error { return e.err }

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// ReplayCache remembers message ids in the process until their timestamp
// leaves the tolerance window (evicted by that time: an id older than the
// window can never be replayed, the timestamp check refuses it by itself).
// Its size is bounded (ReplayCapacity); a cache full of unexpired ids
// refuses new ones (fail closed) instead of forgetting ids that could then
// be replayed. It is the replay.Store of a single node.
type ReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]int64 // id → unix nanoseconds it expires at
	exp  expiryHeap
	// fill, when set, follows len(seen) (the metrics' view of the cache).
	fill, capacity prometheus.Gauge
}

var _ replay.Store = (*ReplayCache)(nil)

// NewReplayCache returns a cache holding at most max ids (<= 0:
// DefaultReplayCacheSize).
func NewReplayCache(max int) *ReplayCache {
	if max <= 0 {
		max = DefaultReplayCacheSize
	}
	return &ReplayCache{max: max, seen: make(map[string]int64)}
}

// Resize sets the bound (a reload may change hooks.replay_rate); ids
// already held stay until they expire.
func (c *ReplayCache) Resize(max int) {
	if max <= 0 {
		max = DefaultReplayCacheSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max
	if c.capacity != nil {
		c.capacity.Set(float64(max))
	}
}

// observe makes the gauges follow the cache's fill and capacity.
func (c *ReplayCache) observe(fill, capacity prometheus.Gauge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fill, c.capacity = fill, capacity
	fill.Set(float64(len(c.seen)))
	capacity.Set(float64(c.max))
}

// Remember implements replay.Store: it records id until the given time and
// reports false when id is already recorded and not yet expired at now.
func (c *ReplayCache) Remember(_ context.Context, id string, now, until time.Time) (bool, error) {
	n, u := now.UnixNano(), until.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.report()
	for len(c.exp) > 0 && c.exp[0].until <= n {
		e := heap.Pop(&c.exp).(expiry)
		if t, ok := c.seen[e.id]; ok && t == e.until {
			delete(c.seen, e.id)
		}
	}
	if t, ok := c.seen[id]; ok && t > n {
		return false, nil
	}
	if len(c.seen) >= c.max {
		return false, fmt.Errorf("%w: replay cache full (%d message ids within the tolerance window; raise hooks.replay_rate)", runtime.ErrUnavailable, c.max)
	}
	c.seen[id] = u
	heap.Push(&c.exp, expiry{id: id, until: u})
	return true, nil
}

// report updates the fill gauge; the caller holds mu.
func (c *ReplayCache) report() {
	if c.fill != nil {
		c.fill.Set(float64(len(c.seen)))
	}
}

// Forget implements replay.Store: it drops id (its heap entry expires on
// its own).
func (c *ReplayCache) Forget(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, id)
	c.report()
	return nil
}

// Len is the number of ids remembered (expired ones may still count until
// the next Remember prunes them).
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiry struct {
	id    string
	until int64 // unix nanoseconds
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
