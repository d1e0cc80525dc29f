package token

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
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
	store  *memKeyStore
	keys   *KeySet
	minter *Minter
	verify *Verifier
}

func newFixture(t testing.TB, alg Algorithm) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: newClock()}
	var err error
	f.store = newMemKeyStore()
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

// memKeyStore is an in-memory KeyStore for this package's tests, which
// cannot import the backends (they import this package). The backends
// themselves run runtime/token/tokentest's suite.
type memKeyStore struct {
	mu   sync.Mutex
	recs map[string][]byte
}

func newMemKeyStore() *memKeyStore { return &memKeyStore{recs: map[string][]byte{}} }

func (s *memKeyStore) LoadKeys(ctx context.Context) ([]*Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []*Key
	for _, b := range s.recs {
		k, err := UnmarshalKey(b)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *Key) int { return strings.Compare(a.ID, b.ID) })
	return keys, nil
}

func (s *memKeyStore) CreateKey(ctx context.Context, k *Key) error {
	b, err := MarshalKey(k)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[k.ID]; ok {
		return fmt.Errorf("%w: key %s", runtime.ErrExists, k.ID)
	}
	s.recs[k.ID] = b
	return nil
}

func (s *memKeyStore) DeleteKey(ctx context.Context, kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, kid)
	return nil
}

// has reports whether kid is stored.
func (s *memKeyStore) has(kid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recs[kid]
	return ok
}

// memRevocations is an in-memory RevocationList for this package's tests.
type memRevocations struct {
	mu  sync.Mutex
	now func() time.Time
	exp map[string]time.Time
}

func newMemRevocations(now func() time.Time) *memRevocations {
	return &memRevocations{now: now, exp: map[string]time.Time{}}
}

func (l *memRevocations) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: empty jti", runtime.ErrInvalid)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exp[jti] = until
	return nil
}

func (l *memRevocations) IsRevoked(ctx context.Context, jti string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.exp[jti]
	return ok && e.After(l.now()), nil
}
