package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/term"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenredis "github.com/claimsmith/claimsmith/runtime/token/redis"
)

// Where claimsmith keeps its data is decided by three sections of the
// configuration file; every command (serve, import, export, policy, users,
// keys, token, admin-key and the admin CLI) opens its stores through this
// file, so a command run with the server's --config talks to the server's
// data. Without a file everything lives in --data-dir.
//
//	store:
//	  backend: file                 # file (default): the data dir; redis: the redis section
//	  on_unavailable: fail_closed   # redis only: fail_closed (default) | last_snapshot
//	  max_staleness: 5m             # last_snapshot only: oldest snapshot served
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
//	cache:                          # the policy cache in front of every login
//	  redis: {addrs: [...]}         # a separate Redis for the cache (same keys as the redis
//	                                # section; credentials from $CLAIMSMITH_CACHE_REDIS_USERNAME
//	                                # and $CLAIMSMITH_CACHE_REDIS_PASSWORD); default: the redis
//	                                # section when it has addrs, else no Redis (near cache only)
//	  near_size: 10000              # in-process entries (LRU); -1 disables the near cache
//	  near_ttl: 1m
//	  redis_ttl: 10m
//	  op_timeout: 50ms              # per Redis cache call on the login path
//	  poll_interval: 5s             # re-read the store revision (a missed invalidation); -1s: off
//
// With store.backend redis, the signing keys, the revocation list, the admin
// keys and the audit log live in the same Redis, so every node shares them;
// with the file backend they live in the data dir, which one server owns
// (see datalock.go). The policy cache is always in front of logins: with the
// file store it is in-process (plus the cache Redis when one is configured),
// with the Redis store it adds the shared Redis cache and pub/sub
// invalidation across nodes.

// The store backends.
const (
	backendFile  = "file"
	backendRedis = "redis"
)

// storeSection is the `store` section of the configuration file.
type storeSection struct {
	Backend       string        `yaml:"backend"`
	OnUnavailable string        `yaml:"on_unavailable"`
	MaxStaleness  time.Duration `yaml:"max_staleness"`
}

// cacheSection is the `cache` section of the configuration file.
type cacheSection struct {
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
	envCacheRedisUsername = "CLAIMSMITH_CACHE_REDIS_USERNAME"
	envCacheRedisPassword = "CLAIMSMITH_CACHE_REDIS_PASSWORD"
)

// checkBackends validates the store, redis and cache sections after
// decoding: every error is one line naming the file, the line and the key.
// Reachability is checked when a command opens them, not here.
func (c *loadedConfig) checkBackends() error {
	cfg := &c.cfg
	bad := func(path keyPath, reason string) error {
		return c.keyError(c.lineOf(path), path[:len(path)-1], path[len(path)-1], reason)
	}
	st := cfg.Store
	switch st.Backend {
	case "", backendFile, backendRedis:
	default:
		return bad(keyPath{"store", "backend"}, fmt.Sprintf("is %q, must be %q or %q", st.Backend, backendFile, backendRedis))
	}
	switch st.OnUnavailable {
	case "", redisstore.FailClosed, redisstore.LastSnapshot:
	default:
		return bad(keyPath{"store", "on_unavailable"}, fmt.Sprintf("is %q, must be %q or %q", st.OnUnavailable, redisstore.FailClosed, redisstore.LastSnapshot))
	}
	if st.MaxStaleness < 0 {
		return bad(keyPath{"store", "max_staleness"}, "must not be negative")
	}
	// Settings of the Redis store under the file backend are most likely a
	// forgotten `backend: redis`. max_staleness may stay set while
	// on_unavailable is switched to fail_closed: it is then unused.
	if st.Backend != backendRedis {
		if st.OnUnavailable != "" {
			return bad(keyPath{"store", "on_unavailable"}, "applies only to store.backend redis")
		}
		if st.MaxStaleness != 0 {
			return bad(keyPath{"store", "max_staleness"}, "applies only to store.backend redis")
		}
	}
	if st.Backend == backendRedis && len(cfg.Redis.Addrs) == 0 {
		return bad(keyPath{"redis", "addrs"}, "is empty, and store.backend is redis: give the Redis address (or the sentinels, or cluster seed nodes)")
	}
	if err := c.checkRedis(keyPath{"redis"}, cfg.Redis); err != nil {
		return err
	}
	if cfg.Cache.Redis != nil {
		if len(cfg.Cache.Redis.Addrs) == 0 {
			return bad(keyPath{"cache", "redis", "addrs"}, "is empty: give the cache's Redis address, or remove cache.redis to use the redis section")
		}
		if err := c.checkRedis(keyPath{"cache", "redis"}, *cfg.Cache.Redis); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"near_ttl", cfg.Cache.NearTTL}, {"redis_ttl", cfg.Cache.RedisTTL}, {"op_timeout", cfg.Cache.OpTimeout}} {
		if d.v < 0 {
			return bad(keyPath{"cache", d.key}, "must not be negative")
		}
	}
	if cfg.Cache.NearSize < -1 {
		return bad(keyPath{"cache", "near_size"}, "must be -1 (off), 0 (default 10000) or a number of entries")
	}
	return nil
}

