package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/oauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	rtexchange "github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

// docsAPI is an API (resource server) the portal asks Hydra for: its role
// reaches Engineering's members only in tokens for that audience.
const docsAPI = "https://docs.api.claimsmith.test"

// addDocsAPI gives Engineering a role of docsAPI and makes docsAPI the
// portal's default_audience (issue 14 item 11: Hydra v2.3 sends an empty
// granted_audience for authorization_code, the granted one at refresh).
func addDocsAPI(t *testing.T, store *memory.Store) {
	t.Helper()
	doc := hookstest.Document(hookstest.PortalClient, hookstest.BatchClient)
	_, err := store.Apply(context.Background(), 0,
		&authz.CreatePermission{ID: "p-api-write", Name: "docs-api:write", ApplicationType: authz.TypeResourceServer, ApplicationID: docsAPI},
		&authz.CreateRole{ID: "r-api", Name: "docs-api-editor", ApplicationType: authz.TypeResourceServer, ApplicationID: docsAPI, Permissions: []string{"p-api-write"}},
		&authz.AddGroupRoles{GroupID: "g-eng", RoleIDs: []string{"r-api"}},
		&authz.PutApplication{Application: authz.Application{ClientID: hookstest.PortalClient, Name: "Portal",
			Metadata: map[string]string{"required_roles": doc.Claimsmith.Applications[0].Metadata["required_roles"], runtime.DefaultAudienceKey: docsAPI}}})
	if err != nil {
		t.Fatal(err)
	}
}

// claimsmithClaims are the claims claimsmith added (its namespace).
func claimsmithClaims(c map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		if strings.HasPrefix(k, hookstest.NS) {
			out[k] = v
		}
	}
	return out
}

// testSameClaimsAtRefresh: the authorization_code token of a session asking
// for docsAPI and the refresh of that session carry the same claimsmith
// claims, the API's roles included.
func testSameClaimsAtRefresh(t *testing.T, public, admin string) {
	code := authorizeAudience(t, public, admin, "alice", map[string]any{"email": "alice@example.com"}, nil, docsAPI)
	tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
	})
	if tok.status != http.StatusOK || tok.RefreshToken == "" {
		t.Fatalf("token request: %d %s", tok.status, tok.raw)
	}
	ref := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if ref.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", ref.status, ref.raw)
	}
	at, rat := jwtClaims(t, tok.AccessToken), jwtClaims(t, ref.AccessToken)
	if aud, _ := at["aud"].([]any); !reflect.DeepEqual(aud, []any{docsAPI}) {
		t.Fatalf("Hydra's access token aud = %v, want [%s]", at["aud"], docsAPI)
	}
	first, _ := at["ext"].(map[string]any)
	second, _ := rat["ext"].(map[string]any)
	first, second = claimsmithClaims(first), claimsmithClaims(second)
	if perms := first[hookstest.NS+"permissions"]; !reflect.DeepEqual(perms, []any{"docs:read", "docs:write", "docs-api:write"}) {
		t.Errorf("authorization_code access token permissions = %v, want the portal's and the API's", perms)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("access token claims differ:\n authorization_code %v\n refresh            %v", first, second)
	}
	if a, b := claimsmithClaims(jwtClaims(t, tok.IDToken)), claimsmithClaims(jwtClaims(t, ref.IDToken)); !reflect.DeepEqual(a, b) || len(a) == 0 {
		t.Errorf("ID token claims differ:\n authorization_code %v\n refresh            %v", a, b)
	}
}

// testExchangeHydraToken: a Hydra-issued ID token (carol, whose IdP group
// ad-eng maps into Engineering on connection "hydra") is exchanged at
// claimsmith's token endpoint, with Hydra as a trusted issuer found through
// its JWKS; the answer's tokens carry her groups, roles and permissions and
// verify with claimsmith's keys; then Hydra's JWT access token is exchanged too.
func testExchangeHydraToken(t *testing.T, public, admin string, enr runtime.Enricher) {
	ctx := t.Context()
	code := authorize(t, public, admin, "carol", map[string]any{"groups": []string{"ad-eng"}}, nil)
	tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
	})
	if tok.status != http.StatusOK || tok.IDToken == "" {
		t.Fatalf("Hydra token request: %d %s", tok.status, tok.raw)
	}

	ks, err := tokenfile.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Init(ctx); err != nil {
		t.Fatal(err)
	}
	const issuer = "https://claimsmith.e2e.test"
	minter, err := token.NewMinter(keys, token.MinterConfig{Issuer: issuer}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	secretHash, err := token.HashSecret("exchange-secret", false)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := rtexchange.New(rtexchange.Config{Enabled: true,
		Issuers: []rtexchange.IssuerConfig{{Issuer: public + "/", JWKSURL: public + "/.well-known/jwks.json",
			Audiences: []string{hookstest.PortalClient, docsAPI}, Connection: "hydra"}},
		Clients: []rtexchange.ClientConfig{{ClientID: hookstest.PortalClient, SecretHash: secretHash}},
	}, rtexchange.Deps{Minter: minter, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(oauth.PatternToken, &oauth.TokenHandler{Exchanger: ex, Enricher: enr})
	cs := startClaimsmith(t, "127.0.0.1:0", mux)

	exchange := func(subject, subjectType string) rtexchange.Response {
		t.Helper()
		form := url.Values{"grant_type": {rtexchange.GrantTokenExchange}, "subject_token": {subject},
			"subject_token_type": {subjectType}, "scope": {"openid"}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+cs.addr+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(hookstest.PortalClient, "exchange-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out rtexchange.Response
		if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK || out.IDToken == "" {
			t.Fatalf("exchange of a Hydra token (%s): %d %s", subjectType, resp.StatusCode, raw)
		}
		return out
	}
	out := exchange(tok.IDToken, rtexchange.TokenTypeIDToken)
	v, err := token.NewVerifier(keys, issuer, time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(tok string, kind token.Kind) map[string]any {
		t.Helper()
		vt, err := v.Verify(ctx, tok, token.VerifyOptions{Kind: kind})
		if err != nil {
			t.Fatalf("claimsmith's token does not verify: %v", err)
		}
		var c map[string]any
		if err := json.Unmarshal(vt.Payload, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	at, id := claims(out.AccessToken, token.KindAccessToken), claims(out.IDToken, token.KindIDToken)
	if at["sub"] != "carol" || at["client_id"] != hookstest.PortalClient {
		t.Errorf("access token sub/client_id = %v/%v", at["sub"], at["client_id"])
	}
	if got := at[hookstest.NS+"permissions"]; !reflect.DeepEqual(got, []any{"docs:read", "docs:write"}) {
		t.Errorf("access token permissions = %v (claims %v)", got, at)
	}
	if got := id[hookstest.NS+"groups"]; !reflect.DeepEqual(got, []any{"Staff", "Engineering"}) {
		t.Errorf("ID token groups = %v, want [Staff Engineering] (mapped from Hydra's groups claim)", got)
	}
	if got := id[hookstest.NS+"roles"]; !reflect.DeepEqual(got, []any{"portal-viewer", "portal-editor"}) {
		t.Errorf("ID token roles = %v", got)
	}
	testExchangeHydraAccessTokenInto(t, public, admin, exchange, claims)
}

// testExchangeHydraAccessTokenInto: Hydra's JWT access token (strategies.
// access_token: jwt, audience docsAPI) is exchanged too; alice's roles come
// from her stored memberships.
func testExchangeHydraAccessTokenInto(t *testing.T, public, admin string, exchange func(subject, subjectType string) rtexchange.Response, claims func(string, token.Kind) map[string]any) {
	code := authorizeAudience(t, public, admin, "alice", nil, nil, docsAPI)
	tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
	})
	if tok.status != http.StatusOK {
		t.Fatalf("Hydra token request: %d %s", tok.status, tok.raw)
	}
	out := exchange(tok.AccessToken, rtexchange.TokenTypeAccessToken)
	id := claims(out.IDToken, token.KindIDToken)
	if id["sub"] != "alice" || !reflect.DeepEqual(id[hookstest.NS+"groups"], []any{"Staff", "Engineering", "Backend"}) {
		t.Errorf("ID token from Hydra's access token: %v", id)
	}
}
