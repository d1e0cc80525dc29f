package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
)

// With the redis authorization store several claimsmith nodes share one
// data set, so admin keys and the audit log live in Redis too: a key
// created on one node works on every node at once, and every node's writes
// land in one audit sequence. All keys of an instance share the hash tag
// {admin}, so multi-key operations work on Redis Cluster.

// RedisOptions configure the Redis admin stores.
type RedisOptions struct {
	// Prefix starts every key ["claimsmith:"], as the authorization store's.
	Prefix string
	// Now is the clock of key creation and audit times (nil: time.Now).
	Now func() time.Time
}

func (o RedisOptions) key(name string) string {
	p := o.Prefix
	if p == "" {
		p = "claimsmith:"
	}
	return p + "{admin}:" + name
}

func (o RedisOptions) now() time.Time {
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

// RedisKeyStore keeps admin keys in one Redis hash (key id → JSON without
// the secret). Authenticate reads the hash on every call, so a revocation
// takes effect on all nodes at once; a node has a handful of keys, so that
// is one small round trip.
type RedisKeyStore struct {
	c   goredis.UniversalClient
	opt RedisOptions
}

var _ KeyStore = (*RedisKeyStore)(nil)

// NewRedisKeyStore returns the key store on c.
func NewRedisKeyStore(c goredis.UniversalClient, opt RedisOptions) *RedisKeyStore {
	return &RedisKeyStore{c: c, opt: opt}
}

func (s *RedisKeyStore) all(ctx context.Context) ([]Key, error) {
	m, err := s.c.HGetAll(ctx, s.opt.key("keys")).Result()
	if err != nil {
		return nil, redisErr("admin keys", err)
	}
	keys := make([]Key, 0, len(m))
	for id, v := range m {
		var k Key
		if err := json.Unmarshal([]byte(v), &k); err != nil || k.ID != id || len(k.Hash) != 64 {
			return nil, fmt.Errorf("admin key %q in redis is malformed: %w", id, runtime.ErrInvalid)
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
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
return ''
`)

// Create implements KeyStore.
func (s *RedisKeyStore) Create(ctx context.Context, name string, scopes []string) (Key, string, error) {
	if err := ValidateKeyName(name); err != nil {
		return Key{}, "", err
	}
	for _, sc := range scopes {
		if !slices.Contains(allScopes, sc) {
			return Key{}, "", &runtime.ValidationError{Entity: "admin key", ID: name, Field: "scopes", Reason: fmt.Sprintf("unknown scope %q", sc)}
		}
	}
	scopes = canonicalScopes(scopes)
	if len(scopes) == 0 {
		return Key{}, "", &runtime.ValidationError{Entity: "admin key", ID: name, Field: "scopes", Reason: "is empty: give at least one scope"}
	}
	id, secret := newSecret()
	k := Key{ID: id, Name: name, Scopes: scopes, Created: s.opt.now().UTC().Truncate(time.Second), Hash: hashSecret(secret)}
	b, err := json.Marshal(k)
	if err != nil {
		return Key{}, "", err
	}
	other, err := createKey.Run(ctx, s.c, []string{s.opt.key("keys")}, id, string(b), name).Text()
	if err != nil {
		return Key{}, "", redisErr("admin keys", err)
	}
	if other != "" {
		return Key{}, "", fmt.Errorf("admin key name %q is used by key %s: %w", name, other, runtime.ErrExists)
	}
	return k, secret, nil
}

// Authenticate implements KeyStore.
func (s *RedisKeyStore) Authenticate(ctx context.Context, secret string) (Key, error) {
	keys, err := s.all(ctx)
	if err != nil {
		return Key{}, err
	}
	k, ok := matchKey(keys, secret)
	if !ok {
		return Key{}, fmt.Errorf("admin key not recognised: %w", runtime.ErrUnauthenticated)
	}
	return k, nil
}

// List implements KeyStore.
func (s *RedisKeyStore) List(ctx context.Context) ([]Key, error) { return s.all(ctx) }

// Revoke implements KeyStore.
func (s *RedisKeyStore) Revoke(ctx context.Context, idOrName string) error {
	keys, err := s.all(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == idOrName || k.Name == idOrName {
			if err := s.c.HDel(ctx, s.opt.key("keys"), k.ID).Err(); err != nil {
				return redisErr("admin keys", err)
			}
			return nil
		}
	}
	return fmt.Errorf("admin key %q: %w", idOrName, runtime.ErrNotFound)
}

// RedisAuditLog keeps audit records in a Redis list, newest first, numbered
// by a counter incremented in the same script, so records from every node
// form one gap-free sequence.
type RedisAuditLog struct {
	c   goredis.UniversalClient
	opt RedisOptions
}

var _ AuditLog = (*RedisAuditLog)(nil)

// NewRedisAuditLog returns the audit log on c.
func NewRedisAuditLog(c goredis.UniversalClient, opt RedisOptions) *RedisAuditLog {
	return &RedisAuditLog{c: c, opt: opt}
}

// appendRecord numbers a record and pushes it: ARGV[1] is the JSON with
// "seq":0 as its first member, replaced by the counter's value.
var appendRecord = goredis.NewScript(`
local seq = redis.call('INCR', KEYS[2])
local rec = '{"seq":' .. seq .. string.sub(ARGV[1], 9)
redis.call('LPUSH', KEYS[1], rec)
return seq
`)

// Append implements AuditLog.
func (l *RedisAuditLog) Append(ctx context.Context, r Record) (Record, error) {
	if r.Time.IsZero() {
		r.Time = l.opt.now()
	}
	r.Time = r.Time.UTC()
	r.Seq = 0
	b, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	if !jsonStartsWithSeq0(b) {
		return Record{}, errors.New("audit log: record encoding does not start with seq")
	}
	seq, err := appendRecord.Run(ctx, l.c, []string{l.opt.key("audit"), l.opt.key("audit:seq")}, string(b)).Int64()
	if err != nil {
		return Record{}, redisErr("audit log", err)
	}
	r.Seq = uint64(seq)
	return r, nil
}

func jsonStartsWithSeq0(b []byte) bool { return len(b) > 8 && string(b[:8]) == `{"seq":0` }

// List implements AuditLog.
func (l *RedisAuditLog) List(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if q.Page < 0 || q.PerPage <= 0 {
		return AuditPage{}, &runtime.ValidationError{Entity: "audit query", Field: "page", Reason: "page must be ≥ 0 and per_page ≥ 1"}
	}
	key := l.opt.key("audit")
	filtered := q.Action != "" || q.KeyName != "" || q.EntityID != ""
	if !filtered {
		start := int64(q.Page) * int64(q.PerPage)
		pipe := l.c.Pipeline()
		total := pipe.LLen(ctx, key)
		rng := pipe.LRange(ctx, key, start, start+int64(q.PerPage)-1)
		if _, err := pipe.Exec(ctx); err != nil {
			return AuditPage{}, redisErr("audit log", err)
		}
		out, err := decodeRecords(rng.Val())
		return AuditPage{Records: out, Total: int(total.Val())}, err
	}
	all, err := l.c.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return AuditPage{}, redisErr("audit log", err)
	}
	recs, err := decodeRecords(all)
	if err != nil {
		return AuditPage{}, err
	}
	out := []Record{}
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
	return AuditPage{Records: out, Total: total}, nil
}

func decodeRecords(raw []string) ([]Record, error) {
	out := make([]Record, 0, len(raw))
	for _, s := range raw {
		var r Record
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("audit log: a record in redis is malformed: %v", err)
		}
		out = append(out, r)
	}
	return out, nil
}
