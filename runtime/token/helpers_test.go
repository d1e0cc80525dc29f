package token

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testIssuer = "https://auth.example.com"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fixture is a key set on a real file store with minter and verifier.
type fixture struct {
	clock  *fakeClock
	store  *FileKeyStore
	keys   *KeySet
	minter *Minter
	verify *Verifier
}

func newFixture(t testing.TB, alg Algorithm) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: newClock()}
	var err error
	if f.store, err = NewFileKeyStore(t.TempDir() + "/keys"); err != nil {
		t.Fatal(err)
	}
	if f.keys, err = NewKeySet(f.store, KeySetConfig{Algorithm: alg, PropagationDelay: time.Hour, Retention: 2 * time.Hour}, f.clock.Now, discard()); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if f.minter, err = NewMinter(f.keys, MinterConfig{Issuer: testIssuer, Default: Lifetimes{IDToken: time.Hour, AccessToken: 30 * time.Minute}}, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	if f.verify, err = NewVerifier(f.keys, testIssuer, 5*time.Second, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) access(t testing.TB, r AccessTokenRequest) string {
	t.Helper()
	if r.Subject == "" {
		r.Subject = "auth0|alice"
	}
	if r.ClientID == "" {
		r.ClientID = "app1"
	}
	if r.Audience == "" {
		r.Audience = "https://api.example.com"
	}
	m, err := f.minter.MintAccessToken(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}
