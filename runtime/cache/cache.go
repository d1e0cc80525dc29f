// Package cache is the policy cache: an authz.PolicyResolver decorator that
// answers logins from an in-process near cache (bounded LRU), then from a
// Redis cache of resolved policies shared by every node, and only then from
// the wrapped store. Entries are keyed by the canonical query (user, client,
// audience, connection, IdP groups), the store's epoch and the store
// revision they were resolved at, so a revision bump retires every older
// entry at once, and a new epoch (a store whose data was lost and
// re-created, which counts revisions from the start again) retires every
// entry whatever its revision.
//
// Invalidation: a store write that goes through Writer bumps the local
// revision before it returns (the very next login on this node misses) and
// publishes the new revision on a Redis channel; every node raises its
// revision on receipt. After a subscriber (re)connects, and every
// PollInterval, the node re-reads the store revision, so a missed message
// never leaves stale entries for long.
//
// Faults: the cache is never a reason to fail a login. Any Redis error or
// timeout falls through to the wrapped store, is counted in metrics and
// turns Check into an error (degraded); Redis is then skipped for RetryAfter
// and the cache resumes by itself once Redis answers again.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Source is what the cache wraps: the store's resolver and its revision.
type Source interface {
	authz.PolicyResolver
	Revision(ctx context.Context) (uint64, error)
}

// Epocher is a Source whose data can be lost and re-created (the Redis
// store): Epoch names the incarnation of its data as of its last read,
// without I/O, and changes whenever the data is re-created, lost or
// recovered. Revisions are only comparable within one epoch. A Source
// that does not implement it has one epoch ("").
type Epocher interface {
	Epoch() string
}

// generation is what entries are keyed by besides the query: the store's
// epoch (tag: a short hash of it for Redis keys) and revision.
type generation struct {
	epoch, tag string
	rev        uint64
}

func newGeneration(epoch string, rev uint64) *generation {
	g := &generation{epoch: epoch, rev: rev}
	if epoch != "" {
		sum := sha256.Sum256([]byte(epoch))
		g.tag = hex.EncodeToString(sum[:6])
	}
	return g
}

// Options configure a Cache. Zero values take the defaults in brackets.
type Options struct {
	// Client is the Redis cache and pub/sub connection (single node, Sentinel
	// or Cluster). Nil runs the near cache only, invalidated by local writes
	// and polling. Create it with ContextTimeoutEnabled (as the redis
	// package's Config.NewClient does), or OpTimeout cannot cut a hung call
	// short of the client's ReadTimeout.
	Client redis.UniversalClient
	// Prefix starts every cache key ["claimsmith:"].
	Prefix string
	// Channel carries invalidations [Prefix + "policy-invalidate"].
	Channel string
	// NearSize bounds the in-process cache in entries [10000]; negative
	// disables it.
	NearSize int
	// NearTTL bounds an entry's life in the near cache [1m], a safety net in
	// case an invalidation is lost while pub/sub is down.
	NearTTL time.Duration
	// RedisTTL is the life of a Redis cache entry [10m]; entries of old
	// revisions simply expire.
	RedisTTL time.Duration
	// OpTimeout bounds every Redis cache operation on the login path [50ms].
	OpTimeout time.Duration
	// RetryAfter is how long Redis is skipped after an error [1s].
	RetryAfter time.Duration
	// PollInterval re-reads the store revision [5s]; negative disables.
	PollInterval time.Duration
	// Logger receives warnings about Redis faults [discard].
	Logger *slog.Logger
	// Registerer receives the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock [time.Now].
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = "claimsmith:"
	}
	if o.Channel == "" {
		o.Channel = o.Prefix + "policy-invalidate"
	}
	if o.NearSize == 0 {
		o.NearSize = 10000
	}
	if o.NearTTL == 0 {
		o.NearTTL = time.Minute
	}
	if o.RedisTTL == 0 {
		o.RedisTTL = 10 * time.Minute
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 50 * time.Millisecond
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = time.Second
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Cache is the decorator. Create it with New, start its background work
// with Start and stop it with Close.
type Cache struct {
	src  Source
	ep   Epocher // nil: one epoch
	opt  Options
	log  *slog.Logger
	near *near
	sf   singleflight.Group
	m    *metrics

	// gen is the store's epoch and the highest revision known to this
	// node in it.
	gen atomic.Pointer[generation]

	// skipUntil (unix ns) is when Redis may be tried again after an error.
	skipUntil atomic.Int64
	// subscribed is true while the invalidation subscription is live.
	subscribed atomic.Bool
	// degraded is true from a Redis error until the next success.
	degraded atomic.Bool
	// ps is the live subscription, closed by Close to unblock its reader.
	psMu sync.Mutex
	ps   *redis.PubSub

	errMu   sync.Mutex
	lastErr error
	errAt   time.Time

	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

var _ authz.PolicyResolver = (*Cache)(nil)

// New returns a cache around src. It does no I/O; Start reads the revision
// and subscribes.
func New(src Source, opt Options) (*Cache, error) {
	if src == nil {
		return nil, fmt.Errorf("policy cache: source: %w", runtime.ErrInvalid)
	}
	opt.defaults()
	c := &Cache{src: src, opt: opt, log: opt.Logger, near: newNear(opt.NearSize)}
	c.ep, _ = src.(Epocher)
	c.gen.Store(newGeneration("", 0))
	m, err := newMetrics(opt.Registerer)
	if err != nil {
		return nil, err
	}
	c.m = m
	return c, nil
}

// Start reads the store revision and starts the subscriber and the poller.
// It fails only when the store revision cannot be read.
func (c *Cache) Start(ctx context.Context) error {
	r, err := c.src.Revision(ctx)
	if err != nil {
		return fmt.Errorf("policy cache: read store revision: %w", err)
	}
	c.advance(c.epoch(), r)
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop = stop
	if c.opt.Client != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.subscribe(bg) }()
	}
	if c.opt.PollInterval > 0 {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.poll(bg) }()
	}
	return nil
}

