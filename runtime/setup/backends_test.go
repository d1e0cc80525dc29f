package setup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
	"github.com/claimsmith/claimsmith/runtime/js"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// parseValid is Parse and the backend sections' validation, what a command
// that opens its stores does first.
func parseValid(path string, b []byte) (*Config, error) {
	c, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if err := c.validateBackends(); err != nil {
		return nil, err
	}
	return c, nil
}

// TestBackendConfigErrors: bad store, redis and cache sections are refused
// at load with one line naming the file, the line and the key, and match
// runtime.ErrInvalid.
func TestBackendConfigErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"backend", "store:\n  backend: postgres\n", `c.yaml:2: key "store.backend": is "postgres", must be "file" or "redis"`},
		{"on_unavailable", "store:\n  backend: redis\n  on_unavailable: retry\nredis:\n  addrs: [x:1]\n", `c.yaml:3: key "store.on_unavailable": is "retry"`},
		{"on_unavailable with file", "store:\n  on_unavailable: last_snapshot\n", `c.yaml:2: key "store.on_unavailable": applies only to store.backend redis`},
		{"max_staleness with file", "store:\n  max_staleness: 1m\n", `c.yaml:2: key "store.max_staleness": applies only to store.backend redis`},
		{"redis without addrs", "store:\n  backend: redis\nredis:\n  key_prefix: x\n", `c.yaml:3: key "redis.addrs": is empty, and store.backend is redis`},
		{"no redis section", "store:\n  backend: redis\n", `c.yaml:1: key "redis.addrs": is empty`},
		{"empty addr", "redis:\n  addrs: [\"a:1\", \"\"]\n", `c.yaml:2: key "redis.addrs[1]": is empty`},
		{"unknown redis key", "redis:\n  adresses: [a:1]\n", `c.yaml:2: key "redis.adresses": unknown key (known: addrs, `},
		{"password in file", "redis:\n  addrs: [a:1]\n  password: hunter2\n", `c.yaml:3: key "redis.password": unknown key`},
		{"cache redis without addrs", "cache:\n  redis:\n    tls: true\n", `c.yaml:2: key "cache.redis.addrs": is empty`},
		{"cache timeout", "cache:\n  op_timeout: -1s\n", `c.yaml:2: key "cache.op_timeout": must not be negative`},
		{"cache type", "cache:\n  near_size: lots\n", `c.yaml:2: key "cache.near_size": cannot decode`},
		{"redis timeout", "redis:\n  addrs: [a:1]\n  read_timeout: -5ms\n", `c.yaml:3: key "redis.read_timeout": must not be negative`},
		{"file durability", "store:\n  file:\n    durability: async\n", `c.yaml:3: key "store.file.durability": is "async", must be "sync" or "relaxed"`},
		{"file window negative", "store:\n  file:\n    commit_window: -1ms\n", `c.yaml:3: key "store.file.commit_window": must not be negative`},
		{"file window too long", "store:\n  file:\n    durability: relaxed\n    commit_window: 10s\n", `c.yaml:4: key "store.file.commit_window": is 10s, must be at most 1s`},
		{"file window type", "store:\n  file:\n    commit_window: soon\n", `c.yaml:3: key "store.file.commit_window": cannot decode`},
		{"file checkpoint", "store:\n  file:\n    checkpoint_bytes: -1\n", `c.yaml:3: key "store.file.checkpoint_bytes": must not be negative`},
		{"file unknown key", "store:\n  file:\n    fsync: false\n", `c.yaml:3: key "store.file.fsync": unknown key (known: checkpoint_bytes, commit_window, durability)`},
		{"file with redis", "store:\n  backend: redis\n  file: {durability: relaxed}\nredis:\n  addrs: [a:1]\n", `c.yaml:3: key "store.file": applies only to store.backend file`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseValid("c.yaml", []byte(c.yaml))
			if err == nil || !errors.Is(err, runtime.ErrInvalid) || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v\nwant prefix %s", err, c.want)
			}
		})
	}
	lc, err := parseValid("c.yaml", []byte("store:\n  backend: redis\n  on_unavailable: last_snapshot\n  max_staleness: 30s\nredis:\n  addrs: [a:1]\ncache:\n  redis: {addrs: [b:2]}\n  near_size: -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rc, at, ok := lc.cacheRedis(); lc.Store.backendName() != BackendRedis || !ok || rc.Addrs[0] != "b:2" || at.String() != "cache.redis" {
		t.Fatalf("backends: %+v", lc)
	}
}

