package guard_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

const ns = "https://example.com/"

// clock is the injected clock of the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signingKey is an ES256 key with its kid.
type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: k}
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}
}

// sign signs claims with typ (at+jwt unless given).
func (k signingKey) sign(t testing.TB, claims map[string]any, typ string) string {
	t.Helper()
	if typ == "" {
		typ = "at+jwt"
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// issuer is a real OIDC issuer on loopback serving discovery and a JWKS it
// can change, counting JWKS fetches.
type issuer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int32
	// introspect answers RFC 7662 when set.
	introspect func(r *http.Request) map[string]any
	intros     atomic.Int32
}

func newIssuer(t testing.TB, keys ...signingKey) *issuer {
	t.Helper()
	is := &issuer{}
	for _, k := range keys {
		is.keys = append(is.keys, k.jwk())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		is.intros.Add(1)
		if id, sec, ok := r.BasicAuth(); !ok || id != "rs" || sec != "rs-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		ans := map[string]any{"active": false}
		if is.introspect != nil {
			ans = is.introspect(r)
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) setKeys(keys ...signingKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = nil
	for _, k := range keys {
		is.keys = append(is.keys, k.jwk())
	}
}

// claims are valid RFC 9068 access-token claims for the test issuer.
func (is *issuer) claims(c *clock, extra map[string]any) map[string]any {
	now := c.Now()
	m := map[string]any{
		"iss": is.srv.URL, "sub": "auth0|alice", "aud": []string{"https://api.example.com/"},
		"client_id": "portal", "jti": "jti-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"scope": "read:employees openid",
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

type fixture struct {
	clock *clock
	key   signingKey
	is    *issuer
	keys  *guard.RemoteKeys
	auth  *guard.Authenticator
}

type fixtureOpt func(*guard.AuthConfig, *guard.VerifierConfig)

func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), key: newKey(t, "k1")}
	f.is = newIssuer(t, f.key)
	var err error
	f.keys, err = guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: f.is.srv.URL, MinRefetch: time.Minute, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	vc := guard.VerifierConfig{Issuer: f.is.srv.URL, Audiences: []string{"https://api.example.com/"}}
	ac := guard.AuthConfig{Paths: guard.DefaultClaimPaths(ns), OverflowClaim: ns + "authz_overflow", Now: f.clock.Now}
	for _, o := range opts {
		o(&ac, &vc)
	}
	if ac.Verifier == nil {
		if ac.Verifier, err = guard.NewJWTVerifier(vc, f.keys, f.clock.Now); err != nil {
			t.Fatal(err)
		}
	}
	if f.auth, err = guard.NewAuthenticator(ac); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) token(t testing.TB, extra map[string]any) string {
	return f.key.sign(t, f.is.claims(f.clock, extra), "")
}

func (f *fixture) guard(t testing.TB, opts guard.Options) *guard.Guard {
	t.Helper()
	opts.Auth = f.auth
	g, err := guard.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var bg = context.Background()