// Close stops the background work. It does not close the Redis client.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.stop != nil {
		c.stop()
	}
	c.psMu.Lock()
	if c.ps != nil {
		_ = c.ps.Close()
	}
	c.psMu.Unlock()
	c.wg.Wait()
	return nil
}

// Revision is the highest store revision this node knows.
func (c *Cache) Revision() uint64 { return c.gen.Load().rev }

// epoch is the source's current epoch.
func (c *Cache) epoch() string {
	if c.ep == nil {
		return ""
	}
	return c.ep.Epoch()
}

// ResolvePolicy implements authz.PolicyResolver. The returned slices are the
// caller's own.
func (c *Cache) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	g := c.gen.Load()
	if e := c.epoch(); e != g.epoch {
		// The store's data was lost, re-created or recovered since this
		// node last looked: nothing cached before may answer.
		if g = c.newEpoch(ctx, e); g == nil {
			return c.src.ResolvePolicy(ctx, q)
		}
	}
	key := canonicalKey(q)
	now := c.opt.Now().UnixNano()
	if p, ok := c.near.get(key, g, now); ok {
		c.m.nearHit.Inc()
		return clonePolicy(p), nil
	}
	ch := c.sf.DoChan(g.tag+"\x00"+strconv.FormatUint(g.rev, 10)+"\x00"+key, func() (any, error) {
		// Detached from the first caller's cancellation so that one caller
		// giving up does not fail the others; its deadline still bounds it.
		fctx := context.WithoutCancel(ctx)
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			fctx, cancel = context.WithDeadline(fctx, dl)
			defer cancel()
		}
		return c.load(fctx, q, key, g)
	})
	select {
	case <-ctx.Done():
		return authz.Policy{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return authz.Policy{}, r.Err
		}
		return clonePolicy(r.Val.(authz.Policy)), nil
	}
}

// newEpoch moves the cache to the source's epoch e: it reads the store
// revision, as Start does. nil when it cannot (the store fails, or its
// epoch moved again meanwhile): the caller then asks the store uncached.
func (c *Cache) newEpoch(ctx context.Context, e string) *generation {
	r, err := c.src.Revision(ctx)
	if err != nil || c.epoch() != e {
		return nil
	}
	c.advance(e, r)
	if g := c.gen.Load(); g.epoch == e {
		return g
	}
	return nil
}

