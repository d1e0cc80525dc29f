// Package redis keeps claimsmith's signing keys and token revocations in
// Redis, so that every node of a deployment signs with the same key set and
// honours the same revocations. It implements token.KeyStore and
// token.RevocationList through go-redis' universal client (single node,
// Sentinel or Cluster).
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

func unavailable(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis %s: %w: %w", op, runtime.ErrTimeout, err)
	}
	return fmt.Errorf("redis %s: %w: %w", op, runtime.ErrUnavailable, err)
}

// KeyStore keeps every signing key as one field of a hash,
// <prefix>{keys}:signing, holding token.MarshalKey's record. The record
// holds the private key: protect Redis accordingly (ACL, TLS, no public
// network).
//
// Once it has seen a key, an empty hash is data loss (Redis restarted
// without its data, or was flushed), never "no keys yet": LoadKeys then
// fails with ErrKeysLost, so the key set keeps the keys it has and never
// generates a new one silently (relying parties would reject every token
// signed before, and other nodes would each generate their own). The loss
// clears when keys are back (restored, or `claimsmith keys rotate`).
type KeyStore struct {
	c        goredis.UniversalClient
	key      string
	attempts string // prefix of createScript's attempt markers (same slot)

	seen atomic.Bool
	lost atomic.Pointer[error]
}

// ErrKeysLost is LoadKeys' answer once the key hash is gone after keys were
// seen in it. The errors carrying it also match runtime.ErrUnavailable.
var ErrKeysLost = errors.New("the signing keys are gone from Redis")

var _ token.KeyStore = (*KeyStore)(nil)

// NewKeyStore uses c with the key prefix (default "claimsmith:").
func NewKeyStore(c goredis.UniversalClient, prefix string) *KeyStore {
	if prefix == "" {
		prefix = "claimsmith:"
	}
	return &KeyStore{c: c, key: prefix + "{keys}:signing", attempts: prefix + "{keys}:create:"}
}

// LoadKeys implements token.KeyStore: every key, by kid. A record that does
// not decode is an error naming it.
func (s *KeyStore) LoadKeys(ctx context.Context) ([]*token.Key, error) {
	all, err := s.c.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, unavailable("key store: load", err)
	}
	if len(all) == 0 && s.seen.Load() {
		lost := fmt.Errorf("redis key store: %w: %w: %s is empty although keys were loaded from it (Redis lost its data?); "+
			"restore the Redis data, or run `claimsmith keys rotate` to start a new key set", runtime.ErrUnavailable, ErrKeysLost, s.key)
		s.lost.CompareAndSwap(nil, &lost)
		return nil, lost
	}
	if len(all) > 0 {
		s.seen.Store(true)
		s.lost.Store(nil)
	}
	keys := make([]*token.Key, 0, len(all))
	for kid, rec := range all {
		k, err := token.UnmarshalKey([]byte(rec))
		if err != nil {
			return nil, fmt.Errorf("redis key store: field %q of %s: %w", kid, s.key, err)
		}
		if k.ID != kid {
			return nil, fmt.Errorf("%w: redis key store: field %q of %s holds key %s", runtime.ErrInvalid, kid, s.key, k.ID)
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ID < keys[j].ID })
	return keys, nil
}

// createScript sets the key's field unless it exists and marks the
// attempt (KEYS[2], a minute); it answers 1 when the field is this
// attempt's. A plain HSETNX is not safe to retry: go-redis retries a
// command whose reply was lost (a read timeout), and the retry of an
// HSETNX that did set the field answers 0 — a key just created reported
// as taken, its rotation failed. With the marker, a retry of the same
// attempt still answers 1; any other attempt sees the kid taken.
var createScript = goredis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', 60000)
  return 1
end
if redis.call('GET', KEYS[2]) == ARGV[3] then return 1 end
return 0`)

// CreateKey implements token.KeyStore: two nodes rotating at once cannot
// overwrite each other's key (createScript).
func (s *KeyStore) CreateKey(ctx context.Context, k *token.Key) error {
	b, err := token.MarshalKey(k)
	if err != nil {
		return err
	}
	var attempt [16]byte
	_, _ = rand.Read(attempt[:])
	n, err := createScript.Run(ctx, s.c, []string{s.key, s.attempts + k.ID}, k.ID, b, hex.EncodeToString(attempt[:])).Int()
	if err != nil {
		return unavailable("key store: create", err)
	}
	s.seen.Store(true)
	if n != 1 {
		return fmt.Errorf("%w: key %s", runtime.ErrExists, k.ID)
	}
	return nil
}

// DataLoss is the ErrKeysLost error while the keys are gone, else nil
// (readiness fails on it).
func (s *KeyStore) DataLoss() error {
	if p := s.lost.Load(); p != nil {
		return *p
	}
	return nil
}

// DeleteKey implements token.KeyStore; an unknown kid is not an error.
func (s *KeyStore) DeleteKey(ctx context.Context, kid string) error {
	if kid == "" {
		return fmt.Errorf("%w: kid is empty", runtime.ErrInvalid)
	}
	if err := s.c.HDel(ctx, s.key, kid).Err(); err != nil {
		return unavailable("key store: delete", err)
	}
	return nil
}
