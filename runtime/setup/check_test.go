package setup_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// baseConfig is a valid file; each broken case changes one line of it.
const baseConfig = `server:
  addr: 127.0.0.1:0
pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
    - rule: required-roles
tokens:
  issuer: https://auth.example.com
  algorithm: ES256
hooks:
  native:
    callers:
      - name: idp
        webhook_secret_env: T_WEBHOOK
store:
  backend: file
`

// goodWebhookSecret is a valid Standard Webhooks secret (whsec_ + base64).
const goodWebhookSecret = "whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi"

// brokenCase is one file serve must refuse: the line of baseConfig it
// replaces, the environment, and what the one-line error must say after
// "FILE:LINE: " (LINE is the replaced line unless line is set).
type brokenCase struct {
	name, old, new string
	env            map[string]string
	line           int
	want           string
}

func brokenCases() []brokenCase {
	ok := map[string]string{"T_WEBHOOK": goodWebhookSecret}
	return []brokenCase{
		{name: "bad algorithm", old: "  algorithm: ES256", new: "  algorithm: HS256", env: ok,
			want: `key "tokens.algorithm": "HS256" is not one of RS256, PS256, ES256, EdDSA`},
		{name: "bad issuer URL", old: "  issuer: https://auth.example.com", new: "  issuer: auth.example.com", env: ok,
			want: `key "tokens.issuer": "auth.example.com" must be an http(s) URL with a host and no query or fragment`},
		{name: "missing secret env var", old: "        webhook_secret_env: T_WEBHOOK", new: "        webhook_secret_env: T_WEBHOOK", env: nil,
			want: `key "hooks.native.callers[0].webhook_secret_env": environment variable T_WEBHOOK is empty or unset`},
		{name: "empty secret env var", old: "        webhook_secret_env: T_WEBHOOK", new: "        webhook_secret_env: T_WEBHOOK", env: map[string]string{"T_WEBHOOK": ""},
			want: `key "hooks.native.callers[0].webhook_secret_env": environment variable T_WEBHOOK is empty or unset`},
		{name: "malformed whsec_", old: "        webhook_secret_env: T_WEBHOOK", new: "        webhook_secret_env: T_WEBHOOK", env: map[string]string{"T_WEBHOOK": "whsec_not base64!"},
			want: `key "hooks.native.callers[0].webhook_secret_env": `},
		{name: "unknown backend", old: "  backend: file", new: "  backend: postgres", env: ok,
			want: `key "store.backend": is "postgres", must be "file" or "redis"`},
		{name: "unknown rule", old: "    - rule: required-roles", new: "    - rule: required-rolez", env: ok,
			want: `key "pipeline.rules[1].rule": rule "required-rolez": unknown rule "required-rolez"`},
		{name: "bad wasm path", old: "    - rule: required-roles", new: "    - wasm: rules/missing.wasm", env: ok,
			want: `key "pipeline.rules[1].wasm": rule "missing": `},
		{name: "second YAML document", old: "store:", new: "---\nstore:", env: ok, line: 17,
			want: `a second YAML document (after ---): the configuration is one document`},
		{name: "missing introspection secret", old: "  algorithm: ES256",
			new: "  algorithm: ES256\n  introspection:\n    clients:\n      - client_id: api\n        secret_env: T_INTROSPECT", env: ok, line: 14,
			want: `key "tokens.introspection.clients[0].secret_env": environment variable T_INTROSPECT is empty or unset`},
		{name: "bad namespace", old: "  namespace: https://example.com/", new: "  namespace: example.com", env: ok,
			want: `key "pipeline.namespace": "example.com" is not an http(s) URL`},
		{name: "TLS key without certificate", old: "  addr: 127.0.0.1:0", new: "  addr: 127.0.0.1:0\n  tls_key_file: key.pem", env: ok, line: 1,
			want: `key "server.tls_cert_file": set both tls_cert_file and tls_key_file, or neither`},
		{name: "negative dashboard idle", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_idle: -5m", env: ok, line: 20,
			want: `key "admin.dashboard.session_idle": is -5m0s, must be positive (0 or unset: the default)`},
		{name: "dashboard idle over max", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_idle: 2h\n    session_max: 1h", env: ok, line: 20,
			want: `key "admin.dashboard.session_idle": session_idle (2h0m0s) is longer than session_max (1h0m0s)`},
		{name: "dashboard max under the default idle", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_max: 10m", env: ok, line: 20,
			want: `key "admin.dashboard.session_max": session_idle (30m0s) is longer than session_max (10m0s)`},
		{name: "dashboard idle too short", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_idle: 5s", env: ok, line: 20,
			want: `key "admin.dashboard.session_idle": is 5s, must be at least 1m`},
		{name: "dashboard idle not a duration", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_idle: soon", env: ok, line: 20,
			want: `key "admin.dashboard.session_idle": `},
		{name: "unknown dashboard key", old: "  backend: file", new: "  backend: file\nadmin:\n  dashboard:\n    session_timeout: 5m", env: ok, line: 20,
			want: `key "admin.dashboard.session_timeout": unknown key (known: enabled, secure_cookies, session_idle, session_max)`},
		{name: "hooks without a caller", old: "      - name: idp\n        webhook_secret_env: T_WEBHOOK", new: "      []", env: ok, line: 13,
			want: `key "hooks.native.callers": at least one caller is required`},
	}
}

