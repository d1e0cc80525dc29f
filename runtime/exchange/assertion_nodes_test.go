package exchange

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/redistest"
	replayredis "github.com/claimsmith/claimsmith/runtime/replay/redis"
)

// TestAssertionReplayAcrossNodes: with a shared replay store (the store's
// Redis), a private_key_jwt assertion accepted by one node is refused by
// another (it was accepted once per node while jtis lived in the process),
// and a replay store that cannot answer fails closed as a server condition,
// not as a client error.
func TestAssertionReplayAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	t.Cleanup(func() { _ = rc.Close() })
	rs := replayredis.New(rc, "test:")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "c1", Algorithm: "ES256"}}})
	var cfg Config
	f := newFixture(t, func(c *Config) {
		c.Clients = append(c.Clients, ClientConfig{ClientID: "keyed", JWKS: string(set), GrantTypes: []string{GrantClientCredentials}})
		cfg = *c
	})
	node := func() *Exchanger {
		ex, err := New(cfg, Deps{Minter: f.minter, Issuer: testIssuer, Now: f.clock.Now, Replay: rs})
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	a, b := node(), node()
	now := f.clock.Now()
	assertion := func(jti string) string {
		c := map[string]any{"iss": "keyed", "sub": "keyed", "aud": testIssuer + "/oauth2/token", "exp": now.Add(time.Minute).Unix(), "jti": jti}
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "c1"))
		p, _ := json.Marshal(c)
		jws, _ := s.Sign(p)
		out, _ := jws.CompactSerialize()
		return out
	}
	call := func(ex *Exchanger, asr string) error {
		_, err := ex.Token(context.Background(), f.enr, Credentials{Assertion: asr, AssertionType: ClientAssertionType}, Request{GrantType: GrantClientCredentials}, Meta{})
		return err
	}
	one := assertion("once")
	if err := call(a, one); err != nil {
		t.Fatalf("node A: %v", err)
	}
	for name, ex := range map[string]*Exchanger{"node A": a, "node B": b} {
		if e, ok := AsError(call(ex, one)); !ok || e.Code != CodeInvalidClient {
			t.Errorf("%s accepted a used assertion: %v", name, e)
		}
	}
	if err := call(b, assertion("other")); err != nil {
		t.Fatalf("node B, a fresh assertion: %v", err)
	}
	srv.Kill()
	err := call(a, assertion("while-down"))
	if _, ok := AsError(err); ok || !(errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, runtime.ErrTimeout)) {
		t.Fatalf("replay store down: got %v, want an unavailable server condition", err)
	}
}
