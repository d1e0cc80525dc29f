package setup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// TestServeStoreClients: a client registered through the admin API of a
// running server gets tokens at once (the write raises the policy cache's
// revision, which the token endpoint's client cache follows), its secret is
// shown once and never listed, a rotation retires the old secret, a
// deletion the client, and a configured client's id cannot be registered.
func TestServeStoreClients(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	up := newTestOP(t)
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(exchangeConfig, up.URL, sha256Hash("app-secret"), sha256Hash("locked-secret"), sha256Hash("m2m-secret"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data")}
	keys, err := adminfile.OpenKeyStore(filepath.Join(env.DataDir, adminfile.Dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, adminKey, err := keys.Create(ctx, "ops", admin.AllScopes())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base, stop := serveOnLoopback(ctx, t, srv)
	defer func() { _ = stop() }()

	api := func(method, p, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+p, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	token := func(id, secret string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}

	if code, body := api("POST", "/api/clients", `{"client_id":"m2m"}`); code != 409 || !strings.Contains(body, "exchange section") {
		t.Fatalf("configured id: %d %s", code, body)
	}
	code, body := api("POST", "/api/clients", `{"client_id":"svc","grant_types":["client_credentials"],"audiences":["https://api.example.com"]}`)
	var cred struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(body), &cred); code != 201 || err != nil || cred.Secret == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, tok := token("svc", cred.Secret); code != 200 || tok["access_token"] == nil {
		t.Fatalf("token of the new client: %d %v", code, tok)
	}
	for _, p := range []string{"/api/clients", "/api/clients/svc", "/api/applications", "/api/applications/svc", "/api/audit"} {
		code, body := api("GET", p, "")
		if code != 200 || !strings.Contains(body, "svc") || strings.Contains(body, cred.Secret) || strings.Contains(body, "sha256:") {
			t.Fatalf("GET %s shows the secret or its hash (or not the client): %d %s", p, code, body)
		}
	}
	code, body = api("POST", "/api/clients/svc/secret", "")
	var rot struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(body), &rot); code != 200 || err != nil || rot.Secret == "" || rot.Secret == cred.Secret {
		t.Fatalf("rotate: %d %s", code, body)
	}
	if code, _ := token("svc", cred.Secret); code != 401 {
		t.Fatalf("old secret after rotation: %d", code)
	}
	if code, _ := token("svc", rot.Secret); code != 200 {
		t.Fatalf("new secret: %d", code)
	}
	if code, body := api("DELETE", "/api/clients/svc", ""); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := token("svc", rot.Secret); code != 401 {
		t.Fatalf("deleted client: %d", code)
	}
}
