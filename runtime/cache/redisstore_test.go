package cache_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func redisStore(t *testing.T, srv *redistest.Server, opt redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(context.Background(), client(t, srv), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTwoNodesOnRedisStore: two nodes, each a cache over its own handle on
// one Redis store, sharing the Redis cache. A membership change through node
// A is visible to A's next login at once and to B's within the pub/sub delay.
func TestTwoNodesOnRedisStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	stA := redisStore(t, srv, redisstore.Options{})
	stB := redisStore(t, srv, redisstore.Options{})
	if _, err := stA.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	a := newCache(t, stA, cache.Options{Client: client(t, srv), PollInterval: -1})
	b := newCache(t, stB, cache.Options{Client: client(t, srv), PollInterval: -1})
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	for _, n := range []*cache.Cache{a, b} {
		if p, err := n.ResolvePolicy(ctx, bob); err != nil || len(p.Groups) != 0 {
			t.Fatalf("bob before: %+v %v", p, err)
		}
	}
	var delays []time.Duration
	for i := 0; i < 20; i++ {
		user := authz.PolicyQuery{UserID: "auth0|two-node-" + string(rune('a'+i)), ClientID: authztest.Portal}
		if p, _ := b.ResolvePolicy(ctx, user); len(p.Groups) != 0 { // cached empty on B
			t.Fatalf("before: %+v", p)
		}
		start := time.Now()
		if _, err := a.Writer(stA).Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-eng", UserIDs: []string{user.UserID}}); err != nil {
			t.Fatal(err)
		}
		if p, err := a.ResolvePolicy(ctx, user); err != nil || !slices.Contains(p.Groups, "Engineering") {
			t.Fatalf("node A right after its write: %+v %v", p, err)
		}
		for {
			p, err := b.ResolvePolicy(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(p.Groups, "Engineering") {
				delays = append(delays, time.Since(start))
				break
			}
			// Typically under a millisecond; the limit is generous so a
			// loaded -race run cannot miss it.
			if time.Since(start) > 10*time.Second {
				t.Fatal("node B does not see node A's write after 10s")
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	slices.Sort(delays)
	t.Logf("write on A → visible on B: median %v, max %v (20 writes)", delays[len(delays)/2], delays[len(delays)-1])
}

// TestCacheDownStoreUp: the policy cache's Redis dies, the store's does
// not: logins keep succeeding from the store.
func TestCacheDownStoreUp(t *testing.T) {
	cacheSrv := redistest.Start(t, redistest.Options{})
	storeSrv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	st := redisStore(t, storeSrv, redisstore.Options{})
	if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, st, cache.Options{Client: client(t, cacheSrv), NearSize: -1, RetryAfter: 50 * time.Millisecond})
	cacheSrv.Kill()
	for i := 0; i < 10; i++ {
		if p, err := c.ResolvePolicy(ctx, alice); err != nil || len(p.Groups) == 0 {
			t.Fatalf("login %d with the cache down: %+v %v", i, p, err)
		}
	}
	if err := c.Check(ctx); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Check: %v, want degraded", err)
	}
}

// TestSharedRedisDown: cache and store on one Redis, which dies. With
// fail_closed a login not in the near cache gets ErrUnavailable; with
// last_snapshot it is answered from the in-process snapshot.
func TestSharedRedisDown(t *testing.T) {
	for _, mode := range []string{redisstore.FailClosed, redisstore.LastSnapshot} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			ctx := context.Background()
			seed := redisStore(t, srv, redisstore.Options{})
			if _, err := seed.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
				t.Fatal(err)
			}
			st := redisStore(t, srv, redisstore.Options{OnUnavailable: mode, RefreshInterval: 20 * time.Millisecond})
			c := newCache(t, st, cache.Options{Client: client(t, srv), NearSize: -1, RetryAfter: 50 * time.Millisecond})
			if _, err := c.ResolvePolicy(ctx, alice); err != nil {
				t.Fatal(err)
			}
			srv.Kill()
			p, err := c.ResolvePolicy(ctx, alice)
			switch mode {
			case redisstore.FailClosed:
				if !errors.Is(err, runtime.ErrUnavailable) {
					t.Fatalf("fail_closed: %+v %v, want ErrUnavailable", p, err)
				}
			case redisstore.LastSnapshot:
				if err != nil || !slices.Contains(p.Groups, "Engineering") {
					t.Fatalf("last_snapshot: %+v %v", p, err)
				}
			}
		})
	}
}

