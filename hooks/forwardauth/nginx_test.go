package forwardauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// nginxConf is samples/gateway/nginx.conf — the set-up operators copy —
// with the test's addresses and nginx's files in a temporary prefix.
func nginxConf(t *testing.T, dir string, port int, claimsmith, upstream string) []byte {
	b, err := os.ReadFile("../../samples/gateway/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"listen 127.0.0.1:8000;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
		{"http://127.0.0.1:8080", claimsmith},
		{"http://127.0.0.1:3000", upstream},
		{"http {", fmt.Sprintf("http {\n  access_log off;\n  client_body_temp_path %[1]s/body;\n  proxy_temp_path %[1]s/proxy;\n"+
			"  fastcgi_temp_path %[1]s/fastcgi;\n  uwsgi_temp_path %[1]s/uwsgi;\n  scgi_temp_path %[1]s/scgi;", dir)},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("samples/gateway/nginx.conf lacks %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	head := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log warn;\n", dir)
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot enter the test's 0700 prefix.
		head += "user root root;\n"
	}
	return []byte(head + conf)
}

// nginxBinary finds Debian's nginx; CLAIMSMITH_REQUIRE_NGINX (make test)
// turns a missing one into a failure.
func nginxBinary(t *testing.T) string {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	if os.Getenv("CLAIMSMITH_REQUIRE_NGINX") != "" {
		t.Fatal("nginx is not installed: run `make nginx-deps` (part of `make deps`)")
	}
	t.Skip("nginx is not installed (make nginx-deps)")
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNginx runs nginx in the foreground as a child, in its own prefix.
func startNginx(t *testing.T, claimsmith, upstream string) string {
	bin := nginxBinary(t)
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		cf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cf, nginxConf(t, dir, port, claimsmith, upstream), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(30 * time.Second)
		for {
			select {
			case err := <-exited:
				cancel()
				logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				if attempt < 3 && strings.Contains(string(logs)+stderr.String(), "Address already in use") {
					goto retry
				}
				t.Fatalf("nginx exited: %v\n%s\n%s", err, stderr.String(), logs)
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				t.Cleanup(func() {
					cancel()
					<-exited
				})
				return base
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("nginx did not listen on %d: %s", port, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	retry:
	}
}

// nginxClaimsmith is the claimsmith.yaml of the end-to-end test.
const nginxClaimsmith = `tokens:
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
  cookie: access_token
  cache_ttl: 1s
  rule_sets:
    - login_url: /login
      rules:
        - {path: /login, public: true}
        - {path: /public/**, public: true}
        - {path: /admin/**, allowed: {roles: [admin]}}
        - {path: /api/**, allowed: {permissions: [employee:read]}}
`

// TestNginxEndToEnd: real nginx with samples/gateway/nginx.conf, auth_request
// to a claimsmith server assembled as serve assembles it (runtime/setup),
// a real upstream behind nginx.
func TestNginxEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(nginxClaimsmith), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: setup.Env{DataDir: filepath.Join(dir, "data"),
		Getenv: func(k string) string { return map[string]string{"T_GATEWAY": "gateway-secret"}[k] }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { stop(); <-served })
	claimsmithURL := "http://" + ln.Addr().String()
	const ttl = time.Second
	mint := func(sub string, roles, groups, perms []string) token.Minted {
		var cl runtime.Claims
		cl.Set(ns+"roles", roles)
		cl.Set(ns+"groups", groups)
		cl.Set(ns+"permissions", perms)
		m, err := srv.Tokens().Minter.MintAccessToken(ctx, token.AccessTokenRequest{Subject: sub, ClientID: "portal", Audience: audience, Claims: cl})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	revoke := func(tok string) {
		req, _ := http.NewRequest("POST", claimsmithURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
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
	}
	upstreamURL := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.Path, "subject": r.Header.Get("X-Auth-Subject"), "groups": r.Header.Get("X-Auth-Groups"),
			"roles": r.Header.Get("X-Auth-Roles"), "permissions": r.Header.Get("X-Auth-Permissions")})
	}))
	base := startNginx(t, claimsmithURL, upstreamURL)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, accept, tok string, extra ...string) (*http.Response, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]string
		if res.StatusCode == 200 {
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
		}
		return res, body
	}
	alice := mint("auth0|alice", []string{"admin"}, []string{"Staff", "R&D"}, []string{"employee:read"})
	bob := mint("auth0|bob", []string{"viewer"}, nil, []string{"employee:read"})

	t.Run("browser without token: 302 to the login URL with returnUrl", func(t *testing.T) {
		res, _ := get("/admin/users?tab=2", "text/html,application/xhtml+xml", "")
		// nginx makes the Location absolute on its own host.
		if loc, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != 302 || loc == nil || loc.Path != "/login" || loc.Host != strings.TrimPrefix(base, "http://") {
			t.Fatalf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
		var rc *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "returnUrl" {
				rc = c
			}
		}
		if rc == nil || !rc.HttpOnly || rc.SameSite != http.SameSiteLaxMode || rc.Path != "/" {
			t.Fatalf("returnUrl cookie %v (Set-Cookie %q)", rc, res.Header.Values("Set-Cookie"))
		}
		if v, _ := url.QueryUnescape(rc.Value); v != "/admin/users?tab=2" {
			t.Fatalf("return path %q", v)
		}
	})
	t.Run("API without token: 401", func(t *testing.T) {
		res, _ := get("/api/employees", "application/json", "")
		if res.StatusCode != 401 || res.Header.Get("Location") != "" || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("status %d headers %v", res.StatusCode, res.Header)
		}
	})
	t.Run("login page is public: no redirect loop", func(t *testing.T) {
		if res, body := get("/login", "text/html", ""); res.StatusCode != 200 || body["path"] != "/login" {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("wrong role: 403", func(t *testing.T) {
		if res, _ := get("/admin/users", "application/json", bob.Token); res.StatusCode != 403 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("right role: 200 with identity headers at the upstream", func(t *testing.T) {
		res, body := get("/admin/users", "application/json", alice.Token, "X-Auth-Subject", "auth0|mallory")
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		want := map[string]string{"path": "/admin/users", "subject": "auth0|alice", "groups": "Staff,R&D", "roles": "admin", "permissions": "employee:read"}
		for k, v := range want {
			if body[k] != v {
				t.Fatalf("upstream saw %s=%q, want %q (all: %v)", k, body[k], v, body)
			}
		}
	})
	t.Run("revoked in claimsmith: 401 within the cache bound", func(t *testing.T) {
		carol := mint("auth0|carol", []string{"admin"}, nil, nil)
		if res, _ := get("/admin/users", "application/json", carol.Token); res.StatusCode != 200 {
			t.Fatalf("before revocation: %d", res.StatusCode)
		}
		revokedAt := time.Now()
		revoke(carol.Token)
		// The cache keeps the verified token at most ttl; the generous
		// deadline absorbs a loaded machine, the bound is checked by the
		// first 401 arriving no later than it.
		for {
			res, _ := get("/admin/users", "application/json", carol.Token)
			if res.StatusCode == 401 {
				t.Logf("revocation effective after %s (cache bound %s)", time.Since(revokedAt).Round(time.Millisecond), ttl)
				return
			}
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if time.Since(revokedAt) > ttl+20*time.Second {
				t.Fatalf("revoked token still accepted %s after revocation", time.Since(revokedAt))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
