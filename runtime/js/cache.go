package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Auth0's Actions cache limits (docs: Actions limitations, cached data).
const (
	CacheMaxKeyBytes   = 64
	CacheMaxValueBytes = 4 << 10
	CacheMaxEntries    = 20
	CacheMaxTotalBytes = 8 << 10
	CacheDefaultTTL    = 15 * time.Minute
	CacheMaxTTL        = 24 * time.Hour
)

// Cache errors, answered to the script as {type: "error", code}.
var (
	ErrCacheKeyTooLarge   = errors.New("key_too_large")
	ErrCacheValueTooLarge = errors.New("value_too_large")
	ErrCacheFull          = errors.New("cache_full")
)

// Cache backs api.cache. A scope is one rule and trigger (Auth0 scopes
// values to the trigger of the Action that set them); the limits above hold
// per scope.
type Cache interface {
	Get(ctx context.Context, scope, key string) (value string, expiresAt time.Time, ok bool, err error)
	Set(ctx context.Context, scope, key, value string, expiresAt time.Time) error
	Delete(ctx context.Context, scope, key string) (bool, error)
}

// MemoryCache is the in-process Cache: shared by every engine instance of a
// process, not by several nodes.
type MemoryCache struct {
	now    func() time.Time
	mu     sync.Mutex
	scopes map[string]map[string]cacheEntry
}

type cacheEntry struct {
	value   string
	expires time.Time
}

// NewMemoryCache returns an empty in-process cache on the given clock
// (nil: time.Now).
func NewMemoryCache(now func() time.Time) *MemoryCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{now: now, scopes: map[string]map[string]cacheEntry{}}
}

// Get returns an unexpired entry.
func (c *MemoryCache) Get(_ context.Context, scope, key string) (string, time.Time, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.scopes[scope][key]
	if !ok || !c.now().Before(e.expires) {
		return "", time.Time{}, false, nil
	}
	return e.value, e.expires, true, nil
}

// Set stores an entry within the limits: expired entries are dropped
// first; a full scope refuses new keys.
func (c *MemoryCache) Set(_ context.Context, scope, key, value string, expires time.Time) error {
	if len(key) > CacheMaxKeyBytes {
		return ErrCacheKeyTooLarge
	}
	if len(value) > CacheMaxValueBytes {
		return ErrCacheValueTooLarge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := c.scopes[scope]
	if s == nil {
		s = map[string]cacheEntry{}
		c.scopes[scope] = s
	}
	total := 0
	for k, e := range s {
		if !now.Before(e.expires) {
			delete(s, k)
			continue
		}
		if k != key {
			total += len(k) + len(e.value)
		}
	}
	_, replacing := s[key]
	if (!replacing && len(s) >= CacheMaxEntries) || total+len(key)+len(value) > CacheMaxTotalBytes {
		return ErrCacheFull
	}
	s[key] = cacheEntry{value: value, expires: expires}
	return nil
}

// Delete removes an entry.
func (c *MemoryCache) Delete(_ context.Context, scope, key string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.scopes[scope][key]
	delete(c.scopes[scope], key)
	return ok, nil
}

type cacheRequest struct {
	Op        string  `json:"op"`
	Key       string  `json:"key"`
	Value     *string `json:"value"`
	TTL       *int64  `json:"ttl"`
	ExpiresAt *int64  `json:"expires_at"`
}

// hostCache serves the guest's js_cache: Auth0's answers, {value,
// expires_at} or undefined for get, {type: "success"|"error", code} for
// set and delete.
func (e *Engine) hostCache(ctx context.Context, arg []byte) ([]byte, error) {
	call, _ := ctx.Value(callKey{}).(*callScope)
	if call == nil {
		return nil, errors.New("api.cache used outside a rule call")
	}
	var req cacheRequest
	if err := json.Unmarshal(arg, &req); err != nil {
		return nil, err
	}
	scope := call.rule.name + "\x00" + string(call.trigger)
	now := time.Now
	if e.opts.Now != nil {
		now = e.opts.Now
	}
	answer := func(err error) ([]byte, error) {
		if err != nil {
			code := err.Error()
			if !errors.Is(err, ErrCacheFull) && !errors.Is(err, ErrCacheKeyTooLarge) && !errors.Is(err, ErrCacheValueTooLarge) {
				e.log.Warn("api.cache backend failed", "rule", call.rule.name, "err", err)
				code = "cache_unavailable"
			}
			return json.Marshal(map[string]string{"type": "error", "code": code})
		}
		return []byte(`{"type":"success"}`), nil
	}
	switch req.Op {
	case "get":
		v, exp, ok, err := e.cache.Get(ctx, scope, req.Key)
		if err != nil || !ok {
			return []byte("null"), nil
		}
		return json.Marshal(map[string]any{"value": v, "expires_at": exp.UnixMilli()})
	case "set":
		if req.Value == nil {
			return nil, errors.New("api.cache.set: no value")
		}
		exp := now().Add(CacheDefaultTTL)
		switch {
		case req.ExpiresAt != nil:
			exp = time.UnixMilli(*req.ExpiresAt)
		case req.TTL != nil:
			exp = now().Add(time.Duration(*req.TTL) * time.Millisecond)
		}
		if limit := now().Add(CacheMaxTTL); exp.After(limit) {
			exp = limit
		}
		return answer(e.cache.Set(ctx, scope, req.Key, *req.Value, exp))
	case "delete":
		_, err := e.cache.Delete(ctx, scope, req.Key)
		return answer(err)
	}
	return nil, fmt.Errorf("api.cache: unknown operation %q", req.Op)
}
