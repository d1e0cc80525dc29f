package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	adminredis "github.com/claimsmith/claimsmith/runtime/admin/redis"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/replay"
	replayredis "github.com/claimsmith/claimsmith/runtime/replay/redis"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
	tokenredis "github.com/claimsmith/claimsmith/runtime/token/redis"
)

// Where claimsmith keeps its data is decided by three sections of the
// configuration file; every command (serve, import, export, policy, users,
// keys, token, admin-key and the admin CLI) opens its stores through
// Backends, so a command run with the server's --config talks to the
// server's data. Without a file everything lives in the data dir.
//
//	store:
//	  backend: file                 # file (default): the data dir; redis: the redis section
//	  on_unavailable: fail_closed   # redis only: fail_closed (default) | last_snapshot
//	  max_staleness: 5m             # last_snapshot only: oldest snapshot served
//	  file:                         # file only: how profile changes reach the disk
//	    durability: sync            # sync (default): a login waits for its group commit's fsync
//	                                # relaxed: answered at once, on disk within commit_window
//	    commit_window: 0s           # sync: extra wait to gather larger batches (default 0);
//	                                # relaxed: the most a crash can lose (default 10ms)
//	    checkpoint_bytes: 4194304   # journal size that triggers a background checkpoint
//	redis:                          # the shared Redis (see the README, "Running with Redis")
//	  addrs: ["redis-1:6379"]       # one node; Sentinel: the sentinels + master_name; Cluster: seeds
//	  master_name: ""
//	  username: ""                  # $CLAIMSMITH_REDIS_USERNAME overrides; password only from
//	                                # $CLAIMSMITH_REDIS_PASSWORD
//	  db: 0
//	  tls: false
//	  tls_ca_file: ""
//	  tls_server_name: ""
//	  key_prefix: "claimsmith:"
//	  dial_timeout: 1s
//	  read_timeout: 500ms
//	  write_timeout: 500ms
//	cache:                          # the policy cache in front of every login; its Redis also
//	                                # holds the JavaScript rules' api.cache (key_prefix + "js-cache:")
//	  redis: {addrs: [...]}         # a separate Redis for the cache (same keys as the redis
//	                                # section; credentials from $CLAIMSMITH_CACHE_REDIS_USERNAME
//	                                # and $CLAIMSMITH_CACHE_REDIS_PASSWORD); default: the redis
//	                                # section when it has addrs, else no Redis (near cache only)
//	  near_size: 10000              # in-process entries (LRU); -1 disables the near cache
//	  near_ttl: 1m
//	  redis_ttl: 10m
//	  op_timeout: 50ms              # per Redis cache call on the login path (api.cache too)
//	  poll_interval: 5s             # re-read the store revision (a missed invalidation); -1s: off
//
// With store.backend redis, the signing keys, the revocation list, the admin
// keys, the audit log and the signed webhook ids seen (replay protection)
// live in the same Redis, so every node shares them;
// with the file backend they live in the data dir, which one server owns
// (see datalock.go). The policy cache is always in front of logins.

// The store backends.
const (
	BackendFile  = "file"
	BackendRedis = "redis"
)

// StoreConfig is the `store` section of the configuration file.
type StoreConfig struct {
	Backend       string          `yaml:"backend"`
	OnUnavailable string          `yaml:"on_unavailable"`
	MaxStaleness  time.Duration   `yaml:"max_staleness"`
	File          FileStoreConfig `yaml:"file"`
}

// FileStoreConfig is `store.file`: the file store's profile durability
// (runtime/authz/file Options). Profiles are kept in memory and changes are
// journaled with group-committed syncs; these say when a login's answer
// waits for that sync.
type FileStoreConfig struct {
	// Durability: "sync" (default) answers a login that changed a profile
	// after its batch's fdatasync — a crash loses nothing acknowledged;
	// "relaxed" answers at once — a crash loses at most the changes of the
	// last CommitWindow.
	Durability string `yaml:"durability"`
	// CommitWindow: sync mode, how long a batch waits for more patches
	// before its sync (default 0: as soon as the previous sync returned);
	// relaxed mode, the bound on volatile changes (default 10ms).
	CommitWindow time.Duration `yaml:"commit_window"`
	// CheckpointBytes is the journal size after which profiles are written
	// to their files in the background (default 4 MiB).
	CheckpointBytes int64 `yaml:"checkpoint_bytes"`
}

// options are the file store's Options for this section.
func (f FileStoreConfig) options() file.Options {
	return file.Options{Durability: file.Durability(f.Durability), CommitWindow: f.CommitWindow, CheckpointBytes: f.CheckpointBytes}
}