// TestClusterTwoNodes: store, cache and invalidation channel on a 3-node
// Redis Cluster (pub/sub is cluster-wide; cache keys spread over the nodes).
func TestClusterTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes a few seconds")
	}
	cl := redistest.StartCluster(t, 3)
	ctx := context.Background()
	newCl := func() goredis.UniversalClient {
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	mk := func() (*redisstore.Store, *cache.Cache) {
		st, err := redisstore.New(ctx, newCl(), redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, newCache(t, st, cache.Options{Client: newCl(), PollInterval: -1})
	}
	stA, a := mk()
	_, b := mk()
	if _, err := a.Writer(stA).Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	deadline := time.Now().Add(time.Second)
	for {
		if p, _ := b.ResolvePolicy(ctx, alice); len(p.Groups) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B does not see the import")
		}
		time.Sleep(time.Millisecond)
	}
	if p, _ := b.ResolvePolicy(ctx, bob); len(p.Groups) != 0 {
		t.Fatalf("bob before: %+v", p)
	}
	addBob(t, a.Writer(stA))
	deadline = time.Now().Add(time.Second)
	for {
		if p, _ := b.ResolvePolicy(ctx, bob); len(p.Groups) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("node B does not see node A's write on the cluster")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDataLossRetiresEntries (issue 14 item 8): the store's Redis loses its
// data and the operator re-imports, so the store counts revisions from the
// start again and reaches the revision the caches already hold entries
// for. Neither node may answer a policy cached before the loss: node A
// (near cache) after its own import, node B (Redis cache only, shared with
// A) once it hears of the write. On the old code, keyed by revision alone,
// both kept granting alice the role the new data no longer gives her.
func TestDataLossRetiresEntries(t *testing.T) {
	storeSrv := redistest.Start(t, redistest.Options{})
	cacheSrv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	stA := redisStore(t, storeSrv, redisstore.Options{})
	stB := redisStore(t, storeSrv, redisstore.Options{})
	if err := stA.Initialise(ctx); err != nil {
		t.Fatal(err)
	}
	doc := func(user string) *authz.Document {
		return &authz.Document{Roles: []authz.Role{{ID: "r-viewer", Name: "viewer", ApplicationType: authz.TypeClient,
			ApplicationID: authztest.Portal, Users: []string{user}}}}
	}
	before, err := stA.Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc(alice.UserID)})
	if err != nil {
		t.Fatal(err)
	}
	a := newCache(t, stA, cache.Options{Client: client(t, cacheSrv), PollInterval: -1})
	b := newCache(t, stB, cache.Options{Client: client(t, cacheSrv), PollInterval: -1, NearSize: -1})
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	for _, n := range []*cache.Cache{a, b} {
		if p, err := n.ResolvePolicy(ctx, alice); err != nil || !slices.Equal(p.Roles, []string{"viewer"}) {
			t.Fatalf("alice before the loss: %+v %v", p, err)
		}
	}

	if _, err := storeSrv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	after, err := a.Writer(stA).Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc("auth0|mallory")})
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("re-import reached revision %d, the loss's revision was %d: the test needs them equal", after, before)
	}
	if p, err := a.ResolvePolicy(ctx, alice); err != nil || len(p.Roles) != 0 {
		t.Fatalf("node A serves a policy cached before the loss: %+v %v", p, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := b.ResolvePolicy(ctx, alice)
		if err == nil && len(p.Roles) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B still serves a policy cached before the loss after 10s: %+v %v", p, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Entries of the new epoch are cached and shared as before.
	if p, err := a.ResolvePolicy(ctx, authz.PolicyQuery{UserID: "auth0|mallory", ClientID: authztest.Portal}); err != nil || !slices.Equal(p.Roles, []string{"viewer"}) {
		t.Fatalf("mallory after the re-import: %+v %v", p, err)
	}
}