// FuzzBackendSections decodes arbitrary store, redis and cache sections:
// nothing may panic; an error is one line naming the file and matching
// runtime.ErrInvalid; an accepted file describes a usable backend (a Redis
// store has addresses, no negative durations, no unknown backend).
func FuzzBackendSections(f *testing.F) {
	for _, s := range []string{
		"store:\n  backend: redis\n  on_unavailable: last_snapshot\n  max_staleness: 30s\nredis:\n  addrs: [a:1, b:2]\n  master_name: m\n  key_prefix: p\n",
		"store: {backend: file}\nredis: {addrs: [\"127.0.0.1:6379\"], tls: true, tls_ca_file: ca.pem, db: 3}\n",
		"cache:\n  redis: {addrs: [c:1], username: u}\n  near_size: -1\n  near_ttl: 1m\n  redis_ttl: 10m\n  op_timeout: 50ms\n  poll_interval: -1s\n",
		"store:\n  backend: redis\nredis:\n  addrs: []\n",
		"redis:\n  addrs: [\"\"]\n  read_timeout: -1ms\n",
		"store: [redis]\n",
		"cache: {redis: {}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseValid("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") || strings.Contains(err.Error(), "\n") || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		switch b.Store.Backend {
		case "", BackendFile:
			if b.Store.OnUnavailable != "" || b.Store.MaxStaleness != 0 {
				t.Fatalf("file backend with redis-only settings accepted: %+v", b.Store)
			}
		case BackendRedis:
			if len(b.Redis.Addrs) == 0 {
				t.Fatal("redis backend without addresses accepted")
			}
		default:
			t.Fatalf("backend %q accepted", b.Store.Backend)
		}
		for _, a := range b.Redis.Addrs {
			if strings.TrimSpace(a) == "" {
				t.Fatal("empty redis address accepted")
			}
		}
		if rc, _, ok := b.cacheRedis(); ok && len(rc.Addrs) == 0 {
			t.Fatal("cache Redis without addresses accepted")
		}
		if b.Cache.NearTTL < 0 || b.Cache.RedisTTL < 0 || b.Cache.OpTimeout < 0 || b.Redis.ReadTimeout < 0 || b.Cache.NearSize < -1 {
			t.Fatalf("negative setting accepted: %+v %+v", b.Cache, b.Redis)
		}
	})
}