// checkRedis validates one Redis connection section.
func (c *loadedConfig) checkRedis(at keyPath, rc redisstore.Config) error {
	for i, a := range rc.Addrs {
		if strings.TrimSpace(a) == "" {
			p := at.with("addrs").with(fmt.Sprintf("[%d]", i))
			return c.keyError(c.lineOf(p), at, fmt.Sprintf("addrs[%d]", i), "is empty")
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", rc.DialTimeout}, {"read_timeout", rc.ReadTimeout}, {"write_timeout", rc.WriteTimeout}} {
		if d.v < 0 {
			return c.keyError(c.lineOf(at.with(d.key)), at, d.key, "must not be negative")
		}
	}
	if rc.DB < 0 {
		return c.keyError(c.lineOf(at.with("db")), at, "db", "must not be negative")
	}
	return nil
}

// backendConfig is what the store, redis and cache sections say, with the
// file they came from (for errors). The zero value is the embedded default:
// the file store in the data dir, a near-only policy cache.
type backendConfig struct {
	lc    *loadedConfig // nil without --config
	Store storeSection
	Redis redisstore.Config
	Cache cacheSection
}

// backendsOf returns the backend sections of a loaded file (nil: defaults).
func backendsOf(lc *loadedConfig) backendConfig {
	if lc == nil {
		return backendConfig{}
	}
	return backendConfig{lc: lc, Store: lc.cfg.Store, Redis: lc.cfg.Redis, Cache: lc.cfg.Cache}
}

// loadBackends reads the backend sections of --config (defaults without).
func loadBackends(a *app) (backendConfig, error) {
	if a.configPath == "" {
		return backendConfig{}, nil
	}
	lc, err := loadConfig(a.configPath)
	if err != nil {
		return backendConfig{}, err
	}
	return backendsOf(lc), nil
}

func (b backendConfig) redisBackend() bool { return b.Store.Backend == backendRedis }

// cacheRedis is the cache's Redis section and where it is in the file; ok
// is false when the cache has no Redis (near cache only).
func (b backendConfig) cacheRedis() (rc redisstore.Config, at keyPath, ok bool) {
	if b.Cache.Redis != nil {
		return *b.Cache.Redis, keyPath{"cache", "redis"}, true
	}
	if len(b.Redis.Addrs) > 0 {
		return b.Redis, keyPath{"redis"}, true
	}
	return redisstore.Config{}, nil, false
}

// where names a section in errors: "FILE:LINE: redis" (or just the section).
func (b backendConfig) where(at keyPath) string {
	if b.lc == nil {
		return at.String()
	}
	return fmt.Sprintf("%s:%d: %s", b.lc.path, b.lc.lineOf(at), at.String())
}

// redisConns holds the Redis clients a command opened, one per section, and
// closes them when the command ends (run does that).
type redisConns struct {
	mu      sync.Mutex
	clients map[string]goredis.UniversalClient
}

// client returns the client of the section at (opened once per command).
// check pings it first, so that a command that needs Redis fails at start
// with a clear message rather than at its first write.
func (r *redisConns) client(ctx context.Context, b backendConfig, at keyPath, rc redisstore.Config, getenv func(string) string, check bool) (goredis.UniversalClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := at.String()
	if c, ok := r.clients[name]; ok {
		return c, nil
	}
	c, err := rc.FromEnv(getenv).NewClient()
	if err != nil {
		var ve *runtime.ValidationError
		if errors.As(err, &ve) && ve.Field != "" {
			return nil, fmt.Errorf("%s.%s: %w", b.where(at.with(strings.SplitN(ve.Field, "[", 2)[0])), ve.Field, err)
		}
		return nil, fmt.Errorf("%s: %w", b.where(at), err)
	}
	if check {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: cannot reach Redis at %s: %w: %w", b.where(at), strings.Join(rc.Addrs, ","), runtime.ErrUnavailable, err)
		}
	}
	if r.clients == nil {
		r.clients = map[string]goredis.UniversalClient{}
	}
	r.clients[name] = c
	return c, nil
}