// set reports whether any key of the section is given.
func (f FileStoreConfig) set() bool { return f != FileStoreConfig{} }

// CacheConfig is the `cache` section of the configuration file.
type CacheConfig struct {
	Redis        *redisstore.Config `yaml:"redis"`
	NearSize     int                `yaml:"near_size"`
	NearTTL      time.Duration      `yaml:"near_ttl"`
	RedisTTL     time.Duration      `yaml:"redis_ttl"`
	OpTimeout    time.Duration      `yaml:"op_timeout"`
	PollInterval time.Duration      `yaml:"poll_interval"`
}

// Environment variables with the cache Redis' credentials, when the cache
// has a Redis of its own (cache.redis).
const (
	EnvCacheRedisUsername = "CLAIMSMITH_CACHE_REDIS_USERNAME"
	EnvCacheRedisPassword = "CLAIMSMITH_CACHE_REDIS_PASSWORD"
)

// DataStore is an authorization store as the commands and the server use it.
type DataStore interface {
	authz.Store
	authz.ProfileLister
}

// Importer is a store with a bulk loader that reports progress (the Redis
// store).
type Importer interface {
	Import(ctx context.Context, expected uint64, doc *authz.Document, progress func(done, total int)) (uint64, error)
}

// AdminStores are the admin API's keys and audit log.
type AdminStores struct {
	Keys  admin.KeyStore
	Audit admin.AuditLog
}

// backend is one value of store.backend: how each kind of data is opened.
// The one table of them is backendKinds; nothing else asks which backend
// is configured.
type backend struct {
	// ownsDataDir: the data lives in the data dir, owned by one server
	// (the owner lock); false for a store shared by several nodes.
	ownsDataDir bool
	store       func(ctx context.Context, b *Backends, mustExist bool) (DataStore, error)
	keys        func(ctx context.Context, b *Backends) (token.KeyStore, error)
	revocations func(ctx context.Context, b *Backends) (token.RevocationList, func() error, error)
	admin       func(ctx context.Context, b *Backends) (AdminStores, error)
	// replay is the store of signed webhook ids shared by the nodes; nil
	// store: each verifier keeps its own in the process (one node).
	replay   func(ctx context.Context, b *Backends) (replay.Store, error)
	describe func(b *Backends) string
	// degrades says whether an unreachable store only degrades readiness
	// (logins are still answered).
	degrades func(b *Backends) bool
}

