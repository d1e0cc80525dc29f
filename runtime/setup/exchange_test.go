package setup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

const exchangeConfig = `tokens:
  issuer: https://auth.example.com
  algorithm: ES256
pipeline:
  namespace: https://example.com/
  rules:
    - name: authorization
      rule: authorization
      config:
        id_token: {groups: true, roles: true, permissions: false}
        access_token: {groups: true, roles: true, permissions: true}
        persist: {groups: true, roles: true, permissions: false}
    - name: required-roles
      rule: required-roles
exchange:
  enabled: true
  subject_rate: {per_minute: 600, burst: 100}
  issuers:
    - issuer: %s
      audiences: [app-at-upstream]
      connection: upstream-oidc
      leeway: 10s
  clients:
    - client_id: app
      secret_hash: %s
      audiences: [https://api.example.com]
    - client_id: locked
      secret_hash: %s
    - client_id: m2m
      secret_hash: %s
      grant_types: [client_credentials]
`

// TestServeTokenExchange: serve built from a file with an exchange section
// answers POST /oauth2/token with a real pipeline: the upstream ID token's
// groups claim is mapped through the connection mapping, roles and
// permissions land in the access token (verified with runtime/guard against
// claimsmith's own JWKS), app_metadata is persisted, required_roles denies,
// client_credentials runs the credentials-exchange trigger, and discovery
// advertises the token endpoint.
func TestServeTokenExchange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	up := newTestOP(t)
	hash := func(s string) string { return sha256Hash(s) }
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(exchangeConfig, up.URL, hash("app-secret"), hash("locked-secret"), hash("m2m-secret"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data")}
	rep, err := setup.Check(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Routes, "POST /oauth2/token") {
		t.Fatalf("check routes %v", rep.Routes)
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	doc := &authz.Document{
		Groups: []authz.Group{{ID: "g1", Name: "Engineering", Roles: []string{"r1"},
			Mappings: []authz.Mapping{{ID: "m1", GroupName: "eng", ConnectionName: "upstream-oidc"}}}},
		Roles:       []authz.Role{{ID: "r1", Name: "editor", ApplicationType: "client", ApplicationID: "app", Permissions: []string{"p1"}}},
		Permissions: []authz.Permission{{ID: "p1", Name: "write:docs", ApplicationType: "client", ApplicationID: "app"}},
		Claimsmith: &authz.Section{Applications: []authz.Application{
			{ClientID: "locked", Name: "Locked", Metadata: map[string]string{"required_roles": "admin"}}}},
	}
	if _, err := srv.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	base, stop := serveOnLoopback(ctx, t, srv)
	defer func() { _ = stop() }()

	post := func(user, pass string, form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	idToken := up.idToken(t, map[string]any{"groups": []string{"eng", "unmapped"}})
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {idToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "scope": {"openid docs"}}
	code, body := post("app", "app-secret", form)
	if code != 200 || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || body["id_token"] == nil || body["scope"] != "openid docs" {
		t.Fatalf("exchange: %d %v", code, body)
	}
	// The access token verifies with runtime/guard against claimsmith's JWKS.
	keys, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: "https://auth.example.com", JWKSURL: base + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: "https://auth.example.com", Audiences: []string{"https://api.example.com"}}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, body["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(claims["https://example.com/groups"]) != "[Engineering]" || fmt.Sprint(claims["https://example.com/roles"]) != "[editor]" ||
		fmt.Sprint(claims["https://example.com/permissions"]) != "[write:docs]" || claims["sub"] != "alice" || claims["client_id"] != "app" {
		t.Fatalf("access token claims %v", claims)
	}
	prof, err := srv.Store().Profile(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := prof.AppMetadata["authorization"].(map[string]any); fmt.Sprint(a["roles"]) != "[editor]" {
		t.Fatalf("app_metadata not persisted: %v", prof.AppMetadata)
	}

	// required_roles of the client denies (403, the rule's code).
	if code, body := post("locked", "locked-secret", form); code != 403 || body["error"] != "unauthorized" {
		t.Fatalf("required roles: %d %v", code, body)
	}
	// client_credentials for the M2M client.
	code, body = post("m2m", "m2m-secret", url.Values{"grant_type": {"client_credentials"}})
	if code != 200 || body["access_token"] == nil || body["id_token"] != nil {
		t.Fatalf("client_credentials: %d %v", code, body)
	}
	// A wrong secret: 401 with a challenge is covered in hooks/exchange;
	// here the route is mounted and authenticates.
	if code, body := post("app", "wrong", form); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", code, body)
	}
	// Discovery advertises the endpoint and the grants.
	res, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	_ = json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	if md["token_endpoint"] != "https://auth.example.com/oauth2/token" ||
		fmt.Sprint(md["grant_types_supported"]) != "[urn:ietf:params:oauth:grant-type:token-exchange client_credentials]" {
		t.Fatalf("discovery %v", md)
	}
}

func TestCheckRefusesBadExchangeSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	body := "tokens:\n  issuer: https://auth.example.com\nexchange:\n  enabled: true\n  issuers:\n    - issuer: https://idp.example.com\n      audiences: [a]\n  clients:\n    - {client_id: app, secret_hash: " + sha256Hash("x") + "}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(context.Background(), setup.Env{DataDir: filepath.Join(dir, "data")})
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), `exchange.issuers[0].connection`) || !strings.Contains(err.Error(), ":6:") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(path, []byte(body+"  bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Load(path); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown key: %v", err)
	}
}

// testOP is a small upstream OpenID Provider on loopback (discovery, JWKS,
// ES256 ID tokens); the oidc-provider e2e uses a real one.
type testOP struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newTestOP(t *testing.T) *testOP {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &testOP{key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.URL, "jwks_uri": op.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "up1", Algorithm: "ES256", Use: "sig"}}})
	})
	op.Server = httptest.NewServer(mux)
	t.Cleanup(op.Close)
	return op
}

func (op *testOP) idToken(t *testing.T, extra map[string]any) string {
	now := time.Now()
	c := map[string]any{"iss": op.URL, "sub": "alice", "aud": "app-at-upstream", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "email": "alice@example.com"}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: op.key}, (&jose.SignerOptions{}).WithHeader("kid", "up1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func sha256Hash(s string) string {
	h, err := token.HashSecret(s, false)
	if err != nil {
		panic(err)
	}
	return h
}
