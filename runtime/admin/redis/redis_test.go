package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/admin/admintest"
	authzredis "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func redisClient(t *testing.T) goredis.UniversalClient {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestConformance runs the suite on a real redis-server; each view is
// another node with its own client.
func TestConformance(t *testing.T) {
	admintest.Run(t, func(t *testing.T) admintest.Backend {
		srv := redistest.Start(t, redistest.Options{})
		client := func(t *testing.T) goredis.UniversalClient {
			c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		return admintest.Backend{
			Keys: func(t *testing.T) admin.KeyStore { return NewKeyStore(client(t), Options{}) },
			Audit: func(t *testing.T, now func() time.Time) admin.AuditLog {
				return NewAuditLog(client(t), Options{Now: now})
			},
			Store: func(t *testing.T) admin.Store {
				s, err := authzredis.New(context.Background(), client(t), authzredis.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}

// TestKeysStoredHashed: Redis holds the digest, never the secret, under the
// instance's {admin} hash tag.
func TestKeysStoredHashed(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	k, secret, err := NewKeyStore(c, Options{}).Create(ctx, "deploy", []string{admin.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := c.HGet(ctx, "claimsmith:{admin}:keys", k.ID).Result(); stored == "" || strings.Contains(stored, secret) {
		t.Fatalf("stored %q", stored)
	}
}

// TestRedisDown: a key store that cannot reach Redis is unavailable (503),
// not a wrong key (401).
func TestRedisDown(t *testing.T) {
	dead := NewKeyStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}), Options{})
	if _, err := dead.Authenticate(context.Background(), "csk_x_y"); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("redis down: %v", err)
	}
}
