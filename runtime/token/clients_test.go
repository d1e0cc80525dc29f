package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// countingHasher stands in for PBKDF2: deterministic and cheap, counting
// derivations and iterations so the tests assert work, not wall-clock time.
type countingHasher struct {
	mu          sync.Mutex
	derivations int
	iterations  int
	// gate, when set, holds every derivation until it is closed, and
	// entered reports each one starting.
	gate                chan struct{}
	entered             chan struct{}
	running, maxRunning int
}

func (h *countingHasher) hash(secret string, salt []byte, iter, keyLen int) ([]byte, error) {
	h.mu.Lock()
	h.derivations++
	h.iterations += iter
	h.running++
	h.maxRunning = max(h.maxRunning, h.running)
	gate, entered := h.gate, h.entered
	h.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	h.mu.Lock()
	h.running--
	h.mu.Unlock()
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%x|%d", secret, salt, iter)))
	return sum[:keyLen], nil
}

func (h *countingHasher) take() (derivations, iterations int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, i := h.derivations, h.iterations
	h.derivations, h.iterations = 0, 0
	return d, i
}

// pbkdf2Hash is the configuration form of secret under the counting hasher.
func (h *countingHasher) pbkdf2Hash(secret string, iter int) string {
	salt := []byte("salt-" + secret)
	dk, _ := (&countingHasher{}).hash(secret, salt, iter, 32)
	return fmt.Sprintf("pbkdf2-sha256:%d:%s:%s", iter, base64.RawURLEncoding.EncodeToString(salt), base64.RawURLEncoding.EncodeToString(dk))
}

