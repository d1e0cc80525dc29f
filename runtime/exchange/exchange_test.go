package exchange

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

func TestExchangeIDToken(t *testing.T) {
	f := newFixture(t, nil)
	f.enr.res = runtime.Result{AccessTokenClaims: runtime.Claims{{Name: "https://example.com/roles", Value: []string{"admin"}}},
		IDTokenClaims: runtime.Claims{{Name: "https://example.com/groups", Value: []string{"eng"}}}, ScopesAdded: []string{"extra"}}
	res, err := f.exchange(t, f.op.idToken(t, f.clock.Now(), nil), func(r *Request) { r.Scope = []string{"openid", "read"} })
	if err != nil {
		t.Fatal(err)
	}
	if res.TokenType != "Bearer" || res.IssuedTokenType != TokenTypeAccessToken || res.ExpiresIn != 3600 || res.Scope != "openid read extra" {
		t.Fatalf("response %+v", res)
	}
	ev := f.enr.event()
	if ev.User.UserID != "alice" || ev.User.Email != "alice@example.com" || !ev.User.EmailVerified || ev.User.Name != "Alice" ||
		!slices.Equal(ev.User.Groups, []string{"eng", "ops"}) || ev.Connection.Name != "upstream" || ev.Client.ClientID != "app" ||
		ev.Trigger != runtime.TriggerPostLogin || ev.Transaction.Audience != "https://api.example.com" || ev.Request.IP != "127.0.0.1" {
		t.Fatalf("event %+v", ev)
	}
	at := f.verifyOwn(t, res.AccessToken, token.KindAccessToken)
	if at["sub"] != "alice" || at["aud"] != "https://api.example.com" || at["client_id"] != "app" || at["scope"] != "openid read extra" {
		t.Fatalf("access token claims %v", at)
	}
	if roles, _ := at["https://example.com/roles"].([]any); len(roles) != 1 || roles[0] != "admin" {
		t.Fatalf("roles claim %v", at)
	}
	if res.IDToken == "" {
		t.Fatal("openid requested, no id_token")
	}
	id := f.verifyOwn(t, res.IDToken, token.KindIDToken)
	if id["aud"] != "app" || id["https://example.com/groups"] == nil || id["auth_time"] == nil {
		t.Fatalf("id token claims %v", id)
	}
	// Without openid, no ID token.
	res, err = f.exchange(t, f.op.idToken(t, f.clock.Now(), nil), nil)
	if err != nil || res.IDToken != "" {
		t.Fatalf("without openid: %+v %v", res, err)
	}
}

func TestExchangeAccessTokenAndJWTTypes(t *testing.T) {
	f := newFixture(t, nil)
	for _, typ := range []string{TokenTypeJWT, TokenTypeAccessToken} {
		tok := f.op.signWith(t, f.op.key, f.op.kid, "at+jwt", f.op.claims(f.clock.Now(), map[string]any{"client_id": "x", "jti": "j"}))
		res, err := f.exchange(t, tok, func(r *Request) { r.SubjectTokenType = typ; r.RequestedTokenType = TokenTypeJWT })
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if res.IssuedTokenType != TokenTypeJWT {
			t.Fatalf("issued_token_type %q", res.IssuedTokenType)
		}
	}
}

func TestActorTokenBecomesAct(t *testing.T) {
	f := newFixture(t, nil)
	actor := f.op.idToken(t, f.clock.Now(), map[string]any{"sub": "gateway-service"})
	res, err := f.exchange(t, f.op.idToken(t, f.clock.Now(), nil), func(r *Request) { r.ActorToken, r.ActorTokenType = actor, TokenTypeIDToken })
	if err != nil {
		t.Fatal(err)
	}
	at := f.verifyOwn(t, res.AccessToken, token.KindAccessToken)
	act, _ := at["act"].(map[string]any)
	if act["sub"] != "gateway-service" || act["iss"] != f.op.issuer() || at["sub"] != "alice" {
		t.Fatalf("act %v", at)
	}
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, nil)
	f.enr.res = runtime.Result{AccessTokenClaims: runtime.Claims{{Name: "https://example.com/permissions", Value: []string{"read:reports"}}}}
	req := Request{GrantType: GrantClientCredentials, Scope: []string{"read"}}
	res, err := f.ex.Token(context.Background(), f.enr, Credentials{ClientID: "m2m", Secret: "m2m-secret"}, req, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if res.IssuedTokenType != "" || res.IDToken != "" || res.Scope != "read" {
		t.Fatalf("%+v", res)
	}
	if ev := f.enr.event(); ev.Trigger != runtime.TriggerCredentialsExchange || ev.Client.ClientID != "m2m" || ev.Transaction.Audience != "m2m" {
		t.Fatalf("event %+v", ev)
	}
	at := f.verifyOwn(t, res.AccessToken, token.KindAccessToken)
	if at["sub"] != "m2m" || at["client_id"] != "m2m" || at["https://example.com/permissions"] == nil {
		t.Fatalf("claims %v", at)
	}
}