// backendKinds is the table of store backends, keyed by store.backend.
func backendKinds() map[string]backend {
	return map[string]backend{
		BackendFile: {
			ownsDataDir: true,
			store: func(ctx context.Context, b *Backends, mustExist bool) (DataStore, error) {
				if mustExist {
					if _, err := os.Stat(b.env.DataDir); errors.Is(err, fs.ErrNotExist) {
						return nil, fmt.Errorf("data dir %s does not exist (import data first, or pass --data-dir)", b.env.DataDir)
					}
				}
				// Read-only commands (mustExist) never own the profiles, so a
				// server starting while one runs still does.
				opt := b.cfg.Store.File.options()
				opt.Logger, opt.ReadOnly = b.env.Log, mustExist
				return file.Open(ctx, b.env.DataDir, opt)
			},
			keys: func(_ context.Context, b *Backends) (token.KeyStore, error) {
				return tokenfile.NewKeyStore(filepath.Join(b.env.DataDir, "keys"))
			},
			revocations: func(ctx context.Context, b *Backends) (token.RevocationList, func() error, error) {
				f, err := tokenfile.OpenRevocationList(ctx, filepath.Join(b.env.DataDir, "revoked.jsonl"), b.env.Now, b.env.Log)
				if err != nil {
					return nil, nil, err
				}
				return f, f.Close, nil
			},
			admin: func(_ context.Context, b *Backends) (AdminStores, error) {
				dir := filepath.Join(b.env.DataDir, adminfile.Dir)
				keys, err := adminfile.OpenKeyStore(dir, nil)
				if err != nil {
					return AdminStores{}, err
				}
				audit, err := adminfile.OpenAuditLog(dir, nil)
				if err != nil {
					return AdminStores{}, err
				}
				return AdminStores{Keys: keys, Audit: audit}, nil
			},
			replay:   func(context.Context, *Backends) (replay.Store, error) { return nil, nil },
			describe: func(b *Backends) string { return b.env.DataDir },
			degrades: func(*Backends) bool { return false },
		},
		BackendRedis: {
			store: func(ctx context.Context, b *Backends, _ bool) (DataStore, error) {
				c, err := b.storeClient(ctx)
				if err != nil {
					return nil, err
				}
				s := b.cfg.Store
				st, err := redisstore.New(ctx, c, redisstore.Options{Prefix: b.cfg.Redis.KeyPrefix, OnUnavailable: s.OnUnavailable,
					MaxStaleness: s.MaxStaleness, Logger: b.env.Log})
				if err != nil {
					return nil, b.cfg.bad(keyPath{"store"}, err)
				}
				return st, nil
			},
			keys: func(ctx context.Context, b *Backends) (token.KeyStore, error) {
				c, err := b.storeClient(ctx)
				if err != nil {
					return nil, err
				}
				return tokenredis.NewKeyStore(c, b.cfg.Redis.KeyPrefix), nil
			},
			revocations: func(ctx context.Context, b *Backends) (token.RevocationList, func() error, error) {
				c, err := b.storeClient(ctx)
				if err != nil {
					return nil, nil, err
				}
				// After a data loss, tokens issued before it fail closed for
				// as long as one of them can still be valid.
				p, err := b.cfg.tokenPlan(b.env.Getenv, false)
				if err != nil {
					return nil, nil, err
				}
				return tokenredis.NewRevocationList(c, tokenredis.RevocationOptions{Prefix: b.cfg.Redis.KeyPrefix, Now: b.env.Now,
					Horizon: p.keys.Retention, Skew: p.leeway, Logger: b.env.Log}), func() error { return nil }, nil
			},
			admin: func(ctx context.Context, b *Backends) (AdminStores, error) {
				c, err := b.storeClient(ctx)
				if err != nil {
					return AdminStores{}, err
				}
				opt := adminredis.Options{Prefix: b.cfg.Redis.KeyPrefix}
				return AdminStores{Keys: adminredis.NewKeyStore(c, opt), Audit: adminredis.NewAuditLog(c, opt)}, nil
			},
			replay: func(ctx context.Context, b *Backends) (replay.Store, error) {
				c, err := b.storeClient(ctx)
				if err != nil {
					return nil, err
				}
				return replayredis.New(c, b.cfg.Redis.KeyPrefix), nil
			},
			describe: func(b *Backends) string { return "redis " + strings.Join(b.cfg.Redis.Addrs, ",") },
			degrades: func(b *Backends) bool { return b.cfg.Store.OnUnavailable == redisstore.LastSnapshot },
		},
	}
}

// backendName is store.backend with its default.
func (s StoreConfig) backendName() string {
	if s.Backend == "" {
		return BackendFile
	}
	return s.Backend
}

// validateBackends checks the store, redis and cache sections. Reachability
// is checked when they are opened, not here.
func (c *Config) validateBackends() error {
	st := c.Store
	kinds := backendKinds()
	kind, ok := kinds[st.backendName()]
	if !ok {
		names := make([]string, 0, len(kinds))
		for n := range kinds {
			names = append(names, fmt.Sprintf("%q", n))
		}
		sort.Strings(names)
		return c.bad(keyPath{"store", "backend"}, invalidf("is %q, must be %s", st.Backend, strings.Join(names, " or ")))
	}
	switch st.OnUnavailable {
	case "", redisstore.FailClosed, redisstore.LastSnapshot:
	default:
		return c.bad(keyPath{"store", "on_unavailable"}, invalidf("is %q, must be %q or %q", st.OnUnavailable, redisstore.FailClosed, redisstore.LastSnapshot))
	}
	if st.MaxStaleness < 0 {
		return c.bad(keyPath{"store", "max_staleness"}, invalidf("must not be negative"))
	}
	// Settings of the Redis store under the file backend are most likely a
	// forgotten `backend: redis`. max_staleness may stay set while
	// on_unavailable is switched to fail_closed: it is then unused.
	if kind.ownsDataDir {
		if st.OnUnavailable != "" {
			return c.bad(keyPath{"store", "on_unavailable"}, invalidf("applies only to store.backend redis"))
		}
		if st.MaxStaleness != 0 {
			return c.bad(keyPath{"store", "max_staleness"}, invalidf("applies only to store.backend redis"))
		}
		if err := c.validateFileStore(); err != nil {
			return err
		}
	} else if st.File.set() {
		return c.bad(keyPath{"store", "file"}, invalidf("applies only to store.backend file"))
	} else if len(c.Redis.Addrs) == 0 {
		return c.bad(keyPath{"redis", "addrs"}, invalidf("is empty, and store.backend is %s: give the Redis address (or the sentinels, or cluster seed nodes)", st.Backend))
	}
	if err := c.validateRedis(keyPath{"redis"}, c.Redis); err != nil {
		return err
	}
	if c.Cache.Redis != nil {
		if len(c.Cache.Redis.Addrs) == 0 {
			return c.bad(keyPath{"cache", "redis", "addrs"}, invalidf("is empty: give the cache's Redis address, or remove cache.redis to use the redis section"))
		}
		if err := c.validateRedis(keyPath{"cache", "redis"}, *c.Cache.Redis); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"near_ttl", c.Cache.NearTTL}, {"redis_ttl", c.Cache.RedisTTL}, {"op_timeout", c.Cache.OpTimeout}} {
		if d.v < 0 {
			return c.bad(keyPath{"cache", d.key}, invalidf("must not be negative"))
		}
	}
	if c.Cache.NearSize < -1 {
		return c.bad(keyPath{"cache", "near_size"}, invalidf("must be -1 (off), 0 (default 10000) or a number of entries"))
	}
	return nil
}

