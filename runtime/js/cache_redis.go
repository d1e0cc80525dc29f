package js

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCache is the Cache shared by every node using the same Redis (the
// policy cache's): one hash per scope, field = key, value =
// "<expiry in Unix milliseconds>:<value>". Auth0's limits (entries and
// total bytes per scope) hold across nodes: Set checks and writes in one
// script. Expiry is by the engine's clock (claimsmith test --now pins it);
// Redis drops a scope's hash CacheMaxTTL after its last write.
type RedisCache struct {
	client    redis.UniversalClient
	prefix    string
	now       func() time.Time
	opTimeout time.Duration
}

// RedisCacheOptions configure a RedisCache. Zero values take the defaults
// in brackets.
type RedisCacheOptions struct {
	// Prefix starts every key ["claimsmith:"]; the cache adds "js-cache:".
	Prefix string
	// Now is the clock [time.Now].
	Now func() time.Time
	// OpTimeout bounds every operation, which runs on a login's path
	// [50ms]; a slow Redis answers get with undefined and set with
	// {type: "error", code: "cache_unavailable"}.
	OpTimeout time.Duration
}

// NewRedisCache returns a cache over client.
func NewRedisCache(client redis.UniversalClient, opts RedisCacheOptions) *RedisCache {
	if opts.Prefix == "" {
		opts.Prefix = "claimsmith:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 50 * time.Millisecond
	}
	return &RedisCache{client: client, prefix: opts.Prefix + "js-cache:", now: opts.Now, opTimeout: opts.OpTimeout}
}

var _ Cache = (*RedisCache)(nil)

// ErrCacheBackend wraps a Redis failure of the JavaScript cache.
var ErrCacheBackend = errors.New("api.cache backend")

func (c *RedisCache) key(scope string) string {
	// Scopes are "rule\x00trigger"; a readable key.
	return c.prefix + strings.ReplaceAll(scope, "\x00", ":")
}

func (c *RedisCache) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opTimeout)
}

func splitEntry(s string) (time.Time, string, bool) {
	ms, v, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMilli(n), v, true
}

// Get returns an unexpired entry.
func (c *RedisCache) Get(ctx context.Context, scope, key string) (string, time.Time, bool, error) {
	ctx, cancel := c.op(ctx)
	defer cancel()
	s, err := c.client.HGet(ctx, c.key(scope), key).Result()
	if errors.Is(err, redis.Nil) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("%w: get: %w", ErrCacheBackend, err)
	}
	exp, v, ok := splitEntry(s)
	if !ok || !c.now().Before(exp) {
		return "", time.Time{}, false, nil
	}
	return v, exp, true, nil
}

// setScript drops the scope's expired entries, checks the entry count and
// the total size without the key being replaced, and writes. KEYS[1] the
// scope's hash; ARGV key, entry ("exp:value"), now (ms), max entries, max
// total bytes, hash lifetime (ms). Answers "ok" or "full".
var setScript = redis.NewScript(`
local now = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local count, total, replacing = 0, 0, false
for i = 1, #all, 2 do
  local k, v = all[i], all[i + 1]
  local sep = string.find(v, ':', 1, true)
  local exp = sep and tonumber(string.sub(v, 1, sep - 1)) or 0
  if exp <= now then
    redis.call('HDEL', KEYS[1], k)
  elseif k == ARGV[1] then
    replacing = true
  else
    count = count + 1
    total = total + #k + (#v - sep)
  end
end
local vlen = #ARGV[2] - string.find(ARGV[2], ':', 1, true)
if (not replacing and count + 1 > tonumber(ARGV[4])) or total + #ARGV[1] + vlen > tonumber(ARGV[5]) then
  return 'full'
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 'ok'
`)

// Set stores an entry within Auth0's limits.
func (c *RedisCache) Set(ctx context.Context, scope, key, value string, expires time.Time) error {
	if len(key) > CacheMaxKeyBytes {
		return ErrCacheKeyTooLarge
	}
	if len(value) > CacheMaxValueBytes {
		return ErrCacheValueTooLarge
	}
	ctx, cancel := c.op(ctx)
	defer cancel()
	entry := strconv.FormatInt(expires.UnixMilli(), 10) + ":" + value
	res, err := setScript.Run(ctx, c.client, []string{c.key(scope)}, key, entry, c.now().UnixMilli(),
		CacheMaxEntries, CacheMaxTotalBytes, CacheMaxTTL.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("%w: set: %w", ErrCacheBackend, err)
	}
	if res == "full" {
		return ErrCacheFull
	}
	return nil
}

// Delete removes an entry.
func (c *RedisCache) Delete(ctx context.Context, scope, key string) (bool, error) {
	ctx, cancel := c.op(ctx)
	defer cancel()
	n, err := c.client.HDel(ctx, c.key(scope), key).Result()
	if err != nil {
		return false, fmt.Errorf("%w: delete: %w", ErrCacheBackend, err)
	}
	return n > 0, nil
}
