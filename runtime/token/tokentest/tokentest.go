// Package tokentest is the conformance suite every backend of the token
// key store and revocation list (runtime/token/file, runtime/token/redis)
// runs, so that they keep one contract.
package tokentest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// KeyStoreFactory makes one fresh, empty store and returns a function
// opening views of it: every view sees the others' writes (the file
// backend: the same directory; Redis: the same server and prefix).
type KeyStoreFactory func(t *testing.T) (open func() token.KeyStore)

// RevocationListFactory makes one fresh, empty list whose clock is now and
// returns a function opening views of it. A view sees what earlier views
// wrote: a shared backend (Redis) at once, a single-node one (file) when
// reopened — open may close the previous view first.
type RevocationListFactory func(t *testing.T, now func() time.Time) (open func() token.RevocationList)

// Clock is a settable clock for the suites (no wall-clock waits).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newKey(t *testing.T, alg token.Algorithm) *token.Key {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	k, err := token.GenerateKey(alg, 0, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func record(t *testing.T, k *token.Key) []byte {
	t.Helper()
	b, err := token.MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KeyStores runs the key store contract.
func KeyStores(t *testing.T, fresh KeyStoreFactory) {
	ctx := context.Background()
	t.Run("EmptyStoreLoadsNothing", func(t *testing.T) {
		keys, err := fresh(t)().LoadKeys(ctx)
		if err != nil || len(keys) != 0 {
			t.Fatalf("%v %v", keys, err)
		}
	})
	t.Run("CreatedKeysLoadWholeAndSorted", func(t *testing.T) {
		open := fresh(t)
		s := open()
		var want [][]byte
		for _, alg := range []token.Algorithm{token.ES256, token.EdDSA, token.ES256} {
			k := newKey(t, alg)
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			want = append(want, record(t, k))
		}
		// Another view (another node, or a restart) loads the same keys.
		keys, err := open().LoadKeys(ctx)
		if err != nil || len(keys) != len(want) {
			t.Fatalf("%d keys, %v", len(keys), err)
		}
		for i := range keys {
			if i > 0 && keys[i-1].ID >= keys[i].ID {
				t.Fatalf("not sorted by kid: %s, %s", keys[i-1].ID, keys[i].ID)
			}
			got := record(t, keys[i])
			found := false
			for _, w := range want {
				found = found || bytes.Equal(got, w)
			}
			if !found {
				t.Fatalf("key %s changed on the way: %s", keys[i].ID, got)
			}
		}
	})
	t.Run("CreateTwiceIsErrExists", func(t *testing.T) {
		open := fresh(t)
		k := newKey(t, token.ES256)
		if err := open().CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := open().CreateKey(ctx, k); !errors.Is(err, runtime.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
	})
	t.Run("ConcurrentCreatesOfOneKidOneWins", func(t *testing.T) {
		open := fresh(t)
		k := newKey(t, token.ES256)
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			s := open()
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.CreateKey(ctx, k) }()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, runtime.ErrExists):
				t.Fatalf("create: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d creates of one kid succeeded, want 1", wins)
		}
	})
	t.Run("DeleteIsIdempotent", func(t *testing.T) {
		open := fresh(t)
		a, b := newKey(t, token.ES256), newKey(t, token.ES256)
		s := open()
		for _, k := range []*token.Key{a, b} {
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := open().DeleteKey(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := s.LoadKeys(ctx)
		if err != nil || len(keys) != 1 || keys[0].ID != b.ID {
			t.Fatalf("after delete: %v %v", keys, err)
		}
		if err := s.DeleteKey(ctx, ""); !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("delete of an empty kid: %v, want ErrInvalid", err)
		}
	})
	t.Run("CanceledContextFails", func(t *testing.T) {
		s := fresh(t)()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.LoadKeys(cctx); err == nil {
			t.Fatal("LoadKeys with a canceled context succeeded")
		}
		if err := s.CreateKey(cctx, newKey(t, token.ES256)); err == nil {
			t.Fatal("CreateKey with a canceled context succeeded")
		}
		if keys, err := s.LoadKeys(ctx); err != nil || len(keys) != 0 {
			t.Fatalf("a canceled create left %v %v", keys, err)
		}
	})
}

// RevocationLists runs the revocation list contract.
func RevocationLists(t *testing.T, fresh RevocationListFactory) {
	ctx := context.Background()
	revoked := func(t *testing.T, l token.RevocationList, jti string) bool {
		t.Helper()
		ok, err := l.IsRevoked(ctx, jti)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	t.Run("RevokeUntilExpiry", func(t *testing.T) {
		clock := NewClock(time.Now())
		l := fresh(t, clock.Now)()
		if err := l.Revoke(ctx, "jti-1", clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !revoked(t, l, "jti-1") || revoked(t, l, "jti-2") {
			t.Fatal("revoked / unknown answered wrong")
		}
		// Twice is harmless.
		if err := l.Revoke(ctx, "jti-1", clock.Now().Add(time.Hour)); err != nil || !revoked(t, l, "jti-1") {
			t.Fatalf("second revoke: %v", err)
		}
		clock.Advance(time.Hour + time.Second)
		if revoked(t, l, "jti-1") {
			t.Fatal("still revoked after the token expired")
		}
	})
	t.Run("ExpiredNeedsNoEntry", func(t *testing.T) {
		clock := NewClock(time.Now())
		l := fresh(t, clock.Now)()
		if err := l.Revoke(ctx, "old", clock.Now().Add(-time.Minute)); err != nil || revoked(t, l, "old") {
			t.Fatalf("revoke of an expired token: %v", err)
		}
	})
	t.Run("EmptyJTIIsErrInvalid", func(t *testing.T) {
		clock := NewClock(time.Now())
		if err := fresh(t, clock.Now)().Revoke(ctx, "", clock.Now().Add(time.Minute)); !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("empty jti: %v, want ErrInvalid", err)
		}
	})
	t.Run("LaterViewSeesRevocations", func(t *testing.T) {
		clock := NewClock(time.Now())
		open := fresh(t, clock.Now)
		l := open()
		for i := range 20 {
			if err := l.Revoke(ctx, fmt.Sprintf("jti-%d", i), clock.Now().Add(time.Duration(i+1)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(10*time.Minute + time.Second)
		l2 := open()
		for i := range 20 {
			if got, want := revoked(t, l2, fmt.Sprintf("jti-%d", i)), i >= 10; got != want {
				t.Fatalf("jti-%d revoked = %v, want %v", i, got, want)
			}
		}
	})
	t.Run("ConcurrentRevokesAllKept", func(t *testing.T) {
		clock := NewClock(time.Now())
		l := fresh(t, clock.Now)()
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = l.Revoke(ctx, fmt.Sprintf("c-%d", i), clock.Now().Add(time.Hour)) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			if !revoked(t, l, fmt.Sprintf("c-%d", i)) {
				t.Fatalf("c-%d lost", i)
			}
		}
	})
}
