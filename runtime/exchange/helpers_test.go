package exchange

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
	"github.com/claimsmith/claimsmith/runtime/token/file"
	"github.com/claimsmith/claimsmith/runtime/token/tokentest"
)

// upstreamOP is a minimal OpenID Provider on loopback: discovery, a JWKS
// whose keys can be rotated, and ID tokens signed with its current key.
type upstreamOP struct {
	srv *httptest.Server
	mu  sync.Mutex
	key *ecdsa.PrivateKey
	kid string
	n   int
	// fetches counts JWKS requests.
	fetches int
}

func newUpstream(t testing.TB) *upstreamOP {
	t.Helper()
	op := &upstreamOP{}
	op.rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.srv.URL, "jwks_uri": op.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		op.fetches++
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: op.key.Public(), KeyID: op.kid, Algorithm: "ES256", Use: "sig"}}}
		op.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// rotate replaces the signing key; the old one leaves the JWKS.
func (op *upstreamOP) rotate(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	old := op.key
	op.n++
	op.key, op.kid = k, "k"+string(rune('0'+op.n))
	return old
}

func (op *upstreamOP) issuer() string { return op.srv.URL }

// sign signs claims with key (nil: the current key) and header typ.
func (op *upstreamOP) signWith(t testing.TB, key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
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

func (op *upstreamOP) idToken(t testing.TB, now time.Time, extra map[string]any) string {
	op.mu.Lock()
	key, kid := op.key, op.kid
	op.mu.Unlock()
	return op.signWith(t, key, kid, "JWT", op.claims(now, extra))
}

func (op *upstreamOP) claims(now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{"iss": op.srv.URL, "sub": "alice", "aud": "app-at-upstream", "iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "auth_time": now.Add(-time.Minute).Unix(),
		"email": "alice@example.com", "email_verified": true, "name": "Alice", "groups": []string{"eng", "ops"}}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// enricher is the pipeline stand-in of these unit tests (the setup and e2e
// tests run the real one): it records the event and answers res.
type enricher struct {
	mu   sync.Mutex
	last *runtime.Event
	res  runtime.Result
}

func (e *enricher) Run(_ context.Context, ev *runtime.Event) (*runtime.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = ev
	r := e.res
	if !r.Decision.Allowed && r.Decision.Reason == "" {
		r.Decision.Allowed = true
	}
	return &r, nil
}

func (e *enricher) event() *runtime.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// fixture is an Exchanger for an upstream OP with claimsmith's own minter.
type fixture struct {
	op     *upstreamOP
	clock  *tokentest.Clock
	keys   *token.KeySet
	minter *token.Minter
	ex     *Exchanger
	enr    *enricher
}

const (
	testIssuer = "https://claimsmith.example.com"
	appSecret  = "app-secret-of-32-bytes-at-least!"
)

func sha(t testing.TB, s string) string {
	h, err := token.HashSecret(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newFixture(t testing.TB, mutate func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{op: newUpstream(t), enr: &enricher{}}
	f.clock = tokentest.NewClock(time.Now().Truncate(time.Second))
	ks, err := file.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if f.keys, err = token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256}, f.clock.Now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if f.minter, err = token.NewMinter(f.keys, token.MinterConfig{Issuer: testIssuer}, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Enabled: true,
		Issuers: []IssuerConfig{{Issuer: f.op.issuer(), Audiences: []string{"app-at-upstream"}, Connection: "upstream"}},
		Clients: []ClientConfig{
			{ClientID: "app", SecretHash: sha(t, appSecret), Audiences: []string{"https://api.example.com", "https://other.example.com"}},
			{ClientID: "m2m", SecretHash: sha(t, "m2m-secret"), GrantTypes: []string{GrantClientCredentials}, Scopes: []string{"read", "write"}},
		}}
	if mutate != nil {
		mutate(&cfg)
	}
	if f.ex, err = New(cfg, Deps{Minter: f.minter, Issuer: testIssuer, Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) exchange(t testing.TB, subject string, mut func(*Request)) (Response, error) {
	t.Helper()
	req := Request{GrantType: GrantTokenExchange, SubjectToken: subject, SubjectTokenType: TokenTypeIDToken}
	if mut != nil {
		mut(&req)
	}
	return f.ex.Token(context.Background(), f.enr, Credentials{ClientID: "app", Secret: appSecret}, req, Meta{IP: "127.0.0.1"})
}

// verifyOwn verifies a token claimsmith minted, with its own keys.
func (f *fixture) verifyOwn(t testing.TB, tok string, kind token.Kind) map[string]any {
	t.Helper()
	v, err := token.NewVerifier(f.keys, testIssuer, time.Minute, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	vt, err := v.Verify(context.Background(), tok, token.VerifyOptions{Kind: kind})
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(vt.Payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type noMinter struct{}

func (noMinter) MintIDToken(context.Context, token.IDTokenRequest) (token.Minted, error) {
	return token.Minted{}, errors.New("not minting")
}
func (noMinter) MintAccessToken(context.Context, token.AccessTokenRequest) (token.Minted, error) {
	return token.Minted{}, errors.New("not minting")
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
