package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// With the redis authorization store several claimsmith nodes share one
// data set, so admin keys and the audit log live in Redis too: a key
// created on one node works on every node at once, and every node's writes
// land in one audit sequence. All keys of an instance share the hash tag
// {admin}, so multi-key operations work on Redis Cluster.

// Options configure the Redis admin stores.
type Options struct {
	// Prefix starts every key ["claimsmith:"], as the authorization store's.
	Prefix string
	// Now is the clock of key creation and audit times (nil: time.Now).
	Now func() time.Time
}

func (o Options) key(name string) string {
	p := o.Prefix
	if p == "" {
		p = "claimsmith:"
	}
	return p + "{admin}:" + name
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// redisErr marks a Redis failure as the service being unavailable (503),
// never as the caller's fault.
func redisErr(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, runtime.ErrUnavailable, err)
}

// KeyStore keeps admin keys in one Redis hash (key id → JSON without
// the secret). Authenticate reads the hash on every call, so a revocation
// takes effect on all nodes at once; a node has a handful of keys, so that
// is one small round trip.
type KeyStore struct {
	c   goredis.UniversalClient
	opt Options
}

var _ admin.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns the key store on c.
func NewKeyStore(c goredis.UniversalClient, opt Options) *KeyStore {
	return &KeyStore{c: c, opt: opt}
}

func (s *KeyStore) all(ctx context.Context) ([]admin.Key, error) {
	pipe := s.c.Pipeline()
	hash := pipe.HGetAll(ctx, s.opt.key("keys"))
	order := pipe.ZRangeWithScores(ctx, s.opt.key("keyorder"), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, redisErr("admin keys", err)
	}
	m := hash.Val()
	// Creation order: the sequence number Create gave the key (keys from
	// before the order index rank first, by time), then time and id.
	rank := make(map[string]float64, len(m))
	for _, z := range order.Val() {
		if id, ok := z.Member.(string); ok {
			rank[id] = z.Score
		}
	}
	keys := make([]admin.Key, 0, len(m))
	for id, v := range m {
		var k admin.Key
		if err := json.Unmarshal([]byte(v), &k); err != nil || k.ID != id || len(k.Hash) != 64 {
			return nil, fmt.Errorf("admin key %q in redis is malformed: %w", id, runtime.ErrInvalid)
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank[keys[i].ID], rank[keys[j].ID]; ri != rj {
			return ri < rj
		}
		if !keys[i].Created.Equal(keys[j].Created) {
			return keys[i].Created.Before(keys[j].Created)
		}
		return keys[i].ID < keys[j].ID
	})
	return keys, nil
}

// createKey adds a key unless its name is taken, atomically.
var createKey = goredis.NewScript(`
local all = redis.call('HVALS', KEYS[1])
for _, v in ipairs(all) do
  local k = cjson.decode(v)
  if k.name == ARGV[3] then return k.id end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
return ''
`)

// Create implements admin.KeyStore.
func (s *KeyStore) Create(ctx context.Context, name string, scopes []string) (admin.Key, string, error) {
	k, secret, err := admin.NewKey(name, scopes, s.opt.now())
	if err != nil {
		return admin.Key{}, "", err
	}
	id := k.ID
	b, err := json.Marshal(k)
	if err != nil {
		return admin.Key{}, "", err
	}
	other, err := createKey.Run(ctx, s.c, []string{s.opt.key("keys"), s.opt.key("keyorder"), s.opt.key("keyseq")}, id, string(b), name).Text()
	if err != nil {
		return admin.Key{}, "", redisErr("admin keys", err)
	}
	if other != "" {
		return admin.Key{}, "", fmt.Errorf("admin key name %q is used by key %s: %w", name, other, runtime.ErrExists)
	}
	return k, secret, nil
}

// Authenticate implements admin.KeyStore.
func (s *KeyStore) Authenticate(ctx context.Context, secret string) (admin.Key, error) {
	keys, err := s.all(ctx)
	if err != nil {
		return admin.Key{}, err
	}
	k, ok := admin.MatchKey(keys, secret)
	if !ok {
		return admin.Key{}, fmt.Errorf("admin key not recognised: %w", runtime.ErrUnauthenticated)
	}
	return k, nil
}

// List implements admin.KeyStore.
func (s *KeyStore) List(ctx context.Context) ([]admin.Key, error) { return s.all(ctx) }