// TestRefusals covers every error path of Token with its RFC 6749 §5.2 code.
func TestRefusals(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Clients = append(c.Clients, ClientConfig{ClientID: "restricted", SecretHash: sha(t, "r"), Issuers: []string{"https://elsewhere.example.com"}})
		c.Issuers = append(c.Issuers, IssuerConfig{Issuer: "https://elsewhere.example.com", Audiences: []string{"x"}, Connection: "elsewhere"})
	})
	now := f.clock.Now()
	good := f.op.idToken(t, now, nil)
	otherOP := newUpstream(t)
	oldKey := f.op.key
	oldKid := f.op.kid
	type call struct {
		cred Credentials
		req  Request
		enr  runtime.Result
	}
	app := Credentials{ClientID: "app", Secret: appSecret}
	xreq := func(mut func(*Request)) Request {
		r := Request{GrantType: GrantTokenExchange, SubjectToken: good, SubjectTokenType: TokenTypeIDToken}
		if mut != nil {
			mut(&r)
		}
		return r
	}
	cases := []struct {
		name string
		c    call
		code string
	}{
		{"no client", call{req: xreq(nil)}, CodeInvalidClient},
		{"wrong secret", call{cred: Credentials{ClientID: "app", Secret: "nope"}, req: xreq(nil)}, CodeInvalidClient},
		{"unknown client", call{cred: Credentials{ClientID: "ghost", Secret: "x"}, req: xreq(nil)}, CodeInvalidClient},
		{"unsupported grant", call{cred: app, req: Request{GrantType: "password"}}, CodeUnsupportedGrantType},
		{"grant not allowed for client", call{cred: app, req: Request{GrantType: GrantClientCredentials}}, CodeUnauthorizedClient},
		{"m2m may not exchange", call{cred: Credentials{ClientID: "m2m", Secret: "m2m-secret"}, req: xreq(nil)}, CodeUnauthorizedClient},
		{"audience not allowed", call{cred: app, req: xreq(func(r *Request) { r.Audience = []string{"https://evil.example.com"} })}, CodeInvalidTarget},
		{"two targets", call{cred: app, req: xreq(func(r *Request) {
			r.Audience, r.Resource = []string{"https://api.example.com"}, []string{"https://other.example.com"}
		})}, CodeInvalidTarget},
		{"scope not allowed", call{cred: Credentials{ClientID: "m2m", Secret: "m2m-secret"}, req: Request{GrantType: GrantClientCredentials, Scope: []string{"admin"}}}, CodeInvalidScope},
		{"no subject_token", call{cred: app, req: xreq(func(r *Request) { r.SubjectToken = "" })}, CodeInvalidRequest},
		{"no subject_token_type", call{cred: app, req: xreq(func(r *Request) { r.SubjectTokenType = "" })}, CodeInvalidRequest},
		{"unsupported subject_token_type", call{cred: app, req: xreq(func(r *Request) { r.SubjectTokenType = "urn:ietf:params:oauth:token-type:saml2" })}, CodeInvalidRequest},
		{"unsupported requested_token_type", call{cred: app, req: xreq(func(r *Request) { r.RequestedTokenType = "urn:ietf:params:oauth:token-type:refresh_token" })}, CodeInvalidRequest},
		{"actor_token_type alone", call{cred: app, req: xreq(func(r *Request) { r.ActorTokenType = TokenTypeJWT })}, CodeInvalidRequest},
		{"actor_token without type", call{cred: app, req: xreq(func(r *Request) { r.ActorToken = good })}, CodeInvalidRequest},
		{"not a JWT", call{cred: app, req: xreq(func(r *Request) { r.SubjectToken = "opaque-token" })}, CodeInvalidGrant},
		{"untrusted issuer", call{cred: app, req: xreq(func(r *Request) { r.SubjectToken = otherOP.idToken(t, now, nil) })}, CodeInvalidGrant},
		{"issuer not allowed for client", call{cred: Credentials{ClientID: "restricted", Secret: "r"}, req: xreq(nil)}, CodeInvalidGrant},
		{"expired", call{cred: app, req: xreq(func(r *Request) {
			r.SubjectToken = f.op.idToken(t, now.Add(-time.Hour), nil)
		})}, CodeInvalidGrant},
		{"not yet valid", call{cred: app, req: xreq(func(r *Request) {
			r.SubjectToken = f.op.idToken(t, now, map[string]any{"nbf": now.Add(time.Hour).Unix()})
		})}, CodeInvalidGrant},
		{"wrong audience", call{cred: app, req: xreq(func(r *Request) {
			r.SubjectToken = f.op.idToken(t, now, map[string]any{"aud": "someone-else"})
		})}, CodeInvalidGrant},
		{"issuer mismatch inside a trusted token shape", call{cred: app, req: xreq(func(r *Request) {
			r.SubjectToken = otherOP.signWith(t, otherOP.key, oldKid, "JWT", f.op.claims(now, nil))
		})}, CodeInvalidGrant},
		{"access token as id_token", call{cred: app, req: xreq(func(r *Request) {
			r.SubjectToken = f.op.signWith(t, oldKey, oldKid, "at+jwt", f.op.claims(now, nil))
		})}, CodeInvalidGrant},
		{"bad actor token", call{cred: app, req: xreq(func(r *Request) {
			r.ActorToken, r.ActorTokenType = otherOP.idToken(t, now, nil), TokenTypeIDToken
		})}, CodeInvalidGrant},
		{"denied by the pipeline", call{cred: app, req: xreq(nil), enr: runtime.Result{Decision: runtime.Decision{Reason: "You do not have the required role", Code: "unauthorized"}}}, "unauthorized"},
		{"denied, access_denied", call{cred: app, req: xreq(nil), enr: runtime.Result{Decision: runtime.Decision{Reason: "no", Code: "access_denied"}}}, CodeAccessDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.enr.res = tc.c.enr
			_, err := f.ex.Token(context.Background(), f.enr, tc.c.cred, tc.c.req, Meta{})
			e, ok := AsError(err)
			if !ok || e.Code != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
		})
	}
}

