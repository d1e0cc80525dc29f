package exchange

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// countingApps counts the store reads the token endpoint makes.
type countingApps struct {
	st    *memory.Store
	reads atomic.Int64
	rev   atomic.Uint64 // the revision the policy cache would report
}

func (c *countingApps) Application(ctx context.Context, id string) (authz.Application, error) {
	c.reads.Add(1)
	return c.st.Application(ctx, id)
}

// put writes an application and raises the known revision, as an admin
// write through the policy cache's writer does.
func (c *countingApps) put(t testing.TB, ops ...authz.Op) {
	t.Helper()
	rev, err := c.st.Apply(context.Background(), 0, ops...)
	if err != nil {
		t.Fatal(err)
	}
	c.rev.Store(rev)
}

func storeFixture(t testing.TB) (*fixture, *countingApps) {
	t.Helper()
	f := newFixture(t, nil)
	apps := &countingApps{st: memory.New(memory.Options{})}
	t.Cleanup(func() { _ = apps.st.Close() })
	var err error
	f.ex, err = New(f.ex.cfg, Deps{Minter: f.minter, Issuer: testIssuer, Now: f.clock.Now,
		Store: NewStoreClients(StoreDeps{Apps: apps, Revision: apps.rev.Load}, f.ex.deps.ClientsOptions, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return f, apps
}

func oauthApp(t testing.TB, id, secret string, mut func(*authz.OAuthClient)) *authz.PutApplication {
	o := &authz.OAuthClient{AuthMethod: AuthSecretBasic, SecretHash: sha(t, secret),
		GrantTypes: []string{GrantClientCredentials}, Audiences: []string{"https://api.example.com"}}
	if mut != nil {
		mut(o)
	}
	return &authz.PutApplication{Application: authz.Application{ClientID: id, Name: id, OAuth: o}}
}

// TestStoreClients: a client registered in the store authenticates with
// its secret and method, is read from the store once per revision (not per
// request, unknown ids included), a rotation or deletion takes effect at
// the next revision, a configured client of the same id wins, and a store
// that cannot answer is a server condition, not a wrong client.
func TestStoreClients(t *testing.T) {
	f, apps := storeFixture(t)
	ctx := context.Background()
	apps.put(t, oauthApp(t, "svc", "svc-secret-1", nil))
	call := func(cred Credentials) error {
		_, err := f.ex.Token(ctx, f.enr, cred, Request{GrantType: GrantClientCredentials}, Meta{})
		return err
	}
	invalidClient := func(what string, err error) {
		t.Helper()
		if e, ok := AsError(err); !ok || e.Code != CodeInvalidClient {
			t.Fatalf("%s: got %v, want invalid_client", what, err)
		}
	}
	for range 5 {
		if err := call(Credentials{ClientID: "svc", Secret: "svc-secret-1", Basic: true}); err != nil {
			t.Fatal(err)
		}
	}
	if ev := f.enr.event(); ev.Client.ClientID != "svc" || ev.Transaction.Audience != "https://api.example.com" {
		t.Fatalf("event %+v", ev)
	}
	if n := apps.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 5 requests at one revision, want 1", n)
	}
	invalidClient("wrong secret", call(Credentials{ClientID: "svc", Secret: "nope", Basic: true}))
	invalidClient("client_secret_post for a basic client", call(Credentials{ClientID: "svc", Secret: "svc-secret-1"}))
	for range 3 {
		invalidClient("unknown id", call(Credentials{ClientID: "ghost", Secret: "x", Basic: true}))
	}
	if n := apps.reads.Load(); n != 2 {
		t.Fatalf("%d store reads after unknown ids, want 2 (the miss is cached too)", n)
	}
	if _, err := f.ex.Token(ctx, f.enr, Credentials{ClientID: "svc", Secret: "svc-secret-1", Basic: true},
		Request{GrantType: GrantTokenExchange, SubjectToken: "x", SubjectTokenType: TokenTypeIDToken}, Meta{}); func() bool {
		e, ok := AsError(err)
		return !ok || e.Code != CodeUnauthorizedClient
	}() {
		t.Fatalf("grant not registered: %v", err)
	}

	// Rotation: the old secret stops at the next revision.
	apps.put(t, oauthApp(t, "svc", "svc-secret-2", nil))
	invalidClient("rotated-out secret", call(Credentials{ClientID: "svc", Secret: "svc-secret-1", Basic: true}))
	if err := call(Credentials{ClientID: "svc", Secret: "svc-secret-2", Basic: true}); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	// Deletion.
	apps.put(t, &authz.DeleteApplication{ClientID: "svc"})
	invalidClient("deleted client", call(Credentials{ClientID: "svc", Secret: "svc-secret-2", Basic: true}))

	// A configured client wins over a store registration of its id.
	apps.put(t, oauthApp(t, "m2m", "store-secret", nil))
	invalidClient("store secret of a configured id", call(Credentials{ClientID: "m2m", Secret: "store-secret", Basic: true}))
	if err := call(Credentials{ClientID: "m2m", Secret: "m2m-secret", Basic: true}); err != nil {
		t.Fatalf("configured client: %v", err)
	}

	// private_key_jwt from the store.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "s1", Algorithm: "ES256"}}})
	apps.put(t, oauthApp(t, "keyed", "unused", func(o *authz.OAuthClient) {
		o.AuthMethod, o.SecretHash, o.JWKS = AuthPrivateKeyJWT, "", set
	}))
	c := map[string]any{"iss": "keyed", "sub": "keyed", "aud": testIssuer, "exp": f.clock.Now().Add(time.Minute).Unix(), "jti": "one"}
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "s1"))
	b, _ := json.Marshal(c)
	jws, _ := s.Sign(b)
	assertion, _ := jws.CompactSerialize()
	if err := call(Credentials{Assertion: assertion, AssertionType: ClientAssertionType}); err != nil {
		t.Fatalf("private_key_jwt store client: %v", err)
	}
	invalidClient("secret for a private_key_jwt store client", call(Credentials{ClientID: "keyed", Secret: "unused", Basic: true}))

	// An invalid registration (an import can bring one) authenticates nobody.
	apps.put(t, oauthApp(t, "broken", "s", func(o *authz.OAuthClient) { o.GrantTypes = []string{"password"} }))
	invalidClient("invalid registration", call(Credentials{ClientID: "broken", Secret: "s", Basic: true}))
}