// validateFileStore checks store.file.
func (c *Config) validateFileStore() error {
	f, at := c.Store.File, keyPath{"store", "file"}
	switch file.Durability(f.Durability) {
	case "", file.DurabilitySync, file.DurabilityRelaxed:
	default:
		return c.bad(at.with("durability"), invalidf("is %q, must be %q or %q", f.Durability, file.DurabilitySync, file.DurabilityRelaxed))
	}
	if f.CommitWindow < 0 {
		return c.bad(at.with("commit_window"), invalidf("must not be negative"))
	}
	// A window past a second is a typo (ms meant as s): logins would wait
	// that long in sync mode, and relaxed mode would risk that much.
	if f.CommitWindow > time.Second {
		return c.bad(at.with("commit_window"), invalidf("is %s, must be at most 1s", f.CommitWindow))
	}
	if f.CheckpointBytes < 0 {
		return c.bad(at.with("checkpoint_bytes"), invalidf("must not be negative"))
	}
	return nil
}

// validateRedis checks one Redis connection section.
func (c *Config) validateRedis(at keyPath, rc redisstore.Config) error {
	for i, a := range rc.Addrs {
		if strings.TrimSpace(a) == "" {
			return c.bad(at.with("addrs", idx(i)), invalidf("is empty"))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", rc.DialTimeout}, {"read_timeout", rc.ReadTimeout}, {"write_timeout", rc.WriteTimeout}} {
		if d.v < 0 {
			return c.bad(at.with(d.key), invalidf("must not be negative"))
		}
	}
	if rc.DB < 0 {
		return c.bad(at.with("db"), invalidf("must not be negative"))
	}
	return nil
}

// cacheRedis is the cache's Redis section and where it is in the file; ok
// is false when the cache has no Redis (near cache only).
func (c *Config) cacheRedis() (rc redisstore.Config, at keyPath, ok bool) {
	if c.Cache.Redis != nil {
		return *c.Cache.Redis, keyPath{"cache", "redis"}, true
	}
	if len(c.Redis.Addrs) > 0 {
		return c.Redis, keyPath{"redis"}, true
	}
	return redisstore.Config{}, nil, false
}

// Backends opens the data the configuration names, for one command or one
// server: the authorization store, signing keys, revocations, admin keys
// and audit log, each from the backend store.backend chooses. Redis clients
// are opened once per section and closed by Close.
type Backends struct {
	cfg  *Config
	env  Env
	kind backend

	mu      sync.Mutex
	clients map[string]goredis.UniversalClient
}

// OpenBackends prepares the backends of a validated configuration (nothing
// is opened until asked for).
func OpenBackends(cfg *Config, env Env) (*Backends, error) {
	if err := cfg.validateBackends(); err != nil {
		return nil, err
	}
	return &Backends{cfg: cfg, env: env.withDefaults(), kind: backendKinds()[cfg.Store.backendName()]}, nil
}

// Close closes the Redis clients.
func (b *Backends) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for name, c := range b.clients {
		errs = append(errs, c.Close())
		delete(b.clients, name)
	}
	return errors.Join(errs...)
}

// Shared reports whether the store is shared by several nodes (no data dir
// is used or owned).
func (b *Backends) Shared() bool { return !b.kind.ownsDataDir }

// Describe names the store in messages: the data dir, or "redis ADDRS".
func (b *Backends) Describe() string { return b.kind.describe(b) }