// TestCheckRefusesWhatServeRefuses is the acceptance table: every broken
// file gets the same verdict from Check (what `claimsmith check` runs) and
// from Build (what `claimsmith serve` runs) — one line naming the file, the
// line and the key.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	ctx := context.Background()
	for _, c := range brokenCases() {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(baseConfig, c.old) {
				t.Fatalf("base config lacks %q", c.old)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "claimsmith.yaml")
			src := strings.Replace(baseConfig, c.old, c.new, 1)
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			line := c.line
			if line == 0 {
				line = strings.Count(baseConfig[:strings.Index(baseConfig, c.old)], "\n") + 1
			}
			want := fmt.Sprintf("%s:%d: %s", path, line, c.want)
			env := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string { return c.env[k] }}

			verdict := func(what string, f func(*setup.Config) error) string {
				cfg, err := setup.Load(path)
				if err == nil {
					err = f(cfg)
				}
				var se *setup.Error
				if err == nil || !errors.As(err, &se) || !errors.Is(err, runtime.ErrInvalid) || strings.Contains(err.Error(), "\n") ||
					!strings.HasPrefix(err.Error(), want) {
					t.Fatalf("%s: %v\nwant prefix %s", what, err, want)
				}
				return err.Error()
			}
			checked := verdict("check", func(cfg *setup.Config) error {
				_, err := setup.Check(ctx, cfg, setup.Options{Env: env})
				return err
			})
			served := verdict("serve", func(cfg *setup.Config) error {
				srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
				if err == nil {
					_ = srv.Close()
				}
				return err
			})
			if checked != served {
				t.Fatalf("different verdicts:\ncheck %s\nserve %s", checked, served)
			}
			if _, err := os.Stat(env.DataDir); !errors.Is(err, os.ErrNotExist) && c.name != "bad wasm path" && c.name != "unknown rule" {
				t.Errorf("a refused configuration created the data dir: %v", err)
			}
		})
	}
}

// TestCheckAcceptsWhatServeServes: the base file passes Check without
// writing anything, and Build serves it in-process on loopback.
func TestCheckAcceptsWhatServeServes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string {
		return map[string]string{"T_WEBHOOK": goodWebhookSecret}[k]
	}}
	rep, err := setup.Check(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 2 || rep.Namespace != "https://example.com/" || len(rep.Env) != 1 || !rep.Env[0].Set || !rep.Env[0].Required ||
		rep.Env[0].Key != "hooks.native.callers[0].webhook_secret_env" || rep.Env[0].Line != 15 {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := os.Stat(env.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check wrote the data dir: %v", err)
	}

	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base, stop := serveOnLoopback(ctx, t, srv)
	for _, p := range []string{"/healthz", "/.well-known/jwks.json", "/.well-known/openid-configuration"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	// The native hook is served: unauthenticated, it is refused, not 404.
	resp, err := http.Post(base+"/hooks/v1/post-login", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("post-login without a signature: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRefusesWhatCheckRefuses: a reload validates the whole file as
// Build did; a refused file leaves the running configuration serving and
// names the file, line and key.
func TestReloadRefusesWhatCheckRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(baseConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string {
		return map[string]string{"T_WEBHOOK": goodWebhookSecret}[k]
	}}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bad := strings.Replace(baseConfig, "  algorithm: ES256", "  algorithm: none", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = srv.Reload(ctx)
	want := path + `:10: key "tokens.algorithm": "none" is not one of`
	var se *setup.Error
	if err == nil || !errors.As(err, &se) || !strings.HasSuffix(err.Error(), se.Error()) || !strings.HasPrefix(se.Error(), want) {
		t.Fatalf("reload of a bad file: %v\nwant prefix %s", err, want)
	}
	good := strings.Replace(baseConfig, "    - rule: required-roles\n", "", 1)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := srv.Reload(ctx)
	if err != nil || len(res.Rules) != 1 {
		t.Fatalf("reload of a good file: %+v %v", res, err)
	}
}
