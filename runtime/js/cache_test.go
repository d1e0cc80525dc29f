package js

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func newRedisClient(t testing.TB, srv *redistest.Server) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCacheLimits: Auth0's api.cache limits, the same for the in-process
// cache and the Redis one: key and value sizes, 20 entries and 8 KB per
// scope, replacing within a full scope, expired entries making room,
// scopes apart, delete.
func TestCacheLimits(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	clock.set(monday)
	srv := redistest.Start(t, redistest.Options{})
	for name, c := range map[string]Cache{
		"memory": NewMemoryCache(clock.now),
		"redis":  NewRedisCache(newRedisClient(t, srv), RedisCacheOptions{Now: clock.now, OpTimeout: 5 * time.Second}),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			scope := "limits-" + name + "\x00post-login"
			exp := monday.Add(time.Hour)
			if err := c.Set(ctx, scope, strings.Repeat("k", CacheMaxKeyBytes+1), "v", exp); !errors.Is(err, ErrCacheKeyTooLarge) {
				t.Errorf("65-byte key: %v", err)
			}
			if err := c.Set(ctx, scope, "k", strings.Repeat("v", CacheMaxValueBytes+1), exp); !errors.Is(err, ErrCacheValueTooLarge) {
				t.Errorf("4097-byte value: %v", err)
			}
			for i := range CacheMaxEntries {
				// The first expires early: it makes room later.
				e := exp
				if i == 0 {
					e = monday.Add(time.Minute)
				}
				if err := c.Set(ctx, scope, "k"+strconv.Itoa(i), "v", e); err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
			}
			if err := c.Set(ctx, scope, "one-too-many", "v", exp); !errors.Is(err, ErrCacheFull) {
				t.Errorf("21st entry: %v", err)
			}
			if err := c.Set(ctx, scope, "k5", "replaced", exp); err != nil {
				t.Errorf("replacing in a full scope: %v", err)
			}
			if v, e, ok, err := c.Get(ctx, scope, "k5"); err != nil || !ok || v != "replaced" || !e.Equal(exp) {
				t.Errorf("get k5 = %q %v %v %v", v, e, ok, err)
			}
			if err := c.Set(ctx, "other\x00post-login", "k", "v", exp); err != nil {
				t.Errorf("another scope is not full: %v", err)
			}
			clock.set(monday.Add(2 * time.Minute))
			t.Cleanup(func() { clock.set(monday) })
			if _, _, ok, _ := c.Get(ctx, scope, "k0"); ok {
				t.Error("expired k0 still answered")
			}
			if err := c.Set(ctx, scope, "after-expiry", "v", exp); err != nil {
				t.Errorf("the expired entry made no room: %v", err)
			}
			if ok, err := c.Delete(ctx, scope, "k5"); err != nil || !ok {
				t.Errorf("delete k5: %v %v", ok, err)
			}
			if _, _, ok, _ := c.Get(ctx, scope, "k5"); ok {
				t.Error("deleted k5 still answered")
			}
			// 8 KB in total: two 4 KB values do not fit beside the rest.
			big := "total-" + name + "\x00post-login"
			if err := c.Set(ctx, big, "a", strings.Repeat("x", 4000), exp); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, big, "b", strings.Repeat("x", 4000), exp); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, big, "c", strings.Repeat("x", 200), exp); !errors.Is(err, ErrCacheFull) {
				t.Errorf("over 8 KB in total: %v", err)
			}
		})
	}
}

// TestCacheSharedAcrossNodes: two "nodes" (two engines with their own
// Redis clients and pipelines, as two claimsmith processes) see one
// api.cache: a value set on one is read on the other, and the counter
// the Action keeps goes up across both.
func TestCacheSharedAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	path := writeFile(t, "visits.js", `exports.onExecutePostLogin = async (event, api) => {
  const hit = api.cache.get('visits');
  const n = hit ? Number(hit.value) + 1 : 1;
  const res = api.cache.set('visits', String(n), { ttl: 60000 });
  api.idToken.setCustomClaim('https://example.com/visits', n);
  api.idToken.setCustomClaim('https://example.com/set', res.type);
};`)
	var nodes []*runtime.Pipeline
	for range 2 {
		e := newTestEngine(t, Options{Logger: testLogger(t), Cache: NewRedisCache(newRedisClient(t, srv), RedisCacheOptions{Prefix: "test:", OpTimeout: 5 * time.Second})})
		p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{
			Namespace: "https://example.com/", Timeout: "60s",
			Rules: []runtime.RuleEntry{{Name: "visits", JS: path, Timeout: "20s"}},
		}, runtime.Deps{Registry: runtime.NewRegistry(), Scripts: e, BaseDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		nodes = append(nodes, p)
	}
	for i := range 4 {
		res, err := nodes[i%2].Run(context.Background(), baseEvent())
		if err != nil {
			t.Fatal(err)
		}
		visits, _ := res.IDTokenClaims.Get("https://example.com/visits")
		set, _ := res.IDTokenClaims.Get("https://example.com/set")
		if fmt.Sprint(visits) != strconv.Itoa(i+1) || set != "success" {
			t.Fatalf("login %d on node %d: visits %v, set %v", i+1, i%2, visits, set)
		}
	}
	// The value lives in Redis, under the configured prefix.
	keys, err := newRedisClient(t, srv).Keys(context.Background(), "test:js-cache:*").Result()
	if err != nil || len(keys) != 1 || keys[0] != "test:js-cache:visits:post-login" {
		t.Errorf("redis keys %v (%v)", keys, err)
	}
}
