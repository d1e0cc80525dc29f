package token

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

const ns = "https://example.com/"

// authzStore is a real memory store: alice is in "eng", whose role "editor"
// of app1 grants "write:docs"; app1 requires the editor role.
func authzStore(t testing.TB) *memory.Store {
	t.Helper()
	s := memory.New(memory.Options{})
	doc := &authz.Document{
		Groups:      []authz.Group{{ID: "g1", Name: "eng", Members: []string{"auth0|alice"}, Roles: []string{"r1"}}},
		Roles:       []authz.Role{{ID: "r1", Name: "editor", ApplicationType: "client", ApplicationID: "app1", Permissions: []string{"p1"}}},
		Permissions: []authz.Permission{{ID: "p1", Name: "write:docs", ApplicationType: "client", ApplicationID: "app1"}},
		Claimsmith:  &authz.Section{Applications: []authz.Application{{ClientID: "app1", Name: "Docs", Metadata: map[string]string{"required_roles": "admin, editor"}}}},
	}
	if _, err := s.Apply(context.Background(), 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	return s
}

type introFixture struct {
	*fixture
	store   *memory.Store
	revoked *memRevocations
	intro   *Introspector
}

func newIntroFixture(t testing.TB, alg Algorithm) *introFixture {
	t.Helper()
	f := &introFixture{fixture: newFixture(t, alg), store: authzStore(t)}
	var err error
	f.revoked = newMemRevocations(f.clock.Now)
	f.intro, err = NewIntrospector(f.verify, f.keys, f.revoked, f.store, f.store, IntrospectorConfig{Namespace: ns}, f.clock.Now, discard())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var rs = Caller{ClientID: "resource-server"}

func TestIntrospectActive(t *testing.T) {
	f := newIntroFixture(t, ES256)
	tok := f.access(t, AccessTokenRequest{Scopes: []string{"openid", "read:docs"},
		Claims: runtime.Claims{{Name: ns + "roles", Value: []string{"editor"}}, {Name: "tenant", Value: "acme"}}})
	ans, err := f.intro.Introspect(context.Background(), rs, IntrospectRequest{Token: tok})
	if err != nil || !ans.Active {
		t.Fatalf("%+v %v", ans, err)
	}
	var got map[string]any
	if err := json.Unmarshal(ans.JSON, &got); err != nil {
		t.Fatalf("%s: %v", ans.JSON, err)
	}
	now := float64(f.clock.Now().Unix())
	for k, v := range map[string]any{"active": true, "token_type": "Bearer", "scope": "openid read:docs", "client_id": "app1",
		"sub": "auth0|alice", "aud": "https://api.example.com", "iss": testIssuer, "exp": now + 1800, "iat": now, "nbf": now, "tenant": "acme"} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["jti"] == "" || got[ns+"roles"] == nil {
		t.Errorf("answer %s", ans.JSON)
	}
}

func TestIntrospectInactiveCauses(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, RS256)
	f.clock.Advance(5 * time.Minute)
	good := f.access(t, AccessTokenRequest{})
	revokedTok := f.access(t, AccessTokenRequest{})
	if err := f.intro.Revoke(ctx, rs, revokedTok); err != nil {
		t.Fatal(err)
	}
	id, _ := f.minter.MintIDToken(ctx, IDTokenRequest{Subject: "auth0|alice", ClientID: "app1"})
	otherIss, _ := NewMinter(f.keys, MinterConfig{Issuer: "https://other.example.com"}, f.clock.Now)
	foreign, _ := otherIss.MintAccessToken(ctx, AccessTokenRequest{Subject: "u", ClientID: "c"})
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"revoked":        revokedTok,
		"unknown issuer": foreign.Token,
		"bad signature":  parts[0] + "." + parts[1] + "." + strings.Split(revokedTok, ".")[2],
		"ID token":       id.Token,
		"garbage":        "garbage",
		"empty":          "",
	}
	check := func(name, tok string) {
		t.Helper()
		ans, err := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok})
		if err != nil || ans.Active || string(ans.JSON) != `{"active":false}` {
			t.Errorf("%s: %s %v", name, ans.JSON, err)
		}
	}
	for name, tok := range cases {
		check(name, tok)
	}
	if ans, _ := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: good}); !ans.Active {
		t.Fatal("good token inactive")
	}
	f.clock.Advance(-time.Minute)
	check("not yet valid", good)
	f.clock.Advance(time.Minute + 31*time.Minute)
	check("expired", good)
}

