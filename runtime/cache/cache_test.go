package cache_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// counting wraps a store and counts (and optionally delays) resolutions.
type counting struct {
	*memory.Store
	calls atomic.Int64
	delay time.Duration
}

func (c *counting) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	c.calls.Add(1)
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return authz.Policy{}, ctx.Err()
		}
	}
	return c.Store.ResolvePolicy(ctx, q)
}

func newStore(t testing.TB) *counting {
	t.Helper()
	st := memory.New(memory.Options{})
	if _, err := st.Apply(context.Background(), 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	return &counting{Store: st}
}

func client(t testing.TB, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        []string{srv.Addr()},
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
		// Per-call budgets (OpTimeout) are contexts.
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func newCache(t testing.TB, src cache.Source, opt cache.Options) *cache.Cache {
	t.Helper()
	if opt.OpTimeout == 0 {
		// Generous: -race on a busy shared machine; fault tests set their own.
		opt.OpTimeout = time.Second
	}
	c, err := cache.New(src, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var alice = authz.PolicyQuery{UserID: "auth0|alice", ClientID: authztest.Portal}

func TestAnswersMatchTheStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	c := newCache(t, st, cache.Options{Client: client(t, srv)})
	ctx := context.Background()
	for _, tc := range authztest.ResolutionCases() {
		t.Run(tc.Name, func(t *testing.T) {
			for i := 0; i < 2; i++ { // miss, then near hit
				got, err := c.ResolvePolicy(ctx, tc.Query)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := st.Store.ResolvePolicy(ctx, tc.Query)
				if !samePolicy(got, want) {
					t.Fatalf("pass %d: got %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

func samePolicy(a, b authz.Policy) bool {
	norm := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return reflect.DeepEqual(norm(a.Groups), norm(b.Groups)) && reflect.DeepEqual(norm(a.Roles), norm(b.Roles)) &&
		reflect.DeepEqual(norm(a.Permissions), norm(b.Permissions))
}

func TestNearThenRedisThenStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	reg := prometheus.NewRegistry()
	a := newCache(t, st, cache.Options{Client: client(t, srv), Registerer: reg})
	b := newCache(t, st, cache.Options{Client: client(t, srv)})
	ctx := context.Background()

	p1, err := a.ResolvePolicy(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ResolvePolicy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("store resolved %d times for two lookups on one node, want 1", n)
	}
	// Node B shares the Redis cache: no store call.
	p2, err := b.ResolvePolicy(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("store resolved %d times after a lookup on node B, want 1 (Redis hit)", n)
	}
	if !samePolicy(p1, p2) {
		t.Fatalf("node B got %+v from Redis, node A %+v", p2, p1)
	}
	// IdP group order and duplicates do not matter; without a connection
	// IdP groups are ignored.
	q := alice
	q.IdPGroups = []string{"x", "y"}
	if _, err := a.ResolvePolicy(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("IdP groups without connection changed the cache key: %d store calls", n)
	}
	q = authz.PolicyQuery{UserID: "auth0|alice", ClientID: authztest.Portal, Connection: "corp-ad", IdPGroups: []string{"Domain Admins", "b", "b"}}
	if _, err := a.ResolvePolicy(ctx, q); err != nil {
		t.Fatal(err)
	}
	q.IdPGroups = []string{"b", "Domain Admins"}
	if _, err := a.ResolvePolicy(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 2 {
		t.Fatalf("store calls = %d, want 2 (reordered IdP groups share an entry)", n)
	}
	if got := metricValue(t, reg, "claimsmith_policy_cache_lookups_total", "near"); got != 3 {
		t.Fatalf("near hits = %v, want 3", got)
	}
}

// metricValue reads a counter or gauge from reg; label selects one series
// by any label value ("" for unlabelled metrics).
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetValue() == label
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestReturnedSlicesAreTheCallers(t *testing.T) {
	st := newStore(t)
	c := newCache(t, st, cache.Options{})
	ctx := context.Background()
	p, err := c.ResolvePolicy(ctx, alice)
	if err != nil || len(p.Roles) == 0 {
		t.Fatalf("%+v %v", p, err)
	}
	want := p.Roles[0]
	p.Roles[0] = "tampered"
	p2, _ := c.ResolvePolicy(ctx, alice)
	if p2.Roles[0] != want {
		t.Fatalf("a caller's edit leaked into the cache: %q", p2.Roles[0])
	}
}

func addBob(t *testing.T, w authz.Writer) uint64 {
	t.Helper()
	rev, err := w.Apply(context.Background(), 0, &authz.AddGroupMembers{GroupID: "g-eng", UserIDs: []string{"auth0|bob"}})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

var bob = authz.PolicyQuery{UserID: "auth0|bob", ClientID: authztest.Portal}

func TestWriteVisibleOnSameNodeAtOnceAndOnOtherNodeByPubSub(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	// Polling off: only pub/sub may tell node B.
	a := newCache(t, st, cache.Options{Client: client(t, srv), PollInterval: -1})
	b := newCache(t, st, cache.Options{Client: client(t, srv), PollInterval: -1})
	ctx := context.Background()
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	for _, n := range []*cache.Cache{a, b} {
		p, err := n.ResolvePolicy(ctx, bob)
		if err != nil || len(p.Groups) != 0 {
			t.Fatalf("bob before: %+v %v", p, err)
		}
	}
	start := time.Now()
	addBob(t, a.Writer(st))
	p, err := a.ResolvePolicy(ctx, bob)
	if err != nil || len(p.Groups) == 0 {
		t.Fatalf("node A right after its own write: %+v %v; want bob in Engineering", p, err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		p, err := b.ResolvePolicy(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Groups) > 0 {
			t.Logf("node B saw the write after %v", time.Since(start))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B still serves the old policy 1s after the write")
		}
		time.Sleep(time.Millisecond)
	}
}

func waitSubscribed(t *testing.T, c *cache.Cache) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Check(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cache not healthy: %v", c.Check(context.Background()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBurstResolvesOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	st.delay = 50 * time.Millisecond
	c := newCache(t, st, cache.Options{Client: client(t, srv)})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.ResolvePolicy(context.Background(), alice)
			if err == nil && len(p.Groups) == 0 {
				err = errors.New("empty policy")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("a burst of 100 logins resolved %d times, want 1", n)
	}
}

func TestCallerCancellationDoesNotFailTheBurst(t *testing.T) {
	st := newStore(t)
	// The first caller is cancelled 20 ms (two sleeps) into a resolution
	// of 1 s: a loaded -race run could stretch those sleeps past 100 ms.
	st.delay = time.Second
	c := newCache(t, st, cache.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.ResolvePolicy(ctx, alice); first <- err }()
	time.Sleep(10 * time.Millisecond)
	second := make(chan error, 1)
	go func() { _, err := c.ResolvePolicy(context.Background(), alice); second <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second caller failed because the first gave up: %v", err)
	}
}

func TestRedisDownLoginsSucceedThenResume(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	reg := prometheus.NewRegistry()
	c := newCache(t, st, cache.Options{Client: client(t, srv), Registerer: reg, RetryAfter: 100 * time.Millisecond, NearSize: -1})
	ctx := context.Background()
	waitSubscribed(t, c)
	if _, err := c.ResolvePolicy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for i := 0; i < 20; i++ {
		p, err := c.ResolvePolicy(ctx, alice)
		if err != nil || len(p.Groups) == 0 {
			t.Fatalf("login %d with Redis down: %+v %v", i, p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Check(ctx); err == nil || !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Check with Redis down = %v, want degraded (ErrUnavailable)", err)
	}
	if n := metricSum(t, reg, "claimsmith_policy_cache_errors_total"); n < 1 {
		t.Fatalf("cache errors = %v, want ≥ 1", n)
	}
	if g := metricValue(t, reg, "claimsmith_policy_cache_degraded", ""); g != 1 {
		t.Fatalf("degraded gauge = %v, want 1", g)
	}
	srv.Restart()
	// Resumes by itself: healthy again, and entries land in Redis again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.ResolvePolicy(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if c.Check(ctx) == nil {
			if keys, _ := srv.Do("DBSIZE"); keys != "0" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache did not resume after Redis came back: %v", c.Check(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if g := metricValue(t, reg, "claimsmith_policy_cache_degraded", ""); g != 0 {
		t.Fatalf("degraded gauge after resume = %v, want 0", g)
	}
}

func TestResyncAfterMissedInvalidation(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	a := newCache(t, st, cache.Options{Client: client(t, srv), PollInterval: -1, RetryAfter: 50 * time.Millisecond})
	b := newCache(t, st, cache.Options{Client: client(t, srv), PollInterval: -1, RetryAfter: 50 * time.Millisecond})
	ctx := context.Background()
	waitSubscribed(t, b)
	if p, _ := b.ResolvePolicy(ctx, bob); len(p.Groups) != 0 {
		t.Fatalf("bob before: %+v", p)
	}
	srv.Kill()
	addBob(t, a.Writer(st)) // the publish is lost: Redis is down
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := b.ResolvePolicy(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Groups) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B kept the stale policy after its subscriber reconnected (no resync)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPollingCatchesWritesThatBypassTheCache(t *testing.T) {
	st := newStore(t)
	c := newCache(t, st, cache.Options{PollInterval: 20 * time.Millisecond})
	ctx := context.Background()
	if p, _ := c.ResolvePolicy(ctx, bob); len(p.Groups) != 0 {
		t.Fatalf("bob before: %+v", p)
	}
	addBob(t, st) // straight to the store
	deadline := time.Now().Add(2 * time.Second)
	for {
		if p, _ := c.ResolvePolicy(ctx, bob); len(p.Groups) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("poll did not pick up the new revision")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSlowRedisIsBoundedByTimeouts(t *testing.T) {
	for _, mode := range []string{"freeze", "client-pause", "debug-sleep"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			st := newStore(t)
			c := newCache(t, st, cache.Options{Client: client(t, srv), OpTimeout: 30 * time.Millisecond, RetryAfter: 200 * time.Millisecond, NearSize: -1})
			ctx := context.Background()
			waitSubscribed(t, c)
			switch mode {
			case "freeze":
				srv.Freeze()
				defer srv.Thaw()
			case "client-pause":
				srv.Pause(3 * time.Second)
			case "debug-sleep":
				srv.Sleep(3 * time.Second)
			}
			// A login with a 1s budget must get its answer from the store well
			// within it, while Redis does not answer at all.
			for i := 0; i < 5; i++ {
				lctx, cancel := context.WithTimeout(ctx, time.Second)
				p, err := c.ResolvePolicy(lctx, alice)
				// Answered before its budget ended (the event, not a
				// wall-clock margin): a cache call that waited for Redis
				// would have used the whole budget.
				within := lctx.Err() == nil
				cancel()
				if err != nil || len(p.Groups) == 0 {
					t.Fatalf("login %d with %s Redis: %+v %v", i, mode, p, err)
				}
				if !within {
					t.Fatalf("login %d used its whole 1s budget with a 30ms cache timeout", i)
				}
			}
			if err := c.Check(ctx); err == nil {
				t.Fatal("Check healthy while Redis does not answer")
			}
		})
	}
}

func TestNearCacheIsBounded(t *testing.T) {
	st := newStore(t)
	c := newCache(t, st, cache.Options{NearSize: 2})
	ctx := context.Background()
	users := []string{"auth0|alice", "auth0|carol", "auth0|dave"}
	for _, u := range users {
		if _, err := c.ResolvePolicy(ctx, authz.PolicyQuery{UserID: u, ClientID: authztest.Portal}); err != nil {
			t.Fatal(err)
		}
	}
	st.calls.Store(0)
	// alice was evicted (least recently used), dave and carol were not.
	for _, u := range []string{"auth0|dave", "auth0|carol"} {
		if _, err := c.ResolvePolicy(ctx, authz.PolicyQuery{UserID: u, ClientID: authztest.Portal}); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.calls.Load(); n != 0 {
		t.Fatalf("recent entries were evicted: %d store calls", n)
	}
	if _, err := c.ResolvePolicy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("evicted entry answered: %d store calls, want 1", n)
	}
}

func TestNearTTL(t *testing.T) {
	st := newStore(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := newCache(t, st, cache.Options{NearTTL: time.Minute, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	ctx := context.Background()
	c.ResolvePolicy(ctx, alice)
	c.ResolvePolicy(ctx, alice)
	if n := st.calls.Load(); n != 1 {
		t.Fatalf("store calls = %d, want 1", n)
	}
	now.Add(int64(2 * time.Minute))
	c.ResolvePolicy(ctx, alice)
	if n := st.calls.Load(); n != 2 {
		t.Fatalf("expired near entry answered: store calls = %d, want 2", n)
	}
}

func TestStoreErrorIsReturned(t *testing.T) {
	c := newCache(t, failing{}, cache.Options{})
	_, err := c.ResolvePolicy(context.Background(), alice)
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("err = %v, want the store's ErrUnavailable", err)
	}
}

type failing struct{}

func (failing) ResolvePolicy(context.Context, authz.PolicyQuery) (authz.Policy, error) {
	return authz.Policy{}, runtime.ErrUnavailable
}
func (failing) Revision(context.Context) (uint64, error) { return 1, nil }

func TestCorruptRedisEntryIsAMiss(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t)
	rc := client(t, srv)
	a := newCache(t, st, cache.Options{Client: rc, NearSize: -1})
	ctx := context.Background()
	want, _ := a.ResolvePolicy(ctx, alice)
	keys, err := rc.Keys(ctx, "claimsmith:pc:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("cache keys = %v, %v", keys, err)
	}
	rc.Set(ctx, keys[0], `{"g":["evil"]}`, 0)
	got, err := a.ResolvePolicy(ctx, alice)
	if err != nil || !samePolicy(got, want) {
		t.Fatalf("corrupt entry: got %+v %v, want %+v", got, err, want)
	}
}

func TestTwoCachesShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := newStore(t)
	a := newCache(t, st, cache.Options{Registerer: reg})
	b := newCache(t, st, cache.Options{Registerer: reg})
	ctx := context.Background()
	a.ResolvePolicy(ctx, alice)
	b.ResolvePolicy(ctx, alice)
	if n := metricValue(t, reg, "claimsmith_policy_cache_lookups_total", "miss"); n != 2 {
		t.Fatalf("misses of two caches on one registry = %v, want 2", n)
	}
}
