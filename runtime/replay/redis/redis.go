// Package redis remembers signed webhook message ids in Redis (see package
// replay): one key per id, written with SET NX and an expiry at the end of
// the id's tolerance window, so every node of a deployment (and a node
// after a restart) refuses a request another node accepted.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/replay"
)

// Store keeps <prefix>replay:<id> keys. Keys carry no hash tag: a Cluster
// spreads them, and every operation touches one key.
type Store struct {
	c      goredis.UniversalClient
	prefix string
}

// rememberScript sets the id's key unless it exists, to a token naming
// this attempt, and reports whether the key is this attempt's. A plain SET
// NX is not safe to retry: go-redis retries a command whose reply timed out
// (the first attempt may have set the key), and the retry would then call
// a fresh message a replay. With the token, a retry of the same attempt
// still answers fresh; any other attempt sees a replay.
var rememberScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
return 0
`)

var _ replay.Store = (*Store)(nil)

// New uses c with the key prefix (default "claimsmith:").
func New(c goredis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "claimsmith:"
	}
	return &Store{c: c, prefix: prefix + "replay:"}
}

// minTTL keeps an id whose window ends within the next millisecond: SET
// refuses a zero expiry.
const minTTL = time.Millisecond

// Remember implements replay.Store with a SET NX PX that is safe to retry
// (rememberScript): the expiry is relative
// (until − now by the caller's clock), so clock skew between a node and
// Redis does not shorten it. An id whose window has already ended needs no
// key (the caller's timestamp check refuses it).
func (s *Store) Remember(ctx context.Context, id string, now, until time.Time) (bool, error) {
	ttl := until.Sub(now)
	if ttl <= 0 {
		return true, nil
	}
	ttl = max(ttl, minTTL)
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // never fails (crypto/rand)
	n, err := rememberScript.Run(ctx, s.c, []string{s.prefix + id}, hex.EncodeToString(tok[:]), ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable("remember", err)
	}
	return n == 1, nil
}

// Forget implements replay.Store.
func (s *Store) Forget(ctx context.Context, id string) error {
	if err := s.c.Del(ctx, s.prefix+id).Err(); err != nil {
		return unavailable("forget", err)
	}
	return nil
}

func unavailable(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis replay store: %s: %w: %w", op, runtime.ErrTimeout, err)
	}
	return fmt.Errorf("redis replay store: %s: %w: %w", op, runtime.ErrUnavailable, err)
}