func TestIntrospectLiveReflectsMembershipChange(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, EdDSA)
	tok := f.access(t, AccessTokenRequest{Audience: "app1", Claims: runtime.Claims{{Name: ns + "roles", Value: []string{"editor"}}}})
	live := func(req IntrospectRequest, caller Caller) map[string]any {
		t.Helper()
		ans, err := f.intro.Introspect(ctx, caller, req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(ans.JSON, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := live(IntrospectRequest{Token: tok, Live: true}, rs)
	if m["active"] != true || !jsonEq(m[ns+"groups"], []string{"eng"}) || !jsonEq(m[ns+"roles"], []string{"editor"}) || !jsonEq(m[ns+"permissions"], []string{"write:docs"}) {
		t.Fatalf("live before change: %v", m)
	}
	// A second role granted after minting shows up at once; admin is also a
	// required role, so the token stays active.
	_, err := f.store.Apply(ctx, 0, &authz.CreateRole{ID: "r2", Name: "admin", ApplicationType: "client", ApplicationID: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Apply(ctx, 0, &authz.AddGroupRoles{GroupID: "g1", RoleIDs: []string{"r2"}}); err != nil {
		t.Fatal(err)
	}
	m = live(IntrospectRequest{Token: tok}, Caller{ClientID: "rs", Live: true}) // per-client setting
	if !jsonEq(m[ns+"roles"], []string{"editor", "admin"}) {
		t.Fatalf("live after granting admin: %v", m)
	}
	// Without live the token's own claims are answered.
	m = live(IntrospectRequest{Token: tok}, rs)
	if !jsonEq(m[ns+"roles"], []string{"editor"}) || m[ns+"groups"] != nil {
		t.Fatalf("not live: %v", m)
	}
	// Removing alice from eng drops every role: required_roles no longer held.
	if _, err := f.store.Apply(ctx, 0, &authz.RemoveGroupMembers{GroupID: "g1", UserIDs: []string{"auth0|alice"}}); err != nil {
		t.Fatal(err)
	}
	ans, err := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok, Live: true})
	if err != nil || ans.Active || string(ans.JSON) != `{"active":false}` {
		t.Fatalf("after removal: %s %v", ans.JSON, err)
	}
	// Configured to ignore required_roles, the answer stays active with empty lists.
	lax, _ := NewIntrospector(f.verify, f.keys, f.revoked, f.store, f.store, IntrospectorConfig{Namespace: ns, IgnoreRequiredRoles: true}, f.clock.Now, discard())
	ans, err = lax.Introspect(ctx, rs, IntrospectRequest{Token: tok, Live: true})
	if err != nil || !ans.Active || !strings.Contains(string(ans.JSON), `"`+ns+`roles":[]`) {
		t.Fatalf("ignoring required roles: %s %v", ans.JSON, err)
	}
	// No store configured: a live question is a caller error, not a silent non-live answer.
	noStore, _ := NewIntrospector(f.verify, f.keys, f.revoked, nil, nil, IntrospectorConfig{}, f.clock.Now, discard())
	if _, err := noStore.Introspect(ctx, rs, IntrospectRequest{Token: tok, Live: true}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("live without a store: %v", err)
	}
}

func jsonEq(got any, want []string) bool {
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return string(a) == string(b)
}

func TestSignedIntrospection(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, PS256)
	tok := f.access(t, AccessTokenRequest{})
	ans, _ := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok})
	jwt, err := f.intro.Signed(ctx, rs, ans)
	if err != nil {
		t.Fatal(err)
	}
	h, c := parseIndependently(t, f.keys, jwt)
	if h.ExtraHeaders[jose.HeaderType] != "token-introspection+jwt" {
		t.Fatalf("typ %v", h.ExtraHeaders[jose.HeaderType])
	}
	if c["iss"] != testIssuer || c["aud"] != rs.ClientID || c["iat"] != float64(f.clock.Now().Unix()) {
		t.Fatalf("claims %v", c)
	}
	if _, ok := c["sub"]; ok {
		t.Fatal("top-level sub")
	}
	if _, ok := c["exp"]; ok {
		t.Fatal("top-level exp")
	}
	ti, _ := c["token_introspection"].(map[string]any)
	if ti["active"] != true || ti["sub"] != "auth0|alice" {
		t.Fatalf("token_introspection %v", ti)
	}
	// It can never pass for an access token.
	if _, err := f.verify.Verify(ctx, jwt, VerifyOptions{}); !errors.Is(err, ErrType) {
		t.Fatalf("introspection JWT as access token: %v", err)
	}
}

