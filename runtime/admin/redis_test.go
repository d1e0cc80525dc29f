package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func redisClient(t *testing.T) goredis.UniversalClient {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisKeyStore(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	node1 := NewRedisKeyStore(c, RedisOptions{})
	node2 := NewRedisKeyStore(c, RedisOptions{}) // another claimsmith node
	k, secret, err := node1.Create(ctx, "deploy", []string{ScopeWrite, ScopeRead, ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := c.HGet(ctx, "claimsmith:{admin}:keys", k.ID).Result(); stored == "" || strings.Contains(stored, secret) {
		t.Fatalf("stored %q", stored)
	}
	got, err := node2.Authenticate(ctx, secret)
	if err != nil || got.Name != "deploy" || len(got.Scopes) != 2 {
		t.Fatalf("other node: %+v %v", got, err)
	}
	if _, _, err := node2.Create(ctx, "deploy", []string{ScopeRead}); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := node2.Create(ctx, "", []string{ScopeRead}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if _, _, err := node2.Create(ctx, "x", []string{"root"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad scope: %v", err)
	}
	if _, err := node2.Authenticate(ctx, secret+"x"); !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := node2.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := node1.Authenticate(ctx, secret); !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("revoked on node 2, still valid on node 1: %v", err)
	}
	if err := node1.Revoke(ctx, "deploy"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	// Concurrent creates of one name: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := NewRedisKeyStore(c, RedisOptions{}).Create(ctx, "race", []string{ScopeRead})
			wins <- err == nil
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d creates of one name succeeded", n)
	}
	// Redis down: unavailable, not unauthenticated.
	dead := NewRedisKeyStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}), RedisOptions{})
	if _, err := dead.Authenticate(ctx, secret); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("redis down: %v", err)
	}
}

func TestRedisAuditLog(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := NewRedisAuditLog(c, RedisOptions{Now: func() time.Time { return clock }})
	if p, err := l.List(ctx, AuditQuery{PerPage: 5}); err != nil || p.Total != 0 || len(p.Records) != 0 {
		t.Fatalf("empty: %+v %v", p, err)
	}
	for i := range 7 {
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		r, err := l.Append(ctx, Record{KeyName: who, Action: fmt.Sprint("a", i), EntityID: "g", Before: []byte(`{"x":1}`)})
		if err != nil || r.Seq != uint64(i+1) || !r.Time.Equal(clock) {
			t.Fatalf("append %d: %+v %v", i, r, err)
		}
	}
	p, err := l.List(ctx, AuditQuery{PerPage: 3})
	if err != nil || p.Total != 7 || len(p.Records) != 3 || p.Records[0].Seq != 7 || string(p.Records[0].Before) != `{"x":1}` {
		t.Fatalf("page 0: %+v %v", p, err)
	}
	p, _ = l.List(ctx, AuditQuery{Page: 2, PerPage: 3})
	if len(p.Records) != 1 || p.Records[0].Seq != 1 {
		t.Fatalf("page 2: %+v", p)
	}
	p, _ = l.List(ctx, AuditQuery{Page: 1, PerPage: 2, KeyName: "bob"})
	if p.Total != 3 || len(p.Records) != 1 || p.Records[0].Seq != 2 {
		t.Fatalf("filtered: %+v", p)
	}
	// Several nodes appending at once keep one gap-free sequence.
	var wg sync.WaitGroup
	for w := range 4 {
		node := NewRedisAuditLog(c, RedisOptions{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := node.Append(ctx, Record{KeyName: fmt.Sprint(w), Action: fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	p, _ = l.List(ctx, AuditQuery{PerPage: 1000})
	if p.Total != 107 {
		t.Fatalf("total %d", p.Total)
	}
	for i, r := range p.Records {
		if r.Seq != uint64(107-i) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
}