// Revoke implements admin.KeyStore.
func (s *KeyStore) Revoke(ctx context.Context, idOrName string) error {
	keys, err := s.all(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == idOrName || k.Name == idOrName {
			_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.HDel(ctx, s.opt.key("keys"), k.ID)
				p.ZRem(ctx, s.opt.key("keyorder"), k.ID)
				return nil
			})
			if err != nil {
				return redisErr("admin keys", err)
			}
			return nil
		}
	}
	return fmt.Errorf("admin key %q: %w", idOrName, runtime.ErrNotFound)
}

// AuditLog keeps audit records in a Redis list, newest first, numbered
// by a counter incremented in the same script, so records from every node
// form one gap-free sequence.
type AuditLog struct {
	c   goredis.UniversalClient
	opt Options
}

var _ admin.AuditLog = (*AuditLog)(nil)

// NewAuditLog returns the audit log on c.
func NewAuditLog(c goredis.UniversalClient, opt Options) *AuditLog {
	return &AuditLog{c: c, opt: opt}
}

// appendRecord numbers a record and pushes it: ARGV[1] is the JSON with
// "seq":0 as its first member, replaced by the counter's value.
var appendRecord = goredis.NewScript(`
local seq = redis.call('INCR', KEYS[2])
local rec = '{"seq":' .. seq .. string.sub(ARGV[1], 9)
redis.call('LPUSH', KEYS[1], rec)
return seq
`)

// Append implements admin.AuditLog.
func (l *AuditLog) Append(ctx context.Context, r admin.Record) (admin.Record, error) {
	if r.Time.IsZero() {
		r.Time = l.opt.now()
	}
	r.Time = r.Time.UTC()
	r.Seq = 0
	b, err := json.Marshal(r)
	if err != nil {
		return admin.Record{}, fmt.Errorf("audit log: %w", err)
	}
	if !jsonStartsWithSeq0(b) {
		return admin.Record{}, errors.New("audit log: record encoding does not start with seq")
	}
	seq, err := appendRecord.Run(ctx, l.c, []string{l.opt.key("audit"), l.opt.key("audit:seq")}, string(b)).Int64()
	if err != nil {
		return admin.Record{}, redisErr("audit log", err)
	}
	r.Seq = uint64(seq)
	return r, nil
}

func jsonStartsWithSeq0(b []byte) bool { return len(b) > 8 && string(b[:8]) == `{"seq":0` }

// List implements admin.AuditLog.
func (l *AuditLog) List(ctx context.Context, q admin.AuditQuery) (admin.AuditPage, error) {
	if q.Page < 0 || q.PerPage <= 0 {
		return admin.AuditPage{}, &runtime.ValidationError{Entity: "audit query", Field: "page", Reason: "page must be ≥ 0 and per_page ≥ 1"}
	}
	key := l.opt.key("audit")
	filtered := q.Action != "" || q.KeyName != "" || q.EntityID != ""
	if !filtered {
		start := int64(q.Page) * int64(q.PerPage)
		pipe := l.c.Pipeline()
		total := pipe.LLen(ctx, key)
		rng := pipe.LRange(ctx, key, start, start+int64(q.PerPage)-1)
		if _, err := pipe.Exec(ctx); err != nil {
			return admin.AuditPage{}, redisErr("audit log", err)
		}
		out, err := decodeRecords(rng.Val())
		return admin.AuditPage{Records: out, Total: int(total.Val())}, err
	}
	all, err := l.c.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return admin.AuditPage{}, redisErr("audit log", err)
	}
	recs, err := decodeRecords(all)
	if err != nil {
		return admin.AuditPage{}, err
	}
	out := []admin.Record{}
	total, skip := 0, q.Page*q.PerPage
	for _, r := range recs {
		if (q.Action != "" && r.Action != q.Action) || (q.KeyName != "" && r.KeyName != q.KeyName) ||
			(q.EntityID != "" && r.EntityID != q.EntityID) {
			continue
		}
		total++
		if skip > 0 {
			skip--
			continue
		}
		if len(out) < q.PerPage {
			out = append(out, r)
		}
	}
	return admin.AuditPage{Records: out, Total: total}, nil
}

func decodeRecords(raw []string) ([]admin.Record, error) {
	out := make([]admin.Record, 0, len(raw))
	for _, s := range raw {
		var r admin.Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("audit log: a record in redis is malformed: %v", err)
		}
		out = append(out, r)
	}
	return out, nil
}