// close closes every client.
func (r *redisConns) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, c := range r.clients {
		_ = c.Close()
		delete(r.clients, name)
	}
}

// storeClient is the client of the redis section (store, keys, revocations,
// admin keys and audit when store.backend is redis).
func (a *app) storeClient(ctx context.Context, b backendConfig) (goredis.UniversalClient, error) {
	return a.redis.client(ctx, b, keyPath{"redis"}, b.Redis, os.Getenv, true)
}

// cacheClient is the policy cache's client, nil when the cache has no
// Redis. It is not pinged: the cache is never a reason to fail.
func (a *app) cacheClient(ctx context.Context, b backendConfig) (goredis.UniversalClient, string, error) {
	rc, at, ok := b.cacheRedis()
	if !ok {
		return nil, "", nil
	}
	getenv := os.Getenv
	if b.Cache.Redis != nil {
		getenv = func(k string) string {
			switch k {
			case redisstore.EnvUsername:
				return os.Getenv(envCacheRedisUsername)
			case redisstore.EnvPassword:
				return os.Getenv(envCacheRedisPassword)
			}
			return os.Getenv(k)
		}
	}
	c, err := a.redis.client(ctx, b, at, rc, getenv, false)
	return c, rc.KeyPrefix, err
}

// dataStore is an authorization store as the commands use it.
type dataStore interface {
	authz.Store
	authz.ProfileLister
}

// importer is a store with a bulk loader that reports progress (the Redis
// store).
type importer interface {
	Import(ctx context.Context, expected uint64, doc *authz.Document, progress func(done, total int)) (uint64, error)
}

// openAuthzStore opens the configured authorization store. Read-only
// commands pass mustExist so a mistyped data dir is reported instead of
// created empty.
func openAuthzStore(ctx context.Context, a *app, b backendConfig, mustExist bool) (dataStore, error) {
	if !b.redisBackend() {
		if mustExist {
			if _, err := os.Stat(a.dataDir); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("data dir %s does not exist (import data first, or pass --data-dir)", a.dataDir)
			}
		}
		return file.Open(ctx, a.dataDir, file.Options{Logger: a.log})
	}
	c, err := a.storeClient(ctx, b)
	if err != nil {
		return nil, err
	}
	st, err := redisstore.New(ctx, c, redisstore.Options{Prefix: b.Redis.KeyPrefix, OnUnavailable: b.Store.OnUnavailable,
		MaxStaleness: b.Store.MaxStaleness, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.where(keyPath{"store"}), err)
	}
	return st, nil
}

// notifyingStore is a store opened by a CLI command: its writes publish the
// new revision on the policy cache's channel, so running servers drop their
// cached policies at once instead of at their next poll.
type notifyingStore struct {
	dataStore
	pc *cache.Cache
}

func (s notifyingStore) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	return s.pc.Writer(s.dataStore).Apply(ctx, expected, ops...)
}

// Import loads doc with the store's bulk loader when it has one (Redis:
// pipelined batches, progress), else with one ReplaceDocument.
func (s notifyingStore) Import(ctx context.Context, expected uint64, doc *authz.Document, progress func(done, total int)) (uint64, error) {
	im, ok := s.dataStore.(importer)
	if !ok {
		return s.Apply(ctx, expected, &authz.ReplaceDocument{Doc: doc})
	}
	rev, err := im.Import(ctx, expected, doc, progress)
	if err != nil {
		return rev, err
	}
	s.pc.Invalidate(ctx, rev)
	return rev, nil
}

// openDataStore opens the configured store for a CLI command: the file
// store in --data-dir, or the Redis store of the redis section. Writes
// notify running servers' policy caches when the cache has a Redis.
func openDataStore(ctx context.Context, a *app, mustExist bool) (dataStore, error) {
	b, err := loadBackends(a)
	if err != nil {
		return nil, err
	}
	st, err := openAuthzStore(ctx, a, b, mustExist)
	if err != nil {
		return nil, err
	}
	cc, prefix, err := a.cacheClient(ctx, b)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if cc == nil {
		return st, nil
	}
	// Never started: it only publishes (Invalidate), it caches nothing.
	pc, err := cache.New(st, cache.Options{Client: cc, Prefix: prefix, Logger: a.log})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return notifyingStore{dataStore: st, pc: pc}, nil
}