// load answers a near-cache miss: the Redis cache, then the store.
func (c *Cache) load(ctx context.Context, q authz.PolicyQuery, key string, g *generation) (authz.Policy, error) {
	rkey := c.redisKey(g, g.rev, key)
	if p, ok := c.redisGet(ctx, rkey); ok {
		p.Revision = g.rev
		c.m.redisHit.Inc()
		c.near.put(key, g.epoch, g.rev, c.expiry(), p)
		return p, nil
	}
	c.m.miss.Inc()
	p, err := c.src.ResolvePolicy(ctx, q)
	if err != nil {
		return authz.Policy{}, err
	}
	if c.epoch() != g.epoch {
		// The store's epoch moved during the read: the answer may belong to
		// either side, so it is neither cached nor a revision to adopt.
		return clipPolicy(p), nil
	}
	at := p.Revision
	if at == 0 {
		// A source that does not report revisions: the revision read before
		// resolving is a safe lower bound for the data returned.
		at = g.rev
		p.Revision = g.rev
	}
	// The store told us of a newer revision than we knew: adopt it now
	// rather than wait for the invalidation message.
	c.advance(g.epoch, at)
	p = clipPolicy(p)
	c.near.put(key, g.epoch, at, c.expiry(), p)
	if at != g.rev {
		rkey = c.redisKey(g, at, key)
	}
	c.redisSet(ctx, rkey, p)
	return p, nil
}

func (c *Cache) expiry() int64 {
	if c.opt.NearTTL <= 0 {
		return 0
	}
	return c.opt.Now().Add(c.opt.NearTTL).UnixNano()
}

// Invalidate records that the store is now at rev: the local revision rises
// at once (so this node's next login misses) and the revision is published
// to the other nodes. A publish failure is counted and logged, not returned:
// the write itself succeeded and the other nodes catch up by polling.
func (c *Cache) Invalidate(ctx context.Context, rev uint64) {
	c.advance(c.gen.Load().epoch, rev)
	if c.opt.Client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.OpTimeout)
	defer cancel()
	if err := c.opt.Client.Publish(ctx, c.opt.Channel, strconv.FormatUint(rev, 10)).Err(); err != nil {
		c.m.errPublish.Inc()
		c.fail(fmt.Errorf("publish invalidation: %w", err))
		return
	}
}

// advance moves the cache to revision rev of epoch and drops the near
// entries it retires. Within an epoch the revision never goes down (a late
// message must not resurrect entries); a new epoch — only the source's
// current one, so a late reader cannot bring an old one back — starts
// over at rev.
func (c *Cache) advance(epoch string, rev uint64) {
	for {
		cur := c.gen.Load()
		if epoch == cur.epoch && rev <= cur.rev {
			return
		}
		if epoch != cur.epoch && epoch != c.epoch() {
			return
		}
		next := newGeneration(epoch, rev)
		if c.gen.CompareAndSwap(cur, next) {
			c.m.invalidations.Inc()
			if epoch != cur.epoch && cur.epoch != "" {
				c.log.Warn("policy cache: the store's data changed epoch (lost, re-created or restored): every entry retired",
					"epoch", next.tag, "revision", rev)
			}
			c.near.purge(next.epoch, next.rev)
			return
		}
	}
}

// Writer returns w wrapped so that every successful Apply invalidates the
// cache before it returns.
func (c *Cache) Writer(w authz.Writer) authz.Writer { return &writer{w: w, c: c} }

type writer struct {
	w authz.Writer
	c *Cache
}

func (w *writer) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	rev, err := w.w.Apply(ctx, expected, ops...)
	if err != nil {
		return rev, err
	}
	w.c.Invalidate(ctx, rev)
	return rev, nil
}

// Check is the health check: nil when Redis (cache and invalidation
// subscription) works, an error describing the degradation otherwise.
// Logins keep working while it fails.
func (c *Cache) Check(ctx context.Context) error {
	if c.opt.Client == nil {
		return nil
	}
	c.errMu.Lock()
	lastErr, at := c.lastErr, c.errAt
	c.errMu.Unlock()
	if c.degraded.Load() {
		return fmt.Errorf("policy cache degraded since %s: %w: %w", at.UTC().Format(time.RFC3339), runtime.ErrUnavailable, lastErr)
	}
	if c.stop != nil && !c.closed.Load() && !c.subscribed.Load() {
		return fmt.Errorf("policy cache degraded: invalidation subscription not established: %w", runtime.ErrUnavailable)
	}
	return nil
}

