package guard

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCache keeps principals (or refusals) per token until a deadline. It
// is keyed by the token's SHA-256, so tokens are not kept in memory, and
// bounded: when full, expired entries go first, then arbitrary ones.
type tokenCache struct {
	max int
	mu  sync.RWMutex
	m   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	p     *Principal
	err   error
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, m: make(map[[32]byte]cacheEntry)}
}

func (c *tokenCache) get(key [32]byte, now time.Time) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *tokenCache) put(key [32]byte, e cacheEntry, now time.Time) {
	if c == nil || !now.Before(e.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max*3/4 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = e
}

func tokenKey(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }
