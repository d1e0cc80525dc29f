package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/redistest"
	"github.com/claimsmith/claimsmith/runtime/replay"
	replayredis "github.com/claimsmith/claimsmith/runtime/replay/redis"
	"github.com/claimsmith/claimsmith/runtime/replay/replaytest"
)

func client(t *testing.T, addr string) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := 0
	replaytest.Stores(t, func(t *testing.T) func() replay.Store {
		n++
		prefix := "t" + string(rune('a'+n)) + ":"
		return func() replay.Store { return replayredis.New(client(t, srv.Addr()), prefix) }
	})
}

// TestExpiryIsTheWindow: an id's key lives until the end of its window (by
// the caller's clock, relative), not forever and not shorter.
func TestExpiryIsTheWindow(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := replayredis.New(client(t, srv.Addr()), "")
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // a skewed caller clock changes nothing
	if ok, err := s.Remember(ctx, "msg_1", now, now.Add(5*time.Minute)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	ttl, err := client(t, srv.Addr()).PTTL(ctx, "claimsmith:replay:msg_1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("TTL %s, want just under 5m", ttl)
	}
	// A window already over needs no key (the timestamp check refuses it).
	if ok, err := s.Remember(ctx, "msg_old", now, now.Add(-time.Second)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if n, _ := client(t, srv.Addr()).Exists(ctx, "claimsmith:replay:msg_old").Result(); n != 0 {
		t.Fatal("a key was written for an expired window")
	}
}

// TestUnavailableFailsClosed: with Redis down or hung, Remember answers an
// error that maps to 503/504, never "fresh".
func TestUnavailableFailsClosed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := replayredis.New(client(t, srv.Addr()), "")
	now := time.Now()
	srv.Freeze()
	ok, err := s.Remember(ctx, "msg_frozen", now, now.Add(time.Minute))
	srv.Thaw()
	if ok || !(errors.Is(err, runtime.ErrTimeout) || errors.Is(err, runtime.ErrUnavailable)) {
		t.Fatalf("frozen Redis: fresh=%v err=%v, want a timeout/unavailable error", ok, err)
	}
	srv.Kill()
	ok, err = s.Remember(ctx, "msg_killed", now, now.Add(time.Minute))
	if ok || !(errors.Is(err, runtime.ErrTimeout) || errors.Is(err, runtime.ErrUnavailable)) {
		t.Fatalf("killed Redis: fresh=%v err=%v, want a timeout/unavailable error", ok, err)
	}
	if err := s.Forget(ctx, "msg_killed"); !errors.Is(err, runtime.ErrUnavailable) && !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("forget on a killed Redis: %v", err)
	}
}

func BenchmarkRemember(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
	defer c.Close()
	s := replayredis.New(c, "")
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if ok, err := s.Remember(ctx, "msg_"+time.Duration(i).String(), now, now.Add(time.Minute)); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// TestRememberSafeToRetry: go-redis retries a command whose reply timed
// out, and the first attempt was executed: the retry must still answer
// fresh. A plain SET NX answered "replay" for a message seen once, refusing
// a legitimate login whenever a reply came late (the soak saw it on a
// loaded machine). A loopback proxy in front of the real Redis delays the
// first reply past the read timeout.
func TestRememberSafeToRetry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	p := redistest.StartDelayProxy(t, srv.Addr())
	c := p.Client(t)
	s := replayredis.New(c, "")
	now := time.Now()
	// Load the script first, so the delayed reply is the script's.
	if ok, err := s.Remember(ctx, "msg_warm", now, now.Add(time.Minute)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	p.DelayNext.Store(true)
	ok, err := s.Remember(ctx, "msg_slow", now, now.Add(time.Minute))
	if p.DelayNext.Load() {
		t.Fatal("no reply was delayed")
	}
	if err != nil || !ok {
		t.Fatalf("a message seen once, its first reply late: fresh=%v err=%v, want fresh (go-redis retried the executed attempt)", ok, err)
	}
	if ok, err := s.Remember(ctx, "msg_slow", now, now.Add(time.Minute)); err != nil || ok {
		t.Fatalf("a real replay: fresh=%v err=%v", ok, err)
	}
}
