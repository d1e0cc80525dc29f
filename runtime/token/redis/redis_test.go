package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/redistest"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenredis "github.com/claimsmith/claimsmith/runtime/token/redis"
	"github.com/claimsmith/claimsmith/runtime/token/tokentest"
)

func client(t testing.TB, addr string) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKeysSharedBetweenNodes: a key created through one node's store is
// loaded by another's; a kid cannot be created twice; delete is idempotent.
func TestKeysSharedBetweenNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a := tokenredis.NewKeyStore(client(t, srv.Addr()), "")
	b := tokenredis.NewKeyStore(client(t, srv.Addr()), "")
	now := time.Now()
	k, err := token.GenerateKey(token.ES256, 0, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateKey(ctx, k); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	keys, err := b.LoadKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Algorithm != token.ES256 {
		t.Fatalf("node B keys: %v %v", keys, err)
	}
	if err := b.DeleteKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteKey(ctx, k.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if keys, _ := a.LoadKeys(ctx); len(keys) != 0 {
		t.Fatalf("keys after delete: %v", keys)
	}
	// A corrupt record is an error naming it, not a silently missing key.
	if _, err := srv.Do("HSET", "claimsmith:{keys}:signing", "bogus", "{}"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LoadKeys(ctx); err == nil || !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("corrupt record: %v, want ErrInvalid", err)
	}
}

func TestRevocationsSharedAndExpire(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	clock := tokentest.NewClock(time.Now())
	a := tokenredis.NewRevocationList(client(t, srv.Addr()), tokenredis.RevocationOptions{Now: clock.Now})
	b := tokenredis.NewRevocationList(client(t, srv.Addr()), tokenredis.RevocationOptions{Now: clock.Now})
	if err := a.Revoke(ctx, "jti-1", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, "jti-old", clock.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.IsRevoked(ctx, "jti-1"); err != nil || !ok {
		t.Fatalf("node B: revoked = %v, %v; want true", ok, err)
	}
	if ok, _ := b.IsRevoked(ctx, "jti-2"); ok {
		t.Fatal("unknown jti reported revoked")
	}
	if n, _ := srv.Do("EXISTS", "claimsmith:revoked:jti-old"); n != "0" {
		t.Fatal("an already expired token got an entry")
	}
	if ttl, _ := srv.Do("TTL", "claimsmith:revoked:jti-1"); ttl == "-1" || ttl == "-2" {
		t.Fatalf("entry has no expiry in Redis (TTL %v): the list would grow forever", ttl)
	}
	clock.Advance(time.Hour + time.Second)
	if ok, _ := b.IsRevoked(ctx, "jti-1"); ok {
		t.Fatal("entry outlived the token's expiry")
	}
	if err := a.Revoke(ctx, "", time.Now().Add(time.Hour)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("empty jti: %v", err)
	}
	srv.Kill()
	if _, err := b.IsRevoked(ctx, "jti-1"); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Redis down: err = %v, want ErrUnavailable (fail closed)", err)
	}
}

// TestKeyRotatedOnOneNodeVerifiesOnAnother: two key sets (two nodes) on one
// Redis; a key rotated in on node A is published and usable on node B after
// B reloads (its Maintain loop does that periodically).
func TestKeyRotatedOnOneNodeVerifiesOnAnother(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := token.KeySetConfig{Algorithm: token.ES256, PropagationDelay: time.Minute, Retention: time.Hour}
	a, err := token.NewKeySet(tokenredis.NewKeyStore(client(t, srv.Addr()), ""), cfg, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := token.NewKeySet(tokenredis.NewKeyStore(client(t, srv.Addr()), ""), cfg, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ka, err := a.Active()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Active()
	if err != nil || kb.ID != ka.ID {
		t.Fatalf("node B active key %v (%v), node A %s: Init must share the first key", kb, err, ka.ID)
	}
	next, err := a.Rotate(ctx, token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	published := false
	for _, k := range b.Published() {
		published = published || k.ID == next.ID
	}
	if !published {
		t.Fatalf("key %s rotated on node A is not published by node B", next.ID)
	}
	// The old key still verifies on B.
	if _, _, ok := b.VerificationKey(ka.ID); !ok {
		t.Fatalf("key %s no longer verifies on node B after the rotation", ka.ID)
	}
}

// TestConformance runs the token stores' shared suite on a real Redis;
// each fresh store gets its own key prefix.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := client(t, srv.Addr())
	n := 0
	prefix := func() string { n++; return fmt.Sprintf("conf%d:", n) }
	t.Run("KeyStore", func(t *testing.T) {
		tokentest.KeyStores(t, func(t *testing.T) func() token.KeyStore {
			p := prefix()
			// Every view has its own client, as another node would.
			return func() token.KeyStore { return tokenredis.NewKeyStore(client(t, srv.Addr()), p) }
		})
	})
	t.Run("RevocationList", func(t *testing.T) {
		tokentest.RevocationLists(t, func(t *testing.T, now func() time.Time) func() token.RevocationList {
			p := prefix()
			return func() token.RevocationList {
				return tokenredis.NewRevocationList(c, tokenredis.RevocationOptions{Prefix: p, Now: now})
			}
		})
	})
}

// TestKeysLostAreNotRegenerated (issue 14 item 8): when the store's Redis
// comes back without its data, the key set does not generate a new
// signing key silently: Init fails with ErrKeysLost, the key that signed
// keeps signing from memory, DataLoss reports it for readiness, and a
// restore (or an operator's rotation) clears it. On the old code Init
// generated a fresh key, which relying parties had never seen.
func TestKeysLostAreNotRegenerated(t *testing.T) {
	for _, fault := range []string{"flushall", "restart-empty"} {
		t.Run(fault, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AppendOnly: true})
			ctx := context.Background()
			store := tokenredis.NewKeyStore(client(t, srv.Addr()), "")
			ks, err := token.NewKeySet(store, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if err := ks.Init(ctx); err != nil {
				t.Fatal(err)
			}
			first, err := ks.Active()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := srv.Do("HGET", "claimsmith:{keys}:signing", first.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch fault {
			case "flushall":
				if _, err := srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			case "restart-empty":
				srv.RestartEmpty()
			}
			deadline := time.Now().Add(20 * time.Second)
			for err = ks.Init(ctx); !errors.Is(err, tokenredis.ErrKeysLost); err = ks.Init(ctx) {
				if time.Now().After(deadline) {
					t.Fatalf("Init after the loss: %v, want ErrKeysLost", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !errors.Is(err, runtime.ErrUnavailable) || !errors.Is(store.DataLoss(), tokenredis.ErrKeysLost) {
				t.Fatalf("Init = %v, DataLoss = %v; want both ErrKeysLost (ErrUnavailable)", err, store.DataLoss())
			}
			if n, err := srv.Do("HLEN", "claimsmith:{keys}:signing"); err != nil || n != "0" {
				t.Fatalf("keys in Redis after Init on the empty store: %q, %v; want none generated", n, err)
			}
			if k, err := ks.Active(); err != nil || k.ID != first.ID {
				t.Fatalf("active key after the loss: %v, %v; want %s kept from memory", k, err, first.ID)
			}
			// The operator restores the key: the loss clears.
			if _, err := srv.Do("HSET", "claimsmith:{keys}:signing", first.ID, rec); err != nil {
				t.Fatal(err)
			}
			if err := ks.Init(ctx); err != nil || store.DataLoss() != nil {
				t.Fatalf("after the restore: Init = %v, DataLoss = %v", err, store.DataLoss())
			}
		})
	}
}

// TestRevocationsLostFailClosed (issue 14 item 8): when the Redis comes back
// without the revocations (FLUSHALL, restarted empty), a token revoked
// before never reads "not revoked": checks of tokens issued before the loss
// fail with ErrRevocationsLost (ErrUnavailable) on every node — also a node
// started after the loss, and after a server opened the emptied Redis —
// until every such token has expired; tokens issued after the loss are
// answered from the new entries; a restore ends the loss at once. On the
// old code the revoked token read "not revoked" after the loss.
func TestRevocationsLostFailClosed(t *testing.T) {
	const horizon, skew = time.Hour, 10 * time.Second
	for _, fault := range []string{"flushall", "restart-empty", "restore"} {
		t.Run(fault, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AppendOnly: true})
			ctx := context.Background()
			clock := tokentest.NewClock(time.Now())
			list := func() *tokenredis.RevocationList {
				return tokenredis.NewRevocationList(client(t, srv.Addr()), tokenredis.RevocationOptions{Now: clock.Now, Horizon: horizon, Skew: skew})
			}
			a := list()
			if err := a.Initialise(ctx); err != nil {
				t.Fatal(err)
			}
			issued := clock.Now().Add(-time.Minute)
			if err := a.Revoke(ctx, "jti-1", issued.Add(horizon)); err != nil {
				t.Fatal(err)
			}
			if ok, err := a.IsRevokedIssued(ctx, "jti-1", issued); err != nil || !ok {
				t.Fatalf("before the loss: revoked = %v, %v", ok, err)
			}
			marker, err := srv.Do("GET", "claimsmith:revocations:marker")
			if err != nil {
				t.Fatal(err)
			}
			switch fault {
			case "restart-empty":
				srv.RestartEmpty()
			default:
				if _, err := srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
				// A server opening the emptied Redis does not make it good.
				if err := list().Initialise(ctx); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				ok, err := a.IsRevokedIssued(ctx, "jti-1", issued)
				if ok || (err == nil) {
					t.Fatalf("FAIL OPEN: after the loss: revoked = %v, %v", ok, err)
				}
				if errors.Is(err, tokenredis.ErrRevocationsLost) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the loss: %v, want ErrRevocationsLost", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			b := list() // a node started after the loss
			if err := b.Initialise(ctx); err != nil {
				t.Fatal(err)
			}
			for name, n := range map[string]*tokenredis.RevocationList{"a": a, "b": b} {
				if _, err := n.IsRevoked(ctx, "jti-1"); !errors.Is(err, tokenredis.ErrRevocationsLost) || !errors.Is(err, runtime.ErrUnavailable) {
					t.Fatalf("node %s, issue time unknown: %v, want ErrRevocationsLost (ErrUnavailable)", name, err)
				}
				if err := n.DataLoss(ctx); !errors.Is(err, tokenredis.ErrRevocationsLost) {
					t.Fatalf("node %s DataLoss = %v", name, err)
				}
			}
			if fault == "restore" {
				if _, err := srv.Do("SET", "claimsmith:revocations:marker", marker); err != nil {
					t.Fatal(err)
				}
				if _, err := srv.Do("SET", "claimsmith:revoked:jti-1", strconv.FormatInt(issued.Add(horizon).Unix(), 10)); err != nil {
					t.Fatal(err)
				}
				if ok, err := a.IsRevokedIssued(ctx, "jti-1", issued); err != nil || !ok || a.DataLoss(ctx) != nil {
					t.Fatalf("after the restore: revoked = %v, %v; DataLoss = %v", ok, err, a.DataLoss(ctx))
				}
				return
			}
			// Tokens issued after the loss are answered from the new entries.
			clock.Advance(skew + time.Second)
			later := clock.Now()
			if err := b.Revoke(ctx, "jti-2", later.Add(horizon)); err != nil {
				t.Fatal(err)
			}
			if ok, err := a.IsRevokedIssued(ctx, "jti-2", later); err != nil || !ok {
				t.Fatalf("token issued after the loss, revoked: %v, %v", ok, err)
			}
			if ok, err := a.IsRevokedIssued(ctx, "jti-3", later); err != nil || ok {
				t.Fatalf("token issued after the loss, not revoked: %v, %v", ok, err)
			}
			// Once every token issued before the loss has expired, the loss
			// is over (their exp rejects them anyway).
			clock.Advance(horizon)
			if _, err := b.IsRevokedIssued(ctx, "jti-1", issued); err != nil || a.DataLoss(ctx) != nil {
				t.Fatalf("after the horizon: %v, DataLoss = %v", err, a.DataLoss(ctx))
			}
		})
	}
}

// TestCreateKeySafeToRetry: the reply to a key's creation comes too late,
// go-redis retries the command Redis already executed; the rotation must
// still succeed (a plain HSETNX answered 0 to the retry: the new key was
// reported as taken and the rotation failed), and a second creation of
// the kid must still be refused.
func TestCreateKeySafeToRetry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	p := redistest.StartDelayProxy(t, srv.Addr())
	c := p.Client(t)
	s := tokenredis.NewKeyStore(c, "")
	now := time.Now()
	gen := func() *token.Key {
		k, err := token.GenerateKey(token.ES256, 0, now, now)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// Load the script first, so the delayed reply is the script's.
	if err := s.CreateKey(ctx, gen()); err != nil {
		t.Fatal(err)
	}
	k := gen()
	p.DelayNext.Store(true)
	err := s.CreateKey(ctx, k)
	if p.DelayNext.Load() {
		t.Fatal("no reply was delayed")
	}
	if err != nil {
		t.Fatalf("create with a late first reply: %v (go-redis retried the executed command)", err)
	}
	if err := s.CreateKey(ctx, k); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("a second create of the kid: %v, want ErrExists", err)
	}
	keys, err := s.LoadKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v, %v; want 2", keys, err)
	}
}