// TestRotatedOutKeyRefused: once the upstream rotated a key out of its
// JWKS, tokens it signed are refused (after the rate-limited refetch).
func TestRotatedOutKeyRefused(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	oldKey, oldKid := f.op.key, f.op.kid
	if _, err := f.exchange(t, f.op.idToken(t, now, nil), nil); err != nil {
		t.Fatal(err)
	}
	f.op.rotate(t)
	// A token of the new key: unknown kid, refetch (after MinRefetch), accepted.
	f.clock.Advance(time.Minute)
	if _, err := f.exchange(t, f.op.idToken(t, f.clock.Now(), nil), nil); err != nil {
		t.Fatalf("new key: %v", err)
	}
	_, err := f.exchange(t, f.op.signWith(t, oldKey, oldKid, "JWT", f.op.claims(f.clock.Now(), nil)), nil)
	if e, ok := AsError(err); !ok || e.Code != CodeInvalidGrant {
		t.Fatalf("rotated-out key: %v", err)
	}
}

// TestNoneAndHMACRefused: alg none and HS256 (keyed with the public key's
// bytes, the classic confusion) never verify.
func TestNoneAndHMACRefused(t *testing.T) {
	f := newFixture(t, nil)
	claims := f.op.claims(f.clock.Now(), nil)
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", f.op.kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := hs.Sign(mustJSON(t, claims))
	hsTok, _ := jws.CompactSerialize()
	noneTok := b64(`{"alg":"none","kid":"`+f.op.kid+`"}`) + "." + b64(string(mustJSON(t, claims))) + "."
	for name, tok := range map[string]string{"HS256": hsTok, "none": noneTok} {
		_, err := f.exchange(t, tok, nil)
		if e, ok := AsError(err); !ok || e.Code != CodeInvalidGrant {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestSubjectRateLimited(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SubjectRate = RateConfig{PerMinute: 60, Burst: 2} })
	tok := f.op.idToken(t, f.clock.Now(), nil)
	for i := range 2 {
		if _, err := f.exchange(t, tok, nil); err != nil {
			t.Fatalf("replay %d: %v", i, err)
		}
	}
	_, err := f.exchange(t, tok, nil)
	if e, ok := AsError(err); !ok || e.Code != CodeSlowDown || e.Status() != 429 {
		t.Fatalf("third: %v", err)
	}
	// Another subject is not limited by alice's bucket.
	if _, err := f.exchange(t, f.op.idToken(t, f.clock.Now(), map[string]any{"sub": "bob"}), nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.exchange(t, tok, nil); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestUnreachableIssuerIsServerError(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.op.idToken(t, f.clock.Now(), nil)
	f.op.srv.Close()
	_, err := f.exchange(t, tok, nil)
	if _, refused := AsError(err); refused || !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("got %v, want an unavailable server error", err)
	}
}

func TestGroupsClaimPathAndUserClaims(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Issuers[0].GroupsClaim = "realm_access.roles"
		c.Issuers[0].UserClaims = map[string]string{"user_id": "oid", "username": "upn"}
	})
	tok := f.op.idToken(t, f.clock.Now(), map[string]any{"realm_access": map[string]any{"roles": []string{"kc-admin"}}, "oid": "u-123", "upn": "alice@corp"})
	if _, err := f.exchange(t, tok, nil); err != nil {
		t.Fatal(err)
	}
	ev := f.enr.event()
	if ev.User.UserID != "u-123" || ev.User.Username != "alice@corp" || !slices.Equal(ev.User.Groups, []string{"kc-admin"}) || ev.User.Email != "alice@example.com" {
		t.Fatalf("event user %+v", ev.User)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Enabled: true, Issuers: []IssuerConfig{{Issuer: "https://idp.example.com", Audiences: []string{"a"}, Connection: "c"}},
			Clients: []ClientConfig{{ClientID: "app", SecretHash: "sha256:" + strings.Repeat("0", 64)}}}
	}
	cases := map[string]func(*Config){
		"auth method":      func(c *Config) { c.Clients[0].AuthMethod = "tls_client_auth" },
		"jwt without jwks": func(c *Config) { c.Clients[0].AuthMethod = AuthPrivateKeyJWT },
		"empty audience":   func(c *Config) { c.Clients[0].Audiences = []string{""} },
		"bad issuer":       func(c *Config) { c.Issuers[0].Issuer = "idp" },
		"dup issuer":       func(c *Config) { c.Issuers = append(c.Issuers, c.Issuers[0]) },
		"no audiences":     func(c *Config) { c.Issuers[0].Audiences = nil },
		"no connection":    func(c *Config) { c.Issuers[0].Connection = "" },
		"HS256":            func(c *Config) { c.Issuers[0].Algorithms = []string{"HS256"} },
		"none":             func(c *Config) { c.Issuers[0].Algorithms = []string{"none"} },
		"leeway":           func(c *Config) { c.Issuers[0].Leeway = time.Hour },
		"user field":       func(c *Config) { c.Issuers[0].UserClaims = map[string]string{"roles": "x"} },
		"empty claim":      func(c *Config) { c.Issuers[0].UserClaims = map[string]string{"email": ""} },
		"no client_id":     func(c *Config) { c.Clients[0].ClientID = "" },
		"dup client":       func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) },
		"grant":            func(c *Config) { c.Clients[0].GrantTypes = []string{"password"} },
		"scope":            func(c *Config) { c.Clients[0].Scopes = []string{"a b"} },
		"client issuer":    func(c *Config) { c.Clients[0].Issuers = []string{"https://nope"} },
		"negative rate":    func(c *Config) { c.SubjectRate.Burst = -1 },
		"bad secret hash":  func(c *Config) { c.Clients[0].SecretHash = "plain" },
	}
	for name, mut := range cases {
		c := good()
		mut(&c)
		if _, err := New(c, Deps{Minter: noMinter{}}); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := New(good(), Deps{Minter: noMinter{}}); err != nil {
		t.Fatal(err)
	}
	if err := (&Config{}).Validate(); err != nil {
		t.Fatalf("disabled section: %v", err)
	}
	// Clients may all be registered in the store.
	noClients := good()
	noClients.Clients = nil
	if _, err := New(noClients, Deps{Minter: noMinter{}}); err != nil {
		t.Fatalf("no configured clients: %v", err)
	}
}

func TestGrantTypesForDiscovery(t *testing.T) {
	f := newFixture(t, nil)
	if g := f.ex.GrantTypes(); !slices.Equal(g, []string{GrantTokenExchange, GrantClientCredentials}) {
		t.Fatal(g)
	}
}
