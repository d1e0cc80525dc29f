// Package clients holds interop checks: relying-party code in other
// ecosystems verifying what claimsmith mints. interop_test.go starts the
// server `claimsmith serve` builds (runtime/setup) in-process on loopback,
// mints tokens through its pipeline and minter as `claimsmith token mint`
// does, and runs verify.mjs (npm jose) against it.
package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

const sampleDoc = `{"configuration":[],
 "groups":[{"_id":"g1","name":"eng","members":["auth0|alice"],"roles":["r1"]}],
 "roles":[{"_id":"r1","name":"editor","applicationType":"client","applicationId":"app1","permissions":["p1"]}],
 "permissions":[{"_id":"p1","name":"write:docs","applicationType":"client","applicationId":"app1"}]}`

func TestNodeJoseInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the interop check needs Node.js 20+ and npm")
	}
	dir, _ := os.Getwd()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		run(t, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
	}
	tmp := t.TempDir()
	doc, err := authz.ParseDocument([]byte(sampleDoc))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-for-the-interop-check"
	getenv := func(k string) string { return map[string]string{"INTEROP_SECRET": secret}[k] }
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			base := "http://" + ln.Addr().String()
			cfgPath := filepath.Join(tmp, "claimsmith-"+alg+".yaml")
			conf := fmt.Sprintf(`server:
  addr: %s
tokens:
  issuer: %s
  algorithm: %s
  introspection:
    clients:
      - client_id: orders-api
        secret_env: INTEROP_SECRET
pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
    - rule: required-roles
`, ln.Addr(), base, alg)
			if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := setup.Load(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			var srvLog bytes.Buffer
			env := setup.Env{DataDir: filepath.Join(tmp, "data-"+alg), Getenv: getenv, Log: slog.New(slog.NewTextHandler(&srvLog, nil))}
			srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			defer func() {
				if t.Failed() {
					t.Logf("server log:\n%s", srvLog.String())
				}
			}()
			if _, err := srv.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			waitReady(t, base+"/readyz")

			// What `claimsmith token mint` does: a dry-run login through the
			// configured pipeline, then the server's minter.
			p, err := cfg.BuildPipeline(ctx, env, srv.Store(), setup.PipelineOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "auth0|alice"}, Client: runtime.Client{ClientID: "app1"},
				Transaction: runtime.Transaction{RequestedScopes: strings.Fields("openid profile read:docs"), Audience: "https://api.example.com", Nonce: "n-0S6_WzA2Mj"}}
			res, err := p.Run(ctx, ev)
			if err != nil || !res.Decision.Allowed {
				t.Fatalf("login: %+v %v", res, err)
			}
			toks, err := srv.Tokens().Minter.MintLogin(ctx, ev, res)
			if err != nil || toks.IDToken == nil {
				t.Fatalf("mint: %+v %v", toks, err)
			}
			report := run(t, dir, []string{"CLAIMSMITH_URL=" + base, "ID_TOKEN=" + toks.IDToken.Token, "ACCESS_TOKEN=" + toks.AccessToken.Token,
				"CLIENT_ID=app1", "AUDIENCE=https://api.example.com", "NONCE=n-0S6_WzA2Mj",
				"INTROSPECT_CLIENT=orders-api", "INTROSPECT_SECRET=" + secret}, node, "verify.mjs")
			var rep struct {
				OK     bool `json:"ok"`
				Checks []struct {
					Name string `json:"name"`
					Alg  string `json:"alg"`
				} `json:"checks"`
			}
			if err := json.Unmarshal(report, &rep); err != nil || !rep.OK || len(rep.Checks) != 8 {
				t.Fatalf("verify.mjs: %s", report)
			}
			for _, c := range rep.Checks {
				if (c.Name == "id_token" || c.Name == "access_token") && c.Alg != alg {
					t.Fatalf("%s verified with %s, want %s", c.Name, c.Alg, alg)
				}
			}
			// Graceful shutdown (what SIGTERM does): Serve returns nil.
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve after shutdown: %v", err)
			}
		})
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s", url)
}