// lockForCommand takes the data dir's owner lock for a CLI command that
// writes the store directly. The Redis store has no owner: several servers
// and commands share it, and its writes are transactions.
func lockForCommand(ctx context.Context, a *app, command string) (func(), error) {
	b, err := loadBackends(a)
	if err != nil {
		return nil, err
	}
	if b.redisBackend() {
		return func() {}, nil
	}
	return lockDataDirForCommand(ctx, a.dataDir, command)
}

// openKeyStore is the signing key store: DIR/keys, or the Redis hash.
func openKeyStore(ctx context.Context, a *app, b backendConfig) (token.KeyStore, error) {
	if !b.redisBackend() {
		return token.NewFileKeyStore(filepath.Join(a.dataDir, "keys"))
	}
	c, err := a.storeClient(ctx, b)
	if err != nil {
		return nil, err
	}
	return tokenredis.NewKeyStore(c, b.Redis.KeyPrefix), nil
}

// openRevocations is the revocation list: DIR/revoked.jsonl, or Redis keys
// expiring with their tokens. close releases the file.
func openRevocations(ctx context.Context, a *app, b backendConfig) (list token.RevocationList, close func() error, err error) {
	if !b.redisBackend() {
		f, err := token.OpenFileRevocationList(ctx, filepath.Join(a.dataDir, "revoked.jsonl"), time.Now)
		if err != nil {
			return nil, nil, err
		}
		return f, f.Close, nil
	}
	c, err := a.storeClient(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	return tokenredis.NewRevocationList(c, b.Redis.KeyPrefix, time.Now), func() error { return nil }, nil
}

// adminStores are the admin API's keys and audit log: DIR/admin, or Redis.
type adminStores struct {
	keys  admin.KeyStore
	audit admin.AuditLog
}

func openAdminStores(ctx context.Context, a *app, b backendConfig) (adminStores, error) {
	if !b.redisBackend() {
		dir := filepath.Join(a.dataDir, admin.Dir)
		keys, err := admin.OpenFileKeyStore(dir, nil)
		if err != nil {
			return adminStores{}, err
		}
		audit, err := admin.OpenFileAuditLog(dir, nil)
		if err != nil {
			return adminStores{}, err
		}
		return adminStores{keys: keys, audit: audit}, nil
	}
	c, err := a.storeClient(ctx, b)
	if err != nil {
		return adminStores{}, err
	}
	opt := admin.RedisOptions{Prefix: b.Redis.KeyPrefix}
	return adminStores{keys: admin.NewRedisKeyStore(c, opt), audit: admin.NewRedisAuditLog(c, opt)}, nil
}

// serveStores is everything `serve` opens from the backend sections.
type serveStores struct {
	cfg   backendConfig
	store dataStore
	admin adminStores
	// release drops the data dir's owner lock (file backend) and closes the
	// store.
	release func()
}

// openServeStores takes the data dir's owner lock (file backend only: the
// Redis store is shared by every node) and opens the store and the admin
// key store and audit log.
func openServeStores(ctx context.Context, a *app, lc *loadedConfig, addr string) (*serveStores, error) {
	b := backendsOf(lc)
	unlock := func() {}
	if !b.redisBackend() {
		r, err := lockDataDirForServer(ctx, a.dataDir, addr)
		if err != nil {
			return nil, err
		}
		unlock = r
	}
	st, err := openAuthzStore(ctx, a, b, false)
	if err != nil {
		unlock()
		return nil, err
	}
	as, err := openAdminStores(ctx, a, b)
	if err != nil {
		_ = st.Close()
		unlock()
		return nil, err
	}
	return &serveStores{cfg: b, store: st, admin: as, release: func() { _ = st.Close(); unlock() }}, nil
}

// policyCache builds the policy cache over src (the server's store, metered)
// from the cache section: near cache always, the Redis cache and pub/sub
// when the cache has a Redis. The caller starts and closes it.
func (s *serveStores) policyCache(ctx context.Context, a *app, src cache.Source, reg prometheus.Registerer) (*cache.Cache, error) {
	cc, prefix, err := a.cacheClient(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	c := s.cfg.Cache
	return cache.New(src, cache.Options{Client: cc, Prefix: prefix, NearSize: c.NearSize, NearTTL: c.NearTTL,
		RedisTTL: c.RedisTTL, OpTimeout: c.OpTimeout, PollInterval: c.PollInterval, Logger: a.log, Registerer: reg})
}

// storeCheckTimeout bounds the store's readiness check: go-redis' retries
// against a dead server take about 1.7 s, longer than probes wait.
const storeCheckTimeout = 500 * time.Millisecond

// storeCheck is the readiness check of the store. With the Redis store and
// last_snapshot, logins keep being answered while Redis is away (within
// max_staleness), so an unreachable store degrades instead of failing.
func (s *serveStores) storeCheck() hooks.ReadyCheck {
	st := s.store
	return hooks.ReadyCheck{
		Name: "store",
		Check: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
			defer cancel()
			_, err := st.Revision(ctx)
			return err
		},
		Degrades: s.cfg.redisBackend() && s.cfg.Store.OnUnavailable == redisstore.LastSnapshot,
	}
}

// describe is the store's one-line description for logs and messages.
func (b backendConfig) describe(a *app) string {
	if b.redisBackend() {
		return "redis " + strings.Join(b.Redis.Addrs, ",")
	}
	return a.dataDir
}

// storeName names the configured store in messages: the data dir, or
// "redis ADDRS".
func storeName(a *app) string {
	b, err := loadBackends(a)
	if err != nil {
		return a.dataDir
	}
	return b.describe(a)
}

// importInto replaces the store's model with doc: with the Redis store's
// pipelined bulk loader, showing how many commands were written, else with
// one ReplaceDocument.
func importInto(ctx context.Context, a *app, st dataStore, expected uint64, doc *authz.Document, label string) (uint64, error) {
	im, ok := st.(importer)
	if !ok {
		return st.Apply(ctx, expected, &authz.ReplaceDocument{Doc: doc})
	}
	p := newCountProgress(a.stderr, label, "commands")
	defer p.done()
	return im.Import(ctx, expected, doc, p.update)
}

// countProgress shows a count of done items out of a total: a redrawn bar
// on a terminal, a line per quarter otherwise, nothing for small totals
// (they finish before a bar is readable).
type countProgress struct {
	w           io.Writer
	label, unit string
	tty         bool
	last        time.Time
	marked      int
	shown       bool
	d, t        int
}

// countProgressThreshold is the total from which progress is shown.
const countProgressThreshold = 20000

func newCountProgress(w io.Writer, label, unit string) *countProgress {
	p := &countProgress{w: w, label: label, unit: unit}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// update is the loader's callback: done of total items written.
func (p *countProgress) update(done, total int) {
	p.d, p.t = done, total
	if total < countProgressThreshold || total <= 0 {
		return
	}
	if p.tty {
		if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || done == total {
			p.last, p.shown = now, true
			fmt.Fprintf(p.w, "\r%s", p.bar())
		}
		return
	}
	if q := done * 4 / total; q > p.marked {
		p.marked = q
		fmt.Fprintf(p.w, "%s: %d%% (%d of %d %s written)\n", p.label, q*25, done, total, p.unit)
	}
}

func (p *countProgress) bar() string {
	const width = 30
	filled := min(p.d*width/p.t, width)
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d %s", p.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		p.d*100/p.t, p.d, p.t, p.unit)
}

// done ends the bar's line.
func (p *countProgress) done() {
	if p.tty && p.shown {
		fmt.Fprintf(p.w, "\r%s\n", p.bar())
		p.shown = false
	}
}

// openAuditLog is the admin audit log of the configured backend, for CLI
// commands.
func openAuditLog(ctx context.Context, a *app) (admin.AuditLog, error) {
	b, err := loadBackends(a)
	if err != nil {
		return nil, err
	}
	as, err := openAdminStores(ctx, a, b)
	return as.audit, err
}

// openAdminKeys is the admin key store of the configured backend, for
// `claimsmith admin-key`.
func openAdminKeys(ctx context.Context, a *app) (admin.KeyStore, error) {
	b, err := loadBackends(a)
	if err != nil {
		return nil, err
	}
	as, err := openAdminStores(ctx, a, b)
	return as.keys, err
}