// fail marks Redis as failing: it is skipped for RetryAfter, and Check
// reports degraded until an operation succeeds again.
func (c *Cache) fail(err error) {
	now := c.opt.Now()
	c.skipUntil.Store(now.Add(c.opt.RetryAfter).UnixNano())
	c.errMu.Lock()
	c.lastErr, c.errAt = err, now
	c.errMu.Unlock()
	if !c.degraded.Swap(true) {
		c.m.degraded.Set(1)
		c.log.Warn("policy cache: redis unavailable, serving from the store", "err", err)
	}
}

// ok records a successful Redis operation; cheap when nothing was wrong.
func (c *Cache) ok() {
	if !c.degraded.Load() {
		return
	}
	if c.degraded.Swap(false) {
		c.skipUntil.Store(0)
		c.m.degraded.Set(0)
		c.log.Info("policy cache: redis is back")
	}
}

func (c *Cache) redisUsable() bool {
	return c.opt.Client != nil && c.opt.Now().UnixNano() >= c.skipUntil.Load()
}

func (c *Cache) redisGet(ctx context.Context, rkey string) (authz.Policy, bool) {
	if !c.redisUsable() {
		return authz.Policy{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.OpTimeout)
	defer cancel()
	b, err := c.opt.Client.Get(ctx, rkey).Bytes()
	if errors.Is(err, redis.Nil) {
		c.ok()
		return authz.Policy{}, false
	}
	if err != nil {
		c.m.errGet.Inc()
		c.fail(fmt.Errorf("get %s: %w", rkey, err))
		return authz.Policy{}, false
	}
	c.ok()
	p, err := decodeEntry(b)
	if err != nil {
		// A corrupt entry is a miss; the store answer overwrites it.
		c.m.errDecode.Inc()
		c.log.Warn("policy cache: bad entry", "key", rkey, "err", err)
		return authz.Policy{}, false
	}
	return p, true
}

func (c *Cache) redisSet(ctx context.Context, rkey string, p authz.Policy) {
	if !c.redisUsable() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opt.OpTimeout)
	defer cancel()
	if err := c.opt.Client.Set(ctx, rkey, encodeEntry(p), c.opt.RedisTTL).Err(); err != nil {
		c.m.errSet.Inc()
		c.fail(fmt.Errorf("set %s: %w", rkey, err))
		return
	}
	c.ok()
}

// redisKey is prefix "pc:" [epoch tag ":"] revision ":" SHA-256 of the
// canonical query: entries of another epoch (a store re-created with
// revisions it had before) are never read. The hash keeps keys short and
// free of user-controlled bytes.
func (c *Cache) redisKey(g *generation, rev uint64, key string) string {
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	b.Grow(len(c.opt.Prefix) + 3 + len(g.tag) + 1 + 20 + 1 + 32)
	b.WriteString(c.opt.Prefix)
	b.WriteString("pc:")
	if g.tag != "" {
		b.WriteString(g.tag)
		b.WriteByte(':')
	}
	b.WriteString(strconv.FormatUint(rev, 10))
	b.WriteByte(':')
	b.WriteString(hex.EncodeToString(sum[:16]))
	return b.String()
}

// subscribe keeps the invalidation subscription alive. Every (re)subscribe
// confirmation triggers a resync of the revision from the store, since
// messages published while we were disconnected are lost.
func (c *Cache) subscribe(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		ps := c.opt.Client.Subscribe(ctx, c.opt.Channel)
		c.psMu.Lock()
		if ctx.Err() != nil {
			c.psMu.Unlock()
			_ = ps.Close()
			return
		}
		c.ps = ps
		c.psMu.Unlock()
		c.receive(ctx, ps)
		c.psMu.Lock()
		c.ps = nil
		c.psMu.Unlock()
		_ = ps.Close()
		c.subscribed.Store(false)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.opt.RetryAfter)
	}
}

