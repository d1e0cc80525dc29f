package guard_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

func TestVerifyTable(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	other := newKey(t, "k1") // same kid, other key: signature fails
	hs := func() string {
		// alg HS256 with the public key as secret: the classic confusion.
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"at+jwt"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`))
		return h + "." + p + ".c2ln"
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`))
		return h + "." + p + "."
	}
	cases := []struct {
		name string
		tok  func() string
		ok   bool
		why  string
	}{
		{"valid", func() string { return f.token(t, nil) }, true, ""},
		{"typ JWT refused (strict RFC 9068)", func() string { return f.key.sign(t, f.is.claims(f.clock, nil), "JWT") }, false, "at+jwt"},
		{"typ application/at+jwt", func() string { return f.key.sign(t, f.is.claims(f.clock, nil), "application/at+jwt") }, true, ""},
		{"wrong issuer", func() string { return f.token(t, map[string]any{"iss": "https://evil.example"}) }, false, "iss"},
		{"wrong audience", func() string { return f.token(t, map[string]any{"aud": "https://other/"}) }, false, "aud"},
		{"audience as string", func() string { return f.token(t, map[string]any{"aud": "https://api.example.com/"}) }, true, ""},
		{"expired beyond leeway", func() string { return f.token(t, map[string]any{"exp": now.Add(-31 * time.Second).Unix()}) }, false, "expired"},
		{"expired within leeway", func() string { return f.token(t, map[string]any{"exp": now.Add(-29 * time.Second).Unix()}) }, true, ""},
		{"nbf in the future", func() string { return f.token(t, map[string]any{"nbf": now.Add(time.Minute).Unix()}) }, false, "not valid before"},
		{"nbf within leeway", func() string { return f.token(t, map[string]any{"nbf": now.Add(20 * time.Second).Unix()}) }, true, ""},
		{"iat in the future", func() string { return f.token(t, map[string]any{"iat": now.Add(time.Hour).Unix()}) }, false, "future"},
		{"no exp", func() string { return f.token(t, map[string]any{"exp": nil}) }, false, "exp"},
		{"no sub", func() string { return f.token(t, map[string]any{"sub": nil}) }, false, "sub"},
		{"no jti", func() string { return f.token(t, map[string]any{"jti": nil}) }, false, "RFC 9068"},
		{"no client_id", func() string { return f.token(t, map[string]any{"client_id": nil}) }, false, "RFC 9068"},
		{"bad signature", func() string { return other.sign(t, f.is.claims(f.clock, nil), "") }, false, "signature"},
		{"HS256", hs, false, ""},
		{"alg none", none, false, ""},
		{"garbage", func() string { return "a.b.c" }, false, ""},
		{"two parts", func() string { return "a.b" }, false, "compact"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.auth.Authenticate(bg, c.tok())
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *guard.AuthError
			if !errors.As(err, &ae) || ae.Code != guard.CodeInvalidToken || !errors.Is(err, runtime.ErrUnauthenticated) {
				t.Fatalf("want an invalid_token *AuthError, got %v", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Fatalf("error %q does not say %q", err, c.why)
			}
		})
	}
}

