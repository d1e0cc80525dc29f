package redistest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func TestServerKillRestartKeepsAOFData(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	if srv.Addr() == "127.0.0.1:6379" {
		t.Fatal("helper must never use the shared default port")
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded against a killed server")
	}
	srv.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart GET k = %q, %v; want v (AOF)", got, err)
	}
}

func TestServerWithoutPersistenceLosesDataOnRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	if _, err := srv.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if got, err := srv.Do("EXISTS", "k"); err != nil || got != "0" {
		t.Fatalf("EXISTS k = %q, %v; want 0", got, err)
	}
}

func TestPauseAndFreezeBlockClients(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Pauses of seconds, and the end awaited by polling: a loaded -race
	// run stalled past a 400 ms pause before its ping.
	srv.Pause(2 * time.Second)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping answered within 100ms during CLIENT PAUSE")
	}
	for deadline := time.Now().Add(30 * time.Second); c.Ping(ctx).Err() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ping answered 30 s after a 2 s pause")
		}
	}

	srv.Freeze()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping answered while frozen")
	}
	srv.Thaw()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after thaw: %v", err)
	}

	srv.Sleep(2 * time.Second)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping answered during DEBUG SLEEP")
	}
}

func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	ctx := context.Background()
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs()})
	defer c.Close()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	// Keys without a common hash tag live in different slots.
	err := c.Eval(ctx, "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"a", "b"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot script: err = %v, want CROSSSLOT", err)
	}
	if err := c.Eval(ctx, "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"{t}a", "{t}b"}).Err(); err != nil {
		t.Fatalf("same-slot script: %v", err)
	}
}

func TestSentinel(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	sen := redistest.StartSentinel(t, master, "mymaster")
	ctx := context.Background()
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{sen.Addr()}, MasterName: sen.MasterName})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := master.Do("GET", "k"); got != "v" {
		t.Fatalf("master GET k = %q, want v written through the sentinel client", got)
	}
}

func TestServerRestartEmptyLosesAOFData(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	if _, err := srv.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.RestartEmpty()
	if got, err := srv.Do("EXISTS", "k"); err != nil || got != "0" {
		t.Fatalf("after RestartEmpty EXISTS k = %q, %v; want 0", got, err)
	}
	srv.Restart()
	if got, err := srv.Do("EXISTS", "k"); err != nil || got != "0" {
		t.Fatalf("after a second restart EXISTS k = %q, %v; want 0 (the old AOF is gone)", got, err)
	}
}