func TestClientAuthentication(t *testing.T) {
	ctx := context.Background()
	fast, _ := HashSecret("s3cret-fast", false)
	slow, _ := HashSecret("s3cret-slow", true)
	// HashSecret's form verifies with the real PBKDF2 (once: it is slow)…
	real, err := NewClients([]ClientConfig{{ClientID: "rs2", SecretHash: slow}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := real.Authenticate(ctx, "rs2", "s3cret-slow"); err != nil {
		t.Fatal(err)
	}
	// …the rest counts work with a cheap stand-in (clients_test.go).
	h := &countingHasher{}
	c, err := NewClientsWith([]ClientConfig{{ClientID: "rs1", SecretHash: fast}, {ClientID: "rs2", SecretHash: h.pbkdf2Hash("s3cret-slow", 10_000), Live: true}},
		ClientsOptions{Hasher: h.hash})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Authenticate(ctx, "rs1", "s3cret-fast"); err != nil || got.ClientID != "rs1" || got.Live {
		t.Fatalf("rs1: %+v %v", got, err)
	}
	for i := 0; i < 2; i++ { // the second time comes from the verified cache
		if got, err := c.Authenticate(ctx, "rs2", "s3cret-slow"); err != nil || !got.Live {
			t.Fatalf("rs2: %+v %v", got, err)
		}
	}
	for _, bad := range [][2]string{{"rs1", "wrong"}, {"rs2", "s3cret-fast"}, {"nobody", "s3cret-fast"}, {"rs1", ""}, {"", ""}} {
		if _, err := c.Authenticate(ctx, bad[0], bad[1]); !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	for _, cfg := range []ClientConfig{{ClientID: "x", SecretHash: "plain"}, {ClientID: "x", SecretHash: "sha256:abcd"},
		{ClientID: "", SecretHash: fast}, {ClientID: "x", SecretHash: "pbkdf2-sha256:5:AAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA"}} {
		if _, err := NewClients([]ClientConfig{cfg}); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if _, err := NewClients([]ClientConfig{{ClientID: "x", SecretHash: fast}, {ClientID: "x", SecretHash: fast}}); !errors.Is(err, runtime.ErrInvalid) {
		t.Error("duplicate client accepted")
	}
}

func TestIntrospectCallerAudiences(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, ES256)
	tok := f.access(t, AccessTokenRequest{Audience: "https://orders.example.com"})
	for _, c := range []struct {
		caller Caller
		active bool
	}{
		{Caller{ClientID: "orders", Audiences: []string{"https://orders.example.com"}}, true},
		{Caller{ClientID: "billing", Audiences: []string{"https://billing.example.com"}}, false},
		{Caller{ClientID: "any"}, true},
	} {
		ans, err := f.intro.Introspect(ctx, c.caller, IntrospectRequest{Token: tok})
		if err != nil || ans.Active != c.active || (!c.active && string(ans.JSON) != `{"active":false}`) {
			t.Errorf("%s: %s %v", c.caller.ClientID, ans.JSON, err)
		}
	}
	h, _ := HashSecret("x", false)
	cl, _ := NewClients([]ClientConfig{{ClientID: "orders", SecretHash: h, Audiences: []string{"https://orders.example.com"}}})
	if got, _ := cl.Authenticate(ctx, "orders", "x"); len(got.Audiences) != 1 {
		t.Fatalf("caller %+v", got)
	}
}

// TestRevokeRespectsCallerAudiences: a caller limited to one API cannot
// revoke another API's token (RFC 7009 §2.1); it gets the same quiet
// answer as for a token needing nothing, and the token stays active for
// its own API. Before, Revoke never looked at the caller.
func TestRevokeRespectsCallerAudiences(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, ES256)
	orders := Caller{ClientID: "orders", Audiences: []string{"https://orders.example.com"}}
	billing := Caller{ClientID: "billing", Audiences: []string{"https://billing.example.com"}}
	active := func(c Caller, tok string) bool {
		t.Helper()
		ans, err := f.intro.Introspect(ctx, c, IntrospectRequest{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		return ans.Active
	}
	ordersTok := f.access(t, AccessTokenRequest{Audience: "https://orders.example.com"})
	if err := f.intro.Revoke(ctx, billing, ordersTok); err != nil {
		t.Fatalf("refused revocation must look like a no-op: %v", err)
	}
	if !active(orders, ordersTok) {
		t.Fatal("a caller limited to billing revoked an orders token")
	}
	// Its own API's token, and any token for an unlimited caller, it can.
	if err := f.intro.Revoke(ctx, orders, ordersTok); err != nil || active(orders, ordersTok) {
		t.Fatalf("own token not revoked: %v", err)
	}
	other := f.access(t, AccessTokenRequest{Audience: "https://billing.example.com"})
	if err := f.intro.Revoke(ctx, Caller{ClientID: "admin-rs"}, other); err != nil || active(billing, other) {
		t.Fatalf("unlimited caller could not revoke: %v", err)
	}
}