// failingApps is a store that cannot answer.
type failingApps struct{}

func (failingApps) Application(context.Context, string) (authz.Application, error) {
	return authz.Application{}, fmt.Errorf("%w: store down", runtime.ErrUnavailable)
}

func TestStoreClientsUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	ex, err := New(f.ex.cfg, Deps{Minter: f.minter, Issuer: testIssuer, Now: f.clock.Now,
		Store: NewStoreClients(StoreDeps{Apps: failingApps{}, Revision: func() uint64 { return 1 }}, f.ex.deps.ClientsOptions, nil)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ex.Token(context.Background(), f.enr, Credentials{ClientID: "svc", Secret: "x", Basic: true}, Request{GrantType: GrantClientCredentials}, Meta{})
	if _, refused := AsError(err); refused || !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("got %v, want a server condition (ErrUnavailable)", err)
	}
	// Configured clients do not need the store.
	if _, err := ex.Token(context.Background(), f.enr, Credentials{ClientID: "m2m", Secret: "m2m-secret", Basic: true}, Request{GrantType: GrantClientCredentials}, Meta{}); err != nil {
		t.Fatal(err)
	}
	if g := ex.GrantTypes(); len(g) != 2 {
		t.Fatalf("discovery grants with store clients: %v", g)
	}
}

// BenchmarkTokenStoreClient: client_credentials of a store client against
// a configured one in the same run: the store lookup is a cache hit (no
// store read), so the two should cost about the same.
func BenchmarkTokenStoreClient(b *testing.B) {
	f, apps := storeFixture(b)
	apps.put(b, oauthApp(b, "svc", "svc-secret-1", nil))
	ctx := context.Background()
	for _, c := range []struct{ name, id, secret string }{{"store", "svc", "svc-secret-1"}, {"config", "m2m", "m2m-secret"}} {
		b.Run(c.name, func(b *testing.B) {
			cred := Credentials{ClientID: c.id, Secret: c.secret, Basic: true}
			req := Request{GrantType: GrantClientCredentials}
			if _, err := f.ex.Token(ctx, f.enr, cred, req, Meta{}); err != nil {
				b.Fatal(err)
			}
			before := apps.reads.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.ex.Token(ctx, f.enr, cred, req, Meta{}); err != nil {
					b.Fatal(err)
				}
			}
			if n := apps.reads.Load() - before; n != 0 {
				b.Fatalf("%d store reads in the loop", n)
			}
		})
	}
}

// TestStoreClientsBounded: a flood of unknown client ids does not grow the
// cache beyond its bound.
func TestStoreClientsBounded(t *testing.T) {
	apps := &countingApps{st: memory.New(memory.Options{})}
	sc := NewStoreClients(StoreDeps{Apps: apps, Revision: apps.rev.Load}, token.ClientsOptions{}, nil)
	for i := range maxStoreClients + 10 {
		if _, err := sc.LookupClient(context.Background(), fmt.Sprint("ghost-", i)); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatal(err)
		}
	}
	sc.mu.RLock()
	n := len(sc.m)
	sc.mu.RUnlock()
	if n > maxStoreClients {
		t.Fatalf("%d cached entries, bound %d", n, maxStoreClients)
	}
}
