package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

const oauthNS = "https://example.com/"

// oauthEnv is claimsmith's token side served over real HTTP on loopback by
// the Server of server.go.
type oauthEnv struct {
	base   string
	keys   *token.KeySet
	minter *token.Minter
	store  *memory.Store
	now    time.Time
	client *http.Client
	mux    http.Handler
}

func oauthLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newOAuthEnv(t testing.TB) *oauthEnv {
	t.Helper()
	ctx := context.Background()
	e := &oauthEnv{now: time.Now().Truncate(time.Second), client: &http.Client{Timeout: 10 * time.Second}}
	clock := func() time.Time { return e.now }
	log := oauthLogger()
	ks, err := tokenfile.NewKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if e.keys, err = token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256, PropagationDelay: 10 * time.Minute}, clock, log); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Init(ctx); err != nil {
		t.Fatal(err)
	}
	const issuer = "https://auth.example.com"
	if e.minter, err = token.NewMinter(e.keys, token.MinterConfig{Issuer: issuer}, clock); err != nil {
		t.Fatal(err)
	}
	verifier, err := token.NewVerifier(e.keys, issuer, 5*time.Second, clock)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := tokenfile.OpenRevocationList(ctx, filepath.Join(t.TempDir(), "revoked.jsonl"), clock, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { revoked.Close() })
	e.store = memory.New(memory.Options{})
	doc := &authz.Document{
		Groups:      []authz.Group{{ID: "g1", Name: "eng", Members: []string{"auth0|alice"}, Roles: []string{"r1"}}},
		Roles:       []authz.Role{{ID: "r1", Name: "editor", ApplicationType: "client", ApplicationID: "app1", Permissions: []string{"p1"}}},
		Permissions: []authz.Permission{{ID: "p1", Name: "write:docs", ApplicationType: "client", ApplicationID: "app1"}},
		Claimsmith:  &authz.Section{Applications: []authz.Application{{ClientID: "app1", Name: "Docs", Metadata: map[string]string{"required_roles": "editor"}}}},
	}
	if _, err := e.store.Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	intro, err := token.NewIntrospector(verifier, e.keys, revoked, e.store, e.store, token.IntrospectorConfig{Namespace: oauthNS}, clock, log)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := token.HashSecret("rs-secret", false)
	h2, _ := token.HashSecret("p@ss word:/", false)
	clients, err := token.NewClients([]token.ClientConfig{{ClientID: "rs", SecretHash: h1}, {ClientID: "rs:live", SecretHash: h2, Live: true}})
	if err != nil {
		t.Fatal(err)
	}
	ep := Endpoints{
		Introspect: &IntrospectHandler{Clients: clients, Introspector: intro, Log: log},
		Revoke:     &RevokeHandler{Clients: clients, Revoker: intro, Log: log},
		JWKS:       &JWKSHandler{Keys: e.keys},
		Discovery:  &DiscoveryHandler{Issuer: issuer, Keys: e.keys},
	}
	mux, err := hooks.NewMux(ep.Routes(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := hooks.NewServer(hooks.ServerConfig{Addr: "127.0.0.1:0"}, mux, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	e.base = "http://" + ln.Addr().String()
	e.mux = mux
	return e
}

func (e *oauthEnv) mint(t testing.TB, aud string) string {
	t.Helper()
	m, err := e.minter.MintAccessToken(context.Background(), token.AccessTokenRequest{Subject: "auth0|alice", ClientID: "app1", Audience: aud,
		Scopes: []string{"openid", "read:docs"}, Claims: runtime.Claims{{Name: oauthNS + "roles", Value: []string{"editor"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

type oauthReq struct {
	path        string
	form        url.Values
	basic       [2]string // id, secret (form-encoded per RFC 6749 §2.3.1)
	contentType string
	accept      string
	rawAuth     string
}

func (e *oauthEnv) do(t *testing.T, r oauthReq) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+r.path, strings.NewReader(r.form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	if r.basic[0] != "" {
		req.SetBasicAuth(url.QueryEscape(r.basic[0]), url.QueryEscape(r.basic[1]))
	}
	if r.rawAuth != "" {
		req.Header.Set("Authorization", r.rawAuth)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestIntrospectionEndpoint(t *testing.T) {
	e := newOAuthEnv(t)
	tok := e.mint(t, "https://api.example.com")
	rs := [2]string{"rs", "rs-secret"}

	// Caller authentication is required: 401 with a challenge.
	for name, r := range map[string]oauthReq{
		"no credentials":       {form: url.Values{"token": {tok}}},
		"wrong secret":         {form: url.Values{"token": {tok}}, basic: [2]string{"rs", "nope"}},
		"unknown client":       {form: url.Values{"token": {tok}}, basic: [2]string{"who", "rs-secret"}},
		"post wrong secret":    {form: url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {"nope"}}},
		"bearer not basic":     {form: url.Values{"token": {tok}}, rawAuth: "Bearer " + tok},
		"unauthenticated junk": {form: url.Values{"token": {"x"}}},
	} {
		r.path = "/oauth2/introspect"
		resp, body := e.do(t, r)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") ||
			!strings.Contains(string(body), `"error":"invalid_client"`) {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	// Bad requests from an authenticated caller.
	for name, c := range map[string]struct {
		r    oauthReq
		code int
	}{
		"missing token":     {oauthReq{form: url.Values{}, basic: rs}, 400},
		"token twice":       {oauthReq{form: url.Values{"token": {tok, tok}}, basic: rs}, 400},
		"two auth methods":  {oauthReq{form: url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {"rs-secret"}}, basic: rs}, 400},
		"JSON body":         {oauthReq{form: url.Values{"token": {tok}}, basic: rs, contentType: "application/json"}, 415},
		"live not a bool":   {oauthReq{form: url.Values{"token": {tok}, "live": {"yes please"}}, basic: rs}, 400},
		"body over the cap": {oauthReq{form: url.Values{"token": {strings.Repeat("a", MaxOAuthBody)}}, basic: rs}, 413},
	} {
		c.r.path = "/oauth2/introspect"
		resp, body := e.do(t, c.r)
		if resp.StatusCode != c.code || !strings.Contains(string(body), `"error":`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}

	// Active, with HTTP Basic (form-encoded credentials) and with client_secret_post.
	for name, r := range map[string]oauthReq{
		"basic":              {form: url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, basic: rs},
		"basic odd chars":    {form: url.Values{"token": {tok}}, basic: [2]string{"rs:live", "p@ss word:/"}},
		"client_secret_post": {form: url.Values{"token": {tok}, "client_id": {"rs"}, "client_secret": {"rs-secret"}}},
	} {
		r.path = "/oauth2/introspect"
		resp, body := e.do(t, r)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, resp.Header)
		}
		for _, k := range []string{"active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "token_type", oauthNS + "roles"} {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: %s missing in %s", name, k, body)
			}
		}
		if got["active"] != true || got["scope"] != "openid read:docs" || got["token_type"] != "Bearer" {
			t.Errorf("%s: %s", name, body)
		}
	}

	// Each inactive cause: exactly {"active":false}.
	expired := e.mint(t, "https://api.example.com")
	parts := strings.Split(tok, ".")
	inactive := map[string]string{
		"garbage":       "garbage",
		"bad signature": parts[0] + "." + parts[1] + "." + strings.Split(expired, ".")[2],
		"tampered":      parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://auth.example.com","sub":"root"}`)) + "." + parts[2],
	}
	check := func(name, tk string) {
		t.Helper()
		resp, body := e.do(t, oauthReq{path: "/oauth2/introspect", form: url.Values{"token": {tk}}, basic: rs})
		if resp.StatusCode != 200 || string(body) != `{"active":false}` {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	for name, tk := range inactive {
		check(name, tk)
	}
	// Revocation: 200 for our token, then inactive; 200 for unknown ones; 401 without auth.
	toRevoke := e.mint(t, "https://api.example.com")
	if resp, body := e.do(t, oauthReq{path: "/oauth2/revoke", form: url.Values{"token": {toRevoke}, "token_type_hint": {"access_token"}}, basic: rs}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	check("revoked", toRevoke)
	if resp, _ := e.do(t, oauthReq{path: "/oauth2/revoke", form: url.Values{"token": {"unknown"}}, basic: rs}); resp.StatusCode != 200 {
		t.Fatalf("revoke unknown: %d", resp.StatusCode)
	}
	if resp, _ := e.do(t, oauthReq{path: "/oauth2/revoke", form: url.Values{"token": {tok}}}); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("revoke without auth: %d", resp.StatusCode)
	}
	// The refused revocation changed nothing.
	if _, body := e.do(t, oauthReq{path: "/oauth2/introspect", form: url.Values{"token": {tok}}, basic: rs}); !strings.HasPrefix(string(body), `{"active":true`) {
		t.Fatalf("token after a refused revocation: %s", body)
	}
}

func TestIntrospectionLiveAndTime(t *testing.T) {
	e := newOAuthEnv(t)
	tok := e.mint(t, "app1")
	rs := [2]string{"rs", "rs-secret"}
	live := func(r oauthReq) (int, map[string]any) {
		t.Helper()
		r.path = "/oauth2/introspect"
		resp, body := e.do(t, r)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return resp.StatusCode, m
	}
	_, m := live(oauthReq{form: url.Values{"token": {tok}, "live": {"true"}}, basic: rs})
	if g, _ := json.Marshal(m[oauthNS+"groups"]); string(g) != `["eng"]` {
		t.Fatalf("live groups: %v", m)
	}
	// A membership change after minting shows up in the next answer.
	ctx := context.Background()
	if _, err := e.store.Apply(ctx, 0, &authz.CreateGroup{ID: "g2", Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g2", UserIDs: []string{"auth0|alice"}}); err != nil {
		t.Fatal(err)
	}
	_, m = live(oauthReq{form: url.Values{"token": {tok}}, basic: [2]string{"rs:live", "p@ss word:/"}}) // per-client live
	if g, _ := json.Marshal(m[oauthNS+"groups"]); string(g) != `["eng","ops"]` {
		t.Fatalf("live groups after adding ops: %v", m)
	}
	// Alice leaves eng: no editor role any more, app1 requires it.
	if _, err := e.store.Apply(ctx, 0, &authz.RemoveGroupMembers{GroupID: "g1", UserIDs: []string{"auth0|alice"}}); err != nil {
		t.Fatal(err)
	}
	if code, m := live(oauthReq{form: url.Values{"token": {tok}, "live": {"true"}}, basic: rs}); code != 200 || len(m) != 1 || m["active"] != false {
		t.Fatalf("after losing the required role: %d %v", code, m)
	}
	// Not live, the token itself is still active.
	if _, m := live(oauthReq{form: url.Values{"token": {tok}}, basic: rs}); m["active"] != true {
		t.Fatalf("not live: %v", m)
	}
	// Expired.
	e.now = e.now.Add(2 * time.Hour)
	if _, m := live(oauthReq{form: url.Values{"token": {tok}}, basic: rs}); len(m) != 1 || m["active"] != false {
		t.Fatalf("expired: %v", m)
	}
}

func TestIntrospectionJWTResponse(t *testing.T) {
	e := newOAuthEnv(t)
	tok := e.mint(t, "https://api.example.com")
	resp, body := e.do(t, oauthReq{path: "/oauth2/introspect", form: url.Values{"token": {tok}}, basic: [2]string{"rs", "rs-secret"},
		accept: "application/json;q=0.5, application/token-introspection+jwt"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/token-introspection+jwt" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Verify it with the JWKS fetched over HTTP, as a resource server would.
	jr, err := e.client.Get(e.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer jr.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(jr.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if h.ExtraHeaders[jose.HeaderType] != "token-introspection+jwt" {
		t.Fatalf("typ %v", h.ExtraHeaders)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	ti, _ := c["token_introspection"].(map[string]any)
	if c["iss"] != "https://auth.example.com" || c["aud"] != "rs" || c["iat"] == nil || ti["active"] != true || ti["sub"] != "auth0|alice" {
		t.Fatalf("claims %s", payload)
	}
	if _, ok := c["sub"]; ok {
		t.Fatal("top-level sub")
	}
	if _, ok := c["exp"]; ok {
		t.Fatal("top-level exp")
	}
	// Inactive, as a JWT too.
	_, body = e.do(t, oauthReq{path: "/oauth2/introspect", form: url.Values{"token": {"garbage"}}, basic: [2]string{"rs", "rs-secret"}, accept: "application/token-introspection+jwt"})
	jws, _ = jose.ParseSignedCompact(string(body), []jose.SignatureAlgorithm{jose.ES256})
	payload, err = jws.Verify(keys[0].Key)
	if err != nil || !strings.Contains(string(payload), `"token_introspection":{"active":false}}`) {
		t.Fatalf("inactive JWT: %s %v", payload, err)
	}
}

func TestJWKSAndDiscovery(t *testing.T) {
	e := newOAuthEnv(t)
	resp, err := e.client.Get(e.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "public, max-age=300" { // half the 10m propagation delay
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Keys) != 1 {
		t.Fatalf("%s %v", body, err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := raw.Keys[0][private]; ok {
			t.Fatalf("private parameter %s published: %s", private, body)
		}
	}
	if raw.Keys[0]["alg"] != "ES256" || raw.Keys[0]["use"] != "sig" || raw.Keys[0]["kid"] == "" {
		t.Fatalf("jwk %v", raw.Keys[0])
	}
	// A rotation publishes the next key at once and shortens nothing below zero.
	if _, err := e.keys.Rotate(context.Background(), token.EdDSA); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.client.Get(e.base + "/.well-known/jwks.json")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Keys) != 2 {
		t.Fatalf("after rotate: %s", body)
	}

	resp, err = e.client.Get(e.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, v := range map[string]string{"issuer": "https://auth.example.com", "jwks_uri": "https://auth.example.com/.well-known/jwks.json",
		"introspection_endpoint": "https://auth.example.com/oauth2/introspect", "revocation_endpoint": "https://auth.example.com/oauth2/revoke"} {
		if md[k] != v {
			t.Errorf("%s = %v", k, md[k])
		}
	}
	if a, _ := json.Marshal(md["introspection_signing_alg_values_supported"]); string(a) != `["ES256","EdDSA"]` {
		t.Errorf("introspection algs %s", a)
	}
	if a, _ := json.Marshal(md["id_token_signing_alg_values_supported"]); string(a) != `["ES256","EdDSA"]` {
		t.Errorf("id token algs %s", a)
	}
}

// FuzzParseOAuthForm: the introspection/revocation form decoder never
// panics, and what it accepts has a token and single-valued parameters.
func FuzzParseOAuthForm(f *testing.F) {
	for _, s := range []string{"token=abc", "token=abc&token_type_hint=access_token&live=true", "token=a&token=b",
		"client_id=rs&client_secret=s&token=x", "token=%zz", "live=maybe&token=x", "", "&&&=", "token=" + strings.Repeat("a", 100) + "&x=y;z"} {
		f.Add("application/x-www-form-urlencoded", []byte(s))
	}
	f.Add("application/x-www-form-urlencoded; charset=UTF-8", []byte("token=t"))
	f.Add("application/json", []byte(`{"token":"x"}`))
	f.Add("", []byte("token=x"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		got, err := ParseOAuthForm(ct, body)
		if err != nil {
			if !strings.Contains(err.Error(), "Content-Type") && !strings.Contains(err.Error(), "parameter") && !strings.Contains(err.Error(), "form body") {
				t.Fatalf("error does not say what was wrong: %v", err)
			}
			return
		}
		if got.Token == "" {
			t.Fatal("accepted a form without token")
		}
		vals, perr := url.ParseQuery(string(body))
		if perr != nil || len(vals["token"]) != 1 || vals.Get("token") != got.Token {
			t.Fatalf("decoded %+v from %q", got, body)
		}
	})
}

// One place turns errors into HTTP responses (hooks.WriteError): no handler
// of this package writes an error body of its own.
func TestNoSecondErrorWriter(t *testing.T) {
	fset := gotoken.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for name, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "WriteJSON" {
					return true
				}
				for _, a := range call.Args {
					if cl, ok := a.(*ast.CompositeLit); ok {
						if s, ok := cl.Type.(*ast.SelectorExpr); ok && s.Sel.Name == "ErrorBody" {
							t.Errorf("%s: %s writes an error body itself; return a hooks.ProtocolError to hooks.WriteError", name, fset.Position(call.Pos()))
						}
					}
				}
				return true
			})
		}
	}
}