func testClients(t *testing.T, h *countingHasher, clock *fakeClock, opts ClientsOptions) *Clients {
	t.Helper()
	fast, _ := HashSecret("fast-secret", false)
	opts.Hasher, opts.Now = h.hash, clock.Now
	c, err := NewClientsWith([]ClientConfig{
		{ClientID: "slow1", SecretHash: h.pbkdf2Hash("one", 20_000)},
		{ClientID: "slow2", SecretHash: h.pbkdf2Hash("two", 10_000)},
		{ClientID: "fast", SecretHash: fast},
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientAuthEqualCostForUnknownIDs: a failed attempt costs the same
// derivation work (the largest configured iteration count) for an unknown
// id, a wrong secret of either PBKDF2 client, a SHA-256 client and an
// empty secret. Before, an unknown id cost no derivation at all (0.4 ms vs
// 98 ms): a client-id oracle.
func TestClientAuthEqualCostForUnknownIDs(t *testing.T) {
	ctx := context.Background()
	h := &countingHasher{}
	c := testClients(t, h, newClock(), ClientsOptions{BackoffAfter: 100})
	for _, try := range [][2]string{{"nobody", "x"}, {"slow1", "wrong"}, {"slow2", "wrong"}, {"fast", "wrong"}, {"slow2", ""}, {"", ""}} {
		if _, err := c.Authenticate(ctx, try[0], try[1]); !errors.Is(err, ErrBadClient) {
			t.Fatalf("%v: %v", try, err)
		}
		if _, iter := h.take(); iter != 20_000 {
			t.Errorf("failed attempt %v cost %d iterations, want 20000", try, iter)
		}
	}
	// The right secrets pass, a PBKDF2 one at its own cost.
	if got, err := c.Authenticate(ctx, "slow2", "two"); err != nil || got.ClientID != "slow2" {
		t.Fatalf("%+v %v", got, err)
	}
	if d, iter := h.take(); d != 1 || iter != 10_000 {
		t.Errorf("success cost %d derivations, %d iterations", d, iter)
	}
	if _, err := c.Authenticate(ctx, "fast", "fast-secret"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.take(); d != 0 {
		t.Errorf("SHA-256 client derived %d times", d)
	}
}

// TestClientAuthCachesVerifiedSecrets: a verified PBKDF2 secret costs no
// derivation again until the cache entry expires (injected clock).
func TestClientAuthCachesVerifiedSecrets(t *testing.T) {
	ctx := context.Background()
	h, clock := &countingHasher{}, newClock()
	c := testClients(t, h, clock, ClientsOptions{CacheTTL: time.Minute})
	for range 50 {
		if _, err := c.Authenticate(ctx, "slow1", "one"); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := h.take(); d != 1 {
		t.Fatalf("50 authentications derived %d times, want 1", d)
	}
	clock.Advance(time.Minute)
	if _, err := c.Authenticate(ctx, "slow1", "one"); err != nil {
		t.Fatal(err)
	}
	if d, _ := h.take(); d != 1 {
		t.Fatalf("after the TTL: %d derivations, want 1", d)
	}
	// The cache holds the verified secret only: another one is checked in full.
	if _, err := c.Authenticate(ctx, "slow1", "one!"); !errors.Is(err, ErrBadClient) {
		t.Fatal(err)
	}
	if d, _ := h.take(); d == 0 {
		t.Fatal("a different secret was answered from the cache")
	}
}

// TestClientAuthBoundsConcurrentDerivations: at most MaxConcurrent
// derivations run at once and at most MaxWaiting requests wait; the rest
// get ErrBusy (503) without hashing. Before, every unauthenticated request
// ran its own derivation: ≈20 requests/s saturated both cores.
func TestClientAuthBoundsConcurrentDerivations(t *testing.T) {
	ctx := context.Background()
	h := &countingHasher{gate: make(chan struct{}), entered: make(chan struct{}, 64)}
	c := testClients(t, h, newClock(), ClientsOptions{MaxConcurrent: 2, MaxWaiting: 3})
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.Authenticate(ctx, fmt.Sprintf("unknown-%d", i), "x")
			errs <- err
		}()
	}
	// Two derivations start, three requests wait, five are turned away.
	<-h.entered
	<-h.entered
	busy := 0
	for busy < n-2-3 {
		err := <-errs
		if !errors.Is(err, ErrBusy) || !errors.Is(err, runtime.ErrUnavailable) {
			t.Fatalf("turned away with %v, want ErrBusy", err)
		}
		busy++
	}
	if w := c.waiting.Load(); w != 3 {
		t.Fatalf("%d waiting, want 3", w)
	}
	close(h.gate)
	for range 5 {
		if err := <-errs; !errors.Is(err, ErrBadClient) {
			t.Fatalf("admitted request: %v", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.maxRunning != 2 || h.derivations != 5 {
		t.Fatalf("max %d derivations at once (want 2), %d in all (want 5)", h.maxRunning, h.derivations)
	}
}

// TestClientAuthBacksOffRepeatedFailures: after BackoffAfter failures an
// id (known or not) fails at once without hashing, for a doubling time
// (injected clock); a secret still cached as verified keeps working, so an
// attacker cannot lock the real client out, and does not end the back-off.
func TestClientAuthBacksOffRepeatedFailures(t *testing.T) {
	ctx := context.Background()
	h, clock := &countingHasher{}, newClock()
	c := testClients(t, h, clock, ClientsOptions{BackoffAfter: 3, BackoffBase: time.Second, BackoffMax: 4 * time.Second, CacheTTL: time.Hour})
	if _, err := c.Authenticate(ctx, "slow1", "one"); err != nil { // the real client, cached
		t.Fatal(err)
	}
	h.take()
	for _, id := range []string{"slow1", "ghost"} {
		fail := func(wantDerive bool) {
			t.Helper()
			if _, err := c.Authenticate(ctx, id, "guess"); !errors.Is(err, ErrBadClient) {
				t.Fatalf("%s: %v", id, err)
			}
			if d, _ := h.take(); (d > 0) != wantDerive {
				t.Fatalf("%s: %d derivations, want derivation %v", id, d, wantDerive)
			}
		}
		for range 3 {
			fail(true)
		}
		fail(false) // backed off for 1s
		if id == "slow1" {
			if _, err := c.Authenticate(ctx, "slow1", "one"); err != nil {
				t.Fatalf("real client locked out: %v", err)
			}
			fail(false) // the cached success did not end the back-off
		}
		clock.Advance(time.Second)
		fail(true)  // one more try, then 2s
		fail(false) //
		clock.Advance(time.Second)
		fail(false)
		clock.Advance(time.Second)
		fail(true) // then 4s (the cap)
		clock.Advance(4*time.Second - time.Nanosecond)
		fail(false)
		clock.Advance(time.Nanosecond)
		fail(true)
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	ctx := context.Background()
	h := &countingHasher{}
	c, err := NewClientsWith([]ClientConfig{{ClientID: "slow", SecretHash: h.pbkdf2Hash("s3cret", 10_000)}}, ClientsOptions{Hasher: h.hash})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, "slow", "s3cret"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Authenticate(ctx, "slow", "s3cret"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateFailure measures a failed attempt with the real
// PBKDF2 (600,000 iterations): an unknown id must cost what a wrong
// secret costs. Run with a small -benchtime (each op is a derivation).
func BenchmarkAuthenticateFailure(b *testing.B) {
	ctx := context.Background()
	slow, err := HashSecret("s3cret", true)
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range []string{"slow", "unknown"} {
		b.Run(id, func(b *testing.B) {
			c, err := NewClientsWith([]ClientConfig{{ClientID: "slow", SecretHash: slow}}, ClientsOptions{BackoffAfter: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Authenticate(ctx, id, "wrong"); !errors.Is(err, ErrBadClient) {
					b.Fatal(err)
				}
			}
		})
	}
}
