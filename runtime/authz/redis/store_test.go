package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func newClient(t testing.TB, addrs ...string) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the shared suite; every store gets its own hash tag
// on one server, which also shows tags isolate stores.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, srv.Addr())
	n := 0
	authztest.Run(t, func(t *testing.T) authz.Store {
		n++
		s, err := redis.New(context.Background(), c, redis.Options{Tag: "conf" + string(rune('a'+n%26)) + time.Now().Format("150405.000000")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