// client returns the client of the section at (opened once). check pings
// it first, so that a command that needs Redis fails at start with a clear
// message rather than at its first write.
func (b *Backends) client(ctx context.Context, at keyPath, rc redisstore.Config, getenv func(string) string, check bool) (goredis.UniversalClient, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := at.String()
	if c, ok := b.clients[name]; ok {
		return c, nil
	}
	c, err := rc.FromEnv(getenv).NewClient()
	if err != nil {
		var ve *runtime.ValidationError
		if errors.As(err, &ve) && ve.Field != "" {
			return nil, b.cfg.bad(at.with(splitKey(ve.Field)...), reasonOf(err))
		}
		return nil, b.cfg.bad(at, err)
	}
	if check {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		if err != nil {
			_ = c.Close()
			return nil, b.cfg.bad(at, fmt.Errorf("cannot reach Redis at %s: %w: %w", strings.Join(rc.Addrs, ","), runtime.ErrUnavailable, err))
		}
	}
	if b.clients == nil {
		b.clients = map[string]goredis.UniversalClient{}
	}
	b.clients[name] = c
	return c, nil
}

// storeClient is the client of the redis section (store, keys, revocations,
// admin keys and audit when store.backend is redis).
func (b *Backends) storeClient(ctx context.Context) (goredis.UniversalClient, error) {
	return b.client(ctx, keyPath{"redis"}, b.cfg.Redis, b.env.Getenv, true)
}

// cacheClient is the policy cache's client, nil when the cache has no
// Redis. It is not pinged: the cache is never a reason to fail.
func (b *Backends) cacheClient(ctx context.Context) (goredis.UniversalClient, string, error) {
	rc, at, ok := b.cfg.cacheRedis()
	if !ok {
		return nil, "", nil
	}
	getenv := b.env.Getenv
	if b.cfg.Cache.Redis != nil {
		getenv = func(k string) string {
			switch k {
			case redisstore.EnvUsername:
				return b.env.Getenv(EnvCacheRedisUsername)
			case redisstore.EnvPassword:
				return b.env.Getenv(EnvCacheRedisPassword)
			}
			return b.env.Getenv(k)
		}
	}
	c, err := b.client(ctx, at, rc, getenv, false)
	return c, rc.KeyPrefix, err
}

// Store opens the configured authorization store. Read-only commands pass
// mustExist so a mistyped data dir is reported instead of created empty.
func (b *Backends) Store(ctx context.Context, mustExist bool) (DataStore, error) {
	return b.kind.store(ctx, b, mustExist)
}

// KeyStore is the signing key store: DIR/keys, or the Redis hash.
func (b *Backends) KeyStore(ctx context.Context) (token.KeyStore, error) { return b.kind.keys(ctx, b) }

// Revocations is the revocation list: DIR/revoked.jsonl, or Redis keys
// expiring with their tokens. close releases the file.
func (b *Backends) Revocations(ctx context.Context) (list token.RevocationList, close func() error, err error) {
	return b.kind.revocations(ctx, b)
}

// ReplayStore is where signed webhook ids are remembered against replay:
// Redis keys expiring with their tolerance window, shared by every node;
// nil for the file backend (each verifier's in-process cache).
func (b *Backends) ReplayStore(ctx context.Context) (replay.Store, error) {
	return b.kind.replay(ctx, b)
}

// Admin is the admin API's keys and audit log: DIR/admin, or Redis.
func (b *Backends) Admin(ctx context.Context) (AdminStores, error) { return b.kind.admin(ctx, b) }

// CommandStore opens the configured store for a CLI command. Writes notify
// running servers' policy caches when the cache has a Redis.
func (b *Backends) CommandStore(ctx context.Context, mustExist bool) (DataStore, error) {
	st, err := b.Store(ctx, mustExist)
	if err != nil {
		return nil, err
	}
	cc, prefix, err := b.cacheClient(ctx)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if cc == nil {
		return st, nil
	}
	// Never started: it only publishes (Invalidate), it caches nothing.
	pc, err := cache.New(st, cache.Options{Client: cc, Prefix: prefix, Logger: b.env.Log})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return invalidating(st, pc), nil
}

// LockForCommand takes the data dir's owner lock for a CLI command that
// writes the store directly. A shared store has no owner: several servers
// and commands share it, and its writes are transactions.
func (b *Backends) LockForCommand(ctx context.Context, command string) (func(), error) {
	if !b.kind.ownsDataDir {
		return func() {}, nil
	}
	return LockDataDirForCommand(ctx, b.env.DataDir, command)
}
