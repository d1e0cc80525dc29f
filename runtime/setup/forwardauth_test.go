package setup_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

const forwardAuthConfig = `tokens:
  issuer: https://auth.example.com
  algorithm: ES256
  introspection:
    clients:
      - {client_id: gateway, secret_env: T_GATEWAY}
pipeline:
  namespace: https://example.com/
forward_auth:
  enabled: true
  audiences: [https://api.example.com/]
  namespace: https://example.com/
  cache_ttl: 1s
  rule_sets:
    - login_url: /login
      rules:
        - {path: /login, public: true}
        - {path: /admin/**, allowed: {roles: [admin]}}
`

// TestServeForwardAuth: serve mounts GET /hooks/forward-auth over its own
// keys and revocation list; a token revoked through POST /oauth2/revoke is
// refused within cache_ttl; a reload swaps the path rules, and a broken
// forward_auth section is refused while the old rules keep serving.
func TestServeForwardAuth(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(forwardAuthConfig)
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string {
		return map[string]string{"T_GATEWAY": "gateway-secret"}[k]
	}}
	rep, err := setup.Check(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Routes, " "), "GET /hooks/forward-auth") {
		t.Fatalf("check routes %v", rep.Routes)
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base, stop := serveOnLoopback(ctx, t, srv)
	defer func() { _ = stop() }()

	mint := func(roles ...string) token.Minted {
		var cl runtime.Claims
		cl.Set("https://example.com/roles", roles)
		m, err := srv.Tokens().Minter.MintAccessToken(ctx, token.AccessTokenRequest{Subject: "auth0|alice", ClientID: "portal", Audience: "https://api.example.com/", Claims: cl})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	check := func(uri string, tok string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/hooks/forward-auth", nil)
		req.Header.Set("X-Original-URI", uri)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	admin := mint("admin")
	if res := check("/admin/users", admin.Token); res.StatusCode != 200 || res.Header.Get("X-Auth-Subject") != "auth0|alice" || res.Header.Get("X-Auth-Roles") != "admin" {
		t.Fatalf("admin: %d %v", res.StatusCode, res.Header)
	}
	if res := check("/admin/users", mint("viewer").Token); res.StatusCode != 403 {
		t.Fatalf("viewer: %d", res.StatusCode)
	}
	if res := check("/reports", ""); res.StatusCode != 401 {
		t.Fatalf("no token: %d", res.StatusCode)
	}

	// Revoke through the RFC 7009 endpoint.
	form := url.Values{"token": {admin.Token}}
	req, _ := http.NewRequest("POST", base+"/oauth2/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("gateway", "gateway-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	revoked := time.Now()
	for check("/admin/users", admin.Token).StatusCode != 401 {
		if time.Since(revoked) > time.Second+20*time.Second {
			t.Fatal("a revoked token is still accepted")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Reload: /reports now needs the viewer role.
	write(forwardAuthConfig + "        - {path: /reports, allowed: {roles: [viewer]}}\n")
	if _, err := srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	viewer := mint("viewer")
	if res := check("/reports", viewer.Token); res.StatusCode != 200 {
		t.Fatalf("after reload: %d", res.StatusCode)
	}
	// A broken section is refused with its key; the running rules serve on.
	write(strings.Replace(forwardAuthConfig, "path: /admin/**", "path: admin", 1))
	_, err = srv.Reload(ctx)
	var se *setup.Error
	if !errors.As(err, &se) || se.Key != "forward_auth.rule_sets[0].rules[1].path" || se.Line != 18 || !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("broken reload: %v", err)
	}
	if res := check("/reports", viewer.Token); res.StatusCode != 200 {
		t.Fatalf("after a refused reload: %d", res.StatusCode)
	}
}

func TestForwardAuthValidation(t *testing.T) {
	for _, c := range []struct {
		name, yaml, key string
	}{
		{"no audience", "forward_auth:\n  enabled: true\n", "forward_auth.audiences"},
		{"bad login url", "forward_auth:\n  enabled: true\n  any_audience: true\n  rule_sets:\n    - login_url: javascript:x\n", "forward_auth.rule_sets[0].login_url"},
		{"unknown key", "forward_auth:\n  enabled: true\n  any_audience: true\n  rule_sets:\n    - rules:\n        - {path: /x, alowed: {}}\n", "forward_auth.rule_sets[0].rules[0].alowed"},
		{"missing secret", "forward_auth:\n  enabled: true\n  any_audience: true\n  introspection: {url: https://x/i, client_id: a, client_secret_env: NOPE}\n", "forward_auth.introspection.client_secret_env"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := setup.Parse("c.yaml", []byte(c.yaml))
			if err == nil {
				err = cfg.Validate(context.Background(), setup.Env{Getenv: func(string) string { return "" }})
			}
			var se *setup.Error
			if !errors.As(err, &se) || se.Key != c.key || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("got %v, want an error on %s", err, c.key)
			}
		})
	}
}
