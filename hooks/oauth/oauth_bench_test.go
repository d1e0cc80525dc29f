package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	rtexchange "github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/token"
	"github.com/claimsmith/claimsmith/runtime/token/file"
)

// BenchmarkIntrospectHandler is one RFC 7662 request through the mux (body
// limit, HTTP Basic, form decoding, verification, revocation check, answer)
// without the network; compare with runtime/token's BenchmarkVerify/ES256.
func BenchmarkIntrospectHandler(b *testing.B) {
	e := newOAuthEnv(b)
	body := url.Values{"token": {e.mint(b, "https://api.example.com")}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", "rs-secret")
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), `{"active":true`) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkTokenHandlerStoreClient is one client_credentials request of a
// client registered in the store through the token endpoint's handler
// (Basic, form, client lookup at the known revision, pipeline stand-in,
// mint, answer), without the network. The store is read once, before the
// loop: the lookup is a cache hit while the revision holds.
func BenchmarkTokenHandlerStoreClient(b *testing.B) {
	ctx := context.Background()
	ks, err := file.NewKeyStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	set, err := token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := set.Init(ctx); err != nil {
		b.Fatal(err)
	}
	m, err := token.NewMinter(set, token.MinterConfig{Issuer: "https://claimsmith.example.com"}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	st := memory.New(memory.Options{})
	hash, _ := token.HashSecret("svc-secret", false)
	rev, err := st.Apply(ctx, 0, &authz.PutApplication{Application: authz.Application{ClientID: "svc", OAuth: &authz.OAuthClient{
		AuthMethod: rtexchange.AuthSecretBasic, SecretHash: hash, GrantTypes: []string{rtexchange.GrantClientCredentials}}}})
	if err != nil {
		b.Fatal(err)
	}
	ex, err := rtexchange.New(rtexchange.Config{Enabled: true}, rtexchange.Deps{Minter: m,
		Store: rtexchange.NewStoreClients(rtexchange.StoreDeps{Apps: st, Revision: func() uint64 { return rev }}, token.ClientsOptions{}, nil)})
	if err != nil {
		b.Fatal(err)
	}
	h := &TokenHandler{Exchanger: ex, Enricher: allowAll{}}
	body := "grant_type=client_credentials"
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", "svc-secret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