// TestStoreReadiness: serve's store check fails /readyz (503) with
// fail_closed while the store's Redis is away, and only degrades it with
// last_snapshot, whose logins are still answered from memory.
func TestStoreReadiness(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	ctx := context.Background()
	for _, mode := range []string{"fail_closed", "last_snapshot"} {
		t.Run(mode, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c.yaml")
			conf := fmt.Sprintf("store:\n  backend: redis\n  on_unavailable: %s\nredis:\n  addrs: [%s]\n  key_prefix: %q\n  read_timeout: 200ms\n  dial_timeout: 200ms\n", mode, srv.Addr(), mode+":")
			if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			lc, err := Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			bk, err := OpenBackends(lc, Env{DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer bk.Close()
			st, err := bk.Store(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.(Importer).Import(ctx, 0, authztest.ResolutionFixture(), nil); err != nil {
				t.Fatal(err)
			}
			c := bk.storeCheck(st)
			if err := c.Check(ctx); err != nil || c.Degrades != (mode == "last_snapshot") {
				t.Fatalf("check %+v: %v", c, err)
			}
			if _, err := st.Snapshot(ctx); err != nil { // what last_snapshot serves from
				t.Fatal(err)
			}
			srv.Kill()
			defer srv.Restart()
			start := time.Now()
			if err := c.Check(ctx); !errors.Is(err, runtime.ErrUnavailable) && !errors.Is(err, runtime.ErrTimeout) {
				t.Fatalf("check with Redis down: %v", err)
			}
			// The check bounds itself (StoreCheckTimeout); the limit only
			// catches a check that hangs, generously for a loaded machine.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("the store check took %s with Redis down", d)
			}
			// go-redis' retries against the dead server take about 1.7 s:
			// a budget shorter than that must still get last_snapshot's
			// answer (and fail_closed's error). 1 s instead of the rule's
			// 100 ms keeps a loaded -race run from missing it.
			lctx, lcancel := context.WithTimeout(ctx, time.Second)
			defer lcancel()
			p, err := st.ResolvePolicy(lctx, authz.PolicyQuery{UserID: "auth0|alice", ClientID: authztest.Portal})
			if mode == "fail_closed" && (err == nil || !(errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, runtime.ErrTimeout))) {
				t.Fatalf("fail_closed with Redis down: %+v %v", p, err)
			}
			if mode == "last_snapshot" && (err != nil || len(p.Groups) == 0) {
				t.Fatalf("last_snapshot with Redis down: %+v %v", p, err)
			}
		})
	}
}

// TestFileStoreOptions: store.file reaches the file store serve opens. In
// relaxed mode a changed profile is acknowledged without waiting for its
// sync, so a patch returns before the batch's sync has run (the store's
// IOStats count the sync only after the commit window); in sync mode the
// patch returns after it.
func TestFileStoreOptions(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		yaml      string
		syncFirst bool // the sync is counted by the time PatchProfile returns
	}{
		{"store:\n  file:\n    durability: sync\n", true},
		{"store:\n  file:\n    durability: relaxed\n    commit_window: 1s\n", false},
	} {
		lc, err := parseValid("c.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		bk, err := OpenBackends(lc, Env{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		st, err := bk.Store(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		fs, ok := st.(interface{ IOStats() file.IOStats })
		if !ok {
			t.Fatalf("store %T has no IOStats", st)
		}
		before := fs.IOStats().Syncs
		if _, err := st.PatchProfile(ctx, "alice", map[string]any{"plan": "gold"}, nil); err != nil {
			t.Fatal(err)
		}
		synced := fs.IOStats().Syncs > before
		if synced != c.syncFirst {
			t.Fatalf("%q: synced before the patch returned = %v, want %v", c.yaml, synced, c.syncFirst)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		_ = bk.Close()
	}
}

// TestJSCacheBackend: the JavaScript rules' api.cache is in the policy
// cache's Redis when the configuration has one (every node shares it),
// else in-process; values written through one server's cache are read
// through another's.
func TestJSCacheBackend(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	open := func(conf string) js.Cache {
		t.Helper()
		cfg := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		lc, err := Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bk, err := OpenBackends(lc, Env{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bk.Close() })
		c, err := bk.JSCache(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := open("store:\n  backend: file\n"); reflect.TypeOf(c) != reflect.TypeFor[*js.MemoryCache]() {
		t.Errorf("file store without Redis: %T", c)
	}
	conf := fmt.Sprintf("store:\n  backend: file\ncache:\n  redis:\n    addrs: [%s]\n    key_prefix: \"node:\"\n", srv.Addr())
	a, b := open(conf), open(conf)
	if reflect.TypeOf(a) != reflect.TypeFor[*js.RedisCache]() {
		t.Fatalf("with cache.redis: %T", a)
	}
	exp := time.Now().Add(time.Minute)
	if err := a.Set(ctx, "rule\x00post-login", "k", "v", exp); err != nil {
		t.Fatal(err)
	}
	if v, _, ok, err := b.Get(ctx, "rule\x00post-login", "k"); err != nil || !ok || v != "v" {
		t.Errorf("the other server reads %q %v %v", v, ok, err)
	}
}
