package login_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

// newTestMinter is runtime/token's real minter over an ES256 key set in a
// temporary folder.
func newTestMinter(t testing.TB) (*token.Minter, *token.Verifier) {
	t.Helper()
	store, err := tokenfile.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewKeySet(store, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	const iss = "http://127.0.0.1:8080"
	m, err := token.NewMinter(keys, token.MinterConfig{Issuer: iss}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(keys, iss, time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return m, v
}

// TestNativeMintsTokens: "mint": true (or a caller configured to mint) gets
// signed tokens carrying the pipeline's claims; a denied login gets none.
func TestNativeMintsTokens(t *testing.T) {
	m, v := newTestMinter(t)
	ts := newMintingServer(t, func(c *login.Config) {
		c.Native.Callers[0].Mint = true // the signing caller always mints
	}, login.TokenMinter{Minter: m})

	body := bytes.Replace(readPayload(t, "native/post-login.request.json"), []byte(`"trigger": "post-login",`), []byte(`"trigger": "post-login", "mint": true,`), 1)
	st, b, _ := ts.post(t, "/hooks/v1/post-login", body, header("Authorization", "Bearer "+nativeBearer))
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	var resp login.NativeResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Tokens == nil || resp.Tokens.IDToken == "" || resp.Tokens.AccessToken == "" || resp.Tokens.TokenType != "Bearer" || resp.Tokens.ExpiresIn <= 0 {
		t.Fatalf("tokens = %+v", resp.Tokens)
	}
	id, err := v.Verify(t.Context(), resp.Tokens.IDToken, token.VerifyOptions{Kind: token.KindIDToken, Audience: hookstest.PortalClient})
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idc map[string]any
	_ = json.Unmarshal(id.Payload, &idc)
	if id.Claims.Subject != "alice" || idc[hookstest.NS+"groups"] == nil {
		t.Errorf("ID token claims %s", id.Payload)
	}
	at, err := v.Verify(t.Context(), resp.Tokens.AccessToken, token.VerifyOptions{Kind: token.KindAccessToken})
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	var atc map[string]any
	_ = json.Unmarshal(at.Payload, &atc)
	if at.Claims.ClientID != hookstest.PortalClient || atc[hookstest.NS+"permissions"] == nil || at.Claims.Scope != "openid profile" {
		t.Errorf("access token claims %s", at.Payload)
	}

	// The caller configured with mint: true gets tokens without asking; an
	// M2M login gets an access token only.
	st, b, _ = ts.post(t, "/hooks/v1/credentials-exchange", readPayload(t, "native/credentials-exchange.request.json"), signNative("msg_mint_m2m", t0))
	if st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	resp = login.NativeResponse{}
	_ = json.Unmarshal(b, &resp)
	if resp.Tokens == nil || resp.Tokens.IDToken != "" || resp.Tokens.AccessToken == "" {
		t.Fatalf("M2M tokens = %+v", resp.Tokens)
	}
	m2m, err := v.Verify(t.Context(), resp.Tokens.AccessToken, token.VerifyOptions{Kind: token.KindAccessToken, Audience: "https://api.example.com/"})
	if err != nil || m2m.Claims.Subject != hookstest.BatchClient {
		t.Fatalf("M2M access token: %v %+v", err, m2m)
	}

	// Denied: no tokens, even when asked.
	denied := bytes.Replace(readPayload(t, "native/denied.request.json"), []byte(`"user": {`), []byte(`"mint": true, "user": {`), 1)
	st, b, _ = ts.post(t, "/hooks/v1/post-login", denied, header("Authorization", "Bearer "+nativeBearer))
	resp = login.NativeResponse{}
	_ = json.Unmarshal(b, &resp)
	if st != 200 || resp.Decision.Allowed || resp.Tokens != nil {
		t.Fatalf("denied login: %d %s", st, b)
	}
}