func TestVerifyLenientForOtherIssuers(t *testing.T) {
	f := newFixture(t, func(_ *guard.AuthConfig, vc *guard.VerifierConfig) { vc.Lenient = true })
	tok := f.key.sign(t, f.is.claims(f.clock, map[string]any{"jti": nil, "client_id": nil, "azp": "kc-client"}), "JWT")
	p, err := f.auth.Authenticate(bg, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientID != "kc-client" {
		t.Fatalf("client id from azp: %q", p.ClientID)
	}
}

func TestJWKSRefetchOnUnknownKidRateLimited(t *testing.T) {
	f := newFixture(t)
	if _, err := f.auth.Authenticate(bg, f.token(t, nil)); err != nil {
		t.Fatal(err)
	}
	if n := f.is.fetches.Load(); n != 1 {
		t.Fatalf("first token: %d fetches", n)
	}
	// Rotation: the issuer publishes k2 and signs with it; the unknown kid
	// causes one refetch (the last fetch was MinRefetch ago).
	k2 := newKey(t, "k2")
	f.is.setKeys(f.key, k2)
	f.clock.Advance(time.Minute)
	if _, err := f.auth.Authenticate(bg, k2.sign(t, f.is.claims(f.clock, map[string]any{"jti": "j2"}), "")); err != nil {
		t.Fatal(err)
	}
	if n := f.is.fetches.Load(); n != 2 {
		t.Fatalf("after rotation: %d fetches, want 2", n)
	}
	// A flood of made-up kids within MinRefetch costs no fetch.
	for i := range 20 {
		bogus := newKey(t, "bogus")
		_, err := f.auth.Authenticate(bg, bogus.sign(t, f.is.claims(f.clock, map[string]any{"jti": string(rune('a' + i))}), ""))
		if !errors.Is(err, guard.ErrUnknownKey) {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if n := f.is.fetches.Load(); n != 2 {
		t.Fatalf("bogus kids: %d fetches, want still 2", n)
	}
	// After MinRefetch one more fetch is allowed.
	f.clock.Advance(time.Minute)
	_, _ = f.auth.Authenticate(bg, newKey(t, "bogus2").sign(t, f.is.claims(f.clock, map[string]any{"jti": "zz"}), ""))
	if n := f.is.fetches.Load(); n != 3 {
		t.Fatalf("after the interval: %d fetches, want 3", n)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	f := newFixture(t)
	f.is.srv.Close()
	_, err := f.auth.Authenticate(bg, f.token(t, nil))
	if !errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("issuer down: want ErrUnavailable (503), got %v", err)
	}
}

func TestPrincipalCacheBoundsRevocation(t *testing.T) {
	revoked := revocations{}
	f := newFixture(t, func(ac *guard.AuthConfig, _ *guard.VerifierConfig) {
		ac.Revocations = revoked
		ac.CacheTTL = 10 * time.Second
	})
	tok := f.token(t, nil)
	if _, err := f.auth.Authenticate(bg, tok); err != nil {
		t.Fatal(err)
	}
	revoked["jti-1"] = true
	if _, err := f.auth.Authenticate(bg, tok); err != nil {
		t.Fatalf("within the cache bound the cached principal serves: %v", err)
	}
	f.clock.Advance(10 * time.Second)
	if _, err := f.auth.Authenticate(bg, tok); !errors.Is(err, guard.ErrInvalidToken) {
		t.Fatalf("after the cache bound a revoked token is refused: %v", err)
	}
}

type revocations map[string]bool

func (r revocations) IsRevoked(_ context.Context, jti string) (bool, error) { return r[jti], nil }

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	var err error
	intro, err := guard.NewIntrospector(guard.IntrospectionConfig{URL: f.is.srv.URL + "/introspect", ClientID: "rs", ClientSecret: "rs-secret", Params: map[string]string{"live": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	full := []any{"employee:read", "employee:read-sensitive"}
	sub := "auth0|alice"
	f.is.introspect = func(r *http.Request) map[string]any {
		if r.PostForm.Get("live") != "true" || r.PostForm.Get("token") == "opaque-token" {
			return map[string]any{"active": false}
		}
		return map[string]any{"active": true, "sub": sub, "iss": f.is.srv.URL, "aud": "https://api.example.com/",
			"exp": f.clock.Now().Add(time.Hour).Unix(), ns + "permissions": full}
	}
	t.Run("overflow token is introspected for the full set", func(t *testing.T) {
		a := authWith(t, f, intro, false)
		tok := f.token(t, map[string]any{ns + "authz_overflow": true, ns + "permissions": nil})
		p, err := a.Authenticate(bg, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Introspected || !p.HasAllPermissions("employee:read", "employee:read-sensitive") {
			t.Fatalf("principal %+v", p)
		}
		before := f.is.intros.Load()
		if _, err := a.Authenticate(bg, tok); err != nil || f.is.intros.Load() != before {
			t.Fatalf("second call should come from the cache (%v, %d calls)", err, f.is.intros.Load()-before)
		}
	})
	t.Run("introspection answering for another subject is refused", func(t *testing.T) {
		sub = "auth0|mallory"
		defer func() { sub = "auth0|alice" }()
		a := authWith(t, f, intro, false)
		_, err := a.Authenticate(bg, f.token(t, map[string]any{ns + "authz_overflow": true, "jti": "other"}))
		if !errors.Is(err, guard.ErrInvalidToken) || !strings.Contains(err.Error(), "mallory") {
			t.Fatalf("sub mismatch: %v", err)
		}
	})
	t.Run("introspect mode, inactive token", func(t *testing.T) {
		a := authWith(t, f, intro, true)
		if _, err := a.Authenticate(bg, "opaque-token"); !errors.Is(err, guard.ErrInvalidToken) {
			t.Fatalf("inactive: %v", err)
		}
	})
	t.Run("introspect mode, active token", func(t *testing.T) {
		a := authWith(t, f, intro, true)
		p, err := a.Authenticate(bg, f.token(t, map[string]any{"jti": "x3"}))
		if err != nil || !p.HasPermission("employee:read") {
			t.Fatalf("%v %+v", err, p)
		}
	})
}

func authWith(t *testing.T, f *fixture, in *guard.Introspector, always bool) *guard.Authenticator {
	t.Helper()
	v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: f.is.srv.URL, Audiences: []string{"https://api.example.com/"}}, f.keys, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := guard.NewAuthenticator(guard.AuthConfig{Verifier: v, Introspector: in, Introspect: always,
		Paths: guard.DefaultClaimPaths(ns), OverflowClaim: ns + "authz_overflow", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConfigErrors(t *testing.T) {
	keys := guard.StaticKeys{}
	for _, c := range []struct {
		name string
		cfg  guard.VerifierConfig
	}{
		{"no issuer", guard.VerifierConfig{Audiences: []string{"a"}}},
		{"no audience", guard.VerifierConfig{Issuer: "https://i"}},
		{"HS256", guard.VerifierConfig{Issuer: "https://i", Audiences: []string{"a"}, Algorithms: []string{"HS256"}}},
		{"none", guard.VerifierConfig{Issuer: "https://i", Audiences: []string{"a"}, Algorithms: []string{"none"}}},
		{"leeway", guard.VerifierConfig{Issuer: "https://i", Audiences: []string{"a"}, Leeway: time.Hour}},
	} {
		if _, err := guard.NewJWTVerifier(c.cfg, keys, nil); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", c.name, err)
		}
	}
	if _, err := guard.NewIntrospector(guard.IntrospectionConfig{URL: "ftp://x", ClientID: "a"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("introspection url: %v", err)
	}
	if _, err := guard.NewAuthenticator(guard.AuthConfig{}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("no verification: %v", err)
	}
}

// TestDiscoveryChecks: a discovery document naming another issuer is
// refused (OIDC Discovery §4.3), and encryption keys are not used to verify.
func TestDiscoveryChecks(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	var srvURL string
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"https://impostor.example","jwks_uri":"` + srvURL + `/jwks"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	keys, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Key(bg, "k1"); !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "impostor") {
		t.Fatalf("issuer mismatch: %v", err)
	}
	enc := f.key.jwk()
	enc.Use = "enc"
	f.is.mu.Lock()
	f.is.keys = []jose.JSONWebKey{enc}
	f.is.mu.Unlock()
	if _, err := f.keys.Key(bg, "k1"); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("only an enc key: %v", err)
	}
}
