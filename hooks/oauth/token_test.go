package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	rtexchange "github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/token"
	"github.com/claimsmith/claimsmith/runtime/token/file"
)

const upstreamIss = "https://idp.example.com"

type allowAll struct{}

func (allowAll) Run(context.Context, *runtime.Event) (*runtime.Result, error) {
	return &runtime.Result{Decision: runtime.Decision{Allowed: true}}, nil
}

func tokenFixture(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := file.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, err := token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Init(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(set, token.MinterConfig{Issuer: "https://claimsmith.example.com"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := token.HashSecret("s3cret:/&", false)
	ex, err := rtexchange.New(rtexchange.Config{Enabled: true,
		Issuers: []rtexchange.IssuerConfig{{Issuer: upstreamIss, Audiences: []string{"app"}, Connection: "idp"}},
		Clients: []rtexchange.ClientConfig{{ClientID: "app", SecretHash: hash}}},
		rtexchange.Deps{Minter: m, Keys: map[string]guard.KeySource{upstreamIss: guard.StaticKeys{"k1": {Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}}}})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, _ := json.Marshal(map[string]any{"iss": upstreamIss, "sub": "alice", "aud": "app", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	jws, _ := signer.Sign(b)
	tok, _ := jws.CompactSerialize()
	srv := httptest.NewServer(&TokenHandler{Exchanger: ex, Enricher: allowAll{}})
	t.Cleanup(srv.Close)
	return srv, tok
}

func tokenPost(t *testing.T, srv *httptest.Server, form url.Values, user, pass string, ct string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp, m
}

func TestTokenEndpoint(t *testing.T) {
	srv, tok := tokenFixture(t)
	form := url.Values{"grant_type": {rtexchange.GrantTokenExchange}, "subject_token": {tok}, "subject_token_type": {rtexchange.TokenTypeIDToken}}
	// client_secret_basic, form-encoded secret (RFC 6749 §2.3.1).
	resp, body := tokenPost(t, srv, form, "app", "s3cret:/&", "")
	if resp.StatusCode != 200 || body["access_token"] == nil || body["token_type"] != "Bearer" || body["issued_token_type"] != rtexchange.TokenTypeAccessToken ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("basic: %d %v", resp.StatusCode, body)
	}
	// client_secret_post.
	post2 := url.Values{}
	for k, v := range form {
		post2[k] = v
	}
	post2.Set("client_id", "app")
	post2.Set("client_secret", "s3cret:/&")
	if resp, body := tokenPost(t, srv, post2, "", "", ""); resp.StatusCode != 200 {
		t.Fatalf("post: %d %v", resp.StatusCode, body)
	}

	for _, c := range []struct {
		name       string
		form       url.Values
		user, pass string
		ct         string
		status     int
		code       string
	}{
		{"wrong secret", form, "app", "nope", "", 401, "invalid_client"},
		{"no credentials", form, "", "", "", 401, "invalid_client"},
		{"both methods", post2, "app", "s3cret:/&", "", 400, "invalid_request"},
		{"basic and assertion", url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"x.y.z"}}, "app", "s3cret:/&", "", 400, "invalid_request"},
		{"bad assertion", url.Values{"grant_type": {"client_credentials"}, "client_assertion": {"x.y.z"}, "client_assertion_type": {rtexchange.ClientAssertionType}}, "", "", "", 401, "invalid_client"},
		{"client_id mismatch", url.Values{"grant_type": {"client_credentials"}, "client_id": {"other"}}, "app", "s3cret:/&", "", 400, "invalid_request"},
		{"not a form", form, "app", "s3cret:/&", "application/json", 400, "invalid_request"},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, "app", "s3cret:/&", "", 400, "unsupported_grant_type"},
		{"unauthorized client", url.Values{"grant_type": {"client_credentials"}}, "app", "s3cret:/&", "", 400, "unauthorized_client"},
		{"bad subject", url.Values{"grant_type": {rtexchange.GrantTokenExchange}, "subject_token": {"x.y.z"}, "subject_token_type": {rtexchange.TokenTypeJWT}}, "app", "s3cret:/&", "", 400, "invalid_grant"},
		{"bad target", url.Values{"grant_type": {rtexchange.GrantTokenExchange}, "resource": {"/rel"}}, "app", "s3cret:/&", "", 400, "invalid_target"},
		{"bad scope", url.Values{"grant_type": {rtexchange.GrantTokenExchange}, "scope": {`a"b`}}, "app", "s3cret:/&", "", 400, "invalid_scope"},
	} {
		resp, body := tokenPost(t, srv, c.form, c.user, c.pass, c.ct)
		if resp.StatusCode != c.status || body["error"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
		if c.code == "invalid_client" && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: no Basic challenge", c.name)
		}
	}
	// A non-Basic Authorization header is invalid_client.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
	// An oversized body is 413.
	big := url.Values{"grant_type": {"x"}, "pad": {strings.Repeat("a", rtexchange.MaxBody)}}
	if resp, _ := tokenPost(t, srv, big, "app", "s3cret:/&", ""); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", resp.StatusCode)
	}
}
