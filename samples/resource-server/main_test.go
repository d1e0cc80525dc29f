package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

const (
	ns  = "https://example.com/"
	iss = "https://auth.example.com"
	aud = "https://api.example.com/"
)

func TestEmployeesAPI(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := guard.StaticKeys{"k": {Key: &key.PublicKey, KeyID: "k", Algorithm: "ES256"}}
	v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: iss, Audiences: []string{aud}}, keys, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := guard.NewAuthenticator(guard.AuthConfig{Verifier: v, Paths: guard.DefaultClaimPaths(ns)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Options{Auth: auth, RuleSets: rules()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newAPI(g, ns))
	defer srv.Close()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k"}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	tok := func(sub string, extra map[string]any) string {
		c := map[string]any{"iss": iss, "aud": aud, "sub": sub, "client_id": "portal", "jti": sub + time.Now().String(),
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		jws, _ := signer.Sign(b)
		s, _ := jws.CompactSerialize()
		return s
	}
	do := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	salaries := func(body string) map[string]bool {
		var list []map[string]any
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		out := map[string]bool{}
		for _, e := range list {
			_, has := e["salary"]
			out[e["id"].(string)] = has
		}
		return out
	}
	reader := tok("auth0|alice", map[string]any{ns + "permissions": []string{"employee:read"}})
	sensitive := tok("auth0|carol", map[string]any{ns + "permissions": []string{"employee:read", "employee:read-sensitive"}})
	hrSales := tok("auth0|dan", map[string]any{ns + "permissions": []string{"employee:read"}, ns + "groups": []string{"HR"}, ns + "division": "sales"})

	if s, _ := do("GET", "/employees", ""); s != 401 {
		t.Fatalf("anonymous: %d", s)
	}
	if s, _ := do("GET", "/employees", tok("auth0|eve", nil)); s != 403 {
		t.Fatalf("no employee:read: %d", s)
	}
	for _, c := range []struct {
		name, token string
		want        map[string]bool
	}{
		{"reader", reader, map[string]bool{"e1": false, "e2": false, "e3": false}},
		{"sensitive reader", sensitive, map[string]bool{"e1": true, "e2": true, "e3": true}},
		{"HR of sales", hrSales, map[string]bool{"e1": true, "e2": false, "e3": true}},
	} {
		s, body := do("GET", "/employees", c.token)
		if s != 200 {
			t.Fatalf("%s: %d", c.name, s)
		}
		got := salaries(body)
		for id, want := range c.want {
			if got[id] != want {
				t.Errorf("%s: salary of %s visible=%v, want %v", c.name, id, got[id], want)
			}
		}
	}
	if s, _ := do("POST", "/orders/o-100/cancel", reader); s != 200 {
		t.Fatalf("owner cancels: %d", s)
	}
	if s, _ := do("POST", "/orders/o-200/cancel", reader); s != 403 {
		t.Fatalf("someone else's order: %d", s)
	}
	if s, _ := do("GET", "/healthz", ""); s != 200 {
		t.Fatalf("healthz: %d", s)
	}
}
