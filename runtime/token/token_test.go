package token

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// parseIndependently checks a token against the published JWKS with plain
// go-jose, as a relying party would, and returns its header and claims.
func parseIndependently(t *testing.T, keys *KeySet, tok string) (jose.Header, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, jwsAlgorithms)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	found := set.Key(h.KeyID)
	if len(found) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(found))
	}
	if found[0].Algorithm != h.Algorithm || found[0].Use != "sig" || !found[0].IsPublic() {
		t.Fatalf("JWKS entry %+v does not fit header alg %s", found[0], h.Algorithm)
	}
	payload, err := jws.Verify(found[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return h, claims
}

func TestEveryAlgorithmSignsAndVerifies(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			f := newFixture(t, alg)
			id, err := f.minter.MintIDToken(ctx, IDTokenRequest{Subject: "auth0|alice", ClientID: "app1", Nonce: "n-0S6", AuthTime: f.clock.Now().Add(-time.Minute),
				Claims: runtime.Claims{{Name: "https://example.com/roles", Value: []string{"admin", "viewer"}}}})
			if err != nil {
				t.Fatal(err)
			}
			h, c := parseIndependently(t, f.keys, id.Token)
			if h.Algorithm != string(alg) || h.ExtraHeaders[jose.HeaderType] != "JWT" || h.KeyID != id.KeyID {
				t.Fatalf("id token header %+v", h)
			}
			now := float64(f.clock.Now().Unix())
			want := map[string]any{"iss": testIssuer, "sub": "auth0|alice", "aud": "app1", "nonce": "n-0S6",
				"iat": now, "exp": now + 3600, "auth_time": now - 60}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("id token %s = %v, want %v", k, c[k], v)
				}
			}
			if r, _ := c["https://example.com/roles"].([]any); len(r) != 2 || r[0] != "admin" {
				t.Errorf("custom claim: %v", c["https://example.com/roles"])
			}
			v, err := f.verify.Verify(ctx, id.Token, VerifyOptions{Kind: KindIDToken, Audience: "app1"})
			if err != nil {
				t.Fatal(err)
			}
			if v.Claims.Nonce != "n-0S6" || v.Algorithm != alg {
				t.Fatalf("verified %+v", v)
			}

			at, err := f.minter.MintAccessToken(ctx, AccessTokenRequest{Subject: "auth0|alice", ClientID: "app1", Audience: "https://api.example.com",
				Scopes: []string{"openid", "read:docs"}, Claims: runtime.Claims{{Name: "https://example.com/groups", Value: []string{"eng"}}}})
			if err != nil {
				t.Fatal(err)
			}
			h, c = parseIndependently(t, f.keys, at.Token)
			if h.ExtraHeaders[jose.HeaderType] != "at+jwt" {
				t.Fatalf("access token typ %v", h.ExtraHeaders[jose.HeaderType])
			}
			want = map[string]any{"iss": testIssuer, "sub": "auth0|alice", "aud": "https://api.example.com", "client_id": "app1",
				"iat": now, "nbf": now, "exp": now + 1800, "jti": at.JTI, "scope": "openid read:docs"}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("access token %s = %v, want %v", k, c[k], v)
				}
			}
			if len(at.JTI) < 20 {
				t.Errorf("jti %q too short", at.JTI)
			}
			if _, err := f.verify.Verify(ctx, at.Token, VerifyOptions{Kind: KindAccessToken, Audience: "https://api.example.com"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestKeysReloadedOnRestart: a second key set over the same store (a
// restart, another node) loads the key instead of generating one. File
// modes and damaged files are runtime/token/file's tests.
func TestKeysReloadedOnRestart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ES256)
	active, err := f.keys.Active()
	if err != nil {
		t.Fatal(err)
	}
	tok := f.access(t, AccessTokenRequest{})
	ks2, err := NewKeySet(f.store, f.keys.Config(), f.clock.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks2.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ks2.Infos(); len(got) != 1 || got[0].ID != active.ID {
		t.Fatalf("restart generated another key: %+v", got)
	}
	v2, _ := NewVerifier(ks2, testIssuer, 0, f.clock.Now)
	if _, err := v2.Verify(ctx, tok, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRotationSequence(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, RS256) // propagation 1h, retention 2h, access tokens 30m
	old, _ := f.keys.Active()
	oldTok := f.access(t, AccessTokenRequest{})

	f.clock.Advance(10 * time.Minute)
	next, err := f.keys.Rotate(ctx, ES256)
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[string]KeyState {
		m := map[string]KeyState{}
		for _, in := range f.keys.Infos() {
			m[in.ID] = in.State
		}
		return m
	}
	published := func(kid string) bool { set := f.keys.JWKS(); return len(set.Key(kid)) == 1 }

	// 1. Published as next before it signs.
	if s := states(); s[next.ID] != StateNext || s[old.ID] != StateActive {
		t.Fatalf("after rotate: %v", s)
	}
	if !published(next.ID) || !published(old.ID) {
		t.Fatal("next key not published with the active one")
	}
	if a, _ := f.keys.Active(); a.ID != old.ID {
		t.Fatal("next key signs before its propagation delay")
	}
	if age := f.keys.CacheMaxAge(); age > 30*time.Minute || age <= 0 {
		t.Fatalf("JWKS max-age %s does not let caches refresh before activation", age)
	}
	// A token claiming the next key cannot verify: it signed nothing yet.
	if _, err := f.verify.Verify(ctx, forgeWith(t, next, f.access(t, AccessTokenRequest{})), VerifyOptions{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token signed by a next key: %v", err)
	}

	// A node whose clock runs ahead (within the leeway) may sign with it already.
	f.clock.Advance(time.Hour - 3*time.Second)
	early := forgeWith(t, next, f.access(t, AccessTokenRequest{}))
	if _, err := f.verify.Verify(ctx, early, VerifyOptions{}); err != nil {
		t.Fatalf("token of the next key 3s before activation (leeway 5s): %v", err)
	}
	f.clock.Advance(-time.Hour + 3*time.Second)

	// 2. After the delay the new key signs; the old one is retired and still verifies.
	f.clock.Advance(time.Hour)
	if s := states(); s[next.ID] != StateActive || s[old.ID] != StateRetired {
		t.Fatalf("after delay: %v", s)
	}
	newTok := f.access(t, AccessTokenRequest{})
	if h, _ := parseIndependently(t, f.keys, newTok); h.KeyID != next.ID || h.Algorithm != "ES256" {
		t.Fatalf("new token header %+v", h)
	}
	if !published(old.ID) {
		t.Fatal("retired key left the JWKS while its tokens may be valid")
	}
	// The old token expired at +30m; mint one signed just before the switch
	// to show a retired key verifies its tokens until they expire.
	f.clock.Advance(-time.Second)
	lastOld := f.access(t, AccessTokenRequest{})
	f.clock.Advance(time.Second + 29*time.Minute)
	if _, err := f.verify.Verify(ctx, lastOld, VerifyOptions{}); err != nil {
		t.Fatalf("token of the retired key before its expiry: %v", err)
	}
	if _, err := f.verify.Verify(ctx, oldTok, VerifyOptions{}); !errors.Is(err, ErrExpired) {
		t.Fatalf("old token: %v", err)
	}

	// 3. After the retention the old key is dropped: gone from the JWKS, its
	// tokens fail, Prune deletes the file.
	f.clock.Advance(2 * time.Hour)
	if s := states(); s[old.ID] != StateDropped || s[next.ID] != StateActive {
		t.Fatalf("after retention: %v", s)
	}
	if published(old.ID) {
		t.Fatal("dropped key still published")
	}
	if _, err := f.verify.Verify(ctx, lastOld, VerifyOptions{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a dropped key: %v", err)
	}
	dropped, err := f.keys.Prune(ctx)
	if err != nil || len(dropped) != 1 || dropped[0] != old.ID {
		t.Fatalf("prune: %v %v", dropped, err)
	}
	if f.store.has(old.ID) {
		t.Fatal("dropped key still stored")
	}
	if len(f.keys.Infos()) != 1 {
		t.Fatalf("keys after prune: %+v", f.keys.Infos())
	}
}

// forgeWith re-signs tok's payload and header fields with key k.
func forgeWith(t *testing.T, k *Key, tok string) string {
	t.Helper()
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	s, err := sign(k, TypeAccessToken, payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClaimSizes(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{1 << 10, 8 << 10} {
		f := newFixture(t, RS256)
		var perms []string
		n := 0
		for i := 0; n < size; i++ {
			p := "read:document-collection-" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
			perms = append(perms, p)
			n += len(p) + 3
		}
		claims := runtime.Claims{{Name: "https://example.com/permissions", Value: perms}}
		tok := f.access(t, AccessTokenRequest{Claims: claims})
		v, err := f.verify.Verify(ctx, tok, VerifyOptions{})
		if err != nil {
			t.Fatalf("%d B claims: %v", size, err)
		}
		if len(v.Payload) < size {
			t.Fatalf("payload %d B < %d", len(v.Payload), size)
		}
		_, c := parseIndependently(t, f.keys, tok)
		if got := c["https://example.com/permissions"].([]any); len(got) != len(perms) || got[len(got)-1] != perms[len(perms)-1] {
			t.Fatalf("%d B claims: %d permissions back, want %d", size, len(got), len(perms))
		}
		id, err := f.minter.MintIDToken(ctx, IDTokenRequest{Subject: "u", ClientID: "c", Claims: claims})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.verify.Verify(ctx, id.Token, VerifyOptions{Kind: KindIDToken}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReservedClaimsRefused(t *testing.T) {
	f := newFixture(t, EdDSA)
	for _, name := range []string{"sub", "exp", "active", "scope", "client_id", ""} {
		_, err := f.minter.MintAccessToken(context.Background(), AccessTokenRequest{Subject: "u", ClientID: "c",
			Claims: runtime.Claims{{Name: name, Value: "x"}}})
		if !errors.Is(err, runtime.ErrInvalid) || (name != "" && !strings.Contains(err.Error(), `"`+name+`"`)) {
			t.Errorf("claim %q: %v", name, err)
		}
	}
	_, err := f.minter.MintAccessToken(context.Background(), AccessTokenRequest{Subject: "u", ClientID: "c", Scopes: []string{"bad scope"}})
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("scope with a space: %v", err)
	}
}

func TestAttacksRejected(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			f := newFixture(t, alg)
			f.clock.Advance(5 * time.Minute) // so the clock can go back below without predating the key
			key, _ := f.keys.Active()
			good := f.access(t, AccessTokenRequest{})
			parts := strings.Split(good, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

			pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
			hsSign := func(secret []byte) string {
				s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
					(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", key.ID))
				if err != nil {
					t.Fatal(err)
				}
				jws, _ := s.Sign(payload)
				out, _ := jws.CompactSerialize()
				return out
			}
			stranger, _ := GenerateKey(alg, 0, f.clock.Now(), f.clock.Now())
			// The same private key used with another algorithm of its family.
			var confused string
			if alg == RS256 || alg == PS256 {
				other := map[Algorithm]Algorithm{RS256: PS256, PS256: RS256}[alg]
				s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(other), Key: jose.JSONWebKey{Key: key.private, KeyID: key.ID}},
					(&jose.SignerOptions{}).WithType("at+jwt"))
				jws, _ := s.Sign(payload)
				confused, _ = jws.CompactSerialize()
			}
			id, _ := f.minter.MintIDToken(ctx, IDTokenRequest{Subject: "auth0|alice", ClientID: "app1"})
			tampered := parts[0] + "." + b64(strings.Replace(string(payload), "auth0|alice", "auth0|admin", 1)) + "." + parts[2]
			typJWT, _ := sign(key, TypeIDToken, payload)
			typIntro, _ := sign(key, TypeIntrospection, payload)

			cases := []struct {
				name string
				tok  string
				opt  VerifyOptions
				want error
			}{
				{"alg none", b64(`{"alg":"none","kid":"`+key.ID+`","typ":"at+jwt"}`) + "." + parts[1] + ".", VerifyOptions{}, ErrAlgorithm},
				{"HS256 with the public key PEM", hsSign(pubPEM), VerifyOptions{}, ErrAlgorithm},
				{"HS256 with the public key DER", hsSign(pubDER), VerifyOptions{}, ErrAlgorithm},
				{"unknown kid", forgeWith(t, stranger, good), VerifyOptions{}, ErrUnknownKey},
				{"no kid", b64(`{"alg":"`+string(alg)+`","typ":"at+jwt"}`) + "." + parts[1] + "." + parts[2], VerifyOptions{}, ErrUnknownKey},
				{"kid of ours, signed by another key", strings.Join([]string{parts[0], parts[1], strings.Split(forgeWith(t, stranger, good), ".")[2]}, "."), VerifyOptions{}, ErrSignature},
				{"tampered payload", tampered, VerifyOptions{}, ErrSignature},
				{"wrong audience", good, VerifyOptions{Audience: "https://other.example.com"}, ErrAudience},
				{"ID token used as access token", id.Token, VerifyOptions{Kind: KindAccessToken}, ErrType},
				{"typ JWT on an access token", typJWT, VerifyOptions{Kind: KindAccessToken}, ErrType},
				{"introspection response as access token", typIntro, VerifyOptions{Kind: KindAccessToken}, ErrType},
				{"access token used as ID token", good, VerifyOptions{Kind: KindIDToken}, ErrType},
				{"garbage", "not.a.jwt", VerifyOptions{}, ErrMalformed},
				{"JSON serialization", `{"payload":"e30","signatures":[]}`, VerifyOptions{}, ErrMalformed},
				{"too large", strings.Repeat("a", MaxTokenBytes+1), VerifyOptions{}, ErrMalformed},
			}
			if confused != "" {
				cases = append(cases, struct {
					name string
					tok  string
					opt  VerifyOptions
					want error
				}{"alg of another family member", confused, VerifyOptions{}, ErrAlgorithm})
			}
			for _, c := range cases {
				_, err := f.verify.Verify(ctx, c.tok, c.opt)
				if !errors.Is(err, c.want) || !errors.Is(err, runtime.ErrUnauthenticated) {
					t.Errorf("%s: got %v, want %v", c.name, err, c.want)
				}
			}

			// Wrong issuer: the same keys, another issuer.
			other, _ := NewVerifier(f.keys, "https://evil.example.com", 0, f.clock.Now)
			if _, err := other.Verify(ctx, good, VerifyOptions{}); !errors.Is(err, ErrIssuer) {
				t.Errorf("wrong iss: %v", err)
			}
			// nbf (and iat) in the future beyond the leeway.
			f.clock.Advance(-time.Minute)
			if _, err := f.verify.Verify(ctx, good, VerifyOptions{}); !errors.Is(err, ErrNotYetValid) {
				t.Errorf("nbf in the future: %v", err)
			}
			// Within the leeway both ends are fine.
			f.clock.Advance(time.Minute - 3*time.Second)
			if _, err := f.verify.Verify(ctx, good, VerifyOptions{}); err != nil {
				t.Errorf("nbf within leeway: %v", err)
			}
			f.clock.Advance(3*time.Second + 30*time.Minute + 4*time.Second)
			if _, err := f.verify.Verify(ctx, good, VerifyOptions{}); err != nil {
				t.Errorf("exp within leeway: %v", err)
			}
			f.clock.Advance(time.Second)
			if _, err := f.verify.Verify(ctx, good, VerifyOptions{}); !errors.Is(err, ErrExpired) {
				t.Errorf("expired: %v", err)
			}
		})
	}
}

func TestMintLogin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ES256)
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "auth0|alice"},
		Client:      runtime.Client{ClientID: "app1"},
		Transaction: runtime.Transaction{RequestedScopes: []string{"openid", "profile", "email"}, Audience: "https://api.example.com", Nonce: "abc"}}
	res := &runtime.Result{Decision: runtime.Decision{Allowed: true},
		IDTokenClaims:     runtime.Claims{{Name: "https://example.com/groups", Value: []string{"eng"}}},
		AccessTokenClaims: runtime.Claims{{Name: "https://example.com/permissions", Value: []string{"read:docs"}}},
		ScopesAdded:       []string{"read:docs", "openid"}, ScopesRemoved: []string{"email"}}
	toks, err := f.minter.MintLogin(ctx, ev, res)
	if err != nil {
		t.Fatal(err)
	}
	if toks.Scope != "openid profile read:docs" {
		t.Fatalf("scope %q", toks.Scope)
	}
	_, idc := parseIndependently(t, f.keys, toks.IDToken.Token)
	_, atc := parseIndependently(t, f.keys, toks.AccessToken.Token)
	if idc["nonce"] != "abc" || idc["https://example.com/groups"] == nil || idc["https://example.com/permissions"] != nil {
		t.Fatalf("id token claims %v", idc)
	}
	if atc["scope"] != "openid profile read:docs" || atc["https://example.com/permissions"] == nil || atc["https://example.com/groups"] != nil {
		t.Fatalf("access token claims %v", atc)
	}
	// Machine to machine: no ID token, sub is the client.
	ev.Trigger = runtime.TriggerCredentialsExchange
	toks, err = f.minter.MintLogin(ctx, ev, res)
	if err != nil || toks.IDToken != nil {
		t.Fatalf("m2m: %+v %v", toks, err)
	}
	if _, c := parseIndependently(t, f.keys, toks.AccessToken.Token); c["sub"] != "app1" {
		t.Fatalf("m2m sub %v", c["sub"])
	}
	res.Decision = runtime.Decision{Allowed: false, Rule: "required-roles", Reason: "no role"}
	if _, err := f.minter.MintLogin(ctx, ev, res); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "required-roles") {
		t.Fatalf("denied: %v", err)
	}
}

func TestLifetimesPerClient(t *testing.T) {
	f := newFixture(t, EdDSA)
	m, err := NewMinter(f.keys, MinterConfig{Issuer: testIssuer, Clients: map[string]Lifetimes{"short": {AccessToken: 5 * time.Minute}}}, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.MintAccessToken(context.Background(), AccessTokenRequest{Subject: "u", ClientID: "short"})
	b, _ := m.MintAccessToken(context.Background(), AccessTokenRequest{Subject: "u", ClientID: "other"})
	if a.ExpiresAt.Sub(a.IssuedAt) != 5*time.Minute || b.ExpiresAt.Sub(b.IssuedAt) != time.Hour {
		t.Fatalf("lifetimes %s %s", a.ExpiresAt.Sub(a.IssuedAt), b.ExpiresAt.Sub(b.IssuedAt))
	}
	// A lifetime longer than the key retention could outlive its key.
	if _, err := NewMinter(f.keys, MinterConfig{Issuer: testIssuer, Clients: map[string]Lifetimes{"long": {IDToken: 3 * time.Hour}}}, f.clock.Now); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("lifetime beyond retention: %v", err)
	}
	if _, err := NewMinter(f.keys, MinterConfig{Issuer: "auth.example.com"}, f.clock.Now); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad issuer: %v", err)
	}
}

// A rotation made by another process (`claimsmith keys rotate`) reaches a
// running server through Maintain's reload, and Maintain prunes dropped keys.
func TestMaintainPicksUpRotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t, EdDSA)
	cli, err := NewKeySet(f.store, f.keys.Config(), f.clock.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.keys.Maintain(ctx, 5*time.Millisecond); close(done) }()
	next, err := cli.Rotate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("the server to publish the rotated key", func() bool { set := f.keys.JWKS(); return len(set.Key(next.ID)) == 1 })
	old := f.keys.Infos()[0].ID
	f.clock.Advance(time.Hour + 2*time.Hour + time.Second) // activation, then the old key's retention
	waitFor("the dropped key to be pruned", func() bool {
		return !f.store.has(old)
	})
	cancel()
	<-done
}