// receive reads messages until the connection fails.
func (c *Cache) receive(ctx context.Context, ps *redis.PubSub) {
	const ping = 5 * time.Second
	for {
		msg, err := ps.ReceiveTimeout(ctx, ping)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() && c.subscribed.Load() {
				// Quiet channel: check the connection is still there.
				pctx, cancel := context.WithTimeout(ctx, c.opt.OpTimeout*4)
				err = ps.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			c.m.errSubscribe.Inc()
			c.subscribed.Store(false)
			c.fail(fmt.Errorf("invalidation subscription: %w", err))
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.subscribed.Store(true)
				c.ok()
				c.resync(ctx)
			}
		case *redis.Message:
			rev, err := strconv.ParseUint(m.Payload, 10, 64)
			if err != nil {
				c.log.Warn("policy cache: bad invalidation message", "channel", m.Channel, "payload", m.Payload)
				continue
			}
			// A revision not above the known one is a late message, this
			// node's own write, or a write to a re-created store (a new
			// epoch, counting revisions from the start again): ask the
			// store, whose marker tells.
			if g := c.gen.Load(); rev > g.rev {
				c.advance(g.epoch, rev)
			} else {
				c.resync(ctx)
			}
		case *redis.Pong:
		}
	}
}

func (c *Cache) resync(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := c.src.Revision(rctx)
	if err != nil {
		c.m.errRevision.Inc()
		c.log.Warn("policy cache: resync store revision", "err", err)
		return
	}
	c.advance(c.epoch(), r)
}

func (c *Cache) poll(ctx context.Context) {
	t := time.NewTicker(c.opt.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.resync(ctx)
		}
	}
}

// canonicalKey identifies a query. IdP groups matter only through mappings of
// the connection, so without a connection they are left out; their order and
// duplicates never matter, so they are sorted and de-duplicated.
func canonicalKey(q authz.PolicyQuery) string {
	n := len(q.UserID) + len(q.ClientID) + len(q.Audience) + len(q.Connection) + 4*8 + 1
	var sorted [16]string
	var groups []string
	if q.Connection != "" && len(q.IdPGroups) > 0 {
		groups = q.IdPGroups
		if !strictlySorted(groups) {
			if len(groups) <= len(sorted) {
				groups = append(sorted[:0], groups...)
			} else {
				groups = slices.Clone(groups)
			}
			slices.Sort(groups)
			groups = slices.Compact(groups)
		}
		for _, g := range groups {
			n += len(g) + 8
		}
	}
	var stack [256]byte
	b := stack[:0]
	if n > len(stack) {
		b = make([]byte, 0, n)
	}
	// Every field is length-prefixed, so ids may contain any byte without
	// two queries sharing a key.
	for _, f := range [...]string{q.UserID, q.ClientID, q.Audience, q.Connection} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	b = append(b, '|')
	for _, g := range groups {
		b = strconv.AppendInt(b, int64(len(g)), 10)
		b = append(b, ':')
		b = append(b, g...)
	}
	return string(b)
}

func strictlySorted(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func clipPolicy(p authz.Policy) authz.Policy {
	p.Groups = slices.Clip(p.Groups)
	p.Roles = slices.Clip(p.Roles)
	p.Permissions = slices.Clip(p.Permissions)
	return p
}

// clonePolicy gives each caller its own slices: a rule that sorts or edits
// them must not change what the next login gets.
func clonePolicy(p authz.Policy) authz.Policy {
	p.Groups = slices.Clone(p.Groups)
	p.Roles = slices.Clone(p.Roles)
	p.Permissions = slices.Clone(p.Permissions)
	return p
}

// entry is the Redis encoding of a policy.
type entry struct {
	Groups      []string `json:"g"`
	Roles       []string `json:"r"`
	Permissions []string `json:"p"`
}

func encodeEntry(p authz.Policy) []byte {
	e := entry{Groups: p.Groups, Roles: p.Roles, Permissions: p.Permissions}
	for _, s := range []*[]string{&e.Groups, &e.Roles, &e.Permissions} {
		if *s == nil {
			*s = []string{}
		}
	}
	b, _ := json.Marshal(e)
	return b
}

// decodeEntry reads a cached policy. Redis is shared with other programs, so
// the value is checked: a JSON object with three string arrays, nothing else.
func decodeEntry(b []byte) (authz.Policy, error) {
	var e entry
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return authz.Policy{}, fmt.Errorf("policy cache entry: %w", err)
	}
	if dec.More() {
		return authz.Policy{}, errors.New("policy cache entry: trailing data")
	}
	if e.Groups == nil || e.Roles == nil || e.Permissions == nil {
		return authz.Policy{}, errors.New("policy cache entry: missing g, r or p")
	}
	return authz.Policy{Groups: e.Groups, Roles: e.Roles, Permissions: e.Permissions}, nil
}
