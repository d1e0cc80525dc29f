package exchange

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestPrivateKeyJWT: a client with registered keys authenticates with a
// signed assertion; every wrong assertion is invalid_client, a replayed jti
// too, and a key-only client cannot use a secret.
func TestPrivateKeyJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "c1", Algorithm: "ES256"}}})
	f := newFixture(t, func(c *Config) {
		c.Clients = append(c.Clients, ClientConfig{ClientID: "keyed", JWKS: string(set), GrantTypes: []string{GrantClientCredentials}})
	})
	now := f.clock.Now()
	n := 0
	assert := func(k *ecdsa.PrivateKey, mut func(map[string]any)) string {
		n++
		c := map[string]any{"iss": "keyed", "sub": "keyed", "aud": testIssuer + "/oauth2/token", "exp": now.Add(time.Minute).Unix(), "jti": "j" + string(rune('a'+n))}
		if mut != nil {
			mut(c)
		}
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "c1"))
		b, _ := json.Marshal(c)
		jws, _ := s.Sign(b)
		out, _ := jws.CompactSerialize()
		return out
	}
	call := func(cred Credentials) error {
		_, err := f.ex.Token(context.Background(), f.enr, cred, Request{GrantType: GrantClientCredentials}, Meta{})
		return err
	}
	good := assert(key, nil)
	if err := call(Credentials{Assertion: good, AssertionType: ClientAssertionType}); err != nil {
		t.Fatal(err)
	}
	if ev := f.enr.event(); ev.Client.ClientID != "keyed" {
		t.Fatalf("client %q", ev.Client.ClientID)
	}
	if err := call(Credentials{ClientID: "keyed", Assertion: assert(key, func(c map[string]any) { c["aud"] = testIssuer }), AssertionType: ClientAssertionType}); err != nil {
		t.Fatalf("issuer as aud: %v", err)
	}
	for name, cred := range map[string]Credentials{
		"replayed jti":               {Assertion: good, AssertionType: ClientAssertionType},
		"wrong type":                 {Assertion: assert(key, nil), AssertionType: "urn:x"},
		"other key":                  {Assertion: assert(other, nil), AssertionType: ClientAssertionType},
		"wrong aud":                  {Assertion: assert(key, func(c map[string]any) { c["aud"] = "https://elsewhere" }), AssertionType: ClientAssertionType},
		"iss != sub":                 {Assertion: assert(key, func(c map[string]any) { c["iss"] = "x" }), AssertionType: ClientAssertionType},
		"expired":                    {Assertion: assert(key, func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), AssertionType: ClientAssertionType},
		"too long":                   {Assertion: assert(key, func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), AssertionType: ClientAssertionType},
		"no jti":                     {Assertion: assert(key, func(c map[string]any) { delete(c, "jti") }), AssertionType: ClientAssertionType},
		"not yet":                    {Assertion: assert(key, func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), AssertionType: ClientAssertionType},
		"client_id":                  {ClientID: "app", Assertion: assert(key, nil), AssertionType: ClientAssertionType},
		"keyless client":             {Assertion: assert(key, func(c map[string]any) { c["iss"], c["sub"] = "app", "app" }), AssertionType: ClientAssertionType},
		"garbage":                    {Assertion: "x.y.z", AssertionType: ClientAssertionType},
		"secret for key-only client": {ClientID: "keyed", Secret: "anything"},
	} {
		if e, ok := AsError(call(cred)); !ok || e.Code != CodeInvalidClient {
			t.Errorf("%s: got %v, want invalid_client", name, e)
		}
	}
	bad := Config{Enabled: true, Clients: []ClientConfig{{ClientID: "k", JWKS: `{"keys":[]}`}}}
	if _, err := New(bad, Deps{Minter: noMinter{}}); err == nil {
		t.Fatal("an empty JWKS was accepted")
	}
	bad.Clients[0].JWKS = ""
	if _, err := New(bad, Deps{Minter: noMinter{}}); err == nil {
		t.Fatal("a client without secret or keys was accepted")
	}
}
